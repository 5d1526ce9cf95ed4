"""Importing the heavy optional dependencies (torch) lazily, and safely.

Every lazy ``import torch`` in the package goes through :func:`import_torch`
(most call sites reach it through :mod:`skhsfm._utils.torch`). Besides the install
hint when torch is missing, it detects a *half-imported* torch: when a first
``import torch`` is interrupted (Ctrl-C in a notebook while ``fit`` imports it)
or fails half-way, Python forgets the ``torch`` module but keeps the
submodules already loaded, and every later import fails with "partially
initialized module 'torch'" or, worse, seems to succeed with a broken module.
Nothing inside the process can repair that state, so the error says to restart
the interpreter.

This module imports nothing heavy itself.
"""

import importlib
import sys

__all__ = ["HalfImportedError", "import_fully", "import_torch"]

TORCH_MISSING = (
    "skhsfm needs PyTorch for fitting and embedding; install it with "
    "`pip install torch` (see https://pytorch.org for GPU builds). "
    "Fitted classifiers predict without torch."
)


class HalfImportedError(ImportError):
    """A module was left half-imported by an interrupted or failed import."""


def _restart_message(name):
    return (
        f"{name} is only partly imported in this Python process: an earlier "
        f"`import {name}` was interrupted (e.g. by Ctrl-C) or failed half-way, "
        f"and {name} cannot be imported again in the same process. Restart the "
        "Python interpreter (or the notebook kernel) and run again."
    )


def _is_initializing(module):
    spec = getattr(module, "__spec__", None)
    return bool(getattr(spec, "_initializing", False))


def import_fully(name, missing=None):
    """Import the top-level package ``name``, refusing a half-imported one.

    Parameters
    ----------
    name : str
        A top-level package name, e.g. ``"torch"``.
    missing : str or None, default=None
        The message of the :class:`ImportError` raised when the package is not
        installed (None: Python's own message).

    Returns
    -------
    module

    Raises
    ------
    HalfImportedError
        When an earlier import of ``name`` in this process stopped half-way.
    ImportError
        When ``name`` is not installed (with ``missing`` as the message).
    """
    module = sys.modules.get(name)
    if module is not None and not _is_initializing(module):
        return module
    prefix = name + "."
    if module is None and any(key.startswith(prefix) for key in list(sys.modules)):
        # Python removed the package after its import failed but kept the
        # submodules it had loaded: importing again runs the package's
        # __init__ against those leftovers.
        raise HalfImportedError(_restart_message(name))
    try:
        return importlib.import_module(name)
    except ImportError as exc:
        if "partially initialized" in str(exc) or isinstance(exc, HalfImportedError):
            raise HalfImportedError(_restart_message(name)) from exc
        if exc.name == name and missing is not None:
            raise ImportError(missing) from exc
        raise
    except AttributeError as exc:
        if "partially initialized" in str(exc):
            raise HalfImportedError(_restart_message(name)) from exc
        raise


def import_torch():
    """``torch``, imported on first use (see :func:`import_fully`)."""
    return import_fully("torch", TORCH_MISSING)
