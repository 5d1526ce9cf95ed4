"""Writing files so that a reader never sees half of them.

- :func:`atomic_write`: one file, written under a temporary name in the same
  folder, flushed to disk, then renamed over the target (``os.replace``, atomic
  on POSIX and Windows). A failure or interruption leaves the old file.
- :func:`write_file_set`: the files of one run (``results.json``,
  ``results.csv``, ... of ``skhsfm benchmark``) as a set. They are written to
  a staging folder inside the target folder; only when every one is complete
  are the old files moved aside and the new ones moved in. A failure while
  writing leaves the old files untouched; a failure while swapping moves the
  old files back. A process killed in the middle of the swap (a window of a few
  renames) leaves a journal, and the next :func:`write_file_set` on the folder
  restores the old files first. Temporary folders are removed on failure.

Only renames of plain files are used (no directory swaps, no links), so the
same code works on Windows, where a file that another program holds open
cannot be replaced: that fails before anything changed, or rolls back.
"""

import errno
import json
import os
import shutil
import tempfile
import time

__all__ = [
    "atomic_write",
    "check_folder_path",
    "ensure_folder",
    "recover_file_set",
    "write_file_set",
]

_JOURNAL = ".skhsfm-swap.json"
_STAGING = ".skhsfm-new-"
_BACKUP = ".skhsfm-old-"
# Longer than any swap takes: an older journal belongs to a killed process.
_SWAP_SECONDS = 60.0


def _fsync(path):
    """Flush a written file to disk (best effort: some file systems refuse)."""
    try:
        with open(path, "rb+") as handle:
            os.fsync(handle.fileno())
    except OSError:
        pass


def _remove(path):
    try:
        os.remove(path)
    except OSError:
        pass


def atomic_write(path, write):
    """Call ``write(tmp_path)``, then put the file at ``path`` in one rename.

    ``tmp_path`` is in the folder of ``path`` and ends with the same extension
    (writers such as ``np.savez`` or ``savefig`` look at it). When ``write``
    raises, or the process is interrupted, ``path`` is unchanged and the
    temporary file is removed.
    """
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    stem, ext = os.path.splitext(os.path.basename(path))
    handle, tmp = tempfile.mkstemp(prefix=f".{stem}.", suffix=f".tmp{ext}", dir=folder)
    os.close(handle)
    try:
        write(tmp)
        _fsync(tmp)
        os.replace(tmp, path)
    except BaseException:
        _remove(tmp)
        raise


def ensure_folder(path, argument):
    """Create the folder ``path`` (given as ``argument``) or say why not.

    The error keeps the type of the OS error (``NotADirectoryError``,
    ``PermissionError``...) and names the argument, the folder and what to do.
    Returns the path.
    """
    path = os.fspath(path)
    if os.path.exists(path) and not os.path.isdir(path):
        raise NotADirectoryError(
            f"{argument}={path!r} is a file, not a folder. Pass a folder you can "
            "write to."
        )
    try:
        os.makedirs(path, exist_ok=True)
        if not os.access(path, os.W_OK | os.X_OK):
            raise PermissionError(errno.EACCES, "not writable", path)
    except OSError as exc:
        reason = exc.strerror or str(exc)
        where = f" ({exc.filename})" if exc.filename and exc.filename != path else ""
        raise type(exc)(
            f"{argument}={path!r}: cannot create or write to this folder: "
            f"{reason}{where}. Pass a folder you can write to."
        ) from exc
    return path


def check_folder_path(path, argument):
    """Say now, without creating anything, why ``path`` (given as
    ``argument``) could not become a folder: it, or the first part of it that
    exists, is a file or cannot be written to. Returns the path.
    """
    path = os.path.abspath(os.fspath(path))
    existing = path
    while not os.path.exists(existing) and os.path.dirname(existing) != existing:
        existing = os.path.dirname(existing)
    if not os.path.isdir(existing):
        what = "is a file" if existing == path else f"is under the file {existing!r}"
        raise NotADirectoryError(
            f"{argument}={path!r} {what}, not a folder. Pass a folder you can write to."
        )
    if not os.access(existing, os.W_OK | os.X_OK):
        raise PermissionError(
            f"{argument}={path!r}: {existing!r} is not writable. Pass a folder you "
            "can write to."
        )
    return path


def _check_names(names):
    for name in names:
        if not name or os.path.basename(name) != name or name in (".", ".."):
            raise ValueError(f"file set names must be plain file names; got {name!r}.")


def _check_targets(folder, names):
    """Refuse to swap over anything that is not a plain file (a folder named
    ``results.json`` would be moved aside and deleted with the old run)."""
    for name in names:
        target = os.path.join(folder, name)
        if os.path.lexists(target) and (
            os.path.isdir(target) or not os.path.isfile(target)
        ):
            raise OSError(
                errno.EISDIR,
                f"{target} exists and is not a file; remove or rename it "
                "(nothing was written)",
            )


def _owner(name):
    """The process id in a staging or backup folder name (None if absent)."""
    parts = name.split("-")  # ".skhsfm", "new" | "old", pid, random
    return int(parts[2]) if len(parts) == 4 and parts[2].isdigit() else None


