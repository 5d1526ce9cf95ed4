"""Tests for skhsfm.baselines (ERM head, DFR, AFR) and the shared linear head."""

import pickle
import subprocess
import sys
import warnings

import numpy as np
import pytest
from sklearn import config_context
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import cross_val_score
from sklearn.utils.estimator_checks import parametrize_with_checks

from skhsfm._pools import balanced_subsample, cell_labels
from skhsfm._sklearn_compat import l1_logistic_params
from skhsfm.baselines import AFRClassifier, DFRClassifier, ERMHeadClassifier
from skhsfm.baselines._afr import _afr_weights
from skhsfm.baselines._dfr import DFR_CS
from skhsfm.metrics import worst_class_accuracy, worst_group_accuracy


def small_afr(**params):
    base = dict(
        gamma=(1.0, 4.0),
        reg_lambda=(0.0, 0.1),
        n_epochs=20,
        device="cpu",
        random_state=0,
    )
    base.update(params)
    return AFRClassifier(**base)


# DFR's default balance="groups" needs group labels, which scikit-learn's checks
# never pass; balance="classes" runs the same code path with class cells.
CHECKED = [
    ERMHeadClassifier(),
    DFRClassifier(balance="classes", n_models=3, random_state=0),
    small_afr(),
]


# the checks' tiny data leave too few held-out samples to split; the estimators
# then warn and use the whole hard pool (tested to fit, not to be accurate)
@pytest.mark.filterwarnings("ignore:.*hard pool.*:UserWarning")
@parametrize_with_checks(CHECKED)
def test_sklearn_compatible(estimator, check):
    check(estimator)


def spurious(counts, n_features=6, n_classes=2, seed=0):
    """Embeddings with a core class direction and a stronger spurious one.

    ``counts[k]`` samples in group ``k = y * 2 + attribute``.
    """
    rng = np.random.RandomState(seed)
    groups = np.repeat(np.arange(len(counts)), counts)
    y, a = groups // 2, groups % 2
    X = rng.normal(size=(groups.shape[0], n_features))
    X[:, :n_classes] += 1.5 * np.eye(n_classes)[y]
    X[:, n_classes] += 3.0 * a
    X += 0.5  # a non-zero mean, so that folding the scaler matters
    return X, y, groups


@pytest.fixture(scope="module")
def binary_data():
    X, y, g = spurious([300, 20, 20, 300], seed=0)  # correlated training split
    X_val, y_val, g_val = spurious([30, 12, 20, 7], seed=1)  # unequal held-out
    X_test, y_test, g_test = spurious([100, 100, 100, 100], seed=2)
    return X, y, g, X_val, y_val, g_val, X_test, y_test, g_test


@pytest.fixture(scope="module")
def dfr_fitted(binary_data):
    X, y, g, X_val, y_val, g_val = binary_data[:6]
    dfr = DFRClassifier(random_state=0, store_models=True)  # keep every model
    return dfr.fit(X, y, g, X_val=X_val, y_val=y_val, groups_val=g_val)


# ---------------------------------------------------------------- linear head


@pytest.mark.parametrize("rescale", [False, True])
@pytest.mark.parametrize("n_classes", [2, 3])
def test_erm_head_matches_logistic_regression(n_classes, rescale):
    rng = np.random.RandomState(0)
    X = rng.normal(size=(120, 4))
    y = np.argmax(X[:, :n_classes] + 0.5 * rng.normal(size=(120, n_classes)), 1)
    labels = np.array(["a", "b", "c"])[:n_classes][y]
    ours = ERMHeadClassifier(rescale=rescale).fit(X, labels)
    # rescale=True: scikit-learn's regression of the rescaled X, folded back
    scale = np.sqrt(X.size / np.sum(X**2)) if rescale else 1.0
    assert ours.scale_ == pytest.approx(scale, rel=1e-12)
    ref = LogisticRegression(max_iter=1000).fit(X * ours.scale_, labels)
    ref.coef_ = ref.coef_ * ours.scale_
    assert ours.coef_.shape == ref.coef_.shape == ((1, 4) if n_classes == 2 else (3, 4))
    np.testing.assert_allclose(ours.coef_, ref.coef_, rtol=1e-6)
    np.testing.assert_allclose(ours.decision_function(X), ref.decision_function(X))
    np.testing.assert_allclose(ours.predict_proba(X), ref.predict_proba(X))
    np.testing.assert_allclose(
        ours.predict_log_proba(X), ref.predict_log_proba(X), atol=1e-10
    )
    np.testing.assert_array_equal(ours.predict(X), ref.predict(X))


