import warnings

import numpy as np
import pytest
import sklearn
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV, cross_validate

from skhsfm.metrics import make_groups, worst_group_scorer
from skhsfm.model_selection import GroupStratifiedKFold


@pytest.fixture(scope="module")
def imbalanced_groups():
    # 4 groups of very different sizes, in a scrambled order.
    rng = np.random.RandomState(0)
    groups = np.repeat(["y=0|a=0", "y=0|a=1", "y=1|a=0", "y=1|a=1"], [60, 10, 5, 45])
    return groups[rng.permutation(groups.shape[0])]


def _check_partition(folds, n_samples):
    tests = np.concatenate([test for _, test in folds])
    np.testing.assert_array_equal(np.sort(tests), np.arange(n_samples))
    for train, test in folds:
        assert np.intersect1d(train, test).size == 0
        assert train.size + test.size == n_samples


@pytest.mark.parametrize("shuffle, random_state", [(False, None), (True, 0)])
def test_every_fold_holds_every_group_in_proportion(
    imbalanced_groups, shuffle, random_state
):
    groups = imbalanced_groups
    n = groups.shape[0]
    cv = GroupStratifiedKFold(n_splits=5, shuffle=shuffle, random_state=random_state)
    folds = list(cv.split(np.zeros((n, 2)), groups=groups))
    assert len(folds) == cv.get_n_splits() == 5
    _check_partition(folds, n)
    labels, totals = np.unique(groups, return_counts=True)
    for _, test in folds:
        fold_labels, fold_counts = np.unique(groups[test], return_counts=True)
        np.testing.assert_array_equal(fold_labels, labels)
        # Each group's count in a fold is its overall count / n_splits, +-1.
        assert np.all(np.abs(fold_counts - totals / 5) <= 1)


def test_plain_kfold_would_miss_the_small_group(imbalanced_groups):
    # The property above is not automatic: contiguous folds of sorted data
    # leave the 5-member group out of most test folds.
    from sklearn.model_selection import KFold

    groups = np.sort(imbalanced_groups)
    folds = KFold(5).split(groups)
    missing = sum("y=1|a=0" not in set(groups[test]) for _, test in folds)
    assert missing >= 3
    folds = GroupStratifiedKFold(5).split(np.zeros(groups.shape[0]), groups=groups)
    assert all("y=1|a=0" in set(groups[test]) for _, test in folds)


def test_integer_groups_and_y_ignored():
    groups = np.array([0, 1, 2] * 4)
    y = np.arange(12)  # would be a bad target for StratifiedKFold; ignored
    folds = list(GroupStratifiedKFold(2).split(np.zeros((12, 1)), y, groups))
    _check_partition(folds, 12)
    for _, test in folds:
        assert sorted(set(groups[test])) == [0, 1, 2]


def test_deterministic_and_shuffle_changes_folds(imbalanced_groups):
    X = np.zeros((imbalanced_groups.shape[0], 1))

    def tests_of(cv):
        return [test.tolist() for _, test in cv.split(X, groups=imbalanced_groups)]

    assert tests_of(GroupStratifiedKFold(3, shuffle=True, random_state=1)) == tests_of(
        GroupStratifiedKFold(3, shuffle=True, random_state=1)
    )
    assert tests_of(GroupStratifiedKFold(3)) != tests_of(
        GroupStratifiedKFold(3, shuffle=True, random_state=1)
    )


def test_small_group_warns_with_its_name():
    groups = np.array(["big"] * 10 + ["tiny"] * 2)
    cv = GroupStratifiedKFold(n_splits=3)
    with pytest.warns(UserWarning, match=r"groups \['tiny'\] have fewer than n_splits"):
        folds = list(cv.split(np.zeros((12, 1)), groups=groups))
    _check_partition(folds, 12)


def test_no_warning_when_groups_are_large_enough(imbalanced_groups):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        list(
            GroupStratifiedKFold(5).split(
                np.zeros(imbalanced_groups.shape[0]), groups=imbalanced_groups
            )
        )


def test_split_errors():
    cv = GroupStratifiedKFold(3)
    X = np.zeros((6, 1))
    with pytest.raises(ValueError, match="needs groups .* got groups=None"):
        next(cv.split(X))
    with pytest.raises(ValueError, match="groups has 5 entries but X has 6 rows"):
        next(cv.split(X, groups=[0, 0, 0, 1, 1]))
    with pytest.raises(ValueError, match="groups contains NaN"):
        next(cv.split(X, groups=[0.0, 0, 0, 1, 1, np.nan]))
    with pytest.raises(ValueError, match="greater than the size of every group"):
        next(cv.split(X, groups=[0, 0, 1, 1, 2, 2]))
    with pytest.raises(ValueError, match="greater than the number of samples"):
        next(GroupStratifiedKFold(8).split(X, groups=[0] * 6))


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"n_splits": 1}, "n_splits must be >= 2"),
        ({"n_splits": 2.5}, "n_splits must be an integer"),
        ({"n_splits": True}, "n_splits must be an integer"),
        ({"shuffle": "yes"}, "shuffle must be True or False"),
        ({"random_state": 0}, "random_state=0 has no effect with shuffle=False"),
    ],
)
def test_constructor_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        GroupStratifiedKFold(**kwargs)


def test_repr_and_split_request():
    cv = GroupStratifiedKFold(4, shuffle=True, random_state=3)
    assert repr(cv) == "GroupStratifiedKFold(n_splits=4, random_state=3, shuffle=True)"
    with sklearn.config_context(enable_metadata_routing=True):
        assert cv.get_metadata_routing().split.requests == {"groups": True}


def _data():
    rng = np.random.RandomState(0)
    y = rng.randint(0, 2, 90)
    attribute = np.where(rng.rand(90) < 0.85, y, 1 - y)
    X = rng.randn(90, 3) + np.c_[2 * y - 1, 2 * attribute - 1, np.zeros(90)]
    return X, y, make_groups(y, attribute)


def test_grid_search_routes_groups_to_splitter():
    X, y, groups = _data()
    cv = GroupStratifiedKFold(3)
    with sklearn.config_context(enable_metadata_routing=True):
        search = GridSearchCV(
            LogisticRegression(), {"C": [0.1, 1.0]}, scoring=worst_group_scorer, cv=cv
        ).fit(X, y, groups=groups)
        with pytest.raises(ValueError, match="needs groups"):
            GridSearchCV(LogisticRegression(), {"C": [1.0]}, cv=cv).fit(X, y)
    assert search.n_splits_ == 3
    assert np.isfinite(search.cv_results_["mean_test_score"]).all()


def test_routing_off_splitter_still_gets_groups():
    X, y, groups = _data()
    result = cross_validate(
        LogisticRegression(), X, y, groups=groups, cv=GroupStratifiedKFold(3)
    )
    assert result["test_score"].shape == (3,)
