"""skhsfm.inspection: edit statistics, retrieval, CLIP prompt scores, projection,
training curves; their dataclass results and figures; the deprecated aliases."""

import dataclasses
import importlib
import inspect
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from sklearn.utils import Bunch

import skhsfm.inspection
from skhsfm import HSFMClassifier
from skhsfm._sklearn_compat import InvalidParameterError
from skhsfm._utils.table import format_table
from skhsfm.datasets import make_spurious_embeddings
from skhsfm.inspection import (
    EditProjection,
    EditRetrieval,
    EditStatistics,
    PromptScores,
    TrainingCurves,
    edit_projection,
    edit_retrieval,
    edit_statistics,
    mean_difference_direction,
    plot_edit_projection,
    plot_prompt_scores,
    plot_retrieval,
    plot_training_curves,
    prompt_scores,
    training_curves,
)

FAST = dict(n_epochs=4, support_size=8, hard_size=16, inner_steps=5, outer_steps=3)
STRENGTH = 3.0
PROBLEM = dict(core_strength=STRENGTH, spurious_strength=STRENGTH, noise=0.2)


# ------------------------------------------------------------------ fixtures


@pytest.fixture(scope="module")
def synthetic():
    """A support set and a balanced labelled gallery sharing class directions
    ``u`` and attribute directions ``v``; little noise, so the nearest gallery
    rows of a point are from its own (class, attribute) group."""
    support = make_spurious_embeddings(
        20, 16, split="test", as_bunch=True, random_state=0, **PROBLEM
    )
    gallery = make_spurious_embeddings(
        400, 16, split="val", as_bunch=True, random_state=0, **PROBLEM
    )
    return support, gallery


def _fake(support, edits):
    """A look-alike of a fitted HSFM whose edits we choose."""
    return Bunch(
        support_init_=support.data,
        support_edited_=support.data + edits,
        support_labels_=support.target,
        classes_=np.array([0, 1]),
    )


def _attribute_flip(support):
    """Edits that swap each example's attribute component exactly."""
    v, a = support.spurious_directions, support.attribute
    return STRENGTH * (v[1 - a] - v[a])


def _class_flip(support):
    u, y = support.core_directions, support.target
    return STRENGTH * (u[1 - y] - u[y])


@pytest.fixture(scope="module")
def fitted():
    """A real HSFM fit with X_val (hard pool = X_val), tiny settings."""
    X, y, a, g = make_spurious_embeddings(400, 16, random_state=1)
    Xv, yv, av, gv = make_spurious_embeddings(200, 16, split="val", random_state=1)
    clf = HSFMClassifier(random_state=0, **FAST).fit(
        X, y, g, X_val=Xv, y_val=yv, groups_val=gv
    )
    return clf, (X, y, a), (Xv, yv, av)


@pytest.fixture(scope="module")
def fitted_holdout():
    """A real HSFM fit whose hard pool is held out of X."""
    X, y, a, g = make_spurious_embeddings(400, 16, random_state=2)
    clf = HSFMClassifier(random_state=0, **FAST).fit(X, y, groups=g)
    return clf, (X, y, a)


# ----------------------------------------------------------------- direction


def test_mean_difference_direction():
    X = np.array([[0.0, 1.0], [0.0, 3.0], [2.0, 1.0], [2.0, 5.0], [9.0, 9.0]])
    labels = np.array(["a", "a", "b", "b", "c"])
    np.testing.assert_allclose(mean_difference_direction(X[:4], labels[:4]), [2.0, 1.0])
    np.testing.assert_allclose(
        mean_difference_direction(X, labels, source="c", target="a"), [-9.0, -7.0]
    )
    with pytest.raises(ValueError, match="takes 3 values"):
        mean_difference_direction(X, labels)
    with pytest.raises(ValueError, match="both source and target"):
        mean_difference_direction(X, labels, source="a")
    with pytest.raises(ValueError, match="target='z' does not occur"):
        mean_difference_direction(X, labels, source="a", target="z")
    with pytest.raises(ValueError, match="one entry per row of X"):
        mean_difference_direction(X, labels[:3])


# ---------------------------------------------------------------- statistics


