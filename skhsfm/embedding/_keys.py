"""Cache keys: fingerprints of a backbone configuration and of images.

Array contents are digested with :func:`skhsfm._utils.hashing.array_digest`, like
every other cache in the package. joblib and torch are imported inside the
functions.
"""

import hashlib
import os

import numpy as np

from skhsfm._utils.hashing import array_digest

__all__ = [
    "CACHE_FORMAT",
    "backbone_key",
    "fingerprint_images",
    "image_keys",
    "load_key",
]

#: Bump when the meaning of cached embeddings changes, so old caches are not reused.
CACHE_FORMAT = 1

_UNHASHABLE = object()


def _as_str(value):
    return os.fspath(value) if isinstance(value, os.PathLike) else value


def path_stamp(path):
    """(path, size, mtime) of a file, or of every file in a folder; None if absent."""
    path = os.path.expanduser(os.fspath(path))
    if os.path.isfile(path):
        stat = os.stat(path)
        return (os.path.abspath(path), stat.st_size, stat.st_mtime_ns)
    if os.path.isdir(path):
        names = sorted(os.listdir(path))
        return tuple(path_stamp(os.path.join(path, name)) for name in names)
    return None


def object_fingerprint(obj):
    """A content hash of a module or callable, or ``_UNHASHABLE``."""
    import joblib

    try:
        import torch
    except ImportError:  # pragma: no cover - torch is a hard dependency
        torch = None
    if torch is not None and isinstance(obj, torch.nn.Module):
        state = {
            name: tensor.detach().cpu().float().numpy()
            for name, tensor in obj.state_dict().items()
        }
        return (type(obj).__module__, type(obj).__qualname__, repr(obj), state)
    try:
        return joblib.hash(obj)
    except Exception:  # lambdas and other unpicklable callables
        return _UNHASHABLE


def backbone_key(name, *, backbone, pretrained, preprocess, precision):
    """A fingerprint of everything that changes the (unnormalized) embeddings.

    Parameters
    ----------
    name : BackboneName
        The parsed backbone name.
    backbone : str, torch.nn.Module or callable
        The embedder's ``backbone`` (the module itself for a custom one).
    pretrained, preprocess, precision
        The embedder's parameters of the same names.

    Returns
    -------
    key : str or None
        None when a custom backbone or ``preprocess`` cannot be fingerprinted
        (it cannot be pickled), so that nothing is cached under a wrong key.
    """
    import joblib

    parts = [CACHE_FORMAT, precision]
    if name.is_custom:
        parts.append(object_fingerprint(backbone))
    else:
        parts += [
            name.library,
            name.model_name,
            path_stamp(name.model) if name.source == "local-dir" else None,
            _as_str(pretrained),
            path_stamp(pretrained) if pretrained is not None else None,
        ]
    if preprocess is not None:
        parts.append(object_fingerprint(preprocess))
    if any(part is _UNHASHABLE for part in parts):
        return None
    return joblib.hash(parts)


def load_key(name, *, backbone, pretrained, device):
    """What a loaded backbone depends on: the key of the per-process registry.

    Library backbones: the parsed name, the weights and the stamps of any
    local files. A user module: a digest of its class, structure and weights
    (``object_fingerprint``), so that equal copies (unpickled in a worker,
    cloned) share one load; a callable that cannot be fingerprinted is keyed on
    its ``id``, so it is never confused with another.
    """
    import joblib

    if name.is_custom:
        fingerprint = object_fingerprint(backbone)
        identity = (
            ("id", id(backbone))
            if fingerprint is _UNHASHABLE
            else ("content", joblib.hash(fingerprint))
        )
    else:
        identity = (
            str(name),
            path_stamp(name.model) if name.source == "local-dir" else None,
            _as_str(pretrained),
            path_stamp(pretrained) if pretrained is not None else None,
        )
    return identity + (str(device),)


def _item_key(item):
    if isinstance(item, str):
        stat = os.stat(item)
        return ("path", os.path.abspath(item), stat.st_size, stat.st_mtime_ns)
    if isinstance(item, np.ndarray):
        return ("array", item.shape, str(item.dtype), array_digest(item))
    digest = array_digest(np.frombuffer(item.tobytes(), dtype=np.uint8))
    return ("pil", item.mode, item.size, digest)


def image_keys(images):
    """One key string per image, for the per-image cache entries.

    The rows of an image stack get the key the same image has as a list item,
    so a stack, a list and any shard of them share entries. Files are keyed on
    absolute path, size and modification time, arrays and PIL images on their
    content.
    """
    # iterating a validated stack gives its images, each an (H, W[, C]) array
    return [repr(_item_key(item)) for item in images]


def fingerprint_images(images):
    """A short string that changes when the images (or the files) change.

    ``images`` come from ``_images.as_image_sequence``. Files are keyed on
    absolute path, size and modification time rather than content, so
    fingerprinting a large image folder stays cheap.
    """
    hasher = hashlib.blake2b(digest_size=16)
    if isinstance(images, np.ndarray):
        keys = [("stack", images.shape, str(images.dtype), array_digest(images))]
    else:
        keys = [_item_key(item) for item in images]
    for key in keys:
        hasher.update(repr(key).encode())
    return hasher.hexdigest()
