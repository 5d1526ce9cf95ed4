"""Tests of skhsfm._linear: the LinearHead value type, the conversions between
scikit-learn's head layout and one row per class, and the initial head."""

import numpy as np
import pytest
from scipy.special import expit, softmax

from skhsfm._linear import (
    LinearHead,
    check_init_head,
    fit_erm_head,
    initial_head,
    logistic_regression,
    softmax_head_proba,
    to_sklearn_head,
    to_softmax_head,
)

X3 = np.array([[1.0, 0.0], [0.0, 1.0], [-1.0, -1.0], [0.5, 0.5]])


# --------------------------------------------------------------- LinearHead


def test_binary_head_is_a_sigmoid_of_one_score():
    head = LinearHead([[2.0, -1.0]], [0.5], classes=["no", "yes"])
    scores = X3 @ np.array([2.0, -1.0]) + 0.5
    np.testing.assert_allclose(head.decision_function(X3), scores)
    np.testing.assert_allclose(head.predict_proba(X3)[:, 1], expit(scores))
    np.testing.assert_allclose(head.predict_proba(X3).sum(1), 1.0)
    assert head.predict(X3).tolist() == np.where(scores > 0, "yes", "no").tolist()
    np.testing.assert_allclose(
        head.predict_log_proba(X3), np.log(head.predict_proba(X3))
    )
    assert head.n_features == 2 and head.classes.tolist() == ["no", "yes"]


def test_a_zero_score_predicts_the_first_class():
    head = LinearHead([[1.0, -1.0]], [0.0])
    assert head.predict([[1.0, 1.0]]).tolist() == [0]  # score exactly 0


def test_multiclass_head_is_a_softmax():
    coef = np.array([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.5]])
    head = LinearHead(coef, [0.0, 0.1, -0.2])
    scores = X3 @ coef.T + [0.0, 0.1, -0.2]
    np.testing.assert_allclose(head.predict_proba(X3), softmax(scores, axis=1))
    assert head.predict(X3).tolist() == scores.argmax(1).tolist()
    assert head.classes.tolist() == [0, 1, 2]  # default labels


def test_two_rows_and_one_row_give_the_same_binary_head():
    W = np.array([[0.5, -1.0], [1.5, 2.0]])
    b = np.array([0.1, -0.3])
    head = LinearHead.from_softmax(W, b, classes=["a", "b"])
    np.testing.assert_allclose(head.coef, [[1.0, 3.0]])
    np.testing.assert_allclose(head.intercept, [-0.4])
    np.testing.assert_allclose(head.predict_proba(X3), softmax_head_proba(X3, W, b))
    back_W, back_b = head.softmax_weights()
    np.testing.assert_allclose(
        softmax_head_proba(X3, back_W, back_b), head.predict_proba(X3)
    )


@pytest.mark.parametrize(
    "coef, intercept, classes, message",
    [
        ([1.0, 2.0], [0.0], None, "coef must be a 2-d array"),
        (np.zeros((0, 2)), [], None, "coef must be a 2-d array"),
        ([[1.0, 2.0]], [0.0, 1.0], None, "intercept must have 1 entries"),
        ([[1.0, 2.0]], [0.0], ["a", "b", "c"], "classes must list 2 labels"),
    ],
)
def test_linear_head_refuses_bad_shapes(coef, intercept, classes, message):
    with pytest.raises(ValueError, match=message):
        LinearHead(coef, intercept, classes)


@pytest.mark.parametrize(
    "coef, intercept",
    [
        ([[2.0, -1.0]], [0.5]),  # binary, one row
        ([[0.5, -1.0], [1.5, 2.0]], [0.1, -0.3]),  # binary, two softmax rows
        ([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.5]], [0.0, 0.1, -0.2]),
    ],
)
def test_to_sklearn_predicts_as_the_head(coef, intercept):
    classes = ["a", "b", "c"][: max(len(coef), 2)]
    head = LinearHead(coef, intercept, classes=classes)
    model = head.to_sklearn()
    assert model.coef_.shape[0] == (1 if len(classes) == 2 else 3)
    assert model.predict(X3).tolist() == head.predict(X3).tolist()
    np.testing.assert_allclose(model.predict_proba(X3), head.predict_proba(X3))


