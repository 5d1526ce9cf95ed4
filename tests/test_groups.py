"""Group inference: GroupInferrer and InferredGroupsClassifier."""

import pickle

import numpy as np
import pytest
import sklearn
from conftest import correlated_splits
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.estimator_checks import parametrize_with_checks

from skhsfm import worst_group_accuracy
from skhsfm.baselines import AFRClassifier, DFRClassifier
from skhsfm.groups import GroupInferrer, InferredGroupsClassifier
from skhsfm.metrics import worst_group_scorer
from skhsfm.model_selection import GroupStratifiedKFold


@pytest.fixture(scope="module")
def data():
    """A 95%-correlated training split and balanced validation/test splits."""
    return correlated_splits(800, 400, 800)


def _fit(data, groups=True, groups_val=True, val=True, **params):
    X, y, g = data["train"]
    Xv, yv, gv = data["val"]
    held_out = {}
    if val:
        held_out = dict(X_val=Xv, y_val=yv, groups_val=gv if groups_val else None)
    return GroupInferrer(random_state=0, **params).fit(
        X, y, g if groups else None, **held_out
    )


@pytest.mark.parametrize(
    "groups, groups_val, val, expected",
    [
        (True, True, True, {"groups": "given", "groups_val": "given"}),
        (False, True, True, {"groups": "classifier", "groups_val": "given"}),
        (True, False, True, {"groups": "given", "groups_val": "classifier"}),
        (False, False, True, {"groups": "classifier", "groups_val": "error"}),
        (True, False, False, {"groups": "given", "groups_val": "none"}),
        (False, False, False, {"groups": "error", "groups_val": "none"}),
    ],
)
def test_auto_fills_in_every_data_situation(data, groups, groups_val, val, expected):
    inferrer = _fit(data, groups, groups_val, val)
    assert inferrer.groups_source_ == expected
    assert inferrer.groups_.shape == data["train"][1].shape
    if val:
        assert inferrer.groups_val_.shape == data["val"][1].shape
    else:
        assert inferrer.groups_val_ is None


def test_given_labels_are_kept(data):
    inferrer = _fit(data)
    assert inferrer.groups_ is not None
    np.testing.assert_array_equal(inferrer.groups_, data["train"][2])
    np.testing.assert_array_equal(inferrer.groups_val_, data["val"][2])


def test_classifier_recovers_the_training_groups_from_the_validation_groups(data):
    inferrer = _fit(data, groups=False)
    truth = data["train"][2]
    assert np.mean(inferrer.groups_ == truth) > 0.85
    # the minority cells are found, not swallowed by the majority
    for minority in (1, 2):
        found = inferrer.groups_ == minority
        assert np.mean(truth[found] == minority) > 0.3
        assert np.mean(found[truth == minority]) > 0.6


def test_classifier_recovers_the_validation_groups_from_the_training_groups(data):
    inferrer = _fit(data, groups_val=False)
    assert np.mean(inferrer.groups_val_ == data["val"][2]) > 0.8


def test_error_groups_are_two_codes_per_class_enriched_in_minority_rows(data):
    inferrer = _fit(data, groups=False, groups_val=False)
    y_val, g_val = data["val"][1], data["val"][2]
    codes = inferrer.groups_val_
    assert set(np.unique(codes)) <= {0, 1, 2, 3}
    np.testing.assert_array_equal(codes // 2, y_val)  # classes are 0 and 1
    errors = codes % 2 == 1
    minority = (g_val == 1) | (g_val == 2)
    # the ERM head's errors fall mostly on the minority groups
    assert errors.sum() > 0
    assert np.mean(minority[errors]) > 0.75


def test_forced_error_method_ignores_given_labels(data):
    inferrer = _fit(data, method="error")
    assert inferrer.groups_source_ == {"groups": "error", "groups_val": "error"}


def test_same_random_state_same_groups(data):
    a = _fit(data, groups=False, groups_val=False, val=False)
    b = _fit(data, groups=False, groups_val=False, val=False)
    np.testing.assert_array_equal(a.groups_, b.groups_)


def test_scale_of_the_embeddings_does_not_matter(data):
    X, y, _ = data["train"]
    Xv, yv, gv = data["val"]
    base = GroupInferrer(random_state=0).fit(X, y, X_val=Xv, y_val=yv, groups_val=gv)
    scaled = GroupInferrer(random_state=0).fit(
        X * 1e4, y, X_val=Xv * 1e4, y_val=yv, groups_val=gv
    )
    assert np.mean(base.groups_ == scaled.groups_) > 0.99


def test_string_groups_and_labels_round_trip(data):
    X, y, _ = data["train"]
    Xv, yv, gv = data["val"]
    names = np.array(["a0", "a1", "b0", "b1"])
    inferrer = GroupInferrer(random_state=0).fit(
        X, np.array(["cat", "dog"])[y], X_val=Xv, y_val=np.array(["cat", "dog"])[yv],
        groups_val=names[gv],
    )  # fmt: skip
    assert set(np.unique(inferrer.groups_)) <= set(names)
    np.testing.assert_array_equal(inferrer.classes_, ["cat", "dog"])


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(y_val=[0, 1]), "without X_val"),
        (dict(X_val="same", y_val=None), "without y_val"),
        (dict(X_val="narrow", y_val="val"), "features"),
        (dict(X_val="same", y_val="unknown"), "absent from y"),
    ],
)
def test_bad_held_out_arguments_are_named(data, kwargs, match):
    X, y, _ = data["train"]
    Xv, yv, _ = data["val"]
    values = {"same": Xv, "narrow": Xv[:, :3], "val": yv, "unknown": yv + 5}
    kwargs = {k: values.get(v, v) if isinstance(v, str) else v
              for k, v in kwargs.items()}  # fmt: skip
    with pytest.raises(ValueError, match=match):
        GroupInferrer().fit(X, y, **kwargs)


