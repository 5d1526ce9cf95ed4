"""Embeddings cached on disk, one entry per image (the embedder's ``memory``).

One entry per image, so that a cache filled shard by shard (by Dask tasks, Ray
actors, ``skhsfm embed`` runs) serves the whole list and the other way round.
Layout under the ``memory`` folder::

    skhsfm_embeddings/v3/<backbone key>/meta.json      {"dim": d, ...}
    skhsfm_embeddings/v3/<backbone key>/<ab>/<digest>.npz

Each entry is a verified file (:mod:`skhsfm._utils.verified`) of one float32
embedding (``embedding``), recording the image key it was written for and the
embedding's checksum. An entry is used only when it reads back as exactly
that: the same key, an intact array (its checksum), one row of the backbone's
dimension (``meta.json``), dtype float32. Anything else is recomputed with a
warning and rewritten. Files are written under a temporary name and renamed
into place, so a reader never sees half an entry and concurrent writers
(which write the same bytes) cannot corrupt one.
"""

import os
import warnings

import numpy as np

from skhsfm._utils.atomic import ensure_folder
from skhsfm._utils.verified import (
    FileInvalid,
    key_digest,
    read_json,
    read_verified,
    write_json,
    write_verified,
)
from skhsfm.embedding._keys import CACHE_FORMAT, image_keys

__all__ = ["ENTRY_FORMAT", "EmbeddingStore", "cached_embeddings", "memory_location"]

#: Version of the per-image entry layout (the folder name ``v3``; ``v2``
#: entries, before checksums, are not read).
ENTRY_FORMAT = 3

_UNKEYABLE = (
    "memory is ignored for this call: the backbone or preprocess callable could "
    "not be fingerprinted (it cannot be pickled). Use a torch.nn.Module, a "
    "module-level function or a torchvision transform to enable caching."
)


def memory_location(memory):
    """The cache folder of an embedder's ``memory``, or None for no caching.

    A str or path-like is the folder; a ``joblib.Memory`` gives its
    ``location`` (None when it does not cache). Returns ``False`` for another
    object with a ``cache`` method but no folder (it caches whole calls).
    """
    if memory is None:
        return None
    if isinstance(memory, (str, os.PathLike)):
        return os.path.expanduser(os.fspath(memory))
    location = getattr(memory, "location", False)
    if location is None or location is False:
        return location
    return os.path.expanduser(os.fspath(location))


class EmbeddingStore:
    """The per-image entries of one backbone configuration under ``location``.

    Parameters
    ----------
    location : str
        The ``memory`` folder.
    backbone_key : str
        ``_keys.backbone_key`` of the configuration.
    """

    def __init__(self, location, backbone_key):
        self.location = location
        self.backbone_key = backbone_key
        self.root = os.path.join(
            location, "skhsfm_embeddings", f"v{ENTRY_FORMAT}", backbone_key
        )

    def create(self):
        """Make the folder; an OSError naming ``memory`` when it cannot be."""
        ensure_folder(self.location, "memory")
        ensure_folder(self.root, "memory's entry folder")

    def _entry(self, key):
        text = f"{self.backbone_key}/{key}"
        digest = key_digest(text)
        return os.path.join(self.root, digest[:2], digest + ".npz"), text

    def _dim(self):
        """The embedding size recorded in ``meta.json``; None if unreadable."""
        meta = read_json(os.path.join(self.root, "meta.json"))
        if (
            meta is None
            or meta.get("backbone_key") != self.backbone_key
            or meta.get("format") != [CACHE_FORMAT, ENTRY_FORMAT]
            or not isinstance(meta.get("dim"), int)
        ):
            return None
        return meta["dim"]

    def read(self, keys, *, stacklevel=2):
        """Read the entries of ``keys``.

        Returns
        -------
        rows : dict
            Position in ``keys`` -> float32 embedding, for the verified entries.
        bad : int
            Entries found but not used (they are recomputed and rewritten).
        """
        dim = self._dim()
        rows, problems = {}, []
        for i, key in enumerate(keys):
            path, text = self._entry(key)
            if not os.path.exists(path):
                continue
            row, problem = _read_entry(path, text, dim)
            if problem is None:
                rows[i] = row
            else:
                problems.append(problem)
        if problems:
            warnings.warn(
                f"memory: {len(problems)} cached embedding(s) in {self.root!r} do "
                f"not match what they were written for ({problems[0]}); "
                "recomputing them.",
                UserWarning,
                stacklevel=stacklevel + 1,
            )
        return rows, len(problems)

    def write(self, keys, embeddings, *, stacklevel=2):
        """Write one entry per key (rows of ``embeddings``), each atomically."""
        embeddings = np.asarray(embeddings, dtype=np.float32)
        try:
            self.create()
            if self._dim() != embeddings.shape[1]:
                meta = {
                    "format": [CACHE_FORMAT, ENTRY_FORMAT],
                    "backbone_key": self.backbone_key,
                    "dim": int(embeddings.shape[1]),
                    "dtype": "float32",
                }
                write_json(os.path.join(self.root, "meta.json"), meta, durable=False)
            for key, row in zip(keys, embeddings):
                path, text = self._entry(key)
                os.makedirs(os.path.dirname(path), exist_ok=True)
                # not flushed to disk: one small file per image, and one that a
                # crash leaves short fails verification and is recomputed
                write_verified(path, {"embedding": row}, text, durable=False)
        except (OSError, ValueError) as exc:
            warnings.warn(
                f"memory: could not write embeddings to {self.root!r} ({exc}); "
                "they were computed but are not cached.",
                UserWarning,
                stacklevel=stacklevel + 1,
            )


