"""scikit-learn's estimator checks on every estimator of the package."""

import pytest
from sklearn.utils.estimator_checks import parametrize_with_checks

from skhsfm import HSFMClassifier
from skhsfm.baselines import (
    AFRClassifier,
    DFRClassifier,
    DPEClassifier,
    ERMHeadClassifier,
    SELFClassifier,
)

FAST = dict(n_epochs=2, support_size=4, hard_size=8, inner_steps=3, outer_steps=2)


def _estimators():
    return [
        HSFMClassifier(random_state=0, **FAST),
        ERMHeadClassifier(),
        # the checks never pass groups; balance="classes" is DFR's group-free mode
        # (the group-requiring default is tested in test_baselines.py)
        DFRClassifier(balance="classes", n_models=3, random_state=0),
        AFRClassifier(
            gamma=(1.0, 4.0),
            reg_lambda=(0.0, 0.1),
            n_epochs=20,
            device="cpu",
            random_state=0,
        ),
        # the checks' data have 2 features: standardising each row over its own
        # entries maps every row to +-(1, -1)/sqrt(2), so the checks run DPE on
        # the raw rows (standardize_rows=True is tested in test_dpe.py)
        DPEClassifier(
            n_members=3,
            n_epochs=5,
            standardize_rows=False,
            device="cpu",
            random_state=0,
        ),
        SELFClassifier(n_selected=(10, 40), learning_rate=(1.0, 10.0), random_state=0),
    ]


# the checks' data sets are tiny, so DFR/AFR warn that their held-out split is small
@pytest.mark.filterwarnings("ignore:.*hard pool.*:UserWarning")
@parametrize_with_checks(_estimators())
def test_sklearn_compatible(estimator, check):
    check(estimator)
