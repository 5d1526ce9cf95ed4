"""Tests for DPEClassifier and its core (skhsfm.baselines._dpe, _dpe_core)."""

import pickle

import numpy as np
import pytest
import torch
from sklearn.exceptions import NotFittedError
from sklearn.utils._param_validation import InvalidParameterError

from skhsfm.baselines import DPEClassifier, ERMHeadClassifier
from skhsfm.baselines._dpe_core import (
    DPESettings,
    _batch_order,
    _device_data,
    _train_member,
    diversity_loss,
    diversity_schedule,
    ensemble_log_proba,
    isomax_logits,
    isomax_loss,
    member_gradient,
    prototype_penalty,
    unit_rows,
)
from skhsfm.datasets import make_spurious_embeddings
from skhsfm.metrics import worst_group_accuracy

FAST = dict(n_members=3, n_epochs=6, device="cpu")


@pytest.fixture(scope="module")
def problem():
    """Correlated training split, balanced validation and test splits."""
    kw = dict(spurious_correlation=0.95, core_strength=2.0, random_state=0)
    X, y, _, g = make_spurious_embeddings(400, 16, **kw)
    Xv, yv, _, gv = make_spurious_embeddings(300, 16, split="val", **kw)
    Xt, yt, _, gt = make_spurious_embeddings(400, 16, split="test", **kw)
    return (X, y, g), (Xv, yv, gv), (Xt, yt, gt)


@pytest.fixture(scope="module")
def fitted(problem):
    (X, y, g), (Xv, yv, gv), _ = problem
    return DPEClassifier(random_state=0, **FAST).fit(
        X, y, g, X_val=Xv, y_val=yv, groups_val=gv
    )


# ------------------------------------------------------------ normal path


def test_fit_predict_shapes_and_attributes(fitted, problem):
    _, _, (Xt, yt, gt) = problem
    dpe = fitted
    assert dpe.prototypes_.shape == (3, 2, 16)
    assert dpe.distance_scales_.shape == (3,)
    assert dpe.best_epochs_.min() >= 1 and dpe.best_epochs_.max() <= 6
    assert dpe.history_["worst_group_accuracy"].shape == (3, 6)
    assert dpe.history_["loss"].shape == (3, 6)
    np.testing.assert_array_equal(dpe.history_["epoch"], np.arange(1, 7))
    # each member is kept at the last epoch of its best hard-pool score
    worst = dpe.history_["worst_group_accuracy"]
    np.testing.assert_array_equal(dpe.best_scores_, worst.max(axis=1))
    last_best = 6 - np.argmax(worst[:, ::-1] == worst.max(1, keepdims=True), axis=1)
    np.testing.assert_array_equal(dpe.best_epochs_, last_best)
    assert dpe.balance_ == "groups" and dpe.n_iter_ == 6
    assert dpe.hard_pool_indices_ is None
    proba = dpe.predict_proba(Xt)
    np.testing.assert_allclose(proba.sum(1), 1.0)
    np.testing.assert_array_equal(dpe.predict(Xt), proba.argmax(1))
    # the balanced test split: the worst group far above the ERM head's
    (X, y, _), _, _ = problem
    erm = ERMHeadClassifier().fit(X, y).predict(Xt)
    wga = worst_group_accuracy(yt, dpe.predict(Xt), groups=gt)
    assert wga > 0.8 and wga > worst_group_accuracy(yt, erm, groups=gt) + 0.1


def test_decision_function_is_the_log_odds(fitted, problem):
    Xt = problem[2][0]
    scores = fitted.decision_function(Xt)
    proba = fitted.predict_proba(Xt)
    np.testing.assert_allclose(scores, np.log(proba[:, 1] / proba[:, 0]), rtol=1e-10)
    np.testing.assert_array_equal(fitted.predict(Xt), (scores > 0).astype(int))
    np.testing.assert_allclose(
        fitted.predict_log_proba(Xt), np.log(proba), rtol=1e-10, atol=1e-12
    )


def test_three_classes_with_string_labels():
    kw = dict(n_classes=3, n_attributes=3, core_strength=2.0, random_state=1)
    X, y, _, g = make_spurious_embeddings(450, 12, **kw)
    Xv, yv, _, gv = make_spurious_embeddings(270, 12, split="val", **kw)
    names = np.array(["ant", "bee", "cat"])
    dpe = DPEClassifier(random_state=0, **FAST)
    dpe.fit(X, names[y], g, X_val=Xv, y_val=names[yv], groups_val=gv)
    assert dpe.prototypes_.shape == (3, 3, 12)
    assert set(dpe.predict(Xv)) <= set(names)
    assert dpe.decision_function(Xv).shape == (270, 3)
    np.testing.assert_allclose(dpe.predict_proba(Xv).sum(1), 1.0)
    assert dpe.score(Xv, names[yv]) > 0.6


