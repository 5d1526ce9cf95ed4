"""HSFM's training options: head update, balance, hard-set size, early stopping."""

import numpy as np
import pytest

from skhsfm import PRESETS, HSFMClassifier
from skhsfm._linear import to_softmax_head
from skhsfm.datasets import make_spurious_embeddings

SMALL = dict(support_size=8, hard_size=16, inner_steps=5, outer_steps=3, device="cpu")


@pytest.fixture(scope="module")
def problem():
    train = make_spurious_embeddings(400, 12, spurious_correlation=0.9,
                                     random_state=0)  # fmt: skip
    val = make_spurious_embeddings(200, 12, split="val", random_state=0)
    return train, val


def _fit(problem, **params):
    (X, y, _, g), (Xv, yv, _, gv) = problem
    return HSFMClassifier(random_state=0, **params).fit(
        X, y, g, X_val=Xv, y_val=yv, groups_val=gv
    )


def test_gd_head_update_is_the_modelled_update(problem):
    """Without meta-updates the head takes exactly n_epochs * T plain
    gradient-descent steps of size inner_lr on the support set."""
    clf = _fit(problem, n_epochs=3, head_update="gd", balance="classes",
               **{**SMALL, "outer_steps": 0})  # fmt: skip
    s, t = clf.scale_, clf.init_temperature_
    W, b = to_softmax_head(clf.init_coef_ / (s * t), clf.init_intercept_ / t, 2)
    H = clf.support_init_.astype(np.float64) * s
    Y = np.eye(2)[np.searchsorted(clf.classes_, clf.support_labels_)]
    assert clf.best_epoch_ >= 1
    for _ in range(clf.best_epoch_ * SMALL["inner_steps"]):
        Z = H @ W.T + b
        P = np.exp(Z - Z.max(1, keepdims=True))
        G = (P / P.sum(1, keepdims=True) - Y) / H.shape[0]
        W, b = W - 0.03 * G.T @ H, b - 0.03 * G.sum(0)
    coef = (W[1] - W[0]) * s
    np.testing.assert_allclose(clf.coef_[0], coef, rtol=1e-4, atol=1e-6)


def test_default_training_does_not_collapse():
    """The defaults on a benchmark-sized problem: no epoch loses more than 0.10
    of hard-pool worst-group accuracy (the paper's Adam update lost up to 0.8)."""
    X, y, _, g = make_spurious_embeddings(2000, 32, spurious_correlation=0.95,
                                          random_state=3)  # fmt: skip
    Xv, yv, _, gv = make_spurious_embeddings(600, 32, split="val", random_state=3)
    clf = HSFMClassifier(n_epochs=40, device="cpu", random_state=0).fit(
        X, y, g, X_val=Xv, y_val=yv, groups_val=gv
    )
    wga = clf.history_["worst_group_accuracy"]
    assert clf.hyperparameters_["head_update"] == "gd"
    assert np.max(-np.diff(wga)) <= 0.10
    assert clf.best_score_ >= wga[0]


def test_a_preset_runs_the_papers_loop(problem):
    (X, y, _, g), (Xv, yv, _, gv) = problem
    by_preset = HSFMClassifier.from_preset("dominoes", n_epochs=2, random_state=0)
    # every value is explicit: get_params shows what fit uses
    assert by_preset.get_params()["inner_lr"] == PRESETS["dominoes"]["inner_lr"]
    assert by_preset.get_params()["group_inference"] is None
    assert by_preset.get_params()["init_temperature"] == 1.0
    by_preset.fit(X, y, g, X_val=Xv, y_val=yv, groups_val=gv)
    explicit = _fit(
        problem, **dict(PRESETS["dominoes"], n_epochs=2),
        head_update="adam", balance="classes", init_temperature=1.0,
    )  # fmt: skip
    np.testing.assert_array_equal(by_preset.coef_, explicit.coef_)
    assert by_preset.hyperparameters_["head_update"] == "adam"
    assert by_preset.hyperparameters_["balance"] == "classes"
    # the per-class support set of the paper
    assert by_preset.support_init_.shape[0] == 2 * PRESETS["dominoes"]["support_size"]
    # any argument overrides the preset
    gd = HSFMClassifier.from_preset("dominoes", head_update="gd")
    assert gd.head_update == "gd"
    with pytest.raises(ValueError, match="Unknown preset 'imagenet'"):
        HSFMClassifier.from_preset("imagenet")


def test_the_deprecated_preset_argument_still_runs_the_preset(problem):
    with pytest.warns(FutureWarning, match="from_preset"):
        old = _fit(problem, preset="dominoes", n_epochs=2)
    new = HSFMClassifier.from_preset("dominoes", n_epochs=2, random_state=0)
    (X, y, _, g), (Xv, yv, _, gv) = problem
    new.fit(X, y, g, X_val=Xv, y_val=yv, groups_val=gv)
    np.testing.assert_array_equal(old.coef_, new.coef_)
    # a value set away from the signature's default still wins
    with pytest.warns(FutureWarning):
        small = _fit(problem, preset="dominoes", n_epochs=2, support_size=4)
    assert small.hyperparameters_["support_size"] == 4


