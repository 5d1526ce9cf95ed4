"""The benchmark's embedding cache: one verified ``.npz`` file per seed.

A file holds the train / val / test embeddings with their labels and groups,
the group names, the backbone's own head and the timings, plus ``__meta__``:
the cache key the file was written for and, for every array, its shape, dtype
and BLAKE2b checksum. Files are written atomically (a temporary file, then one
rename). On load everything is checked: the key, the list of arrays, each
shape, dtype and checksum, and that the splits fit together. A file that fails
any check (truncated, bytes flipped, written by another version or for other
settings) is not used: the caller recomputes the embeddings and overwrites it,
with a warning. Nothing here raises on a bad file.
"""

import hashlib
import json
import os

import numpy as np

from skhsfm._linear import LinearHead
from skhsfm._utils.atomic import atomic_write
from skhsfm._utils.hashing import array_digest
from skhsfm._utils.npz import open_npz

__all__ = ["CacheInvalid", "cache_file", "read_cache", "write_cache"]

# Bump when the meaning or layout of cache files changes.
CACHE_VERSION = 2
SPLITS = ("train", "val", "test")
_META = "__meta__"


class CacheInvalid(Exception):
    """A cache file that cannot be used; the message says why."""


def cache_file(cache_dir, prefix, key_parts):
    """``(path, key)`` of the cache file for ``key_parts``, or ``(None, None)``
    without a cache folder. ``key`` is the text recorded in (and checked
    against) the file; the file name holds a digest of it."""
    if cache_dir is None:
        return None, None
    from skhsfm import __version__

    key = json.dumps(
        [CACHE_VERSION, __version__, prefix, *key_parts], default=str, sort_keys=True
    )
    digest = hashlib.blake2b(key.encode("utf-8"), digest_size=8).hexdigest()
    return os.path.join(cache_dir, f"{prefix}_{digest}.npz"), key


def _arrays(splits, head, group_names, timings):
    arrays = {"group_names": np.asarray(group_names, dtype=str)}
    for split, values in splits.items():
        if values is None:
            continue
        for name, value in zip(("X", "y", "g"), values):
            arrays[f"{name}_{split}"] = np.asarray(value)
    if head is not None:
        arrays["head_coef"] = np.asarray(head.coef)
        arrays["head_intercept"] = np.asarray(head.intercept)
    for name, seconds in timings.items():
        arrays[f"seconds_{name}"] = np.float64(seconds)
    return arrays


def write_cache(path, key, splits, head, group_names, timings):
    """Write one seed's embeddings to ``path`` with ``key`` and checksums.

    Atomic: a reader sees the old file or the complete new one. Raises
    OSError when the file cannot be written (the caller carries on without).
    """
    arrays = _arrays(splits, head, group_names, timings)
    meta = {
        "key": key,
        "arrays": {
            name: [list(a.shape), a.dtype.str, array_digest(a)]
            for name, a in arrays.items()
        },
    }
    arrays[_META] = np.asarray(json.dumps(meta, sort_keys=True))
    os.makedirs(os.path.dirname(path), exist_ok=True)

    def write(tmp):
        with open(tmp, "wb") as handle:
            np.savez(handle, **arrays)

    atomic_write(path, write)


def _verified_arrays(path, key):
    """Every array of the file, after the key, shape, dtype and checksum checks."""
    try:
        with open_npz(path) as stored:
            names = set(stored.files)
            if _META not in names:
                raise CacheInvalid("it has no checksums (written by an older skhsfm)")
            meta = json.loads(str(stored[_META][()]))
            if meta.get("key") != key:
                raise CacheInvalid("it was written for other settings or versions")
            listed = meta["arrays"]
            if set(listed) != names - {_META}:
                raise CacheInvalid("its arrays differ from those it records")
            arrays = {}
            for name, (shape, dtype, digest) in listed.items():
                value = stored[name]
                if list(value.shape) != shape or value.dtype.str != dtype:
                    raise CacheInvalid(
                        f"array {name} has shape {value.shape} and dtype "
                        f"{value.dtype}; it was written with {tuple(shape)}, {dtype}"
                    )
                if array_digest(value) != digest:
                    raise CacheInvalid(f"array {name} does not match its checksum")
                arrays[name] = value
            return arrays
    except CacheInvalid:
        raise
    except Exception as exc:  # BadZipFile, bad CRC, zlib.error, EOFError, ...
        text = " ".join(str(exc).split()) or "no details"
        raise CacheInvalid(f"it cannot be read ({type(exc).__name__}: {text})") from exc


def _check_layout(splits, head, group_names):
    """The splits fit together: (n, d) float embeddings, one label and group
    per row, the same d everywhere, train and test present."""
    dims = set()
    for split in ("train", "test"):
        if splits[split] is None:
            raise CacheInvalid(f"it holds no {split} split")
    for split, values in splits.items():
        if values is None:
            continue
        X, y, g = values
        if X.ndim != 2 or X.dtype.kind != "f" or y.ndim != 1 or g.ndim != 1:
            raise CacheInvalid(f"the {split} arrays have unexpected shapes or types")
        if not (X.shape[0] == y.shape[0] == g.shape[0]):
            raise CacheInvalid(f"the {split} arrays have different lengths")
        dims.add(X.shape[1])
    if len(dims) != 1 or group_names.ndim != 1:
        raise CacheInvalid("the splits have different embedding sizes")
    if head is not None and (
        head.coef.ndim != 2
        or head.coef.shape[1] not in dims
        or head.intercept.shape != (head.coef.shape[0],)
    ):
        raise CacheInvalid("the stored head does not fit the embeddings")


def _contents(arrays):
    splits = {
        s: (
            tuple(arrays[f"{k}_{s}"] for k in ("X", "y", "g"))
            if f"X_{s}" in arrays
            else None
        )
        for s in SPLITS
    }
    if any(
        (f"y_{s}" in arrays or f"g_{s}" in arrays) and splits[s] is None for s in SPLITS
    ):
        raise CacheInvalid("a split lacks its embeddings")
    head = None
    if "head_coef" in arrays:
        head = LinearHead(arrays["head_coef"], arrays["head_intercept"])
    group_names = arrays["group_names"]
    _check_layout(splits, head, group_names)
    timings = {
        name[len("seconds_") :]: float(value)
        for name, value in arrays.items()
        if name.startswith("seconds_")
    }
    return splits, head, group_names.tolist(), timings


def read_cache(path, key):
    """``(splits, head, group_names, timings)`` from a verified cache file.

    Raises :class:`CacheInvalid` (and nothing else) when the file cannot be
    used; the message says why.
    """
    arrays = _verified_arrays(path, key)
    try:
        return _contents(arrays)
    except CacheInvalid:
        raise
    except Exception as exc:  # a missing array, a head of the wrong shape, ...
        raise CacheInvalid(
            f"its arrays do not fit together ({type(exc).__name__}: {exc})"
        ) from exc