def test_hold_out_of_X_without_X_val(problem):
    (X, y, g), _, _ = problem
    dpe = DPEClassifier(validation_fraction=0.3, random_state=0, **FAST).fit(X, y, g)
    assert dpe.hard_pool_indices_.shape[0] == pytest.approx(0.3 * 400, abs=4)
    assert dpe.balance_ == "groups"
    # the smallest group of the hold-out sets the subsample size
    smallest = np.bincount(g[dpe.hard_pool_indices_]).min()
    assert dpe.subsample_size_ == smallest


# ------------------------------------------------------------ both modes


def test_balance_modes(problem):
    (X, y, g), _, _ = problem
    # an imbalanced hard pool: classes balanced, groups not
    Xv, yv, _, gv = make_spurious_embeddings(
        300, 16, split="val", balanced=False, random_state=0
    )
    val = dict(X_val=Xv, y_val=yv)
    by_groups = DPEClassifier(random_state=0, **FAST).fit(X, y, groups_val=gv, **val)
    assert by_groups.balance_ == "groups"  # balance="auto" with groups
    assert by_groups.subsample_size_ == np.bincount(gv).min()
    by_classes = DPEClassifier(balance="classes", random_state=0, **FAST)
    by_classes.fit(X, y, groups_val=gv, **val)
    assert by_classes.balance_ == "classes"
    assert by_classes.subsample_size_ == np.bincount(yv).min()
    no_groups = DPEClassifier(random_state=0, **FAST).fit(X, y, **val)
    assert no_groups.balance_ == "classes"
    assert no_groups.subsample_size_ == by_classes.subsample_size_


@pytest.mark.parametrize("with_groups", [True, False])
def test_selection_is_by_worst_group_else_worst_class(problem, with_groups):
    """A member's recorded score is its own hard-pool worst-group accuracy
    (worst-class without groups), in both balancing modes, as the official
    code selects by validation groups whatever it balances."""
    (X, y, g), _, _ = problem
    Xv, yv, _, gv = make_spurious_embeddings(
        300, 16, split="val", balanced=False, random_state=0
    )
    kw = dict(X_val=Xv, y_val=yv, groups_val=gv if with_groups else None)
    dpe = DPEClassifier(balance="classes", random_state=0, **FAST).fit(X, y, **kw)
    strata = gv if with_groups else yv
    for m in range(3):
        single = ensemble_log_proba(
            unit_rows(Xv), dpe.prototypes_[m : m + 1], dpe.distance_scales_[m : m + 1]
        )
        score = worst_group_accuracy(yv, single.argmax(1), groups=strata)
        assert score == pytest.approx(dpe.best_scores_[m], abs=1e-12)


# ------------------------------------------------------------ bad inputs


def test_groups_mode_needs_groups(problem):
    (X, y, g), (Xv, yv, gv), _ = problem
    with pytest.raises(ValueError, match="needs group labels: pass groups="):
        DPEClassifier(balance="groups", **FAST).fit(X, y)
    with pytest.raises(ValueError, match="needs groups_val"):
        DPEClassifier(balance="groups", **FAST).fit(X, y, g, X_val=Xv, y_val=yv)


@pytest.mark.parametrize(
    "params, match",
    [
        (dict(n_members=0), "n_members"),
        (dict(n_epochs=0), "n_epochs"),
        (dict(learning_rate=0.0), "learning_rate"),
        (dict(batch_size=0), "batch_size"),
        (dict(balance="cells"), "balance"),
        (dict(entropic_scale=-1.0), "entropic_scale"),
        (dict(diversity_penalty=-1.0), "diversity_penalty"),
        (dict(validation_fraction=1.0), "validation_fraction"),
    ],
)
def test_bad_parameters(problem, params, match):
    (X, y, g), _, _ = problem
    with pytest.raises(InvalidParameterError, match=match):
        DPEClassifier(**params).fit(X, y, g)


def test_bad_device_is_named(problem):
    (X, y, g), _, _ = problem
    with pytest.raises(ValueError, match="device='nope'"):
        DPEClassifier(device="nope", n_members=1, n_epochs=1).fit(X, y, g)


def test_not_fitted_and_wrong_width(fitted, problem):
    with pytest.raises(NotFittedError):
        DPEClassifier().predict(problem[2][0])
    with pytest.raises(ValueError, match="features"):
        fitted.predict(problem[2][0][:, :5])


