"""HSFMClassifier: Hard-Set-Guided Feature-Space Meta-Learning as an estimator."""

import warnings
from numbers import Integral, Real

import numpy as np

from skhsfm._base import InitializedHead, RenamedKeys, fill_doc
from skhsfm._linear import to_sklearn_head
from skhsfm._pools import cell_labels, holdout_split, read_pools
from skhsfm._sklearn_compat import Interval, StrOptions
from skhsfm._utils.text import plain
from skhsfm.metrics._engine import selection_score

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

# The estimator's own defaults (used when neither the argument nor a preset sets a
# value). Chosen by measurement on synthetic and embedded-benchmark embeddings: see
# benchmarks/tune_defaults.py and the "How the defaults were chosen" README section.
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
_PAPER_LOOP = dict(head_update="adam", balance="classes")

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
        Take the paper's settings for that benchmark (see ``PRESETS``) for every
        hyperparameter left as None below, and the paper's loop:
        ``head_update="adam"``, ``balance="classes"``.
    support_size : int, default=None
        ``|S|``: support embeddings drawn per class (per (group, class) cell
        with group balancing, see ``balance``) from the support pool. None means
        the preset's value, else 32. Per class, a class with fewer examples is
        sampled with replacement (with a warning); per cell, small cells
        (minority groups) are sampled with replacement so that every cell
        weighs the same.
    hard_size : int or float, default=None
        K_hard: hard-pool examples per class (per group) forming the hard set
        each epoch, the highest-loss ones. An int is a count, a float in (0, 1]
        the share of each class's (group's) hard-pool examples, rounded up, so
        that the hard set adapts to the size of the hard pool. None means the
        preset's value, else 128.
    inner_steps : int, default=None
        T: inner gradient-descent steps, and steps of the head update per
        epoch. None means the preset's value, else 15.
    inner_lr : float, default=None
        alpha: step size of the inner loop and of the head update. None means
        the preset's value, else 0.03.
    outer_steps : int, default=None
        K_H: meta-updates of the support embeddings per epoch. None means the
        preset's value, else 10.
    outer_lr : float, default=None
        eta: Adam learning rate of the support embeddings. None means the
        preset's value, else 0.03.
    n_epochs : int, default=None
        Number of epochs (at most, with ``n_iter_no_change``). None means the
        preset's value, else 200.
    head_update : {"adam", "gd"}, default=None
        How the head is trained on the edited support set each epoch. "gd":
        the same ``inner_steps`` gradient-descent steps of size ``inner_lr``
        that the hypergradient differentiates, so each meta-update predicts
        exactly the head it produces and training does not collapse. "adam":
        ``inner_steps`` Adam steps at ``inner_lr`` (the paper's; the
        hypergradient then models a different update, and the hard-pool
        accuracy can fall sharply between epochs). None means the preset's
        value ("adam"), else "gd".
    balance : {"auto", "groups", "classes"}, default=None
        What the support set, the hard set and the initial head are balanced
        over. "classes" (the paper's): ``support_size`` rows per class, the
        ``hard_size`` hardest hard-pool rows per class and the outer loss their
        plain mean, a plain logistic regression as the initial head. "groups":
        ``support_size`` rows per (group, class) cell of the support pool, the
        ``hard_size`` hardest hard-pool rows per group with every group
        weighing the same in the outer loss, and an initial logistic regression
        that weighs every cell the same; needs ``groups`` (and ``groups_val``
        with ``X_val``). "auto": groups for each pool whose groups are known,
        classes otherwise. None means the preset's value ("classes"), else
        "auto".
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
        ``X`` and ``c * X``; the fitted ``coef_`` is in the space of ``X``.
        False uses the embeddings as given.
    {device}
    random_state : int, RandomState instance or None, default=None
        Seeds the hold-out split and the support-set draw. With an int, ``fit``
        is bit-for-bit reproducible on CPU. torch's global RNG is never used.
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
        known), ``"seconds"``.
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
        The resolved values of the hyperparameters used by ``fit``.
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

    Differences from the paper, all off with a ``preset`` (which runs the
    paper's loop exactly): the default ``head_update="gd"`` trains the head
    with the update the hypergradient models (the paper uses Adam, which makes
    training collapse and recover between epochs); the default
    ``balance="auto"`` draws the support set per (group, class) cell, picks
    the hard set per group with each group weighing the same in the outer
    loss, and weighs the cells equally in the initial logistic regression,
    whenever groups are known (the paper balances classes only); ``hard_size``
    may be a share of the hard pool; without ``X_val``, the epoch is selected
    on held-out rows kept out of the hard sets (``selection_fraction``), the
    initial head competing. How the defaults were chosen, with
    numbers, is in the user guide ("How the defaults were chosen").

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
    """

    _parameter_constraints: dict = {
        **InitializedHead._parameter_constraints,
        "preset": [StrOptions(set(PRESETS)), None],
        "support_size": [Interval(Integral, 1, None, closed="left"), None],
        "hard_size": [
            Interval(Integral, 1, None, closed="left"),
            Interval(Real, 0, 1, closed="right"),
            None,
        ],
        "inner_steps": [Interval(Integral, 1, None, closed="left"), None],
        "inner_lr": [Interval(Real, 0, None, closed="neither"), None],
        "outer_steps": [Interval(Integral, 0, None, closed="left"), None],
        "outer_lr": [Interval(Real, 0, None, closed="neither"), None],
        "n_epochs": [Interval(Integral, 1, None, closed="left"), None],
        "head_update": [StrOptions({"adam", "gd"}), None],
        "balance": [StrOptions({"auto", "groups", "classes"}), None],
        "n_iter_no_change": [Interval(Integral, 1, None, closed="left"), None],
        "selection_fraction": [Interval(Real, 0, 1, closed="neither"), None],
        "max_grad_norm": [Interval(Real, 0, None, closed="neither")],
        "rescale": ["boolean"],
    }

    def __init__(
        self,
        preset=None,
        *,
        support_size=None,
        hard_size=None,
        inner_steps=None,
        inner_lr=None,
        outer_steps=None,
        outer_lr=None,
        n_epochs=None,
        head_update=None,
        balance=None,
        n_iter_no_change=None,
        validation_fraction=0.2,
        selection_fraction=0.5,
        init_coef=None,
        init_intercept=None,
        erm_C=1.0,
        max_samples="auto",
        max_grad_norm=10.0,
        rescale=True,
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
        self.device = device
        self.random_state = random_state
        self.verbose = verbose

    @property
    def history_(self):
        if "_history" not in vars(self):
            raise AttributeError("'HSFMClassifier' object has no attribute 'history_'")
        return RenamedKeys(self._history, {"outer_loss": ("loss", "0.3")})

    def _selection_split(self, pools, rng):
        """Positions in the hard pool of the rows the hard sets come from and of
        the rows that select the epoch (None: the same rows, as in the paper).

        Only a hard pool held out of ``X`` is split (``selection_fraction``):
        it is small, and selecting on the rows training fits would reward
        fitting them.
        """
        everything = np.arange(pools.y_hard.shape[0])
        if pools.hard_index is None or self.selection_fraction is None:
            return everything, None
        hard, select = holdout_split(
            pools.y_hard, pools.groups_hard, self.selection_fraction, rng
        )
        if select.shape[0] == 0 or len(np.unique(pools.y_hard[hard])) < len(
            self.classes_
        ):
            warnings.warn(
                "HSFM selects its epoch on a part of the held-out rows, but no "
                "class or group has two held-out rows to split; selecting on the "
                "rows training uses instead (optimistic). Pass X_val or raise "
                "validation_fraction.",
                UserWarning,
            )
            return everything, None
        return hard, select

    def _resolve_hyperparameters(self):
        base = (
            _DEFAULTS
            if self.preset is None
            else {**PRESETS[self.preset], **_PAPER_LOOP}
        )
        return {
            name: base[name] if getattr(self, name) is None else getattr(self, name)
            for name in _HYPERPARAMETERS
        }

    def _fit(self, X, y, groups, X_val, y_val, groups_val):
        params = self._resolve_hyperparameters()
        from skhsfm._utils.torch import resolve_device

        device = resolve_device(self.device)  # fail early on a bad device
        pools, rng = self._pools(X, y, groups, X_val, y_val, groups_val)
        by_groups = params["balance"] != "classes"
        if params["balance"] == "groups" and (
            pools.groups is None or pools.groups_hard is None
        ):
            raise ValueError(
                "balance='groups' needs the groups of the support pool and of the "
                "hard pool: pass groups= (and groups_val= with X_val), or use "
                "balance='auto' to fall back to classes where groups are unknown."
            )
        # Which rows are needed is known before any is read: the initial
        # head's (max_samples; none when it is given and X is not rescaled),
        # the support draw and the hard pool. A lazy X is read once, here.
        if self.init_coef is None or self.rescale:
            fit_rows = self._initial_rows(pools, rng)
        else:
            fit_rows = np.zeros(0, dtype=int)
        support_strata = pools.groups if by_groups else None
        support = _draw_support(
            pools.y, self.classes_, params["support_size"], rng, support_strata
        )
        (X_fit, X_support), X_hard = read_pools(pools, fit_rows, support)
        y_fit = pools.y if fit_rows is None else pools.y[fit_rows]
        scale = _rms_scale(X_fit) if self.rescale else 1.0
        weights = None
        if by_groups and pools.groups is not None:
            # the initial logistic regression weighs every (group, class) cell
            # the same, like the support set
            fit_groups = pools.groups if fit_rows is None else pools.groups[fit_rows]
            weights = _cell_weights(cell_labels(y_fit, fit_groups))
        W0, b0 = self._initial_head(
            X_fit, y_fit, feature_scale=scale, sample_weight=weights
        )
        hard, select = self._selection_split(pools, rng)
        hard_strata = None
        if by_groups and pools.groups_hard is not None:
            hard_strata = cell_labels(pools.y_hard, pools.groups_hard)
        scored = slice(None) if select is None else select
        y_select = pools.y_hard[scored]
        groups_select = None
        if pools.groups_hard is not None:
            groups_select = pools.groups_hard[scored]

        from skhsfm._meta import LoopSettings, run_hsfm

        def score(pred):
            return selection_score(y_select, pred, groups_select)

        result = run_hsfm(
            X_support,
            pools.y[support],
            W0,
            b0,
            X_hard,
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
            feature_scale=scale,
            device=device,
            log=print if self.verbose else None,
        )

        self.hyperparameters_ = params
        self.scale_ = scale
        self.coef_, self.intercept_ = to_sklearn_head(result.W * scale, result.b)
        self.init_coef_, self.init_intercept_ = to_sklearn_head(W0 * scale, b0)
        self.support_indices_ = pools.support_index[support]
        self.support_init_ = X_support
        self.support_edited_ = (result.H / scale).astype(X_support.dtype)
        self.support_labels_ = self.classes_[pools.y[support]]
        in_X = pools.hard_index is not None
        self.hard_pool_indices_ = pools.hard_index[hard] if in_X else None
        self.selection_indices_ = None if select is None else pools.hard_index[select]
        self.hard_set_indices_ = result.hard_set
        self._history = result.history
        self.best_epoch_ = result.best_epoch
        self.best_score_ = result.best_score
        self.n_iter_ = result.n_epochs


def _cell_weights(cells):
    """Weights of mean 1 that give every cell the same total weight."""
    _, inverse, counts = np.unique(cells, return_inverse=True, return_counts=True)
    return cells.shape[0] / (counts.shape[0] * counts[inverse])


def _rms_scale(X, block=4096):
    """The scalar that brings the root-mean-square coordinate of ``X`` to 1.

    Summed in float64 over row blocks, so a large float32 pool is neither
    copied whole nor summed in float32.
    """
    total = 0.0
    for start in range(0, X.shape[0], block):
        rows = np.asarray(X[start : start + block], dtype=np.float64).ravel()
        total += float(rows @ rows)
    rms = np.sqrt(total / X.size)
    return 1.0 / rms if rms > 0 else 1.0


def _draw_support(y, classes, support_size, rng, strata=None):
    """Draw ``support_size`` indices into the encoded labels ``y`` per class, or
    per (group, class) cell when ``strata`` (the support pool's groups) is given.

    Per class (the paper) a class with fewer rows is drawn with replacement,
    with a warning. Per cell, small cells (minority groups) are drawn with
    replacement so that every cell weighs the same in the support set.
    """
    if strata is not None:
        cells = cell_labels(y, strata)
        picked = []
        for c in np.unique(cells):
            members = np.flatnonzero(cells == c)
            replace = members.shape[0] < support_size
            picked.append(rng.choice(members, size=support_size, replace=replace))
        return np.concatenate(picked)
    picked = []
    for k in range(classes.shape[0]):
        members = np.flatnonzero(y == k)
        replace = members.shape[0] < support_size
        if replace:
            warnings.warn(
                f"support_size={support_size} is larger than class "
                f"{plain(classes[k])}'s {members.shape[0]} examples in the support "
                "pool; sampling that class with replacement. Lower support_size to "
                "avoid duplicates.",
                UserWarning,
            )
        picked.append(rng.choice(members, size=support_size, replace=replace))
    return np.concatenate(picked)
