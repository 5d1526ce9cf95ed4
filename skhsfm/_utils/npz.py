"""Reading ``.npz`` archives without leaking the file.

``np.load(path)`` opens the file itself and, when the archive turns out to be
damaged (truncated, not a zip), raises without closing it: the handle stays
open until the garbage collector finds it, with a ``ResourceWarning: unclosed
file``. Every cache that reads ``.npz`` files reads them through
:func:`open_npz`, which owns the file handle and closes it whatever happens.
"""

import contextlib

import numpy as np

__all__ = ["open_npz"]


@contextlib.contextmanager
def open_npz(path):
    """``with open_npz(path) as stored:`` the archive's arrays (``NpzFile``).

    The file is closed on every way out, a damaged archive included (numpy's
    own error then propagates). An ``.npy`` file or anything else that is not
    an archive is a ``ValueError``. Object arrays are never unpickled.
    """
    with open(path, "rb") as handle:
        stored = np.load(handle, allow_pickle=False)
        if not isinstance(stored, np.lib.npyio.NpzFile):
            raise ValueError(f"{path} is not an .npz archive")
        with stored:
            yield stored
