"""Tests of skhsfm._pools: the support pool, the hard pool and the splits."""

import warnings

import numpy as np
import pytest
from sklearn.base import BaseEstimator

from skhsfm._pools import (
    Pools,
    balanced_subsample,
    cell_labels,
    fit_pools,
    holdout_split,
    read_pools,
    selection_split,
)


def _pools(y, groups=None, held_out_of_X=True):
    """A Pools whose hard pool is ``y`` (``groups``); rows held out of X, or
    given as X_val (``hard_index`` None)."""
    y = np.asarray(y)
    n = y.shape[0]
    classes = np.unique(y)  # the support pool: one row of every class
    return Pools(
        X=np.zeros((classes.shape[0], 2)),
        y=classes,
        groups=None,
        X_hard=np.zeros((n, 2)),
        y_hard=y,
        groups_hard=None if groups is None else np.asarray(groups),
        support_index=np.arange(classes.shape[0]),
        hard_index=np.arange(n) + 100 if held_out_of_X else None,
    )


# ---------------------------------------------------------- selection_split


def test_selection_split_keeps_a_share_of_every_group_apart():
    y = np.repeat([0, 1], 20)
    groups = np.repeat([0, 1, 2, 3], 10)
    train, select = selection_split(
        _pools(y, groups), 0.3, np.random.RandomState(0), method="M"
    )
    assert np.intersect1d(train, select).size == 0
    np.testing.assert_array_equal(np.union1d(train, select), np.arange(40))
    assert np.all(np.diff(train) > 0) and np.all(np.diff(select) > 0)
    np.testing.assert_array_equal(np.bincount(groups[select]), [3, 3, 3, 3])


def test_selection_split_is_seeded_and_draws_only_when_it_splits():
    y = np.repeat([0, 1], 10)
    first = selection_split(_pools(y), 0.5, np.random.RandomState(3), method="M")
    again = selection_split(_pools(y), 0.5, np.random.RandomState(3), method="M")
    for a, b in zip(first, again):
        np.testing.assert_array_equal(a, b)
    rng = np.random.RandomState(0)
    before = rng.get_state()[1].copy()
    train, select = selection_split(_pools(y), None, rng, method="M")
    assert select is None
    np.testing.assert_array_equal(train, np.arange(20))
    np.testing.assert_array_equal(rng.get_state()[1], before)


def test_selection_split_of_X_val_only_when_asked():
    y = np.repeat([0, 1], 10)
    given = _pools(y, held_out_of_X=False)
    train, select = selection_split(
        given, 0.5, np.random.RandomState(0), method="M", split_X_val=False
    )
    assert select is None and train.shape == (20,)
    train, select = selection_split(given, 0.5, np.random.RandomState(0), method="M")
    assert select.shape == (10,)


def test_selection_split_of_a_pool_too_small_warns_and_selects_on_all():
    pools = _pools([0, 1, 1], [0, 1, 2])  # one row per group: nothing to split
    with pytest.warns(UserWarning, match="HSFM selects on a part of its hard pool"):
        train, select = selection_split(
            pools, 0.5, np.random.RandomState(0), method="HSFM"
        )
    assert select is None
    np.testing.assert_array_equal(train, [0, 1, 2])


def test_selection_split_warns_when_a_class_of_the_fit_has_no_hard_rows():
    """A class the hard pool lacks (its one row stayed in the support pool)
    leaves the rows to train on without it: select on every row instead."""
    pools = _pools([0, 0, 0, 0, 1, 1, 1, 1])
    pools.y = np.array([0, 1, 2])
    with pytest.warns(UserWarning, match="AFR selects on a part of its hard pool"):
        train, select = selection_split(
            pools, 0.5, np.random.RandomState(0), method="AFR"
        )
    assert select is None and train.shape == (8,)


# ------------------------------------------------------------ holdout_split


def test_holdout_split_stratifies_and_keeps_singletons_in_the_support_pool():
    y = np.array([0] * 10 + [1] * 5 + [2])
    support, hard = holdout_split(y, None, 0.2, np.random.RandomState(0))
    assert np.intersect1d(support, hard).size == 0
    np.testing.assert_array_equal(np.union1d(support, hard), np.arange(16))
    assert np.bincount(y[hard], minlength=3).tolist() == [2, 1, 0]
    assert 15 in support  # a class of one sample stays in the support pool
    # every stratum of two or more gives at least one row to each side
    four = np.array([0, 0, 1, 1])
    tiny, held = holdout_split(four, None, 0.01, np.random.RandomState(0))
    assert np.bincount(four[held]).tolist() == [1, 1]
    assert tiny.shape == (2,)


def test_holdout_split_by_groups_when_given():
    y = np.repeat([0, 1], 20)
    groups = np.array(["maj"] * 18 + ["min"] * 2 + ["maj"] * 18 + ["min"] * 2)
    _, hard = holdout_split(y, groups, 0.5, np.random.RandomState(0))
    assert sorted(np.unique(groups[hard], return_counts=True)[1]) == [2, 18]


