"""The one group-accuracy engine: checked inputs in, per-group counts out.

Every metric, the report, model selection inside the heads and the ``skhsfm``
command count hits per group through :func:`group_counts`, so that they agree
on what a group, a hit and a valid input are.
"""

from dataclasses import dataclass

import numpy as np

from skhsfm._validation import check_label_kinds, check_labels

__all__ = ["GroupCounts", "check_targets", "group_counts", "selection_score"]


def check_targets(y_true, y_pred, groups, groups_name="groups"):
    """Validate ``y_true``, ``y_pred`` and ``groups`` for a group metric.

    Returns the three as 1-d arrays of one length (at least one sample).
    """
    y_true = check_labels(y_true, "y_true")
    y_pred = check_labels(y_pred, "y_pred", what="prediction")
    if groups is None:
        raise ValueError(
            f"{groups_name} is required: pass one group label per sample "
            f"(e.g. {groups_name}=make_groups(y, attribute))."
        )
    groups = check_labels(groups, groups_name, what="group label")
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
    check_label_kinds(y_true, y_pred, "y_true", "y_pred")
    return y_true, y_pred, groups


def unique_labels(values, name="groups"):
    """``np.unique(values, return_inverse=True)`` with a clear error for labels
    of types that cannot be sorted together."""
    try:
        return np.unique(values, return_inverse=True)
    except TypeError as exc:
        raise ValueError(
            f"{name} mixes label types that cannot be sorted together (e.g. str and "
            "int); use one type for every group label."
        ) from exc


@dataclass(frozen=True)
class GroupCounts:
    """Hits and sizes per group, groups in sorted order.

    Attributes
    ----------
    labels : ndarray of shape (n_groups,)
    n_correct : ndarray of shape (n_groups,)
    counts : ndarray of shape (n_groups,)
    """

    labels: np.ndarray
    n_correct: np.ndarray
    counts: np.ndarray

    @property
    def accuracies(self):
        """Accuracy of each group."""
        return self.n_correct / self.counts

    @property
    def worst(self):
        """The smallest group accuracy."""
        return float(self.accuracies.min())

    @property
    def mean(self):
        """Plain accuracy over all samples."""
        return float(self.n_correct.sum() / self.counts.sum())


def group_counts(y_true, y_pred, groups):
    """Count hits per group of already checked 1-d arrays."""
    labels, inverse = unique_labels(groups)
    correct = (y_true == y_pred).astype(np.float64)
    counts = np.bincount(inverse, minlength=labels.shape[0])
    n_correct = np.bincount(inverse, weights=correct, minlength=labels.shape[0])
    return GroupCounts(labels, n_correct, counts)


def selection_score(y_true, y_pred, groups):
    """Worst-group accuracy when groups are known, else worst-class accuracy,
    plus the mean accuracy: the numbers every head selects by.

    For encoded labels inside a fit (no input checks).

    Parameters
    ----------
    y_true : ndarray of shape (n,)
    y_pred : ndarray of shape (n,) or (n, n_candidates)
        Predictions of one model, or one column per candidate model (AFR scores
        its whole grid of heads at once).
    groups : ndarray of shape (n,) or None

    Returns
    -------
    worst, mean : float, or ndarray of shape (n_candidates,) for 2-d ``y_pred``
    """
    strata = y_true if groups is None else groups
    if np.ndim(y_pred) == 1:
        counts = group_counts(y_true, y_pred, strata)
        return counts.worst, counts.mean
    labels, inverse = unique_labels(strata)
    members = np.zeros((labels.shape[0], inverse.shape[0]))
    members[inverse, np.arange(inverse.shape[0])] = 1.0
    # hits per group and candidate: sums of 0/1 in float64, exact
    n_correct = members @ (y_pred == y_true[:, None])
    counts = members.sum(1)
    worst = (n_correct / counts[:, None]).min(0)
    return worst, n_correct.sum(0) / inverse.shape[0]
