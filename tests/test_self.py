"""SELFClassifier and the per-row signals of skhsfm.groups it ranks rows by."""

import pickle

import numpy as np
import pytest
from conftest import correlated_splits
from sklearn.linear_model import LogisticRegression

from skhsfm import LinearHead, worst_class_accuracy, worst_group_accuracy
from skhsfm.baselines import ERMHeadClassifier, SELFClassifier
from skhsfm.baselines._self import balanced_batches, finetune_heads
from skhsfm.datasets import make_spurious_embeddings
from skhsfm.groups import dropout_disagreement, misclassification_loss

#: a small grid, so that each fit takes a fraction of a second
FAST = dict(n_selected=(20, 60), learning_rate=(1.0, 10.0), dropout=(0.5, 0.9))


@pytest.fixture(scope="module")
def data():
    """A 95%-correlated training split, balanced validation and test splits."""
    return correlated_splits(800, 300, 1000)


def _fit(data, groups_val=False, **params):
    (X, y, _), (Xv, yv, gv) = data["train"], data["val"]
    params = {**FAST, "random_state": 0, **params}
    held_out = dict(X_val=Xv, y_val=yv)
    if groups_val:
        held_out["groups_val"] = gv
    return SELFClassifier(**params).fit(X, y, **held_out)


@pytest.fixture(scope="module")
def fitted(data):
    return _fit(data)


def test_fit_without_any_group_label(data, fitted):
    X, y, _ = data["train"]
    n_val = data["val"][1].shape[0]
    assert fitted.coef_.shape == (1, X.shape[1])
    assert fitted.intercept_.shape == (1,)
    assert fitted.classes_.tolist() == [0, 1]
    # the hard pool is X_val, split in two parts; cross-fitted, each part is
    # selected from (its top rows) and tunes the other's head
    assert fitted.hard_pool_indices_ is None
    first, second = fitted.scored_indices_, fitted.tuning_indices_
    np.testing.assert_array_equal(np.sort(np.r_[first, second]), np.arange(n_val))
    k = fitted.best_n_selected_
    assert k in FAST["n_selected"]
    assert np.isin(fitted.selected_indices_, first).sum() == k
    assert np.isin(fitted.selected_indices_, second).sum() == k
    assert fitted.best_learning_rate_ in FAST["learning_rate"]
    assert fitted.best_dropout_ in FAST["dropout"]
    assert fitted.grid_scores_.shape == (2, 2, 2)
    assert fitted.best_score_ == np.nanmax(fitted.grid_scores_)
    assert fitted.n_iter_ == 250
    assert fitted.init_coef_.shape == fitted.coef_.shape
    assert np.isfinite(fitted.selection_scores_).all()


def test_single_split_as_the_official_code(data):
    clf = _fit(data, cross_fit=False)
    first, second = clf.scored_indices_, clf.tuning_indices_
    assert np.isin(clf.selected_indices_, first).all()
    assert clf.selected_indices_.shape[0] == clf.best_n_selected_
    # only the first part is scored
    assert np.isfinite(clf.selection_scores_[first]).all()
    assert np.isnan(clf.selection_scores_[second]).all()


def test_without_groups_it_tunes_by_worst_class_accuracy(data):
    Xv, yv, _ = data["val"]
    clf = _fit(data, cross_fit=False)
    rows = clf.tuning_indices_
    expected = worst_class_accuracy(yv[rows], clf.predict(Xv[rows]))
    assert clf.best_score_ == pytest.approx(expected)


def test_validation_groups_are_used_only_to_tune(data):
    Xv, yv, gv = data["val"]
    clf = _fit(data, groups_val=True, cross_fit=False)
    rows = clf.tuning_indices_
    expected = worst_group_accuracy(yv[rows], clf.predict(Xv[rows]), groups=gv[rows])
    assert clf.best_score_ == pytest.approx(expected)
    # and to stratify the split: every group in half
    for group in np.unique(gv):
        assert abs(np.sum(gv[rows] == group) - np.sum(gv == group) / 2) <= 1


def test_cross_fitting_keeps_the_split_and_changes_the_head(data, fitted):
    one = _fit(data, cross_fit=False)
    np.testing.assert_array_equal(one.scored_indices_, fitted.scored_indices_)
    np.testing.assert_array_equal(one.tuning_indices_, fitted.tuning_indices_)
    assert not np.allclose(one.coef_, fitted.coef_)


