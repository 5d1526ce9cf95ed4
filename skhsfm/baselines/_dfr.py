"""DFRClassifier: Deep Feature Reweighting (last-layer retraining on held-out data)."""

import warnings
from numbers import Integral, Real

import numpy as np
from sklearn.linear_model import LogisticRegression

from skhsfm._base import HeldOutHead, fill_doc
from skhsfm._logistic import rms_scale
from skhsfm._pools import balanced_subsample, cell_labels, holdout_split, read_pools
from skhsfm._sklearn_compat import Interval, StrOptions, l1_logistic_params
from skhsfm._utils.lazy import iter_row_blocks
from skhsfm._validation import check_grid
from skhsfm.metrics._engine import selection_score

__all__ = ["DFRClassifier"]

#: The inverse L1 strengths of the original DFR script (Waterbirds grid).
DFR_CS = (1.0, 0.7, 0.3, 0.1, 0.07, 0.03, 0.01)

#: Fitted attributes kept only with ``store_models=True``.
_PER_MODEL = ("coefs_", "intercepts_", "subsample_indices_")


@fill_doc
class DFRClassifier(HeldOutHead):
    """Deep Feature Reweighting: an L1 logistic head retrained on group-balanced
    held-out embeddings (Kirichenko, Izmailov and Wilson, 2022).

    The protocol of the paper's ``DFR_val``:

    1. **Tune C.** Split the hard pool (held-out data) in half, stratified by
       group; fit on a group-balanced subsample of one half (every group cut to
       the size of its smallest group, features standardised on that subsample)
       one L1 logistic regression per ``C`` in ``Cs``, and keep the ``C`` with
       the best worst-group accuracy on the other half.
    2. **Fit and average.** Standardise with the support pool's (training)
       mean and standard deviation; fit ``n_models`` L1 logistic regressions
       with the chosen ``C``, each on a fresh group-balanced subsample of the
       whole hard pool; average their coefficients and intercepts.

    The standardisation is folded into ``coef_`` and ``intercept_``, so
    prediction is a plain linear map of the raw embeddings.

    Parameters
    ----------
    Cs : float or sequence of float, default=(1, 0.7, 0.3, 0.1, 0.07, 0.03, 0.01)
        Inverse L1 regularisation strengths to tune over. With a single value
        the tuning step is skipped.
    n_models : int, default=20
        Number of models, each fit on its own group-balanced subsample, whose
        weights are averaged.
    balance : {"groups", "classes"}, default="groups"
        What the subsamples are balanced over. ``"groups"`` is DFR and needs
        group labels for the hard pool (``groups`` when it is held out from
        ``X``, else ``groups_val``). ``"classes"`` balances classes only (a
        variant for data without group labels); groups, when given, are then
        still used to tune ``C``.
    {validation_fraction}
    max_iter : int, default=1000
        Iteration limit of each logistic-regression fit.
    random_state : int, RandomState instance or None, default=None
        Seeds the hold-out, the tuning split, every subsample and the solvers.
        (The original script used the unseeded global generator.)
    store_models : bool, default=False
        Keep every model's weights (``coefs_``, ``intercepts_``) and the rows
        it was fit on (``subsample_indices_``) after ``fit``: to study the
        ensemble (how stable the L1 selection is across subsamples, e.g. the
        share of models giving a feature a non-zero weight) or to audit and
        reproduce one model. Prediction uses only the averaged ``coef_`` and
        ``intercept_``, which do not depend on this setting; without the
        per-model arrays a fitted head on 2048-d embeddings is about ten times
        smaller on disk.

        .. versionchanged:: 0.2
           The per-model arrays used to be kept always; pass
           ``store_models=True`` for them.

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        Class labels.
    coef_ : ndarray of shape (1, n_features) or (n_classes, n_features)
        Averaged weights on raw embeddings (standardisation folded in; one row
        for two classes).
    {fitted_features}
    best_C_ : float
        The ``C`` chosen in the tuning step.
    tuning_scores_ : ndarray of shape (len(Cs),)
        Worst-group accuracy (worst-class without groups) of each ``C`` on the
        tuning half; NaN when ``Cs`` has a single value.
    tuning_subsample_size_ : int or None
        Samples per group in the tuning subsample (None without tuning).
    scaler_mean_ : ndarray of shape (n_features,)
        Mean of the support-pool embeddings used for standardisation.
    scaler_scale_ : ndarray of shape (n_features,)
        Their standard deviation (1 for constant features).
    coefs_ : ndarray of shape (n_models, n_rows, n_features)
        The weights of every model on standardised embeddings;
        ``coef_ == coefs_.mean(0) / scaler_scale_``. Only with
        ``store_models=True``.
    intercepts_ : ndarray of shape (n_models, n_rows)
        Their biases. Only with ``store_models=True``.
    subsample_size_ : int
        Samples per group in each final subsample (the smallest group's size
        in the hard pool).
    subsample_indices_ : ndarray of shape (n_models, n_groups * `subsample_size_`)
        Rows of the hard pool in each final subsample. Only with
        ``store_models=True``.
    hard_pool_indices_ : ndarray of int or None
        Rows of ``X`` held out as the hard pool, or None when ``X_val`` was
        given.
    n_iter_ : int
        Most solver iterations used by any of the final fits.

    See Also
    --------
    AFRClassifier : Reweighting without group labels for training.
    ERMHeadClassifier : The plain logistic-regression head.
    skhsfm.HSFMClassifier : Hard-set-guided feature-space meta-learning.

    Notes
    -----
    A dask array or numpy memmap ``X`` is read only where rows are needed:
    the hard pool (into memory) and one streamed pass over the support pool,
    block by block, for the standardisation statistics.

    Differences from the original script, all deliberate: the tuning split is
    stratified by group (so that small groups appear in both halves); the
    subsamples are balanced over (group, class) cells (identical to groups
    when groups are class x attribute cells); everything is seeded; more than
    two classes use a multinomial L1 fit (``solver="saga"``), two classes
    ``solver="liblinear"`` as in the original.

    A *group* here is a (class, spurious attribute) cell, not scikit-learn's
    ``GroupKFold`` meaning.

    References
    ----------
    P. Kirichenko, P. Izmailov and A. G. Wilson. "Last Layer Re-Training is
    Sufficient for Robustness to Spurious Correlations", ICLR 2023
    (arXiv:2204.02937).

    Examples
    --------
    >>> import numpy as np
    >>> from skhsfm.baselines import DFRClassifier
    >>> rng = np.random.RandomState(0)
    >>> y = np.repeat([0, 1], 50); a = rng.randint(0, 2, size=100)
    >>> X = np.c_[y + rng.normal(0, .3, 100), a + rng.normal(0, .3, 100)]
    >>> dfr = DFRClassifier(n_models=5, random_state=0)
    >>> dfr.fit(X, y, groups=2 * y + a).score(X, y) > 0.9
    True
    >>> dfr.subsample_size_  # smallest group in the 20% hold-out
    4
    """

    # DFR only streams over the support pool (for its statistics): keep a
    # support pool held out of X as a view, never a copy
    _view_support = True

    _parameter_constraints: dict = {
        **HeldOutHead._parameter_constraints,
        "Cs": [Interval(Real, 0, None, closed="neither"), "array-like"],
        "n_models": [Interval(Integral, 1, None, closed="left")],
        "balance": [StrOptions({"groups", "classes"})],
        "max_iter": [Interval(Integral, 1, None, closed="left")],
        "store_models": ["boolean"],
    }

    def __init__(
        self,
        Cs=DFR_CS,
        n_models=20,
        *,
        balance="groups",
        validation_fraction=0.2,
        max_iter=1000,
        random_state=None,
        store_models=False,
    ):
        self.Cs = Cs
        self.n_models = n_models
        self.balance = balance
        self.validation_fraction = validation_fraction
        self.max_iter = max_iter
        self.random_state = random_state
        self.store_models = store_models

    def _check_params(self):
        super()._check_params()
        check_grid(self.Cs, "Cs", closed="neither")

    def _fit(self, X, y, groups, X_val, y_val, groups_val):
        Cs = check_grid(self.Cs, "Cs", closed="neither")
        if self.balance == "groups":
            _require_groups(X_val, groups, groups_val)
        pools, rng = self._pools(X, y, groups, X_val, y_val, groups_val)
        _, X_hard = read_pools(pools)  # a lazy X: only the hard pool is read
        # standardisation makes DFR scale-free; what is left to refuse is a
        # hard pool without a non-zero value (nothing to learn from)
        held_out = (
            "X_val" if pools.hard_index is None else "the hard pool held out of X"
        )
        rms_scale(X_hard, name=held_out)
        balance_by = pools.groups_hard if self.balance == "groups" else None
        cells = cell_labels(pools.y_hard, balance_by)

        if len(Cs) > 1:
            self.best_C_, self.tuning_scores_, self.tuning_subsample_size_ = (
                self._tune_C(Cs, X_hard, pools, cells, rng)
            )
        else:
            self.best_C_ = Cs[0]
            self.tuning_scores_ = np.array([np.nan])
            self.tuning_subsample_size_ = None

        # streamed over the support pool: never a float64 copy of it
        mean, scale = _standardization(pools.X)
        coefs, intercepts, subsamples, n_iter = [], [], [], 0
        for _ in range(self.n_models):
            idx, size = balanced_subsample(cells, rng)
            model = self._l1_logreg(self.best_C_, rng)
            model.fit(_standardized(X_hard, idx, mean, scale), pools.y_hard[idx])
            n_iter = max(n_iter, int(np.max(model.n_iter_)))
            coefs.append(model.coef_)
            intercepts.append(model.intercept_)
            subsamples.append(idx)
        coefs = np.asarray(coefs, dtype=np.float64)
        intercepts = np.asarray(intercepts, dtype=np.float64)
        for name in _PER_MODEL:  # a refit with store_models=False drops old ones
            vars(self).pop(name, None)
        if self.store_models:
            self.coefs_, self.intercepts_ = coefs, intercepts
            self.subsample_indices_ = np.asarray(subsamples)
        self.subsample_size_ = size
        self.scaler_mean_, self.scaler_scale_ = mean, scale
        # w.(x - m)/s + b  ==  (w/s).x + (b - (w/s).m)
        self.coef_ = coefs.mean(axis=0) / scale
        self.intercept_ = intercepts.mean(axis=0) - self.coef_ @ mean
        self.hard_pool_indices_ = pools.hard_index
        self.n_iter_ = n_iter

    def __getattr__(self, name):
        # only reached when normal lookup fails: say why a per-model array is absent
        if name in _PER_MODEL and "coef_" in vars(self):
            raise AttributeError(
                f"{type(self).__name__} keeps {name} only when fitted with "
                "store_models=True (the default is False since 0.2); refit with "
                "DFRClassifier(store_models=True, ...) to keep every model."
            )
        raise AttributeError(
            f"{type(self).__name__!r} object has no attribute {name!r}"
        )

    def _l1_logreg(self, C, rng):
        multiclass = self.classes_.shape[0] > 2
        return LogisticRegression(
            C=C,
            **l1_logistic_params(),
            solver="saga" if multiclass else "liblinear",
            max_iter=self.max_iter,
            random_state=rng.randint(np.iinfo(np.int32).max),
        )

    def _tune_C(self, Cs, X_hard, pools, cells, rng):
        """The original tuning step: fit on a balanced subsample of one half of
        the hard pool, score worst-group accuracy on the other half."""
        fit_half, eval_half = holdout_split(pools.y_hard, cells, 0.5, rng)
        if eval_half.shape[0] == 0:
            warnings.warn(
                "DFR tunes C on half of the hard pool, but no group has two "
                "held-out samples to split; tuning on the whole hard pool instead "
                "(optimistic). Pass more held-out data (X_val or a larger "
                "validation_fraction) or a single C, e.g. Cs=(1.0,).",
                UserWarning,
            )
            fit_half = eval_half = np.arange(pools.y_hard.shape[0])
        idx, size = balanced_subsample(cells[fit_half], rng)
        fit_rows = fit_half[idx]
        y_fit = pools.y_hard[fit_rows]
        # the original standardises the tuning fit on its own training subsample
        mean, scale = _standardization(X_hard[fit_rows])
        X_eval = _standardized(X_hard, eval_half, mean, scale)
        X_fit = _standardized(X_hard, fit_rows, mean, scale)
        y_eval = pools.y_hard[eval_half]
        groups_eval = (
            None if pools.groups_hard is None else pools.groups_hard[eval_half]
        )
        scores = []
        for C in Cs:
            model = self._l1_logreg(C, rng)
            model.fit(X_fit, y_fit)
            scores.append(
                selection_score(y_eval, model.predict(X_eval), groups_eval)[0]
            )
        scores = np.asarray(scores)
        # ties go to the first C in the grid, as in the original script
        return Cs[int(np.argmax(scores))], scores, size


