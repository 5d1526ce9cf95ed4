"""The HSFM bilevel loop as small pure torch functions.

Notation (the paper's): a linear head ``theta = (W, b)`` with ``W`` of shape
``(n_classes, d)``; support embeddings ``H`` of shape ``(n_support, d)`` with
one-hot labels ``Y``; a hard set ``(X_hard, y_hard)``.

The inner adaptation is ``T`` plain gradient-descent steps of size ``alpha`` on
the mean cross-entropy of the head over ``(H, Y)``. The outer objective is the
cross-entropy of the adapted head on the hard set, differentiated with respect
to ``H`` through the whole unrolled inner loop.

For a linear softmax head every inner gradient has a closed form, so
:func:`hypergradient` runs the unrolled loop forward with those formulas and
then walks it backwards by hand (reverse-mode differentiation written out).
That gives exactly the gradient autograd would compute through a
``create_graph=True`` loop (:func:`hypergradient_autograd`, the straightforward
reference kept for tests and benchmarks) with a fraction of the operations and
no double-backward graph.
"""

import contextlib
import time
from dataclasses import dataclass
from numbers import Integral

import numpy as np
import torch

from skhsfm._utils.torch import to_tensor

__all__ = [
    "select_hard_set",
    "hypergradient",
    "hypergradient_autograd",
    "clip_norm_",
    "Adam",
    "head_gradient",
    "run_hsfm",
    "LoopSettings",
    "MetaResult",
]


def _logits(X, W, b):
    return torch.addmm(b, X, W.T)


def select_hard_set(logits, y, hard_size, n_classes, strata=None):
    """The highest-loss rows of each class (or of each stratum).

    Parameters
    ----------
    logits : Tensor (n, C)
        The current head's logits on the hard pool (computed once per epoch and
        shared with the epoch's scoring).
    y : LongTensor (n,)
    hard_size : int or float
        Rows taken per class (stratum): an int is a count, a float in (0, 1] the
        share of that class's (stratum's) rows, rounded up.
    n_classes : int
    strata : LongTensor (n,) or None, default=None
        Codes 0..S-1 of the strata to pick from (e.g. groups); None picks per
        class, as the paper does.

    A class (stratum) with fewer rows than asked contributes all of them. Ties
    are broken by row order, so the selection is deterministic.

    Returns
    -------
    indices : LongTensor
        Rows of the hard set, grouped by class (stratum).
    weights : Tensor or None
        None when picking per class (the outer loss is the plain mean over the
        hard set, the paper's objective). With ``strata``: per-row weights
        summing to 1 that give every stratum the same total weight, so that the
        outer loss is the mean over strata of each stratum's mean loss.
    """
    codes = y if strata is None else strata
    n_strata = n_classes if strata is None else int(strata.max()) + 1
    with torch.no_grad():
        losses = -torch.log_softmax(logits, dim=1).gather(1, y[:, None]).squeeze(1)
    picked = []
    for k in range(n_strata):
        members = torch.nonzero(codes == k).squeeze(1)
        if members.numel() == 0:
            continue
        if isinstance(hard_size, Integral):
            m = min(int(hard_size), members.numel())
        else:
            m = max(1, int(np.ceil(hard_size * members.numel())))
        # stable descending sort: equal losses keep their row order
        order = torch.sort(losses[members], descending=True, stable=True).indices
        picked.append(members[order[:m]])
    indices = torch.cat(picked)
    if strata is None:
        return indices, None
    weights = torch.cat(
        [torch.full((len(p),), 1.0 / (len(p) * len(picked))) for p in picked]
    ).to(device=logits.device, dtype=logits.dtype)
    return indices, weights


def head_gradient(H, Y, W, b):
    """Mean cross-entropy of the head on ``(H, Y)`` and its gradient.

    Parameters
    ----------
    H : Tensor (n, d); Y : one-hot Tensor (n, C); W : (C, d); b : (C,).

    Returns
    -------
    loss : 0-d Tensor; grad_W : (C, d); grad_b : (C,).
    """
    Z = _logits(H, W, b)
    P = torch.softmax(Z, dim=1)
    loss = -(torch.log_softmax(Z, dim=1) * Y).sum() / H.shape[0]
    G = (P - Y) / H.shape[0]
    return loss, G.T @ H, G.sum(0)


