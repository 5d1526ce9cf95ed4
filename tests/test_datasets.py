"""Tests for skhsfm.datasets: dominoes, its CNN, synthetic embeddings, loaders."""

import csv
import os
import subprocess
import sys

import numpy as np
import pytest
from sklearn.datasets import load_digits
from sklearn.linear_model import LogisticRegression

from skhsfm import LinearHead
from skhsfm.datasets import (
    load_celeba,
    load_dominoes_arrays,
    load_metashift,
    load_waterbirds,
    make_dominoes,
    make_spurious_embeddings,
)
from skhsfm.metrics import worst_group_accuracy

SPLITS = ("train", "val", "test")


# ---------------------------------------------------------------------- dominoes
@pytest.fixture(scope="module")
def dominoes():
    return make_dominoes(600, 200, 300, random_state=0)


def test_dominoes_shapes_and_dtypes(dominoes):
    for name, n in zip(SPLITS, (600, 200, 300)):
        split = dominoes[name]
        assert split.images.shape == (n, 32, 32, 3)
        assert split.images.dtype == np.uint8
        for key in ("target", "attribute", "group", "digit", "source_index"):
            assert split[key].shape == (n,)
            assert split[key].dtype == np.int64
        np.testing.assert_array_equal(split.group, 2 * split.target + split.attribute)
        np.testing.assert_array_equal(split.target, (split.digit >= 5).astype(int))
        assert set(split.group) == {0, 1, 2, 3}
    assert dominoes.group_names == [
        "digit<5|china",
        "digit<5|flower",
        "digit>=5|china",
        "digit>=5|flower",
    ]
    assert dominoes.train.group_names == dominoes.group_names
    assert "Dominoes" in dominoes.DESCR


def test_dominoes_default_sizes_and_correlation():
    data = make_dominoes(random_state=1)
    assert [data[s].images.shape[0] for s in SPLITS] == [4800, 1200, 2400]
    train = data.train
    agree = np.mean(train.attribute == train.target % 2)
    assert abs(agree - 0.95) < 0.005
    # Classes are balanced in every split.
    for s in SPLITS:
        counts = np.bincount(data[s].target)
        assert counts.max() - counts.min() <= 1


@pytest.mark.parametrize("p", [0.5, 0.8, 1.0])
def test_dominoes_train_correlation_follows_parameter(p):
    train = make_dominoes(400, 20, 20, spurious_correlation=p, random_state=0).train
    for c in (0, 1):
        in_class = train.attribute[train.target == c]
        assert abs(np.mean(in_class == c) - p) <= 1 / in_class.shape[0]


def test_dominoes_val_test_balanced_within_class(dominoes):
    for s in ("val", "test"):
        split = dominoes[s]
        for c in (0, 1):
            counts = np.bincount(split.attribute[split.target == c], minlength=2)
            assert abs(counts[0] - counts[1]) <= 1


def test_dominoes_digit_sources_disjoint(dominoes):
    sources = [set(dominoes[s].source_index) for s in SPLITS]
    assert not sources[0] & sources[1]
    assert not sources[0] & sources[2]
    assert not sources[1] & sources[2]
    digits = load_digits()
    for s in SPLITS:
        split = dominoes[s]
        np.testing.assert_array_equal(digits.target[split.source_index], split.digit)
        # Every digit value appears in every split.
        assert set(split.digit) == set(range(10))


def test_dominoes_bottom_half_is_the_upsampled_digit(dominoes):
    digits = load_digits().images
    split = dominoes.train
    for i in range(20):
        bottom = split.images[i, 16:]
        assert np.array_equal(bottom[..., 0], bottom[..., 1])
        assert np.array_equal(bottom[..., 0], bottom[..., 2])
        digit = np.rint(digits[split.source_index[i]] * 255 / 16).astype(np.uint8)
        big = digit.repeat(2, axis=0).repeat(2, axis=1)
        found = [
            off
            for off in range(17)
            if np.array_equal(bottom[:, off : off + 16, 0], big)
            and bottom[..., 0].sum() == big.astype(int).sum()
        ]
        assert found, f"sample {i}: digit not found in the bottom half"