def test_erm_head_ignores_held_out_data(binary_data):
    X, y, g, X_val, y_val, g_val = binary_data[:6]
    plain = ERMHeadClassifier().fit(X, y)
    with_val = ERMHeadClassifier().fit(X, y, g, X_val=X_val, y_val=y_val)
    np.testing.assert_array_equal(plain.coef_, with_val.coef_)


# ---------------------------------------------------------------------- DFR


def test_balanced_subsample_takes_smallest_cell_size():
    cells = np.repeat([0, 1, 2], [5, 2, 9])
    idx, size = balanced_subsample(cells, np.random.RandomState(0))
    assert size == 2
    assert np.bincount(cells[idx]).tolist() == [2, 2, 2]
    assert np.unique(idx).shape[0] == idx.shape[0]


def test_cell_labels_pair_groups_with_classes():
    y = np.array([0, 0, 1, 1])
    attribute = np.array([0, 1, 0, 1])  # attribute alone passed as "groups"
    assert np.unique(cell_labels(y, attribute)).shape[0] == 4
    assert cell_labels(y, None).tolist() == [0, 0, 1, 1]


def test_dfr_default_grid_and_model_count(dfr_fitted):
    assert DFR_CS == (1, 0.7, 0.3, 0.1, 0.07, 0.03, 0.01)
    assert DFRClassifier().Cs == DFR_CS
    assert DFRClassifier().n_models == 20
    assert dfr_fitted.tuning_scores_.shape == (7,)
    assert dfr_fitted.best_C_ == DFR_CS[int(np.argmax(dfr_fitted.tuning_scores_))]
    assert dfr_fitted.coefs_.shape == (20, 1, 6)
    assert dfr_fitted.intercepts_.shape == (20, 1)


def test_dfr_subsamples_are_group_balanced(binary_data, dfr_fitted):
    g_val = binary_data[5]
    # held-out groups have 30, 12, 20 and 7 samples: every subsample takes 7 each
    assert dfr_fitted.subsample_size_ == 7
    assert dfr_fitted.subsample_indices_.shape == (20, 28)
    for idx in dfr_fitted.subsample_indices_:
        assert np.unique(idx).shape[0] == 28
        assert np.bincount(g_val[idx]).tolist() == [7, 7, 7, 7]
    # fresh subsamples: the large groups are not drawn identically every time
    assert np.unique(dfr_fitted.subsample_indices_, axis=0).shape[0] == 20
    # tuning fits on half the hard pool: the 7-sample group keeps 3 there
    assert dfr_fitted.tuning_subsample_size_ == 3


def test_dfr_averages_models_with_support_pool_scaler(binary_data, dfr_fitted):
    X, X_val = binary_data[0], binary_data[3]
    np.testing.assert_allclose(dfr_fitted.scaler_mean_, X.mean(axis=0))
    np.testing.assert_allclose(dfr_fitted.scaler_scale_, X.std(axis=0))
    # the final head is the mean of the 20 heads on standardised embeddings ...
    Z = (X_val - dfr_fitted.scaler_mean_) / dfr_fitted.scaler_scale_
    scores = Z @ dfr_fitted.coefs_.mean(0).T + dfr_fitted.intercepts_.mean(0)
    np.testing.assert_allclose(dfr_fitted.decision_function(X_val), scores.ravel())
    # ... folded into a linear map of the raw embeddings
    np.testing.assert_allclose(
        dfr_fitted.coef_, dfr_fitted.coefs_.mean(0) / dfr_fitted.scaler_scale_
    )


def test_dfr_each_model_is_an_l1_fit_on_its_subsample(binary_data, dfr_fitted):
    y_val, X_val = binary_data[4], binary_data[3]
    idx = dfr_fitted.subsample_indices_[3]
    Z = (X_val[idx] - dfr_fitted.scaler_mean_) / dfr_fitted.scaler_scale_
    ref = LogisticRegression(
        C=dfr_fitted.best_C_, **l1_logistic_params(), solver="liblinear", tol=1e-8
    ).fit(Z, y_val[idx])
    np.testing.assert_allclose(dfr_fitted.coefs_[3], ref.coef_, atol=1e-3)