@pytest.mark.parametrize("selection", ["disagreement", "misclassification", "random"])
def test_selected_rows_are_the_top_of_the_signal(data, selection):
    clf = _fit(data, selection=selection)
    scores = clf.selection_scores_
    for part in (clf.scored_indices_, clf.tuning_indices_):
        picked = np.isin(part, clf.selected_indices_)
        assert picked.sum() == clf.best_n_selected_
        if not picked.all():
            assert scores[part][picked].min() >= scores[part][~picked].max()
    if selection != "disagreement":
        assert clf.best_dropout_ is None
        assert clf.grid_scores_.shape[0] == 1


def test_misclassification_ranks_by_the_erm_heads_loss(data):
    Xv, yv, _ = data["val"]
    clf = _fit(data, selection="misclassification")
    erm = LinearHead(clf.init_coef_, clf.init_intercept_)
    np.testing.assert_allclose(
        clf.selection_scores_, misclassification_loss(erm, Xv, yv)
    )
    # the ERM head is the logistic regression of the support pool
    X, y, _ = data["train"]
    np.testing.assert_allclose(
        clf.init_coef_, ERMHeadClassifier().fit(X, y).coef_, rtol=1e-6
    )


def test_rescale_false_starts_from_the_plain_logistic_regression(data):
    X, y, _ = data["train"]
    clf = _fit(data, selection="misclassification", rescale=False)
    assert clf.scale_ == 1.0
    np.testing.assert_allclose(
        clf.init_coef_, LogisticRegression().fit(X, y).coef_, rtol=1e-6
    )


def test_misclassification_finds_the_minority_groups(data):
    """The ERM head's largest losses are minority rows (groups 1 and 2, 5% of
    training), though they are only half of the balanced held-out split."""
    X, y, _ = data["train"]
    Xv, yv, gv = data["val"]
    erm = ERMHeadClassifier().fit(X, y)
    top = np.argsort(-misclassification_loss(erm, Xv, yv))[:40]
    assert np.mean(np.isin(gv[top], [1, 2])) > 0.9
    assert np.mean(np.isin(gv, [1, 2])) == pytest.approx(0.5, abs=0.02)


def test_dropout_disagreement_is_largest_where_few_features_decide():
    """Two rows with the same score: one decided by a single feature, one by
    all eight. Dropping features out changes the first far more often."""
    head = LinearHead(np.ones((1, 8)), [-1.0])
    X = np.repeat([[3.0] + [0.0] * 7, [3.0 / 8] * 8], 500, axis=0)
    scores = dropout_disagreement(head, X, dropout=0.5, random_state=0)
    one, spread = scores[:500].mean(), scores[500:].mean()
    assert one > 3 * spread > 0
    # the head is unchanged where nothing is dropped: no disagreement at all
    assert np.all(dropout_disagreement(head, np.zeros((5, 8)), random_state=0) == 0)


def test_beats_erm_worst_group_accuracy_without_group_labels(data, fitted):
    X, y, _ = data["train"]
    Xt, yt, gt = data["test"]
    erm = ERMHeadClassifier().fit(X, y)
    erm_wga = worst_group_accuracy(yt, erm.predict(Xt), groups=gt)
    self_wga = worst_group_accuracy(yt, fitted.predict(Xt), groups=gt)
    assert self_wga > erm_wga + 0.1


def test_tiny_learning_rate_stays_at_the_erm_head(data):
    clf = _fit(data, learning_rate=1e-12)
    np.testing.assert_allclose(clf.coef_, clf.init_coef_, rtol=1e-6)
    np.testing.assert_allclose(clf.intercept_, clf.init_intercept_, atol=1e-6)


def test_starts_from_the_given_head_and_does_not_depend_on_the_scale(data):
    """With a given head, SELF is the same on 100 * X (the head rescaled)."""
    (X, y, _), (Xv, yv, _) = data["train"], data["val"]
    head = LogisticRegression().fit(X, y)
    params = {**FAST, "random_state": 0}
    clf = SELFClassifier(
        init_coef=head.coef_, init_intercept=head.intercept_, **params
    ).fit(X, y, X_val=Xv, y_val=yv)
    np.testing.assert_allclose(clf.init_coef_, head.coef_)
    scaled = SELFClassifier(
        init_coef=head.coef_ / 100, init_intercept=head.intercept_, **params
    ).fit(100 * X, y, X_val=100 * Xv, y_val=yv)
    np.testing.assert_array_equal(scaled.selected_indices_, clf.selected_indices_)
    np.testing.assert_allclose(100 * scaled.coef_, clf.coef_, rtol=1e-6)
    Xt = data["test"][0]
    assert np.mean(scaled.predict(100 * Xt) == clf.predict(Xt)) > 0.999