def test_to_sklearn_refuses_clearly(fitted):
    with pytest.raises(NotImplementedError, match="not a linear model"):
        fitted.to_sklearn()
    with pytest.raises(NotFittedError):
        DPEClassifier().to_sklearn()


def test_constant_rows_give_no_nan(problem):
    (X, y, g), (Xv, yv, gv), _ = problem
    Xv = Xv.copy()
    Xv[:5] = 3.0  # all entries equal: the official standardisation gives 0/0
    dpe = DPEClassifier(random_state=0, **FAST).fit(
        X, y, g, X_val=Xv, y_val=yv, groups_val=gv
    )
    assert np.all(np.isfinite(dpe.prototypes_))
    assert np.all(np.isfinite(dpe.predict_proba(Xv)))


# -------------------------------------------------- randomness, state, threads


def test_random_state_reproduces_and_varies(problem):
    (X, y, g), (Xv, yv, gv), (Xt, _, _) = problem
    kw = dict(X_val=Xv, y_val=yv, groups_val=gv)
    a = DPEClassifier(random_state=3, **FAST).fit(X, y, g, **kw)
    b = DPEClassifier(random_state=3, **FAST).fit(X, y, g, **kw)
    c = DPEClassifier(random_state=4, **FAST).fit(X, y, g, **kw)
    np.testing.assert_array_equal(a.prototypes_, b.prototypes_)
    np.testing.assert_array_equal(a.predict_proba(Xt), b.predict_proba(Xt))
    assert not np.allclose(a.prototypes_, c.prototypes_)


def test_fit_leaves_torch_global_state_alone(problem):
    (X, y, g), _, _ = problem
    rng_state = torch.get_rng_state()
    threads = torch.get_num_threads()
    DPEClassifier(random_state=0, **FAST).fit(X, y, g)
    assert torch.equal(torch.get_rng_state(), rng_state)
    assert torch.get_num_threads() == threads


def test_fitted_state_is_numpy_and_pickles(fitted, problem):
    Xt = problem[2][0]
    for name, value in vars(fitted).items():
        if name.endswith("_") and not name.startswith("_"):
            assert not isinstance(value, torch.Tensor), name
    clone = pickle.loads(pickle.dumps(fitted))
    np.testing.assert_array_equal(clone.predict_proba(Xt), fitted.predict_proba(Xt))


def test_skops_round_trip(fitted, problem, tmp_path):
    sio = pytest.importorskip("skops.io")
    path = tmp_path / "dpe.skops"
    sio.dump(fitted, path)
    loaded = sio.load(path, trusted=sio.get_untrusted_types(file=path))
    np.testing.assert_array_equal(
        loaded.predict_proba(problem[2][0]), fitted.predict_proba(problem[2][0])
    )


def test_dask_prediction_stays_lazy(fitted, problem):
    da = pytest.importorskip("dask.array")
    Xt = problem[2][0]
    lazy = da.from_array(Xt, chunks=(150, 16))
    proba = fitted.predict_proba(lazy)
    assert isinstance(proba, da.Array)
    np.testing.assert_allclose(proba.compute(), fitted.predict_proba(Xt))
    np.testing.assert_array_equal(fitted.predict(lazy).compute(), fitted.predict(Xt))


def test_verbose_prints_one_line_per_member(problem, capsys):
    (X, y, g), _, _ = problem
    DPEClassifier(random_state=0, verbose=1, **FAST).fit(X, y, g)
    lines = [ln for ln in capsys.readouterr().out.splitlines() if "[DPE]" in ln]
    assert len(lines) == 3 and lines[0].startswith("[DPE] member 1/3")


def test_small_subsample_still_trains():
    """A subsample smaller than batch_size is one batch (the official loader
    would drop it and make no step)."""
    X, y, _, g = make_spurious_embeddings(60, 8, split="val", random_state=0)
    dpe = DPEClassifier(n_members=1, n_epochs=3, device="cpu", random_state=0)
    dpe.fit(X, y, g, X_val=X, y_val=y, groups_val=g)
    assert dpe.subsample_size_ * 4 < dpe.batch_size
    assert np.all(np.isfinite(dpe.history_["loss"]))
    # the distance scale starts at 1 and moves only by SGD steps
    assert dpe.distance_scales_[0] != 1.0


# --------------------------------------------- fidelity of the core pieces