def _require_groups(X_val, groups, groups_val):
    if X_val is None and groups is None:
        raise ValueError(
            "DFRClassifier balances groups and needs group labels: pass groups= "
            "(one group per row of X; the hard pool is held out from X), or pass "
            "X_val, y_val and groups_val, or set balance='classes' to balance "
            "classes only."
        )
    if X_val is not None and groups_val is None:
        raise ValueError(
            "DFRClassifier balances groups of the held-out data and needs "
            "groups_val (one group per row of X_val); got groups_val=None. Pass "
            "groups_val or set balance='classes' to balance classes only."
        )


def _standardization(X, block_rows=4096):
    """Mean and scale of ``X`` as StandardScaler defines them (population
    standard deviation, 1 for constant features), streamed over row blocks.

    ``X`` is an array or a lazy pool (:class:`~skhsfm._utils.lazy.LazyRows`); both
    give the same blocks, so the same statistics. Each block's mean and
    centred sum of squares (float64) are merged in order with Chan et al.'s
    update, so no float64 copy of ``X`` is made (StandardScaler's two-pass
    computation makes one); the result agrees with StandardScaler to about
    1e-15 relative. The sums run in a power-of-two unit of the first block
    (:func:`_power_of_two_unit`), so any scale of ``X`` gives the same
    standardised values.
    """
    n, mean, m2, unit = 0, None, None, None
    for block in iter_row_blocks(X, block_rows):
        block = block.astype(np.float64)  # a copy: centred in place below
        if unit is None:
            unit = _power_of_two_unit(block)
        block *= unit
        n_b = block.shape[0]
        mean_b = block.mean(axis=0)
        block -= mean_b
        m2_b = np.einsum("ij,ij->j", block, block)
        if mean is None:
            n, mean, m2 = n_b, mean_b, m2_b
            continue
        delta = mean_b - mean
        total = n + n_b
        mean = mean + delta * (n_b / total)
        m2 = m2 + m2_b + delta**2 * (n * n_b / total)
        n = total
    var = m2 / n
    scale = np.sqrt(var)
    # StandardScaler's constant features: variance within rounding of zero
    eps = np.finfo(np.float64).eps
    constant = var <= n * eps * var + (n * mean * eps) ** 2
    mean, scale = mean / unit, scale / unit
    scale[constant] = 1.0
    return mean, scale


def _power_of_two_unit(block):
    """The power of two that brings the largest entry of ``block`` into
    [0.5, 1): the statistics are summed in that unit, so squares neither
    overflow (entries near 1e300) nor underflow (near 1e-300), and, a power of
    two being exact, the statistics of ordinary data are unchanged to the bit."""
    peak = float(np.max(np.abs(block), initial=0.0))
    if peak == 0.0:
        return 1.0
    exponent = np.frexp(peak)[1]
    return float(np.ldexp(1.0, int(np.clip(-exponent, -1000, 1000))))


def _standardized(X, rows, mean, scale, block_rows=4096):
    """``(X[rows] - mean) / scale`` as float64, built in place block by block
    (the same values, without the float32 copy and the temporaries)."""
    out = np.empty((rows.shape[0], X.shape[1]), dtype=np.float64)
    for start in range(0, rows.shape[0], block_rows):
        out[start : start + block_rows] = X[rows[start : start + block_rows]]
    out -= mean
    out /= scale
    return out
