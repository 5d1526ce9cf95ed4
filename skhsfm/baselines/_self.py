"""SELFClassifier: selective last-layer finetuning, with no group labels."""

import warnings
from numbers import Integral, Real

import numpy as np
from scipy.special import softmax

from skhsfm._base import InitializedHead, fill_doc
from skhsfm._linear import LinearHead, to_sklearn_head
from skhsfm._logistic import rms_scale
from skhsfm._pools import holdout_split, read_pools
from skhsfm._sklearn_compat import Interval, StrOptions
from skhsfm._validation import check_grid
from skhsfm.groups import dropout_disagreement, misclassification_loss
from skhsfm.metrics._engine import selection_score

__all__ = ["SELFClassifier"]

#: The official grids (``exps/disagreement.py``): points selected, dropout
#: probabilities. The learning rates are on the unit-scaled embeddings (Notes).
SELF_N_SELECTED = (20, 100, 500)
SELF_LEARNING_RATES = (0.1, 1.0, 10.0, 100.0)
SELF_DROPOUTS = (0.5, 0.7, 0.9)

#: Parameters of InitializedHead that SELF (numpy only, silent) does not take.
_NOT_TAKEN = ("device", "verbose")


@fill_doc
class SELFClassifier(InitializedHead):
    """Selective last-layer finetuning: fine-tune an ERM head on the few
    held-out points where it disagrees with a dropout copy of itself
    (LaBonte, Muthukumar and Kumar, 2023). Needs no group labels at all.

    1. **ERM head.** A logistic regression on the support pool ``X``, or the
       head given as ``init_coef`` / ``init_intercept`` (e.g. the backbone's
       own last layer).
    2. **Split the hard pool** (``X_val``, or a hold-out of ``X``) in two,
       stratified by class (by group when groups are given): a *scored* part
       and a *tuning* part (``tuning_fraction``). With ``cross_fit=True``
       (default) the parts then swap roles, so that every held-out row is
       both selected from and tuned on, never by the same head.
    3. **Select.** Rank the scored rows by a signal of the ERM head and keep
       the top ``k`` of each scored part: ``"disagreement"``, the KL
       divergence between the head's predictions on the row with its
       features dropped out and on the row itself
       (:func:`skhsfm.groups.dropout_disagreement`); or
       ``"misclassification"``, the head's cross-entropy (its errors first,
       :func:`skhsfm.groups.misclassification_loss`); or ``"random"``, the
       control the paper compares with. Only the selected rows' class labels
       are used for training.
    4. **Fine-tune** the ERM head on the selected rows by SGD with momentum,
       class-balanced mini-batches drawn with replacement, ``n_steps`` steps.
    5. **Tune** ``k``, the learning rate and the dropout probability over
       their grids by worst-group accuracy on the tuning part (worst-class
       accuracy when the hard pool has no group labels; cross-fitted, on the
       out-of-fold predictions of both parts), and keep that head (the mean
       of the two parts' heads when cross-fitted).

    Parameters
    ----------
    selection : {"disagreement", "misclassification", "random"}, \
default="disagreement"
        How the rows to fine-tune on are chosen (step 3).
    n_selected : int or sequence of int, default=(20, 100, 500)
        Numbers ``k`` of top-ranked scored rows to fine-tune on; a sequence is
        searched. A ``k`` larger than the scored part takes all of it.
    learning_rate : float or sequence of float, default=(0.1, 1, 10, 100)
        SGD step size(s) on the unit-scaled embeddings (Notes); a sequence is
        searched.
    dropout : float or sequence of float in (0, 1), default=(0.5, 0.7, 0.9)
        Probability of dropping a feature in the disagreement signal; a
        sequence is searched. Used only with ``selection="disagreement"``.
    n_steps : int, default=250
        SGD steps of each fine-tuning (the paper's Waterbirds and CelebA
        setting).
    batch_size : int, default=32
        Rows per SGD step.
    momentum : float in [0, 1), default=0.9
        SGD momentum.
    weight_decay : float, default=1e-4
        L2 penalty of the SGD steps (on weights and biases, as
        ``torch.optim.SGD``).
    tuning_fraction : float in (0, 1), default=0.5
        Share of the hard pool kept apart to tune ``k``, the learning rate and
        the dropout probability; the rest is scored and selected from.
    cross_fit : bool, default=True
        Also select from the tuning part and tune on the scored part, score
        every setting on the out-of-fold predictions of all held-out rows and
        average the two heads of the kept setting. False is the official
        code's single split (Notes).
    {validation_fraction}
    {init_coef}
    {init_intercept}
    {erm_C}
    {max_samples}
    {rescale}
    random_state : int, RandomState instance or None, default=None
        Seeds the hold-out, the scored/tuning split, the dropout masks and the
        mini-batches.

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        Class labels.
    coef_ : ndarray of shape (1, n_features) or (n_classes, n_features)
        Weights of the fine-tuned head (one row for two classes).
    {fitted_features}
    init_coef_, init_intercept_ : ndarray
        The ERM head SELF started from (sklearn convention).
    best_n_selected_ : int
        Selected ``k`` (capped at the size of the scored part), per part.
    best_learning_rate_ : float
        Selected learning rate.
    best_dropout_ : float or None
        Selected dropout probability; None unless
        ``selection="disagreement"``.
    best_score_ : float
        Tuning worst-group (worst-class without groups) accuracy of the kept
        setting (out of fold over both parts when cross-fitted).
    grid_scores_ : ndarray of shape (n_dropout, n_selected, n_learning_rate)
        Tuning worst-group (or worst-class) accuracy of every setting
        (``n_dropout`` is 1 unless ``selection="disagreement"``).
    selection_scores_ : ndarray of shape (n_hard,)
        The selection signal of each row of the hard pool, for the selected
        dropout probability; NaN on rows that were not scored (the tuning
        part when ``cross_fit=False``).
    selected_indices_ : ndarray of int
        Rows of the hard pool the kept head was fine-tuned on (``k`` from
        each part when cross-fitted).
    scored_indices_ : ndarray of int
        Rows of the hard pool in the first part (scored and selected from).
    tuning_indices_ : ndarray of int
        Rows of the hard pool in the second part (used for tuning; also
        scored and selected from when cross-fitted).
    hard_pool_indices_ : ndarray of int or None
        Rows of ``X`` held out as the hard pool, or None when ``X_val`` was
        given.
    scale_ : float
        The scalar ``X`` was multiplied by for the ERM head's regression (1.0
        with ``rescale=False`` or a given ``init_coef``).
    n_iter_ : int
        SGD steps of the kept head (``n_steps``).

    See Also
    --------
    DFRClassifier : Group-balanced last-layer retraining (needs group labels).
    AFRClassifier : Reweighting of the ERM head's held-out errors.
    skhsfm.groups.InferredGroupsClassifier : Any head with inferred groups.

    Notes
    -----
    **Which SELF.** The paper ranks held-out points by the disagreement of the
    final ERM network with an *early-stopped* checkpoint of the same network
    (its headline variant) or with a *dropout* copy of it, or by
    misclassification. On frozen embeddings the early-stopped network does
    not exist: the embeddings are those of the final backbone, and an early
    checkpoint would have embedded the data differently. The dropout variant
    carries over exactly, because the official code's dropout layer sits
    right before the last layer, on the embeddings; so
    ``selection="disagreement"`` is dropout disagreement:
    ``KL(p_dropout || p)`` per row, one inverted-dropout mask per row, as the
    official ``Disagreement`` data module computes it. An early-stopped
    *head* (a few SGD epochs from zero on the frozen training embeddings) is a
    different object; measured on the dominoes benchmark it selected no
    better than dropout and needs a pass over the training embeddings, so it
    is not offered.

    **As the official code.** Half of the held-out set is scored and half
    tunes (``tuning_fraction=0.5``); the top ``k`` rows by the signal are
    taken with ``k`` in {20, 100, 500} and the dropout probability in
    {0.5, 0.7, 0.9}; the last layer is fine-tuned from the ERM head (not
    retrained from zero) for 250 steps of SGD (momentum 0.9, weight decay
    1e-4, batch 32, constant learning rate) with class-balanced sampling; the
    setting with the best tuning worst-group accuracy is kept.

    **Deviations.** (1) The official code tunes with the group labels of its
    validation half; here they are used when given (``groups_val``, or
    ``groups`` for a hold-out of ``X``) and worst-class accuracy is used
    otherwise, so that no group label is needed. (2) The official learning
    rates (1e-4, 1e-3, 1e-2) act on raw ResNet-50 features; here the head is
    fine-tuned on the hard pool's embeddings standardised per feature and
    divided by ``sqrt(n_features)`` (mean squared norm 1), so that one grid
    means the same for any scale and dimension of ``X``: a step of 1 there is
    about a step of 1e-3 on raw ResNet-50 features (mean squared norm about
    1000). The grid reaches 100 for heads that have to move far from the ERM
    head on 20 points. The fine-tuned head is mapped back to the raw
    embeddings, so prediction is a plain linear map. (3) Ties in tuning go to
    the first setting in grid order; everything is seeded. (4) By default
    the two halves are cross-fitted (``cross_fit``): with a few hundred
    held-out rows, one half's worst-class accuracy is a noisy tuning signal,
    and out-of-fold predictions score every setting on twice the rows (the
    variance of an accuracy halves with twice the rows); the kept head
    is the mean of the two halves' heads. ``cross_fit=False`` is the
    official single split.

    A dask array or numpy memmap ``X`` (and ``X_val``) is read only where
    rows are needed: the initial head's rows (``max_samples``; none when
    ``init_coef`` is given) and the hard pool, in one pass.

    References
    ----------
    T. LaBonte, V. Muthukumar and A. Kumar. "Towards Last-layer Retraining for
    Group Robustness with Fewer Annotations", NeurIPS 2023
    (arXiv:2309.08534).

    Examples
    --------
    >>> from skhsfm.baselines import SELFClassifier
    >>> from skhsfm.datasets import make_spurious_embeddings
    >>> X, y, _, _ = make_spurious_embeddings(800, 16, random_state=0)
    >>> Xv, yv, _, _ = make_spurious_embeddings(300, 16, split="val",
    ...                                         random_state=0)
    >>> clf = SELFClassifier(n_selected=(20, 60), random_state=0)
    >>> clf.fit(X, y, X_val=Xv, y_val=yv).best_n_selected_ in (20, 60)
    True
    >>> clf.selected_indices_.shape[0] == 2 * clf.best_n_selected_
    True
    >>> from skhsfm import worst_group_accuracy
    >>> from skhsfm.baselines import ERMHeadClassifier
    >>> Xt, yt, _, gt = make_spurious_embeddings(1000, 16, split="test",
    ...                                          random_state=0)
    >>> erm = ERMHeadClassifier().fit(X, y)
    >>> (worst_group_accuracy(yt, clf.predict(Xt), groups=gt)
    ...  > worst_group_accuracy(yt, erm.predict(Xt), groups=gt) + 0.1)
    True
    """

    _parameter_constraints: dict = {
        **{
            name: constraint
            for name, constraint in InitializedHead._parameter_constraints.items()
            if name not in _NOT_TAKEN
        },
        "selection": [StrOptions({"disagreement", "misclassification", "random"})],
        "n_selected": [Interval(Integral, 1, None, closed="left"), "array-like"],
        "learning_rate": [Interval(Real, 0, None, closed="neither"), "array-like"],
        "dropout": [Interval(Real, 0, 1, closed="neither"), "array-like"],
        "n_steps": [Interval(Integral, 1, None, closed="left")],
        "batch_size": [Interval(Integral, 1, None, closed="left")],
        "momentum": [Interval(Real, 0, 1, closed="left")],
        "weight_decay": [Interval(Real, 0, None, closed="left")],
        "tuning_fraction": [Interval(Real, 0, 1, closed="neither")],
        "cross_fit": ["boolean"],
    }

    def __init__(
        self,
        selection="disagreement",
        *,
        n_selected=SELF_N_SELECTED,
        learning_rate=SELF_LEARNING_RATES,
        dropout=SELF_DROPOUTS,
        n_steps=250,
        batch_size=32,
        momentum=0.9,
        weight_decay=1e-4,
        tuning_fraction=0.5,
        cross_fit=True,
        validation_fraction=0.2,
        init_coef=None,
        init_intercept=None,
        erm_C=1.0,
        max_samples="auto",
        rescale=True,
        random_state=None,
    ):
        self.selection = selection
        self.n_selected = n_selected
        self.learning_rate = learning_rate
        self.dropout = dropout
        self.n_steps = n_steps
        self.batch_size = batch_size
        self.momentum = momentum
        self.weight_decay = weight_decay
        self.tuning_fraction = tuning_fraction
        self.cross_fit = cross_fit
        self.validation_fraction = validation_fraction
        self.init_coef = init_coef
        self.init_intercept = init_intercept
        self.erm_C = erm_C
        self.max_samples = max_samples
        self.rescale = rescale
        self.random_state = random_state

    def _fit(self, X, y, groups, X_val, y_val, groups_val):
        n_selected = check_grid(self.n_selected, "n_selected", low=1, integer=True)
        rates = check_grid(self.learning_rate, "learning_rate", closed="neither")
        dropouts = check_grid(self.dropout, "dropout", closed="neither", high=1)
        if self.selection != "disagreement":
            dropouts = [None]
        pools, rng = self._pools(X, y, groups, X_val, y_val, groups_val)
        # the support pool only feeds the ERM head; a lazy X is read once
        if self.init_coef is None:
            fit_rows = self._initial_rows(pools, rng)
        else:
            fit_rows = np.zeros(0, dtype=int)
        (X_fit,), X_hard = read_pools(pools, fit_rows)
        y_fit = pools.y if fit_rows is None else pools.y[fit_rows]
        # the regression sees X at the house scale; W0 acts on X as given
        erm_scale = 1.0 if self.init_coef is not None else self._feature_scale(X_fit)
        W0, b0 = self._initial_head(X_fit, y_fit, feature_scale=erm_scale)
        W0 = W0 * erm_scale
        del X_fit
        # every step below sees the hard pool at unit RMS (the same numbers
        # for any scale of X, 1e-300 and 1e300 included); W0 / c acts on it
        c = rms_scale(X_hard, name="the hard pool")
        X_hard = np.asarray(X_hard, dtype=np.float64) * c
        W0_c = W0 / c
        first, second = self._split(pools, rng)
        parts = [(first, second)]  # (rows selected from, rows tuned on)
        if self.cross_fit:
            parts.append((second, first))
        scored = np.unique(np.concatenate([select for select, _ in parts]))
        signals = np.full((len(dropouts), X_hard.shape[0]), np.nan)
        signals[:, scored] = self._signals(
            LinearHead.from_softmax(W0_c, b0), X_hard[scored], pools.y_hard[scored],
            dropouts, rng,
        )  # fmt: skip
        # fine-tune on unit-scaled embeddings: the same head, rewritten for them
        mean, scale = unit_scaling(X_hard)
        Z = (X_hard - mean) / scale
        best, grid = self._search(
            Z, pools, W0_c * scale, b0 + W0_c @ mean, signals, parts, n_selected,
            rates, rng,
        )  # fmt: skip
        (score, _), (d, j, r), W, b, chosen = best
        # back to the raw embeddings: W.(c x - m)/s + b == (c W/s).x + (b - (W/s).m)
        W = W / scale
        self.coef_, self.intercept_ = to_sklearn_head(W * c, b - W @ mean)
        self.init_coef_, self.init_intercept_ = to_sklearn_head(W0, b0)
        self.best_n_selected_ = int(chosen[0].shape[0])
        self.best_learning_rate_ = rates[r]
        self.best_dropout_ = dropouts[d]
        self.best_score_ = float(score)
        self.grid_scores_ = grid
        self.selection_scores_ = signals[d]
        self.selected_indices_ = np.unique(np.concatenate(chosen))
        self.scored_indices_ = first
        self.tuning_indices_ = second
        self.hard_pool_indices_ = pools.hard_index
        self.scale_ = float(erm_scale)
        self.n_iter_ = self.n_steps

    def _search(self, Z, pools, W0, b0, signals, parts, n_selected, rates, rng):
        """Fine-tune every setting on each part's top rows and score it on the
        other part (out of fold); return the best ``(key, (d, j, r), W, b,
        rows per part)``, the head averaged over the parts, and the grid."""
        y, groups = pools.y_hard, pools.groups_hard
        held = np.concatenate([tune for _, tune in parts])
        held_groups = None if groups is None else groups[held]
        grid = np.full((signals.shape[0], len(n_selected), len(rates)), np.nan)
        best = None
        for d, signal in enumerate(signals):
            for j, k in enumerate(n_selected):
                fits, chosen = [], []
                for select, _ in parts:
                    # stable: ties keep the hard pool's order
                    rows = select[np.argsort(-signal[select], kind="stable")[:k]]
                    batches = balanced_batches(
                        y, rows, self.n_steps, self.batch_size, rng
                    )
                    fit = finetune_heads(
                        Z, y, W0, b0, batches, rates, momentum=self.momentum,
                        weight_decay=self.weight_decay,
                    )  # fmt: skip
                    fits.append(fit)
                    chosen.append(rows)
                for r in range(len(rates)):
                    pred = np.concatenate([
                        np.argmax(Z[tune] @ Ws[r].T + bs[r], axis=1)
                        for (_, tune), (Ws, bs) in zip(parts, fits)
                    ])  # fmt: skip
                    key = selection_score(y[held], pred, held_groups)
                    grid[d, j, r] = key[0]
                    if best is None or key > best[0]:
                        W = np.mean([Ws[r] for Ws, _ in fits], axis=0)
                        b = np.mean([bs[r] for _, bs in fits], axis=0)
                        best = (key, (d, j, r), W, b, chosen)
        return best, grid

    def _split(self, pools, rng):
        """The scored and the tuning rows of the hard pool."""
        scored, tuning = holdout_split(
            pools.y_hard, pools.groups_hard, self.tuning_fraction, rng
        )
        if tuning.shape[0] == 0:
            warnings.warn(
                "SELF tunes on a part of the hard pool, but no class or group has "
                "two held-out samples to split; selecting from and tuning on the "
                "whole hard pool instead (optimistic). Pass more held-out data "
                "(X_val or a larger validation_fraction).",
                UserWarning,
            )
            scored = tuning = np.arange(pools.y_hard.shape[0])
        return scored, tuning

    def _signals(self, head, X, y, dropouts, rng):
        """One selection signal of the scored rows per dropout probability
        (one signal for the other selections); larger means selected first."""
        if self.selection == "misclassification":
            return [misclassification_loss(head, X, y)]
        if self.selection == "random":
            return [rng.random_sample(y.shape[0])]
        return [
            dropout_disagreement(head, X, dropout=p, random_state=rng) for p in dropouts
        ]