def test_statistics_of_edits_along_the_attribute(synthetic):
    support, gallery = synthetic
    edits = _attribute_flip(support)
    fake = _fake(support, edits)
    direction = support.spurious_directions[1] - support.spurious_directions[0]
    stats = edit_statistics(
        fake,
        attribute_direction=direction,
        class_means=STRENGTH * support.core_directions,
    )
    assert isinstance(stats, EditStatistics)
    # the edit moves along +direction for attribute 0 and against it for 1
    expected = np.where(support.attribute == 0, 1.0, -1.0)
    np.testing.assert_allclose(stats.attribute_cosine, expected, atol=1e-12)
    np.testing.assert_allclose(stats.class_cosine, 0.0, atol=1e-12)
    np.testing.assert_allclose(stats.edit_norm, STRENGTH * np.sqrt(2))
    np.testing.assert_allclose(
        stats.relative_norm, stats.edit_norm / np.linalg.norm(support.data, axis=1)
    )
    for c in (0, 1):
        row = stats.summary[c]
        assert row["n"] == np.sum(support.target == c)
        assert row["abs_attribute_cosine"] == pytest.approx(1.0)
        mean_cos = expected[support.target == c].mean()
        assert row["attribute_cosine"] == pytest.approx(mean_cos)
    assert stats.summary["all"]["n"] == 20
    table = repr(stats)
    assert "|cos(attr)|" in table and table.splitlines()[-1].startswith("all")

    # class means estimated from a balanced labelled sample: nearly orthogonal
    near = edit_statistics(fake, X=gallery.data, y=gallery.target)
    assert np.all(np.abs(near.class_cosine) < 0.1)
    assert near.attribute_cosine is None and "cos(attr)" not in repr(near)


def test_statistics_of_edits_towards_the_other_class(synthetic):
    support, _ = synthetic
    fake = _fake(support, _class_flip(support))
    direction = support.spurious_directions[1] - support.spurious_directions[0]
    stats = edit_statistics(
        fake,
        attribute_direction=direction,
        class_means=STRENGTH * support.core_directions,
    )
    np.testing.assert_allclose(stats.class_cosine, 1.0)
    np.testing.assert_allclose(stats.attribute_cosine, 0.0, atol=1e-12)


def test_statistics_edge_cases_and_errors(synthetic):
    support, gallery = synthetic
    edits = _attribute_flip(support)
    edits[0] = 0.0  # an unedited example: its cosines are undefined
    fake = _fake(support, edits)
    stats = edit_statistics(fake, attribute_direction=np.ones(16))
    assert np.isnan(stats.class_cosine[0]) and np.isnan(stats.attribute_cosine[0])
    assert stats.edit_norm[0] == 0.0
    assert np.isfinite(stats.summary["all"]["class_cosine"])

    with pytest.raises(ValueError, match=r"shape \(n_features,\) = \(16,\)"):
        edit_statistics(fake, attribute_direction=np.ones(3))
    with pytest.raises(ValueError, match="finite and non-zero"):
        edit_statistics(fake, attribute_direction=np.zeros(16))
    with pytest.raises(ValueError, match=r"class_means must have shape .*\(2, 16\)"):
        edit_statistics(fake, class_means=np.ones((3, 16)))
    with pytest.raises(ValueError, match="not both"):
        edit_statistics(fake, class_means=np.ones((2, 16)), X=gallery.data)
    with pytest.raises(ValueError, match="pass both X and y"):
        edit_statistics(fake, X=gallery.data)
    with pytest.raises(ValueError, match="class 1 has no row in y"):
        edit_statistics(fake, X=gallery.data, y=np.zeros(400, dtype=int))
    with pytest.raises(ValueError, match="X has 3 features"):
        edit_statistics(fake, X=gallery.data[:, :3], y=gallery.target)
    with pytest.raises(ValueError, match="needs a fitted HSFMClassifier.*Call fit"):
        edit_statistics(HSFMClassifier())
    with pytest.raises(InvalidParameterError, match="attribute_direction"):
        edit_statistics(fake, attribute_direction="up")


# ----------------------------------------------------------------- retrieval