def hypergradient(H, Y, W0, b0, X_hard, Y_hard, lr, steps, method="auto", weights=None):
    """Outer loss and its gradient with respect to the support embeddings ``H``.

    Parameters
    ----------
    H : Tensor (n_support, d)
        Current support embeddings.
    Y : Tensor (n_support, C)
        One-hot support labels.
    W0, b0 : Tensors (C, d) and (C,)
        The head the inner loop starts from.
    X_hard : Tensor (n_hard, d)
    Y_hard : Tensor (n_hard, C)
        The hard set and its one-hot labels.
    lr : float
        Inner step size (alpha).
    steps : int
        Number of inner gradient-descent steps (T).
    method : {"auto", "primal", "gram"}, default="auto"
        How the inner loop is run; both give the same result. "primal" updates
        ``W`` itself (two passes over ``H`` per step and direction), "gram"
        works with ``H @ H.T`` and never forms the intermediate heads (cheap per
        step, one ``n_support**2 * d`` product up front). "auto" picks "gram"
        when ``n_support * (d + 4 T C) <= 16 T C d``, where it measured faster.
    weights : Tensor (n_hard,) or None, default=None
        Per-row weights of the outer loss, summing to 1 (see
        :func:`select_hard_set`); None is the plain mean (the paper's).

    Returns
    -------
    loss : float
        Mean cross-entropy of the adapted head on the hard set.
    grad_H : Tensor (n_support, d)

    Notes
    -----
    Write ``G_t = (softmax(Z_t) - Y) / n`` for the inner loss gradient at the
    logits, ``A_t = G_0 + ... + G_{t-1}``, so that ``W_t = W0 - lr A_t^T H``, and
    ``dZ_t`` for the gradient of the outer loss at ``Z_t``, with
    ``B_t = dZ_t + ... + dZ_{T-1}``. Reverse-mode differentiation through the
    unrolled loop gives

        grad_H = -lr A_T gW_T + B_0 W0 - lr U (V^T H),

    with ``gW_T`` the outer gradient at the adapted head,
    ``U = [G_0 .. G_{T-1}, dZ_0 .. dZ_{T-1}]`` and
    ``V = [B_1 .. B_T, A_0 .. A_{T-1}]``: the contributions of all steps are
    gathered into one product with ``H`` instead of one ``(n, d)`` update per
    step.
    """
    n, n_classes = Y.shape
    if method == "auto":
        d, tc = H.shape[1], steps * n_classes
        # flops: gram n^2 d + 4 T C n^2, primal 8 T C n d; the one large product
        # of gram runs about twice as efficiently as primal's small ones
        # (measured on CPU for n 64-2048, d 128-2048)
        method = "gram" if n * (d + 4 * tc) <= 16 * tc * d else "primal"
    with torch.no_grad():
        if method == "gram":
            K = H @ H.T
            Z0 = _logits(H, W0, b0)
        A = torch.zeros_like(Y)
        As, Gs, Ps = [], [], []
        W, b = W0, b0
        for _ in range(steps):
            if method == "gram":
                # Z_t = H W_t^T + b_t with W_t = W0 - lr A_t^T H, b_t = b0 - lr 1^T A_t
                Z = Z0 - lr * (K @ A + A.sum(0))
            else:
                Z = _logits(H, W, b)
            P = torch.softmax(Z, dim=1)
            G = (P - Y) / n
            As.append(A)
            Gs.append(G)
            Ps.append(P)
            A = A + G
            if method == "primal":
                W = W - lr * (G.T @ H)
                b = b - lr * G.sum(0)
        if method == "gram":
            W = W0 - lr * (A.T @ H)
            b = b0 - lr * A.sum(0)
        Zh = _logits(X_hard, W, b)
        if weights is None:
            loss = -(torch.log_softmax(Zh, dim=1) * Y_hard).sum() / X_hard.shape[0]
            Gh = (torch.softmax(Zh, dim=1) - Y_hard) / X_hard.shape[0]
        else:
            loss = -((torch.log_softmax(Zh, dim=1) * Y_hard).sum(1) @ weights)
            Gh = (torch.softmax(Zh, dim=1) - Y_hard) * weights[:, None]
        gW_T = Gh.T @ X_hard
        gW, gb = gW_T, Gh.sum(0)
        if method == "gram":
            HgW_T = H @ gW_T.T
        B = torch.zeros_like(Y)
        Bs, dZs = [], []
        for t in reversed(range(steps)):
            # H gW_{t+1}^T, the outer gradient at W_{t+1} seen from the support set
            HgW = HgW_T + K @ B if method == "gram" else H @ gW.T
            dP = -lr * (HgW + gb) / n
            P = Ps[t]
            dZ = P * (dP - (dP * P).sum(1, keepdim=True))
            Bs.append(B)
            dZs.append(dZ)
            B = B + dZ
            gb = gb + dZ.sum(0)
            if method == "primal" and t > 0:
                gW = gW + dZ.T @ H
        U = torch.cat(Gs + dZs[::-1], dim=1)
        V = torch.cat(Bs[::-1] + As, dim=1)
        grad_H = -lr * (A @ gW_T) + B @ W0 - lr * (U @ (V.T @ H))
    return float(loss), grad_H


