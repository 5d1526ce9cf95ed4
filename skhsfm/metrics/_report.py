"""The per-group accuracy report."""

from dataclasses import dataclass, field

import numpy as np

from skhsfm._utils.docstrings import fill_doc
from skhsfm._utils.table import format_table
from skhsfm.metrics._accuracy import weighted_mean
from skhsfm.metrics._engine import check_targets, group_counts

__all__ = ["GroupAccuracyReport", "group_accuracy_report"]


@dataclass(eq=False, repr=False)
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

    labels: np.ndarray
    n_correct: np.ndarray
    group_counts: np.ndarray
    weighted: object = None
    reference_proportions: object = None
    accuracies: np.ndarray = field(init=False)
    by_group: dict = field(init=False)
    counts: dict = field(init=False)
    worst: float = field(init=False)
    worst_group: object = field(init=False)
    n_samples: int = field(init=False)
    mean: float = field(init=False)
    balanced: float = field(init=False)

    def __post_init__(self):
        self.accuracies = self.n_correct / self.group_counts
        names = self.labels.tolist()
        self.by_group = dict(zip(names, self.accuracies.tolist()))
        self.counts = dict(zip(names, self.group_counts.tolist()))
        worst_index = int(np.argmin(self.accuracies))
        self.worst = float(self.accuracies[worst_index])
        self.worst_group = names[worst_index]
        self.n_samples = int(self.group_counts.sum())
        self.mean = float(self.n_correct.sum() / self.n_samples)
        self.balanced = float(self.accuracies.mean())

    def __repr__(self):
        show_ref = self.reference_proportions is not None
        header = ["group", "n", "correct", "accuracy"]
        header += ["ref. share"] if show_ref else []
        rows = []
        for label, n_correct in zip(self.by_group, self.n_correct):
            row = [label, self.counts[label], int(round(n_correct))]
            row.append(self.by_group[label])
            if show_ref:
                row.append(self.reference_proportions[label])
            rows.append(row + ["<- worst" if label == self.worst_group else ""])
        table = format_table(header + [""], rows, float_format="{:.4f}")
        lines = [
            f"GroupAccuracyReport: {self.n_samples} samples, {len(rows)} groups",
            table,
            f"worst-group accuracy: {self.worst:.4f} ({self.worst_group})",
            f"mean accuracy (plain, evaluation set): {self.mean:.4f}",
            f"mean of group accuracies (balanced): {self.balanced:.4f}",
        ]
        if self.weighted is not None:
            lines.append(f"mean accuracy (reference-weighted): {self.weighted:.4f}")
        return "\n".join(lines)

    __str__ = __repr__


@fill_doc
def group_accuracy_report(y_true, y_pred, *, groups, reference_groups=None):
    """Accuracy of every group, the worst group and the mean accuracies.

    Parameters
    ----------
    {y_true_y_pred}
    {groups_metric}
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
    y_true, y_pred, groups = check_targets(y_true, y_pred, groups)
    counts = group_counts(y_true, y_pred, groups)
    weighted = proportions = None
    if reference_groups is not None:
        weighted, shares = weighted_mean(
            counts.labels, counts.accuracies, reference_groups
        )
        proportions = dict(zip(counts.labels.tolist(), shares.tolist()))
    return GroupAccuracyReport(
        counts.labels, counts.n_correct, counts.counts, weighted, proportions
    )