@pytest.mark.parametrize("metric", ["cosine", "euclidean"])
def test_retrieval_of_edits_along_the_attribute(synthetic, metric):
    support, gallery = synthetic
    fake = _fake(support, _attribute_flip(support))
    result = edit_retrieval(
        fake,
        gallery.data,
        gallery_y=gallery.target,
        gallery_attribute=gallery.attribute,
        n_neighbors=5,
        metric=metric,
    )
    assert isinstance(result, EditRetrieval)
    assert result.indices_before.shape == result.indices_after.shape == (20, 5)
    assert np.all(np.diff(result.distances_before, axis=1) >= 0)
    # before: the neighbours are of the example's own group
    np.testing.assert_array_equal(result.attribute_before, support.attribute)
    np.testing.assert_array_equal(result.class_before, support.target)
    # after: the attribute flipped, the class did not
    np.testing.assert_array_equal(result.attribute_after, 1 - support.attribute)
    np.testing.assert_array_equal(result.class_after, support.target)
    assert result.attribute_change_fraction == 1.0
    assert result.class_change_fraction == 0.0
    assert result.by_class[0]["attribute_change_fraction"] == 1.0
    assert result.by_group is None and "attribute changed" in repr(result)

    grouped = edit_retrieval(
        fake,
        gallery.data,
        gallery_y=gallery.target,
        gallery_attribute=gallery.attribute,
        metric=metric,
        support_attribute=support.attribute,
    )
    assert sorted(grouped.by_group) == [(0, 0), (0, 1), (1, 0), (1, 1)]
    for (c, a), row in grouped.by_group.items():
        assert row["n"] == np.sum((support.target == c) & (support.attribute == a))
        assert row["attribute_change_fraction"] == 1.0
        assert row["class_change_fraction"] == 0.0
    assert "class | attribute" in repr(grouped) and "1 | 0" in repr(grouped)


def test_retrieval_of_edits_towards_the_other_class(synthetic):
    support, gallery = synthetic
    fake = _fake(support, _class_flip(support))
    result = edit_retrieval(
        fake,
        gallery.data,
        gallery_y=gallery.target,
        gallery_attribute=gallery.attribute,
    )
    assert result.attribute_change_fraction == 0.0
    assert result.class_change_fraction == 1.0
    only_y = edit_retrieval(fake, gallery.data, gallery_y=gallery.target)
    assert only_y.attribute_change_fraction is None
    assert only_y.attribute_before is None and only_y.class_change_fraction == 1.0
    assert "-" in repr(only_y).splitlines()[-1]


def test_retrieval_metric_majority_ties_and_exclusion():
    gallery = np.array([[1.0, 0.0], [10.0, 1.0], [0.0, 1.0]])
    fake = Bunch(
        support_init_=np.array([[2.0, 0.2]]),
        support_edited_=np.array([[2.0, 0.2]]),
        support_labels_=np.array([0]),
    )
    kw = dict(gallery_y=[0, 1, 2], n_neighbors=1)
    # [2, 0.2] points exactly along [10, 1] but lies closest to [1, 0]
    assert (
        edit_retrieval(fake, gallery, metric="cosine", **kw).indices_before[0, 0] == 1
    )
    assert (
        edit_retrieval(fake, gallery, metric="euclidean", **kw).indices_before[0, 0]
        == 0
    )
    # a 1-1 tie goes to the nearest neighbour's label
    # (neighbours are rows 1 then 0, whichever labels sort first)
    for labels, nearest in (([9, 5, 7], 5), ([5, 9, 7], 9)):
        tie = edit_retrieval(fake, gallery, gallery_y=labels, n_neighbors=2)
        np.testing.assert_array_equal(tie.indices_before[0], [1, 0])
        assert tie.class_before[0] == nearest
    # the support example's own gallery row can be excluded
    own = Bunch(
        support_init_=gallery[:2],
        support_edited_=gallery[:2],
        support_labels_=np.array([0, 1]),
    )
    found = edit_retrieval(own, gallery, gallery_y=[0, 1, 2], n_neighbors=1)
    np.testing.assert_array_equal(found.indices_before[:, 0], [0, 1])
    np.testing.assert_allclose(found.distances_before, 0.0, atol=1e-12)
    skipped = edit_retrieval(
        own, gallery, gallery_y=[0, 1, 2], n_neighbors=2, exclude_indices=[0, -1]
    )
    assert 0 not in skipped.indices_before[0]
    assert skipped.indices_before[1, 0] == 1  # -1: nothing excluded


