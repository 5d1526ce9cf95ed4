"""Worst-group, per-group and mean accuracy, group labels, and group-aware scorers.

A *group* is a (class, spurious attribute) cell; ``groups`` holds one group label
per sample. This is not scikit-learn's ``GroupKFold`` meaning of groups
(non-overlapping clusters of samples).

Two conventions for "mean accuracy" appear in the group-robustness literature,
and papers mix them up; this module names them apart:

- :func:`mean_accuracy` is plain accuracy over the evaluation set (every sample
  counts once), the same number as :func:`sklearn.metrics.accuracy_score`.
- :func:`group_weighted_accuracy` averages per-group accuracies with weights
  taken from *reference* group proportions (usually the training split's). This
  is the "average accuracy" GroupDRO, JTT and AFR report on Waterbirds, whose
  test split is close to group-balanced and so unlike the training data.

The scorers (:data:`worst_group_scorer`, :func:`make_worst_group_scorer`,
:func:`make_group_scorer`) request ``groups`` through scikit-learn's metadata
routing, so they need ``sklearn.set_config(enable_metadata_routing=True)``.
"""

import sys
from numbers import Real

import numpy as np
import sklearn
from sklearn.metrics import make_scorer
from sklearn.utils.validation import column_or_1d

__all__ = [
    "GroupAccuracyReport",
    "group_accuracy_report",
    "group_weighted_accuracy",
    "make_group_scorer",
    "make_groups",
    "make_worst_group_scorer",
    "mean_accuracy",
    "worst_class_accuracy",
    "worst_group_accuracy",
    "worst_group_scorer",
]

_ROUTING_OFF_MESSAGE = (
    "{name} received no `groups` because scikit-learn metadata routing is off: "
    "with routing off, GridSearchCV, cross_validate and cross_val_score never "
    "pass `groups` to a scorer (they only give it to the splitter). Call "
    "`sklearn.set_config(enable_metadata_routing=True)` before fitting, or run the "
    "search inside `with sklearn.config_context(enable_metadata_routing=True):`, "
    "and pass the group labels as `search.fit(X, y, groups=groups)` or "
    "`cross_validate(estimator, X, y, params={{'groups': groups}}, ...)`."
)
_ROUTING_ON_MESSAGE = (
    "{name} received no `groups`. Pass one group label per sample: "
    "`search.fit(X, y, groups=groups)`, "
    "`cross_validate(estimator, X, y, params={{'groups': groups}}, ...)`, or "
    "`scorer(estimator, X, y, groups=groups)` when calling it directly. If you "
    "changed the scorer's request, restore it with "
    "`scorer.set_score_request(groups=True)`."
)


def _as_1d(values, name):
    try:
        return column_or_1d(np.asarray(values), warn=True)
    except ValueError as exc:
        shape = np.shape(values)
        raise ValueError(
            f"{name} must be 1-dimensional (one label per sample); got an array of "
            f"shape {shape}."
        ) from exc


def _check_label_kinds(a, b, a_name, b_name):
    """Reject a numeric array compared with a string one (numpy says all False)."""
    numeric = {"b", "i", "u", "f"}
    text = {"U", "S"}
    if (a.dtype.kind in numeric and b.dtype.kind in text) or (
        a.dtype.kind in text and b.dtype.kind in numeric
    ):
        raise ValueError(
            f"{a_name} holds {a.dtype} labels but {b_name} holds {b.dtype} labels; "
            "they would never compare equal. Use the same label type for both "
            "(e.g. the estimator's classes_)."
        )


def _check_targets(y_true, y_pred, groups, groups_name="groups"):
    y_true = _as_1d(y_true, "y_true")
    y_pred = _as_1d(y_pred, "y_pred")
    if groups is None:
        raise ValueError(
            f"{groups_name} is required: pass one group label per sample "
            f"(e.g. {groups_name}=make_groups(y, attribute))."
        )
    groups = _as_1d(groups, groups_name)
    lengths = {
        "y_true": y_true.shape[0],
        "y_pred": y_pred.shape[0],
        groups_name: groups.shape[0],
    }
    if len(set(lengths.values())) > 1:
        listed = ", ".join(f"{k} has {v}" for k, v in lengths.items())
        raise ValueError(
            f"Inconsistent lengths: {listed} entries; pass one prediction and one "
            "group label per sample."
        )
    if y_true.shape[0] == 0:
        raise ValueError("y_true is empty; accuracy needs at least one sample.")
    _check_label_kinds(y_true, y_pred, "y_true", "y_pred")
    if groups.dtype.kind == "f" and not np.isfinite(groups).all():
        raise ValueError(
            f"{groups_name} contains NaN or inf; every sample needs a group label."
        )
    return y_true, y_pred, groups


