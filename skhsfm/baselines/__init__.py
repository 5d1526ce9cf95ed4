"""Peer heads in the same API as :class:`~skhsfm.HSFMClassifier`.

- :class:`ERMHeadClassifier`: plain logistic regression, the starting point.
- :class:`DFRClassifier`: Deep Feature Reweighting (Kirichenko et al., 2022).
- :class:`AFRClassifier`: Automatic Feature Reweighting (Qiu et al., 2023).
- :class:`DPEClassifier`: Diverse Prototypical Ensembles (To et al., 2025).

All fit as ``fit(X, y, groups=None, *, X_val=None, y_val=None, groups_val=None)``
and predict with numpy only.
"""

from skhsfm.baselines._afr import AFRClassifier
from skhsfm.baselines._dfr import DFRClassifier
from skhsfm.baselines._dpe import DPEClassifier
from skhsfm.baselines._erm import ERMHeadClassifier

__all__ = ["AFRClassifier", "DFRClassifier", "DPEClassifier", "ERMHeadClassifier"]