def test_retrieval_errors(synthetic):
    support, gallery = synthetic
    fake = _fake(support, _attribute_flip(support))
    with pytest.raises(ValueError, match="pass gallery_y, gallery_attribute or both"):
        edit_retrieval(fake, gallery.data)
    with pytest.raises(ValueError, match="gallery_X has 3 features"):
        edit_retrieval(fake, gallery.data[:, :3], gallery_y=gallery.target)
    with pytest.raises(ValueError, match="gallery_y must have one entry per row"):
        edit_retrieval(fake, gallery.data, gallery_y=gallery.target[:5])
    with pytest.raises(ValueError, match="n_neighbors=401 is larger than the 400"):
        edit_retrieval(fake, gallery.data, gallery_y=gallery.target, n_neighbors=401)
    with pytest.raises(ValueError, match="exclude_indices must be integers"):
        edit_retrieval(
            fake, gallery.data, gallery_y=gallery.target, exclude_indices=[0.5] * 20
        )
    with pytest.raises(ValueError, match=r"gallery rows in \[0, 400\) or -1"):
        edit_retrieval(
            fake, gallery.data, gallery_y=gallery.target, exclude_indices=[400] * 20
        )
    with pytest.raises(ValueError, match="support_attribute must have one entry"):
        edit_retrieval(
            fake, gallery.data, gallery_y=gallery.target, support_attribute=[0, 1]
        )
    with pytest.raises(InvalidParameterError, match="metric"):
        edit_retrieval(fake, gallery.data, gallery_y=gallery.target, metric="l1")
    with pytest.raises(InvalidParameterError, match="n_neighbors"):
        edit_retrieval(fake, gallery.data, gallery_y=gallery.target, n_neighbors=0)


# --------------------------------------------------------------- prompt scores


def test_prompt_scores_known_values():
    fake = Bunch(
        support_init_=np.array([[3.0, 0.0], [0.0, 2.0]]),
        support_edited_=np.array([[0.0, 5.0], [0.0, 1.0]]),
        support_labels_=np.array(["bird", "fish"]),
    )
    scores = prompt_scores(
        fake, ["water", "land"], text_embeddings=np.eye(2), temperature=2.0
    )
    assert isinstance(scores, PromptScores)
    p = 1.0 / (1.0 + np.exp(-2.0))  # softmax(2 * [1, 0])[0]
    np.testing.assert_allclose(scores.probabilities_before, [[p, 1 - p], [1 - p, p]])
    np.testing.assert_allclose(scores.probabilities_after, [[1 - p, p], [1 - p, p]])
    np.testing.assert_array_equal(scores.top_changed, [True, False])
    assert scores.top_change_fraction == 0.5
    assert scores.by_class["bird"]["top_change_fraction"] == 1.0
    np.testing.assert_allclose(scores.mean_after, [[1 - p, p], [1 - p, p]])
    assert "water" in repr(scores) and "bird (n=1)" in repr(scores)

    # a dict averages several prompts per name after normalisation
    grouped = prompt_scores(
        fake,
        {"wet": ["sea", "lake"], "dry": "desert"},
        text_embeddings=np.array([[2.0, 0.0], [0.0, 1.0], [-1.0, 0.0]]),
        temperature=1.0,
    )
    assert grouped.prompt_names == ["wet", "dry"]
    cos = np.array([1 / np.sqrt(2), -1.0])  # [3, 0] vs (1, 1)/sqrt2 and (-1, 0)
    expected = np.exp(cos) / np.exp(cos).sum()
    np.testing.assert_allclose(grouped.probabilities_before[0], expected)


def test_prompt_scores_errors():
    fake = Bunch(
        support_init_=np.ones((2, 4)),
        support_edited_=np.ones((2, 4)),
        support_labels_=np.array([0, 1]),
    )
    text = np.eye(4)[:2]
    with pytest.raises(ValueError, match="exactly one of embedder"):
        prompt_scores(fake, ["a", "b"])
    with pytest.raises(ValueError, match="exactly one of embedder"):
        prompt_scores(fake, ["a", "b"], embedder=object(), text_embeddings=text)
    with pytest.raises(ValueError, match="must be a CLIP BackboneEmbedder"):
        prompt_scores(fake, ["a", "b"], embedder=object())
    with pytest.raises(ValueError, match="3 rows for 2 prompts"):
        prompt_scores(fake, ["a", "b"], text_embeddings=np.eye(4)[:3])
    with pytest.raises(ValueError, match="8 features but the support embeddings"):
        prompt_scores(fake, ["a", "b"], text_embeddings=np.eye(8)[:2])
    with pytest.raises(ValueError, match="at least two non-empty prompts"):
        prompt_scores(fake, ["a"], text_embeddings=text[:1])
    with pytest.raises(TypeError, match="prompts must be strings"):
        prompt_scores(fake, ["a", 3], text_embeddings=text)
    with pytest.raises(InvalidParameterError, match="prompts"):
        prompt_scores(fake, "water", text_embeddings=text)
    with pytest.raises(InvalidParameterError, match="temperature"):
        prompt_scores(fake, ["a", "b"], text_embeddings=text, temperature=0)


