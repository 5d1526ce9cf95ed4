"""Content digests for cache keys (embedding caches, benchmark caches).

One function, so that every cache in the package keys arrays the same way.
"""

import hashlib

import numpy as np

__all__ = ["array_digest"]


def array_digest(array, digest_size=16):
    """Hex BLAKE2b digest of an array's bytes (its C-ordered contents).

    Two arrays with the same bytes but different shapes or dtypes get the same
    digest; callers that need those apart key on ``(shape, dtype, digest)``.
    """
    data = np.ascontiguousarray(array)
    return hashlib.blake2b(
        data.view(np.uint8).ravel(), digest_size=digest_size
    ).hexdigest()
