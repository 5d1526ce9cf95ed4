"""HSFM in every data situation: inferred groups, the cooled start, the guard."""

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression

from skhsfm import HSFMClassifier
from skhsfm._linear import fit_temperature, margin_temperature, to_softmax_head
from skhsfm._meta import MetaResult
from skhsfm._start import Start, keep_initial_unless_better
from skhsfm.datasets import make_spurious_embeddings
from skhsfm.groups import GroupInferrer

FAST = dict(n_epochs=3, support_size=8, hard_size=16, inner_steps=5, outer_steps=3)


@pytest.fixture(scope="module")
def problem():
    X, y, _, g = make_spurious_embeddings(
        600, 16, spurious_correlation=0.95, random_state=0
    )
    Xv, yv, _, gv = make_spurious_embeddings(300, 16, split="val", random_state=0)
    return (X, y, g), (Xv, yv, gv)


def _fit(problem, situation, **params):
    (X, y, g), (Xv, yv, gv) = problem
    args, held_out = {
        "both": ((X, y, g), dict(X_val=Xv, y_val=yv, groups_val=gv)),
        "val": ((X, y), dict(X_val=Xv, y_val=yv, groups_val=gv)),
        "none": ((X, y), dict(X_val=Xv, y_val=yv)),
        "train": ((X, y, g), {}),
        "train-nogroups": ((X, y), {}),
    }[situation]
    params = {**FAST, "random_state": 0, **params}
    return HSFMClassifier(**params).fit(*args, **held_out)


@pytest.mark.parametrize(
    "situation, expected",
    [
        ("both", {"groups": "given", "groups_val": "given"}),
        ("val", {"groups": "classifier", "groups_val": "given"}),
        ("none", {"groups": "classifier", "groups_val": "error"}),
        ("train", {"groups": "given", "groups_val": "given"}),
        ("train-nogroups", {"groups": "classifier", "groups_val": "error"}),
    ],
)
def test_groups_source_records_the_data_situation(problem, situation, expected):
    clf = _fit(problem, situation)
    assert clf.groups_source_ == expected
    assert clf.init_temperature_ >= 1.0


def test_without_inference_missing_groups_are_none(problem):
    clf = _fit(problem, "val", group_inference=None)
    assert clf.groups_source_ == {"groups": "none", "groups_val": "given"}


def test_support_set_holds_every_group_with_validation_groups_only(problem):
    (X, y, g), _ = problem
    clf = _fit(problem, "val")
    # the inferred cells give the minority groups their own share of the
    # support set; a class-balanced draw would hold one or two of their rows
    drawn = g[clf.support_indices_]
    assert set(np.unique(drawn)) == set(np.unique(g))
    plain = _fit(problem, "val", group_inference=None)
    share = np.mean(np.isin(drawn, (1, 2)))
    assert share >= 2 * np.mean(np.isin(g[plain.support_indices_], (1, 2)))


def test_a_custom_inferrer_is_used_and_not_changed(problem):
    inferrer = GroupInferrer(C=0.5)
    clf = _fit(problem, "val", group_inference=inferrer)
    assert clf.groups_source_["groups"] == "classifier"
    assert not hasattr(inferrer, "groups_")  # cloned, the user's stays unfitted


def test_same_seed_same_fit_in_every_situation(problem):
    for situation in ("val", "none", "train-nogroups"):
        a = _fit(problem, situation)
        b = _fit(problem, situation)
        np.testing.assert_array_equal(a.coef_, b.coef_)


def test_scaled_embeddings_give_the_same_predictions(problem):
    (X, y, _), (Xv, yv, gv) = problem
    base = HSFMClassifier(**FAST, random_state=0).fit(
        X, y, X_val=Xv, y_val=yv, groups_val=gv
    )
    scaled = HSFMClassifier(**FAST, random_state=0).fit(
        X * 100, y, X_val=Xv * 100, y_val=yv, groups_val=gv
    )
    assert base.groups_source_ == scaled.groups_source_
    assert scaled.init_temperature_ == pytest.approx(base.init_temperature_, rel=1e-5)
    assert np.mean(base.predict(Xv) == scaled.predict(Xv * 100)) > 0.99


