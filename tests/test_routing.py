"""`groups` reach fit, splitter and scorer under scikit-learn metadata routing."""

import uuid
from pathlib import Path

import numpy as np
import pytest
import sklearn
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV, cross_validate
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from skhsfm import HSFMClassifier
from skhsfm.metrics import (
    make_group_scorer,
    make_groups,
    worst_group_accuracy,
    worst_group_scorer,
)
from skhsfm.model_selection import GroupStratifiedKFold

FAST_HSFM = dict(
    n_epochs=3,
    support_size=8,
    hard_size=8,
    inner_steps=3,
    outer_steps=3,
    device="cpu",
    random_state=0,
)


def spurious_embeddings(n=150, d=6, spurious_corr=0.85, seed=0):
    """A core direction decides the class; a spurious one agrees with it mostly."""
    rng = np.random.RandomState(seed)
    y = rng.randint(0, 2, n)
    attribute = np.where(rng.rand(n) < spurious_corr, y, 1 - y)
    X = 0.6 * rng.randn(n, d)
    X[:, 0] += 1.0 * (2 * y - 1)
    X[:, 1] += 2.0 * (2 * attribute - 1)
    return X, y, make_groups(y, attribute)


@pytest.fixture(params=["set_config", "config_context"])
def routing(request):
    """Routing enabled either globally (restored) or in a context manager."""
    if request.param == "set_config":
        previous = sklearn.get_config()["enable_metadata_routing"]
        sklearn.set_config(enable_metadata_routing=True)
        try:
            yield
        finally:
            sklearn.set_config(enable_metadata_routing=previous)
    else:
        with sklearn.config_context(enable_metadata_routing=True):
            yield


# --- recorders: what each fit / score call received, written to files ------------
# GridSearchCV(n_jobs=2) fits and scores in other processes, so the recorders
# write what they get into a directory the test reads afterwards.


def _record(directory, kind, **arrays):
    np.savez(Path(directory) / f"{kind}-{uuid.uuid4().hex}.npz", **arrays)


def _read(directory, kind):
    found = []
    for path in sorted(Path(directory).glob(f"{kind}-*.npz")):
        with np.load(path) as stored:
            found.append({key: stored[key] for key in stored.files})
    return found


class RecordingClassifier(ClassifierMixin, BaseEstimator):
    """LogisticRegression that records the y and groups its fit receives."""

    __metadata_request__fit = {"groups": True}

    def __init__(self, record_dir=None, C=1.0):
        self.record_dir = record_dir
        self.C = C

    def fit(self, X, y, groups=None):
        if groups is None:
            raise ValueError("RecordingClassifier.fit received no groups")
        _record(self.record_dir, "fit", y=np.asarray(y), groups=np.asarray(groups))
        self.model_ = LogisticRegression(C=self.C).fit(X, y)
        self.classes_ = self.model_.classes_
        return self

    def predict(self, X):
        return self.model_.predict(X)


def recording_worst_group_accuracy(y_true, y_pred, *, groups, record_dir):
    _record(record_dir, "score", y=np.asarray(y_true), groups=np.asarray(groups))
    return worst_group_accuracy(y_true, y_pred, groups=groups)


def _same_rows(record, y, groups, index):
    return np.array_equal(record["y"], y[index]) and np.array_equal(
        record["groups"], groups[index]
    )


def test_grid_search_routes_each_folds_groups(tmp_path, routing):
    X, y, groups = spurious_embeddings()
    cv = GroupStratifiedKFold(n_splits=3)
    folds = list(cv.split(X, y, groups))
    pipeline = Pipeline(
        [("scale", StandardScaler()), ("clf", RecordingClassifier(str(tmp_path)))]
    )
    scorer = make_group_scorer(recording_worst_group_accuracy, record_dir=str(tmp_path))
    search = GridSearchCV(
        pipeline,
        {"clf__C": [0.1, 1.0]},
        scoring={"wga": scorer, "acc": "accuracy"},
        refit="wga",
        cv=cv,
        n_jobs=2,
        error_score="raise",
    ).fit(X, y, groups=groups)

    fits = _read(tmp_path, "fit")
    scores = _read(tmp_path, "score")
    assert len(fits) == 2 * 3 + 1 and len(scores) == 2 * 3
    for train, _ in folds:  # each candidate fitted once on each training fold
        assert sum(_same_rows(r, y, groups, train) for r in fits) == 2
    everything = np.arange(y.shape[0])
    assert sum(_same_rows(r, y, groups, everything) for r in fits) == 1  # refit
    for _, test in folds:  # each candidate scored once on each test fold
        assert sum(_same_rows(r, y, groups, test) for r in scores) == 2

    assert search.best_params_["clf__C"] in (0.1, 1.0)
    expected = [
        np.mean(
            [
                worst_group_accuracy(
                    y[test],
                    Pipeline([("s", StandardScaler()), ("c", LogisticRegression(C=C))])
                    .fit(X[train], y[train])
                    .predict(X[test]),
                    groups=groups[test],
                )
                for train, test in folds
            ]
        )
        for C in (0.1, 1.0)
    ]
    np.testing.assert_allclose(search.cv_results_["mean_test_wga"], expected)