def _read_entry(path, text, dim):
    """``(row, None)`` for a verified entry, else ``(None, reason)``."""
    if dim is None:
        return None, "the cache's meta.json is missing or does not match"
    try:
        row = read_verified(path, text)["embedding"]
    except FileInvalid as exc:
        return None, f"{path!r}: {exc}"
    except KeyError:
        return None, f"{path!r} is not an embedding entry"
    if row.dtype != np.float32 or row.shape != (dim,):
        return None, (
            f"{path!r} holds a {row.dtype} array of shape {row.shape}, not "
            f"float32 of shape ({dim},)"
        )
    return row, None


def _cached_embed(backbone_key, images_key, compute):
    """What a ``memory`` object without a folder caches: a whole call."""
    return compute()


def _subset(images, positions):
    if isinstance(images, np.ndarray):
        return images[positions]
    return [images[i] for i in positions]


def cached_embeddings(memory, make_key, images, compute, *, stacklevel=2):
    """``compute(images)``, with per-image entries read from / written to
    ``memory`` when there is one.

    Parameters
    ----------
    memory : None, str, path-like or joblib.Memory
        The embedder's ``memory``.
    make_key : callable
        Returns the backbone key (``_keys.backbone_key``) or None when the
        configuration cannot be keyed (then a warning, and no caching).
    images : sequence
        Validated images (``_images.as_image_sequence``).
    compute : callable
        ``compute(some_images) -> (n, d) float32`` for a subset of ``images``
        (a stack slice or a list), in order.
    stacklevel : int, default=2
        Where warnings point: 2 is the caller of this function.
    """
    location = memory_location(memory)
    if location is None:
        return compute(images)
    key = make_key()
    if key is None:
        warnings.warn(_UNKEYABLE, UserWarning, stacklevel=stacklevel + 1)
        return compute(images)
    if location is False:  # an object with only a cache method
        from skhsfm.embedding._keys import fingerprint_images

        cached = memory.cache(_cached_embed, ignore=["compute"])
        return cached(key, fingerprint_images(images), lambda: compute(images))
    store = EmbeddingStore(location, key)
    store.create()
    keys = image_keys(images)
    rows, _ = store.read(keys, stacklevel=stacklevel + 1)
    # each missing image once, even when it appears several times
    first = {}
    for i, k in enumerate(keys):
        if i not in rows:
            first.setdefault(k, i)
    if first:
        positions = list(first.values())
        computed = compute(_subset(images, positions))
        store.write(list(first), computed, stacklevel=stacklevel + 1)
        by_key = dict(zip(first, computed))
        for i, k in enumerate(keys):
            if i not in rows:
                rows[i] = by_key[k]
    return np.stack([rows[i] for i in range(len(keys))]).astype(np.float32, copy=False)
