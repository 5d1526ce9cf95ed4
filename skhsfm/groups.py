"""Group inference: fill in the group labels a data set lacks.

Group-robust heads balance and select by *groups*, (class, spurious attribute)
cells. Most users know them only for a small validation set, or not at all.
:class:`GroupInferrer` infers the missing ones from the data a head is fit on,
and :class:`InferredGroupsClassifier` puts it in front of any head, so that
DFR, AFR or HSFM can be fit, searched and pickled without (some) group labels.
:class:`~skhsfm.HSFMClassifier` uses a :class:`GroupInferrer` itself wherever
groups are missing (``group_inference="auto"``).

Two signals, each a logistic regression on standardised embeddings:

- ``"classifier"``: where one split has group labels, a classifier of the
  group, one per class, learnt on that split, predicts the groups of the other
  (the idea of semi-supervised attribute prediction, e.g. Nam et al., 2022,
  "Spread spurious attribute"). It assumes the attribute is linearly readable
  from the embeddings; it fails when it is not (then the groups it guesses are
  noise, but a linear head could not have keyed on the attribute either).
- ``"error"``: with no group labels anywhere, the rows an ERM head gets wrong
  on data it did not see form a group of their class (JTT, Liu et al. 2021;
  the misclassification rule of SELF, LaBonte et al. 2023). It assumes that
  the ERM head's errors fall mostly on the minority groups. It fails on
  embeddings whose backbone was trained on the very rows: a backbone that
  memorised its training split leaves no errors there, which is why held-out
  rows (``X_val``) are used for it whenever they exist.

Per-row signals of a fitted head, for methods that rank held-out rows rather
than label them (:class:`~skhsfm.baselines.SELFClassifier`):
:func:`misclassification_loss` (its errors first) and
:func:`dropout_disagreement` (its disagreement with a dropout copy of itself).
"""

from numbers import Integral, Real

import numpy as np
from sklearn.base import (
    BaseEstimator,
    ClassifierMixin,
    MetaEstimatorMixin,
    clone,
)
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import LabelEncoder, StandardScaler
from sklearn.utils import check_random_state
from sklearn.utils.metaestimators import available_if
from sklearn.utils.validation import check_is_fitted, validate_data

from skhsfm._pools import unwrap_held_out
from skhsfm._sklearn_compat import HasMethods, Interval, StrOptions, fit_context
from skhsfm._utils.doc_link import DOC_LINK_MODULE, DOC_LINK_TEMPLATE
from skhsfm._utils.text import plain
from skhsfm._validation import check_finite, check_groups, check_labels, check_X

__all__ = [
    "GroupInferrer",
    "InferredGroupsClassifier",
    "dropout_disagreement",
    "misclassification_loss",
]

#: What ``GroupInferrer.groups_source_`` says of each split.
GIVEN, CLASSIFIER, ERROR, NONE = "given", "classifier", "error", "none"


def _logistic(C, balanced, random_state):
    """A logistic regression on standardised features (so that the scale of
    the embeddings does not matter)."""
    return make_pipeline(
        StandardScaler(),
        LogisticRegression(
            C=C,
            max_iter=1000,
            class_weight="balanced" if balanced else None,
            random_state=random_state,
        ),
    )


def classifier_groups(X_ref, y_ref, groups_ref, X, y, *, C=1.0, random_state=0):
    """Groups of ``(X, y)`` predicted by per-class classifiers of the group
    learnt on ``(X_ref, y_ref, groups_ref)``.

    For each class, the groups that occur with it in the reference rows are
    the candidates; a class with one such group gives it to all its rows, a
    class with several gets a class-balanced logistic regression (balanced,
    because the reference split is often group-balanced while the other is
    not). A class with no reference rows cannot be learnt: an error.

    Returns
    -------
    groups : ndarray of shape (n_samples,)
        Labels drawn from the values of ``groups_ref``.
    """
    out = np.empty(y.shape[0], dtype=groups_ref.dtype)
    for c in np.unique(y):
        rows = np.flatnonzero(y == c)
        ref = np.flatnonzero(y_ref == c)
        if ref.shape[0] == 0:
            raise ValueError(
                f"class {plain(c)} has no row with a known group to learn its "
                "groups from; give the labelled split rows of every class."
            )
        candidates = np.unique(groups_ref[ref])
        if candidates.shape[0] == 1:
            out[rows] = candidates[0]
            continue
        model = _logistic(C, True, random_state).fit(X_ref[ref], groups_ref[ref])
        out[rows] = model.predict(X[rows])
    return out


