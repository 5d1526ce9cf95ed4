"""HSFMClassifier: normal path, bad inputs, reproducibility, pickling."""

import pickle
import subprocess
import sys
import textwrap

import joblib
import numpy as np
import pytest
import torch

from skhsfm import PRESETS, HSFMClassifier, worst_group_accuracy
from skhsfm._sklearn_compat import InvalidParameterError
from skhsfm.datasets import make_spurious_embeddings

FAST = dict(n_epochs=4, support_size=8, hard_size=16, inner_steps=5, outer_steps=3)


def _splits(seed=0, n_features=32, n_classes=2, n_attributes=2, **kw):
    out = []
    for split, n in (("train", 800), ("val", 400), ("test", 800)):
        X, y, _, g = make_spurious_embeddings(
            n,
            n_features,
            n_classes=n_classes,
            n_attributes=n_attributes,
            spurious_correlation=0.95,
            split=split,
            random_state=seed,
            **kw,
        )
        out.append((X, y, g))
    return out


@pytest.fixture(scope="module")
def problem():
    return _splits()


def _initial_head_wga(clf, X, y, g):
    scores = X @ clf.init_coef_.T + clf.init_intercept_
    pred = clf.classes_[(scores.ravel() > 0).astype(int)]
    return worst_group_accuracy(y, pred, groups=g)


def _plain_logistic_wga(X, y, Xt, yt, gt):
    from sklearn.linear_model import LogisticRegression

    pred = LogisticRegression(max_iter=1000).fit(X, y).predict(Xt)
    return worst_group_accuracy(yt, pred, groups=gt)


@pytest.mark.parametrize(
    "transform",
    [
        pytest.param(lambda X: X, id="raw"),
        pytest.param(lambda X: X / np.linalg.norm(X, axis=1, keepdims=True), id="l2"),
        pytest.param(lambda X: 100.0 * X, id="x100"),
    ],
)
def test_improves_worst_group_accuracy(problem, transform):
    (X, y, g), (Xv, yv, gv), (Xt, yt, gt) = problem
    X, Xv, Xt = transform(X), transform(Xv), transform(Xt)
    plain = _plain_logistic_wga(X, y, Xt, yt, gt)
    # the default: group-balanced start and loop, far above plain ERM and not
    # below its own (already balanced) initial head
    clf = HSFMClassifier(random_state=0).fit(X, y, g, X_val=Xv, y_val=yv, groups_val=gv)
    after = worst_group_accuracy(yt, clf.predict(Xt), groups=gt)
    assert after >= plain + 0.15, (plain, after)
    assert after >= _initial_head_wga(clf, Xt, yt, gt) - 0.02
    assert clf.score(Xt, yt) > 0.6
    # the meta-learning itself: from the paper's plain logistic-regression
    # start, the loop lifts the worst group by a wide margin
    paper = HSFMClassifier(balance="classes", random_state=0).fit(
        X, y, g, X_val=Xv, y_val=yv, groups_val=gv
    )
    before = _initial_head_wga(paper, Xt, yt, gt)
    after = worst_group_accuracy(yt, paper.predict(Xt), groups=gt)
    assert after >= before + 0.15, (before, after)


def test_holdout_from_support_pool(problem):
    (X, y, g), _, (Xt, yt, gt) = problem
    clf = HSFMClassifier(random_state=0, validation_fraction=0.3).fit(X, y, groups=g)
    hard, select = clf.hard_pool_indices_, clf.selection_indices_
    assert hard is not None and select is not None
    held_out = np.r_[hard, select]
    assert held_out.shape[0] == pytest.approx(0.3 * len(y), abs=4)
    # hard sets and epoch selection use disjoint halves of the hold-out
    assert not np.intersect1d(hard, select).size
    assert hard.shape[0] == pytest.approx(select.shape[0], abs=4)
    # the support set never comes from the held-out rows
    assert not np.intersect1d(clf.support_indices_, held_out).size
    # the hold-out, and each half of it, is stratified by group
    for k in np.unique(g):
        assert np.sum(g[held_out] == k) == pytest.approx(0.3 * np.sum(g == k), abs=1)
        assert np.sum(g[hard] == k) == pytest.approx(np.sum(g[select] == k), abs=1)
    assert worst_group_accuracy(yt, clf.predict(Xt), groups=gt) > _plain_logistic_wga(
        X, y, Xt, yt, gt
    )


