"""The ``skhsfm`` command.

``skhsfm benchmark``
    ERM head, DFR, AFR and HSFM on identical frozen embeddings, over several
    seeds; prints a table of test worst-group / mean / per-group accuracy and
    fit times, and writes it as JSON, CSV and a PNG figure. With no arguments it
    runs the embedded, offline dominoes benchmark (a few minutes on 2 CPU cores).
``skhsfm speed``
    HSFM fit / predict timings on Waterbirds- and CelebA-shaped embeddings and
    the embedding throughput of two backbones.

Everything heavy lives in the private ``skhsfm._cli_*`` modules; torch,
matplotlib and tqdm are imported only when a command needs them.
"""

import argparse
import os
import sys
import time
import types

from skhsfm._cli_common import CLIError, Reporter

__all__ = ["main", "build_parser"]

DATASETS = ("dominoes", "waterbirds", "celeba", "metashift")
DEFAULT_SEEDS = 3
# Embedded dominoes: split sizes and CNN epochs of the default run and of --quick.
_FULL = dict(n_train=4800, n_val=1200, n_test=2400, backbone_epochs=10)
_QUICK = dict(n_train=1600, n_val=400, n_test=800, backbone_epochs=8)
# --quick on an image dataset embeds at most this many images per split.
_QUICK_REAL_CAP = 256

_BENCHMARK_EPILOG = """\
examples:
  skhsfm benchmark                       # embedded dominoes, 3 seeds, offline
  skhsfm benchmark --quick               # a small run, 1 seed (about 15 s)
  skhsfm benchmark --seeds 5 --preset dominoes --methods erm hsfm
  skhsfm benchmark --dataset waterbirds --root ~/data/waterbirds \\
      --backbone resnet50 --weights ~/weights/resnet50.pth --preset waterbirds
  skhsfm benchmark --dataset celeba --root ~/data/celeba \\
      --backbone ViT-B-32 --pretrained ~/weights/open_clip_vit_b_32.safetensors
"""


def _seeds(values):
    """``--seeds N`` -> 0..N-1; ``--seeds A B ...`` -> those seeds."""
    if len(values) == 1:
        if values[0] < 1:
            raise ValueError(f"--seeds N needs N >= 1; got {values[0]}.")
        return list(range(values[0]))
    if len(set(values)) != len(values):
        raise ValueError(f"--seeds lists a seed twice: {values}.")
    return list(values)


def _add_common(parser):
    parser.add_argument(
        "--device",
        default="auto",
        help="where torch runs: auto (CUDA when available), cpu, cuda, cuda:N "
        "(default: %(default)s)",
    )
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
        "--quiet", action="store_true", help="no progress output, only the table"
    )
    parser.add_argument(
        "--threads",
        type=int,
        default=None,
        metavar="N",
        help="torch CPU threads (default: torch's choice)",
    )


def _add_benchmark(subparsers):
    from skhsfm import PRESETS
    from skhsfm._cli_benchmark import METHODS

    p = subparsers.add_parser(
        "benchmark",
        help="compare ERM, DFR, AFR and HSFM on frozen embeddings",
        description="Fit the ERM head, DFR, AFR and HSFM on identical embeddings\n"
        "(support pool = train split, hard pool = validation split) for several\n"
        "seeds; report test worst-group, mean and per-group accuracy and fit time.",
        epilog=_BENCHMARK_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--dataset",
        choices=DATASETS,
        default="dominoes",
        help="dominoes without --root: the embedded offline benchmark; with "
        "--root: X_/y_/env_{split}.npy arrays. waterbirds, celeba, metashift "
        "need --root (default: %(default)s)",
    )
    p.add_argument("--root", metavar="PATH", help="the dataset folder")
    p.add_argument(
        "--methods",
        nargs="+",
        choices=METHODS,
        default=list(METHODS),
        metavar="METHOD",
        help=f"methods to run, from {{{', '.join(METHODS)}}} (default: all)",
    )
    p.add_argument(
        "--seeds",
        nargs="+",
        type=int,
        default=None,
        metavar="SEED",
        help=f"one number N: seeds 0..N-1; several numbers: those seeds "
        f"(default: {DEFAULT_SEEDS}, or 1 with --quick)",
    )
    p.add_argument(
        "--preset",
        choices=sorted(PRESETS) + ["auto", "none"],
        default="none",
        help="HSFM preset (the paper's Table 11 settings); auto: the dataset's "
        "own; none: the estimator's defaults (default: %(default)s)",
    )
    p.add_argument(
        "--backbone",
        metavar="NAME",
        help="dominoes-cnn (the default for dominoes images), a torchvision "
        "model (resnet50, the default for image datasets) or an open_clip model "
        "(ViT-B-32, local-dir:PATH, hf-hub:ORG/REPO); prefix torchvision: or "
        "open_clip: when a name exists in both",
    )
    p.add_argument(
        "--pretrained",
        metavar="TAG_OR_FILE",
        help="open_clip weights: a tag or a local file; 'none' for random weights",
    )
    p.add_argument(
        "--weights",
        metavar="NAME_OR_FILE",
        help="torchvision weights: a name (IMAGENET1K_V1, the default for "
        "resnet50) or a local state_dict file; 'none' for random weights",
    )
    p.add_argument(
        "--cache",
        metavar="DIR",
        help="embedding cache, so that a re-run skips the backbone "
        "(default: OUT/cache)",
    )
    p.add_argument("--no-cache", action="store_true", help="do not cache embeddings")
    p.add_argument(
        "--batch-size",
        type=int,
        default=64,
        metavar="N",
        help="embedding batch size (default: 64)",
    )
    p.add_argument(
        "--num-workers",
        type=int,
        default=0,
        metavar="N",
        help="image decoding threads (default: 0)",
    )
    adv = p.add_argument_group("sizes and budgets (for quick checks)")
    adv.add_argument(
        "--n-train",
        type=int,
        metavar="N",
        help="training images (dominoes: default 4800, 1600 with --quick); "
        "other datasets: use at most N (256 with --quick)",
    )
    adv.add_argument(
        "--n-val", type=int, metavar="N", help="validation images (as --n-train)"
    )
    adv.add_argument(
        "--n-test", type=int, metavar="N", help="test images (as --n-train)"
    )
    adv.add_argument(
        "--backbone-epochs",
        type=int,
        metavar="N",
        help="dominoes CNN epochs (default 10, 8 with --quick)",
    )
    adv.add_argument(
        "--hsfm-epochs", type=int, metavar="N", help="HSFM n_epochs override"
    )
    adv.add_argument(
        "--afr-epochs", type=int, metavar="N", help="AFR n_epochs override"
    )
    adv.add_argument(
        "--dfr-models", type=int, metavar="N", help="DFR n_models override"
    )
    _add_common(p)
    p.set_defaults(handler=_benchmark, subparser=p)


