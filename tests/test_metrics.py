import pickle
import re

import numpy as np
import pytest
import sklearn
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score
from sklearn.model_selection import GridSearchCV, cross_val_score, cross_validate

from skhsfm.metrics import (
    GroupAccuracyReport,
    group_accuracy_report,
    group_weighted_accuracy,
    make_group_scorer,
    make_groups,
    make_worst_group_scorer,
    mean_accuracy,
    worst_class_accuracy,
    worst_group_accuracy,
    worst_group_scorer,
)

ROUTING_HINT = re.escape("sklearn.set_config(enable_metadata_routing=True)")
# With routing off, the legacy `groups=` argument reaches the (Stratified) splitter.
IGNORED_GROUPS = pytest.mark.filterwarnings("ignore:The groups parameter is ignored")


@pytest.fixture(scope="module")
def data():
    rng = np.random.RandomState(0)
    n = 120
    y = rng.randint(0, 2, n)
    attribute = np.where(rng.rand(n) < 0.8, y, 1 - y)
    X = 0.5 * rng.randn(n, 3)
    X[:, 0] += 2 * y - 1
    X[:, 1] += 2 * attribute - 1
    return X, y, make_groups(y, attribute)


# --- worst-group / worst-class / mean accuracy ------------------------------------


@pytest.mark.parametrize(
    "y_true, y_pred, groups, expected",
    [
        ([0, 0, 1, 1, 1], [0, 1, 1, 1, 0], [0, 1, 0, 1, 1], 1 / 3),
        ([0, 0, 1, 1, 1], [0, 0, 1, 1, 0], [0, 0, 1, 1, 2], 0.0),
        ([0, 0, 1, 1], [0, 0, 1, 0], [5, 5, 7, 7], 0.5),
        (["cat", "cat", "dog"], ["cat", "dog", "dog"], ["a", "a", "b"], 0.5),
        (["cat", "cat", "dog"], ["cat", "cat", "dog"], ["a", "a", "b"], 1.0),
    ],
)
def test_worst_group_accuracy_values(y_true, y_pred, groups, expected):
    assert worst_group_accuracy(y_true, y_pred, groups=groups) == expected


def test_group_with_one_member_counts():
    y_true = [0, 0, 0, 1]
    y_pred = [0, 0, 0, 0]
    groups = ["big", "big", "big", "lonely"]
    assert worst_group_accuracy(y_true, y_pred, groups=groups) == 0.0
    report = group_accuracy_report(y_true, y_pred, groups=groups)
    assert report.counts == {"big": 3, "lonely": 1}
    assert report.worst_group == "lonely"


def test_class_absent_from_predictions_gives_zero_for_its_groups():
    y_true = np.array(["land", "land", "water", "water"])
    y_pred = np.array(["land", "land", "land", "land"])
    groups = make_groups(y_true, ["w", "l", "w", "l"])
    report = group_accuracy_report(y_true, y_pred, groups=groups)
    assert report.by_group == {
        "y=land|a=l": 1.0,
        "y=land|a=w": 1.0,
        "y=water|a=l": 0.0,
        "y=water|a=w": 0.0,
    }
    assert report.worst == 0.0
    assert worst_class_accuracy(y_true, y_pred) == 0.0


def test_worst_class_and_mean_accuracy():
    y_true = [0, 0, 0, 0, 1, 1]
    y_pred = [0, 0, 0, 1, 1, 0]
    assert worst_class_accuracy(y_true, y_pred) == 0.5
    assert mean_accuracy(y_true, y_pred) == pytest.approx(
        accuracy_score(y_true, y_pred)
    )


@pytest.mark.parametrize(
    "metric",
    [
        lambda t, p, g: worst_group_accuracy(t, p, groups=g),
        lambda t, p, g: group_accuracy_report(t, p, groups=g),
        lambda t, p, g: group_weighted_accuracy(t, p, groups=g, reference_groups=g),
    ],
)
def test_mismatched_lengths_name_the_arguments(metric):
    with pytest.raises(ValueError, match="y_true has 3, y_pred has 2, groups has 3"):
        metric([0, 1, 1], [0, 1], [0, 0, 1])
    with pytest.raises(ValueError, match="groups has 2 entries"):
        metric([0, 1, 1], [0, 1, 1], [0, 0])