def test_logistic_regression_names_the_shapes_it_needs():
    model = logistic_regression([[1.0, 2.0]], [0.0], [0, 1])
    assert model.n_features_in_ == 2 and model.classes_.tolist() == [0, 1]
    with pytest.raises(ValueError, match=r"coef of shape \(1, n_features\)"):
        logistic_regression([[1.0, 2.0], [0.0, 1.0]], [0.0, 0.0], [0, 1])
    with pytest.raises(ValueError, match=r"intercept of shape \(3,\)"):
        logistic_regression(np.eye(3), [0.0], [0, 1, 2])


# -------------------------------------------------------------- conversions


def test_softmax_and_sklearn_forms_round_trip():
    coef, intercept = np.array([[3.0, -2.0]]), np.array([0.75])
    W, b = to_softmax_head(coef, intercept, 2)
    np.testing.assert_array_equal(W, [[-1.5, 1.0], [1.5, -1.0]])
    np.testing.assert_array_equal(b, [-0.375, 0.375])
    back = to_sklearn_head(W, b)  # exact: halves and their difference
    np.testing.assert_array_equal(back[0], coef)
    np.testing.assert_array_equal(back[1], intercept)
    multi = np.arange(6.0).reshape(3, 2)
    W3, b3 = to_softmax_head(multi, [1, 2, 3], 3)  # more classes: unchanged
    np.testing.assert_array_equal(W3, multi)
    assert b3.dtype == np.float64
    np.testing.assert_array_equal(to_sklearn_head(W3, b3)[0], multi)


def test_check_init_head():
    W, b = check_init_head([[2.0, 0.0]], None, 2, 2)  # intercept None: zeros
    np.testing.assert_array_equal(W, [[-1.0, 0.0], [1.0, 0.0]])
    np.testing.assert_array_equal(b, [0.0, 0.0])
    W3, b3 = check_init_head(np.eye(3), [1, 2, 3], 3, 3)
    np.testing.assert_array_equal(W3, np.eye(3))
    with pytest.raises(ValueError, match=r"init_coef must have shape \(1, 2\) or"):
        check_init_head(np.ones((3, 2)), None, 2, 2)
    with pytest.raises(ValueError, match=r"shape \(3, 4\) for 3 classes"):
        check_init_head(np.ones((3, 2)), None, 3, 4)
    with pytest.raises(ValueError, match="init_intercept must have 3 entries"):
        check_init_head(np.eye(3), [0.0], 3, 3)
    with pytest.raises(ValueError, match="must be finite"):
        check_init_head([[np.nan, 0.0]], None, 2, 2)


# ------------------------------------------------------------- initial_head


def test_initial_head_fits_a_logistic_regression_or_takes_the_given_one(
    grouped_data,
):
    X, y = grouped_data[:2]
    W, b = initial_head(None, None, X, y, 2)
    coef, intercept, _ = fit_erm_head(X, y, 2)
    expected = to_softmax_head(coef, intercept, 2)
    np.testing.assert_array_equal(W, expected[0])
    np.testing.assert_array_equal(b, expected[1])
    # a given head acting on X becomes a head acting on 4 * X
    given = np.ones((1, X.shape[1]))
    W4, b4 = initial_head(given, [0.5], X, y, 2, feature_scale=4.0)
    Wg, bg = to_softmax_head(given, [0.5], 2)
    np.testing.assert_allclose(W4, Wg / 4.0)
    np.testing.assert_array_equal(b4, bg)
    np.testing.assert_allclose(
        softmax_head_proba(4.0 * X, W4, b4), softmax_head_proba(X, Wg, bg)
    )


def test_initial_head_on_a_scaled_problem_equals_the_scaled_fit(grouped_data):
    """The rescaled regression runs on row blocks, no scaled copy: the same
    fit as scikit-learn's on 3 * X, to solver tolerance."""
    X, y = grouped_data[:2]
    W, b = initial_head(None, None, X, y, 2, feature_scale=3.0)
    W3, b3 = to_softmax_head(*fit_erm_head(3.0 * X, y, 2)[:2], 2)
    np.testing.assert_allclose(
        softmax_head_proba(3.0 * X, W, b),
        softmax_head_proba(3.0 * X, W3, b3),
        atol=1e-4,
    )