def _add_speed(subparsers):
    p = subparsers.add_parser(
        "speed",
        help="HSFM fit/predict timings and embedding throughput",
        description="HSFM fit and predict timings on synthetic Waterbirds- and "
        "CelebA-shaped embeddings (d=2048) and the embedding throughput of a "
        "random-weight torchvision resnet18 and the dominoes CNN.",
    )
    _add_common(p)
    p.set_defaults(handler=_speed, subparser=p)


def build_parser():
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
    _add_benchmark(subparsers)
    _add_speed(subparsers)
    return parser


_SIZE_OPTIONS = (
    "n_train",
    "n_val",
    "n_test",
    "backbone_epochs",
    "hsfm_epochs",
    "afr_epochs",
    "dfr_models",
)


def _positive(parser, args, names):
    for name in names:
        value = getattr(args, name, None)
        if value is not None and value < 1:
            flag = "--" + name.replace("_", "-")
            parser.error(f"{flag} must be >= 1; got {value}.")


def _benchmark_settings(parser, args):
    """Check the arguments and gather what the benchmark modules need."""
    _positive(parser, args, _SIZE_OPTIONS + ("batch_size", "threads"))
    if args.num_workers < 0:
        parser.error(f"--num-workers must be >= 0; got {args.num_workers}.")
    if args.dataset != "dominoes" and args.root is None:
        parser.error(
            f"--dataset {args.dataset} needs --root PATH, the folder that holds "
            "the dataset (nothing is downloaded)."
        )
    if args.root is not None and not os.path.isdir(os.path.expanduser(args.root)):
        parser.error(
            f"--root {args.root}: folder not found. Pass the folder that holds "
            f"the {args.dataset} dataset."
        )
    try:
        seeds = _seeds(args.seeds) if args.seeds else None
    except ValueError as exc:
        parser.error(str(exc))
    embedded = args.dataset == "dominoes" and args.root is None
    base = dict(_QUICK if args.quick else _FULL)
    if not embedded:
        cap = _QUICK_REAL_CAP if args.quick else None
        base.update(n_train=cap, n_val=cap, n_test=cap)
    settings = types.SimpleNamespace(
        **{"hsfm_epochs": None, "afr_epochs": None, "dfr_models": None, **base}
    )
    for name in _SIZE_OPTIONS:
        if getattr(args, name) is not None:
            setattr(settings, name, getattr(args, name))
    settings.seeds = seeds or list(range(1 if args.quick else DEFAULT_SEEDS))
    settings.methods = list(dict.fromkeys(args.methods))
    preset = args.preset
    settings.preset = {"none": None, "auto": args.dataset}.get(preset, preset)
    settings.batch_size = args.batch_size
    settings.num_workers = args.num_workers
    settings.cache_dir = None
    if not args.no_cache:
        settings.cache_dir = os.path.abspath(
            os.path.expanduser(args.cache or os.path.join(args.out, "cache"))
        )
    settings.embedded = embedded
    return settings


def _benchmark(parser, args, argv):
    from skhsfm._cli_run import run_benchmark_command

    settings = _benchmark_settings(parser, args)
    return run_benchmark_command(args, settings, argv)


def _speed(parser, args, argv):
    from skhsfm._cli_run import run_speed_command

    _positive(parser, args, ("threads",))
    return run_speed_command(args, argv)


def main(argv=None):
    """Run the ``skhsfm`` command; returns the exit status.

    Parameters
    ----------
    argv : list of str or None, default=None
        The arguments (``sys.argv[1:]`` when None).

    Returns
    -------
    status : int
        0 on success, 1 after a reported error. Bad arguments exit with status
        2 through :class:`SystemExit`, as argparse does.
    """
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser()
    args = parser.parse_args(argv)
    tic = time.perf_counter()
    try:
        status = args.handler(args.subparser, args, argv)
    except CLIError as exc:
        print(f"skhsfm: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("skhsfm: interrupted", file=sys.stderr)
        return 130
    if not args.quiet:
        Reporter(stream=sys.stderr).log(f"done in {time.perf_counter() - tic:.1f} s")
    return status


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
