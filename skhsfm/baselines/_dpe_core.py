"""The DPE method as small functions: numpy in, a result dataclass out.

- :func:`unit_rows`, :func:`ensemble_log_proba`: numpy, what ``fit`` and
  ``predict`` share (the row standardisation, the averaged prediction).
- :func:`isomax_logits`, :func:`isomax_loss`, :func:`prototype_penalty`,
  :func:`diversity_loss`, :func:`diversity_schedule`: the official method's
  pieces, one small function each (torch tensors in; torch is imported by
  :func:`run_dpe`, never at module import).
- :func:`run_dpe`: numpy in, :class:`DPEResult` out; trains the members one
  after the other (each member's diversity term needs the members before it).

The estimator is :class:`~skhsfm.baselines.DPEClassifier`.
"""

from dataclasses import dataclass

import numpy as np
from scipy.special import log_softmax, logsumexp

from skhsfm._pools import balanced_subsample

__all__ = [
    "DPEResult",
    "DPESettings",
    "diversity_loss",
    "diversity_schedule",
    "ensemble_log_proba",
    "ensemble_scores",
    "isomax_logits",
    "isomax_loss",
    "member_gradient",
    "prototype_penalty",
    "run_dpe",
    "unit_rows",
]

#: ``torch.nn.functional.normalize``'s floor on a norm (the official heads use it).
_NORM_EPS = 1e-12
#: Standard deviation of the initial prototypes (the official initialisation).
_INIT_STD = 1e-2


def unit_rows(X, standardize=True):
    """Each row as the unit vector the IsoMax+ heads see.

    With ``standardize`` the row is first standardised over its own entries
    (``(x - mean(x)) / std(x)``, the official ``norm_emb``); the heads then
    divide by the L2 norm, so the result is ``(x - mean(x)) / ||x - mean(x)||``.
    A row whose entries are all equal (whose standardisation is 0 / 0 in the
    official code) becomes the zero vector, at distance 1 from every unit
    prototype. Rows are divided by their largest absolute entry first, which
    changes no unit vector and keeps the result the same for ``X`` and
    ``c * X`` at any scale (the official code's norm floor of 1e-12 would
    zero the rows of an ``X`` scaled below it).

    Parameters
    ----------
    X : ndarray of shape (n, d)
    standardize : bool, default=True

    Returns
    -------
    ndarray of float64, shape (n, d)
    """
    X = np.array(X, dtype=np.float64)  # a copy: changed in place below
    # each row over its largest entry first: the same unit vector, and neither
    # the centring nor the norm under- or overflows at any scale of X
    peak = np.max(np.abs(X), axis=1, keepdims=True)
    X /= np.where(peak > 0.0, peak, 1.0)
    if standardize:
        X -= X.mean(axis=1, keepdims=True)
    norm = np.linalg.norm(X, axis=1, keepdims=True)
    X /= np.maximum(norm, _NORM_EPS)
    return X


def ensemble_log_proba(X_unit, prototypes, scales):
    """Log of the members' averaged softmax probabilities.

    Member ``m`` gives class ``c`` the logit ``-|s_m| ||x - p_mc / ||p_mc||| ||``
    (IsoMax+ at temperature 1, as the official ``predict_proba``); the
    ensemble's probability is the mean of the members' softmax probabilities.

    Parameters
    ----------
    X_unit : ndarray of shape (n, d)
        Rows from :func:`unit_rows`.
    prototypes : ndarray of shape (n_members, n_classes, d)
    scales : ndarray of shape (n_members,)
        Distance scales (their absolute value is used).

    Returns
    -------
    ndarray of shape (n, n_classes)
    """
    n_members, n_classes, d = prototypes.shape
    P = prototypes.reshape(-1, d)
    P = P / np.maximum(np.linalg.norm(P, axis=1, keepdims=True), _NORM_EPS)
    # ||x - p||^2 = |x|^2 + |p|^2 - 2 x.p, with either side possibly zero
    sq = np.einsum("ij,ij->i", X_unit, X_unit)[:, None] + np.einsum("ij,ij->i", P, P)
    sq -= 2.0 * (X_unit @ P.T)
    dist = np.sqrt(np.maximum(sq, 0.0)).reshape(-1, n_members, n_classes)
    logits = -np.abs(np.asarray(scales, dtype=np.float64))[:, None] * dist
    return logsumexp(log_softmax(logits, axis=2), axis=1) - np.log(n_members)