def _pid_is_alive(pid):
    """True or False on POSIX; None where it cannot be told cheaply."""
    if os.name != "posix":
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # exists, owned by someone else
        return True
    return True


def _remove_stale_staging(folder):
    """Staging folders of killed runs (their process is gone)."""
    try:
        entries = os.listdir(folder)
    except OSError:
        return
    for entry in entries:
        if not entry.startswith((_STAGING, _BACKUP)):
            continue
        pid = _owner(entry)
        if pid is not None and _pid_is_alive(pid) is False:
            shutil.rmtree(os.path.join(folder, entry), ignore_errors=True)


def _roll_back(folder, journal):
    """Put the old files of an unfinished swap back; drop the new ones."""
    backup = os.path.join(folder, journal["backup"])
    old = set(journal["old"])
    for name in journal["names"]:
        target = os.path.join(folder, name)
        saved = os.path.join(backup, name)
        if name in old:
            if os.path.lexists(saved):  # moved aside: bring it back
                os.replace(saved, target)
        elif os.path.isfile(target):  # a new file where the old run had none
            os.remove(target)
    _end_swap(folder, journal)


def _end_swap(folder, journal):
    _remove(os.path.join(folder, _JOURNAL))
    for key in ("backup", "staging"):
        shutil.rmtree(os.path.join(folder, journal[key]), ignore_errors=True)


def _read_journal(path):
    try:
        with open(path, encoding="utf-8") as handle:
            journal = json.load(handle)
        _check_names(journal["names"])
        _check_names(journal["old"])
        _check_names([journal["backup"], journal["staging"]])
        if not journal["backup"].startswith(_BACKUP):
            raise ValueError("unexpected backup folder")
        return journal
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _swap_in_progress(journal, path):
    """Whether another live process is swapping right now. A swap is a few
    renames, so a journal older than a minute was left by a killed process
    (whose id may since have been reused)."""
    pid = _owner(journal["backup"])
    try:
        recent = time.time() - os.path.getmtime(path) < _SWAP_SECONDS
    except OSError:
        return False
    return recent and pid not in (None, os.getpid()) and _pid_is_alive(pid) is True


def recover_file_set(folder):
    """Finish what a killed :func:`write_file_set` left in ``folder``.

    Restores the previous files when a swap was interrupted, and removes the
    temporary folders of runs whose process is gone. Returns True when a swap
    was rolled back.
    """
    folder = os.fspath(folder)
    path = os.path.join(folder, _JOURNAL)
    rolled_back = False
    if os.path.isfile(path):
        journal = _read_journal(path)
        if journal is None:  # written atomically, so only a foreign file
            _remove(path)
        elif _swap_in_progress(journal, path):
            raise OSError(
                errno.EBUSY,
                f"another process (pid {_owner(journal['backup'])}) is replacing "
                f"the files in {folder} right now; wait for it to finish or use "
                "another folder",
            )
        else:
            _roll_back(folder, journal)
            rolled_back = True
    _remove_stale_staging(folder)
    return rolled_back


def _swap(folder, staging, written, names):
    backup = tempfile.mkdtemp(prefix=f"{_BACKUP}{os.getpid()}-", dir=folder)
    journal = {
        "staging": os.path.basename(staging),
        "backup": os.path.basename(backup),
        "old": [n for n in names if os.path.lexists(os.path.join(folder, n))],
        "names": list(names),
    }
    try:
        atomic_write(
            os.path.join(folder, _JOURNAL),
            lambda tmp: _dump_journal(tmp, journal),
        )
    except BaseException:
        shutil.rmtree(backup, ignore_errors=True)
        raise
    try:
        for name in journal["old"]:
            os.replace(os.path.join(folder, name), os.path.join(backup, name))
        for name in written:
            os.replace(os.path.join(staging, name), os.path.join(folder, name))
    except BaseException:
        _roll_back(folder, journal)
        raise
    _end_swap(folder, journal)


def _dump_journal(path, journal):
    with open(path, "w", encoding="utf-8") as handle:
        json.dump(journal, handle)


def write_file_set(folder, writers, names=None):
    """Replace the files of one run in ``folder`` by new ones, as a set.

    Parameters
    ----------
    folder : str or path-like
        An existing folder; other files in it are left alone.
    writers : dict
        ``{file name: write}``; ``write(path)`` writes that file at ``path``
        (a staging location) and may return False to write nothing (the file
        is then absent from the new set).
    names : sequence of str or None, default=None
        Every file name of the set (None: the keys of ``writers``). A file of
        the old set that the new run does not write is removed with the swap,
        so the folder never mixes two runs.

    Returns
    -------
    written : list of str
        The names written, in the order of ``writers``.

    Raises
    ------
    Whatever a writer raises, or OSError from the file system: the folder then
    holds the old set, and no temporary file remains.
    """
    folder = os.fspath(folder)
    names = list(writers) if names is None else list(names)
    _check_names(names)
    recover_file_set(folder)
    _check_targets(folder, names)
    staging = tempfile.mkdtemp(prefix=f"{_STAGING}{os.getpid()}-", dir=folder)
    try:
        written = []
        for name, write in writers.items():
            if write(os.path.join(staging, name)) is not False:
                written.append(name)
        for name in written:
            _fsync(os.path.join(staging, name))
        _swap(folder, staging, written, names)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return written