def test_a_confident_initial_head_no_longer_freezes_training(problem):
    """An ERM head that fits its training rows with large margins saturates
    the inner loop's softmax: without cooling the meta-gradient is too small
    to move the head, with it training leaves the ERM head."""
    (X, y, _), (Xv, yv, gv) = problem
    erm = LogisticRegression().fit(X, y)
    confident = dict(init_coef=erm.coef_ * 60, init_intercept=erm.intercept_ * 60)
    agreement = {}
    for setting in (1.0, "auto"):
        clf = HSFMClassifier(
            **dict(FAST, n_epochs=5), init_temperature=setting, random_state=0,
            **confident,
        ).fit(X, y, X_val=Xv, y_val=yv, groups_val=gv)  # fmt: skip
        agreement[setting] = np.mean(clf.predict(Xv) == erm.predict(Xv))
        if setting == "auto":
            assert clf.init_temperature_ > 50
            # the stored initial head is the given one, before cooling
            np.testing.assert_allclose(clf.init_coef_, confident["init_coef"])
    assert agreement[1.0] > 0.97
    assert agreement["auto"] < 0.9


def test_a_fixed_temperature_is_used_as_given(problem):
    clf = _fit(problem, "both", init_temperature=2.5)
    assert clf.init_temperature_ == 2.5


@pytest.mark.parametrize("bad", [0, -1.0, "hot"])
def test_bad_temperature_is_named(problem, bad):
    with pytest.raises(ValueError, match="init_temperature"):
        _fit(problem, "both", init_temperature=bad)


def test_bad_group_inference_is_named(problem):
    with pytest.raises(ValueError, match="group_inference"):
        _fit(problem, "val", group_inference="always")


def test_margin_temperature_brings_the_median_margin_to_two():
    rng = np.random.RandomState(0)
    X = rng.normal(size=(200, 5))
    y = (X[:, 0] > 0).astype(int)
    W, b = to_softmax_head(np.array([[40.0, 0, 0, 0, 0]]), np.zeros(1), 2)
    t = margin_temperature(W, b, X, y)
    Z = X @ (W / t).T + b / t
    margins = Z[np.arange(200), y] - Z[np.arange(200), 1 - y]
    assert np.median(margins) == pytest.approx(2.0)
    # a head already at most that confident is left alone
    assert margin_temperature(W / 100, b, X, y) == 1.0


def test_fit_temperature_is_temperature_scaling():
    rng = np.random.RandomState(0)
    X = rng.normal(size=(500, 3))
    y = (X[:, 0] + rng.normal(size=500) > 0).astype(int)
    W, b = to_softmax_head(np.array([[30.0, 0, 0]]), np.zeros(1), 2)
    t = fit_temperature(W, b, X, y)

    def nll(temp):
        Z = X @ (W / temp).T
        Z = Z - Z.max(1, keepdims=True)
        return -np.mean(Z[np.arange(500), y] - np.log(np.exp(Z).sum(1)))

    assert nll(t) <= min(nll(t * 0.9), nll(t * 1.1))
    assert t > 1  # the head was overconfident


def _result(best_epoch, best_score):
    return MetaResult(
        W=np.ones((2, 3)), b=np.zeros(2), H=np.ones((4, 3)),
        hard_set=np.arange(2), best_epoch=best_epoch, best_score=best_score,
        n_epochs=5, history={},
    )  # fmt: skip


def test_the_initial_head_keeps_its_place_against_noise():
    # 8 selection rows per class; the initial head gets 6 of 8 right in class 1
    X = np.r_[np.full((8, 1), -1.0), np.full((2, 1), -1.0), np.full((6, 1), 1.0)]
    y = np.r_[np.zeros(8, int), np.ones(8, int)]
    W0, b0 = np.array([[-1.0], [1.0]]), np.zeros(2)
    start = Start(np.ones((4, 1)), np.array([0, 0, 1, 1]), np.arange(4), X,
                  W0, b0, 1.0, {})  # fmt: skip
    rows = np.arange(16)
    # 0.75 -> 0.875: one row more, within one standard error (0.15)
    kept = keep_initial_unless_better(_result(3, 0.875), W0, b0, start, y, None, rows)
    assert kept.best_epoch == 0 and kept.best_score == 0.75
    np.testing.assert_array_equal(kept.W, W0)
    assert kept.hard_set.shape == (0,)
    # 0.75 -> 1.0: clearly better, the epoch stays
    better = keep_initial_unless_better(_result(3, 1.0), W0, b0, start, y, None, rows)
    assert better.best_epoch == 3