def ensemble_scores(X, prototypes, scales, standardize, block_rows=4096):
    """Ensemble scores of raw rows: log-odds of ``classes_[1]`` for two
    classes, else the log-probabilities (both give ``predict`` by the linear
    heads' rules, and the probabilities through sigmoid / softmax).

    Computed ``block_rows`` rows at a time, so that the float64 unit rows and
    distances of a block, not of all of ``X``, are held at once.
    """
    n_classes = prototypes.shape[1]
    out = np.empty((X.shape[0], n_classes))
    for start in range(0, X.shape[0], block_rows):
        rows = slice(start, start + block_rows)
        out[rows] = ensemble_log_proba(
            unit_rows(X[rows], standardize), prototypes, scales
        )
    if n_classes == 2:
        return out[:, 1] - out[:, 0]
    return out


# ----------------------------------------------------------------- torch


def isomax_logits(X_unit, prototypes, scale):
    """IsoMax+ logits ``-|s| ||x - p_c / ||p_c|| ||`` (torch).

    The official ``IsoMaxPlusLossFirstPart.forward``: features and prototypes
    are L2-normalised (``F.normalize``) and the distance is computed directly
    (``torch.cdist`` without the matrix-product shortcut), so its gradient is
    exact near zero distance.

    Parameters
    ----------
    X_unit : Tensor (n, d)
        Rows of unit length (or zero), from :func:`unit_rows`.
    prototypes : Tensor (n_classes, d)
    scale : Tensor (1,)
        The distance scale ``s``.
    """
    from skhsfm._utils.torch import torch

    unit = torch.nn.functional.normalize(prototypes, dim=1, eps=_NORM_EPS)
    dist = torch.cdist(X_unit, unit, compute_mode="donot_use_mm_for_euclid_dist")
    return -scale.abs() * dist


def isomax_loss(logits, y, entropic_scale):
    """IsoMax+ loss: cross-entropy of ``entropic_scale * logits``, mean over rows.

    The official ``IsoMaxPlusLossSecondPart`` (softmax of ``-E * distances``,
    then ``-log`` at the target). Written with ``log_softmax``: the same value,
    without the ``log(0)`` the separate softmax reaches when a probability
    underflows.
    """
    from skhsfm._utils.torch import torch

    log_p = torch.log_softmax(entropic_scale * logits, dim=1)
    return -log_p.gather(1, y[:, None]).mean()


def prototype_penalty(prototypes, strength):
    """``strength`` times the mean squared norm of the raw prototypes (the
    official ``wd`` term, weight ``wd_weight``)."""
    return strength * prototypes.pow(2).sum(1).mean()


def diversity_loss(prototypes, previous):
    """The official inter-prototype covariance penalty (before its weight).

    For member ``m`` with prototypes ``p_c`` and the ``m`` earlier members'
    selected prototypes ``q_jc`` (all raw, not normalised)::

        | mean_c  sum_j <p_c, q_jc> / ((d - 1) (m + 1)) |

    Parameters
    ----------
    prototypes : Tensor (n_classes, d)
    previous : Tensor (n_classes, m, d)
        Earlier members' prototypes, class-major.
    """
    n_classes, m, d = previous.shape
    inner = (previous @ prototypes[:, :, None])[:, :, 0]  # (n_classes, m)
    return (inner.sum(1) / (max(d - 1, 1) * (m + 1))).mean().abs()


def diversity_schedule(strength, decay, n_members):
    """Weight of the diversity penalty for each member (0-based).

    The official ``cov_reg_scheduler_inv``: member 0 has no earlier member to
    differ from; member ``m >= 1`` gets ``strength / (1 + decay * (m - 1))``.
    """
    m = np.arange(n_members, dtype=np.float64)
    return strength / (1.0 + decay * np.maximum(m - 1.0, 0.0))


@dataclass(frozen=True)
class DPESettings:
    """The training settings of :func:`run_dpe` (the official defaults)."""

    n_members: int = 15
    n_epochs: int = 20
    learning_rate: float = 1e-3
    momentum: float = 0.9
    batch_size: int = 256
    entropic_scale: float = 30.0
    prototype_penalty: float = 10.0
    diversity_penalty: float = 5e4
    diversity_decay: float = 0.05