@pytest.mark.parametrize(
    "metric",
    [
        lambda t, p, g: worst_group_accuracy(t, p, groups=g),
        lambda t, p, g: group_accuracy_report(t, p, groups=g),
        lambda t, p, g: worst_class_accuracy(t, p),
        lambda t, p, g: mean_accuracy(t, p),
    ],
)
def test_empty_input_is_an_error(metric):
    with pytest.raises(ValueError, match="y_true is empty"):
        metric([], [], [])


def test_missing_groups_and_bad_labels():
    with pytest.raises(ValueError, match="groups is required"):
        worst_group_accuracy([0, 1], [0, 1], groups=None)
    with pytest.raises(ValueError, match="groups contains NaN"):
        worst_group_accuracy([0, 1], [0, 1], groups=[0.0, np.nan])
    with pytest.raises(ValueError, match="y_true holds int64 labels but y_pred"):
        worst_group_accuracy([0, 1], ["0", "1"], groups=[0, 1])
    with pytest.raises(ValueError, match="y_pred must be 1-dimensional"):
        worst_group_accuracy([0, 1], [[0, 1], [1, 0]], groups=[0, 1])
    with pytest.raises(ValueError, match="mixes label types"):
        worst_group_accuracy([0, 1], [0, 1], groups=np.array([0, "a"], dtype=object))


# --- reference-weighted accuracy --------------------------------------------------


def test_group_weighted_accuracy_by_hand():
    y_true = [0, 0, 0, 0, 1, 1]
    y_pred = [0, 0, 0, 1, 1, 0]
    groups = ["a", "a", "b", "b", "c", "c"]  # accuracies a=1, b=0.5, c=0.5
    reference = ["a"] * 6 + ["b"] * 2 + ["c"] * 2
    expected = 0.6 * 1.0 + 0.2 * 0.5 + 0.2 * 0.5
    assert group_weighted_accuracy(
        y_true, y_pred, groups=groups, reference_groups=reference
    ) == pytest.approx(expected)
    as_dict = {"a": 0.6, "b": 0.2, "c": 0.2}
    assert group_weighted_accuracy(
        y_true, y_pred, groups=groups, reference_groups=as_dict
    ) == pytest.approx(expected)
    counts = {"a": 6, "b": 2, "c": 2}
    assert group_weighted_accuracy(
        y_true, y_pred, groups=groups, reference_groups=counts
    ) == pytest.approx(expected)
    # Reweighting by the evaluation set's own proportions gives plain accuracy.
    assert group_weighted_accuracy(
        y_true, y_pred, groups=groups, reference_groups=groups
    ) == pytest.approx(mean_accuracy(y_true, y_pred))


def test_group_weighted_accuracy_integer_groups():
    assert group_weighted_accuracy(
        [0, 1, 1], [0, 1, 0], groups=[0, 1, 1], reference_groups=[0, 0, 0, 1]
    ) == pytest.approx(0.75 * 1.0 + 0.25 * 0.5)


def test_group_weighted_accuracy_errors():
    y_true, y_pred, groups = [0, 1], [0, 1], ["a", "b"]
    with pytest.raises(ValueError, match=r"absent from reference_groups: \['b'\]"):
        group_weighted_accuracy(y_true, y_pred, groups=groups, reference_groups=["a"])
    with pytest.raises(ValueError, match=r"no sample in the evaluation set: \['c'\]"):
        group_weighted_accuracy(
            y_true, y_pred, groups=groups, reference_groups=["a", "b", "c"]
        )
    with pytest.raises(ValueError, match=r"reference_groups\['a'\] must be"):
        group_weighted_accuracy(
            y_true, y_pred, groups=groups, reference_groups={"a": -1, "b": 1}
        )
    with pytest.raises(ValueError, match="weight 0"):
        group_weighted_accuracy(
            y_true, y_pred, groups=groups, reference_groups={"a": 0, "b": 0}
        )
    with pytest.raises(ValueError, match="reference_groups is empty"):
        group_weighted_accuracy(y_true, y_pred, groups=groups, reference_groups=[])
    # A group given weight 0 may be missing from the evaluation set.
    assert (
        group_weighted_accuracy(
            y_true, y_pred, groups=groups, reference_groups={"a": 1, "b": 1, "c": 0}
        )
        == 1.0
    )