def test_same_random_state_same_head(data, fitted):
    again = _fit(data)
    np.testing.assert_array_equal(again.coef_, fitted.coef_)
    np.testing.assert_array_equal(again.selected_indices_, fitted.selected_indices_)
    other = _fit(data, random_state=1)
    assert not np.array_equal(other.tuning_indices_, fitted.tuning_indices_)


def test_hold_out_of_X_without_X_val(data):
    X, y, g = data["train"]
    clf = SELFClassifier(**FAST, validation_fraction=0.3, random_state=0).fit(X, y)
    assert clf.hard_pool_indices_.shape[0] == pytest.approx(0.3 * X.shape[0], abs=2)
    n_hard = clf.hard_pool_indices_.shape[0]
    assert clf.scored_indices_.shape[0] + clf.tuning_indices_.shape[0] == n_hard
    # training groups, when given, stratify the hold-out and tune
    grouped = SELFClassifier(**FAST, random_state=0).fit(X, y, g)
    held_out = grouped.hard_pool_indices_
    for group in np.unique(g):
        assert np.any(g[held_out] == group)


def test_three_classes_and_string_labels():
    X, y, _, _ = make_spurious_embeddings(
        600, 12, n_classes=3, n_attributes=3, random_state=0
    )
    Xv, yv, _, _ = make_spurious_embeddings(
        300, 12, n_classes=3, n_attributes=3, split="val", random_state=0
    )
    names = np.array(["ant", "bee", "cat"])
    clf = SELFClassifier(**FAST, random_state=0).fit(
        X, names[y], X_val=Xv, y_val=names[yv]
    )
    assert clf.coef_.shape == (3, 12)
    assert set(clf.predict(Xv)) <= set(names)
    erm = ERMHeadClassifier().fit(X, names[y])
    assert clf.score(Xv, names[yv]) > erm.score(Xv, names[yv]) + 0.05


def test_pickle_round_trip_and_numpy_state(data, fitted):
    Xt = data["test"][0]
    loaded = pickle.loads(pickle.dumps(fitted))
    np.testing.assert_array_equal(loaded.predict_proba(Xt), fitted.predict_proba(Xt))
    for name, value in vars(fitted).items():
        if name.endswith("_") and not np.isscalar(value) and value is not None:
            assert isinstance(value, np.ndarray), name


def test_to_sklearn_predicts_the_same(data, fitted):
    Xt = data["test"][0]
    model = fitted.to_sklearn()
    np.testing.assert_array_equal(model.predict(Xt), fitted.predict(Xt))
    np.testing.assert_allclose(model.predict_proba(Xt), fitted.predict_proba(Xt))
    np.testing.assert_allclose(
        model.decision_function(Xt), fitted.decision_function(Xt)
    )


def test_lazy_X_fits_as_in_memory(data, fitted):
    da = pytest.importorskip("dask.array")
    (X, y, _), (Xv, yv, _) = data["train"], data["val"]
    lazy = SELFClassifier(**FAST, random_state=0).fit(
        da.from_array(X, chunks=(200, 16)), y, X_val=da.from_array(Xv), y_val=yv
    )
    np.testing.assert_allclose(lazy.coef_, fitted.coef_)


@pytest.mark.parametrize(
    "params, match",
    [
        (dict(n_selected=0), "n_selected"),
        (dict(n_selected=[10, 2.5]), "n_selected must be an int >= 1"),
        (dict(n_selected=[]), "n_selected"),
        (dict(learning_rate=-1.0), "learning_rate"),
        (dict(learning_rate=[1.0, np.nan]), "learning_rate must be a float > 0"),
        (dict(learning_rate=["fast"]), "learning_rate must be a float > 0"),
        (dict(dropout=1.0), "dropout"),
        (dict(dropout=[0.5, 1.2]), r"dropout must be a float in \(0, 1\)"),
        (dict(selection="early"), "selection"),
        (dict(tuning_fraction=1.0), "tuning_fraction"),
        (dict(batch_size=0), "batch_size"),
        (dict(momentum=1.0), "momentum"),
        (dict(init_coef=np.ones((1, 3))), "init_coef must have shape"),
    ],
)
def test_bad_parameters_are_named(data, params, match):
    with pytest.raises(ValueError, match=match):
        _fit(data, **params)