def _unique_labels(groups, name="groups"):
    try:
        return np.unique(groups, return_inverse=True)
    except TypeError as exc:
        raise ValueError(
            f"{name} mixes label types that cannot be sorted together (e.g. str and "
            "int); use one type for every group label."
        ) from exc


def _group_accuracies(y_true, y_pred, groups):
    """Per-group accuracy and size, groups in sorted order."""
    labels, inverse = _unique_labels(groups)
    correct = (y_true == y_pred).astype(float)
    counts = np.bincount(inverse, minlength=labels.shape[0])
    hits = np.bincount(inverse, weights=correct, minlength=labels.shape[0])
    return labels, hits / counts, counts


def worst_group_accuracy(y_true, y_pred, *, groups):
    """Accuracy of the worst group.

    Parameters
    ----------
    y_true : array-like of shape (n_samples,)
        True labels.
    y_pred : array-like of shape (n_samples,)
        Predicted labels.
    groups : array-like of shape (n_samples,)
        Group label of each sample (a class x attribute cell).

    Returns
    -------
    float
        The smallest per-group accuracy over the groups present in ``groups``.

    See Also
    --------
    group_accuracy_report : Every group's accuracy and size in one table.
    make_groups : Build group labels from class labels and an attribute.

    Examples
    --------
    >>> from skhsfm.metrics import worst_group_accuracy
    >>> worst_group_accuracy([0, 0, 1, 1], [0, 1, 1, 1], groups=["a", "b", "a", "b"])
    0.5
    """
    y_true, y_pred, groups = _check_targets(y_true, y_pred, groups)
    return float(_group_accuracies(y_true, y_pred, groups)[1].min())


def worst_class_accuracy(y_true, y_pred):
    """Accuracy of the worst class (the class-wise recall minimum).

    Parameters
    ----------
    y_true : array-like of shape (n_samples,)
        True labels.
    y_pred : array-like of shape (n_samples,)
        Predicted labels.

    Returns
    -------
    float

    Examples
    --------
    >>> from skhsfm.metrics import worst_class_accuracy
    >>> worst_class_accuracy([0, 0, 1, 1], [0, 1, 1, 1])
    0.5
    """
    y_true, y_pred, _ = _check_targets(y_true, y_pred, y_true)
    return float(_group_accuracies(y_true, y_pred, y_true)[1].min())


def mean_accuracy(y_true, y_pred):
    """Plain accuracy over the evaluation set (every sample counts once).

    This is the same number as :func:`sklearn.metrics.accuracy_score`; it follows
    the evaluation set's own group proportions. For accuracy re-weighted to the
    training split's group proportions (the Waterbirds convention of GroupDRO,
    JTT and AFR) use :func:`group_weighted_accuracy`.

    Parameters
    ----------
    y_true : array-like of shape (n_samples,)
        True labels.
    y_pred : array-like of shape (n_samples,)
        Predicted labels.

    Returns
    -------
    float

    See Also
    --------
    group_weighted_accuracy : Accuracy under reference group proportions.

    Examples
    --------
    >>> from skhsfm.metrics import mean_accuracy
    >>> mean_accuracy([0, 0, 1, 1], [0, 1, 1, 1])
    0.75
    """
    y_true, y_pred, _ = _check_targets(y_true, y_pred, y_true)
    return float(np.mean(y_true == y_pred))