def test_dominoes_photo_half_depends_on_attribute(dominoes):
    # flower.jpg is much redder than china.jpg: the attribute is easy to read.
    top = dominoes.test.images[:, :16].astype(float)
    redness = top[..., 0].mean(axis=(1, 2)) - top[..., 2].mean(axis=(1, 2))
    attr = dominoes.test.attribute
    assert redness[attr == 1].mean() > redness[attr == 0].mean() + 20
    assert top.std() > 10


def test_dominoes_deterministic_bit_for_bit(dominoes):
    again = make_dominoes(600, 200, 300, random_state=0)
    other = make_dominoes(600, 200, 300, random_state=1)
    for s in SPLITS:
        for key in ("images", "target", "attribute", "group", "source_index"):
            np.testing.assert_array_equal(dominoes[s][key], again[s][key])
        assert not np.array_equal(dominoes[s].images, other[s].images)


def test_dominoes_more_classes_and_bigger_images():
    data = make_dominoes(200, 100, 100, n_classes=10, image_size=64, random_state=0)
    split = data.train
    assert split.images.shape == (200, 64, 64, 3)
    np.testing.assert_array_equal(split.target, split.digit)
    np.testing.assert_array_equal(split.group, 2 * split.target + split.attribute)
    assert len(data.group_names) == 20
    assert data.group_names[3] == "digit=1|flower"
    five = make_dominoes(100, 20, 20, n_classes=5, random_state=0)
    np.testing.assert_array_equal(five.train.target, five.train.digit // 2)
    assert five.target_names[0] == "digit0-1"


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"n_classes": 3}, "n_classes must be 2, 5 or 10"),
        ({"image_size": 40}, "image_size must be a multiple of 16"),
        ({"n_val": 3}, "n_val must be at least 2 \\* n_classes = 4"),
        ({"spurious_correlation": 1.5}, "spurious_correlation"),
        ({"n_train": 0}, "n_train"),
    ],
)
def test_dominoes_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        make_dominoes(**{"n_train": 100, "n_val": 20, "n_test": 20, **kwargs})