def test_selection_fraction_none_selects_on_the_hard_pool(problem):
    (X, y, g), _, _ = problem
    clf = HSFMClassifier(random_state=0, selection_fraction=None, **FAST).fit(
        X, y, groups=g
    )
    assert clf.selection_indices_ is None
    assert clf.hard_pool_indices_.shape[0] == pytest.approx(0.2 * len(y), abs=4)
    assert clf.best_epoch_ >= 1


def test_initial_head_competes_when_selecting_on_rows_kept_apart(problem):
    (X, y, g), _, _ = problem
    clf = HSFMClassifier(random_state=0, **FAST).fit(X, y, groups=g)
    assert clf.selection_indices_ is not None
    assert 0 <= clf.best_epoch_ <= FAST["n_epochs"]


def test_scale_invariance(problem):
    (X, y, g), (Xv, yv, gv), (Xt, _, _) = problem
    a = HSFMClassifier(random_state=0, **FAST).fit(
        X, y, g, X_val=Xv, y_val=yv, groups_val=gv
    )
    b = HSFMClassifier(random_state=0, **FAST).fit(
        100 * X, y, g, X_val=100 * Xv, y_val=yv, groups_val=gv
    )
    np.testing.assert_allclose(
        a.decision_function(Xt), b.decision_function(100 * Xt), rtol=1e-4, atol=1e-4
    )
    assert a.scale_ == pytest.approx(100 * b.scale_)


def test_fitted_attributes(problem):
    (X, y, g), (Xv, yv, gv), _ = problem
    clf = HSFMClassifier(random_state=0, balance="classes", **FAST).fit(
        X, y, g, X_val=Xv, y_val=yv, groups_val=gv
    )
    d = X.shape[1]
    assert clf.coef_.shape == (1, d) and clf.intercept_.shape == (1,)
    assert clf.init_coef_.shape == (1, d)
    assert clf.support_init_.shape == clf.support_edited_.shape == (16, d)
    np.testing.assert_array_equal(clf.support_init_, X[clf.support_indices_])
    np.testing.assert_array_equal(clf.support_labels_, y[clf.support_indices_])
    assert np.bincount(clf.support_labels_).tolist() == [8, 8]
    assert not np.allclose(clf.support_init_, clf.support_edited_)
    assert clf.hard_pool_indices_ is None
    assert clf.hard_set_indices_.shape == (32,)
    assert clf.n_iter_ == 4 and len(clf.history_["epoch"]) == 4
    wga = np.asarray(clf.history_["worst_group_accuracy"])
    # the selected epoch is the last one with the best hard-pool score
    assert clf.best_epoch_ == 4 - int(np.argmax(wga[::-1]))
    assert clf.best_score_ == wga.max()
    # fitted state is numpy only
    for name, value in vars(clf).items():
        assert not isinstance(value, torch.Tensor), name


def test_presets_and_overrides():
    clf = HSFMClassifier(preset="celeba", support_size=4, n_epochs=1)
    X, y, _, g = make_spurious_embeddings(200, 8, random_state=0)
    clf.fit(X, y, g)
    # a preset is the paper's loop: Adam head update, per-class support and hard
    # sets; explicit arguments override
    expected = dict(
        PRESETS["celeba"],
        support_size=4,
        n_epochs=1,
        head_update="adam",
        balance="classes",
    )
    assert clf.hyperparameters_ == expected
    assert set(PRESETS) == {"waterbirds", "celeba", "metashift", "dominoes"}
    assert PRESETS["waterbirds"] == dict(
        support_size=16,
        inner_steps=15,
        inner_lr=5e-5,
        outer_lr=1.0,
        outer_steps=15,
        hard_size=64,
        n_epochs=40,
    )


