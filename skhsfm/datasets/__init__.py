"""Benchmark data: the offline dominoes task, synthetic embeddings, and loaders.

``make_dominoes`` and ``make_spurious_embeddings`` need only numpy and
scikit-learn. The torch backbone (``train_dominoes_backbone``, ``ERMBackbone``,
``ImageTransform``) is imported on first use, so importing this package does not
import torch.
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
    "ERMBackbone": "skhsfm.datasets._backbone",
    "ImageTransform": "skhsfm.datasets._backbone",
    "train_dominoes_backbone": "skhsfm.datasets._backbone",
}

__all__ = [
    "make_dominoes",
    "make_spurious_embeddings",
    "load_waterbirds",
    "load_celeba",
    "load_metashift",
    "load_dominoes_arrays",
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