def test_prompt_scores_with_tiny_clip(tiny_clip, tmp_path):
    """Random weights: only shapes and invariants can be checked."""
    from skhsfm.embedding import BackboneEmbedder

    rng = np.random.RandomState(0)
    images = rng.randint(0, 256, size=(40, 32, 32, 3)).astype(np.uint8)
    embedder = BackboneEmbedder(model_name=tiny_clip, pretrained=None, device="cpu")
    X = embedder.transform(images)
    y = np.repeat([0, 1], 20)
    clf = HSFMClassifier(random_state=0, **FAST).fit(X, y)
    prompts = ["a photo with a water background", "a photo with a land background"]
    scores = prompt_scores(clf, prompts, embedder=embedder)
    n_support = clf.support_init_.shape[0]
    for probs in (scores.probabilities_before, scores.probabilities_after):
        assert probs.shape == (n_support, 2)
        assert np.all((probs >= 0) & (probs <= 1))
        np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-12)
    assert scores.mean_before.shape == (2, 2)
    # the same as scoring precomputed text embeddings; cosine ignores the scale
    text = BackboneEmbedder(
        model_name=tiny_clip, pretrained=None, device="cpu", normalize=True
    ).encode_text(prompts)
    again = prompt_scores(clf, prompts, text_embeddings=7.0 * text)
    np.testing.assert_allclose(
        again.probabilities_after, scores.probabilities_after, rtol=1e-5, atol=1e-6
    )
    # a higher temperature sharpens every row
    sharp = prompt_scores(clf, prompts, embedder=embedder, temperature=1000.0)
    assert np.all(
        sharp.probabilities_before.max(1) >= scores.probabilities_before.max(1) - 1e-12
    )
    fig = plot_prompt_scores(scores, path=tmp_path / "prompts.png")
    assert len([ax for ax in fig.axes if ax.get_visible()]) == 2
    _assert_png(tmp_path / "prompts.png")


# ------------------------------------------------------------------- figures


def _assert_png(path):
    data = path.read_bytes()
    assert len(data) > 1000 and data[:8] == b"\x89PNG\r\n\x1a\n"


def test_figures_from_a_fitted_classifier(fitted, tmp_path):
    from matplotlib.figure import Figure

    clf, (X, y, a), (Xv, yv, av) = fitted
    stats = edit_statistics(
        clf, attribute_direction=mean_difference_direction(Xv, av), X=X, y=y
    )
    assert stats.edit_norm.shape == (clf.support_init_.shape[0],)

    fig = plot_training_curves(clf, path=tmp_path / "curves.png")
    assert isinstance(fig, Figure) and len(fig.axes) == 2
    _assert_png(tmp_path / "curves.png")
    # the selected epoch is marked on both panels
    for ax in fig.axes:
        assert any(
            list(line.get_xdata()) == [clf.best_epoch_] * 2 for line in ax.get_lines()
        )

    projection = edit_projection(
        clf, Xv, y=yv, attribute=av, support_attribute=a[clf.support_indices_]
    )
    fig = plot_edit_projection(
        projection, class_names=["zero", "one"], path=tmp_path / "projection.png"
    )
    assert isinstance(fig, Figure)
    legend = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert "zero" in legend and "a=1" in legend and "support, edited" in legend
    _assert_png(tmp_path / "projection.png")

    retrieval = edit_retrieval(clf, Xv, gallery_y=yv, gallery_attribute=av)
    rng = np.random.RandomState(0)
    images = rng.randint(0, 256, size=(X.shape[0], 8, 8, 3)).astype(np.uint8)
    gallery_images = rng.randint(0, 256, size=(Xv.shape[0], 8, 8)).astype(np.uint8)
    fig = plot_retrieval(
        retrieval,
        images[clf.support_indices_],
        gallery_images,
        n_examples=4,
        n_shown=2,
        path=tmp_path / "retrieval.png",
    )
    assert len(fig.axes) == 4 * 5
    assert fig.axes[0].get_title().startswith("source")
    _assert_png(tmp_path / "retrieval.png")
    fig = plot_retrieval(
        retrieval, images[clf.support_indices_], gallery_images, examples=[3]
    )
    assert len(fig.axes) == 3 and "support #3" in fig.axes[0].get_title()


