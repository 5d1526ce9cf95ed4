"""Tests of skhsfm.cli._sources: backbone names and array images.

The sources themselves run end to end in ``test_cli.py``.
"""

import numpy as np
import pytest

from skhsfm.cli._common import CLIError
from skhsfm.cli._sources import _as_uint8_images, resolve_backbone


@pytest.mark.parametrize(
    "args, expected",
    [
        ((None, None, None, "dominoes"), {"kind": "dominoes-cnn"}),
        (
            (None, None, None, "waterbirds"),
            {"backbone": "torchvision", "model_name": "resnet50"},
        ),
        (
            ("resnet18", None, "none", "waterbirds"),
            {"backbone": "torchvision", "pretrained": None},
        ),
        (
            ("ViT-B-32", "/w/clip.safetensors", None, "celeba"),
            {"backbone": "open_clip", "pretrained": "/w/clip.safetensors"},
        ),
        (
            ("open_clip:RN50", "openai", None, "celeba"),
            {"backbone": "open_clip", "model_name": "RN50"},
        ),
        (
            ("local-dir:/w/model", None, None, "metashift"),
            {"backbone": "open_clip", "model_name": "local-dir:/w/model"},
        ),
    ],
)
def test_resolve_backbone(args, expected):
    spec = resolve_backbone(*args)
    assert {key: spec[key] for key in expected} == expected


def test_resolve_backbone_defaults_to_imagenet_weights():
    spec = resolve_backbone(None, None, None, "waterbirds")
    assert spec["pretrained"] == "IMAGENET1K_V1"


@pytest.mark.parametrize(
    "args, message",
    [
        (("ViT-B-32", None, None, "celeba"), "open_clip needs --pretrained"),
        (("resnet50", "tag", "file.pth", "celeba"), "not both"),
        (("dominoes-cnn", None, None, "waterbirds"), "trained on dominoes"),
        ((None, "tag", None, "dominoes"), "need --backbone NAME"),
        (("torchvision:resnet18", "tag", None, "celeba"), "--pretrained is for"),
    ],
)
def test_resolve_backbone_errors(args, message):
    with pytest.raises(CLIError, match=message):
        resolve_backbone(*args)


def test_array_images_become_uint8_channels_last():
    rng = np.random.RandomState(0)
    floats = rng.rand(2, 3, 8, 6)  # channels first, in [0, 1]
    images = _as_uint8_images(floats, "X")
    assert images.shape == (2, 8, 6, 3) and images.dtype == np.uint8
    assert images[0, 0, 0, 1] == np.rint(255 * floats[0, 1, 0, 0])
    gray = _as_uint8_images(np.full((2, 5, 5), 7, dtype=np.int64), "X")
    assert gray.shape == (2, 5, 5, 3) and (gray == 7).all()
    with pytest.raises(CLIError, match="1 or 3 channels"):
        _as_uint8_images(np.zeros((2, 5, 5, 5)), "X_train.npy")


def test_cache_file_round_trip_keeps_the_head(tmp_path):
    """The cache stores the backbone head as head_coef / head_intercept arrays
    (benchmarks/tune_on_dominoes.py reads them) and loads it as a LinearHead."""
    from skhsfm import LinearHead
    from skhsfm.cli._cache import cache_file, read_cache, write_cache

    rng = np.random.RandomState(0)
    splits = {
        split: (rng.rand(4, 3).astype(np.float32), np.arange(4) % 2, np.arange(4))
        for split in ("train", "val", "test")
    }
    head = LinearHead([[1.0, -2.0, 0.5]], [0.25])
    path, key = cache_file(str(tmp_path / "cache"), "seed0", ["a key"])
    write_cache(path, key, splits, head, ["g0", "g1", "g2", "g3"], {"embedding": 1.5})
    with np.load(path) as stored:
        np.testing.assert_array_equal(stored["head_coef"], head.coef)
    loaded, loaded_head, names, timings = read_cache(path, key)
    assert isinstance(loaded_head, LinearHead)
    np.testing.assert_array_equal(loaded_head.coef, head.coef)
    np.testing.assert_array_equal(loaded_head.intercept, head.intercept)
    np.testing.assert_array_equal(loaded["val"][0], splits["val"][0])
    assert names == ["g0", "g1", "g2", "g3"] and timings == {"embedding": 1.5}
