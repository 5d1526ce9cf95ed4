"""What every ``skhsfm`` command shares: errors, progress output, devices.

tqdm and torch are imported inside the functions that use them.
"""

import contextlib
import importlib.util
import os
import sys
import warnings

from skhsfm._utils.progress import NoBar, progress_bar

__all__ = [
    "CLIError",
    "Reporter",
    "add_common_options",
    "check_device",
    "check_positive",
    "collect_warnings",
    "describe_error",
    "make_out",
    "setup_torch",
]


class CLIError(Exception):
    """An error the command reports as one line (exit status 1), no traceback."""


# What bad input, files or settings raise; reported as the message alone.
# Anything else is probably a bug, and is reported with its type and a hint.
_INPUT_ERRORS = (
    ValueError,
    TypeError,
    OSError,
    ImportError,
    EOFError,
    MemoryError,
    RuntimeError,
)


def describe_error(exc):
    """One line for an exception that reached the command: the message, with
    the exception's type and a pointer to ``--traceback`` for unexpected
    ones."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    if isinstance(exc, _INPUT_ERRORS):
        return text
    return (
        f"{type(exc).__name__}: {text} (unexpected; rerun with --traceback for "
        "the details, and report it if the input looks right)"
    )


class Reporter:
    """Progress messages and bars on ``stream`` (stderr), or nothing when quiet.

    Bars are shown only when tqdm is installed and ``stream`` is a terminal, as
    tqdm itself does by default; in a log file the one-line messages remain.
    Bars come from :func:`skhsfm._utils.progress.progress_bar`.
    """

    def __init__(self, quiet=False, stream=None):
        self.quiet = quiet
        self.stream = sys.stderr if stream is None else stream
        isatty = getattr(self.stream, "isatty", lambda: False)
        self._bars = (
            not quiet and isatty() and importlib.util.find_spec("tqdm") is not None
        )

    @property
    def bars(self):
        """Whether progress bars are shown."""
        return self._bars

    def log(self, message):
        """Print one progress line (kept clear of any bar being drawn)."""
        if self.quiet:
            return
        if self._bars:
            from tqdm.auto import tqdm

            tqdm.write(message, file=self.stream)
        else:
            print(message, file=self.stream, flush=True)

    def warn(self, message):
        """Print one ``skhsfm: warning:`` line, also when quiet."""
        if self._bars:
            from tqdm.auto import tqdm

            tqdm.write(f"skhsfm: warning: {message}", file=self.stream)
        else:
            print(f"skhsfm: warning: {message}", file=self.stream, flush=True)

    def bar(self, total, desc, unit="it", leave=False):
        """A tqdm bar, or a :class:`~skhsfm._utils.progress.NoBar` (draws nothing)."""
        if not self._bars:
            return NoBar()
        return progress_bar(
            total, desc, show=True, unit=unit, leave=leave, file=self.stream
        )

    @contextlib.contextmanager
    def epoch_callback(self, total, desc):
        """An ``on_epoch`` callback advancing a bar of ``total`` epochs.

        For trainers such as :func:`~skhsfm.datasets.train_dominoes_backbone`
        that call ``on_epoch(record)`` after every epoch with an
        :class:`~skhsfm.datasets.EpochRecord`; its loss and accuracy are shown
        next to the bar. The bar is closed when the block ends.
        """
        bar = self.bar(total, desc, unit="epoch")

        def on_epoch(record):
            bar.update(1)
            text = f"loss {record.loss:.4f}"
            if record.accuracy is not None:
                text += f", train accuracy {record.accuracy:.4f}"
            bar.set_postfix_str(text)

        try:
            yield on_epoch
        finally:
            bar.close()


def check_device(device):
    """Resolve ``--device``; an unusable device becomes a :class:`CLIError`."""
    from skhsfm._utils.torch import resolve_device

    try:
        return resolve_device(device)
    except (TypeError, ValueError) as exc:
        raise CLIError(f"--device {device}: {exc}") from exc


def setup_torch(device, threads):
    """Resolve the device and set torch's CPU threads; ``(device, n_threads)``."""
    from skhsfm._utils.torch import torch

    resolved = check_device(device)
    if threads is not None:
        torch.set_num_threads(threads)
    return resolved, torch.get_num_threads()


def make_out(path):
    """Create the output folder ``path`` (a :class:`CLIError` when impossible)."""
    try:
        os.makedirs(path, exist_ok=True)
    except OSError as exc:
        raise CLIError(f"--out {path}: cannot create the output folder: {exc}") from exc
    return path


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


# ------------------------------------------------------------ parser pieces


def add_run_options(parser, quiet_help="no progress output"):
    """``--device``, ``--quiet`` and ``--traceback``: how any command runs."""
    parser.add_argument(
        "--device",
        default="auto",
        help="where torch runs: auto (CUDA when available), cpu, cuda, cuda:N "
        "(default: %(default)s)",
    )
    parser.add_argument("--quiet", action="store_true", help=quiet_help)
    parser.add_argument(
        "--traceback",
        action="store_true",
        help="on an error, show the Python traceback instead of one line",
    )


def add_common_options(parser):
    """The options of the commands that write a report: device, output, size,
    output level, threads."""
    add_run_options(parser, quiet_help="no progress output, only the table")
    parser.add_argument(
        "--out",
        default="skhsfm_out",
        metavar="DIR",
        help="output folder (default: %(default)s)",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="a small, fast run (smaller data, 1 seed)",
    )
    parser.add_argument(
        "--threads",
        type=int,
        default=None,
        metavar="N",
        help="torch CPU threads (default: torch's choice)",
    )


def add_backbone_options(parser, backbone_help, *, required=False, weights="DEFAULT"):
    """``--backbone``, ``--pretrained``, ``--weights``, ``--batch-size``: the
    embedding backbone of the commands that embed images."""
    parser.add_argument(
        "--backbone", required=required, metavar="NAME", help=backbone_help
    )
    parser.add_argument(
        "--pretrained",
        metavar="TAG_OR_FILE",
        help="open_clip weights: a tag or a local file; 'none' for random weights",
    )
    parser.add_argument(
        "--weights",
        metavar="NAME_OR_FILE",
        help=f"torchvision weights: a name (default: {weights}) or a local "
        "state_dict file; 'none' for random weights",
    )
    parser.add_argument(
        "--batch-size",
        type=int,
        default=64,
        metavar="N",
        help="images per forward pass (default: %(default)s)",
    )


def check_positive(parser, args, names):
    """``parser.error`` (exit status 2) for any option in ``names`` below 1."""
    for name in names:
        value = getattr(args, name, None)
        if value is not None and value < 1:
            flag = "--" + name.replace("_", "-")
            parser.error(f"{flag} must be >= 1; got {value}.")