def test_classifier_method_needs_labels_somewhere(data):
    X, y, _ = data["train"]
    Xv, yv, _ = data["val"]
    with pytest.raises(ValueError, match="neither groups nor groups_val"):
        GroupInferrer(method="classifier").fit(X, y, X_val=Xv, y_val=yv)
    with pytest.raises(ValueError, match="no X_val"):
        GroupInferrer(method="classifier").fit(X, y)


def test_a_class_without_labelled_rows_is_an_error(data):
    X, y, _ = data["train"]
    Xv, yv, gv = data["val"]
    keep = yv == 0
    with pytest.raises(ValueError, match="class 1 has no row with a known group"):
        GroupInferrer().fit(X, y, X_val=Xv[keep], y_val=yv[keep], groups_val=gv[keep])


@pytest.mark.parametrize("params", [dict(C=0), dict(cv=1), dict(method="magic")])
def test_bad_parameters_are_named(data, params):
    X, y, _ = data["train"]
    with pytest.raises(ValueError, match=list(params)[0]):
        GroupInferrer(**params).fit(X, y)


# ----------------------------------------------------------- the wrapper


def test_dfr_without_any_group_labels(data):
    X, y, _ = data["train"]
    Xv, yv, _ = data["val"]
    Xt, yt, gt = data["test"]
    clf = InferredGroupsClassifier(DFRClassifier(n_models=5, random_state=0))
    clf.fit(X, y, X_val=Xv, y_val=yv)
    assert clf.inferrer_.groups_source_["groups_val"] == "error"
    # better than a plain logistic regression, which keys on the attribute
    from sklearn.linear_model import LogisticRegression

    plain = LogisticRegression(max_iter=1000).fit(X, y)
    wga = worst_group_accuracy(yt, clf.predict(Xt), groups=gt)
    assert wga > worst_group_accuracy(yt, plain.predict(Xt), groups=gt) + 0.05
    np.testing.assert_array_equal(clf.classes_, [0, 1])
    assert clf.predict_proba(Xt).shape == (Xt.shape[0], 2)
    assert clf.decision_function(Xt).shape == (Xt.shape[0],)


def test_wrapper_passes_given_labels_through(data):
    X, y, g = data["train"]
    Xv, yv, gv = data["val"]
    wrapped = InferredGroupsClassifier(DFRClassifier(n_models=3, random_state=0))
    wrapped.fit(X, y, g, X_val=Xv, y_val=yv, groups_val=gv)
    direct = DFRClassifier(n_models=3, random_state=0)
    direct.fit(X, y, g, X_val=Xv, y_val=yv, groups_val=gv)
    np.testing.assert_array_equal(wrapped.estimator_.coef_, direct.coef_)


def test_wrapper_pickles_and_predicts_the_same(data):
    X, y, _ = data["train"]
    Xv, yv, gv = data["val"]
    clf = InferredGroupsClassifier(
        AFRClassifier(n_epochs=20, device="cpu", random_state=0)
    ).fit(X, y, X_val=Xv, y_val=yv, groups_val=gv)
    loaded = pickle.loads(pickle.dumps(clf))
    np.testing.assert_array_equal(loaded.predict(X), clf.predict(X))


def test_wrapper_in_a_pipeline_and_grid_search(data):
    X, y, g = data["train"]
    Xv, yv, gv = data["val"]
    with sklearn.config_context(enable_metadata_routing=True):
        pipe = Pipeline(
            [
                ("scale", StandardScaler()),
                (
                    "clf",
                    InferredGroupsClassifier(
                        DFRClassifier(random_state=0)
                    ).set_fit_request(groups=False),
                ),
            ],
            transform_input=["X_val"],
        )
        search = GridSearchCV(
            pipe,
            {"clf__estimator__n_models": [2, 4]},
            scoring=worst_group_scorer,
            cv=GroupStratifiedKFold(2),
        )
        # groups reach the folds and the scorer, not the head: its training
        # groups are inferred from the fixed validation split's
        search.fit(X, y, groups=g, X_val=(Xv,), y_val=(yv,), groups_val=(gv,))
    assert search.best_params_["clf__estimator__n_models"] in (2, 4)
    source = search.best_estimator_[-1].inferrer_.groups_source_
    assert source == {"groups": "classifier", "groups_val": "given"}
    assert search.best_estimator_.predict(Xv).shape == yv.shape


def test_wrapper_without_a_fit_method_is_refused():
    with pytest.raises(ValueError, match="estimator"):
        InferredGroupsClassifier(object()).fit(np.eye(4), [0, 0, 1, 1])


@parametrize_with_checks(
    [
        InferredGroupsClassifier(
            DFRClassifier(n_models=2, random_state=0), random_state=0
        )
    ]
)
def test_sklearn_compatible(estimator, check):
    check(estimator)