@dataclass(frozen=True)
class DPEResult:
    """What :func:`run_dpe` returns (numpy only).

    Attributes
    ----------
    prototypes : ndarray (n_members, n_classes, d), float64
        Each member's raw prototypes at its selected epoch.
    scales : ndarray (n_members,)
        Each member's distance scale at its selected epoch.
    best_epochs : ndarray of int (n_members,)
        Selected epoch of each member (0-based).
    loss, worst, mean : ndarray (n_members, n_epochs)
        Mean training loss over each epoch's batches; worst-stratum and mean
        accuracy on the selection rows after each epoch.
    subsample_size : int
        Rows per cell in each member's balanced subsample.
    """

    prototypes: np.ndarray
    scales: np.ndarray
    best_epochs: np.ndarray
    loss: np.ndarray
    worst: np.ndarray
    mean: np.ndarray
    subsample_size: int


def run_dpe(
    X_unit, y, cells, strata, n_classes, settings, random_state, *, device, log=None
):
    """Train a DPE ensemble on held-out rows.

    Member after member: draw a subsample of the rows balanced over ``cells``
    (every cell cut to the smallest), start from random prototypes, run
    ``n_epochs`` epochs of momentum SGD on shuffled batches of it (the last
    incomplete batch dropped) minimising the IsoMax+ loss, the prototype
    penalty and the diversity penalty against the members before it, and keep
    the epoch with the best worst-stratum accuracy on all rows (ties to the
    later epoch).

    Parameters
    ----------
    X_unit : ndarray of shape (n, d)
        Rows from :func:`unit_rows`.
    y : ndarray of int of shape (n,)
        Encoded classes ``0 .. n_classes - 1``.
    cells : ndarray of int of shape (n,)
        What the subsamples are balanced over (:func:`~skhsfm._pools.cell_labels`).
    strata : ndarray of int of shape (n,)
        Codes ``0 .. S - 1`` of the groups (or classes) whose worst accuracy
        selects each member's epoch.
    n_classes : int
    settings : DPESettings
    random_state : numpy RandomState
        Draws the subsamples, the initial prototypes and the batch order (so
        CPU and GPU fits see the same draws).
    device : str or torch.device
    log : callable or None, default=None
        Called with one line per member.

    Returns
    -------
    DPEResult
    """
    from skhsfm._meta import _threads_for
    from skhsfm._utils.torch import resolve_device, to_numpy, to_tensor, torch

    dev = resolve_device(device)
    n, d = X_unit.shape
    weights = diversity_schedule(
        settings.diversity_penalty, settings.diversity_decay, settings.n_members
    )
    members, history = [], []
    # Every step is one batch against n_classes prototypes: too small for
    # intra-op threads to pay (measured on a busy 2-core machine: 1.6 ms per
    # step with one thread, 35-55 ms with two), so CPU fits run on one thread.
    with _threads_for(dev, 0), torch.no_grad():
        data = _device_data(X_unit, y, strata, n_classes, dev)
        for m in range(settings.n_members):
            rows, size = balanced_subsample(cells, random_state)
            P0 = random_state.normal(0.0, _INIT_STD, size=(n_classes, d))
            order = _batch_order(rows, settings.batch_size, settings.n_epochs,
                                 random_state)  # fmt: skip
            previous = None
            if m > 0 and weights[m] > 0:
                previous = torch.stack([b[0] for b in members], dim=1)
            best, curves = _train_member(
                data, to_tensor(order, dev, torch.long), to_tensor(P0, dev),
                previous, float(weights[m]), settings,
            )  # fmt: skip
            members.append(best)
            history.append(curves)
            if log is not None:
                epoch = int(best[2]) + 1
                log(f"[DPE] member {m + 1}/{settings.n_members}: epoch {epoch}, "
                    f"selection worst-group accuracy {float(best[3]):.4f}")  # fmt: skip
        loss, worst, mean = (to_numpy(torch.stack(h)) for h in zip(*history))
        return DPEResult(
            prototypes=to_numpy(torch.stack([b[0] for b in members])).astype(
                np.float64
            ),
            scales=to_numpy(torch.cat([b[1] for b in members])).astype(np.float64),
            best_epochs=to_numpy(torch.stack([b[2] for b in members])).astype(int),
            loss=loss,
            worst=worst,
            mean=mean,
            subsample_size=size,
        )