def test_group_balance_draws_support_per_cell_and_weighs_groups(problem):
    (X, y, _, g), (Xv, yv, _, gv) = problem
    clf = _fit(problem, n_epochs=2, balance="groups", **SMALL)
    cells = np.unique(g[clf.support_indices_], return_counts=True)[1]
    assert cells.tolist() == [SMALL["support_size"]] * 4
    # every group of the hard pool gives its hardest rows
    hard_groups = gv[clf.hard_set_indices_]
    sizes = np.unique(gv, return_counts=True)[1]
    assert np.unique(hard_groups, return_counts=True)[1].tolist() == [
        min(SMALL["hard_size"], n) for n in sizes
    ]
    # auto means groups when both pools have them
    auto = _fit(problem, n_epochs=2, **SMALL)
    np.testing.assert_array_equal(auto.coef_, clf.coef_)


def test_auto_balance_falls_back_to_classes_without_inference(problem):
    (X, y, _, g), (Xv, yv, _, gv) = problem
    kw = dict(n_epochs=2, random_state=0, group_inference=None, **SMALL)
    auto = HSFMClassifier(**kw).fit(X, y, X_val=Xv, y_val=yv)
    classes = HSFMClassifier(balance="classes", **kw).fit(X, y, X_val=Xv, y_val=yv)
    np.testing.assert_array_equal(auto.coef_, classes.coef_)
    assert np.bincount(auto.support_labels_).tolist() == [8, 8]
    assert auto.groups_source_ == {"groups": "none", "groups_val": "none"}
    with pytest.raises(ValueError, match="balance='groups' needs the groups"):
        HSFMClassifier(balance="groups", **kw).fit(X, y, X_val=Xv, y_val=yv)
    with pytest.raises(ValueError, match="balance='groups' needs the groups"):
        HSFMClassifier(balance="groups", **kw).fit(X, y, g, X_val=Xv, y_val=yv)
    # with inference (the default) balance="groups" needs no labels at all
    kw.pop("group_inference")
    inferred = HSFMClassifier(balance="groups", **kw).fit(X, y, X_val=Xv, y_val=yv)
    assert inferred.groups_source_ == {"groups": "classifier", "groups_val": "error"}


def test_hard_size_as_a_share(problem):
    (X, y, _, g), (Xv, yv, _, gv) = problem
    clf = _fit(problem, n_epochs=2, **{**SMALL, "hard_size": 0.25},
               balance="classes")  # fmt: skip
    expected = sum(int(np.ceil(0.25 * n)) for n in np.bincount(yv))
    assert clf.hard_set_indices_.shape == (expected,)
    assert clf.hyperparameters_["hard_size"] == 0.25
    with pytest.raises(ValueError, match="hard_size"):
        HSFMClassifier(hard_size=1.5).fit(X, y)
    with pytest.raises(ValueError, match="hard_size"):
        HSFMClassifier(hard_size=0.0).fit(X, y)


def test_n_iter_no_change_stops_early(problem):
    clf = _fit(problem, n_epochs=200, n_iter_no_change=3, **SMALL)
    assert clf.n_iter_ < 200
    assert len(clf.history_["epoch"]) == clf.n_iter_
    # it stopped 3 epochs after the last strict improvement
    wga = clf.history_["worst_group_accuracy"]
    last_gain = max(i for i in range(len(wga)) if wga[i] > wga[:i].max(initial=-1))
    assert clf.n_iter_ == last_gain + 1 + 3
    with pytest.raises(ValueError, match="n_iter_no_change"):
        HSFMClassifier(n_iter_no_change=0).fit(*problem[0][:2])


def test_the_initial_head_wins_when_training_only_hurts_the_selection_rows():
    import torch

    from skhsfm._meta import LoopSettings, run_hsfm

    rng = np.random.RandomState(0)
    H0 = rng.normal(size=(8, 3))
    y_support = np.repeat([0, 1], 4)
    W0, b0 = rng.normal(size=(2, 3)), np.zeros(2)
    X_hard, y_hard = rng.normal(size=(16, 3)), np.repeat([0, 1], 8)
    hard_rows, select_rows = np.r_[0:5, 8:13], np.r_[5:8, 13:16]
    calls = []

    def score(pred):  # the first call scores the initial head
        calls.append(pred)
        return (1.0 if len(calls) == 1 else 0.5), 0.5

    result = run_hsfm(
        H0, y_support, W0, b0, X_hard, y_hard,
        settings=LoopSettings(
            hard_size=5, inner_steps=2, inner_lr=0.1, outer_steps=2, outer_lr=0.1,
            n_epochs=3, head_update="gd", max_grad_norm=1.0,
        ),
        score=score, hard_rows=hard_rows, select_rows=select_rows,
        feature_scale=2.0,
        device=torch.device("cpu"),
    )  # fmt: skip
    assert result.best_epoch == 0 and len(calls) == 4
    assert all(pred.shape == (6,) for pred in calls)  # scored on select_rows
    np.testing.assert_allclose(result.W, W0)
    np.testing.assert_allclose(result.H, 2.0 * H0)


def test_cell_weights_give_every_cell_the_same_total():
    from skhsfm._pools import cell_weights as _cell_weights

    cells = np.array([0, 0, 0, 2, 2, 5])  # codes need not be dense
    weights = _cell_weights(cells)
    assert weights.mean() == pytest.approx(1.0)
    totals = [weights[cells == k].sum() for k in (0, 2, 5)]
    np.testing.assert_allclose(totals, totals[0])