def error_groups(X_fit, y_fit, X, y, n_classes, *, C=1.0, random_state=0):
    """``2 * y + e``: ``e`` is 1 where an ERM head fit on ``(X_fit, y_fit)``
    misclassifies a row of ``(X, y)`` (encoded labels), else 0."""
    model = _logistic(C, False, random_state).fit(X_fit, y_fit)
    return 2 * y + (model.predict(X) != y)


def crossfit_error_groups(X, y, n_classes, *, cv=2, C=1.0, random_state=None):
    """:func:`error_groups` of every row from a head that did not see it:
    ``cv`` stratified folds, each predicted by a head fit on the others."""
    rng = check_random_state(random_state)
    out = np.empty(y.shape[0], dtype=np.int64)
    counts = np.bincount(y, minlength=n_classes)
    n_splits = int(min(cv, counts[counts > 0].min()))
    if n_splits < 2:
        return 2 * y  # a class with one row: nothing can be held out
    folds = StratifiedKFold(n_splits, shuffle=True, random_state=rng.randint(2**31))
    for fit_rows, rows in folds.split(X, y):
        out[rows] = error_groups(
            X[fit_rows], y[fit_rows], X[rows], y[rows], n_classes, C=C,
            random_state=rng.randint(2**31),
        )  # fmt: skip
    return out


def misclassification_loss(model, X, y):
    """Cross-entropy of a fitted classifier on each row of ``(X, y)``.

    The misclassification signal of SELF (LaBonte et al. 2023): the rows with
    the largest loss are the ones the head gets wrong, most confidently
    first (for two classes, exactly the rows it misclassifies have a loss
    above ``log 2``), so the top of this ranking is the ERM error set of
    :func:`error_groups`, ordered. ``model`` is any fitted classifier with
    ``predict_log_proba`` (a head of this package, a
    :class:`~skhsfm.LinearHead`, a scikit-learn pipeline) and ``y`` holds
    indices into its ``classes_`` (encoded labels).

    Returns
    -------
    loss : ndarray of shape (n_samples,)
        ``-log p(y | x)``, >= 0.
    """
    log_proba = model.predict_log_proba(X)
    return -log_proba[np.arange(y.shape[0]), y]


def dropout_disagreement(model, X, *, dropout=0.5, random_state=None):
    """How much a fitted classifier changes its mind when features drop out.

    For each row ``x`` of ``X``: ``KL(q || p)``, with ``p`` the classifier's
    class probabilities on ``x`` and ``q`` those on ``x`` with every feature
    set to zero with probability ``dropout`` and the others multiplied by
    ``1 / (1 - dropout)`` (inverted dropout, one mask per row, as a dropout
    layer in training mode). This is the dropout disagreement of SELF
    (LaBonte et al. 2023), whose dropout layer sits right before the last
    layer, so on the embeddings a head sees: the rows it ranks first are those
    the head decides on a narrow margin or on few features, which is where
    the minority groups of a spurious correlation lie. No label is needed.

    It assumes that the features are activations for which zero means "off"
    (e.g. post-ReLU embeddings; it works on centred ones too, since it only
    perturbs). It fails when the head is so confident everywhere that no mask
    moves it: then every row scores near zero and the ranking is noise.

    Parameters
    ----------
    model : fitted classifier with ``predict_log_proba``
        The head whose disagreement with its dropout copy is measured.
    X : ndarray of shape (n_samples, n_features)
        The rows to score (held-out rows: the head did not fit them).
    dropout : float in (0, 1), default=0.5
        Probability that a feature is dropped.
    random_state : int, RandomState instance or None, default=None
        Seeds the masks.

    Returns
    -------
    disagreement : ndarray of shape (n_samples,)
        ``KL(q || p)`` per row, >= 0.
    """
    if not 0.0 < dropout < 1.0:
        raise ValueError(f"dropout must be in (0, 1); got {dropout!r}.")
    rng = check_random_state(random_state)
    X = np.asarray(X, dtype=np.float64)
    kept = rng.random_sample(X.shape) >= dropout
    X_dropped = np.where(kept, X / (1.0 - dropout), 0.0)
    log_p = model.predict_log_proba(X)
    log_q = model.predict_log_proba(X_dropped)
    return np.maximum(np.sum(np.exp(log_q) * (log_q - log_p), axis=1), 0.0)


