"""Embeddings cached on disk, one entry per image (the embedder's ``memory``).

One entry per image, so that a cache filled shard by shard (by Dask tasks, Ray
actors, ``skhsfm embed`` runs) serves the whole list and the other way round.
Layout under the ``memory`` folder::

    skhsfm_embeddings/v2/<backbone key>/meta.json      {"dim": d, ...}
    skhsfm_embeddings/v2/<backbone key>/<ab>/<digest>.npz

Each entry holds the image key it was written for (``key``) and its float32
embedding (``embedding``). An entry is used only when it reads back as exactly
that: the same key, one row of the backbone's dimension (``meta.json``), dtype
float32, an intact file (the zip's checksums). Anything else is recomputed
with a warning and rewritten. Files are written under a temporary name and
renamed into place, so a reader never sees half an entry and concurrent
writers (which write the same bytes) cannot corrupt one.
"""

import hashlib
import json
import os
import tempfile
import warnings

import numpy as np

from skhsfm._utils.atomic import ensure_folder
from skhsfm._utils.npz import open_npz
from skhsfm.embedding._keys import CACHE_FORMAT, image_keys

__all__ = ["ENTRY_FORMAT", "EmbeddingStore", "cached_embeddings", "memory_location"]

#: Version of the per-image entry layout (the folder name ``v2``).
ENTRY_FORMAT = 2

_UNKEYABLE = (
    "memory is ignored for this call: the backbone or preprocess callable could "
    "not be fingerprinted (it cannot be pickled). Use a torch.nn.Module, a "
    "module-level function or a torchvision transform to enable caching."
)


def _write_atomically(path, write):
    """``write(file_object)`` to a temporary file next to ``path``, then rename it
    over ``path``; on failure ``path`` is untouched and the temporary removed.

    ``skhsfm._utils.atomic.atomic_write`` without its fsync: an entry is one small
    file per image, thousands per call, and one that a crash leaves empty or
    short fails verification and is recomputed.
    """
    folder, name = os.path.split(path)
    handle, tmp = tempfile.mkstemp(prefix=f".{name}.", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(handle, "wb") as file:
            write(file)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.remove(tmp)
        except OSError:
            pass
        raise


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
        digest = hashlib.blake2b(text.encode(), digest_size=16).hexdigest()
        return os.path.join(self.root, digest[:2], digest + ".npz"), text

    def _dim(self):
        """The embedding size recorded in ``meta.json``; None if unreadable."""
        try:
            with open(os.path.join(self.root, "meta.json")) as file:
                meta = json.load(file)
        except (OSError, ValueError):
            return None
        if (
            not isinstance(meta, dict)
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
                data = json.dumps(meta).encode()
                _write_atomically(
                    os.path.join(self.root, "meta.json"), lambda f: f.write(data)
                )
            for key, row in zip(keys, embeddings):
                path, text = self._entry(key)
                os.makedirs(os.path.dirname(path), exist_ok=True)
                _write_atomically(
                    path,
                    lambda f, text=text, row=row: np.savez(
                        f, key=np.array(text), embedding=row
                    ),
                )
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
        with open_npz(path) as entry:
            if set(entry.files) != {"key", "embedding"}:
                return None, f"{path!r} is not an embedding entry"
            key = entry["key"]
            row = entry["embedding"]
    except Exception as exc:  # unreadable, truncated, failed checksum
        return None, f"{path!r} cannot be read: {exc}"
    if key.shape != () or str(key) != text:
        return None, f"{path!r} was written for another image or backbone"
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
