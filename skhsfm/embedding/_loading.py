"""What every backbone loader shares: the loaded-backbone value and weight files.

Each loader (``_open_clip``, ``_torchvision``, ``_custom``) returns a
:class:`LoadedBackbone`: the model, a ``forward`` that maps a preprocessed
batch to ``(n, d)`` embeddings, the PIL -> tensor ``preprocess`` and the
embedding size when it is known without running the model. torch is imported
inside the functions.
"""

import contextlib
import os
from dataclasses import dataclass
from typing import Any, Callable, Optional

__all__ = [
    "RANDOM_INIT_SEED",
    "LoadedBackbone",
    "looks_like_path",
    "read_state_dict",
    "seeded_init",
]

#: Seed for randomly initialized backbones, so every load gives the same weights.
RANDOM_INIT_SEED = 0

_WEIGHT_SUFFIXES = (".bin", ".pt", ".pth", ".safetensors", ".ckpt", ".npz")


@dataclass
class LoadedBackbone:
    """A ready-to-run backbone (never pickled: the embedder drops it).

    ``make_tokenizer`` builds the text tokenizer of a CLIP model on first use
    (``tokenizer`` then holds it); None for image-only backbones.
    """

    library: str
    model: Any
    forward: Callable
    preprocess: Callable
    dim: Optional[int] = None
    tokenizer: Optional[Callable] = None
    make_tokenizer: Optional[Callable] = None


@contextlib.contextmanager
def seeded_init():
    """Deterministic random initialization that leaves the global RNG untouched.

    ``fork_rng`` saves torch's CPU generator state and restores it on exit, so the
    caller's random stream is unchanged; models are built on the CPU.
    """
    from skhsfm._utils.torch import torch

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(RANDOM_INIT_SEED)
        yield


def looks_like_path(value):
    """Whether a ``pretrained`` value was meant as a file (for the error type)."""
    value = str(value)
    return (
        os.sep in value
        or (os.altsep is not None and os.altsep in value)
        or value.lower().endswith(_WEIGHT_SUFFIXES)
        or value.startswith("~")
    )


def read_state_dict(path):
    """Read a state_dict saved with ``torch.save`` or safetensors."""
    from skhsfm._utils.torch import torch

    if str(path).endswith(".safetensors"):
        from safetensors.torch import load_file

        try:
            state = load_file(path, device="cpu")
        except Exception as exc:  # SafetensorError, OSError: not raw messages
            raise ValueError(
                f"Could not read weights file {path!r}: {exc}. Save weights with "
                "safetensors.torch.save_file(model.state_dict(), path)."
            ) from exc
    else:
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:
            raise ValueError(
                f"Could not read weights file {path!r}: {exc}. Save weights with "
                "torch.save(model.state_dict(), path)."
            ) from exc
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]
    if not isinstance(state, dict):
        raise ValueError(
            f"Weights file {path!r} holds a {type(state).__name__}, not a "
            "state_dict; save weights with torch.save(model.state_dict(), path)."
        )
    if all(key.startswith("module.") for key in state):  # saved from DataParallel
        state = {key[len("module.") :]: value for key, value in state.items()}
    return state
