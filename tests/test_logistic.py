"""The block-wise lbfgs logistic regression of ``scale * X`` (HSFM's initial head).

It replaces ``LogisticRegression().fit(X * scale, y)``, which made a float64
copy of ``X``: the same objective, solver, options and start, so the same
head up to floating-point rounding (not merely up to the solver's tolerance).
"""

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression

from skhsfm import HSFMClassifier
from skhsfm._linear import initial_head, to_softmax_head
from skhsfm._logistic import scaled_logistic_regression


def _data(n, d, n_classes, dtype, seed=0):
    rng = np.random.RandomState(seed)
    y = rng.randint(0, n_classes, n)
    X = 0.05 * rng.normal(size=(n, d))
    X[:, :3] += 0.04 * y[:, None]
    return X.astype(dtype), y


@pytest.mark.parametrize("n_classes", [2, 3])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("C", [1.0, 0.05])
def test_equals_sklearn_on_the_scaled_copy(n_classes, dtype, C):
    X, y = _data(1500, 20, n_classes, dtype)
    scale = np.float64(17.3)  # as HSFM's scale_: a float64 copy of X before
    ref = LogisticRegression(C=C, max_iter=1000).fit(X * scale, y)
    coef, intercept = scaled_logistic_regression(
        X, y, n_classes, C=C, scale=scale, block_rows=128
    )
    # lbfgs stops at tol: the two agree to far below it, but older scikit-learn
    # (1.6) sums the float32 loss in another order, a few 1e-8 apart
    np.testing.assert_allclose(coef, ref.coef_, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(intercept, ref.intercept_, rtol=1e-6, atol=1e-7)


def test_block_size_does_not_matter():
    X, y = _data(1000, 10, 2, np.float32)
    a = scaled_logistic_regression(X, y, 2, scale=3.0, block_rows=64)
    b = scaled_logistic_regression(X, y, 2, scale=3.0, block_rows=1000)
    np.testing.assert_allclose(a[0], b[0], rtol=1e-8)


def test_hsfm_initial_head_is_the_old_one_up_to_rounding():
    """What changed for in-memory input: only HSFM's initial head when
    ``rescale=True`` and ``init_coef`` is None, by floating-point rounding."""
    X, y = _data(2000, 16, 2, np.float32)
    clf = HSFMClassifier(n_epochs=2, rescale=True, device="cpu", random_state=0)
    clf.fit(X, y)
    held_out = np.r_[clf.hard_pool_indices_, clf.selection_indices_]
    support = np.setdiff1d(np.arange(2000), held_out)
    old = LogisticRegression(max_iter=1000).fit(X[support] * clf.scale_, y[support])
    W_old, b_old = to_softmax_head(old.coef_, old.intercept_, 2)
    W, b = initial_head(None, None, X[support], y[support], 2, feature_scale=clf.scale_)
    np.testing.assert_allclose(W, W_old, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(b, b_old, rtol=1e-6, atol=1e-7)
    # the unscaled path is scikit-learn's own fit, unchanged
    W1, b1 = initial_head(None, None, X[support], y[support], 2, feature_scale=1.0)
    ref = LogisticRegression(max_iter=1000).fit(X[support], y[support])
    np.testing.assert_array_equal(W1, to_softmax_head(ref.coef_, ref.intercept_, 2)[0])


def test_not_converging_warns():
    from sklearn.exceptions import ConvergenceWarning

    X, y = _data(500, 10, 2, np.float64)
    with pytest.warns(ConvergenceWarning, match="did not converge"):
        scaled_logistic_regression(X, y, 2, C=1e6, scale=5.0, max_iter=2)
