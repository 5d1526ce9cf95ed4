"""Verified files: the one way the package's on-disk stores write and read.

The embedding cache (``skhsfm/embedding/_cache.py``), the benchmark's cache
(``skhsfm/cli/_cache.py``) and the ``skhsfm embed`` shard store
(``skhsfm/cli/embed.py``) keep their data in files that are

- **keyed**: a file records the key (a text: settings, versions, image) it was
  written for, and its name comes from :func:`key_digest` of that key;
- **checksummed**: a file's manifest (an ``__meta__`` entry) lists each array
  with its shape, dtype and BLAKE2b checksum;
- **written atomically** (:func:`~skhsfm._utils.atomic.atomic_write`): a
  reader sees the old file or the complete new one, never half of one.

:func:`read_verified` returns a file's arrays only when all of it matches, and
otherwise raises :class:`FileInvalid` saying why; each store then recomputes
(with a warning) or refuses. Small JSON manifests of a store (its format, its
settings) go through :func:`write_json` and :func:`read_json`.
"""

import hashlib
import json

import numpy as np

from skhsfm._utils.atomic import atomic_write
from skhsfm._utils.hashing import array_digest
from skhsfm._utils.npz import open_npz

__all__ = [
    "FileInvalid",
    "key_digest",
    "read_json",
    "read_verified",
    "verified_shapes",
    "write_json",
    "write_verified",
]

#: Name of the manifest inside a verified ``.npz`` file.
MANIFEST = "__meta__"


class FileInvalid(Exception):
    """A stored file that cannot be used; the message says why ("it ...")."""


def key_digest(key, digest_size=16):
    """Hex BLAKE2b digest of the text ``key``: a file name for it."""
    return hashlib.blake2b(key.encode("utf-8"), digest_size=digest_size).hexdigest()


def write_verified(path, arrays, key, *, durable=True):
    """Write ``arrays`` (a dict of name -> array) to the ``.npz`` file ``path``
    with a manifest: ``key`` and each array's shape, dtype and checksum.

    Atomic. ``durable=False`` skips flushing the file to disk: for stores of
    many small files, where a file a crash leaves short fails verification
    and is recomputed. Raises whatever writing raises (OSError).
    """
    arrays = {name: np.asarray(value) for name, value in arrays.items()}
    if MANIFEST in arrays:
        raise ValueError(f"{MANIFEST!r} is the manifest's name; rename that array.")
    manifest = {
        "key": key,
        "arrays": {
            name: [list(a.shape), a.dtype.str, array_digest(a)]
            for name, a in arrays.items()
        },
    }
    arrays[MANIFEST] = np.asarray(json.dumps(manifest, sort_keys=True))

    def write(tmp):
        with open(tmp, "wb") as handle:
            np.savez(handle, **arrays)

    atomic_write(path, write, durable=durable)


def read_verified(path, key):
    """The arrays of the verified file ``path``, written for ``key``.

    Every array is checked against the manifest: the key, the list of arrays,
    each shape, dtype and checksum.

    Raises
    ------
    FileInvalid
        When anything does not match, or the file cannot be read (missing,
        truncated, not an ``.npz``); nothing else.
    """
    return _read(path, key, checksums=True)


def verified_shapes(path, key):
    """``{name: (shape, dtype)}`` of the verified file ``path``, written for
    ``key``: a cheap look (the manifest and the arrays' headers, not their
    data) at whether the file is there, complete and as recorded.

    Raises :class:`FileInvalid` as :func:`read_verified` does; a flipped byte
    in the data is only found by :func:`read_verified`.
    """
    return _read(path, key, checksums=False)


def _read(path, key, checksums):
    try:
        with open_npz(path) as stored:  # closes the file whatever happens
            names = set(stored.files)
            if MANIFEST not in names:
                raise FileInvalid("it has no checksums (written by an older skhsfm)")
            manifest = json.loads(str(stored[MANIFEST][()]))
            if manifest.get("key") != key:
                raise FileInvalid("it was written for other settings or versions")
            listed = manifest["arrays"]
            if set(listed) != names - {MANIFEST}:
                raise FileInvalid("its arrays differ from those it records")
            if not checksums:
                for name, (shape, dtype, _) in listed.items():
                    _check_header(name, *_header(stored, name), shape, dtype)
                return {
                    name: (tuple(shape), np.dtype(dtype))
                    for name, (shape, dtype, _) in listed.items()
                }
            return {
                name: _checked(stored, name, shape, dtype, digest)
                for name, (shape, dtype, digest) in listed.items()
            }
    except FileInvalid:
        raise
    except Exception as exc:  # BadZipFile, bad CRC, zlib.error, EOFError, ...
        text = " ".join(str(exc).split()) or "no details"
        raise FileInvalid(f"it cannot be read ({type(exc).__name__}: {text})") from exc


def _header(stored, name):
    """Shape and dtype of an array of an open ``.npz`` from its ``.npy``
    header, without reading the data."""
    readers = {
        (1, 0): np.lib.format.read_array_header_1_0,
        (2, 0): np.lib.format.read_array_header_2_0,
    }
    with stored.zip.open(f"{name}.npy") as member:
        reader = readers.get(np.lib.format.read_magic(member))
        if reader is not None:
            shape, _, dtype = reader(member)
            return shape, dtype
    value = stored[name]  # a rarer header version: read the array
    return value.shape, value.dtype


def _check_header(name, shape, dtype, written_shape, written_dtype):
    if list(shape) != written_shape or dtype.str != written_dtype:
        raise FileInvalid(
            f"array {name} has shape {tuple(shape)} and dtype {dtype}; it was "
            f"written with {tuple(written_shape)}, {written_dtype}"
        )


def _checked(stored, name, shape, dtype, digest):
    value = stored[name]
    _check_header(name, value.shape, value.dtype, shape, dtype)
    if array_digest(value) != digest:
        raise FileInvalid(f"array {name} does not match its checksum")
    return value


def write_json(path, data, *, durable=True):
    """Write ``data`` as JSON to ``path``, atomically."""
    text = json.dumps(data, indent=1, sort_keys=True).encode("utf-8")

    def write(tmp):
        with open(tmp, "wb") as handle:
            handle.write(text)

    atomic_write(path, write, durable=durable)


def read_json(path):
    """The JSON object (a dict) in ``path``, or None when it is missing,
    unreadable or not a JSON object."""
    try:
        with open(path, encoding="utf-8") as handle:
            data = json.load(handle)
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None
