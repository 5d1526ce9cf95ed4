"""Peer heads in the same API as :class:`~skhsfm.HSFMClassifier`.

- :class:`ERMHeadClassifier`: plain logistic regression, the starting point.
- :class:`DFRClassifier`: Deep Feature Reweighting (Kirichenko et al., 2022).
- :class:`AFRClassifier`: Automatic Feature Reweighting (Qiu et al., 2023).
- :class:`DPEClassifier`: Diverse Prototypical Ensembles (To et al., 2025).
- :class:`SELFClassifier`: selective last-layer finetuning (LaBonte et al.,
  2023), no group labels needed.

All fit as ``fit(X, y, groups=None, *, X_val=None, y_val=None, groups_val=None)``
and predict with numpy only.
"""

from skhsfm.baselines._afr import AFRClassifier
from skhsfm.baselines._dfr import DFRClassifier
from skhsfm.baselines._dpe import DPEClassifier
from skhsfm.baselines._erm import ERMHeadClassifier
from skhsfm.baselines._self import SELFClassifier

__all__ = [
    "AFRClassifier",
    "DFRClassifier",
    "DPEClassifier",
    "ERMHeadClassifier",
    "SELFClassifier",
]