def test_import_does_not_load_the_cnn_module():
    code = (
        "import sys, skhsfm.datasets as d\n"
        "assert 'skhsfm.datasets._dominoes_cnn' not in sys.modules\n"
        "assert 'torch' not in sys.modules\n"
        "d.train_dominoes_backbone\n"
        "assert 'skhsfm.datasets._dominoes_cnn' in sys.modules\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr


# ------------------------------------------------------------- the dominoes CNN
TINY_CNN = dict(batch_size=32, width=4, embedding_dim=8, device="cpu")


@pytest.fixture(scope="module")
def tiny():
    return make_dominoes(96, 24, 24, random_state=0)


@pytest.fixture(scope="module")
def backbone(tiny):
    from skhsfm.datasets import train_dominoes_backbone

    return train_dominoes_backbone(tiny.train, n_epochs=1, random_state=0, **TINY_CNN)


def test_backbone_shapes(backbone, tiny):
    import torch

    from skhsfm.datasets import ERMBackbone, ImageTransform

    assert isinstance(backbone, ERMBackbone)
    assert isinstance(backbone.preprocess, ImageTransform)
    assert not backbone.training
    assert len(backbone.loss_curve) == 1 and np.isfinite(backbone.loss_curve[0])
    x = backbone.preprocess.batch(tiny.val.images)
    assert x.shape == (24, 3, 32, 32) and x.dtype == torch.float32
    with torch.no_grad():
        emb = backbone(x)
    assert emb.shape == (24, 8)
    assert isinstance(backbone.head, torch.nn.Linear)
    assert backbone.head.in_features == 8 and backbone.head.out_features == 2
    head = backbone.linear_head()
    assert isinstance(head, LinearHead)
    assert head.coef.shape == (1, 8) and head.intercept.shape == (1,)
    assert isinstance(head.coef, np.ndarray)
    W, b = head.softmax_weights()
    assert W.shape == (2, 8) and b.shape == (2,)
    assert head.classes.tolist() == [0, 1]


def test_backbone_embed_and_predict_agree_with_head(backbone, tiny):
    emb = backbone.embed(tiny.test.images, batch_size=10)
    assert emb.shape == (24, 8) and emb.dtype == np.float32
    coef = backbone.head.weight.detach().numpy()
    intercept = backbone.head.bias.detach().numpy()
    pred = backbone.predict(tiny.test.images)
    np.testing.assert_array_equal(pred, np.argmax(emb @ coef.T + intercept, axis=1))
    head = backbone.linear_head()
    margin = head.decision_function(emb)
    assert margin.shape == (24,)
    sure = np.abs(margin) > 1e-5
    np.testing.assert_array_equal(pred[sure], (margin > 0)[sure])
    np.testing.assert_array_equal(head.predict(emb)[sure], pred[sure])


def test_head_weights_is_deprecated_and_still_works(backbone):
    head = backbone.linear_head()
    with pytest.warns(FutureWarning, match=r"linear_head\(\)"):
        coef, intercept = backbone.head_weights()
    assert coef.shape == (2, 8) and intercept.shape == (2,)
    assert isinstance(coef, np.ndarray)
    with pytest.warns(FutureWarning, match="head_weights"):
        coef1, intercept1 = backbone.head_weights(collapse_binary=True)
    assert coef1.shape == (1, 8) and intercept1.shape == (1,)
    np.testing.assert_array_equal(coef1, head.coef)
    np.testing.assert_array_equal(intercept1, head.intercept)
    np.testing.assert_allclose(coef1[0], coef[1] - coef[0])


def test_preprocess_single_image_pil_and_batch_agree(backbone, tiny):
    import torch
    from PIL import Image

    images = tiny.val.images[:3]
    one = backbone.preprocess(images[0])
    assert one.shape == (3, 32, 32) and one.dtype == torch.float32
    from_pil = backbone.preprocess(Image.fromarray(images[0]))
    torch.testing.assert_close(one, from_pil)
    stacked = torch.stack([backbone.preprocess(im) for im in images])
    torch.testing.assert_close(stacked, backbone.preprocess.batch(images))
    with pytest.raises(ValueError, match="expected one image"):
        backbone.preprocess(images)
    with pytest.raises(ValueError, match="channels last"):
        backbone.preprocess(np.zeros((3, 32, 32), np.uint8))


def test_backbone_reproducible_and_leaves_global_rng_alone(backbone, tiny):
    import torch

    from skhsfm.datasets import train_dominoes_backbone

    state = torch.get_rng_state()
    kwargs = dict(n_epochs=1, **TINY_CNN)
    same = train_dominoes_backbone(tiny.train, random_state=0, **kwargs)
    other = train_dominoes_backbone(tiny.train, random_state=1, **kwargs)
    assert torch.equal(state, torch.get_rng_state())
    for (name, a), b in zip(backbone.state_dict().items(), same.state_dict().values()):
        assert torch.equal(a, b), name
    assert not torch.equal(backbone.head.weight, other.head.weight)


def test_backbone_rejects_bad_input(tiny):
    from sklearn.utils import Bunch

    from skhsfm.datasets import train_dominoes_backbone

    bad = Bunch(images=tiny.train.images.astype(float), target=tiny.train.target)
    with pytest.raises(ValueError, match="must be uint8 RGB images"):
        train_dominoes_backbone(bad, n_epochs=1)
    bad = Bunch(images=tiny.train.images, target=tiny.train.target.astype(float))
    with pytest.raises(ValueError, match="integer class labels"):
        train_dominoes_backbone(bad, n_epochs=1)
    with pytest.raises(ValueError, match="n_epochs"):
        train_dominoes_backbone(tiny.train, n_epochs=0)
    with pytest.raises(ValueError, match="learning_rate"):
        train_dominoes_backbone(tiny.train, learning_rate=0.0)
    with pytest.raises(ValueError, match="on_epoch"):
        train_dominoes_backbone(tiny.train, n_epochs=1, on_epoch="print")


def test_on_epoch_gets_one_record_per_epoch(tiny):
    import dataclasses

    from skhsfm.datasets import EpochRecord, train_dominoes_backbone

    records = []
    cnn = train_dominoes_backbone(
        tiny.train, n_epochs=2, random_state=0, on_epoch=records.append, **TINY_CNN
    )
    assert [r.epoch for r in records] == [1, 2]
    assert all(isinstance(r, EpochRecord) and r.n_epochs == 2 for r in records)
    assert [r.loss for r in records] == cnn.loss_curve
    assert all(0.0 <= r.accuracy <= 1.0 and r.seconds >= 0.0 for r in records)
    assert str(records[-1]).startswith("epoch 2/2: loss ")
    with pytest.raises(dataclasses.FrozenInstanceError):
        records[0].loss = 0.0


def test_trainer_defaults_to_the_auto_device():
    import inspect

    from skhsfm.datasets import train_dominoes_backbone

    params = inspect.signature(train_dominoes_backbone).parameters
    assert params["device"].default == "auto"
    assert params["n_epochs"].default == 6
    assert params["width"].default == 16
    assert params["learning_rate"].default == 1e-3


@pytest.mark.parametrize(
    "old, new",
    [({"epochs": 2}, {"n_epochs": 2}), ({"lr": 3e-3}, {"learning_rate": 3e-3})],
)
def test_renamed_trainer_arguments_warn_and_give_the_same_result(tiny, old, new):
    import torch

    from skhsfm.datasets import train_dominoes_backbone

    kwargs = dict(random_state=0, **TINY_CNN)
    if "lr" in old:
        kwargs["n_epochs"] = 1
    name = next(iter(old))
    with pytest.warns(FutureWarning, match=f"{name}=.*deprecated.*{next(iter(new))}"):
        before = train_dominoes_backbone(tiny.train, **old, **kwargs)
    after = train_dominoes_backbone(tiny.train, **new, **kwargs)
    assert before.loss_curve == after.loss_curve
    for a, b in zip(before.state_dict().values(), after.state_dict().values()):
        assert torch.equal(a, b)


def test_renamed_trainer_argument_given_twice(tiny):
    from skhsfm.datasets import train_dominoes_backbone

    with pytest.raises(ValueError, match="pass n_epochs only"):
        train_dominoes_backbone(tiny.train, epochs=2, n_epochs=3)


# ------------------------------------------------------------ synthetic embeddings
def test_spurious_embeddings_shapes_and_labels():
    X, y, a, g = make_spurious_embeddings(1000, 20, random_state=0)
    assert X.shape == (1000, 20) and X.dtype == np.float64
    assert y.dtype == a.dtype == g.dtype == np.int64
    np.testing.assert_array_equal(g, 2 * y + a)
    assert np.bincount(y).tolist() == [500, 500]
    for c in (0, 1):
        assert np.mean(a[y == c] == c) == pytest.approx(0.9, abs=1e-3)


def test_spurious_embeddings_splits_share_directions():
    train = make_spurious_embeddings(300, 12, as_bunch=True, random_state=3)
    val = make_spurious_embeddings(300, 12, split="val", as_bunch=True, random_state=3)
    np.testing.assert_array_equal(train.core_directions, val.core_directions)
    np.testing.assert_array_equal(train.spurious_directions, val.spurious_directions)
    assert not np.allclose(train.data[:5], val.data[:5])
    assert np.bincount(val.group).tolist() == [75, 75, 75, 75]
    directions = np.vstack([train.core_directions, train.spurious_directions])
    np.testing.assert_allclose(directions @ directions.T, np.eye(4), atol=1e-12)
    forced = make_spurious_embeddings(300, 12, balanced=True, random_state=3)
    assert np.bincount(forced[3]).tolist() == [75, 75, 75, 75]
    again = make_spurious_embeddings(300, 12, as_bunch=True, random_state=3)
    np.testing.assert_array_equal(train.data, again.data)
    assert "group = y * n_attributes + a" in train.DESCR


def test_spurious_embeddings_many_classes_attributes_scale_dtype():
    X, y, a, g = make_spurious_embeddings(
        600,
        30,
        n_classes=3,
        n_attributes=4,
        spurious_correlation=0.7,
        random_state=0,
    )
    np.testing.assert_array_equal(g, 4 * y + a)
    for c in range(3):
        assert np.mean(a[y == c] == c % 4) == pytest.approx(0.7, abs=1e-2)
    assert set(g) <= set(range(12))
    X3 = make_spurious_embeddings(
        600,
        30,
        n_classes=3,
        n_attributes=4,
        spurious_correlation=0.7,
        scale=3.0,
        dtype=np.float32,
        random_state=0,
    )[0]
    assert X3.dtype == np.float32
    np.testing.assert_allclose(X3, 3 * X, rtol=1e-6, atol=1e-5)


def test_spurious_embeddings_fool_erm():
    X, y, _, _ = make_spurious_embeddings(2000, 16, random_state=0)
    Xt, yt, _, gt = make_spurious_embeddings(2000, 16, split="test", random_state=0)
    pred = LogisticRegression().fit(X, y).predict(Xt)
    wga = worst_group_accuracy(yt, pred, groups=gt)
    assert wga < np.mean(pred == yt) - 0.1


def test_spurious_embeddings_errors():
    with pytest.raises(ValueError, match="n_features must be at least"):
        make_spurious_embeddings(10, 3)
    with pytest.raises(ValueError, match="split"):
        make_spurious_embeddings(10, 8, split="validation")
    with pytest.raises(ValueError, match="spurious_correlation"):
        make_spurious_embeddings(10, 8, spurious_correlation=-0.1)


# ----------------------------------------------------------------------- loaders
def _write_csv(path, header, rows):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)


