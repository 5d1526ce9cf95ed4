"""scikit-learn's estimator checks on every registered estimator.

The estimators come from the registry (:func:`skhsfm.utils.all_estimators`),
each built with its registry line's ``check_params`` (fast, group-free
settings), so a newly registered estimator is checked the moment it is
registered. An estimator whose input is not a 2-d array (the embedder takes
images) gets only the checks scikit-learn can run on it.
"""

import warnings

import pytest
from sklearn.exceptions import SkipTestWarning
from sklearn.utils.estimator_checks import parametrize_with_checks

from skhsfm.utils import _registry


def _estimators():
    return [entry.check_instance() for entry in _registry()]


with warnings.catch_warnings():
    # the embedder takes images, which the data checks cannot make
    warnings.filterwarnings("ignore", "Can't test estimator", SkipTestWarning)
    _checks = parametrize_with_checks(_estimators())


# the checks' data sets are tiny, so DFR/AFR warn that their held-out split is
# small
@pytest.mark.filterwarnings("ignore:.*hard pool.*:UserWarning")
@_checks
def test_sklearn_compatible(estimator, check):
    check(estimator)
