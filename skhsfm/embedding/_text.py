"""Text prompts through a CLIP backbone's text tower."""

import numpy as np

from skhsfm.embedding._forward import autocast

__all__ = ["check_prompts", "encode_prompts"]


def check_prompts(prompts):
    """A non-empty list of strings from a string or a sequence of strings."""
    prompts = [prompts] if isinstance(prompts, str) else list(prompts)
    if not prompts:
        raise ValueError("prompts is empty; pass at least one string.")
    bad = [p for p in prompts if not isinstance(p, str)]
    if bad:
        raise TypeError(
            f"prompts must be strings; got {type(bad[0]).__name__} {bad[0]!r}."
        )
    return prompts


def encode_prompts(loaded, prompts, *, batch_size, device, precision):
    """Embed ``prompts`` with ``loaded``'s text tower; float32 (n, d) array.

    The tokenizer is built on first use and kept on ``loaded``.
    """
    from skhsfm._utils.torch import torch

    if loaded.tokenizer is None:
        loaded.tokenizer = loaded.make_tokenizer()
    chunks = []
    for start in range(0, len(prompts), batch_size):
        tokens = loaded.tokenizer(prompts[start : start + batch_size])
        with torch.inference_mode(), autocast(device, precision):
            output = loaded.model.encode_text(tokens.to(device))
        chunks.append(output.float().cpu().numpy())
    return np.concatenate(chunks).astype(np.float32, copy=False)