def hypergradient_autograd(H, Y, W0, b0, X_hard, Y_hard, lr, steps, weights=None):
    """Reference implementation of :func:`hypergradient` with plain autograd.

    The straightforward way: unroll the inner loop with
    ``torch.autograd.grad(..., create_graph=True)`` and back-propagate the hard-set
    loss to ``H``. Kept for tests (both must agree) and for the speed benchmark.
    """
    H = H.detach().requires_grad_(True)
    W = W0.detach().clone().requires_grad_(True)
    b = b0.detach().clone().requires_grad_(True)
    labels = Y.argmax(1)
    for _ in range(steps):
        inner = torch.nn.functional.cross_entropy(_logits(H, W, b), labels)
        gW, gb = torch.autograd.grad(inner, (W, b), create_graph=True)
        W = W - lr * gW
        b = b - lr * gb
    if weights is None:
        outer = torch.nn.functional.cross_entropy(
            _logits(X_hard, W, b), Y_hard.argmax(1)
        )
    else:
        per_row = torch.nn.functional.cross_entropy(
            _logits(X_hard, W, b), Y_hard.argmax(1), reduction="none"
        )
        outer = per_row @ weights
    (grad_H,) = torch.autograd.grad(outer, H)
    return float(outer.detach()), grad_H


def clip_norm_(grad, max_norm):
    """Scale ``grad`` in place so that its Frobenius norm is at most ``max_norm``."""
    norm = torch.linalg.vector_norm(grad)
    if norm > max_norm:
        grad.mul_(max_norm / (norm + 1e-6))
    return grad


class Adam:
    """Adam (Kingma & Ba) over a list of tensors, updated in place.

    A few lines instead of ``torch.optim.Adam`` so the meta-loop can hand it
    closed-form gradients without ``.grad`` bookkeeping; same update rule as
    torch's default (no weight decay, no amsgrad).
    """

    def __init__(self, params, lr, betas=(0.9, 0.999), eps=1e-8):
        self.params = list(params)
        self.lr, self.betas, self.eps = lr, betas, eps
        self.m = [torch.zeros_like(p) for p in self.params]
        self.v = [torch.zeros_like(p) for p in self.params]
        self.t = 0

    @torch.no_grad()
    def step(self, grads):
        self.t += 1
        beta1, beta2 = self.betas
        bias1 = 1 - beta1**self.t
        bias2 = 1 - beta2**self.t
        for p, g, m, v in zip(self.params, grads, self.m, self.v):
            m.mul_(beta1).add_(g, alpha=1 - beta1)
            v.mul_(beta2).addcmul_(g, g, value=1 - beta2)
            denom = (v / bias2).sqrt_().add_(self.eps)
            p.addcdiv_(m, denom, value=-self.lr / bias1)


@dataclass(frozen=True)
class LoopSettings:
    """The hyperparameters of the epoch loop (see :class:`~skhsfm.HSFMClassifier`).

    ``head_update="adam"`` with ``n_iter_no_change=None`` and hard sets picked
    per class is the paper's loop.
    """

    n_epochs: int
    hard_size: object  # int (rows) or float (share of each class / stratum)
    outer_steps: int
    outer_lr: float
    inner_steps: int
    inner_lr: float
    max_grad_norm: float
    head_update: str = "adam"
    n_iter_no_change: object = None  # None or int