def test_determinism_and_global_rng_untouched(problem):
    (X, y, g), _, (Xt, _, _) = problem
    state = torch.random.get_rng_state()
    np_state = np.random.get_state()[1].copy()
    a = HSFMClassifier(random_state=3, **FAST).fit(X, y, g)
    b = HSFMClassifier(random_state=3, **FAST).fit(X, y, g)
    assert torch.equal(state, torch.random.get_rng_state())
    np.testing.assert_array_equal(np_state, np.random.get_state()[1])
    np.testing.assert_array_equal(a.coef_, b.coef_)
    np.testing.assert_array_equal(a.support_edited_, b.support_edited_)
    np.testing.assert_array_equal(
        a.history_["worst_group_accuracy"], b.history_["worst_group_accuracy"]
    )
    c = HSFMClassifier(random_state=4, **FAST).fit(X, y, g)
    assert not np.array_equal(a.support_indices_, c.support_indices_)


def test_joblib_and_pickle_round_trip(problem, tmp_path):
    (X, y, g), _, (Xt, _, _) = problem
    clf = HSFMClassifier(random_state=0, **FAST).fit(X, y, g)
    joblib.dump(clf, tmp_path / "clf.joblib")
    loaded = joblib.load(tmp_path / "clf.joblib")
    np.testing.assert_array_equal(loaded.predict(Xt), clf.predict(Xt))
    np.testing.assert_array_equal(loaded.predict_proba(Xt), clf.predict_proba(Xt))
    again = pickle.loads(pickle.dumps(clf))
    np.testing.assert_array_equal(
        again.decision_function(Xt), clf.decision_function(Xt)
    )


