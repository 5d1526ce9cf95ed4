"""Tests of skhsfm._pools: the support pool, the hard pool and the splits."""

import numpy as np
import pytest

from skhsfm._pools import Pools, selection_split


def _pools(y, groups=None, held_out_of_X=True):
    """A Pools whose hard pool is ``y`` (``groups``); rows held out of X, or
    given as X_val (``hard_index`` None)."""
    y = np.asarray(y)
    n = y.shape[0]
    return Pools(
        X=np.zeros((0, 2)),
        y=np.zeros(0, dtype=int),
        groups=None,
        X_hard=np.zeros((n, 2)),
        y_hard=y,
        groups_hard=None if groups is None else np.asarray(groups),
        support_index=np.zeros(0, dtype=int),
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
