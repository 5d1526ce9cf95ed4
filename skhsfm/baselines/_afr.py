"""AFRClassifier: Automatic Feature Reweighting of an ERM linear head."""

import warnings
from numbers import Integral, Real

import numpy as np

from skhsfm._base import InitializedHead, fill_doc
from skhsfm._linear import softmax_head_proba, to_sklearn_head
from skhsfm._pools import holdout_split, read_pools
from skhsfm._sklearn_compat import Interval
from skhsfm._validation import check_grid

__all__ = ["AFRClassifier"]


def _afr_weights(p_true, y, gamma):
    """AFR's per-example weights (eq. 2 of Qiu et al., 2023).

    ``w_i = beta_{y_i} * exp(-gamma * p_i)``, normalised to sum to one, where
    ``p_i`` is the ERM head's probability of the true class and
    ``beta_c = n / n_c`` is the inverse frequency of class ``c`` (the paper's
    class-balancing term, as in the authors' ``rebalance_weights``).

    Parameters
    ----------
    p_true : ndarray of shape (n,)
        Probability the initial head gives to each example's true class.
    y : ndarray of int of shape (n,)
        Encoded class of each example.
    gamma : float
        Temperature: 0 gives class-balanced uniform weights; larger values put
        more weight on examples the ERM head gets wrong.

    Returns
    -------
    weights : ndarray of shape (n,)
        Non-negative, summing to one.
    """
    p_true = np.asarray(p_true, dtype=np.float64)
    counts = np.bincount(y)
    weights = np.exp(-gamma * p_true) * (y.shape[0] / counts[y])
    return weights / weights.sum()


