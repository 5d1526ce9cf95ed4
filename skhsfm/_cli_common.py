"""Shared pieces of the ``skhsfm`` command: errors, progress output, devices.

tqdm and torch are imported inside the functions that use them.
"""

import contextlib
import logging
import sys
import warnings

__all__ = ["CLIError", "Reporter", "check_device", "collect_warnings"]


class CLIError(Exception):
    """An error the command reports as one line (exit status 1), no traceback."""


def _import_tqdm():
    try:
        from tqdm.auto import tqdm
    except ImportError:
        return None
    return tqdm


class _NoBar:
    """Stands in for a tqdm bar when bars are off."""

    def update(self, n=1):
        pass

    def set_postfix_str(self, text):
        pass

    def close(self):
        pass


class Reporter:
    """Progress messages and bars on ``stream`` (stderr), or nothing when quiet.

    Bars are shown only when tqdm is installed and ``stream`` is a terminal, as
    tqdm itself does by default; in a log file the one-line messages remain.
    """

    def __init__(self, quiet=False, stream=None):
        self.quiet = quiet
        self.stream = sys.stderr if stream is None else stream
        tqdm = None if quiet else _import_tqdm()
        isatty = getattr(self.stream, "isatty", lambda: False)
        self._tqdm = tqdm if tqdm is not None and isatty() else None

    @property
    def bars(self):
        """Whether progress bars are shown."""
        return self._tqdm is not None

    def log(self, message):
        """Print one progress line (kept clear of any bar being drawn)."""
        if self.quiet:
            return
        if self._tqdm is not None:
            self._tqdm.write(message, file=self.stream)
        else:
            print(message, file=self.stream, flush=True)

    def bar(self, total, desc, unit="it", leave=False):
        """A tqdm bar, or an object with the same methods that draws nothing."""
        if self._tqdm is None:
            return _NoBar()
        return self._tqdm(
            total=total, desc=desc, unit=unit, leave=leave, file=self.stream
        )

    @contextlib.contextmanager
    def epoch_bar(self, total, desc, logger_name):
        """A bar advanced by every ``"epoch ..."`` DEBUG record of ``logger_name``.

        The dominoes backbone trainer logs one such record per epoch; listening to
        it gives a per-epoch bar without changing the trainer.
        """
        bar = self.bar(total, desc, unit="epoch")
        if not self.bars:
            yield bar
            return
        logger = logging.getLogger(logger_name)
        handler = _EpochHandler(bar)
        previous = logger.level
        logger.addHandler(handler)
        logger.setLevel(logging.DEBUG)
        try:
            yield bar
        finally:
            logger.removeHandler(handler)
            logger.setLevel(previous)
            bar.close()


class _EpochHandler(logging.Handler):
    def __init__(self, bar):
        super().__init__(logging.DEBUG)
        self._bar = bar

    def emit(self, record):
        message = record.getMessage()
        if message.startswith("epoch "):
            self._bar.update(1)
            self._bar.set_postfix_str(message.partition(": ")[2][:60])


def check_device(device):
    """Resolve ``--device``; an unusable device becomes a :class:`CLIError`."""
    from skhsfm._torch import resolve_device

    try:
        return resolve_device(device)
    except (TypeError, ValueError) as exc:
        raise CLIError(f"--device {device}: {exc}") from exc


@contextlib.contextmanager
def collect_warnings(sink):
    """Record warnings raised in the block into ``sink`` (a list of strings).

    The command reports each distinct warning once per method instead of letting
    a warning per seed clutter the progress output.
    """
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        yield
    for item in caught:
        text = f"{item.category.__name__}: {str(item.message).splitlines()[0]}"
        if text not in sink:
            sink.append(text)