def _touch(path):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    open(path, "wb").close()


WB_HEADER = ["img_id", "img_filename", "y", "split", "place", "place_filename"]
WB_ROWS = [
    # img_id, img_filename, y, split, place
    (1, "001.Albatross/a1.jpg", 1, 0, 1),
    (2, "001.Albatross/a2.jpg", 1, 1, 0),
    (3, "002.Sparrow/s1.jpg", 0, 0, 0),
    (4, "002.Sparrow/s2.jpg", 0, 2, 1),
    (5, "002.Sparrow/s3.jpg", 0, 2, 0),
]


def _waterbirds(tmp_path, rows=WB_ROWS, header=WB_HEADER, images=True):
    root = tmp_path / "waterbirds"
    full = [(*r, f"/p/{r[0]}.jpg") for r in rows]
    _write_csv(str(root / "metadata.csv"), header, full)
    if images:
        for r in rows:
            _touch(str(root / str(r[1])))
    return root


def test_load_waterbirds(tmp_path):
    root = _waterbirds(tmp_path)
    data = load_waterbirds(root)
    assert data.target.tolist() == [1, 1, 0, 0, 0]
    assert data.attribute.tolist() == [1, 0, 0, 1, 0]
    assert data.group.tolist() == [3, 2, 0, 1, 0]
    assert data.split.tolist() == ["train", "val", "train", "test", "test"]
    assert all(os.path.isabs(f) and os.path.isfile(f) for f in data.filenames)
    assert data.filenames[0] == os.path.join(str(root), "001.Albatross/a1.jpg")
    assert data.group_names == [
        "landbird|land",
        "landbird|water",
        "waterbird|land",
        "waterbird|water",
    ]
    test = load_waterbirds(root, split="test")
    assert test.target.shape == (2,) and set(test.split) == {"test"}
    two = load_waterbirds(root, split=["train", "val"])
    assert two.img_id.tolist() == ["1", "2", "3"]


