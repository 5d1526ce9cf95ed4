"""Tests for skhsfm._sklearn_compat, the one module that depends on
scikit-learn's private names and on which scikit-learn release is installed."""

import warnings

import numpy as np
import sklearn
from sklearn.linear_model import LogisticRegression

from skhsfm import _sklearn_compat


def test_every_name_imports():
    for name in _sklearn_compat.__all__:
        assert getattr(_sklearn_compat, name) is not None


def test_l1_logistic_params_follow_the_installed_release():
    major, minor = (int(part) for part in sklearn.__version__.split(".")[:2])
    expected = {"l1_ratio": 1.0} if (major, minor) >= (1, 8) else {"penalty": "l1"}
    assert _sklearn_compat.l1_logistic_params() == expected


def test_l1_logistic_params_fit_a_sparse_model_without_warnings():
    rng = np.random.RandomState(0)
    X = rng.normal(size=(200, 30))
    y = (X[:, 0] + 0.1 * rng.normal(size=200) > 0).astype(int)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model = LogisticRegression(
            C=0.05, solver="liblinear", **_sklearn_compat.l1_logistic_params()
        ).fit(X, y)
    # L1 zeroes most noise coefficients exactly; L2 would keep all 30
    assert np.sum(model.coef_ == 0.0) >= 20
    assert model.coef_[0, 0] != 0.0