@pytest.mark.parametrize("n_classes", [2, 3])
def test_dfr_penalty_is_l1_on_the_installed_sklearn(n_classes):
    """At a small C an L1 fit sets coefficients of noise features exactly to 0;
    an L2 fit (what ``l1_ratio=1`` alone gives before scikit-learn 1.8) never
    does. Fails on any scikit-learn where DFR's penalty is not L1."""
    counts = [80, 20, 20, 80, 50, 50][: 2 * n_classes]
    X, y, g = spurious(counts, n_features=30, n_classes=n_classes, seed=3)
    X_val, y_val, g_val = spurious([40] * 2 * n_classes, 30, n_classes, seed=4)
    with warnings.catch_warnings():
        # no "l1_ratio is ignored" (<1.8) nor "penalty is deprecated" (>=1.8)
        warnings.simplefilter("error", FutureWarning)
        warnings.simplefilter("error", DeprecationWarning)
        warnings.filterwarnings("error", message=".*(l1_ratio|penalty).*")
        dfr = DFRClassifier(
            Cs=(0.1,), n_models=2, random_state=0, store_models=True
        ).fit(X, y, g, X_val=X_val, y_val=y_val, groups_val=g_val)
    coefs = dfr.coefs_.reshape(2, -1)  # 30 or 3 x 30 coefficients per model
    assert np.all(np.sum(coefs == 0.0, axis=1) >= 20)  # the noise features
    assert np.all(np.any(coefs != 0.0, axis=1))  # but not an empty model


def test_dfr_improves_worst_group_over_erm(binary_data, dfr_fitted):
    X, y = binary_data[:2]
    X_test, y_test, g_test = binary_data[6:]
    erm = ERMHeadClassifier().fit(X, y)
    wga_erm = worst_group_accuracy(y_test, erm.predict(X_test), groups=g_test)
    wga_dfr = worst_group_accuracy(y_test, dfr_fitted.predict(X_test), groups=g_test)
    assert wga_dfr > wga_erm + 0.1


def test_dfr_is_seeded(binary_data):
    X, y, g, X_val, y_val, g_val = binary_data[:6]
    fits = [
        DFRClassifier(n_models=3, random_state=seed, store_models=True).fit(
            X, y, g, X_val=X_val, y_val=y_val, groups_val=g_val
        )
        for seed in (0, 0, 1)
    ]
    np.testing.assert_array_equal(fits[0].coef_, fits[1].coef_)
    assert not np.array_equal(fits[0].subsample_indices_, fits[2].subsample_indices_)


def test_dfr_multiclass_without_held_out_data():
    X, y, g = spurious([60, 30, 30, 60, 50, 40], n_features=8, n_classes=3)
    dfr = DFRClassifier(
        Cs=(1.0, 0.1), n_models=4, random_state=0, store_models=True
    ).fit(X, y, g)
    assert dfr.coef_.shape == (3, 8)
    assert dfr.coefs_.shape == (4, 3, 8)
    hard = dfr.hard_pool_indices_
    # the hold-out is 20% of every group; its smallest group (30) gives 6
    assert dfr.subsample_size_ == 6
    assert np.bincount(g[hard][dfr.subsample_indices_[0]]).tolist() == [6] * 6
    np.testing.assert_allclose(dfr.predict_proba(X).sum(1), 1.0)
    assert dfr.score(X, y) > 0.6  # chance is 1/3


def test_dfr_balance_classes_needs_no_groups(binary_data):
    X, y = binary_data[:2]
    dfr = DFRClassifier(
        balance="classes", n_models=2, random_state=0, store_models=True
    ).fit(X, y)
    y_hard = y[dfr.hard_pool_indices_]
    for idx in dfr.subsample_indices_:
        counts = np.bincount(y_hard[idx])
        assert counts[0] == counts[1] == dfr.subsample_size_


def test_dfr_requires_groups(binary_data):
    X, y, g, X_val, y_val, _ = binary_data[:6]
    with pytest.raises(ValueError, match="needs group labels: pass groups="):
        DFRClassifier().fit(X, y)
    with pytest.raises(ValueError, match="needs groups_val"):
        DFRClassifier().fit(X, y, g, X_val=X_val, y_val=y_val)


def test_dfr_rejects_bad_grid(binary_data):
    X, y, g = binary_data[:3]
    with pytest.raises(ValueError, match=r"Cs must be a float > 0 .*Cs\[1\] is -0.1"):
        DFRClassifier(Cs=(1.0, -0.1)).fit(X, y, g)


# ---------------------------------------------------------------------- AFR