def test_load_waterbirds_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="Waterbirds folder not found"):
        load_waterbirds(tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="metadata.csv"):
        load_waterbirds(tmp_path / "empty")
    header = ["img_id", "img_filename", "label", "split", "place", "place_filename"]
    root = _waterbirds(tmp_path / "a", header=header)
    with pytest.raises(ValueError, match=r"metadata.csv: expected columns .*\['y'\]"):
        load_waterbirds(root)
    rows = list(WB_ROWS)
    rows[1] = (2, "001.Albatross/a2.jpg", 2, 1, 0)
    root = _waterbirds(tmp_path / "b", rows=rows)
    with pytest.raises(ValueError, match="line 3: column 'y' has value '2'"):
        load_waterbirds(root)
    rows[1] = (2, "001.Albatross/a2.jpg", 1, "valid", 0)
    root = _waterbirds(tmp_path / "c", rows=rows)
    with pytest.raises(ValueError, match="column 'split' has value 'valid'"):
        load_waterbirds(root)
    root = _waterbirds(tmp_path / "d", images=False)
    with pytest.raises(FileNotFoundError, match="5 of 5 image files"):
        load_waterbirds(root)
    assert load_waterbirds(root, check_files=False).target.shape == (5,)
    with pytest.raises(ValueError, match="split must be None"):
        load_waterbirds(root, split="validation", check_files=False)
    root = tmp_path / "e"
    _write_csv(str(root / "metadata.csv"), WB_HEADER, [])
    with pytest.raises(ValueError, match="no rows"):
        load_waterbirds(root)


