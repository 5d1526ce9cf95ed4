"""HSFMClassifier: Hard-Set-Guided Feature-Space Meta-Learning as an estimator."""

import warnings
from numbers import Integral, Real

import numpy as np

from skhsfm._base import InitializedHead, RenamedKeys, fill_doc
from skhsfm._linear import to_sklearn_head
from skhsfm._pools import cell_labels, selection_split
from skhsfm._sklearn_compat import HasMethods, Interval, StrOptions
from skhsfm._start import (
    keep_initial_unless_better,
    prepare_start,
    start_temperature,
)
from skhsfm.metrics._engine import group_counts, selection_score

__all__ = ["HSFMClassifier", "PRESETS"]

#: The paper's settings for ResNet-50 embeddings (arXiv 2603.29313, Table 11).
PRESETS = {
    "waterbirds": dict(
        support_size=16,
        inner_steps=15,
        inner_lr=5e-5,
        outer_lr=1.0,
        outer_steps=15,
        hard_size=64,
        n_epochs=40,
    ),
    "celeba": dict(
        support_size=1024,
        inner_steps=10,
        inner_lr=5e-5,
        outer_lr=1.0,
        outer_steps=5,
        hard_size=256,
        n_epochs=20,
    ),
    "metashift": dict(
        support_size=32,
        inner_steps=15,
        inner_lr=5e-5,
        outer_lr=1e-2,
        outer_steps=10,
        hard_size=64,
        n_epochs=10,
    ),
    "dominoes": dict(
        support_size=16,
        inner_steps=10,
        inner_lr=1e-4,
        outer_lr=1.0,
        outer_steps=15,
        hard_size=256,
        n_epochs=40,
    ),
}

# The estimator's defaults, the values in its signature. Chosen by measurement
# (benchmarks/tune_hsfm.py; the user guide's "How the defaults were chosen").
_DEFAULTS = dict(
    support_size=32,
    inner_steps=15,
    inner_lr=0.03,
    outer_lr=0.03,
    outer_steps=10,
    hard_size=128,
    n_epochs=200,
    head_update="gd",
    balance="auto",
)

#: What every preset adds to the paper's numbers: the paper's loop exactly
#: (Adam head update, hard sets and support sets per class).
_PAPER_LOOP = dict(
    head_update="adam", balance="classes", group_inference=None, init_temperature=1.0
)

_HYPERPARAMETERS = tuple(_DEFAULTS)
_LOOP = ("n_epochs", "hard_size", "outer_steps", "outer_lr", "inner_steps", "inner_lr")


