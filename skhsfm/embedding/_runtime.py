"""Loaded backbones shared within one process.

A Dask worker or Ray actor receives a fresh copy of the embedder with every
task (it is unpickled again), and a grid search clones it; each copy would load
its backbone again. Embedders whose load settings are equal share one loaded
model per process instead: :func:`shared_backbone` keys it on what the load
depends on (library, model, weights and their file stamps, device; a
user-supplied module by a fingerprint of its class and weights, not by its
``id``), and keeps the most recently used :data:`MAX_SHARED` of them.

Each embedder still holds its own reference, so a model stays loaded while an
embedder uses it even after it leaves this registry. :func:`load_counts`
reports how many loads happened in this process (diagnostics and tests).
"""

import collections
import threading

__all__ = ["MAX_SHARED", "clear_shared", "load_counts", "shared_backbone"]

#: How many loaded backbones a process keeps for embedders created later.
#: Small, because each may hold a large model (on a GPU too).
MAX_SHARED = 2

_SHARED = collections.OrderedDict()
_LOADS = collections.Counter()
# One lock for the registry and the loads: two threads of a worker asking for
# the same model load it once; loads of different models wait for each other,
# which only happens when a process switches models.
_LOCK = threading.RLock()


def shared_backbone(key, load):
    """The loaded backbone for ``key``, calling ``load()`` only on a miss.

    Parameters
    ----------
    key : hashable
        Everything the loaded model depends on, device included.
    load : callable
        ``load() -> LoadedBackbone``.
    """
    with _LOCK:
        if key in _SHARED:
            _SHARED.move_to_end(key)
            return _SHARED[key]
        loaded = load()
        _LOADS[key] += 1
        _SHARED[key] = loaded
        while len(_SHARED) > MAX_SHARED:
            _SHARED.popitem(last=False)
        return loaded


def load_counts():
    """How many times each backbone key was loaded in this process (a dict)."""
    with _LOCK:
        return dict(_LOADS)


def clear_shared():
    """Forget the shared backbones (embedders keep the ones they hold)."""
    with _LOCK:
        _SHARED.clear()