CELEBA_IDS = ["000001.jpg", "000002.jpg", "000003.jpg", "000004.jpg"]


def _celeba_kaggle(root, blond=(1, -1, 1, -1), partition=(0, 0, 1, 2)):
    _write_csv(
        str(root / "list_attr_celeba.csv"),
        ["image_id", "Blond_Hair", "Male", "Smiling"],
        [(i, b, m, 1) for i, b, m in zip(CELEBA_IDS, blond, (-1, 1, 1, -1))],
    )
    _write_csv(
        str(root / "list_eval_partition.csv"),
        ["image_id", "partition"],
        list(zip(CELEBA_IDS, partition)),
    )
    for i in CELEBA_IDS:
        _touch(str(root / "img_align_celeba" / "img_align_celeba" / i))
    return root


def test_load_celeba_attr_partition_layout(tmp_path):
    root = _celeba_kaggle(tmp_path / "celeba")
    data = load_celeba(root)
    assert data.layout == "attr+partition"
    assert data.target.tolist() == [1, 0, 1, 0]
    assert data.attribute.tolist() == [0, 1, 1, 0]
    assert data.group.tolist() == [2, 1, 3, 0]
    assert data.split.tolist() == ["train", "train", "val", "test"]
    nested = os.path.join(str(root), "img_align_celeba", "img_align_celeba")
    assert data.filenames[0] == os.path.join(nested, "000001.jpg")
    assert data.group_names[3] == "Blond_Hair|Male"
    smiling = load_celeba(root, target="Smiling", split="train")
    assert smiling.target.tolist() == [1, 1]


def test_load_celeba_split_csv_layout(tmp_path):
    root = tmp_path / "celeba"
    _write_csv(
        str(root / "celeba_split.csv"),
        ["image_id", "Male", "Blond_Hair", "split"],
        [("a.jpg", 1, 0, 0), ("b.jpg", 0, 1, 2), ("c.jpg", 0, 0, 1)],
    )
    for i in ("a.jpg", "b.jpg", "c.jpg"):
        _touch(str(root / "img_align_celeba" / i))
    data = load_celeba(root, split=["train", "test"])
    assert data.layout == "split_csv"
    assert data.target.tolist() == [0, 1]
    assert data.attribute.tolist() == [1, 0]
    assert data.group.tolist() == [1, 2]
    assert data.filenames[1] == os.path.join(str(root), "img_align_celeba", "b.jpg")