# --------------------------------------------------- make_pools / fit_pools


class _Head(BaseEstimator):
    validation_fraction = 0.25


def _make(grouped_data, **held_out):
    """``fit_pools`` of the training split, with ``held_out`` arguments."""
    X, y, g = grouped_data[:3]
    args = [held_out.get(name) for name in ("X_val", "y_val", "groups_val")]
    return fit_pools(_Head(), X, y, g, *args, np.random.RandomState(0))


def test_pools_held_out_of_X(grouped_data):
    X, y, g = grouped_data[:3]
    pools, classes = _make(grouped_data)
    assert classes.tolist() == [0, 1]
    n_hard = pools.hard_index.shape[0]
    assert pools.X.shape[0] == X.shape[0] - n_hard
    np.testing.assert_array_equal(pools.X_hard, X[pools.hard_index])
    np.testing.assert_array_equal(pools.y, y[pools.support_index])
    np.testing.assert_array_equal(pools.groups_hard, g[pools.hard_index])
    assert abs(n_hard - 0.25 * X.shape[0]) <= 4  # rounding per group


def test_pools_with_a_validation_set(grouped_data):
    X, y, g, Xv, yv, gv = grouped_data
    pools, _ = _make(grouped_data, X_val=Xv, y_val=yv, groups_val=gv)
    assert pools.hard_index is None and pools.X is X
    np.testing.assert_array_equal(pools.support_index, np.arange(X.shape[0]))
    np.testing.assert_array_equal(pools.X_hard, Xv)
    np.testing.assert_array_equal(pools.y_hard, yv)
    # a one-element tuple is the same validation set, never sliced by CV
    wrapped, _ = _make(grouped_data, X_val=(Xv,), y_val=(yv,), groups_val=(gv,))
    np.testing.assert_array_equal(wrapped.X_hard, Xv)


@pytest.mark.parametrize(
    "change, message",
    [
        (dict(y_val="yv"), "y_val or groups_val was given without X_val"),
        (dict(X_val="Xv"), "X_val was given without y_val"),
        (dict(X_val=("Xv", "Xv"), y_val="yv"), "X_val is a tuple of 2 items"),
        (dict(X_val="Xv", y_val="yv0"), r"classes \[1\] have no example"),
        (dict(X_val="Xv3", y_val="yv"), "X_val does not match X"),
        (dict(X_val="Xv", y_val="yv2"), r"y_val contains classes absent from y"),
    ],
)
def test_bad_held_out_arguments_are_named(grouped_data, change, message):
    X, y, g, Xv, yv, gv = grouped_data
    values = {
        "Xv": Xv,
        "yv": yv,
        "yv0": np.zeros_like(yv),
        "yv2": np.where(yv == 1, 2, yv),
        "Xv3": Xv[:, :3],
    }

    def resolve(v):
        if isinstance(v, tuple):
            return tuple(values[k] for k in v)
        return values[v]

    with pytest.raises(ValueError, match=message):
        _make(grouped_data, **{k: resolve(v) for k, v in change.items()})


def test_a_validation_set_as_long_as_X_warns_unless_wrapped(grouped_data):
    X, y, g = grouped_data[:3]
    other = X[::-1].copy()
    with pytest.warns(UserWarning, match="X_val has as many rows as X"):
        _make(grouped_data, X_val=other, y_val=y[::-1])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        _make(grouped_data, X_val=(other,), y_val=(y[::-1],))
        _make(grouped_data, X_val=X, y_val=y)  # the training rows themselves


# ------------------------------------------- cells, subsamples, read_pools


def test_cell_labels_pair_groups_with_classes_and_need_no_dense_codes():
    y = np.array([0, 0, 1, 1, 0])
    attribute = np.array([7, 9, 7, 9, 7])
    cells = cell_labels(y, attribute)
    assert cells.tolist() == [0, 2, 1, 3, 0]
    assert cell_labels(y, None).tolist() == [0, 0, 1, 1, 0]


def test_balanced_subsample_draws_the_smallest_cell_size_from_each():
    cells = np.array([0] * 5 + [1] * 2 + [2] * 3)
    rows, size = balanced_subsample(cells, np.random.RandomState(0))
    assert size == 2 and np.bincount(cells[rows]).tolist() == [2, 2, 2]
    assert np.all(np.diff(rows) > 0)


def test_read_pools_returns_requested_support_rows_and_the_hard_pool(grouped_data):
    pools, _ = _make(grouped_data)
    (whole, some), X_hard = read_pools(pools, None, np.array([3, 0]))
    assert whole is pools.X  # in memory and all rows: no copy
    np.testing.assert_array_equal(some, pools.X[[3, 0]])
    np.testing.assert_array_equal(X_hard, pools.X_hard)