@dataclass(frozen=True)
class _Data:
    """The held-out rows on the device: training and selection data at once.

    ``sq_norms`` holds each row's squared norm (1, or 0 for a zero row) and
    ``onehot`` its class as a one-hot row.
    """

    X: object
    y: object
    strata: object
    sizes: object
    sq_norms: object = None
    onehot: object = None


def _device_data(X_unit, y, strata, n_classes, dev):
    from skhsfm._utils.torch import to_tensor, torch

    X = to_tensor(X_unit, dev)
    y = to_tensor(y, dev, torch.long)
    return _Data(
        X=X,
        y=y,
        strata=to_tensor(strata, dev, torch.long),
        sizes=to_tensor(np.bincount(strata), dev, torch.float64),
        sq_norms=X.pow(2).sum(1),
        onehot=torch.nn.functional.one_hot(y, n_classes).to(X.dtype),
    )


def _batch_order(rows, batch_size, n_epochs, random_state):
    """Rows of each batch of each epoch, ``(n_epochs, n_batches, batch)``.

    Every epoch is a fresh shuffle of ``rows`` cut into full batches, the rest
    dropped (the official ``DataLoader(shuffle=True, drop_last=True)``). A
    subsample smaller than ``batch_size`` is one batch of all its rows.
    """
    batch = min(batch_size, rows.shape[0])
    n_batches = rows.shape[0] // batch
    order = np.stack([random_state.permutation(rows) for _ in range(n_epochs)])
    return order[:, : n_batches * batch].reshape(n_epochs, n_batches, batch)


def member_gradient(X, Y, sq_norms, P, s, diversity_direction, weight, settings):
    """One batch's training loss and its gradient in ``(P, s)``, in closed form.

    The loss is ``isomax_loss(isomax_logits(X, P, s), y, E) +
    prototype_penalty(P, w) + weight * diversity_loss(P, Q)``; this returns
    what autograd gives through those functions (checked in the tests), with
    a fifth of the operations.

    With ``u_c = p_c / ||p_c||``, ``D_ic = ||x_i - u_c|| = sqrt(|x_i|^2 + 1 -
    2 x_i.u_c)``, logits ``Z = -E |s| D`` and ``G = (softmax(Z) - Y) / B``
    (the gradient of the mean cross-entropy in ``Z``):

    - ``dL/d|s| = -E sum(G * D)``, and ``dL/ds = sign(s) dL/d|s|``;
    - ``dL/du_c = sum_i E |s| G_ic / D_ic x_i`` (through ``x.u``; the part
      along ``u_c`` from ``|u_c|^2`` is removed by the next step anyway);
    - ``dL/dp_c = (g - u_c (u_c.g)) / ||p_c||`` for ``g = dL/du_c`` (the
      Jacobian of the normalisation), plus ``2 w p_c / C`` (the penalty);
    - the diversity term is ``weight |sum_c p_c.r_c| / C`` with ``r_c =
      sum_j q_jc / ((d - 1)(m + 1))`` (``diversity_direction``), whose
      gradient is ``weight sign(.) r_c / C``.

    A zero distance gives a zero gradient (as ``cdist``'s backward does).

    Parameters
    ----------
    X : Tensor (B, d)
        Unit (or zero) rows of the batch.
    Y : Tensor (B, n_classes)
        Their one-hot classes.
    sq_norms : Tensor (B,)
        ``|x_i|^2`` (1, or 0 for a zero row).
    P : Tensor (n_classes, d)
    s : Tensor (1,)
    diversity_direction : Tensor (n_classes, d) or None
        ``r`` above; None without earlier members.
    weight : float
        Weight of the diversity term.
    settings : DPESettings

    Returns
    -------
    loss : Tensor (0-d)
    grad_P : Tensor (n_classes, d)
    grad_s : Tensor (1,)
    """
    from skhsfm._utils.torch import torch

    n_classes, E = P.shape[0], settings.entropic_scale
    norm = P.norm(dim=1, keepdim=True).clamp_min_(_NORM_EPS)
    U = P / norm
    sq = (X @ U.T).mul_(-2).add_(sq_norms[:, None]).add_(U.pow(2).sum(1))
    D = sq.clamp_min_(0).sqrt_()
    scale = s.abs()
    log_p = torch.log_softmax(D * (-E * scale), dim=1)
    G = log_p.exp().sub_(Y).div_(X.shape[0])
    grad_s = (G * D).sum().mul_(-E) * torch.sign(s)
    grad_U = (G * D.reciprocal().nan_to_num_(posinf=0.0)).T @ X
    grad_U *= E * scale
    grad_P = grad_U.sub_(U * (U * grad_U).sum(1, keepdim=True)).div_(norm)
    penalty = settings.prototype_penalty
    grad_P.add_(P, alpha=2.0 * penalty / n_classes)
    loss = -(log_p * Y).sum() / X.shape[0] + penalty * P.pow(2).sum(1).mean()
    if diversity_direction is not None:
        inner = (P * diversity_direction).sum() / n_classes
        grad_P.add_(diversity_direction * (torch.sign(inner) * (weight / n_classes)))
        loss = loss + weight * inner.abs()
    return loss, grad_P, grad_s


