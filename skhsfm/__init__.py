"""skhsfm: group-robust linear heads on frozen embeddings, scikit-learn style.

The flagship is :class:`HSFMClassifier` (Hard-Set-Guided Feature-Space
Meta-Learning). Importing the package does not import torch.
"""

from skhsfm._base import InconsistentVersionWarning
from skhsfm._hsfm import PRESETS, HSFMClassifier
from skhsfm._linear import LinearHead
from skhsfm._version import __version__
from skhsfm.baselines import (
    AFRClassifier,
    DFRClassifier,
    DPEClassifier,
    ERMHeadClassifier,
    SELFClassifier,
)
from skhsfm.embedding import BackboneEmbedder
from skhsfm.metrics import (
    GroupAccuracyReport,
    group_accuracy_report,
    group_weighted_accuracy,
    make_group_scorer,
    make_groups,
    make_worst_group_scorer,
    mean_accuracy,
    worst_class_accuracy,
    worst_group_accuracy,
    worst_group_scorer,
)
from skhsfm.model_selection import GroupStratifiedKFold

__all__ = [
    "HSFMClassifier",
    "PRESETS",
    "AFRClassifier",
    "BackboneEmbedder",
    "DFRClassifier",
    "DPEClassifier",
    "ERMHeadClassifier",
    "GroupStratifiedKFold",
    "InconsistentVersionWarning",
    "LinearHead",
    "SELFClassifier",
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
    "__version__",
]
