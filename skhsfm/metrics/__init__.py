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

from skhsfm.metrics._accuracy import (
    group_weighted_accuracy,
    make_groups,
    mean_accuracy,
    worst_class_accuracy,
    worst_group_accuracy,
)
from skhsfm.metrics._compare import PairedDifference, paired_difference
from skhsfm.metrics._report import GroupAccuracyReport, group_accuracy_report
from skhsfm.metrics._scorers import (
    make_group_scorer,
    make_worst_group_scorer,
    worst_group_scorer,
)

__all__ = [
    "GroupAccuracyReport",
    "PairedDifference",
    "group_accuracy_report",
    "group_weighted_accuracy",
    "make_group_scorer",
    "make_groups",
    "make_worst_group_scorer",
    "mean_accuracy",
    "paired_difference",
    "worst_class_accuracy",
    "worst_group_accuracy",
    "worst_group_scorer",
]
