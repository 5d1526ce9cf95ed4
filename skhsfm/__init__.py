"""skhsfm: group-robust linear heads on frozen embeddings, scikit-learn style.

The flagship is :class:`HSFMClassifier` (Hard-Set-Guided Feature-Space
Meta-Learning). Importing the package does not import torch.
"""

__version__ = "0.1.0"

from skhsfm._hsfm import PRESETS, HSFMClassifier
from skhsfm.metrics import worst_class_accuracy, worst_group_accuracy

__all__ = [
    "HSFMClassifier",
    "PRESETS",
    "worst_group_accuracy",
    "worst_class_accuracy",
    "__version__",
]
