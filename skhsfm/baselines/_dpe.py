"""DPEClassifier: Diverse Prototypical Ensembles of IsoMax+ heads (the
scikit-learn shell; the method is in :mod:`skhsfm.baselines._dpe_core`)."""

from functools import partial
from numbers import Integral, Real

import numpy as np
from sklearn.utils.validation import check_is_fitted, validate_data

from skhsfm._base import HeldOutHead, fill_doc
from skhsfm._logistic import rms_scale
from skhsfm._pools import cell_labels, read_pools
from skhsfm._sklearn_compat import Interval, StrOptions
from skhsfm._utils.lazy import check_lazy_X, is_dask_array, lazy_map_rows
from skhsfm.baselines._dpe_core import DPESettings, ensemble_scores, run_dpe, unit_rows

__all__ = ["DPEClassifier"]

_NOT_LINEAR = (
    "DPEClassifier averages the softmax probabilities of {n} IsoMax+ prototype "
    "heads, each a function of distances between unit vectors, so the ensemble "
    "is not a linear model and has no LogisticRegression form. Save the fitted "
    "head with pickle, joblib or skops.io instead (its state is numpy only), or "
    "use a linear head (DFRClassifier, AFRClassifier, HSFMClassifier) where a "
    "plain scikit-learn model is needed."
)