def test_load_celeba_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="CelebA folder not found"):
        load_celeba(tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="celeba_split.csv"):
        load_celeba(tmp_path / "empty")
    root = _celeba_kaggle(tmp_path / "a")
    os.remove(root / "list_eval_partition.csv")
    with pytest.raises(FileNotFoundError, match="list_eval_partition.csv"):
        load_celeba(root)
    root = _celeba_kaggle(tmp_path / "b", blond=(1, 0, 1, -1))
    with pytest.raises(ValueError, match=r"line 3: column 'Blond_Hair' .*\[-1, 1\]"):
        load_celeba(root)
    root = _celeba_kaggle(tmp_path / "c")
    with pytest.raises(ValueError, match=r"missing \['Wavy_Hair'\]"):
        load_celeba(root, target="Wavy_Hair")
    root = _celeba_kaggle(tmp_path / "d", partition=(0, 0, 1, 3))
    with pytest.raises(ValueError, match="column 'partition' has value '3'"):
        load_celeba(root)
    root = _celeba_kaggle(tmp_path / "e")
    _write_csv(
        str(root / "list_eval_partition.csv"),
        ["image_id", "partition"],
        [(i, 0) for i in CELEBA_IDS[:3]],
    )
    with pytest.raises(ValueError, match="have no partition"):
        load_celeba(root)
    root = _celeba_kaggle(tmp_path / "f")
    os.remove(root / "img_align_celeba" / "img_align_celeba" / CELEBA_IDS[2])
    with pytest.raises(FileNotFoundError, match="1 of 4 image files"):
        load_celeba(root)


METASHIFT_TREE = {
    "train/cat/cat(sofa)": 2,
    "train/cat/cat(bed)": 1,
    "train/dog/dog(bench)": 2,
    "train/dog/dog(bike)": 1,
    "test/cat/cat(shelf)": 2,
    "test/dog/dog(shelf)": 1,
}


def _metashift(root, tree=METASHIFT_TREE):
    for folder, n in tree.items():
        for k in range(n):
            _touch(str(root / folder / f"img{k}.jpg"))
        _touch(str(root / folder / "notes.txt"))
    return root


def test_load_metashift(tmp_path):
    root = _metashift(tmp_path / "metashift")
    data = load_metashift(root)
    assert data.target_names == ["cat", "dog"]
    assert data.attribute_names == ["bed", "bench", "bike", "shelf", "sofa"]
    assert data.filenames.shape == (9,)
    assert all(f.endswith(".jpg") and os.path.isabs(f) for f in data.filenames)
    assert data.split.tolist().count("test") == 3
    np.testing.assert_array_equal(data.group, 5 * data.target + data.attribute)
    names = np.array(data.attribute_names, dtype=object)[data.attribute]
    np.testing.assert_array_equal(names, data.context)
    for f, t, c in zip(data.filenames, data.target, data.context):
        assert os.path.basename(os.path.dirname(f)) == f"{data.target_names[t]}({c})"
    test = load_metashift(root, split="test")
    assert sorted(test.context) == ["shelf"] * 3
    assert test.group_names[3] == "cat|shelf"
    indoor = {"sofa": "indoor", "bed": "indoor", "shelf": "indoor"}
    coarse = load_metashift(
        root, context_map={**indoor, "bench": "outdoor", "bike": "outdoor"}
    )
    assert coarse.attribute_names == ["indoor", "outdoor"]
    assert coarse.group[coarse.context == "bike"].tolist() == [3]
    # no val/ folder: asking for the val split is an error, not 0 samples
    with pytest.raises(ValueError, match=r"requested split\(s\) \['val'\]"):
        load_metashift(root, split="val")


