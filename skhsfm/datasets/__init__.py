"""Benchmark data: the offline dominoes task, synthetic embeddings, and loaders.

``make_dominoes`` and ``make_spurious_embeddings`` need only numpy and
scikit-learn. The dominoes CNN and its trainer (``train_dominoes_backbone``,
``ERMBackbone``, ``EpochRecord``, ``ImageTransform``) are imported on first use,
so importing this package does not import torch.
"""

from skhsfm.datasets._dominoes import make_dominoes
from skhsfm.datasets._loaders import (
    load_celeba,
    load_dominoes_arrays,
    load_metashift,
    load_waterbirds,
)
from skhsfm.datasets._synthetic import make_spurious_embeddings

_LAZY = {
    "EpochRecord": "skhsfm.datasets._dominoes_cnn",
    "ERMBackbone": "skhsfm.datasets._dominoes_cnn",
    "ImageTransform": "skhsfm.datasets._dominoes_cnn",
    "train_dominoes_backbone": "skhsfm.datasets._dominoes_cnn",
}

__all__ = [
    "make_dominoes",
    "make_spurious_embeddings",
    "load_waterbirds",
    "load_celeba",
    "load_metashift",
    "load_dominoes_arrays",
    "EpochRecord",
    "ERMBackbone",
    "ImageTransform",
    "train_dominoes_backbone",
]


def __getattr__(name):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(__all__))
