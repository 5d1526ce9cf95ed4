"""Tests of skhsfm._validation: the pure input checks every estimator, metric
and splitter shares (what they return, and errors that name the argument)."""

import warnings

import numpy as np
import pytest
from sklearn.base import BaseEstimator
from sklearn.exceptions import DataConversionWarning

from skhsfm._validation import (
    check_finite,
    check_groups,
    check_label_kinds,
    check_labels,
    check_missing,
    check_X,
    label_kinds,
    validate_support_pool,
)

pd = pytest.importorskip("pandas")


class _Estimator(BaseEstimator):
    """Something for validate_data to set n_features_in_ on."""


# ------------------------------------------------------------- check_labels


def test_check_labels_returns_a_1d_array():
    out = check_labels([1, 0, 1], "y")
    assert isinstance(out, np.ndarray) and out.tolist() == [1, 0, 1]
    assert check_labels(pd.Series(["a", "b"]), "y", 2).tolist() == ["a", "b"]
    with pytest.warns(DataConversionWarning):  # a column, as scikit-learn warns
        assert check_labels(np.array([[1], [2]]), "y").shape == (2,)


@pytest.mark.parametrize(
    "values, message",
    [
        (3, "y must be 1-dimensional .*the scalar 3"),
        (np.zeros((3, 2)), r"y must be 1-dimensional .*shape \(3, 2\)"),
        ([1.0, np.nan], "y contains NaN or inf"),
        ([1.0, np.inf], "y contains NaN or inf"),
        (np.array(["a", None], dtype=object), r"None or NaN at position\(s\) \[1\]"),
        (pd.Series(["a", pd.NA, "b"], dtype=object), r"position\(s\) \[1\]"),
    ],
)
def test_check_labels_names_what_is_wrong(values, message):
    with pytest.raises(ValueError, match=message):
        check_labels(values, "y")


def test_check_labels_length_and_what():
    with pytest.raises(ValueError, match="groups has 2 entries but X has 3 rows"):
        check_labels([0, 1], "groups", 3, what="group label")
    with pytest.raises(ValueError, match="every sample needs a group label"):
        check_labels([0.0, np.nan], "groups", what="group label")


def test_check_missing_lists_at_most_five_positions():
    values = np.array([None] * 7 + ["a"], dtype=object)
    with pytest.raises(ValueError, match=r"\[0, 1, 2, 3, 4\] \.\.\."):
        check_missing(values, "y")
    finite = np.array([1.0, 2.0])
    np.testing.assert_array_equal(check_missing(finite, "y"), finite)


# ------------------------------------------------------------- label kinds


def test_label_kinds_by_value_not_container():
    assert label_kinds(np.array([1, 2])) == {"number"}
    assert label_kinds(np.array([True, False])) == {"number"}
    assert label_kinds(np.array(["a", "b"])) == {"str"}
    assert label_kinds(np.array(["a", "b"], dtype=object)) == {"str"}
    assert label_kinds(np.array([b"a"])) == {"bytes"}
    assert label_kinds(np.array([1, "a"], dtype=object)) == {"number", "str"}


def test_check_label_kinds():
    check_label_kinds(np.array([1, 0]), np.array([0.0, 1.0]), "y_true", "y_pred")
    check_label_kinds(np.array([]), np.array(["a"]), "y_true", "y_pred")  # empty
    with pytest.raises(ValueError, match="y_true mixes labels of kinds"):
        check_label_kinds(
            np.array([1, "a"], dtype=object), np.array([1]), "y_true", "y_pred"
        )
    with pytest.raises(ValueError, match="would never compare equal"):
        check_label_kinds(np.array(["1"]), np.array([1]), "y_true", "y_pred")
    with pytest.raises(ValueError, match="Give y_val the type of y"):
        check_label_kinds(
            np.array(["a"]), np.array([1]), "y_val", "y", fix="Give y_val the type of y"
        )


# --------------------------------------------------------- groups, X, finite


def test_check_groups():
    assert check_groups(None, 3) is None
    assert check_groups(["a", "b", "a"], 3).tolist() == ["a", "b", "a"]
    with pytest.raises(ValueError, match="groups_val has 2 entries but X has 3"):
        check_groups(["a", "b"], 3, "groups_val")


def test_check_finite_and_check_X():
    X = np.ones((2, 3), dtype=np.float32)
    assert check_finite(X) is X  # no copy
    bad = X.copy()
    bad[1, 2] = np.inf
    with pytest.raises(ValueError, match="X_val contains NaN or inf"):
        check_finite(bad, "X_val")
    checked = check_X([[1, 2], [3, 4]], "X_new")
    assert checked.dtype == np.float64 and checked.shape == (2, 2)
    with pytest.raises(ValueError, match="X_new contains NaN or inf"):
        check_X([[1.0, np.nan]], "X_new")
    with pytest.raises(ValueError, match="2D array"):
        check_X([1.0, 2.0])


# ---------------------------------------------------- validate_support_pool


def test_validate_support_pool(grouped_data):
    X, y, g = grouped_data[:3]
    labels = np.array(["cat", "dog"])[y]
    estimator = _Estimator()
    X_out, y_enc, groups, encoder = validate_support_pool(estimator, X, labels, g)
    assert estimator.n_features_in_ == X.shape[1]
    np.testing.assert_array_equal(X_out, X)
    np.testing.assert_array_equal(y_enc, y)
    np.testing.assert_array_equal(encoder.classes_, ["cat", "dog"])
    np.testing.assert_array_equal(groups, g)
    # float32 stays float32 (no float64 copy of large pools)
    X32, *_ = validate_support_pool(_Estimator(), X.astype(np.float32), y, None)
    assert X32.dtype == np.float32


@pytest.mark.parametrize(
    "change, message",
    [
        (dict(y="one class"), "y has 1 class"),
        (dict(y="missing"), r"y contains None or NaN at position\(s\) \[0\]"),
        (dict(X="nan"), "X contains NaN or inf"),
        (dict(groups="short"), "groups has 3 entries but X has"),
    ],
)
def test_validate_support_pool_errors(grouped_data, change, message):
    X, y, g = (np.array(a) for a in grouped_data[:3])  # writable copies
    if change.get("y") == "one class":
        y = np.zeros_like(y)
    elif change.get("y") == "missing":
        y = y.astype(object)
        y[0] = None
    if change.get("X") == "nan":
        X[0, 0] = np.nan
    if change.get("groups") == "short":
        g = g[:3]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataConversionWarning)
        with pytest.raises(ValueError, match=message):
            validate_support_pool(_Estimator(), X, y, g)