def test_plot_retrieval_default_examples_and_errors(synthetic):
    support, gallery = synthetic
    edits = _attribute_flip(support)
    edits[support.target == 0] = 0.0  # only class 1 is edited
    result = edit_retrieval(
        _fake(support, edits),
        gallery.data,
        gallery_y=gallery.target,
        gallery_attribute=gallery.attribute,
    )
    images = np.zeros((400, 4, 4, 3), dtype=np.uint8)
    fig = plot_retrieval(result, images[:20], images, n_examples=4)
    shown = [int(ax.get_title().split("#")[1].split("\n")[0]) for ax in fig.axes[::3]]
    # alternating classes, the changed (edited) class-1 examples first
    assert [support.target[i] for i in shown] == [0, 1, 0, 1]
    assert all(result.attribute_changed[i] for i in shown[1::2])
    with pytest.raises(ValueError, match="support_images has 19 images"):
        plot_retrieval(result, images[:19], images)
    with pytest.raises(ValueError, match="gallery_images has 10 images"):
        plot_retrieval(result, images[:20], images[:10])
    with pytest.raises(ValueError, match="n_shown must be between 1 and"):
        plot_retrieval(result, images[:20], images, n_shown=6)
    with pytest.raises(ValueError, match=r"examples must be support rows in \[0, 20\)"):
        plot_retrieval(result, images[:20], images, examples=[20])


def test_projection_resolves_the_hard_set(fitted, fitted_holdout, tmp_path):
    clf, (X, y, a), (Xv, yv, av) = fitted
    proj = edit_projection(clf, Xv, y=yv, attribute=av)
    np.testing.assert_array_equal(proj.hard_indices, clf.hard_set_indices_)
    np.testing.assert_array_equal(proj.hard_labels, yv[clf.hard_set_indices_])
    assert proj.support_attribute is None  # X_val gives no support attributes
    assert proj.support_init.shape == proj.support_edited.shape
    assert proj.support_init.shape == (clf.support_init_.shape[0], 2)
    assert proj.explained_variance_ratio.shape == (2,)

    clf, (X, y, a) = fitted_holdout
    assert clf.hard_pool_indices_ is not None
    proj = edit_projection(clf, X, y=y, attribute=a)
    rows = clf.hard_pool_indices_[clf.hard_set_indices_]
    np.testing.assert_array_equal(proj.hard_indices, rows)
    # the support rows are never in the hard pool; their attribute comes from X
    assert not np.intersect1d(rows, clf.support_indices_).size
    np.testing.assert_array_equal(proj.support_attribute, a[clf.support_indices_])
    _ = plot_edit_projection(proj, path=tmp_path / "p.png")
    _assert_png(tmp_path / "p.png")

    with pytest.raises(ValueError, match="not the X the classifier was fit on"):
        edit_projection(clf, X[::-1])
    with pytest.raises(ValueError, match="X has 10 rows .* pass the X passed to fit"):
        edit_projection(clf, X[:10])
    with pytest.raises(ValueError, match="needs a fitted HSFMClassifier with"):
        edit_projection(
            Bunch(support_init_=X[:2], support_edited_=X[:2], support_labels_=y[:2]),
            X,
        )
    with pytest.raises(ValueError, match="plot_training_curves needs a fitted"):
        plot_training_curves(HSFMClassifier())