@fill_doc
class AFRClassifier(InitializedHead):
    """Automatic Feature Reweighting: retrain an ERM head on held-out data,
    up-weighting the examples it gets wrong (Qiu et al., 2023).

    No group labels are needed for training. Starting from an ERM head
    ``theta_ERM``, each held-out example gets the weight
    ``w_i ∝ beta_{y_i} exp(-gamma p_i)``, with ``p_i`` the ERM head's softmax
    probability of the true class and ``beta`` the inverse class frequency;
    the head then minimises ``sum_i w_i CE_i + lambda ||theta - theta_ERM||^2``
    by full-batch gradient descent (gradient norm clipped at
    ``max_grad_norm``). The epoch, and ``gamma`` and ``lambda`` when given
    as grids, are selected by worst-group accuracy on a separate selection
    split (worst-class accuracy without group labels).

    Parameters
    ----------
    gamma : float or sequence of float, default=(0.5, 1, 2, 4, 8, 12, 16, 20)
        Weight temperature(s) γ (>= 0); a sequence is searched.
    reg_lambda : float or sequence of float, default=(0, 0.01, 0.1, 0.2, 0.5)
        Strength(s) λ (>= 0) of the pull towards the ERM head; a sequence is
        searched. Every (γ, λ) pair is trained (in one batched run).
    n_epochs : int, default=500
        Full-batch gradient steps (the paper's Waterbirds setting).
    learning_rate : float, default=0.02
        Step size of the gradient descent (the paper's Waterbirds setting).
    max_grad_norm : float or None, default=1.0
        Clip each head's gradient to this norm before a step; None disables.
    selection_fraction : float in (0, 1), default=0.5
        Fraction of the hard pool (stratified by group, else class) kept to
        select the epoch, γ and λ; the rest is reweighted and trained on.
    {validation_fraction}
    {init_coef}
    {init_intercept}
    {erm_C}
    {max_samples}
    {rescale}
    {device}
    random_state : int, RandomState instance or None, default=None
        Seeds the hold-out and the reweighting/selection split (training
        itself is deterministic full-batch descent).
    verbose : int, default=0
        Print progress every 50 epochs when > 0.

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        Class labels.
    coef_ : ndarray of shape (1, n_features) or (n_classes, n_features)
        Head weights at the selected epoch (one row for two classes).
    {fitted_features}
    init_coef_, init_intercept_ : ndarray
        The ERM head AFR started from (sklearn convention).
    best_gamma_ : float
        Selected γ.
    best_lambda_ : float
        Selected λ.
    best_epoch_ : int
        Selected epoch (1-based).
    best_score_ : float
        Selection worst-group (or worst-class) accuracy at the selected point.
    grid_scores_ : ndarray of shape (n_gamma, n_lambda)
        Best selection worst-group (or worst-class) accuracy of every (γ, λ).
    history_ : dict of ndarray
        Per epoch for the selected (γ, λ): ``"epoch"``, ``"loss"`` (weighted
        cross-entropy plus penalty before the step), ``"worst_group_accuracy"``
        (worst-class without groups) and ``"mean_accuracy"`` on the selection
        split.
    n_iter_ : int
        Epochs run.
    reweight_indices_ : ndarray of int
        Rows of the hard pool that were reweighted and trained on.
    selection_indices_ : ndarray of int
        Rows of the hard pool used for selection.
    hard_pool_indices_ : ndarray of int or None
        Rows of ``X`` held out as the hard pool, or None when ``X_val`` was
        given.
    scale_ : float
        The scalar ``X`` was multiplied by for the initial head and the
        reweighted training (1.0 with ``rescale=False``); ``learning_rate``,
        ``reg_lambda`` and ``max_grad_norm`` act in that space.

    See Also
    --------
    DFRClassifier : Group-balanced last-layer retraining (needs group labels).
    ERMHeadClassifier : The plain logistic-regression head.
    skhsfm.HSFMClassifier : Hard-set-guided feature-space meta-learning.

    Notes
    -----
    The paper trains the ERM model on one part of the training data, reweights
    and retrains the last layer on the other part (so that ``p_i`` comes from
    examples the ERM head has not fit), and selects the epoch and (γ, λ) on
    the validation set. Here the ERM head is fit on the support pool ``X``;
    the hard pool (``X_val``, or a hold-out of ``X``) is split once: a
    ``1 - selection_fraction`` part is reweighted and trained on, the rest
    selects. Keeping the two apart keeps the selection honest: an epoch chosen
    on the very examples being fit would favour overfitting them.

    A dask array or numpy memmap ``X`` (and ``X_val``) is read only where
    rows are needed: the initial head's rows (``max_samples``) and the hard
    pool, in one pass.

    The defaults ``learning_rate=0.02`` and ``n_epochs=500`` are the paper's
    Waterbirds settings. Plain gradient descent on uncentred (e.g. post-ReLU)
    embeddings can be slow: when ``best_epoch_`` is close to ``n_epochs``,
    raise ``n_epochs`` or ``learning_rate`` (on the dominoes benchmark
    ``learning_rate=0.1, n_epochs=2000`` selected clearly better).

    The paper's code multiplies the weights by the inverse class frequency
    ``n / n_c`` (``rebalance_weights``); that is what ``_afr_weights`` does,
    so classes are balanced in count, not in total weight.

    References
    ----------
    S. Qiu, A. Potapczynski, P. Izmailov and A. G. Wilson. "Simple and Fast
    Group Robustness by Automatic Feature Reweighting", ICML 2023
    (arXiv:2306.11074).

    Examples
    --------
    >>> import numpy as np
    >>> from skhsfm.baselines import AFRClassifier
    >>> rng = np.random.RandomState(0)
    >>> X = rng.normal(size=(200, 4)); y = (X[:, 0] > 0).astype(int)
    >>> afr = AFRClassifier(gamma=4.0, reg_lambda=0.0, n_epochs=20,
    ...                     device="cpu", random_state=0).fit(X, y)
    >>> afr.score(X, y) > 0.9
    True
    """

    _parameter_constraints: dict = {
        **InitializedHead._parameter_constraints,
        "gamma": [Interval(Real, 0, None, closed="left"), "array-like"],
        "reg_lambda": [Interval(Real, 0, None, closed="left"), "array-like"],
        "n_epochs": [Interval(Integral, 1, None, closed="left")],
        "learning_rate": [Interval(Real, 0, None, closed="neither")],
        "max_grad_norm": [Interval(Real, 0, None, closed="neither"), None],
        "selection_fraction": [Interval(Real, 0, 1, closed="neither")],
    }

    def __init__(
        self,
        gamma=(0.5, 1.0, 2.0, 4.0, 8.0, 12.0, 16.0, 20.0),
        reg_lambda=(0.0, 0.01, 0.1, 0.2, 0.5),
        *,
        n_epochs=500,
        learning_rate=0.02,
        max_grad_norm=1.0,
        selection_fraction=0.5,
        validation_fraction=0.2,
        init_coef=None,
        init_intercept=None,
        erm_C=1.0,
        max_samples="auto",
        rescale=True,
        device="auto",
        random_state=None,
        verbose=0,
    ):
        self.gamma = gamma
        self.reg_lambda = reg_lambda
        self.n_epochs = n_epochs
        self.learning_rate = learning_rate
        self.max_grad_norm = max_grad_norm
        self.selection_fraction = selection_fraction
        self.validation_fraction = validation_fraction
        self.init_coef = init_coef
        self.init_intercept = init_intercept
        self.erm_C = erm_C
        self.max_samples = max_samples
        self.rescale = rescale
        self.device = device
        self.random_state = random_state
        self.verbose = verbose

    def _check_params(self):
        super()._check_params()
        check_grid(self.gamma, "gamma")
        check_grid(self.reg_lambda, "reg_lambda")

    def _fit(self, X, y, groups, X_val, y_val, groups_val):
        gammas = check_grid(self.gamma, "gamma")
        lambdas = check_grid(self.reg_lambda, "reg_lambda")
        pools, rng = self._pools(X, y, groups, X_val, y_val, groups_val)
        # the support pool only feeds the initial head and the scale; a lazy X
        # is read once
        if self.init_coef is None or self.rescale:
            fit_rows = self._initial_rows(pools, rng)
        else:
            fit_rows = np.zeros(0, dtype=int)
        (X_fit,), X_hard = read_pools(pools, fit_rows)
        y_fit = pools.y if fit_rows is None else pools.y[fit_rows]
        scale = self._feature_scale(X_fit)
        W0, b0 = self._initial_head(X_fit, y_fit, feature_scale=scale)
        del X_fit
        reweight, select = holdout_split(
            pools.y_hard, pools.groups_hard, self.selection_fraction, rng
        )
        if select.shape[0] == 0:
            warnings.warn(
                "AFR selects on a part of the hard pool, but no class or group has "
                "two held-out samples to split; reweighting and selecting on the "
                "whole hard pool instead (optimistic). Pass more held-out data "
                "(X_val or a larger validation_fraction).",
                UserWarning,
            )
            reweight = select = np.arange(pools.y_hard.shape[0])
        # the grid trains and selects on the rescaled hard pool too
        X_rw, y_rw = _scaled_rows(X_hard, reweight, scale), pools.y_hard[reweight]
        p_true = _true_class_proba(X_rw, y_rw, W0, b0)
        weights = np.stack([_afr_weights(p_true, y_rw, g) for g in gammas])
        strata = pools.y_hard if pools.groups_hard is None else pools.groups_hard
        result = _train_grid(
            X_rw,
            y_rw,
            weights,
            lambdas,
            W0,
            b0,
            _scaled_rows(X_hard, select, scale),
            pools.y_hard[select],
            np.unique(strata[select], return_inverse=True)[1],
            n_epochs=self.n_epochs,
            learning_rate=self.learning_rate,
            max_grad_norm=self.max_grad_norm,
            device=self.device,
            verbose=self.verbose,
        )
        g, lam, epoch = result["best"]
        self.coef_, self.intercept_ = to_sklearn_head(result["W"] * scale, result["b"])
        self.init_coef_, self.init_intercept_ = to_sklearn_head(W0 * scale, b0)
        self.scale_ = scale
        self.best_gamma_ = gammas[g]
        self.best_lambda_ = lambdas[lam]
        self.best_epoch_ = epoch + 1
        self.best_score_ = float(result["worst"][g, lam, epoch])
        self.grid_scores_ = result["worst"].max(axis=2)
        self.history_ = dict(
            epoch=np.arange(1, self.n_epochs + 1),
            loss=result["loss"][g, lam],
            worst_group_accuracy=result["worst"][g, lam],
            mean_accuracy=result["mean"][g, lam],
        )
        self.n_iter_ = self.n_epochs
        self.reweight_indices_ = reweight
        self.selection_indices_ = select
        self.hard_pool_indices_ = pools.hard_index