# --- report -------------------------------------------------------------------


def test_group_accuracy_report_fields_and_table():
    y_true = [0, 0, 0, 0, 1, 1]
    y_pred = [0, 0, 0, 1, 1, 0]
    groups = ["y=0|a=0", "y=0|a=0", "y=0|a=1", "y=0|a=1", "y=1|a=1", "y=1|a=1"]
    reference = {"y=0|a=0": 6, "y=0|a=1": 2, "y=1|a=1": 2}
    report = group_accuracy_report(
        y_true, y_pred, groups=groups, reference_groups=reference
    )
    assert isinstance(report, GroupAccuracyReport)
    assert report.by_group == {"y=0|a=0": 1.0, "y=0|a=1": 0.5, "y=1|a=1": 0.5}
    assert report.counts == {"y=0|a=0": 2, "y=0|a=1": 2, "y=1|a=1": 2}
    assert report.worst == 0.5 and report.worst_group == "y=0|a=1"
    assert report.mean == pytest.approx(4 / 6)
    assert report.balanced == pytest.approx(2 / 3)
    assert report.weighted == pytest.approx(0.6 + 0.1 + 0.1)
    assert report.reference_proportions["y=0|a=0"] == pytest.approx(0.6)
    assert report.n_samples == 6
    np.testing.assert_array_equal(report.group_counts, [2, 2, 2])
    text = str(report)
    assert text == repr(report)
    lines = text.splitlines()
    assert lines[0] == "GroupAccuracyReport: 6 samples, 3 groups"
    assert lines[1].split() == ["group", "n", "correct", "accuracy", "ref.", "share"]
    assert lines[3].split() == ["y=0|a=1", "2", "1", "0.5000", "0.2000", "<-", "worst"]
    assert "worst-group accuracy: 0.5000 (y=0|a=1)" in text
    assert "mean accuracy (plain, evaluation set): 0.6667" in text
    assert "mean accuracy (reference-weighted): 0.8000" in text


def test_report_without_reference_and_int_groups():
    report = group_accuracy_report([1, 1, 0], [1, 0, 0], groups=[10, 10, 20])
    assert report.weighted is None and report.reference_proportions is None
    assert report.by_group == {10: 0.5, 20: 1.0}
    assert all(type(label) is int for label in report.by_group)
    assert "reference-weighted" not in str(report)
    assert str(report).splitlines()[2].split() == [
        "10",
        "2",
        "1",
        "0.5000",
        "<-",
        "worst",
    ]


# --- make_groups ----------------------------------------------------------------


def test_make_groups_formats():
    np.testing.assert_array_equal(
        make_groups([0, 1, 1], [1, 1, 0]), ["y=0|a=1", "y=1|a=1", "y=1|a=0"]
    )
    np.testing.assert_array_equal(
        make_groups(np.array(["landbird", "waterbird"]), ["water", "land"]),
        ["y=landbird|a=water", "y=waterbird|a=land"],
    )
    np.testing.assert_array_equal(
        make_groups([0, 1], np.array([True, False])), ["y=0|a=True", "y=1|a=False"]
    )
    assert make_groups([], []).shape == (0,)


def test_make_groups_one_group_per_cell(data):
    _, y, groups = data
    assert np.unique(groups).tolist() == ["y=0|a=0", "y=0|a=1", "y=1|a=0", "y=1|a=1"]


def test_make_groups_errors():
    with pytest.raises(ValueError, match="y has 3 entries but attribute has 2"):
        make_groups([0, 1, 1], [0, 1])
    with pytest.raises(ValueError, match="attribute contains NaN"):
        make_groups([0, 1], [0.0, np.nan])


# --- scorers: direct use ----------------------------------------------------------