def test_predict_without_torch(problem, tmp_path):
    (X, y, g), _, (Xt, _, _) = problem
    clf = HSFMClassifier(random_state=0, **FAST).fit(X, y, g)
    joblib.dump(clf, tmp_path / "clf.joblib")
    np.save(tmp_path / "Xt.npy", Xt)
    np.save(tmp_path / "expected.npy", clf.predict_proba(Xt))
    script = textwrap.dedent(
        f"""
        import sys

        class NoTorch:
            # a finder that makes "import torch" fail, as if torch were absent
            def find_spec(self, name, path=None, target=None):
                if name == "torch" or name.startswith("torch."):
                    raise ModuleNotFoundError(f"No module named {{name!r}}")

        sys.meta_path.insert(0, NoTorch())
        import joblib, numpy as np
        clf = joblib.load({str(tmp_path / "clf.joblib")!r})
        Xt = np.load({str(tmp_path / "Xt.npy")!r})
        np.testing.assert_array_equal(
            clf.predict_proba(Xt), np.load({str(tmp_path / "expected.npy")!r})
        )
        clf.predict(Xt); clf.score(Xt, clf.predict(Xt))
        assert "torch" not in sys.modules
        print("ok")
        """
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"


def test_multiclass_string_labels():
    (X, y, g), (Xv, yv, gv), (Xt, yt, gt) = _splits(
        seed=1, n_features=48, n_classes=3, n_attributes=2
    )
    names = np.array(["cat", "dog", "eel"])
    gnames = np.array([f"grp{k}" for k in range(6)])
    clf = HSFMClassifier(random_state=0, n_epochs=20).fit(
        X, names[y], gnames[g], X_val=Xv, y_val=names[yv], groups_val=gnames[gv]
    )
    assert clf.classes_.tolist() == ["cat", "dog", "eel"]
    assert clf.coef_.shape == (3, 48) and clf.intercept_.shape == (3,)
    assert set(np.unique(clf.support_labels_)) == set(names)
    pred = clf.predict(Xt)
    assert pred.dtype.kind == "U"
    proba = clf.predict_proba(Xt)
    np.testing.assert_allclose(proba.sum(1), 1.0)
    np.testing.assert_array_equal(names[proba.argmax(1)], pred)
    assert len(np.unique(gt)) == 6
    init_pred = names[np.argmax(Xt @ clf.init_coef_.T + clf.init_intercept_, 1)]
    assert worst_group_accuracy(names[yt], pred, groups=gt) > worst_group_accuracy(
        names[yt], init_pred, groups=gt
    )


def test_init_coef_from_user_head(problem):
    (X, y, g), (Xv, yv, gv), _ = problem
    coef = np.ones((1, X.shape[1]))
    clf = HSFMClassifier(
        init_coef=coef, init_intercept=[0.5], random_state=0, **FAST
    ).fit(X, y, g, X_val=Xv, y_val=yv, groups_val=gv)
    np.testing.assert_allclose(clf.init_coef_, coef)
    np.testing.assert_allclose(clf.init_intercept_, [0.5])
    two_rows = np.vstack([-coef[0], coef[0]])
    other = HSFMClassifier(init_coef=two_rows, random_state=0, **FAST).fit(
        X, y, g, X_val=Xv, y_val=yv, groups_val=gv
    )
    np.testing.assert_allclose(other.init_coef_, 2 * coef)
    with pytest.raises(ValueError, match=r"init_coef must have shape"):
        HSFMClassifier(init_coef=np.ones((3, 5)), **FAST).fit(X, y)
    with pytest.raises(ValueError, match="init_intercept must have 1 entries"):
        HSFMClassifier(init_coef=coef, init_intercept=[1.0, 2.0], **FAST).fit(X, y)


def test_verbose_prints_epochs(problem, capsys):
    (X, y, g), _, _ = problem
    HSFMClassifier(random_state=0, verbose=1, **FAST).fit(X, y, g)
    lines = [line for line in capsys.readouterr().out.splitlines() if "epoch" in line]
    assert len(lines) == FAST["n_epochs"]
    assert "worst-group" in lines[0]


def test_fit_requests_groups_by_default():
    routing = HSFMClassifier().get_metadata_routing()
    assert routing.fit.requests["groups"] is True


# ---------------------------------------------------------------- bad inputs


@pytest.fixture(scope="module")
def small():
    X, y, _, g = make_spurious_embeddings(120, 6, random_state=0)
    return X, y, g


def test_nan_in_X(small):
    X, y, g = small
    X = X.copy()
    X[3, 2] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        HSFMClassifier(**FAST).fit(X, y)


def test_inf_in_X_val(small):
    X, y, g = small
    Xv = X.copy()
    Xv[0, 0] = np.inf
    with pytest.raises(ValueError, match="X_val contains NaN or inf"):
        HSFMClassifier(**FAST).fit(X, y, X_val=Xv, y_val=y)


def test_length_mismatches(small):
    X, y, g = small
    with pytest.raises(ValueError, match="inconsistent numbers of samples"):
        HSFMClassifier(**FAST).fit(X, y[:-1])
    with pytest.raises(ValueError, match="groups has 119 entries but X has 120"):
        HSFMClassifier(**FAST).fit(X, y, groups=g[:-1])
    with pytest.raises(ValueError, match="y_val has 119 entries but X_val has 120"):
        HSFMClassifier(**FAST).fit(X, y, X_val=X, y_val=y[:-1])
    with pytest.raises(ValueError, match="groups_val has 3 entries"):
        HSFMClassifier(**FAST).fit(X, y, X_val=X, y_val=y, groups_val=g[:3])


def test_single_class(small):
    X, _, _ = small
    with pytest.raises(ValueError, match=r"y has 1 class \(0.0\)"):
        HSFMClassifier(**FAST).fit(X, np.zeros(len(X)))


def test_class_missing_from_hard_pool(small):
    X, y, g = small
    keep = y == 0
    with pytest.raises(ValueError, match=r"classes \[1\] have no example in the hard"):
        HSFMClassifier(**FAST).fit(X, y, X_val=X[keep], y_val=y[keep])
    # a class with a single example cannot be held out
    y1 = y.copy()
    y1[:] = 0
    y1[0] = 1
    with pytest.raises(ValueError, match="have no example in the hard pool"):
        HSFMClassifier(**FAST).fit(X, y1)


def test_unknown_class_in_y_val(small):
    X, y, g = small
    with pytest.raises(ValueError, match="y_val contains classes absent from y"):
        HSFMClassifier(**FAST).fit(X, y, X_val=X, y_val=y + 5)


def test_support_size_larger_than_class_warns(small):
    X, y, g = small
    with pytest.warns(UserWarning, match="sampling that class with replacement"):
        clf = HSFMClassifier(**dict(FAST, support_size=500), group_inference=None).fit(
            X, y
        )
    assert clf.support_init_.shape[0] == 1000


def test_unknown_preset(small):
    X, y, _ = small
    with pytest.raises(InvalidParameterError, match="preset"):
        HSFMClassifier(preset="imagenet").fit(X, y)


def test_held_out_arguments_must_come_together(small):
    X, y, g = small
    with pytest.raises(ValueError, match="X_val was given without y_val"):
        HSFMClassifier(**FAST).fit(X, y, X_val=X)
    with pytest.raises(ValueError, match="without X_val"):
        HSFMClassifier(**FAST).fit(X, y, y_val=y)


def test_wrong_number_of_features_at_predict(small):
    X, y, _ = small
    clf = HSFMClassifier(random_state=0, **FAST).fit(X, y)
    with pytest.raises(ValueError, match="features"):
        clf.predict(X[:, :3])
    with pytest.raises(ValueError, match="X_val"):
        HSFMClassifier(**FAST).fit(X, y, X_val=X[:, :3], y_val=y)


def test_bad_device(small):
    X, y, _ = small
    with pytest.raises(ValueError, match="device='nonsense'"):
        HSFMClassifier(device="nonsense", **FAST).fit(X, y)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_matches_cpu(problem):
    (X, y, g), (Xv, yv, gv), (Xt, _, _) = problem
    cpu = HSFMClassifier(device="cpu", random_state=0, **FAST).fit(
        X, y, g, X_val=Xv, y_val=yv, groups_val=gv
    )
    gpu = HSFMClassifier(device="cuda", random_state=0, **FAST).fit(
        X, y, g, X_val=Xv, y_val=yv, groups_val=gv
    )
    np.testing.assert_allclose(gpu.coef_, cpu.coef_, rtol=1e-3, atol=1e-4)
    assert (gpu.predict(Xt) == cpu.predict(Xt)).mean() > 0.99


def test_list_and_column_labels(small):
    X, y, g = small
    ref = HSFMClassifier(random_state=0, **FAST).fit(X, y, g)
    listed = HSFMClassifier(random_state=0, **FAST).fit(X.tolist(), y.tolist(), g)
    np.testing.assert_array_equal(listed.coef_, ref.coef_)
    from sklearn.exceptions import DataConversionWarning

    with pytest.warns(DataConversionWarning):
        column = HSFMClassifier(random_state=0, **FAST).fit(X, y[:, None], g)
    np.testing.assert_array_equal(column.coef_, ref.coef_)


def test_float32_input_is_used_as_is_and_left_untouched(problem):
    (X, y, g), (Xv, yv, gv), (Xt, _, _) = problem
    X32, Xv32 = X.astype(np.float32), Xv.astype(np.float32)
    before, before_val = X32.copy(), Xv32.copy()
    a = HSFMClassifier(random_state=0, **FAST).fit(
        X32, y, g, X_val=Xv32, y_val=yv, groups_val=gv
    )
    np.testing.assert_array_equal(X32, before)
    np.testing.assert_array_equal(Xv32, before_val)
    b = HSFMClassifier(random_state=0, **FAST).fit(
        X, y, g, X_val=Xv, y_val=yv, groups_val=gv
    )
    # the loop runs in float32 either way
    np.testing.assert_allclose(a.coef_, b.coef_, rtol=1e-4, atol=1e-5)
    assert a.predict(Xt.astype(np.float32)).shape == (len(Xt),)
