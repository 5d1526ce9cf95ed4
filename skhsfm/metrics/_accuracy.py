"""Worst-group, worst-class, mean and reference-weighted accuracy; group labels."""

from numbers import Real

import numpy as np

from skhsfm._utils.docstrings import fill_doc
from skhsfm._utils.text import plain
from skhsfm._validation import check_labels
from skhsfm.metrics._engine import check_targets, group_counts, unique_labels

__all__ = [
    "group_weighted_accuracy",
    "make_groups",
    "mean_accuracy",
    "worst_class_accuracy",
    "worst_group_accuracy",
]


@fill_doc
def worst_group_accuracy(y_true, y_pred, *, groups):
    """Accuracy of the worst group.

    Parameters
    ----------
    {y_true_y_pred}
    {groups_metric}

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
    y_true, y_pred, groups = check_targets(y_true, y_pred, groups)
    return group_counts(y_true, y_pred, groups).worst


@fill_doc
def worst_class_accuracy(y_true, y_pred):
    """Accuracy of the worst class (the class-wise recall minimum).

    Parameters
    ----------
    {y_true_y_pred}

    Returns
    -------
    float

    Examples
    --------
    >>> from skhsfm.metrics import worst_class_accuracy
    >>> worst_class_accuracy([0, 0, 1, 1], [0, 1, 1, 1])
    0.5
    """
    y_true, y_pred, _ = check_targets(y_true, y_pred, y_true)
    return group_counts(y_true, y_pred, y_true).worst


@fill_doc
def mean_accuracy(y_true, y_pred):
    """Plain accuracy over the evaluation set (every sample counts once).

    This is the same number as :func:`sklearn.metrics.accuracy_score`; it follows
    the evaluation set's own group proportions. For accuracy re-weighted to the
    training split's group proportions (the Waterbirds convention of GroupDRO,
    JTT and AFR) use :func:`group_weighted_accuracy`.

    Parameters
    ----------
    {y_true_y_pred}

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
    y_true, y_pred, _ = check_targets(y_true, y_pred, y_true)
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
                    f"reference_groups[{plain(label)}] must be a finite number >= 0; "
                    f"got {plain(value)}."
                )
            weights[_python_label(label)] = float(value)
    else:
        reference = check_labels(
            reference_groups, "reference_groups", what="group label"
        )
        if reference.shape[0] == 0:
            raise ValueError(
                "reference_groups is empty; pass the reference split's group "
                "labels (e.g. the training groups) or a dict of proportions."
            )
        labels, inverse = unique_labels(reference, "reference_groups")
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


def weighted_mean(labels, accuracies, reference_groups):
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


@fill_doc
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
    {y_true_y_pred}
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
    y_true, y_pred, groups = check_targets(y_true, y_pred, groups)
    counts = group_counts(y_true, y_pred, groups)
    return weighted_mean(counts.labels, counts.accuracies, reference_groups)[0]


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
    y = check_labels(y, "y")
    attribute = check_labels(attribute, "attribute", what="value")
    if y.shape[0] != attribute.shape[0]:
        raise ValueError(
            f"y has {y.shape[0]} entries but attribute has {attribute.shape[0]}; "
            "pass one attribute value per sample."
        )
    names = [f"y={_python_label(c)}|a={_python_label(a)}" for c, a in zip(y, attribute)]
    return np.asarray(names, dtype=str) if names else np.array([], dtype=str)