def _selection_scores(data, P, s):
    """Worst-stratum and mean accuracy of one member on all held-out rows."""
    from skhsfm._utils.torch import torch

    logits = _isomax_logits_mm(data.X, P, s)
    correct = (logits.argmax(1) == data.y).to(torch.float64)
    hits = torch.zeros_like(data.sizes).index_add_(0, data.strata, correct)
    return (hits / data.sizes).min(), correct.mean()


def _isomax_logits_mm(X_unit, prototypes, scale):
    """:func:`isomax_logits` through one matrix product (for evaluation only:
    the same argmax, without the direct distance's ``n x n_classes x d``
    work)."""
    from skhsfm._utils.torch import torch

    unit = torch.nn.functional.normalize(prototypes, dim=1, eps=_NORM_EPS)
    sq = X_unit.pow(2).sum(1, keepdim=True) + unit.pow(2).sum(1) - 2 * X_unit @ unit.T
    return -scale.abs() * sq.clamp_min(0).sqrt()


def _train_member(data, order, P0, previous, weight, settings):
    """One member: momentum SGD over ``order``'s batches, selected per epoch.

    ``previous`` holds the earlier members' prototypes ``(n_classes, m, d)``
    (None for none). Returns ``(best, curves)``: ``best = (P, s, epoch,
    worst)`` at the last epoch with the best worst-stratum accuracy,
    ``curves = (loss, worst, mean)`` per epoch.
    """
    from skhsfm._utils.torch import torch

    P, s = P0.clone(), torch.ones(1, dtype=P0.dtype, device=P0.device)
    direction = None
    if previous is not None:
        m, d = previous.shape[1:]
        direction = previous.sum(1) / (max(d - 1, 1) * (m + 1))
    velocity = None
    best_P, best_s = P.clone(), s.clone()
    best_worst = torch.zeros((), dtype=torch.float64, device=P.device)
    best_epoch = torch.zeros((), dtype=torch.long, device=P.device)
    curves = torch.empty((3, order.shape[0]), dtype=torch.float64, device=P.device)
    for epoch in range(order.shape[0]):
        rows = order[epoch]
        X, Y, sq = data.X[rows], data.onehot[rows], data.sq_norms[rows]
        epoch_loss = torch.zeros((), dtype=torch.float64, device=P.device)
        for k in range(rows.shape[0]):
            loss, grad_P, grad_s = member_gradient(
                X[k], Y[k], sq[k], P, s, direction, weight, settings
            )
            # torch.optim.SGD(momentum=0.9): the first step's buffer is the gradient
            if velocity is None:
                velocity = [grad_P, grad_s]
            else:
                velocity[0].mul_(settings.momentum).add_(grad_P)
                velocity[1].mul_(settings.momentum).add_(grad_s)
            P = P - settings.learning_rate * velocity[0]
            s = s - settings.learning_rate * velocity[1]
            epoch_loss += loss
        worst, mean = _selection_scores(data, P, s)
        better = worst >= best_worst  # official: ties go to the later epoch
        best_P = torch.where(better, P, best_P)
        best_s = torch.where(better, s, best_s)
        best_epoch = torch.where(better, epoch, best_epoch)
        best_worst = torch.maximum(worst, best_worst)
        curves[:, epoch] = torch.stack(
            [epoch_loss / max(order.shape[1], 1), worst, mean]
        )
    return (best_P, best_s, best_epoch, best_worst), tuple(curves)