def _reference_weights(reference_groups):
    """Normalised reference proportions as a dict {label: weight}."""
    if isinstance(reference_groups, dict):
        if not reference_groups:
            raise ValueError(
                "reference_groups is an empty dict; give a proportion (or count) "
                "for each group."
            )
        weights = {}
        for label, value in reference_groups.items():
            if not isinstance(value, Real) or not np.isfinite(value) or value < 0:
                raise ValueError(
                    f"reference_groups[{label!r}] must be a finite number >= 0; got "
                    f"{value!r}."
                )
            weights[_python_label(label)] = float(value)
    else:
        reference = _as_1d(reference_groups, "reference_groups")
        if reference.shape[0] == 0:
            raise ValueError(
                "reference_groups is empty; pass the reference split's group "
                "labels (e.g. the training groups) or a dict of proportions."
            )
        labels, inverse = _unique_labels(reference, "reference_groups")
        counts = np.bincount(inverse, minlength=labels.shape[0])
        weights = dict(zip(labels.tolist(), counts.astype(float).tolist()))
    total = sum(weights.values())
    if total <= 0:
        raise ValueError(
            "reference_groups gives every group weight 0; at least one group needs a "
            "positive proportion."
        )
    return {label: weight / total for label, weight in weights.items()}


def _python_label(label):
    return label.item() if isinstance(label, np.generic) else label


def _weighted_mean(labels, accuracies, reference_groups):
    weights = _reference_weights(reference_groups)
    present = labels.tolist()
    unknown = [label for label in present if label not in weights]
    if unknown:
        raise ValueError(
            f"groups contains labels absent from reference_groups: {unknown}; "
            f"reference_groups has {sorted(weights, key=str)}. Use the same group "
            "labels (and label type) in both."
        )
    missing = [
        label for label, w in weights.items() if w > 0 and label not in set(present)
    ]
    if missing:
        raise ValueError(
            f"reference_groups gives weight to groups with no sample in the "
            f"evaluation set: {missing}; their accuracy cannot be estimated. "
            "Evaluate on data covering every reference group, or drop them from a "
            "dict reference_groups."
        )
    proportions = np.array([weights[label] for label in present])
    return float(np.dot(proportions, accuracies)), proportions


def group_weighted_accuracy(y_true, y_pred, *, groups, reference_groups):
    """Accuracy re-weighted to reference group proportions.

    Computes ``sum_g p_ref(g) * accuracy_g``, where ``accuracy_g`` is the accuracy
    on the evaluation samples of group ``g`` and ``p_ref(g)`` is the share of
    group ``g`` in a *reference* distribution, usually the training split. This
    is the "average accuracy" GroupDRO, JTT and AFR report on Waterbirds, whose
    test split is close to group-balanced. It differs from
    :func:`mean_accuracy` (plain accuracy over the evaluation set) whenever the
    evaluation set's group proportions differ from the reference ones.

    Parameters
    ----------
    y_true : array-like of shape (n_samples,)
        True labels.
    y_pred : array-like of shape (n_samples,)
        Predicted labels.
    groups : array-like of shape (n_samples,)
        Group label of each evaluation sample.
    reference_groups : array-like of shape (n_reference,) or dict
        Either the group labels of the reference split (e.g. the training
        groups; proportions are their frequencies) or a dict mapping each group
        label to its proportion or count (normalised to sum to one).

    Returns
    -------
    float

    Raises
    ------
    ValueError
        If an evaluation group is unknown to ``reference_groups``, or a group
        with positive reference weight has no evaluation sample.

    See Also
    --------
    mean_accuracy : Plain accuracy over the evaluation set.
    group_accuracy_report : All three conventions plus the worst group.

    Examples
    --------
    >>> from skhsfm.metrics import group_weighted_accuracy
    >>> y_true = [0, 0, 1, 1]
    >>> y_pred = [0, 1, 1, 1]
    >>> groups = ["a", "b", "c", "c"]
    >>> group_weighted_accuracy(
    ...     y_true, y_pred, groups=groups, reference_groups={"a": 8, "b": 1, "c": 1}
    ... )
    0.9
    """
    y_true, y_pred, groups = _check_targets(y_true, y_pred, groups)
    labels, accuracies, _ = _group_accuracies(y_true, y_pred, groups)
    return _weighted_mean(labels, accuracies, reference_groups)[0]