@dataclass
class MetaResult:
    """What one HSFM run returns: the selected head and support set (numpy),
    the selected epoch, its score, the epochs run and the per-epoch history."""

    W: np.ndarray
    b: np.ndarray
    H: np.ndarray
    hard_set: np.ndarray
    best_epoch: int
    best_score: float
    n_epochs: int
    history: dict


def run_hsfm(
    H0,
    y_support,
    W0,
    b0,
    X_hard,
    y_hard,
    *,
    settings,
    score,
    hard_strata=None,
    hard_rows=None,
    select_rows=None,
    feature_scale=1.0,
    device,
    log=None,
):
    """The HSFM epoch loop.

    Parameters
    ----------
    H0 : ndarray (n_support, d)
        Initial support embeddings.
    y_support : ndarray of int (n_support,)
        Encoded support labels.
    W0, b0 : ndarray (C, d), (C,)
        Initial head.
    X_hard : ndarray (n_held_out, d)
    y_hard : ndarray of int (n_held_out,)
        Held-out rows: the hard pool, and the rows that select the epoch.
    settings : LoopSettings
    score : callable
        ``score(pred) -> (selection_score, mean_accuracy)`` for encoded hard-pool
        predictions (numpy). The epoch with the highest selection score is kept,
        ties going to the later epoch.
    hard_strata : ndarray of int (n_held_out,) or None, default=None
        Codes of the strata (groups) to pick the hard set from, each weighted
        equally in the outer loss; None picks per class (the paper).
    hard_rows : ndarray of int or None, default=None
        Positions in ``X_hard`` of the hard pool, the rows hard sets come from
        (the indices of the returned hard set count in them); None: every row.
    select_rows : ndarray of int or None, default=None
        Positions in ``X_hard`` of the rows that select the epoch, kept out of
        ``hard_rows``; ``score`` then gets predictions on them, and the
        initial head competes as epoch 0. None selects on the hard pool (the
        paper). Both are gathered on the device: no host copy of ``X_hard``.
    feature_scale : float, default=1.0
        The loop runs on ``feature_scale * H0`` and ``feature_scale * X_hard``
        (scaled on the device, without a float64 host copy); the returned
        ``H`` is on that scale too.
    device : torch.device
    log : callable or None
        Called with one line of text per epoch.

    Returns
    -------
    MetaResult
    """
    n_classes = W0.shape[0]
    with _threads_for(device, H0.shape[0] * H0.shape[1]):

        def tensor(a, dtype=torch.float32):
            return to_tensor(a, device, dtype)

        # out of place: to_tensor may share memory with the caller's arrays
        H = tensor(H0) * feature_scale
        Y = torch.nn.functional.one_hot(
            tensor(y_support, torch.long), n_classes
        ).float()
        W, b = tensor(W0).clone(), tensor(b0).clone()
        held_out = tensor(X_hard)  # may share memory with X_hard: not in place
        Xh = _scaled_rows(held_out, hard_rows, feature_scale)
        Xs = None
        if select_rows is not None:
            Xs = _scaled_rows(held_out, select_rows, feature_scale)
        del held_out
        if hard_rows is not None:
            y_hard = y_hard[hard_rows]
            hard_strata = None if hard_strata is None else hard_strata[hard_rows]
        yh = tensor(y_hard, torch.long)
        Yh = torch.nn.functional.one_hot(yh, n_classes).float()
        strata = None if hard_strata is None else tensor(hard_strata, torch.long)

        support_opt = Adam([H], lr=settings.outer_lr)
        head_opt = Adam([W, b], lr=settings.inner_lr)
        keys = ("epoch", "loss", "worst_group_accuracy", "mean_accuracy", "seconds")
        history = {key: [] for key in keys}
        best, stale = None, 0
        with torch.no_grad():
            logits = _logits(Xh, W, b)
            if Xs is not None:
                # the initial head is a candidate too: training must beat it
                pred = _logits(Xs, W, b).argmax(1).cpu().numpy()
                best = (0, score(pred)[0], W0, b0, H0, np.zeros(0, dtype=np.int64))
        for epoch in range(1, settings.n_epochs + 1):
            start = time.perf_counter()
            hard, outer_loss = _epoch(
                H, Y, W, b, Xh, yh, Yh, strata, logits, support_opt, head_opt,
                settings,
            )  # fmt: skip
            with torch.no_grad():
                # the new head's logits: scored now, and pick the next hard set
                logits = _logits(Xh, W, b)
                scored = logits if Xs is None else _logits(Xs, W, b)
                pred = scored.argmax(1).cpu().numpy()
            selection, accuracy = score(pred)
            seconds = time.perf_counter() - start
            for key, value in zip(
                keys, (epoch, outer_loss, selection, accuracy, seconds)
            ):
                history[key].append(value)
            stale = 0 if best is None or selection > best[1] else stale + 1
            if best is None or selection >= best[1]:
                best = (
                    epoch,
                    selection,
                    W.cpu().numpy().copy(),
                    b.cpu().numpy().copy(),
                    H.cpu().numpy().copy(),
                    hard.cpu().numpy().copy(),
                )
            if log is not None:
                log(
                    f"epoch {epoch:3d}/{settings.n_epochs}  outer loss "
                    f"{outer_loss:.4f}  hard-pool worst-group acc {selection:.4f}  "
                    f"mean acc {accuracy:.4f}  ({seconds:.2f}s)"
                )
            patience = settings.n_iter_no_change
            if patience is not None and stale >= patience:
                break
        best_epoch, selection, W_best, b_best, H_best, hard_best = best
        if best_epoch == 0:  # numpy inputs, and H on the loop's scale
            H_best = np.asarray(H0, dtype=np.float64) * feature_scale
        return MetaResult(
            np.asarray(W_best, dtype=np.float64),
            np.asarray(b_best, dtype=np.float64),
            np.asarray(H_best, dtype=np.float64),
            hard_best,
            best_epoch,
            selection,
            epoch,
            {key: np.asarray(values) for key, values in history.items()},
        )