def _official_unit(X):
    """The official preprocessing, written out: per-row standardisation, then
    ``F.normalize`` inside the head."""
    Z = (X - X.mean(axis=1, keepdims=True)) / X.std(axis=1, keepdims=True)
    return Z / np.linalg.norm(Z, axis=1, keepdims=True)


def test_unit_rows_is_the_official_preprocessing():
    X = np.random.RandomState(0).normal(size=(20, 7)) * 5 + 2
    np.testing.assert_allclose(unit_rows(X), _official_unit(X), rtol=1e-12)
    raw = unit_rows(X, standardize=False)
    np.testing.assert_allclose(raw, X / np.linalg.norm(X, axis=1, keepdims=True))


def test_isomax_logits_and_loss_against_direct_formulas():
    rng = np.random.RandomState(0)
    X = unit_rows(rng.normal(size=(9, 5)))
    P = rng.normal(size=(3, 5))
    s, E = -0.7, 30.0  # the official head uses |s|
    y = rng.randint(0, 3, 9)
    # direct: distances between unit vectors, loops over rows and classes
    dist = np.array([[np.linalg.norm(x - p / np.linalg.norm(p)) for p in P] for x in X])
    logits = -abs(s) * dist
    p = np.exp(-E * abs(s) * dist)
    p /= p.sum(1, keepdims=True)
    expected_loss = np.mean([-np.log(p[i, y[i]]) for i in range(9)])

    t = dict(dtype=torch.float64)
    got = isomax_logits(
        torch.tensor(X, **t), torch.tensor(P, **t), torch.tensor([s], **t)
    )
    np.testing.assert_allclose(got.numpy(), logits, rtol=1e-12)
    loss = isomax_loss(got, torch.tensor(y), E)
    assert loss.item() == pytest.approx(expected_loss, rel=1e-12)


def test_penalties_against_direct_formulas():
    rng = np.random.RandomState(1)
    C, m, d = 3, 4, 6
    P, Q = rng.normal(size=(C, d)), rng.normal(size=(C, m, d))
    # official: Gram matrices of [P_c, Q_1c..Q_mc] / (d - 1); row 0 without
    # the diagonal, summed, / (m + 1), mean over classes, absolute value
    total = 0.0
    for c in range(C):
        stacked = np.vstack([P[c], Q[c]])
        cov = stacked @ stacked.T / (d - 1)
        total += cov[0, 1:].sum() / (m + 1)
    expected = abs(total / C)
    got = diversity_loss(torch.tensor(P), torch.tensor(Q)).item()
    assert got == pytest.approx(expected, rel=1e-12)
    expected_wd = 10.0 * np.mean([P[c] @ P[c] for c in range(C)])
    got_wd = prototype_penalty(torch.tensor(P), 10.0).item()
    assert got_wd == pytest.approx(expected_wd, rel=1e-12)


def test_diversity_schedule_is_the_official_one():
    # cov_reg_scheduler_inv: [c] + [c / (1 + alpha k) for k in range(n)],
    # stage s (1-based) reads entry max(s, 1) - 1
    c, alpha, n = 5e4, 0.05, 6
    table = [c] + [c / (1 + alpha * k) for k in range(n)]
    expected = [table[max(stage, 1) - 1] for stage in range(1, n + 1)]
    np.testing.assert_allclose(diversity_schedule(c, alpha, n), expected, rtol=1e-15)


def test_ensemble_proba_is_the_mean_of_member_softmaxes():
    rng = np.random.RandomState(2)
    X = unit_rows(rng.normal(size=(10, 4)))
    prototypes, scales = rng.normal(size=(5, 3, 4)), rng.normal(size=5)
    members = []
    for P, s in zip(prototypes, scales):
        unit = P / np.linalg.norm(P, axis=1, keepdims=True)
        logits = -abs(s) * np.linalg.norm(X[:, None] - unit[None], axis=2)
        e = np.exp(logits - logits.max(1, keepdims=True))
        members.append(e / e.sum(1, keepdims=True))
    expected = np.mean(members, axis=0)
    got = np.exp(ensemble_log_proba(X, prototypes, scales))
    np.testing.assert_allclose(got, expected, rtol=1e-10)