def test_afr_weights_hand_computed():
    p_true = np.array([0.9, 0.5, 0.2])
    y = np.array([0, 0, 1])
    # exp(-2 p) times n / n_class = (3/2, 3/2, 3/1), then normalised
    raw = np.array(
        [np.exp(-1.8) * 1.5, np.exp(-1.0) * 1.5, np.exp(-0.4) * 3.0]
    )  # 0.247948, 0.551819, 2.010960; sum 2.810727
    expected = raw / raw.sum()
    np.testing.assert_allclose(_afr_weights(p_true, y, 2.0), expected)
    np.testing.assert_allclose(
        _afr_weights(p_true, y, 2.0), [0.088215, 0.196326, 0.715459], atol=1e-6
    )


def test_afr_weights_gamma_zero_balances_classes():
    y = np.array([0, 0, 0, 1])
    weights = _afr_weights(np.array([0.1, 0.5, 0.9, 0.3]), y, 0.0)
    np.testing.assert_allclose(weights, [1 / 6, 1 / 6, 1 / 6, 1 / 2])
    # harder examples (lower p_true) weigh more within a class
    hard = _afr_weights(np.array([0.1, 0.5, 0.9, 0.3]), y, 5.0)
    assert hard[0] > hard[1] > hard[2]


def test_afr_selects_by_worst_group_on_the_selection_split(binary_data):
    X, y, g, X_val, y_val, g_val = binary_data[:6]
    afr = small_afr().fit(X, y, g, X_val=X_val, y_val=y_val, groups_val=g_val)
    rw, sel = afr.reweight_indices_, afr.selection_indices_
    assert np.intersect1d(rw, sel).size == 0
    np.testing.assert_array_equal(np.sort(np.r_[rw, sel]), np.arange(y_val.shape[0]))
    # about half of every held-out group selects
    assert np.bincount(g_val[sel]).tolist() == [15, 6, 10, 4]
    assert afr.best_score_ == pytest.approx(afr.grid_scores_.max())
    assert afr.history_["worst_group_accuracy"][afr.best_epoch_ - 1] == pytest.approx(
        afr.best_score_
    )
    assert len(afr.history_["loss"]) == afr.n_iter_ == 20
    assert afr.best_gamma_ in (1.0, 4.0) and afr.best_lambda_ in (0.0, 0.1)
    wga = worst_group_accuracy(y_val[sel], afr.predict(X_val[sel]), groups=g_val[sel])
    assert wga == pytest.approx(afr.best_score_)


def test_afr_without_groups_selects_by_worst_class(binary_data):
    X, y, _, X_val, y_val, _ = binary_data[:6]
    afr = small_afr().fit(X, y, X_val=X_val, y_val=y_val)
    sel = afr.selection_indices_
    assert worst_class_accuracy(y_val[sel], afr.predict(X_val[sel])) == pytest.approx(
        afr.best_score_
    )


def test_afr_starts_from_the_given_head_and_clips(binary_data):
    X, y, _, X_val, y_val, _ = binary_data[:6]
    coef, intercept = np.ones((1, 6)), np.array([-2.0])
    afr = AFRClassifier(
        gamma=4.0,
        reg_lambda=0.0,
        n_epochs=1,
        learning_rate=1.0,
        max_grad_norm=1e-3,
        init_coef=coef,
        init_intercept=intercept,
        device="cpu",
        random_state=0,
    ).fit(X, y, X_val=X_val, y_val=y_val)
    np.testing.assert_array_equal(afr.init_coef_, coef)
    np.testing.assert_array_equal(afr.init_intercept_, intercept)
    moved = np.sqrt(
        np.sum((afr.coef_ - coef) ** 2) + np.sum((afr.intercept_ - intercept) ** 2)
    )
    # one step of norm <= lr * max_grad_norm on the two-row softmax head, whose
    # antisymmetric update moves the one-row head by sqrt(2) times that
    assert 0 < moved <= np.sqrt(2) * 1e-3 * (1 + 1e-4)


def test_afr_default_head_is_erm_on_support_pool(binary_data):
    X, y, g = binary_data[:3]
    afr = small_afr(n_epochs=2).fit(X, y, g)
    support = np.setdiff1d(np.arange(y.shape[0]), afr.hard_pool_indices_)
    # on the rescaled support pool (rescale=True), folded back into the space of X
    assert afr.scale_ == pytest.approx(
        np.sqrt(X[support].size / np.sum(X[support] ** 2))
    )
    erm = LogisticRegression(max_iter=1000).fit(X[support] * afr.scale_, y[support])
    np.testing.assert_allclose(afr.init_coef_, erm.coef_ * afr.scale_, rtol=1e-6)


