"""Fixtures shared by several test modules."""

import json

import pytest

#: Name and config of a tiny random-weight CLIP registered with open_clip at test
#: time (nothing is downloaded).
TINY_CLIP = "skhsfm-test-tiny-vit"
TINY_CLIP_CFG = {
    "embed_dim": 32,
    "vision_cfg": {"image_size": 32, "layers": 2, "width": 64, "patch_size": 8},
    # vocab_size stays at CLIP's 49408: the bundled tokenizer emits those ids.
    "text_cfg": {
        "context_length": 16,
        "vocab_size": 49408,
        "width": 32,
        "heads": 2,
        "layers": 1,
    },
}


@pytest.fixture(scope="session")
def tiny_clip(tmp_path_factory):
    """Register the tiny ViT CLIP config with open_clip; return its model name."""
    open_clip = pytest.importorskip("open_clip")
    folder = tmp_path_factory.mktemp("open_clip_cfg")
    path = folder / f"{TINY_CLIP}.json"
    path.write_text(json.dumps(TINY_CLIP_CFG))
    open_clip.add_model_config(path)
    return TINY_CLIP
