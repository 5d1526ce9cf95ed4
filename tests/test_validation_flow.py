"""A fixed validation set through Pipeline and GridSearchCV.

Every head requests ``X_val``, ``y_val`` and ``groups_val`` by default under
metadata routing; a Pipeline with ``transform_input=["X_val"]`` embeds them with
its earlier steps; one-element tuples keep a validation set as long as ``X``
whole under cross-validation (scikit-learn slices same-length fit parameters).
"""

import warnings

import numpy as np
import pytest
import sklearn
from sklearn.base import clone
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from skhsfm import HSFMClassifier
from skhsfm.baselines import AFRClassifier, DFRClassifier, ERMHeadClassifier
from skhsfm.datasets import make_spurious_embeddings
from skhsfm.embedding import BackboneEmbedder
from skhsfm.metrics import worst_group_scorer
from skhsfm.model_selection import GroupStratifiedKFold

FAST = dict(
    n_epochs=2, support_size=4, hard_size=8, inner_steps=3, outer_steps=2,
    device="cpu", random_state=0,
)  # fmt: skip
HEADS = [
    HSFMClassifier(**FAST),
    DFRClassifier(n_models=2, random_state=0),
    AFRClassifier(gamma=1.0, reg_lambda=0.0, n_epochs=5, device="cpu", random_state=0),
    ERMHeadClassifier(),
]


@pytest.fixture(scope="module")
def data(grouped_data):
    """The shared training and validation splits as (X, y, _, groups) pairs."""
    X, y, g, Xv, yv, gv = grouped_data
    return (X, y, None, g), (Xv, yv, None, gv)


class Spy:
    """Records the held-out rows each fit receives."""

    def __init__(self, head):
        self.head = head
        self.seen = []

    def __enter__(self):
        original = type(self.head)._fit
        seen = self.seen

        def _fit(est, X, y, groups, X_val, y_val, groups_val):
            val = X_val[0] if isinstance(X_val, tuple) else X_val
            seen.append((len(X), None if val is None else len(val)))
            return original(est, X, y, groups, X_val, y_val, groups_val)

        self._original = original
        type(self.head)._fit = _fit
        return self

    def __exit__(self, *exc):
        type(self.head)._fit = self._original


@pytest.mark.parametrize("head", HEADS, ids=lambda h: type(h).__name__)
def test_every_head_requests_the_validation_set_by_default(head):
    with sklearn.config_context(enable_metadata_routing=True):
        request = head.get_metadata_routing().fit.requests
    assert {k: request[k] for k in ("groups", "X_val", "y_val", "groups_val")} == {
        "groups": True,
        "X_val": True,
        "y_val": True,
        "groups_val": True,
    }


@pytest.mark.parametrize("head", HEADS[:3], ids=lambda h: type(h).__name__)
def test_grid_search_routes_a_fixed_validation_set(data, head):
    (X, y, _, g), (Xv, yv, _, gv) = data
    search = GridSearchCV(
        clone(head), {"random_state": [0]}, scoring=worst_group_scorer,
        cv=GroupStratifiedKFold(3), error_score="raise",
    )  # fmt: skip
    with Spy(head) as spy, sklearn.config_context(enable_metadata_routing=True):
        search.fit(X, y, groups=g, X_val=Xv, y_val=yv, groups_val=gv)
    # every fold and the refit got the whole validation set
    assert spy.seen == [(160, 120)] * 3 + [(240, 120)]
    expected = clone(head).fit(X, y, g, X_val=Xv, y_val=yv, groups_val=gv)
    np.testing.assert_allclose(search.best_estimator_.coef_, expected.coef_)