def test_import_and_figures_need_no_pyplot_or_torch():
    code = textwrap.dedent(
        """
        import sys
        import numpy as np
        from sklearn.utils import Bunch
        import skhsfm.inspection as inspection
        assert "matplotlib" not in sys.modules and "torch" not in sys.modules
        fake = Bunch(
            history_={"epoch": [1, 2], "loss": [1.0, 0.5],
                      "worst_group_accuracy": [0.5, 0.7],
                      "mean_accuracy": [0.8, 0.9]},
            best_epoch_=2,
        )
        inspection.plot_training_curves(fake)
        assert "matplotlib.pyplot" not in sys.modules
        assert "torch" not in sys.modules
        import warnings
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            import skhsfm.inspect
        assert [w.category for w in caught] == [FutureWarning], caught
        assert "renamed skhsfm.inspection" in str(caught[0].message)
        assert skhsfm.inspect.plot_training_curves is inspection.plot_training_curves
        print("ok")
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "ok"


def test_projection_frames_the_data_when_edits_go_far(synthetic):
    support, gallery = synthetic
    edits = np.zeros_like(support.data)
    edits[:3] = 100.0 * support.data[:3]  # three edits go far out
    fake = _fake(support, edits)
    fake.update(hard_set_indices_=np.arange(50), hard_pool_indices_=None)
    proj = edit_projection(fake, gallery.data)
    framed = plot_edit_projection(proj)
    ax = framed.axes[0]
    assert "3 edited points lie outside the frame" in ax.get_title()
    data = np.vstack([proj.support_init, proj.hard])
    (x0, x1), (y0, y1) = ax.get_xlim(), ax.get_ylim()
    edited = proj.support_edited
    inside = (edited[:, 0] >= x0) & (edited[:, 0] <= x1)
    inside &= (edited[:, 1] >= y0) & (edited[:, 1] <= y1)
    np.testing.assert_array_equal(np.flatnonzero(~inside), [0, 1, 2])
    assert ax.get_xlim()[0] <= data[:, 0].min() and ax.get_xlim()[1] >= data[:, 0].max()
    everything = plot_edit_projection(proj, limits="all")
    assert "outside the frame" not in everything.axes[0].get_title()
    (x0, x1), (y0, y1) = everything.axes[0].get_xlim(), everything.axes[0].get_ylim()
    assert x0 <= edited[:, 0].min() and x1 >= edited[:, 0].max()
    assert y0 <= edited[:, 1].min() and y1 >= edited[:, 1].max()
    with pytest.raises(ValueError, match="limits must be 'auto', 'all' or 'data'"):
        plot_edit_projection(proj, limits="some")


# ------------------------------------------------- results, .plot, deprecations


@pytest.mark.parametrize(
    "cls, fields",
    [
        (
            EditStatistics,
            ["classes", "labels", "edit_norm", "relative_norm", "class_cosine"],
        ),
        (EditRetrieval, ["labels", "indices_before", "n_neighbors", "metric"]),
        (PromptScores, ["prompt_names", "labels", "probabilities_before"]),
        (EditProjection, ["support_init", "support_edited", "hard", "epoch"]),
        (TrainingCurves, ["epoch", "loss", "best_epoch", "seconds"]),
    ],
)
def test_results_are_dataclasses_with_explicit_fields(cls, fields):
    assert dataclasses.is_dataclass(cls)
    parameters = inspect.signature(cls).parameters
    assert all(p.kind is not p.VAR_KEYWORD for p in parameters.values())
    assert set(fields) <= set(parameters)
    assert cls is EditStatistics or callable(cls.plot)  # statistics print only


def test_edit_statistics_built_directly_prints_through_format_table():
    stats = EditStatistics(
        classes=np.array([0, 1]),
        labels=np.array([0, 1, 1]),
        edit_norm=np.array([1.0, 2.0, 4.0]),
        relative_norm=np.array([0.5, 1.0, np.inf]),
        class_cosine=np.array([0.0, np.nan, 1.0]),
    )
    assert stats.attribute_cosine is None
    assert stats.summary[1] == pytest.approx(
        {
            "n": 2,
            "edit_norm": 3.0,
            "relative_norm": 1.0,  # inf skipped
            "class_cosine": 1.0,  # nan skipped
            "attribute_cosine": np.nan,
            "abs_attribute_cosine": np.nan,
        },
        nan_ok=True,
    )
    expected = format_table(
        ["class", "n", "edit norm", "relative", "cos(class)"],
        [
            ["0", 1, 1.0, 0.5, 0.0],
            ["1", 2, 3.0, 1.0, 1.0],
            ["all", 3, 7.0 / 3, 0.75, 0.5],
        ],
        title="EditStatistics: 3 support examples",
    )
    assert repr(stats) == expected


def _figure_summary(fig):
    """What two figures drawn from one result must share."""
    out = []
    for ax in fig.axes:
        legend = ax.get_legend()
        out.append(
            (
                ax.get_title(),
                ax.get_xlim(),
                ax.get_ylim(),
                [t.get_text() for t in legend.get_texts()] if legend else None,
                [
                    np.asarray(c.get_offsets()).round(12).tolist()
                    for c in ax.collections
                ],
            )
        )
    return out


def test_plot_methods_draw_the_plot_functions_figures(fitted):
    clf, (X, y, a), (Xv, yv, av) = fitted
    projection = edit_projection(clf, Xv, y=yv, attribute=av)
    assert isinstance(projection, EditProjection)
    assert projection.epoch == clf.best_epoch_
    assert "EditProjection (epoch" in repr(projection)
    assert _figure_summary(projection.plot(limits="all")) == _figure_summary(
        plot_edit_projection(projection, limits="all")
    )

    retrieval = edit_retrieval(clf, Xv, gallery_y=yv, gallery_attribute=av)
    images = np.zeros((Xv.shape[0], 4, 4), dtype=np.uint8)
    support_images = images[: clf.support_init_.shape[0]]
    method = retrieval.plot(support_images, images, n_examples=2)
    function = plot_retrieval(retrieval, support_images, images, n_examples=2)
    assert len(method.axes) == 2 * 3
    assert _figure_summary(method) == _figure_summary(function)

    curves = training_curves(clf)
    assert _figure_summary(curves.plot()) == _figure_summary(
        plot_training_curves(curves)
    )
    assert _figure_summary(plot_training_curves(clf)) == _figure_summary(curves.plot())

    fake = Bunch(
        support_init_=np.array([[3.0, 0.0], [0.0, 2.0]]),
        support_edited_=np.array([[0.0, 5.0], [0.0, 1.0]]),
        support_labels_=np.array(["bird", "fish"]),
    )
    scores = prompt_scores(fake, ["water", "land"], text_embeddings=np.eye(2))
    assert _figure_summary(scores.plot(class_names={"bird": "B"})) == (
        _figure_summary(plot_prompt_scores(scores, class_names={"bird": "B"}))
    )
    assert scores.plot().axes[0].get_title().startswith("class=bird (n=1)")


def test_plots_take_result_objects(fitted):
    clf, _, (Xv, yv, av) = fitted
    with pytest.raises(TypeError, match="takes the EditRetrieval returned by"):
        plot_retrieval(clf, [], [])
    with pytest.raises(TypeError, match="takes the PromptScores returned by"):
        plot_prompt_scores(clf)
    with pytest.raises(TypeError, match="takes the EditProjection returned by"):
        plot_edit_projection(clf)
    projection = edit_projection(clf, Xv)
    with pytest.raises(TypeError, match="X, y belong to edit_projection"):
        plot_edit_projection(projection, Xv, y=yv)


def test_plot_edit_projection_from_an_estimator_is_deprecated(fitted, tmp_path):
    clf, (X, y, a), (Xv, yv, av) = fitted
    kw = dict(y=yv, attribute=av, support_attribute=a[clf.support_indices_])
    with pytest.warns(FutureWarning, match=r"call edit_projection\(estimator, X"):
        old = plot_edit_projection(
            clf, Xv, class_names=["zero", "one"], path=tmp_path / "old.png", **kw
        )
    new = edit_projection(clf, Xv, **kw).plot(class_names=["zero", "one"])
    assert _figure_summary(old) == _figure_summary(new)
    assert "zero" in _figure_summary(old)[0][3]
    _assert_png(tmp_path / "old.png")
    # a wrong limits is reported before anything is computed or warned
    with pytest.raises(ValueError, match="limits must be"):
        plot_edit_projection(clf, Xv, limits="none")


def test_inspect_alias_module_warns_and_reexports():
    """skhsfm.inspect stays one release; reload so that the warning is seen even
    when another test imported it first."""
    match = r"skhsfm.inspect is deprecated in 0.2 .* renamed skhsfm.inspection"
    with pytest.warns(FutureWarning, match=match):
        if "skhsfm.inspect" in sys.modules:
            alias = importlib.reload(sys.modules["skhsfm.inspect"])
        else:
            alias = importlib.import_module("skhsfm.inspect")
    assert alias.__all__ == skhsfm.inspection.__all__
    for name in skhsfm.inspection.__all__:
        assert getattr(alias, name) is getattr(skhsfm.inspection, name)