def test_scorer_matches_metric(data):
    X, y, groups = data
    clf = LogisticRegression().fit(X, y)
    with sklearn.config_context(enable_metadata_routing=True):
        score = worst_group_scorer(clf, X, y, groups=groups)
        weighted = make_group_scorer(
            group_weighted_accuracy, reference_groups=groups[:60]
        )(clf, X, y, groups=groups)
    pred = clf.predict(X)
    assert score == worst_group_accuracy(y, pred, groups=groups)
    assert weighted == group_weighted_accuracy(
        y, pred, groups=groups, reference_groups=groups[:60]
    )


def test_scorer_requests_groups_whatever_the_config():
    scorer = make_worst_group_scorer()  # built with routing off
    assert scorer is not worst_group_scorer
    with sklearn.config_context(enable_metadata_routing=True):
        for s in (scorer, worst_group_scorer):
            assert s.get_metadata_routing().score.requests == {"groups": True}
    assert (
        repr(scorer) == "make_scorer(worst_group_accuracy, response_method='predict')"
    )


def test_scorer_greater_is_better_false_sign(data):
    X, y, groups = data
    clf = LogisticRegression().fit(X, y)
    scorer = make_group_scorer(worst_group_accuracy, greater_is_better=False)
    with sklearn.config_context(enable_metadata_routing=True):
        assert scorer(clf, X, y, groups=groups) == -worst_group_accuracy(
            y, clf.predict(X), groups=groups
        )


def test_scorer_pickles(data):
    X, y, groups = data
    clf = LogisticRegression().fit(X, y)
    scorer = pickle.loads(pickle.dumps(worst_group_scorer))
    with sklearn.config_context(enable_metadata_routing=True):
        assert scorer(clf, X, y, groups=groups) == worst_group_scorer(
            clf, X, y, groups=groups
        )


def test_direct_call_without_groups_raises(data):
    X, y, _ = data
    clf = LogisticRegression().fit(X, y)
    with pytest.raises(ValueError, match=ROUTING_HINT):
        worst_group_scorer(clf, X, y)
    with sklearn.config_context(enable_metadata_routing=True):
        with pytest.raises(ValueError, match="received no `groups`. Pass one group"):
            worst_group_scorer(clf, X, y)


# --- scorers: never a silent NaN inside scikit-learn's model selection ------------


@IGNORED_GROUPS
@pytest.mark.parametrize("error_score", [np.nan, 0.0])
@pytest.mark.parametrize(
    "scoring",
    [worst_group_scorer, {"wga": worst_group_scorer, "acc": "accuracy"}],
    ids=["single", "multi"],
)
def test_grid_search_with_routing_off_raises(data, scoring, error_score):
    X, y, groups = data
    search = GridSearchCV(
        LogisticRegression(),
        {"C": [0.1, 1.0]},
        scoring=scoring,
        refit="wga" if isinstance(scoring, dict) else True,
        cv=3,
        error_score=error_score,
    )
    with pytest.raises(ValueError, match=ROUTING_HINT):
        search.fit(X, y, groups=groups)


@IGNORED_GROUPS
def test_cross_val_score_with_routing_off_raises(data):
    X, y, groups = data
    with pytest.raises(ValueError, match=ROUTING_HINT):
        cross_val_score(
            LogisticRegression(), X, y, groups=groups, scoring=worst_group_scorer, cv=3
        )
    with pytest.raises(ValueError, match=ROUTING_HINT):
        cross_validate(
            LogisticRegression(), X, y, scoring={"wga": worst_group_scorer}, cv=3
        )


def test_scorer_created_inside_context_used_outside_raises(data):
    X, y, groups = data
    with sklearn.config_context(enable_metadata_routing=True):
        scorer = make_worst_group_scorer()
    with pytest.raises(ValueError, match=ROUTING_HINT):
        cross_val_score(LogisticRegression(), X, y, scoring=scorer, cv=3)


def test_routing_on_but_groups_not_passed_raises(data):
    X, y, _ = data
    with sklearn.config_context(enable_metadata_routing=True):
        with pytest.raises(ValueError, match="received no `groups`. Pass one group"):
            cross_val_score(LogisticRegression(), X, y, scoring=worst_group_scorer)
        with pytest.raises(ValueError, match="received no `groups`. Pass one group"):
            GridSearchCV(
                LogisticRegression(), {"C": [1.0]}, scoring=worst_group_scorer, cv=3
            ).fit(X, y)