def test_same_length_validation_set_is_sliced_unless_wrapped(data):
    (X, y, _, g), _ = data
    Xv, yv, _, gv = make_spurious_embeddings(240, 8, split="val", random_state=1)
    head = HSFMClassifier(**FAST)
    search = GridSearchCV(
        head, {"random_state": [0]}, scoring=worst_group_scorer,
        cv=GroupStratifiedKFold(3), error_score="raise",
    )  # fmt: skip
    with sklearn.config_context(enable_metadata_routing=True):
        with Spy(head) as spy, pytest.warns(UserWarning, match="rows as X"):
            search.fit(X, y, groups=g, X_val=Xv, y_val=yv, groups_val=gv)
        assert spy.seen[0] == (160, 160)  # scikit-learn cut the fixed set per fold
        with Spy(head) as spy, warnings.catch_warnings():
            warnings.simplefilter("error")
            search.fit(X, y, groups=g, X_val=(Xv,), y_val=(yv,), groups_val=(gv,))
        assert spy.seen == [(160, 240)] * 3 + [(240, 240)]
    # the tuple form is the same fit as the plain arrays
    a = HSFMClassifier(**FAST).fit(X, y, g, X_val=(Xv,), y_val=(yv,), groups_val=(gv,))
    with pytest.warns(UserWarning, match="rows as X"):
        b = HSFMClassifier(**FAST).fit(X, y, g, X_val=Xv, y_val=yv, groups_val=gv)
    np.testing.assert_array_equal(a.coef_, b.coef_)


def test_tuples_of_other_lengths_are_refused(data):
    (X, y, _, g), (Xv, yv, _, gv) = data
    with pytest.raises(ValueError, match="X_val is a tuple of 2 items"):
        HSFMClassifier(**FAST).fit(X, y, g, X_val=(Xv, Xv), y_val=yv)


def test_pipeline_transforms_the_validation_set(data):
    (X, y, _, g), (Xv, yv, _, gv) = data
    head = HSFMClassifier(**FAST)
    pipe = Pipeline(
        [("scale", StandardScaler()), ("clf", head)], transform_input=["X_val"]
    )
    with sklearn.config_context(enable_metadata_routing=True):
        pipe.fit(X, y, groups=g, X_val=Xv, y_val=yv, groups_val=gv)
    scaler = StandardScaler().fit(X)
    by_hand = HSFMClassifier(**FAST).fit(
        scaler.transform(X), y, g, X_val=scaler.transform(Xv), y_val=yv, groups_val=gv
    )
    np.testing.assert_allclose(pipe[-1].coef_, by_hand.coef_)


def _images(n, seed):
    """Tiny RGB images whose class shows in one colour channel."""
    rng = np.random.RandomState(seed)
    y = np.arange(n) % 2
    attribute = (rng.rand(n) < 0.5).astype(int)
    images = rng.randint(0, 80, size=(n, 32, 32, 3)).astype(np.uint8)
    images[..., 0] += (120 * y).astype(np.uint8)[:, None, None]
    images[..., 2] += (120 * attribute).astype(np.uint8)[:, None, None]
    return images, y, 2 * y + attribute


def test_embedder_pipeline_grid_search_with_a_fixed_validation_set(tiny_clip):
    """The whole flow on images: the validation images are embedded by the
    pipeline's embedder, stay whole in every fold, and the best model equals the
    one fit by hand on embedded validation data."""
    images, y, g = _images(48, seed=0)
    images_val, y_val, g_val = _images(20, seed=1)
    embedder = BackboneEmbedder(
        "open_clip", model_name=tiny_clip, pretrained=None, device="cpu",
        batch_size=64, show_progress_bar=False,
    )  # fmt: skip
    pipe = Pipeline(
        [("embed", embedder), ("clf", HSFMClassifier(**FAST))],
        transform_input=["X_val"],
    )
    search = GridSearchCV(
        pipe, {"clf__inner_lr": [1e-3, 1e-2]}, scoring=worst_group_scorer,
        cv=GroupStratifiedKFold(2), error_score="raise",
    )  # fmt: skip
    with sklearn.config_context(enable_metadata_routing=True):
        search.fit(images, y, groups=g, X_val=images_val, y_val=y_val, groups_val=g_val)
    best = search.best_params_["clf__inner_lr"]
    E, E_val = embedder.fit_transform(images), embedder.transform(images_val)
    by_hand = HSFMClassifier(**{**FAST, "inner_lr": best}).fit(
        E, y, g, X_val=E_val, y_val=y_val, groups_val=g_val
    )
    np.testing.assert_allclose(search.best_estimator_[-1].coef_, by_hand.coef_)
    np.testing.assert_array_equal(search.predict(images_val), by_hand.predict(E_val))