@pytest.mark.parametrize("with_previous", [True, False])
def test_member_gradient_is_autograd_of_the_official_loss(with_previous):
    """The closed-form loss and gradient against autograd through the direct
    pieces (cdist distances, the IsoMax+ loss and both penalties), float64;
    with a zero row and a negative distance scale."""
    rng = np.random.RandomState(4)
    B, C, d, m = 12, 3, 7, 2
    X = unit_rows(rng.normal(size=(B, d)))
    X[3] = 0.0  # a row with all entries equal
    y = rng.randint(0, C, B)
    t = dict(dtype=torch.float64)
    X_t, y_t = torch.tensor(X, **t), torch.tensor(y)
    P = torch.tensor(rng.normal(0, 0.3, (C, d)), **t)
    s = torch.tensor([-0.8], **t)
    previous = torch.tensor(rng.normal(0, 0.2, (C, m, d)), **t)
    settings = DPESettings()
    weight = 321.0

    P_ref, s_ref = P.clone().requires_grad_(True), s.clone().requires_grad_(True)
    loss_ref = isomax_loss(isomax_logits(X_t, P_ref, s_ref), y_t, 30.0)
    loss_ref = loss_ref + prototype_penalty(P_ref, 10.0)
    direction = None
    if with_previous:
        loss_ref = loss_ref + weight * diversity_loss(P_ref, previous)
        direction = previous.sum(1) / ((d - 1) * (m + 1))
    grad_P_ref, grad_s_ref = torch.autograd.grad(loss_ref, (P_ref, s_ref))

    onehot = torch.nn.functional.one_hot(y_t, C).to(torch.float64)
    loss, grad_P, grad_s = member_gradient(
        X_t, onehot, X_t.pow(2).sum(1), P, s, direction, weight, settings
    )
    assert loss.item() == pytest.approx(loss_ref.item(), rel=1e-10)
    torch.testing.assert_close(grad_P, grad_P_ref, rtol=1e-9, atol=1e-12)
    torch.testing.assert_close(grad_s, grad_s_ref, rtol=1e-9, atol=1e-12)


def test_member_training_is_momentum_sgd_over_the_batches():
    """_train_member against torch.optim.SGD(momentum=0.9) on the same loss,
    batches and start (one epoch, so no selection in between)."""
    rng = np.random.RandomState(3)
    n, d, C = 90, 6, 3
    X = torch.tensor(unit_rows(rng.normal(size=(n, d))), dtype=torch.float32)
    y = torch.tensor(np.arange(n) % C)
    previous = torch.tensor(rng.normal(0, 0.05, (C, 2, d)), dtype=torch.float32)
    P0 = torch.tensor(rng.normal(0, 0.01, (C, d)), dtype=torch.float32)
    order = torch.tensor(_batch_order(np.arange(n), 32, 1, rng))
    assert order.shape == (1, 2, 32)  # 90 rows: two full batches, rest dropped
    settings = DPESettings(n_epochs=1, batch_size=32)
    data = _device_data(X.numpy(), y.numpy(), y.numpy(), C, "cpu")
    with torch.no_grad():
        (P, s, _, _), _ = _train_member(data, order, P0, previous, 123.0, settings)

    P_ref = P0.clone().requires_grad_(True)
    s_ref = torch.ones(1, requires_grad=True)
    opt = torch.optim.SGD([P_ref, s_ref], lr=1e-3, momentum=0.9)
    for rows in order[0]:
        opt.zero_grad()
        logits = isomax_logits(X[rows], P_ref, s_ref)
        loss = isomax_loss(logits, y[rows], 30.0)
        loss = loss + prototype_penalty(P_ref, 10.0)
        loss = loss + 123.0 * diversity_loss(P_ref, previous)
        loss.backward()
        opt.step()
    # float32: the closed form's matrix-product distances round differently
    torch.testing.assert_close(P, P_ref.detach(), rtol=2e-5, atol=1e-7)
    torch.testing.assert_close(s, s_ref.detach(), rtol=2e-5, atol=1e-7)


def test_batch_order_drops_the_last_incomplete_batch():
    rng = np.random.RandomState(0)
    order = _batch_order(np.arange(100, 170), 32, 3, rng)
    assert order.shape == (3, 2, 32)
    for epoch in order:
        flat = epoch.ravel()
        assert len(set(flat)) == 64 and set(flat) <= set(range(100, 170))
    assert not np.array_equal(order[0], order[1])  # a fresh shuffle each epoch
    # fewer rows than a batch: one batch of all of them
    assert _batch_order(np.arange(10), 32, 2, rng).shape == (2, 1, 10)


def test_prediction_in_row_blocks_is_the_same(fitted, problem):
    from skhsfm.baselines._dpe_core import ensemble_scores

    Xt = problem[2][0]
    args = (fitted.prototypes_, fitted.distance_scales_, True)
    np.testing.assert_allclose(
        ensemble_scores(Xt, *args, block_rows=7),
        ensemble_scores(Xt, *args),
        rtol=1e-12,
        atol=1e-14,
    )