@fill_doc
class HSFMClassifier(InitializedHead):
    """Linear head retrained by Hard-Set-Guided Feature-Space Meta-Learning.

    The backbone stays frozen: ``X`` holds its embeddings. HSFM starts from an ERM
    linear head and learns *edits* of a small balanced support set of
    embeddings, so that a head adapted on the edited support set has low loss on
    the hardest held-out examples; each epoch the real head is then trained on
    the edited support set, and the epoch with the best held-out worst-group
    accuracy is kept.

    Each epoch: (1) with the current head, take the ``hard_size`` highest-loss
    examples of each class (or group, see ``balance``) in the hard pool (the
    hard set); (2) ``outer_steps`` times, adapt the head by ``inner_steps``
    gradient-descent steps of size ``inner_lr`` on the support set,
    differentiate the adapted head's hard-set cross-entropy through those steps
    with respect to the support embeddings, clip that gradient's norm at
    ``max_grad_norm`` and update the embeddings with Adam at ``outer_lr``; (3)
    train the head on the edited support set (``head_update``); (4) score the
    head on the hard pool.

    Parameters
    ----------
    preset : {"waterbirds", "celeba", "metashift", "dominoes"} or None, default=None
        Deprecated in 0.2, removed in 0.3: use
        ``HSFMClassifier.from_preset(name, **overrides)``, which sets the
        paper's values explicitly (visible in ``get_params()``). Until then a
        preset replaces the hyperparameters below that are left at their
        defaults.
    support_size : int, default=32
        ``|S|``: support embeddings drawn per class (per (group, class) cell
        with group balancing, see ``balance``) from the support pool. Per
        class, a class with fewer examples is sampled with replacement (with a
        warning); per cell, small cells
        (minority groups) are sampled with replacement so that every cell
        weighs the same.
    hard_size : int or float, default=128
        K_hard: hard-pool examples per class (per group) forming the hard set
        each epoch, the highest-loss ones. An int is a count, a float in (0, 1]
        the share of each class's (group's) hard-pool examples, rounded up, so
        that the hard set adapts to the size of the hard pool.
    inner_steps : int, default=15
        T: inner gradient-descent steps, and steps of the head update per
        epoch.
    inner_lr : float, default=0.03
        alpha: step size of the inner loop and of the head update.
    outer_steps : int, default=10
        K_H: meta-updates of the support embeddings per epoch.
    outer_lr : float, default=0.03
        eta: Adam learning rate of the support embeddings.
    n_epochs : int, default=200
        Number of epochs (at most, with ``n_iter_no_change``).
    head_update : {"adam", "gd"}, default="gd"
        How the head is trained on the edited support set each epoch. "gd":
        the same ``inner_steps`` gradient-descent steps of size ``inner_lr``
        that the hypergradient differentiates, so each meta-update predicts
        exactly the head it produces and training does not collapse. "adam":
        ``inner_steps`` Adam steps at ``inner_lr`` (the paper's; the
        hypergradient then models a different update, and the hard-pool
        accuracy can fall sharply between epochs).
    balance : {"auto", "groups", "classes"}, default="auto"
        What the support set, the hard set and the initial head are balanced
        over. "classes" (the paper's): ``support_size`` rows per class, the
        ``hard_size`` hardest hard-pool rows per class and the outer loss their
        plain mean, a plain logistic regression as the initial head. "groups":
        ``support_size`` rows per (group, class) cell of the support pool, the
        ``hard_size`` hardest hard-pool rows per group with every group
        weighing the same in the outer loss, and an initial logistic regression
        that weighs every cell the same; needs the groups of both pools, given
        or inferred (``group_inference``). "auto": groups for each pool whose
        groups are known or inferred, classes otherwise.
    n_iter_no_change : int or None, default=None
        Stop when the hard-pool selection score has not improved for this many
        epochs. None runs all ``n_epochs``.
    {validation_fraction}
    selection_fraction : float in (0, 1) or None, default=0.5
        When the hard pool is held out of ``X`` (no ``X_val``): the share of
        it, stratified by group (else class), kept apart to select the epoch,
        the initial head competing as epoch 0. A small hold-out has few
        minority rows; selecting on the rows the hard sets come from would
        reward fitting those few rows. None selects on the whole hold-out.
        With ``X_val`` the epoch is selected on ``X_val`` (the paper's).
        On rows kept apart, a trained epoch replaces the initial head only
        when it beats it by more than one standard error of the initial
        head's worst-group accuracy there.
    {init_coef}
    {init_intercept}
    {erm_C}
    {max_samples}
    max_grad_norm : float, default=10.0
        Norm at which the gradient of the support embeddings is clipped.
    rescale : bool, default=True
        Work internally on ``X`` multiplied by one scalar so that the support
        pool's root-mean-square coordinate is 1 (the scale of ResNet-50 features
        the paper's settings were tuned on), measured on the rows the initial
        head is fit on (``max_samples``). Predictions are then the same for
        ``X`` and ``c * X`` up to floating-point rounding (which the default
        loop does not amplify: see Notes); the fitted ``coef_`` is in the space
        of ``X``. False uses the embeddings as given.
    group_inference : "auto", GroupInferrer or None, default="auto"
        Where group labels are missing (no ``groups``, or no ``groups_val``
        with ``X_val``), infer them with a
        :class:`~skhsfm.groups.GroupInferrer` ("auto": its defaults, seeded by
        ``random_state``) and balance the support set, the initial head and
        the hard sets over them: training groups are learnt from the
        validation groups; without any labels, the held-out rows the ERM head
        gets wrong form groups of their class, and the epoch is selected by
        the mean accuracy over those groups (the worst one on a hold-out of
        ``X``). ``groups_source_`` says what was used. None balances classes
        where groups are missing (0.2, which can stall).
    init_temperature : "auto" or float, default="auto"
        Divide the initial head by this temperature (its predictions do not
        change, only its confidence). "auto" cools it as much as the larger
        of two rules asks, never below 1: temperature scaling on the hard pool
        (each group weighing the same), and a median margin (own logit minus
        the largest other) of at most 2 on the support set. An ERM head is
        confident on its own training rows, and on a saturated softmax the
        inner loop, and so the meta-gradient, vanish. 1.0 keeps the head.
    {device}
    random_state : int, RandomState instance or None, default=None
        Seeds the hold-out split, the group inference and the support-set
        draw: with an int, ``fit`` is bit-for-bit reproducible on CPU.
    verbose : int, default=0
        Print one line per epoch when > 0.

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        Class labels.
    coef_ : ndarray of shape (1, n_features) or (n_classes, n_features)
        Coefficients of the fitted head (``(1, n_features)`` for two classes).
    intercept_ : ndarray of shape (1,) or (n_classes,)
        Intercept of the fitted head.
    init_coef_ : ndarray, same shape as ``coef_``
        The initial (ERM) head's coefficients.
    init_intercept_ : ndarray, same shape as ``intercept_``
        The initial head's intercept.
    support_init_ : ndarray of shape (n_support, n_features)
        Initial support embeddings (rows of ``X``, in ``X``'s float dtype).
    support_edited_ : ndarray of shape (n_support, n_features)
        Edited support embeddings at the selected epoch, in ``X``'s float
        dtype; the edits are ``support_edited_ - support_init_``.
    support_labels_ : ndarray of shape (n_support,)
        Class label of each support embedding.
    support_indices_ : ndarray of shape (n_support,)
        Row of ``X`` each support embedding was drawn from.
    hard_pool_indices_ : ndarray or None
        Rows of ``X`` held out as the hard pool (the rows hard sets come
        from), or None when ``X_val`` was given.
    selection_indices_ : ndarray or None
        Rows of ``X`` held out to select the epoch (``selection_fraction``),
        or None when the epoch was selected on the hard pool.
    hard_set_indices_ : ndarray
        Indices into the hard pool (the rows of ``X_val``, or the rows
        ``hard_pool_indices_`` of ``X``) of the hard set of the selected epoch;
        empty when the initial head was selected.
    history_ : dict of ndarray
        Per epoch: ``"epoch"``, ``"loss"`` (mean hard-set loss of the adapted
        head over the epoch's meta-updates; ``"outer_loss"`` before 0.2),
        ``"worst_group_accuracy"`` and ``"mean_accuracy"`` of the head on the
        rows that select the epoch (the hard pool, or the rows
        ``selection_indices_``; worst-class accuracy when their groups are not
        known, the mean over inferred error groups, see ``group_inference``),
        ``"seconds"``.
    best_epoch_ : int
        The selected epoch (1-based; 0 is the initial head, which competes when
        the epoch is selected on rows kept apart); ties go to the later epoch.
    best_score_ : float
        Worst-group (or worst-class) accuracy of the selected epoch on the rows
        that select the epoch.
    n_iter_ : int
        Number of epochs run.
    scale_ : float
        The scalar ``X`` was multiplied by internally (1.0 when ``rescale=False``).
    hyperparameters_ : dict
        The values of the hyperparameters used by ``fit`` (the signature's, or
        a deprecated ``preset``'s).
    groups_source_ : dict
        Where the groups of each pool came from: ``{"groups": ...,
        "groups_val": ...}``, each "given", "classifier" (learnt from the
        other pool's groups), "error" (from the initial head's errors) or
        "none" (classes were balanced instead). With no ``X_val`` they
        describe the support pool and the hold-out of ``X``.
    init_temperature_ : float
        The temperature the initial head was divided by before training (see
        ``init_temperature``); ``init_coef_`` is the head before the division.
    n_features_in_ : int
        Number of features seen during ``fit``.
    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Names of features seen during ``fit``, when ``X`` has string column names.

    See Also
    --------
    skhsfm.baselines.ERMHeadClassifier : The initial head on its own.
    skhsfm.baselines.DFRClassifier : Deep Feature Reweighting.
    skhsfm.baselines.AFRClassifier : Automatic Feature Reweighting.

    Notes
    -----
    ``groups`` are per-sample (class, spurious attribute) cells, used to stratify
    the hold-out and to select the epoch by worst-group accuracy. They are not
    scikit-learn's ``GroupKFold`` clusters. ``fit`` requests ``groups`` by default
    under metadata routing.

    A dask array or numpy memmap ``X`` (and ``X_val``) is not read whole: a
    fit reads, in one pass, the rows of the initial head (``max_samples``),
    the support set and the hard pool; with a hard pool held out of ``X``
    that is ``validation_fraction`` of its rows, so pass a smaller ``X_val``
    to bound it. Labels and groups are in memory.

    The initial head is scikit-learn's lbfgs logistic regression of the
    scaled support pool with ``erm_C``, computed over row blocks so that no
    scaled copy of ``X`` is made (the same iterates up to floating-point
    rounding).

    Differences from the paper, all off with :meth:`from_preset` (which runs
    the paper's loop exactly): the default ``head_update="gd"`` trains the head
    with the update the hypergradient models (the paper uses Adam, which makes
    training collapse and recover between epochs); the default
    ``balance="auto"`` draws the support set per (group, class) cell, picks
    the hard set per group with each group weighing the same in the outer
    loss, and weighs the cells equally in the initial logistic regression,
    whenever groups are known (the paper balances classes only), and infers
    the groups that are missing (``group_inference``); the initial head is
    cooled by temperature scaling (``init_temperature``); ``hard_size``
    may be a share of the hard pool; without ``X_val``, the epoch is selected
    on held-out rows kept out of the hard sets (``selection_fraction``), the
    initial head competing. How the defaults were chosen, with numbers, is in
    the user guide ("How the defaults were chosen", "Which group labels do I
    need?").

    Why inference and temperature: with groups on the validation split only,
    a class-balanced support set holds a handful of minority rows, and the
    ERM head fits its training rows so confidently that the inner loop's
    softmax saturates; the meta-gradient then vanishes and training stays at
    the ERM head, or not, as float32 rounding (so the scale of ``X``) decides.

    The hypergradient is computed with the closed-form gradients of a softmax
    linear head and a hand-written reverse pass through the unrolled inner loop;
    it equals what autograd computes through a ``create_graph=True`` loop.

    References
    ----------
    .. [1] Hard-Set-Guided Feature-Space Meta-Learning, arXiv:2603.29313
       (ECCV 2026).

    Examples
    --------
    >>> import numpy as np
    >>> from skhsfm import HSFMClassifier
    >>> rng = np.random.RandomState(0)
    >>> X = rng.normal(size=(200, 5)); y = (X[:, 0] > 0).astype(int)
    >>> clf = HSFMClassifier(n_epochs=3, random_state=0).fit(X, y)
    >>> clf.predict(X[:3]).shape
    (3,)
    >>> clf.groups_source_  # no group labels: the hold-out's from its errors
    {'groups': 'classifier', 'groups_val': 'error'}
    """

    # the torch loop converts X to float32 before rescaling it
    _float32_X = True

    _parameter_constraints: dict = {
        **InitializedHead._parameter_constraints,
        "preset": [StrOptions(set(PRESETS)), None],
        "support_size": [Interval(Integral, 1, None, closed="left")],
        "hard_size": [
            Interval(Integral, 1, None, closed="left"),
            Interval(Real, 0, 1, closed="right"),
        ],
        "inner_steps": [Interval(Integral, 1, None, closed="left")],
        "inner_lr": [Interval(Real, 0, None, closed="neither")],
        "outer_steps": [Interval(Integral, 0, None, closed="left")],
        "outer_lr": [Interval(Real, 0, None, closed="neither")],
        "n_epochs": [Interval(Integral, 1, None, closed="left")],
        "head_update": [StrOptions({"adam", "gd"})],
        "balance": [StrOptions({"auto", "groups", "classes"})],
        "n_iter_no_change": [Interval(Integral, 1, None, closed="left"), None],
        "selection_fraction": [Interval(Real, 0, 1, closed="neither"), None],
        "max_grad_norm": [Interval(Real, 0, None, closed="neither")],
        "rescale": ["boolean"],
        "group_inference": [StrOptions({"auto"}), HasMethods(["fit"]), None],
        "init_temperature": [
            StrOptions({"auto"}),
            Interval(Real, 0, None, closed="neither"),
        ],
    }

    def __init__(
        self,
        preset=None,
        *,
        support_size=_DEFAULTS["support_size"],
        hard_size=_DEFAULTS["hard_size"],
        inner_steps=_DEFAULTS["inner_steps"],
        inner_lr=_DEFAULTS["inner_lr"],
        outer_steps=_DEFAULTS["outer_steps"],
        outer_lr=_DEFAULTS["outer_lr"],
        n_epochs=_DEFAULTS["n_epochs"],
        head_update=_DEFAULTS["head_update"],
        balance=_DEFAULTS["balance"],
        n_iter_no_change=None,
        validation_fraction=0.2,
        selection_fraction=0.5,
        init_coef=None,
        init_intercept=None,
        erm_C=1.0,
        max_samples="auto",
        max_grad_norm=10.0,
        rescale=True,
        group_inference="auto",
        init_temperature="auto",
        device="auto",
        random_state=None,
        verbose=0,
    ):
        self.preset = preset
        self.support_size = support_size
        self.hard_size = hard_size
        self.inner_steps = inner_steps
        self.inner_lr = inner_lr
        self.outer_steps = outer_steps
        self.outer_lr = outer_lr
        self.n_epochs = n_epochs
        self.head_update = head_update
        self.balance = balance
        self.n_iter_no_change = n_iter_no_change
        self.validation_fraction = validation_fraction
        self.selection_fraction = selection_fraction
        self.init_coef = init_coef
        self.init_intercept = init_intercept
        self.erm_C = erm_C
        self.max_samples = max_samples
        self.max_grad_norm = max_grad_norm
        self.rescale = rescale
        self.group_inference = group_inference
        self.init_temperature = init_temperature
        self.device = device
        self.random_state = random_state
        self.verbose = verbose

    @classmethod
    def from_preset(cls, name, **params):
        """An estimator with the paper's settings for one benchmark.

        Parameters
        ----------
        name : {"waterbirds", "celeba", "metashift", "dominoes"}
            The benchmark whose settings (``PRESETS[name]``, the paper's Table
            11) to take, with the paper's loop: ``head_update="adam"``,
            ``balance="classes"``, no group inference, no temperature.
        **params
            Any other parameter, or an override of a preset value.

        Returns
        -------
        HSFMClassifier
            With every value explicit, so ``get_params()`` shows them.

        Examples
        --------
        >>> from skhsfm import HSFMClassifier
        >>> clf = HSFMClassifier.from_preset("waterbirds", n_epochs=5)
        >>> clf.support_size, clf.inner_lr, clf.n_epochs, clf.head_update
        (16, 5e-05, 5, 'adam')
        """
        if name not in PRESETS:
            raise ValueError(
                f"Unknown preset {name!r}; choose one of {sorted(PRESETS)}."
            )
        return cls(**{**PRESETS[name], **_PAPER_LOOP, **params})

    @property
    def history_(self):
        if "_history" not in vars(self):
            raise AttributeError("'HSFMClassifier' object has no attribute 'history_'")
        return RenamedKeys(self._history, {"outer_loss": ("loss", "0.3")})

    def _settings(self):
        """The hyperparameters ``fit`` uses: the signature's values, or, with
        the deprecated ``preset``, the preset's for those left at default."""
        names = _HYPERPARAMETERS + ("group_inference", "init_temperature")
        params = {name: getattr(self, name) for name in names}
        if self.preset is None:
            return params
        warnings.warn(
            "HSFMClassifier(preset=...) is deprecated in 0.2 and will be removed "
            f"in 0.3; use HSFMClassifier.from_preset({self.preset!r}, ...), "
            "whose values get_params() shows.",
            FutureWarning,
            stacklevel=4,
        )
        defaults = {**_DEFAULTS, "group_inference": "auto", "init_temperature": "auto"}
        preset = {**PRESETS[self.preset], **_PAPER_LOOP}
        return {
            name: preset[name] if name in preset and value == defaults[name]
            else value
            for name, value in params.items()
        }  # fmt: skip

    def _fit(self, X, y, groups, X_val, y_val, groups_val):
        params = self._settings()
        from skhsfm._utils.torch import resolve_device

        device = resolve_device(self.device)  # fail early on a bad device
        pools, rng = self._pools(X, y, groups, X_val, y_val, groups_val)
        by_groups = params["balance"] != "classes"
        infer = (
            by_groups
            and params["group_inference"] is not None
            and (pools.groups is None or pools.groups_hard is None)
        )
        if (
            params["balance"] == "groups"
            and not infer
            and (pools.groups is None or pools.groups_hard is None)
        ):
            raise ValueError(
                "balance='groups' needs the groups of the support pool and of the "
                "hard pool: pass groups= (and groups_val= with X_val), leave "
                "group_inference='auto' to infer missing ones, or use "
                "balance='auto' to fall back to classes where groups are unknown."
            )
        start = prepare_start(self, pools, params, rng, infer, by_groups)
        hard, select = np.arange(pools.y_hard.shape[0]), None
        if pools.hard_index is not None and self.selection_fraction is not None:
            # only a hold-out of X is split: it is small, and selecting on the
            # rows training fits would reward fitting them
            hard, select = selection_split(
                pools.y_hard, pools.groups_hard, self.selection_fraction, rng,
                self.classes_.shape[0], "HSFM selects its epoch",
            )  # fmt: skip
        hard_strata = None
        if by_groups and pools.groups_hard is not None:
            hard_strata = cell_labels(pools.y_hard, pools.groups_hard)
        scored = slice(None) if select is None else select
        y_select = pools.y_hard[scored]
        groups_select = None
        if pools.groups_hard is not None:
            groups_select = pools.groups_hard[scored]
        # error groups are a proxy of the minority: on X_val the epoch is
        # selected by their mean accuracy, less noisy than the worst; on a
        # hold-out of X by the worst, with the guard (measured choices, see
        # the user guide's "Which group labels do I need?")
        balanced = start.sources["groups_val"] == "error" and select is None
        temperature = start_temperature(
            params["init_temperature"], start, pools.y_hard, hard, hard_strata
        )
        W0, b0 = start.W0 / temperature, start.b0 / temperature

        from skhsfm._meta import LoopSettings, run_hsfm

        def score(pred):
            if balanced:
                counts = group_counts(y_select, pred, groups_select)
                return float(counts.accuracies.mean()), counts.mean
            return selection_score(y_select, pred, groups_select)

        result = run_hsfm(
            start.X_support,
            start.y_support,
            W0,
            b0,
            start.X_hard,
            pools.y_hard,
            settings=LoopSettings(
                **{name: params[name] for name in _LOOP},
                max_grad_norm=self.max_grad_norm,
                head_update=params["head_update"],
                n_iter_no_change=self.n_iter_no_change,
            ),
            score=score,
            hard_strata=hard_strata,
            hard_rows=None if select is None else hard,
            select_rows=select,
            feature_scale=start.scale,
            device=device,
            log=print if self.verbose else None,
        )
        if select is not None and result.best_epoch > 0:
            result = keep_initial_unless_better(
                result, W0, b0, start, y_select, groups_select, select
            )
        scale = start.scale
        self.hyperparameters_ = {name: params[name] for name in _HYPERPARAMETERS}
        self.groups_source_ = start.sources
        self.init_temperature_ = temperature
        self.scale_ = scale
        self.coef_, self.intercept_ = to_sklearn_head(result.W * scale, result.b)
        self.init_coef_, self.init_intercept_ = to_sklearn_head(
            start.W0 * scale, start.b0
        )
        self.support_indices_ = pools.support_index[start.support]
        self.support_init_ = start.X_support
        self.support_edited_ = (result.H / scale).astype(start.X_support.dtype)
        self.support_labels_ = self.classes_[start.y_support]
        in_X = pools.hard_index is not None
        self.hard_pool_indices_ = pools.hard_index[hard] if in_X else None
        self.selection_indices_ = None if select is None else pools.hard_index[select]
        self.hard_set_indices_ = result.hard_set
        self._history = result.history
        self.best_epoch_ = result.best_epoch
        self.best_score_ = result.best_score
        self.n_iter_ = result.n_epochs
