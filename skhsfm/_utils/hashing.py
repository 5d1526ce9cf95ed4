"""Content digests: cache keys (embedding caches, benchmark caches) and the
digest a fitted head carries in its saved state.

One module, so that every cache and every saved head hashes arrays the same way.
"""

import hashlib
from numbers import Integral, Real

import numpy as np

__all__ = ["array_digest", "state_digest"]


def array_digest(array, digest_size=16):
    """Hex BLAKE2b digest of an array's bytes (its C-ordered contents).

    Two arrays with the same bytes but different shapes or dtypes get the same
    digest; callers that need those apart key on ``(shape, dtype, digest)``.
    """
    data = np.ascontiguousarray(array)
    return hashlib.blake2b(
        data.view(np.uint8).ravel(), digest_size=digest_size
    ).hexdigest()


def state_digest(state, *, skip=(), digest_size=16):
    """Hex BLAKE2b digest of an object's state (a ``__dict__``-like mapping).

    Covers every entry but those named in ``skip``: its name and its value.
    Arrays count with their dtype, shape and bytes; dicts, lists and tuples
    entry by entry; numbers, strings and bytes by value. A tuple and a list, a
    numpy and a Python scalar agree, so that a serialiser that turns one into
    the other (as ``skops`` may) does not look like damage. Other objects (a
    ``RandomState`` given as ``random_state``, ...) count by their type only.
    """
    h = hashlib.blake2b(digest_size=digest_size)
    _feed(h, {name: value for name, value in state.items() if name not in skip})
    return h.hexdigest()


def _feed(h, value):
    if isinstance(value, np.ndarray) and value.ndim:
        h.update(f"array {value.dtype.str} {value.shape}|".encode())
        if value.dtype.hasobject:
            for item in value.ravel():
                _feed(h, item)
        else:
            h.update(np.ascontiguousarray(value).view(np.uint8).ravel())
    elif isinstance(value, np.ndarray):  # 0-d: as the scalar it holds
        _feed(h, value[()])
    elif isinstance(value, (str, np.str_)):
        h.update(b"str|" + str(value).encode("utf-8", "surrogatepass") + b"|")
    elif isinstance(value, (bytes, np.bytes_)):
        h.update(b"bytes|%d|" % len(value) + bytes(value))
    elif isinstance(value, (Integral, np.bool_)):
        h.update(f"int {int(value)}|".encode())
    elif isinstance(value, Real):
        h.update(f"num {float(value)!r}|".encode())
    elif isinstance(value, dict):
        h.update(f"dict {len(value)}|".encode())
        for key in sorted(value, key=str):
            _feed(h, key)
            _feed(h, value[key])
    elif isinstance(value, (list, tuple)):
        h.update(f"seq {len(value)}|".encode())
        for item in value:
            _feed(h, item)
    elif value is None:
        h.update(b"none|")
    else:
        h.update(f"object {type(value).__qualname__}|".encode())
