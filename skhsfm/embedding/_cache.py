"""Embeddings cached on disk with joblib.Memory (the embedder's ``memory``)."""

import os
import warnings

from sklearn.utils.validation import check_memory

from skhsfm.embedding._keys import fingerprint_images

__all__ = ["cached_embeddings"]

_UNKEYABLE = (
    "memory is ignored for this call: the backbone or preprocess callable could "
    "not be fingerprinted (it cannot be pickled). Use a torch.nn.Module, a "
    "module-level function or a torchvision transform to enable caching."
)


def _cached_embed(backbone_key, images_key, compute):
    """The function joblib.Memory caches: the key is (backbone_key, images_key)."""
    return compute()


def cached_embeddings(memory, make_key, images, compute):
    """``compute()``, read from / written to ``memory`` when there is one.

    Parameters
    ----------
    memory : None, str, path-like or joblib.Memory
        The embedder's ``memory``.
    make_key : callable
        Returns the backbone key (``_keys.backbone_key``) or None when the
        configuration cannot be keyed (then a warning, and no caching).
    images : sequence
        Validated images; their fingerprint is the rest of the key.
    compute : callable
        Computes the embeddings (not part of the key).

    Call it straight from the public method: the warning points two frames up.
    """
    if memory is None:
        return compute()
    if isinstance(memory, os.PathLike):
        memory = os.fspath(memory)
    memory = check_memory(memory)
    key = make_key()
    if key is None:
        warnings.warn(_UNKEYABLE, UserWarning, stacklevel=3)
        return compute()
    cached = memory.cache(_cached_embed, ignore=["compute"])
    return cached(key, fingerprint_images(images), compute)