def test_cross_val_score_with_routing_on_scores_each_fold(data):
    X, y, groups = data
    with sklearn.config_context(enable_metadata_routing=True):
        scores = cross_val_score(
            LogisticRegression(),
            X,
            y,
            params={"groups": groups},
            scoring=worst_group_scorer,
            cv=3,
        )
    assert scores.shape == (3,)
    assert np.all((scores >= 0) & (scores <= 1))


# --- paired_difference -------------------------------------------------------------


def test_paired_difference_t_interval():
    from scipy import stats

    from skhsfm.metrics import paired_difference

    a = np.array([0.93, 0.95, 0.94, 0.96, 0.90])
    b = np.array([0.92, 0.93, 0.93, 0.94, 0.91])
    result = paired_difference(a, b)
    diff = a - b
    half = stats.t.ppf(0.975, 4) * diff.std(ddof=1) / np.sqrt(5)
    assert result.mean == pytest.approx(diff.mean())
    assert (result.low, result.high) == pytest.approx(
        (diff.mean() - half, diff.mean() + half)
    )
    assert result.n_pairs == 5 and result.method == "t"
    np.testing.assert_allclose(result.differences, diff)
    # swapping the methods mirrors the interval
    swapped = paired_difference(b, a)
    assert (swapped.low, swapped.high) == pytest.approx((-result.high, -result.low))
    assert "95% interval" in repr(result)


def test_paired_difference_bootstrap_and_single_pair():
    from skhsfm.metrics import paired_difference

    a, b = [0.93, 0.95, 0.94, 0.96], [0.92, 0.93, 0.93, 0.94]
    boot = paired_difference(a, b, method="bootstrap", random_state=0)
    assert boot.low <= boot.mean <= boot.high
    assert boot.significant
    assert boot.low == paired_difference(a, b, method="bootstrap", random_state=0).low
    one = paired_difference([0.9], [0.8])
    assert one.mean == pytest.approx(0.1)
    assert np.isnan(one.low) and np.isnan(one.high) and not one.significant


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(scores=[0.9, 0.8], reference_scores=[0.9]), "reference_scores has 1"),
        (dict(scores=[], reference_scores=[]), "empty"),
        (dict(scores=[0.9, np.nan], reference_scores=[0.9, 0.8]), "scores contains"),
        (dict(scores=[0.9], reference_scores=[0.8], confidence=1.0), "confidence"),
        (dict(scores=[0.9], reference_scores=[0.8], method="z"), "method"),
    ],
)
def test_paired_difference_bad_input(kwargs, match):
    from skhsfm.metrics import paired_difference

    with pytest.raises(ValueError, match=match):
        paired_difference(**kwargs)


# ------------------------------------------------------- the selection score


def test_selection_score_of_many_candidates_is_each_candidate_s():
    """A 2-d y_pred (one column per candidate, as AFR scores its grid) gives
    each column's worst-group and mean accuracy, exactly."""
    from skhsfm.metrics._engine import selection_score

    rng = np.random.RandomState(0)
    y = rng.randint(0, 3, 50)
    groups = rng.choice(["a", "b", "c", "d"], 50)
    preds = rng.randint(0, 3, (50, 6))
    preds[:, 0] = y  # a perfect candidate
    for strata in (groups, None):
        worst, mean = selection_score(y, preds, strata)
        assert worst.shape == mean.shape == (6,)
        for k in range(6):
            assert (worst[k], mean[k]) == selection_score(y, preds[:, k], strata)
        assert (worst[0], mean[0]) == (1.0, 1.0)


def test_selection_score_falls_back_to_classes_without_groups():
    from skhsfm.metrics._engine import selection_score

    y = np.array([0, 0, 0, 1])
    pred = np.array([0, 0, 0, 0])
    # worst-class: class 1 is all wrong; worst-group with one group: 3/4
    assert selection_score(y, pred, None) == (0.0, 0.75)
    assert selection_score(y, pred, np.zeros(4)) == (0.75, 0.75)