class GroupAccuracyReport:
    """Per-group accuracy of one set of predictions.

    Built by :func:`group_accuracy_report`; prints as a plain-text table.

    Attributes
    ----------
    labels : ndarray of shape (n_groups,)
        Group labels, sorted.
    accuracies : ndarray of shape (n_groups,)
        Accuracy of each group, aligned with ``labels``.
    group_counts : ndarray of shape (n_groups,)
        Number of evaluation samples of each group.
    by_group : dict
        ``{group label: accuracy}``.
    counts : dict
        ``{group label: number of samples}``.
    worst : float
        Worst-group accuracy (minimum over ``accuracies``).
    worst_group : object
        Label of the worst group (the first in sorted order on ties).
    mean : float
        Plain accuracy over the evaluation set (every sample counts once).
    balanced : float
        Unweighted mean of the group accuracies (every group counts once).
    weighted : float or None
        Accuracy re-weighted to the reference group proportions, or None when
        no ``reference_groups`` was given.
    reference_proportions : dict or None
        ``{group label: reference proportion}`` used for ``weighted``.
    n_samples : int
        Size of the evaluation set.
    """

    def __init__(
        self,
        labels,
        accuracies,
        counts,
        n_correct,
        weighted=None,
        reference_proportions=None,
    ):
        self.labels = labels
        self.accuracies = accuracies
        self.group_counts = counts
        names = labels.tolist()
        self.by_group = dict(zip(names, accuracies.tolist()))
        self.counts = dict(zip(names, counts.tolist()))
        self._n_correct = n_correct
        worst_index = int(np.argmin(accuracies))
        self.worst = float(accuracies[worst_index])
        self.worst_group = names[worst_index]
        self.n_samples = int(counts.sum())
        self.mean = float(n_correct.sum() / self.n_samples)
        self.balanced = float(accuracies.mean())
        self.weighted = weighted
        self.reference_proportions = reference_proportions

    def __repr__(self):
        labels = list(self.by_group)
        names = [str(label) for label in labels]
        width = max(len("group"), *(len(name) for name in names))
        show_ref = self.reference_proportions is not None
        header = f"{'group':<{width}}  {'n':>7}  {'correct':>7}  {'accuracy':>8}"
        if show_ref:
            header += f"  {'ref. share':>10}"
        lines = [
            f"GroupAccuracyReport: {self.n_samples} samples, {len(names)} groups",
            header,
        ]
        for i, (label, name) in enumerate(zip(labels, names)):
            line = (
                f"{name:<{width}}  {self.counts[label]:>7d}  "
                f"{int(round(self._n_correct[i])):>7d}  {self.by_group[label]:>8.4f}"
            )
            if show_ref:
                line += f"  {self.reference_proportions[label]:>10.4f}"
            if label == self.worst_group:
                line += "  <- worst"
            lines.append(line)
        lines.append(f"worst-group accuracy: {self.worst:.4f} ({self.worst_group})")
        lines.append(f"mean accuracy (plain, evaluation set): {self.mean:.4f}")
        lines.append(f"mean of group accuracies (balanced): {self.balanced:.4f}")
        if self.weighted is not None:
            lines.append(f"mean accuracy (reference-weighted): {self.weighted:.4f}")
        return "\n".join(lines)

    __str__ = __repr__


def group_accuracy_report(y_true, y_pred, *, groups, reference_groups=None):
    """Accuracy of every group, the worst group and the mean accuracies.

    Parameters
    ----------
    y_true : array-like of shape (n_samples,)
        True labels.
    y_pred : array-like of shape (n_samples,)
        Predicted labels.
    groups : array-like of shape (n_samples,)
        Group label of each sample (a class x attribute cell).
    reference_groups : array-like or dict, default=None
        Reference group labels or proportions (see
        :func:`group_weighted_accuracy`); when given, the report also holds the
        reference-weighted mean accuracy.

    Returns
    -------
    GroupAccuracyReport
        ``.by_group``, ``.counts``, ``.worst``, ``.worst_group``, ``.mean``
        (plain), ``.balanced`` (each group once), ``.weighted`` (reference
        proportions, or None). ``print(report)`` shows a table.

    See Also
    --------
    worst_group_accuracy : Just the worst-group number.

    Examples
    --------
    >>> from skhsfm.metrics import group_accuracy_report
    >>> report = group_accuracy_report(
    ...     [0, 0, 1, 1], [0, 1, 1, 1], groups=["a", "b", "a", "b"]
    ... )
    >>> report.by_group
    {'a': 1.0, 'b': 0.5}
    >>> report.worst, report.worst_group, report.mean
    (0.5, 'b', 0.75)
    """
    y_true, y_pred, groups = _check_targets(y_true, y_pred, groups)
    labels, inverse = _unique_labels(groups)
    correct = (y_true == y_pred).astype(float)
    counts = np.bincount(inverse, minlength=labels.shape[0])
    n_correct = np.bincount(inverse, weights=correct, minlength=labels.shape[0])
    accuracies = n_correct / counts
    weighted = proportions = None
    if reference_groups is not None:
        weighted, shares = _weighted_mean(labels, accuracies, reference_groups)
        proportions = dict(zip(labels.tolist(), shares.tolist()))
    return GroupAccuracyReport(
        labels, accuracies, counts, n_correct, weighted, proportions
    )