class GroupInferrer(BaseEstimator):
    """Infer the group labels a data set lacks, from the data itself.

    Takes the arguments of a head's ``fit`` and returns the same data
    situation with every missing group label inferred: ``groups_`` for the
    rows of ``X`` and ``groups_val_`` for those of ``X_val``. Given labels are
    kept as they are.

    ``method="auto"`` picks, split by split:

    ===================================  ======================  ======================
    labels given                         ``groups_`` (X)         ``groups_val_``
    ===================================  ======================  ======================
    ``groups`` and ``groups_val``        given                   given
    ``groups_val`` only                  classifier (from val)   given
    ``groups`` only (with ``X_val``)     given                   classifier (from X)
    none, with ``X_val``                 classifier (from the    error (ERM head fit
                                         val's error groups)     on ``X``)
    none, no ``X_val``                   error (cross-fitted)    --
    ===================================  ======================  ======================

    Parameters
    ----------
    method : {"auto", "classifier", "error"}, default="auto"
        "classifier": learn the groups where they are given and predict them
        where they are not (needs labels on one split); "error": groups from
        the errors of an ERM head on rows it did not see, ignoring given
        labels of the split it infers; "auto": the table above.
    C : float, default=1.0
        Inverse L2 strength of every logistic regression (on standardised
        embeddings).
    cv : int, default=2
        Folds of the cross-fitted ERM head when the errors of the rows of
        ``X`` itself are needed (no ``X_val``).
    random_state : int, RandomState instance or None, default=None
        Seeds the folds and the solvers.

    Attributes
    ----------
    groups_ : ndarray of shape (n_samples,)
        Group of each row of ``X``: the given labels, labels of ``groups_val``
        (classifier), or ``2 * class_index + error`` codes (error).
    groups_val_ : ndarray of shape (n_val_samples,) or None
        The same for ``X_val``; None without ``X_val``.
    groups_source_ : dict
        ``{"groups": source, "groups_val": source}``, each source one of
        "given", "classifier", "error", or "none" (no ``X_val``).
    classes_ : ndarray of shape (n_classes,)
        Class labels.

    See Also
    --------
    InferredGroupsClassifier : Any head fit with the inferred groups.
    skhsfm.HSFMClassifier : Infers missing groups itself (``group_inference``).

    Notes
    -----
    ``"error"`` groups are ``2 * k + e`` for the ``k``-th class and ``e`` the
    error flag, so two codes per class; they mean "rows the ERM head gets
    wrong", a proxy of the minority groups, not the real groups. They are
    only as good as that proxy: with a backbone trained on ``X`` by ERM, the
    rows of ``X`` have almost no errors (the backbone memorised them), and the
    classifier learnt on ``X_val``'s error groups is used for ``X`` instead.

    References
    ----------
    E. Z. Liu et al. "Just Train Twice: Improving Group Robustness without
    Training Group Information", ICML 2021.
    T. LaBonte, V. Muthukumar and A. Kumar. "Towards Last-layer Retraining for
    Group Robustness with Fewer Annotations", NeurIPS 2023.
    J. Nam, J. Kim, J. Lee and J. Shin. "Spread Spurious Attribute: Improving
    Worst-group Accuracy with Spurious Attribute Estimation", ICLR 2022.

    Examples
    --------
    >>> import numpy as np
    >>> from skhsfm.datasets import make_spurious_embeddings
    >>> from skhsfm.groups import GroupInferrer
    >>> X, y, _, g = make_spurious_embeddings(400, 16, random_state=0)
    >>> Xv, yv, _, gv = make_spurious_embeddings(200, 16, split="val",
    ...                                          random_state=0)
    >>> inferrer = GroupInferrer(random_state=0).fit(X, y, X_val=Xv, y_val=yv,
    ...                                              groups_val=gv)
    >>> inferrer.groups_source_
    {'groups': 'classifier', 'groups_val': 'given'}
    >>> float(np.mean(inferrer.groups_ == g)) > 0.8
    True
    """

    _doc_link_module = DOC_LINK_MODULE
    _doc_link_template = DOC_LINK_TEMPLATE

    _parameter_constraints: dict = {
        "method": [StrOptions({"auto", "classifier", "error"})],
        "C": [Interval(Real, 0, None, closed="neither")],
        "cv": [Interval(Integral, 2, None, closed="left")],
        "random_state": ["random_state"],
    }

    def __init__(self, method="auto", *, C=1.0, cv=2, random_state=None):
        self.method = method
        self.C = C
        self.cv = cv
        self.random_state = random_state

    @fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y, groups=None, *, X_val=None, y_val=None, groups_val=None):
        """Infer the missing group labels.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Embeddings (the training split).
        y : array-like of shape (n_samples,)
            Class labels.
        groups : array-like of shape (n_samples,), default=None
            Known groups of ``X``, if any.
        X_val, y_val, groups_val : default=None
            A held-out split and its labels (and known groups, if any), as a
            head's ``fit`` takes them; one-element tuples are unwrapped.

        Returns
        -------
        self : object
        """
        X, y = validate_data(self, X, y, dtype=np.float64, ensure_all_finite=False)
        X = check_finite(X, "X")
        groups = check_groups(groups, X.shape[0], "groups")
        X_val, y_val, groups_val = unwrap_held_out(X_val, y_val, groups_val, X)
        if X_val is None and (y_val is not None or groups_val is not None):
            raise ValueError(
                "y_val or groups_val was given without X_val; pass X_val, y_val "
                "(and optionally groups_val) together."
            )
        encoder = LabelEncoder().fit(y)
        self.classes_ = encoder.classes_
        y_enc = encoder.transform(y)
        if X_val is not None:
            X_val = check_X(X_val, "X_val")
            if X_val.shape[1] != X.shape[1]:
                raise ValueError(
                    f"X_val has {X_val.shape[1]} features but X has {X.shape[1]}; "
                    "pass embeddings of the same backbone."
                )
            if y_val is None:
                raise ValueError("X_val was given without y_val; pass y_val too.")
            y_val = check_labels(y_val, "y_val", X_val.shape[0])
            unknown = np.setdiff1d(np.unique(y_val), self.classes_)
            if unknown.size:
                raise ValueError(
                    f"y_val has classes absent from y: {unknown.tolist()}; the "
                    "held-out split must use the training classes."
                )
            groups_val = check_groups(groups_val, X_val.shape[0], "groups_val")
            y_val = encoder.transform(y_val)
        self._infer(X, y_enc, groups, X_val, y_val, groups_val)
        return self

    def infer_encoded(self, X, y, groups, X_val, y_val, groups_val, classes):
        """:meth:`fit` on arrays a head has already validated.

        For heads that infer groups inside their own ``fit``: ``X`` and
        ``X_val`` are float arrays, ``y`` and ``y_val`` encoded labels
        (indices into ``classes``), groups arrays or None. Sets the fitted
        attributes and returns ``self``.
        """
        self.classes_ = np.asarray(classes)
        self._infer(X, y, groups, X_val, y_val, groups_val)
        return self

    def _infer(self, X, y, groups, X_val, y_val, groups_val):
        rng = check_random_state(self.random_state)
        n_classes = self.classes_.shape[0]
        seed = rng.randint(2**31)
        method = self.method
        if X_val is None:
            if method == "classifier" and groups is None:
                raise ValueError(
                    "method='classifier' learns groups where they are given; "
                    "with no X_val it needs groups for X, and then there is "
                    "nothing to infer. Use method='error' or 'auto'."
                )
            if groups is not None and method != "error":
                self._set(groups, GIVEN, None, NONE)
            else:
                found = crossfit_error_groups(
                    X, y, n_classes, cv=self.cv, C=self.C, random_state=rng
                )
                self._set(found, ERROR, None, NONE)
            return
        if method == "error" or (groups is None and groups_val is None):
            if method == "classifier":
                raise ValueError(
                    "method='classifier' learns groups where they are given, but "
                    "neither groups nor groups_val was given. Use method='error' "
                    "or 'auto'."
                )
            found_val = error_groups(X, y, X_val, y_val, n_classes, C=self.C,
                                     random_state=seed)  # fmt: skip
            if method == "error":
                found = crossfit_error_groups(
                    X, y, n_classes, cv=self.cv, C=self.C, random_state=rng
                )
                self._set(found, ERROR, found_val, ERROR)
                return
            found = classifier_groups(X_val, y_val, found_val, X, y, C=self.C,
                                      random_state=seed)  # fmt: skip
            self._set(found, CLASSIFIER, found_val, ERROR)
            return
        # one split or both have labels: learn from the labelled one
        if groups_val is not None and groups is None:
            found = classifier_groups(X_val, y_val, groups_val, X, y, C=self.C,
                                      random_state=seed)  # fmt: skip
            self._set(found, CLASSIFIER, groups_val, GIVEN)
        elif groups is not None and groups_val is None:
            found_val = classifier_groups(X, y, groups, X_val, y_val, C=self.C,
                                          random_state=seed)  # fmt: skip
            self._set(groups, GIVEN, found_val, CLASSIFIER)
        else:
            self._set(groups, GIVEN, groups_val, GIVEN)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.required = True
        tags.non_deterministic = self.random_state is None
        return tags

    def _set(self, groups, source, groups_val, source_val):
        self.groups_ = groups
        self.groups_val_ = groups_val
        self.groups_source_ = {"groups": source, "groups_val": source_val}


