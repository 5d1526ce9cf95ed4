"""The ``skhsfm`` command.

``skhsfm benchmark`` (:mod:`skhsfm.cli.benchmark`)
    ERM head, DFR, AFR, DPE and HSFM on identical frozen embeddings, over several
    seeds; prints a table of test worst-group / mean / per-group accuracy and
    fit times, and writes it as JSON, CSV and a PNG figure. With no arguments it
    runs the embedded, offline dominoes benchmark (a few minutes on 2 CPU cores).
``skhsfm speed`` (:mod:`skhsfm.cli.speed`)
    HSFM fit / predict timings on Waterbirds- and CelebA-shaped embeddings and
    the embedding throughput of two backbones.
``skhsfm embed`` (:mod:`skhsfm.cli.embed`)
    Images (a folder, a glob or a list of paths) to an embeddings ``.npy``
    file with the paths in row order; locally, on Dask or on Ray, resumable
    by shards.

One module per command (its parser, its settings, its run); where embeddings
come from is :mod:`skhsfm.cli._sources`, what is printed and written
:mod:`skhsfm.cli._report`. torch, matplotlib and tqdm are imported only when a
command needs them.
"""

import argparse
import contextlib
import sys
import time

from skhsfm.cli import benchmark, embed, speed
from skhsfm.cli._common import CLIError, Reporter, describe_error

__all__ = ["main", "build_parser"]

#: The subcommands, in ``--help`` order: modules with ``add_parser(subparsers)``.
_COMMANDS = (benchmark, speed, embed)


def build_parser():
    """The ``skhsfm`` argument parser, with one subparser per command."""
    from skhsfm import __version__

    parser = argparse.ArgumentParser(
        prog="skhsfm",
        description="Group-robust linear heads on frozen embeddings (HSFM and "
        "its peers).",
    )
    parser.add_argument(
        "--version", action="version", version=f"%(prog)s {__version__}"
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    subparsers.required = True
    for command in _COMMANDS:
        command.add_parser(subparsers)
    return parser


def main(argv=None):
    """Run the ``skhsfm`` command; returns the exit status.

    Parameters
    ----------
    argv : list of str or None, default=None
        The arguments (``sys.argv[1:]`` when None).

    Returns
    -------
    status : int
        0 on success, 1 after a reported error (one ``skhsfm: error:`` line;
        ``--traceback`` shows the Python traceback instead), 130 after
        Ctrl-C. Bad arguments exit with status 2 through :class:`SystemExit`,
        as argparse does.
    """
    try:
        return _run(argv)
    except KeyboardInterrupt:
        # Ctrl-C at any point, a late one included (while the last line or an
        # error is printed), exits 130 like every other interruption, not by
        # the signal (status -2) with a traceback.
        with contextlib.suppress(KeyboardInterrupt):
            print("skhsfm: interrupted", file=sys.stderr)
        return 130


def _run(argv):
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser()
    args = parser.parse_args(argv)
    tic = time.perf_counter()
    try:
        status = args.handler(args.subparser, args, argv)
    except CLIError as exc:
        print(f"skhsfm: error: {_one_line(exc)}", file=sys.stderr)
        return 1
    except Exception as exc:
        # Input problems found deep inside (NaN embeddings, a bad label file,
        # a full disk) are reported as one line too; --traceback shows where.
        if getattr(args, "traceback", False):
            raise
        print(f"skhsfm: error: {describe_error(exc)}", file=sys.stderr)
        return 1
    if not args.quiet:
        Reporter(stream=sys.stderr).log(f"done in {time.perf_counter() - tic:.1f} s")
    return status


def _one_line(exc):
    return " ".join(str(exc).split())