def _scaled_rows(X, positions, scale):
    """``scale * X[positions]`` (all rows for None) as a new tensor, gathered
    and scaled on ``X``'s device: one copy, and ``X`` itself left untouched."""
    if positions is None:
        return X * scale
    return X[torch.as_tensor(positions, dtype=torch.long, device=X.device)].mul_(scale)


def _epoch(H, Y, W, b, Xh, yh, Yh, strata, logits, support_opt, head_opt, settings):
    """One HSFM epoch, updating ``H`` and the head ``(W, b)`` in place.

    Steps 1-3 of the algorithm: pick the hard set with the current head, meta-
    update the support embeddings ``outer_steps`` times, then train the head on
    them: ``inner_steps`` Adam steps (``head_update="adam"``, the paper) or the
    same ``inner_steps`` gradient-descent steps of size ``inner_lr`` that the
    hypergradient differentiates (``"gd"``). Returns the hard set's indices and
    the mean outer loss.
    """
    s = settings
    hard, weights = select_hard_set(logits, yh, s.hard_size, Y.shape[1], strata)
    X_set, Y_set = Xh[hard], Yh[hard]
    losses = []
    for _ in range(s.outer_steps):
        loss, grad_H = hypergradient(
            H, Y, W, b, X_set, Y_set, s.inner_lr, s.inner_steps, weights=weights
        )
        support_opt.step([clip_norm_(grad_H, s.max_grad_norm)])
        losses.append(loss)
    for _ in range(s.inner_steps):
        _, grad_W, grad_b = head_gradient(H, Y, W, b)
        if s.head_update == "gd":
            W.sub_(grad_W, alpha=s.inner_lr)
            b.sub_(grad_b, alpha=s.inner_lr)
        else:
            head_opt.step([grad_W, grad_b])
    return hard, (sum(losses) / len(losses) if losses else float("nan"))


# Below this many support-set entries (n_support * d) the inner-loop matrices are
# so small that extra intra-op threads cost more in synchronisation than they
# save (measured: a 32x2048 support set ran 3x slower with 2 threads than with 1
# on a busy 2-core machine), so the loop runs single-threaded.
_SMALL_SUPPORT = 2**18


@contextlib.contextmanager
def _threads_for(device, support_entries):
    """Run small CPU problems with one torch thread, restoring the setting after."""
    if device.type != "cpu" or support_entries >= _SMALL_SUPPORT:
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)