class InferredGroupsClassifier(MetaEstimatorMixin, ClassifierMixin, BaseEstimator):
    """A head fit with group labels inferred where they are missing.

    ``fit(X, y, groups=None, *, X_val=None, y_val=None, groups_val=None)``
    runs ``inferrer`` on the data situation it is given, then fits a clone of
    ``estimator`` with the completed labels: the way to fit DFR (which needs
    validation groups) without any group labels, or AFR and DFR with a
    training split whose groups were learnt from the validation split.
    Prediction is the fitted head's.

    Parameters
    ----------
    estimator : estimator object
        A head taking ``fit(X, y, groups, *, X_val, y_val, groups_val)``:
        :class:`~skhsfm.baselines.DFRClassifier`,
        :class:`~skhsfm.baselines.AFRClassifier`,
        :class:`~skhsfm.HSFMClassifier`, ...
    inferrer : GroupInferrer or None, default=None
        How groups are inferred; None means
        ``GroupInferrer(random_state=random_state)``.
    random_state : int, RandomState instance or None, default=None
        Seeds the default inferrer (ignored when ``inferrer`` is given: seed
        that one).

    Attributes
    ----------
    estimator_ : estimator object
        The fitted head.
    inferrer_ : GroupInferrer
        The fitted inferrer (``groups_source_`` says what was inferred).
    classes_ : ndarray of shape (n_classes,)
        Class labels.
    n_features_in_ : int
        Number of features seen during ``fit``.

    See Also
    --------
    GroupInferrer : The inference on its own.

    Examples
    --------
    >>> from skhsfm.baselines import DFRClassifier
    >>> from skhsfm.datasets import make_spurious_embeddings
    >>> from skhsfm.groups import InferredGroupsClassifier
    >>> X, y, _, _ = make_spurious_embeddings(400, 16, random_state=0)
    >>> Xv, yv, _, _ = make_spurious_embeddings(200, 16, split="val",
    ...                                         random_state=0)
    >>> clf = InferredGroupsClassifier(DFRClassifier(n_models=3, random_state=0))
    >>> clf.fit(X, y, X_val=Xv, y_val=yv).inferrer_.groups_source_
    {'groups': 'classifier', 'groups_val': 'error'}
    """

    _doc_link_module = DOC_LINK_MODULE
    _doc_link_template = DOC_LINK_TEMPLATE

    __metadata_request__fit = {
        "groups": True,
        "X_val": True,
        "y_val": True,
        "groups_val": True,
    }

    _parameter_constraints: dict = {
        "estimator": [HasMethods(["fit", "predict"])],
        "inferrer": [GroupInferrer, None],
        "random_state": ["random_state"],
    }

    def __init__(self, estimator, *, inferrer=None, random_state=None):
        self.estimator = estimator
        self.inferrer = inferrer
        self.random_state = random_state

    @fit_context(prefer_skip_nested_validation=False)
    def fit(self, X, y, groups=None, *, X_val=None, y_val=None, groups_val=None):
        """Infer the missing groups, then fit the head with them.

        Parameters
        ----------
        X, y, groups, X_val, y_val, groups_val
            As the head's ``fit`` takes them; missing group labels are
            inferred.

        Returns
        -------
        self : object
        """
        if self.inferrer is None:
            inferrer = GroupInferrer(random_state=self.random_state)
        else:
            inferrer = clone(self.inferrer)
        inferrer.fit(X, y, groups, X_val=X_val, y_val=y_val, groups_val=groups_val)
        estimator = clone(self.estimator)
        held_out = {}
        if inferrer.groups_val_ is not None:
            held_out = dict(X_val=X_val, y_val=y_val, groups_val=inferrer.groups_val_)
            if isinstance(X_val, tuple):  # keep the never-sliced form
                held_out = {k: (v,) if k == "groups_val" else v
                            for k, v in held_out.items()}  # fmt: skip
        estimator.fit(X, y, inferrer.groups_, **held_out)
        self.inferrer_ = inferrer
        self.estimator_ = estimator
        self.classes_ = estimator.classes_
        self.n_features_in_ = estimator.n_features_in_
        if hasattr(estimator, "feature_names_in_"):
            self.feature_names_in_ = estimator.feature_names_in_
        return self

    def _head_has(name):
        def check(self):
            return hasattr(self.estimator_ if hasattr(self, "estimator_")
                           else self.estimator, name)  # fmt: skip

        return check

    def predict(self, X):
        """The fitted head's predictions of ``X``."""
        check_is_fitted(self)
        return self.estimator_.predict(X)

    @available_if(_head_has("predict_proba"))
    def predict_proba(self, X):
        """The fitted head's class probabilities of ``X``."""
        check_is_fitted(self)
        return self.estimator_.predict_proba(X)

    @available_if(_head_has("decision_function"))
    def decision_function(self, X):
        """The fitted head's decision function on ``X``."""
        check_is_fitted(self)
        return self.estimator_.decision_function(X)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        head = self.estimator.__sklearn_tags__()
        tags.input_tags.sparse = False
        tags.non_deterministic = head.non_deterministic or (
            self.inferrer is None and self.random_state is None
        )
        return tags
