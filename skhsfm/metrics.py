"""Worst-group and per-group accuracy.

A *group* is a (class, spurious attribute) cell; ``groups`` holds one group label
per sample. This is not scikit-learn's ``GroupKFold`` meaning of groups
(non-overlapping clusters of samples).
"""

import numpy as np
from sklearn.utils.validation import check_consistent_length, column_or_1d

__all__ = ["worst_group_accuracy", "worst_class_accuracy"]


def _check_targets(y_true, y_pred, groups, groups_name="groups"):
    y_true = column_or_1d(np.asarray(y_true), warn=True)
    y_pred = column_or_1d(np.asarray(y_pred), warn=True)
    if groups is None:
        raise ValueError(
            f"{groups_name} is required: pass one group label per sample "
            f"(e.g. {groups_name}=make_groups(y, attribute))."
        )
    groups = column_or_1d(np.asarray(groups), warn=True)
    check_consistent_length(y_true, y_pred, groups)
    if y_true.shape[0] == 0:
        raise ValueError("y_true is empty; accuracy needs at least one sample.")
    return y_true, y_pred, groups


def _group_accuracies(y_true, y_pred, groups):
    """Per-group accuracy and size, groups in sorted order."""
    labels, inverse = np.unique(groups, return_inverse=True)
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