def make_groups(y, attribute):
    """Group labels ``"y=<class>|a=<attribute>"`` from classes and an attribute.

    Each (class, attribute) cell becomes one group, named by the text of the
    class label and of the attribute value, e.g. ``"y=landbird|a=water"`` or
    ``"y=1|a=0"``. Pass readable names (``np.array(["landbird",
    "waterbird"])[y]``) to get readable group names.

    Parameters
    ----------
    y : array-like of shape (n_samples,)
        Class labels (int, str, ...).
    attribute : array-like of shape (n_samples,)
        Spurious attribute value of each sample (int, str, bool, ...).

    Returns
    -------
    groups : ndarray of str, shape (n_samples,)

    Examples
    --------
    >>> from skhsfm.metrics import make_groups
    >>> make_groups(["landbird", "waterbird"], ["water", "water"]).tolist()
    ['y=landbird|a=water', 'y=waterbird|a=water']
    >>> make_groups([0, 1, 1], [1, 1, 0]).tolist()
    ['y=0|a=1', 'y=1|a=1', 'y=1|a=0']
    """
    y = _as_1d(y, "y")
    attribute = _as_1d(attribute, "attribute")
    if y.shape[0] != attribute.shape[0]:
        raise ValueError(
            f"y has {y.shape[0]} entries but attribute has {attribute.shape[0]}; "
            "pass one attribute value per sample."
        )
    for name, values in (("y", y), ("attribute", attribute)):
        if values.dtype.kind == "f" and not np.isfinite(values).all():
            raise ValueError(f"{name} contains NaN or inf; every sample needs a value.")
    names = [f"y={_python_label(c)}|a={_python_label(a)}" for c, a in zip(y, attribute)]
    return np.asarray(names, dtype=str) if names else np.array([], dtype=str)


class _ScoringFailure:
    """Returned instead of a score when scikit-learn's cross-validation would
    otherwise swallow the error: ``_score`` rejects any non-number, outside its
    ``error_score`` handling, with a ValueError that shows this object's text."""

    def __init__(self, message):
        self.message = message

    def __repr__(self):
        return f"no score. {self.message}\n"

    __str__ = __repr__

    def __mul__(self, other):
        return self

    __rmul__ = __mul__

    def __float__(self):
        raise ValueError(self.message)


def _inside_sklearn_cv_scoring(max_depth=10):
    """True when called below sklearn.model_selection._validation._score, which
    turns scorer exceptions into ``error_score`` (NaN by default)."""
    frame = sys._getframe(2)
    for _ in range(max_depth):
        if frame is None:
            return False
        if (
            frame.f_code.co_name == "_score"
            and frame.f_globals.get("__name__") == "sklearn.model_selection._validation"
        ):
            return True
        frame = frame.f_back
    return False


class _GroupMetric:
    """A group metric as a scorer's score function: errors loudly without groups."""

    def __init__(self, metric):
        self.metric = metric
        self.__name__ = getattr(metric, "__name__", type(metric).__name__)

    def __call__(self, y_true, y_pred, groups=None, **kwargs):
        if groups is not None:
            return self.metric(y_true, y_pred, groups=groups, **kwargs)
        routing = sklearn.get_config()["enable_metadata_routing"]
        template = _ROUTING_ON_MESSAGE if routing else _ROUTING_OFF_MESSAGE
        message = template.format(name=f"The scorer for {self.__name__}")
        # GridSearchCV, cross_validate and cross_val_score catch scorer errors and
        # record error_score (NaN) with a warning; a non-number result instead
        # makes them raise, so a misconfigured search cannot finish silently.
        if _inside_sklearn_cv_scoring():
            return _ScoringFailure(message)
        raise ValueError(message)