def test_load_metashift_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="MetaShift folder not found"):
        load_metashift(tmp_path / "nowhere")
    tree = {k: v for k, v in METASHIFT_TREE.items() if k.startswith("train")}
    root = _metashift(tmp_path / "a", tree)
    with pytest.raises(FileNotFoundError, match="expected the folder .*test"):
        load_metashift(root)
    root = _metashift(tmp_path / "b", {**METASHIFT_TREE, "train/cat/cat_sofa": 1})
    with pytest.raises(
        ValueError, match=r"unexpected folder .*cat_sofa.*'cat\(<context>\)'"
    ):
        load_metashift(root)
    root = _metashift(tmp_path / "c", {**METASHIFT_TREE, "train/cat/dog(sofa)": 1})
    with pytest.raises(ValueError, match=r"unexpected folder .*dog\(sofa\)"):
        load_metashift(root)
    root = _metashift(tmp_path / "d")
    with pytest.raises(ValueError, match=r"no entry for context\(s\) \['bench'"):
        load_metashift(root, context_map={"sofa": "in", "bed": "in"})
    root = tmp_path / "e"
    (root / "train" / "cat").mkdir(parents=True)
    (root / "test").mkdir()
    with pytest.raises(ValueError, match="has no context folders"):
        load_metashift(root)
    (root / "train" / "cat" / "cat(sofa)").mkdir()
    with pytest.raises(ValueError, match="test' has no class folders"):
        load_metashift(root)


def _dominoes_arrays(root, n=(6, 4, 5), shape=(3, 4, 4)):
    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.RandomState(0)
    for s, k in zip(SPLITS, n):
        np.save(root / f"X_{s}.npy", rng.rand(k, *shape).astype(np.float32))
        np.save(root / f"y_{s}.npy", np.arange(k) % 2)
        np.save(root / f"env_{s}.npy", (np.arange(k) // 2) % 2)
    return root


def test_load_dominoes_arrays(tmp_path):
    root = _dominoes_arrays(tmp_path / "dom")
    data = load_dominoes_arrays(root)
    assert data.data.shape == (15, 3, 4, 4)
    assert data.split.tolist() == ["train"] * 6 + ["val"] * 4 + ["test"] * 5
    np.testing.assert_array_equal(data.group, 2 * data.target + data.attribute)
    np.testing.assert_array_equal(data.data[:6], np.load(root / "X_train.npy"))
    val = load_dominoes_arrays(root, split="val", mmap_mode="r")
    assert val.data.shape == (4, 3, 4, 4)
    assert isinstance(val.data, np.memmap)
    assert val.group_names == ["y=0|env=0", "y=0|env=1", "y=1|env=0", "y=1|env=1"]
    # env values only in train still count for the group layout of other splits.
    np.save(root / "env_train.npy", np.arange(6) % 3)
    assert load_dominoes_arrays(root, split="test").attribute_names[-1] == "env=2"


def test_load_dominoes_arrays_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="Dominoes arrays folder not found"):
        load_dominoes_arrays(tmp_path / "nowhere")
    root = _dominoes_arrays(tmp_path / "a")
    os.remove(root / "env_val.npy")
    with pytest.raises(FileNotFoundError, match="env_val.npy"):
        load_dominoes_arrays(root)
    assert load_dominoes_arrays(root, split="train").data.shape[0] == 6
    root = _dominoes_arrays(tmp_path / "b")
    np.save(root / "y_test.npy", np.arange(4) % 2)
    with pytest.raises(ValueError, match=r"y_test.npy \(4,\).*same number of samples"):
        load_dominoes_arrays(root)
    root = _dominoes_arrays(tmp_path / "c")
    np.save(root / "y_train.npy", np.full(6, 0.5))
    with pytest.raises(
        ValueError, match="y_train.npy: y must hold non-negative integer"
    ):
        load_dominoes_arrays(root)
    root = _dominoes_arrays(tmp_path / "d")
    np.save(root / "env_train.npy", np.zeros((6, 2), dtype=int))
    with pytest.raises(ValueError, match="env must be 1-d"):
        load_dominoes_arrays(root)
    root = _dominoes_arrays(tmp_path / "e")
    np.save(root / "X_val.npy", np.zeros((4, 2)))
    with pytest.raises(ValueError, match="expected the same shape in every split"):
        load_dominoes_arrays(root)
    root = _dominoes_arrays(tmp_path / "f")
    (root / "X_test.npy").write_bytes(b"not a numpy file")
    with pytest.raises(ValueError, match="could not read a numpy array"):
        load_dominoes_arrays(root)