def unit_scaling(X):
    """Per-feature mean and scale that give ``(X - mean) / scale`` zero-mean
    features of equal variance and mean squared row norm 1 (constant
    features keep scale ``1 / sqrt(n_features)`` and stay zero)."""
    mean = X.mean(axis=0)
    std = X.std(axis=0)
    std[std <= np.finfo(np.float64).eps * np.maximum(np.abs(mean), 1.0)] = 1.0
    return mean, std * np.sqrt(X.shape[1])


def balanced_batches(y, rows, n_steps, batch_size, random_state):
    """Mini-batches of ``rows`` drawn with replacement, each row with
    probability inversely proportional to its class's count among ``rows``
    (what a class-balanced ``WeightedRandomSampler`` draws).

    Returns
    -------
    batches : ndarray of int of shape (n_steps, batch_size)
        Rows of ``y``, one line per SGD step.
    """
    counts = np.bincount(y[rows])
    weights = 1.0 / counts[y[rows]]
    picked = random_state.choice(
        rows.shape[0], size=(n_steps, batch_size), p=weights / weights.sum()
    )
    return rows[picked]


def finetune_heads(Z, y, W, b, batches, learning_rates, *, momentum, weight_decay):
    """Fine-tune a softmax head by SGD on ``batches``, once per learning rate.

    SGD as ``torch.optim.SGD`` does it (``buf = momentum * buf + grad +
    weight_decay * param``, ``param -= lr * buf``) on the mean cross-entropy
    of each mini-batch; every learning rate sees the same mini-batches.

    Parameters
    ----------
    Z : ndarray of shape (n, d)
    y : ndarray of int of shape (n,)
        Encoded labels.
    W, b : ndarray of shape (n_classes, d) and (n_classes,)
        The head to start from (one row per class).
    batches : ndarray of int of shape (n_steps, batch_size)
        Rows of ``Z`` of each step (:func:`balanced_batches`).
    learning_rates : sequence of float

    Returns
    -------
    W, b : ndarray of shape (n_rates, n_classes, d) and (n_rates, n_classes)
    """
    rates = np.asarray(learning_rates, dtype=np.float64)
    W = np.repeat(W[None], rates.shape[0], axis=0)
    b = np.repeat(b[None], rates.shape[0], axis=0)
    buf_W, buf_b = np.zeros_like(W), np.zeros_like(b)
    eye = np.eye(W.shape[1])
    for batch in batches:
        Zb = Z[batch]
        # d(mean CE)/d logits = (softmax - onehot) / batch size
        grad = softmax(np.einsum("nd,lkd->lnk", Zb, W) + b[:, None, :], axis=2)
        grad -= eye[y[batch]]
        grad /= batch.shape[0]
        buf_W = momentum * buf_W + np.einsum("lnk,nd->lkd", grad, Zb)
        buf_W += weight_decay * W
        buf_b = momentum * buf_b + grad.sum(axis=1) + weight_decay * b
        W = W - rates[:, None, None] * buf_W
        b = b - rates[:, None] * buf_b
    return W, b