def _scaled_rows(X, rows, scale):
    """``scale * X[rows]`` in ``X``'s dtype: the rows are gathered (a copy) and
    scaled in place, so rescaling costs no memory beyond the gathered rows."""
    out = X[rows]
    if scale != 1.0:
        out *= np.asarray(scale, dtype=out.dtype)
    return out


def _true_class_proba(X, y, W, b, block=1024):
    """The head's probability of each row's true class, in row blocks (the
    float64 scores of a block at a time, not of all of ``X``)."""
    p_true = np.empty(X.shape[0])
    for start in range(0, X.shape[0], block):
        rows = slice(start, start + block)
        proba = softmax_head_proba(X[rows], W, b)
        p_true[rows] = proba[np.arange(proba.shape[0]), y[rows]]
    return p_true


def _train_grid(
    X,
    y,
    weights,
    lambdas,
    W0,
    b0,
    X_sel,
    y_sel,
    strata_sel,
    *,
    n_epochs,
    learning_rate,
    max_grad_norm,
    device,
    verbose,
):
    """Train one head per (γ, λ) pair at once by full-batch gradient descent.

    Parameters
    ----------
    X, y : reweighting data (encoded labels).
    weights : ndarray of shape (n_gamma, n) — AFR weights for each γ.
    lambdas : list of float.
    W0, b0 : initial one-row-per-class head.
    X_sel, y_sel, strata_sel : selection data; ``strata_sel`` holds the
        group (or class) codes 0..S-1 whose worst accuracy is maximised.

    Returns
    -------
    dict with ``W``, ``b`` (numpy, the selected head), ``best`` (γ index,
    λ index, 0-based epoch) and per-epoch arrays ``loss``, ``worst``, ``mean``
    of shape (n_gamma, n_lambda, n_epochs).
    """
    from skhsfm._utils.torch import resolve_device, to_numpy, to_tensor, torch

    dev = resolve_device(device)
    n_gamma, n_lambda = weights.shape[0], len(lambdas)
    n_heads, n_classes = n_gamma * n_lambda, W0.shape[0]
    X_t, X_s = to_tensor(X, dev), to_tensor(X_sel, dev)
    # Head h is (gamma index h // n_lambda, lambda index h % n_lambda). All heads
    # are rows of one (n_classes * n_heads, n_features) matrix, class-major (row
    # k * n_heads + h), so logits view as (n, n_classes, n_heads) and a step of
    # the whole grid is two matrix products.
    onehot = torch.nn.functional.one_hot(to_tensor(y, dev, torch.long), n_classes).to(
        X_t.dtype
    )[:, :, None]
    y_s = to_tensor(y_sel, dev, torch.long)[:, None, None]
    # indicator @ correct counts hits per stratum (exact in float32); accuracies
    # are then formed in float64 so that they print and compare cleanly
    indicator = np.eye(int(strata_sel.max()) + 1)[strata_sel].T
    stratum_size = to_tensor(indicator.sum(1), dev, torch.float64)[:, None]
    indicator = to_tensor(indicator, dev)
    w_t = to_tensor(np.repeat(weights, n_lambda, axis=0).T[:, None, :], dev)
    lam_t = to_tensor(np.tile(lambdas, n_gamma), dev)
    lam_rows = lam_t.repeat(n_classes)
    W_init = to_tensor(np.repeat(W0, n_heads, axis=0), dev)
    b_init = to_tensor(np.repeat(b0, n_heads), dev)
    W, b = W_init.clone(), b_init.clone()
    best_W, best_b = W.clone(), b.clone()
    best_key = torch.full((n_heads, 2), -1.0, device=dev, dtype=torch.float64)
    best_epoch = torch.zeros(n_heads, dtype=torch.long, device=dev)
    history = torch.empty((3, n_heads, n_epochs), device=dev, dtype=torch.float64)

    for epoch in range(n_epochs):
        # In-place steps where the values are the same as out of place: the
        # (n, n_classes * n_heads) temporaries dominate the fit's memory.
        logits = X_t @ W.T
        logits += b
        log_p = torch.log_softmax(logits.view(-1, n_classes, n_heads), dim=1)
        del logits
        # d(sum_i w_i CE_i) / d logits = w_i (softmax - onehot)
        dlogits = log_p.exp().sub_(onehot).mul_(w_t).view(-1, n_classes * n_heads)
        diff_W, diff_b = W - W_init, b - b_init
        grad_W = dlogits.T @ X_t + 2 * lam_rows[:, None] * diff_W
        grad_b = dlogits.sum(0) + 2 * lam_rows * diff_b
        del dlogits
        ce = -(log_p * onehot).sum(1)
        del log_p
        penalty = (diff_W.pow(2).sum(1) + diff_b.pow(2)).view(n_classes, -1).sum(0)
        loss = (w_t[:, 0] * ce).sum(0) + lam_t * penalty
        step = torch.full((n_heads,), learning_rate, device=dev)
        if max_grad_norm is not None:
            sq_norm = grad_W.pow(2).sum(1) + grad_b.pow(2)
            norm = sq_norm.view(n_classes, -1).sum(0).sqrt()
            # as torch.nn.utils.clip_grad_norm_, per head
            step = step * torch.clamp(max_grad_norm / (norm + 1e-6), max=1.0)
        step_rows = step.repeat(n_classes)
        W = W - step_rows[:, None] * grad_W
        b = b - step_rows * grad_b

        logits_s = X_s @ W.T
        logits_s += b
        logits_s = logits_s.view(-1, n_classes, n_heads)
        true_logit = logits_s.gather(1, y_s.expand(-1, 1, n_heads))[:, 0]
        correct = (true_logit >= logits_s.amax(1)).to(X_s.dtype)
        del logits_s, true_logit
        worst = ((indicator @ correct).double() / stratum_size).amin(0)
        mean = correct.sum(0).double() / correct.shape[0]
        better = (worst > best_key[:, 0]) | (
            (worst == best_key[:, 0]) & (mean > best_key[:, 1])
        )
        best_key[better] = torch.stack([worst, mean], 1)[better]
        rows = better.repeat(n_classes)
        best_W[rows], best_b[rows] = W[rows], b[rows]
        best_epoch[better] = epoch
        history[:, :, epoch] = torch.stack([loss, worst, mean])
        if verbose and (epoch + 1) % 50 == 0:
            print(
                f"[AFR] epoch {epoch + 1}/{n_epochs}: best selection worst-group "
                f"accuracy so far {best_key[:, 0].max().item():.4f}"
            )

    key = to_numpy(best_key)
    # lexicographic (worst, mean); ties go to the first head in grid order
    head = int(np.lexsort((-np.arange(n_heads), key[:, 1], key[:, 0]))[-1])
    rows = torch.arange(n_classes, device=dev) * n_heads + head
    shape = (n_gamma, n_lambda, n_epochs)
    loss_hist, worst_hist, mean_hist = to_numpy(history)
    return {
        "W": to_numpy(best_W[rows]).astype(np.float64),
        "b": to_numpy(best_b[rows]).astype(np.float64),
        "best": (head // n_lambda, head % n_lambda, int(best_epoch[head])),
        "loss": loss_hist.reshape(shape),
        "worst": worst_hist.reshape(shape),
        "mean": mean_hist.reshape(shape),
    }