def make_group_scorer(score_func, *, greater_is_better=True, **kwargs):
    """Scorer from a group metric, requesting ``groups`` by metadata routing.

    Parameters
    ----------
    score_func : callable
        Metric with signature ``score_func(y_true, y_pred, *, groups, **kwargs)``,
        e.g. :func:`worst_group_accuracy` or :func:`group_weighted_accuracy`.
    greater_is_better : bool, default=True
        Whether a higher value of ``score_func`` is better.
    **kwargs
        Extra keyword arguments for ``score_func`` (e.g. ``reference_groups``).

    Returns
    -------
    scorer : callable
        A scikit-learn scorer (from :func:`sklearn.metrics.make_scorer`) whose
        score request has ``groups=True``. It can be created whatever the
        configuration, but using it in ``GridSearchCV``, ``cross_validate`` or
        ``cross_val_score`` needs
        ``sklearn.set_config(enable_metadata_routing=True)``; without routing,
        or without ``groups`` passed to ``fit``, scoring raises a ValueError
        saying what to do (it never records a NaN score).

    See Also
    --------
    make_worst_group_scorer : The worst-group accuracy scorer.

    Examples
    --------
    >>> import sklearn
    >>> from sklearn.linear_model import LogisticRegression
    >>> from skhsfm.metrics import group_weighted_accuracy, make_group_scorer
    >>> X = [[0.0], [1.0], [2.0], [3.0]]
    >>> y = [0, 0, 1, 1]
    >>> groups = ["a", "b", "a", "b"]
    >>> clf = LogisticRegression().fit(X, y)
    >>> scorer = make_group_scorer(
    ...     group_weighted_accuracy, reference_groups={"a": 3, "b": 1}
    ... )
    >>> with sklearn.config_context(enable_metadata_routing=True):
    ...     print(scorer(clf, X, y, groups=groups))
    1.0
    """
    scorer = make_scorer(
        _GroupMetric(score_func), greater_is_better=greater_is_better, **kwargs
    )
    # set_score_request raises unless routing is on; requesting inside a local
    # context lets the scorer be built at import time or before set_config.
    with sklearn.config_context(enable_metadata_routing=True):
        scorer.set_score_request(groups=True)
    return scorer


def make_worst_group_scorer():
    """Worst-group accuracy scorer for GridSearchCV, cross_validate and friends.

    Returns
    -------
    scorer : callable
        A new scorer computing :func:`worst_group_accuracy` on the estimator's
        predictions, with ``groups`` requested by metadata routing. Needs
        ``sklearn.set_config(enable_metadata_routing=True)`` (or
        ``sklearn.config_context(enable_metadata_routing=True)``) when used, and
        the group labels passed to ``fit`` / ``params``; otherwise scoring raises
        a ValueError saying what to do.

    See Also
    --------
    worst_group_scorer : A ready-made instance.
    make_group_scorer : Scorers for any group metric.

    Examples
    --------
    >>> import numpy as np
    >>> import sklearn
    >>> from sklearn.linear_model import LogisticRegression
    >>> from sklearn.model_selection import cross_val_score
    >>> from skhsfm.metrics import make_worst_group_scorer
    >>> X = np.arange(12.0).reshape(-1, 1)
    >>> y = np.repeat([0, 1], 6)
    >>> groups = np.tile(["a", "b"], 6)
    >>> with sklearn.config_context(enable_metadata_routing=True):
    ...     scores = cross_val_score(
    ...         LogisticRegression(), X, y, cv=2,
    ...         scoring=make_worst_group_scorer(), params={"groups": groups},
    ...     )
    >>> scores.shape
    (2,)
    """
    return make_group_scorer(worst_group_accuracy)


#: Ready-made worst-group accuracy scorer (see :func:`make_worst_group_scorer`).
worst_group_scorer = make_worst_group_scorer()
