"""AFRClassifier: Automatic Feature Reweighting of an ERM linear head."""

from numbers import Integral, Real

import numpy as np

from skhsfm._base import InitializedHead, fill_doc
from skhsfm._linear import to_sklearn_head
from skhsfm._pools import read_pools, selection_split
from skhsfm._sklearn_compat import Interval
from skhsfm._validation import check_grid
from skhsfm.baselines._afr_core import run_afr
from skhsfm.metrics._engine import selection_score

__all__ = ["AFRClassifier"]


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
    ``n / n_c`` (``rebalance_weights``); so do the weights here, so classes
    are balanced in count, not in total weight.

    The training loop is a pure function of numpy arrays
    (``skhsfm/baselines/_afr_core.py``); this class validates the input,
    builds the pools, splits off the selection rows (the same split HSFM
    uses) and scores the candidates with the package's one selection score.

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
        reweight, select = selection_split(
            pools, self.selection_fraction, rng, method="AFR"
        )
        if select is None:  # too few rows to split: select on the same rows
            select = reweight
        y_select = pools.y_hard[select]
        groups_select = None
        if pools.groups_hard is not None:
            groups_select = pools.groups_hard[select]

        def score(pred):
            return selection_score(y_select, pred, groups_select)

        # the grid trains and selects on the rescaled hard pool too
        result = run_afr(
            _scaled_rows(X_hard, reweight, scale),
            pools.y_hard[reweight],
            W0,
            b0,
            _scaled_rows(X_hard, select, scale),
            gammas=gammas,
            lambdas=lambdas,
            score=score,
            n_epochs=self.n_epochs,
            learning_rate=self.learning_rate,
            max_grad_norm=self.max_grad_norm,
            device=self.device,
            log=print if self.verbose else None,
        )
        g, lam, epoch = result.gamma_index, result.lambda_index, result.epoch
        self.coef_, self.intercept_ = to_sklearn_head(result.W * scale, result.b)
        self.init_coef_, self.init_intercept_ = to_sklearn_head(W0 * scale, b0)
        self.scale_ = scale
        self.best_gamma_ = gammas[g]
        self.best_lambda_ = lambdas[lam]
        self.best_epoch_ = epoch + 1
        self.best_score_ = float(result.selection[g, lam, epoch])
        self.grid_scores_ = result.selection.max(axis=2)
        self.history_ = dict(
            epoch=np.arange(1, self.n_epochs + 1),
            loss=result.loss[g, lam],
            worst_group_accuracy=result.selection[g, lam],
            mean_accuracy=result.mean[g, lam],
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