def test_cross_validate_routes_groups(tmp_path, routing):
    X, y, groups = spurious_embeddings()
    cv = GroupStratifiedKFold(n_splits=3)
    scorer = make_group_scorer(recording_worst_group_accuracy, record_dir=str(tmp_path))
    cross_validate(
        RecordingClassifier(str(tmp_path)),
        X,
        y,
        params={"groups": groups},
        scoring=scorer,
        cv=cv,
    )
    fits, scores = _read(tmp_path, "fit"), _read(tmp_path, "score")
    for train, test in cv.split(X, y, groups):
        assert sum(_same_rows(r, y, groups, train) for r in fits) == 1
        assert sum(_same_rows(r, y, groups, test) for r in scores) == 1


# --- the same with HSFMClassifier ------------------------------------------------


class SpyHSFMClassifier(HSFMClassifier):
    """HSFMClassifier keeping a copy of the groups its fit received."""

    def fit(self, X, y, groups=None, *, X_val=None, y_val=None, groups_val=None):
        self.groups_seen_ = None if groups is None else np.asarray(groups).copy()
        return super().fit(
            X, y, groups, X_val=X_val, y_val=y_val, groups_val=groups_val
        )


def hsfm_pipeline(estimator=None):
    return Pipeline(
        [("scale", StandardScaler()), ("clf", estimator or HSFMClassifier(**FAST_HSFM))]
    )


def test_pipeline_passes_groups_to_hsfm(routing):
    X, y, groups = spurious_embeddings()
    pipeline = hsfm_pipeline(SpyHSFMClassifier(**FAST_HSFM)).fit(X, y, groups=groups)
    np.testing.assert_array_equal(pipeline[-1].groups_seen_, groups)
    score = worst_group_scorer(pipeline, X, y, groups=groups)
    assert score == worst_group_accuracy(y, pipeline.predict(X), groups=groups)


def test_grid_search_hsfm_pipeline(routing):
    X, y, groups = spurious_embeddings()
    search = GridSearchCV(
        hsfm_pipeline(),
        {"clf__outer_lr": [0.1, 1.0]},
        scoring={"wga": worst_group_scorer, "acc": "accuracy"},
        refit="wga",
        cv=GroupStratifiedKFold(n_splits=3),
        n_jobs=2,
        error_score="raise",
    ).fit(X, y, groups=groups)
    wga = search.cv_results_["mean_test_wga"]
    acc = search.cv_results_["mean_test_acc"]
    assert np.all((wga >= 0) & (wga <= 1)) and np.all((acc >= 0) & (acc <= 1))
    assert np.all(wga <= acc + 1e-12)  # worst group is never above the mean
    assert search.best_score_ == wga[search.best_index_] == wga.max()
    assert search.best_estimator_.predict(X).shape == y.shape


def test_cross_validate_hsfm_pipeline(routing):
    X, y, groups = spurious_embeddings()
    result = cross_validate(
        hsfm_pipeline(),
        X,
        y,
        params={"groups": groups},
        scoring=worst_group_scorer,
        cv=GroupStratifiedKFold(n_splits=3),
    )
    assert result["test_score"].shape == (3,)
    assert np.all((result["test_score"] >= 0) & (result["test_score"] <= 1))


def test_hsfm_grid_search_without_routing_raises():
    X, y, groups = spurious_embeddings()
    search = GridSearchCV(
        hsfm_pipeline(),
        {"clf__outer_lr": [1.0]},
        scoring=worst_group_scorer,
        cv=GroupStratifiedKFold(n_splits=3),
    )
    with pytest.raises(ValueError, match="enable_metadata_routing=True"):
        search.fit(X, y, groups=groups)


def test_routing_fixture_restored():
    assert sklearn.get_config()["enable_metadata_routing"] is False