@fill_doc
class DPEClassifier(HeldOutHead):
    """Diverse Prototypical Ensemble: IsoMax+ prototype heads trained on
    balanced subsamples of held-out embeddings (To et al., 2025).

    Each of ``n_members`` members is a nearest-prototype head: one prototype
    ``p_c`` per class and a distance scale ``s``, with logits
    ``-|s| ||x - p_c / ||p_c|| ||`` on unit-length (row-standardised)
    embeddings ``x``. Members are trained one after the other, each on a fresh
    subsample of the hard pool balanced over groups (or classes), by momentum
    SGD on the IsoMax+ loss (cross-entropy of ``entropic_scale`` times the
    logits) plus ``prototype_penalty`` times the mean squared prototype norm
    plus a diversity penalty: the absolute mean inner product of its
    prototypes with the earlier members', weighted ``diversity_penalty /
    (1 + diversity_decay (m - 1))`` for member ``m``. Each member is kept at
    the epoch with the best worst-group accuracy on the whole hard pool
    (worst-class without groups); the ensemble predicts the mean of the
    members' softmax probabilities.

    Parameters
    ----------
    n_members : int, default=15
        Ensemble size (the official ``num_stages``).
    n_epochs : int, default=20
        Epochs per member (``epochs``).
    learning_rate : float, default=1e-3
        SGD step size (``lr``); momentum 0.9, no weight decay, no schedule, as
        the official defaults.
    batch_size : int, default=256
        Rows per SGD step (``batch_size_train``); each epoch drops its last
        incomplete batch.
    balance : {"auto", "groups", "classes"}, default="auto"
        What each member's subsample is balanced over: "groups" (the
        official ``train_attr=True``: every group, i.e. (class, attribute)
        cell, cut to the size of the smallest) needs hard-pool groups;
        "classes" (``train_attr=False``) balances classes only; "auto" takes
        groups when the hard pool has them, else classes. Groups, when known,
        select the epochs in every mode (as in the official code).
    entropic_scale : float, default=30.0
        IsoMax+ entropic scale (``entropic``): multiplies the logits in the
        training loss only.
    prototype_penalty : float, default=10.0
        Weight of the mean squared norm of the raw prototypes (the official
        ``wd_weight``).
    diversity_penalty : float, default=5e4
        Weight of the inter-prototype covariance penalty for the second member
        (``cov_reg``); 0 trains independent members.
    diversity_decay : float, default=0.05
        Member ``m >= 1`` gets ``diversity_penalty / (1 + diversity_decay *
        (m - 1))`` (``alpha``).
    standardize_rows : bool, default=True
        Standardise each embedding over its own entries before training and
        prediction (``norm_emb``). The heads use unit vectors either way.
    {validation_fraction}
    {device}
    random_state : int, RandomState instance or None, default=None
        Seeds the hold-out, the subsamples, the initial prototypes and the
        batch order (numpy draws, so a CPU and a GPU fit see the same ones).
        torch's global RNG is never used.
    verbose : int, default=0
        Print one line per member when > 0.

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        Class labels.
    prototypes_ : ndarray of shape (n_members, n_classes, n_features)
        Each member's prototypes at its selected epoch (raw: prediction
        normalises them).
    distance_scales_ : ndarray of shape (n_members,)
        Each member's distance scale ``s`` (its absolute value is used).
    best_epochs_ : ndarray of int of shape (n_members,)
        Selected epoch of each member (1-based).
    best_scores_ : ndarray of shape (n_members,)
        Hard-pool worst-group (or worst-class) accuracy of each member at its
        selected epoch.
    history_ : dict of ndarray
        ``"epoch"`` (1..n_epochs) and, of shape (n_members, n_epochs),
        ``"loss"`` (mean training loss over the epoch's batches),
        ``"worst_group_accuracy"`` (worst-class without groups) and
        ``"mean_accuracy"`` on the hard pool.
    balance_ : str
        "groups" or "classes": what the subsamples were balanced over.
    subsample_size_ : int
        Rows per group (or class) in each member's subsample.
    n_iter_ : int
        Epochs run per member.
    hard_pool_indices_ : ndarray of int or None
        Rows of ``X`` held out as the hard pool, or None when ``X_val`` was
        given.
    n_features_in_ : int
        Number of embedding dimensions seen in ``fit``.
    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Defined only when ``X`` has string column names.

    See Also
    --------
    DFRClassifier : Group-balanced L1 logistic heads averaged (linear).
    AFRClassifier : Reweighting without group labels for training.
    skhsfm.HSFMClassifier : Hard-set-guided feature-space meta-learning.

    Notes
    -----
    DPE trains on the hard pool only (``X_val``, or a hold-out of ``X``);
    the support pool ``X`` is validated and otherwise unused, as the frozen
    backbone's training split is in the paper's last-layer setting. A dask
    array or memmap ``X`` is read only for the hard pool.

    The ensemble is not linear (it averages probabilities of distance-based
    heads), so it has no ``coef_`` and :meth:`to_sklearn` raises
    ``NotImplementedError``; pickle, joblib and skops save it.
    ``decision_function`` returns the log-odds of ``classes_[1]`` for two
    classes and the log-probabilities otherwise.

    The algorithm and defaults are those of the official package (``dpe``
    0.2.0, ``src/dpe/core.py``), written anew. Where this differs:

    - Randomness comes from ``random_state`` (numpy draws for subsamples,
      initial prototypes and batch order) instead of the global numpy and
      torch generators, so the draws differ while their distributions do not.
    - A subsample smaller than ``batch_size`` is trained as one batch per
      epoch; the official ``drop_last`` loader makes no step at all then
      (members stay at their random start).
    - The loss uses ``log_softmax`` (the official takes the log of a softmax,
      which gives ``inf`` when a probability underflows).
    - Each SGD step computes the loss and its gradient in closed form
      (``member_gradient`` in ``skhsfm/baselines/_dpe_core.py``) from the
      matrix-product form of the distances, ``sqrt(|x|^2 + 1 - 2 x.u)``,
      instead of autograd through ``torch.cdist``'s direct form: the same
      gradient to rounding (checked against autograd in the tests), at a
      third of the cost per step. A member trained this way and one trained
      by the official ``_train_prototypes`` from the same start and batches
      agree to float32 rounding (``benchmarks/bench_dpe.py --member-check``).
    - A row with all entries equal becomes the zero vector (the official
      standardisation divides 0 by 0); one-dimensional embeddings divide the
      diversity penalty by 1 instead of ``d - 1 = 0``.
    - Without ``X_val``, the hard pool is ``validation_fraction`` of ``X``
      (the official code always trains on a validation split).
    - The official per-epoch evaluation (all metrics of the validation split
      through a data loader) is replaced by one matrix product per epoch
      giving the same worst-group accuracy; training batches are gathered
      from tensors kept on the device, and CPU fits run on one torch thread.
      The same number of members, epochs and steps runs.

    References
    ----------
    M. To, P. F. R. Wilson et al. "Diverse Prototypical Ensembles Improve
    Robustness to Subpopulation Shift", ICML 2025 (arXiv:2505.23027).

    Examples
    --------
    >>> import numpy as np
    >>> from skhsfm.baselines import DPEClassifier
    >>> from skhsfm.datasets import make_spurious_embeddings
    >>> X, y, _, g = make_spurious_embeddings(400, 16, random_state=0)
    >>> X_val, y_val, _, g_val = make_spurious_embeddings(
    ...     200, 16, split="val", random_state=0)
    >>> dpe = DPEClassifier(n_members=3, n_epochs=5, device="cpu", random_state=0)
    >>> dpe.fit(X, y, g, X_val=X_val, y_val=y_val, groups_val=g_val).balance_
    'groups'
    >>> dpe.prototypes_.shape
    (3, 2, 16)
    >>> dpe.predict_proba(X_val[:2]).shape
    (2, 2)
    """

    # DPE never reads the support pool: keep one held out of X as a view
    _view_support = True

    _parameter_constraints: dict = {
        **HeldOutHead._parameter_constraints,
        "n_members": [Interval(Integral, 1, None, closed="left")],
        "n_epochs": [Interval(Integral, 1, None, closed="left")],
        "learning_rate": [Interval(Real, 0, None, closed="neither")],
        "batch_size": [Interval(Integral, 1, None, closed="left")],
        "balance": [StrOptions({"auto", "groups", "classes"})],
        "entropic_scale": [Interval(Real, 0, None, closed="neither")],
        "prototype_penalty": [Interval(Real, 0, None, closed="left")],
        "diversity_penalty": [Interval(Real, 0, None, closed="left")],
        "diversity_decay": [Interval(Real, 0, None, closed="left")],
        "standardize_rows": ["boolean"],
        "device": [str],
        "verbose": ["verbose"],
    }

    def __init__(
        self,
        n_members=15,
        n_epochs=20,
        *,
        learning_rate=1e-3,
        batch_size=256,
        balance="auto",
        entropic_scale=30.0,
        prototype_penalty=10.0,
        diversity_penalty=5e4,
        diversity_decay=0.05,
        standardize_rows=True,
        validation_fraction=0.2,
        device="auto",
        random_state=None,
        verbose=0,
    ):
        self.n_members = n_members
        self.n_epochs = n_epochs
        self.learning_rate = learning_rate
        self.batch_size = batch_size
        self.balance = balance
        self.entropic_scale = entropic_scale
        self.prototype_penalty = prototype_penalty
        self.diversity_penalty = diversity_penalty
        self.diversity_decay = diversity_decay
        self.standardize_rows = standardize_rows
        self.validation_fraction = validation_fraction
        self.device = device
        self.random_state = random_state
        self.verbose = verbose

    def _fit(self, X, y, groups, X_val, y_val, groups_val):
        if self.balance == "groups":
            _require_groups(X_val, groups, groups_val)
        pools, rng = self._pools(X, y, groups, X_val, y_val, groups_val)
        _, X_hard = read_pools(pools)  # a lazy X: only the hard pool is read
        # unit rows make DPE scale-free; what is left to refuse (as DFR does)
        # is a hard pool without a non-zero value
        rms_scale(X_hard, name="X_val" if pools.hard_index is None else "X")
        by_groups = pools.groups_hard is not None and self.balance != "classes"
        cells = cell_labels(pools.y_hard, pools.groups_hard if by_groups else None)
        # the epochs are selected by the groups themselves when known
        strata = pools.y_hard if pools.groups_hard is None else pools.groups_hard
        strata = np.unique(strata, return_inverse=True)[1]
        settings = DPESettings(
            n_members=self.n_members,
            n_epochs=self.n_epochs,
            learning_rate=self.learning_rate,
            batch_size=self.batch_size,
            entropic_scale=self.entropic_scale,
            prototype_penalty=self.prototype_penalty,
            diversity_penalty=self.diversity_penalty,
            diversity_decay=self.diversity_decay,
        )
        result = run_dpe(
            unit_rows(X_hard, self.standardize_rows),
            pools.y_hard,
            cells,
            strata,
            self.classes_.shape[0],
            settings,
            rng,
            device=self.device,
            log=print if self.verbose else None,
        )
        rows = np.arange(self.n_members)
        self.prototypes_ = result.prototypes
        self.distance_scales_ = result.scales
        self.best_epochs_ = result.best_epochs + 1
        self.best_scores_ = result.worst[rows, result.best_epochs]
        self.history_ = dict(
            epoch=np.arange(1, self.n_epochs + 1),
            loss=result.loss,
            worst_group_accuracy=result.worst,
            mean_accuracy=result.mean,
        )
        self.balance_ = "groups" if by_groups else "classes"
        self.subsample_size_ = result.subsample_size
        self.n_iter_ = self.n_epochs
        self.hard_pool_indices_ = pools.hard_index

    def _decision(self, X):
        check_is_fitted(self, ("prototypes_", "distance_scales_", "classes_"))
        scores = partial(
            ensemble_scores,
            prototypes=self.prototypes_,
            scales=self.distance_scales_,
            standardize=self.standardize_rows,
        )
        if is_dask_array(X):  # stays lazy: scores block by block
            check_lazy_X(self, X, "X", reset=False)
            n_classes = self.classes_.shape[0]
            return lazy_map_rows(
                X, scores, None if n_classes == 2 else n_classes, np.float64
            )
        X = validate_data(self, X, reset=False, dtype=(np.float64, np.float32))
        return scores(X)

    def decision_function(self, X):
        """Ensemble scores: log-odds of ``classes_[1]`` for two classes, else
        the log of each class's averaged probability.

        Parameters
        ----------
        {predict_X}

        Returns
        -------
        scores : ndarray of shape (n_samples,) or (n_samples, n_classes)
            ``predict`` takes the positive sign (two classes) or the largest
            score.
        """
        return self._decision(X)

    def predict_proba(self, X):
        """The members' softmax probabilities, averaged.

        Parameters
        ----------
        {predict_X}

        Returns
        -------
        proba : ndarray of shape (n_samples, n_classes)
            Columns follow ``classes_``.
        """
        return super().predict_proba(X)

    def to_sklearn(self):
        """Not available: the DPE ensemble is not a linear model.

        Raises
        ------
        NotImplementedError
            Always (after checking that the head is fitted); the message says
            how to save or serve the head instead.
        """
        check_is_fitted(self, ("prototypes_", "distance_scales_", "classes_"))
        raise NotImplementedError(_NOT_LINEAR.format(n=self.prototypes_.shape[0]))


for _method in ("decision_function", "predict_proba"):
    fill_doc(getattr(DPEClassifier, _method))


def _require_groups(X_val, groups, groups_val):
    if X_val is None and groups is None:
        raise ValueError(
            "DPEClassifier(balance='groups') needs group labels: pass groups= "
            "(one group per row of X; the hard pool is held out from X), or pass "
            "X_val, y_val and groups_val, or set balance='auto' or 'classes'."
        )
    if X_val is not None and groups_val is None:
        raise ValueError(
            "DPEClassifier(balance='groups') balances groups of the held-out data "
            "and needs groups_val (one group per row of X_val); got "
            "groups_val=None. Pass groups_val or set balance='auto' or 'classes'."
        )