def test_afr_improves_worst_group_over_erm(binary_data):
    X, y, g, X_val, y_val, g_val, X_test, y_test, g_test = binary_data
    afr = AFRClassifier(device="cpu", random_state=0)
    afr.fit(X, y, g, X_val=X_val, y_val=y_val, groups_val=g_val)
    erm = ERMHeadClassifier().fit(X, y)
    wga_erm = worst_group_accuracy(y_test, erm.predict(X_test), groups=g_test)
    wga_afr = worst_group_accuracy(y_test, afr.predict(X_test), groups=g_test)
    assert wga_afr > wga_erm + 0.1


def test_afr_multiclass():
    X, y, g = spurious([60, 30, 30, 60, 50, 40], n_features=8, n_classes=3)
    afr = small_afr().fit(X, y, g)
    assert afr.coef_.shape == (3, 8) and afr.intercept_.shape == (3,)
    assert afr.score(X, y) > 0.6  # chance is 1/3


def test_afr_rejects_bad_arguments(binary_data):
    X, y = binary_data[:2]
    with pytest.raises(ValueError, match=r"init_coef must have shape \(1, 6\)"):
        small_afr(init_coef=np.ones((3, 6))).fit(X, y)
    with pytest.raises(ValueError, match="gamma must be a float >= 0"):
        small_afr(gamma=(1.0, -1.0)).fit(X, y)
    with pytest.raises(ValueError, match="reg_lambda must be a float >= 0"):
        small_afr(reg_lambda=[]).fit(X, y)


# -------------------------------------------------------------- all together


@pytest.mark.parametrize("estimator", CHECKED, ids=lambda e: type(e).__name__)
def test_pickle_round_trip_and_numpy_state(estimator, binary_data):
    X, y, g = binary_data[:3]
    fitted = estimator.fit(X, y, g)
    for name, value in vars(fitted).items():
        if name.endswith("_"):
            assert type(value).__module__.split(".")[0] in ("numpy", "builtins"), name
    clone = pickle.loads(pickle.dumps(fitted))
    np.testing.assert_array_equal(clone.predict_proba(X), fitted.predict_proba(X))


@pytest.mark.parametrize("estimator", CHECKED, ids=lambda e: type(e).__name__)
def test_groups_are_routed_by_default(estimator, binary_data):
    X, y, g = binary_data[:3]
    assert estimator.get_metadata_routing().fit.requests["groups"] is True
    with config_context(enable_metadata_routing=True):
        scores = cross_val_score(estimator, X, y, params={"groups": g}, cv=2)
    assert scores.shape == (2,)


def test_importing_baselines_does_not_import_torch():
    code = "import sys, skhsfm.baselines; print('torch' in sys.modules)"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "False"


def test_tiny_hard_pool_warns_and_uses_all_of_it(binary_data):
    X, y, g = binary_data[:3]
    X_val, y_val, g_val = spurious([1, 1, 1, 1], seed=3)  # one sample per group
    with pytest.warns(UserWarning, match="tuning on the whole hard pool"):
        dfr = DFRClassifier(n_models=2, random_state=0)
        dfr.fit(X, y, g, X_val=X_val, y_val=y_val, groups_val=g_val)
    assert dfr.subsample_size_ == 1
    with pytest.warns(UserWarning, match="selecting on the whole hard pool"):
        afr = small_afr().fit(X, y, g, X_val=X_val, y_val=y_val, groups_val=g_val)
    np.testing.assert_array_equal(afr.selection_indices_, np.arange(4))


def test_dfr_streamed_standardization_equals_standard_scaler():
    """DFR's statistics are streamed over row blocks (no float64 copy of X);
    they equal StandardScaler's to rounding, and exactly for one block."""
    from sklearn.preprocessing import StandardScaler

    from skhsfm.baselines._dfr import _standardization

    rng = np.random.RandomState(0)
    X = (rng.normal(size=(10_000, 6)) * [1, 10, 1e-3, 1, 1, 1] + 5).astype(np.float32)
    X[:, 4] = 2.5  # a constant feature: scale 1, as StandardScaler
    scaler = StandardScaler().fit(X)
    mean, scale = _standardization(X, block_rows=777)
    np.testing.assert_allclose(mean, scaler.mean_, rtol=1e-12)
    np.testing.assert_allclose(scale, scaler.scale_, rtol=1e-10)
    assert scale[4] == 1.0
    one_block = _standardization(X[:3000])
    ref = StandardScaler().fit(X[:3000])
    np.testing.assert_array_equal(one_block[0], ref.mean_)
    np.testing.assert_array_equal(one_block[1], ref.scale_)
    # the caller's array is never changed
    np.testing.assert_array_equal(X[:, 4], 2.5)