def test_bad_held_out_arguments_are_named(data):
    (X, y, _), (Xv, yv, _) = data["train"], data["val"]
    with pytest.raises(ValueError, match="y_val"):
        SELFClassifier(**FAST).fit(X, y, X_val=Xv)
    with pytest.raises(ValueError, match="X_val does not match X"):
        SELFClassifier(**FAST).fit(X, y, X_val=Xv[:, :3], y_val=yv)


def test_a_tiny_hard_pool_warns_and_uses_all_of_it():
    rng = np.random.RandomState(0)
    X, y = rng.normal(size=(40, 3)), np.repeat([0, 1], 20)
    Xv, yv = rng.normal(size=(2, 3)), np.array([0, 1])
    with pytest.warns(UserWarning, match="whole hard pool"):
        clf = SELFClassifier(**FAST, random_state=0).fit(X, y, X_val=Xv, y_val=yv)
    np.testing.assert_array_equal(clf.tuning_indices_, [0, 1])


def test_dropout_disagreement_properties(data):
    X, y, _ = data["train"]
    Xv = data["val"][0]
    erm = ERMHeadClassifier().fit(X, y)
    first = dropout_disagreement(erm, Xv, dropout=0.5, random_state=0)
    assert first.shape == (Xv.shape[0],) and np.all(first >= 0)
    np.testing.assert_array_equal(
        first, dropout_disagreement(erm, Xv, dropout=0.5, random_state=0)
    )
    # more dropout, more disagreement on average
    more = dropout_disagreement(erm, Xv, dropout=0.9, random_state=0)
    assert more.mean() > first.mean()
    with pytest.raises(ValueError, match="dropout must be in"):
        dropout_disagreement(erm, Xv, dropout=0.0)


def test_balanced_batches_balance_the_classes():
    y = np.array([0] * 90 + [1] * 10)
    rows = np.arange(100)
    batches = balanced_batches(y, rows, 400, 32, np.random.RandomState(0))
    assert batches.shape == (400, 32)
    assert np.mean(y[batches]) == pytest.approx(0.5, abs=0.02)
    assert np.isin(batches, rows).all()


def test_finetune_heads_is_torch_sgd():
    torch = pytest.importorskip("torch")
    rng = np.random.RandomState(0)
    Z, y = rng.normal(size=(50, 4)), rng.randint(0, 3, 50)
    W0, b0 = rng.normal(size=(3, 4)), rng.normal(size=3)
    batches = balanced_batches(y, np.arange(50), 30, 8, rng)
    W, b = finetune_heads(
        Z, y, W0, b0, batches, [0.05, 0.5], momentum=0.9, weight_decay=1e-3
    )
    for i, lr in enumerate([0.05, 0.5]):
        layer = torch.nn.Linear(4, 3).double()
        with torch.no_grad():
            layer.weight.copy_(torch.from_numpy(W0))
            layer.bias.copy_(torch.from_numpy(b0))
        opt = torch.optim.SGD(
            layer.parameters(), lr=lr, momentum=0.9, weight_decay=1e-3
        )
        for batch in batches:
            opt.zero_grad()
            loss = torch.nn.functional.cross_entropy(
                layer(torch.from_numpy(Z[batch])), torch.from_numpy(y[batch])
            )
            loss.backward()
            opt.step()
        np.testing.assert_allclose(W[i], layer.weight.detach().numpy(), rtol=1e-9)
        np.testing.assert_allclose(b[i], layer.bias.detach().numpy(), rtol=1e-9)


def test_misclassification_loss_is_the_log_loss(data):
    X, y, _ = data["train"]
    model = LogisticRegression().fit(X, y)
    proba = model.predict_proba(X)
    expected = -np.log(proba[np.arange(y.shape[0]), y])
    np.testing.assert_allclose(misclassification_loss(model, X, y), expected)
