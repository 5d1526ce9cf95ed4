"""``skhsfm benchmark``: the registered heads (ERM head, DFR, AFR, DPE, SELF,
HSFM) on identical embeddings.

For every seed: get the train / validation / test embeddings from a source
(:mod:`skhsfm.cli._sources`), fit every method with the training embeddings as
``X`` (support pool) and the validation embeddings as ``X_val`` (hard pool), and
score test predictions per group. Then summarize over seeds and write the
report (:mod:`skhsfm.cli._report`).

The methods are the heads registered in :mod:`skhsfm.utils`: their
``--methods`` names, table labels and budget options come from the registry,
and each head gets the arguments its parameters take (``random_state``,
``device``, ``init_coef``/``init_intercept``); with ``--preset`` a head that
has presets is built by its ``from_preset``.

The parser (:func:`add_parser`), the checked settings
(:class:`BenchmarkSettings`) and the run (:func:`run`) are in this module.
"""

import argparse
import dataclasses
import os
import platform
import time

from skhsfm._utils.atomic import check_folder_path
from skhsfm.cli._common import (
    CLIError,
    Reporter,
    add_backbone_options,
    add_common_options,
    check_positive,
    make_out,
    setup_torch,
)
from skhsfm.cli._evaluate import (  # noqa: F401 (re-exported for callers)
    ERM_BACKBONE,
    SITUATIONS,
    _estimators,
    _label,
    evaluate_seed,
    parse,
    reference_label,
)
from skhsfm.cli._summary import summarize
from skhsfm.utils import _registry

__all__ = [
    "DATASETS",
    "METHODS",
    "BenchmarkSettings",
    "add_parser",
    "run",
    "run_seeds",
]

#: The registered heads, in table order.
_HEADS = tuple(_registry("head"))
#: Method names accepted by ``--methods``, in table order.
METHODS = tuple(entry.key for entry in _HEADS)
_LABELS = [entry.label.split(" (")[0] for entry in _HEADS]
DATASETS = ("dominoes", "waterbirds", "celeba", "metashift")
DEFAULT_SEEDS = 3
# Embedded dominoes: split sizes and CNN epochs of the default run and of --quick.
_FULL = dict(n_train=4800, n_val=1200, n_test=2400, backbone_epochs=6)
_QUICK = dict(n_train=1600, n_val=400, n_test=800, backbone_epochs=8)
# --quick on an image dataset embeds at most this many images per split.
_QUICK_REAL_CAP = 256
_SIZE_HELP = {
    "--n-train": "training images (dominoes: default 4800, 1600 with --quick); "
    "other datasets: use at most N (256 with --quick)",
    "--n-val": "validation images (as --n-train)",
    "--n-test": "test images (as --n-train)",
    "--backbone-epochs": "dominoes CNN epochs (default 6, 8 with --quick)",
}
# A budget option per head that has one (--hsfm-epochs: HSFM's n_epochs).
_BUDGETS = {entry.budget_option: entry for entry in _HEADS if entry.budget}
_SIZE_HELP.update(
    (flag, f"{entry.label} {entry.budget[1]} override")
    for flag, entry in _BUDGETS.items()
)


def _dest(flag):
    return flag[2:].replace("-", "_")


# The same options as attribute names; each takes a count >= 1.
_SIZE_OPTIONS = tuple(_dest(flag) for flag in _SIZE_HELP)


_EPILOG = """\
examples:
  skhsfm benchmark                       # embedded dominoes, 3 seeds, offline
  skhsfm benchmark --quick               # a small run, 1 seed (about 15 s)
  skhsfm benchmark --seeds 5 --preset dominoes --methods erm hsfm
  skhsfm benchmark --dataset waterbirds --root ~/data/waterbirds \\
      --backbone resnet50 --weights ~/weights/resnet50.pth --preset waterbirds
  skhsfm benchmark --dataset celeba --root ~/data/celeba \\
      --backbone ViT-B-32 --pretrained ~/weights/open_clip_vit_b_32.safetensors
"""


# ------------------------------------------------------------------ parser


def add_parser(subparsers):
    """Add the ``benchmark`` subcommand to ``subparsers``."""
    from skhsfm import PRESETS

    p = subparsers.add_parser(
        "benchmark",
        help=f"compare {', '.join(_LABELS)} on frozen embeddings",
        description=f"Fit {', '.join(_LABELS)} on identical embeddings\n"
        "(support pool = train split, hard pool = validation split) for several\n"
        "seeds; report test worst-group, mean and per-group accuracy and fit time.",
        epilog=_EPILOG,
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
    _add_comparison_options(p)
    p.add_argument(
        "--preset",
        choices=sorted(PRESETS) + ["auto", "none"],
        default="none",
        help="HSFM preset (the paper's Table 11 settings); auto: the dataset's "
        "own; none: the estimator's defaults (default: %(default)s)",
    )
    add_backbone_options(
        p,
        "dominoes-cnn (the default for dominoes images), a torchvision model "
        "(resnet50, the default for image datasets) or an open_clip model "
        "(ViT-B-32, local-dir:PATH, hf-hub:ORG/REPO); prefix torchvision: or "
        "open_clip: when a name exists in both",
        weights="IMAGENET1K_V1 for resnet50",
    )
    p.add_argument(
        "--cache",
        metavar="DIR",
        help="embedding cache, so that a re-run skips the backbone "
        "(default: OUT/cache)",
    )
    p.add_argument("--no-cache", action="store_true", help="do not cache embeddings")
    p.add_argument(
        "--num-workers",
        type=int,
        default=0,
        metavar="N",
        help="image decoding threads (default: 0)",
    )
    adv = p.add_argument_group("sizes and budgets (for quick checks)")
    for flag, text in _SIZE_HELP.items():
        adv.add_argument(flag, type=int, metavar="N", help=text)
    add_common_options(p)
    p.set_defaults(handler=_handle, subparser=p)
    return p


def _add_comparison_options(p):
    """``--reference``, ``--situations`` and ``--init``: what the methods are
    compared with, in which data situations, and where they start."""
    p.add_argument(
        "--reference",
        choices=METHODS + ("none",),
        default="dfr",
        metavar="METHOD",
        help="method every other one is compared with, seed by seed: the table "
        "gives the mean paired difference of test worst-group accuracy and its 95%% "
        "confidence interval (paired t over seeds); none: no comparison "
        "(default: %(default)s)",
    )
    p.add_argument(
        "--situations",
        nargs="+",
        choices=list(SITUATIONS) + ["all"],
        default=["val"],
        metavar="SITUATION",
        help="the data situations every method is fit in: both (groups on the "
        "train and val splits), val (groups on the val split only), none (no "
        "group labels), train (no val split: the training split and its "
        "groups); all: the four. With several, each label gets its situation "
        "and --reference is taken in the val situation (default: val)",
    )
    p.add_argument(
        "--init",
        choices=("backbone", "default"),
        default="backbone",
        help="where AFR and HSFM start: backbone: the backbone's own last layer "
        "when the source has one (the dominoes CNN), else their default; default: "
        "their default initial head, a logistic regression on the training "
        "embeddings (default: %(default)s)",
    )


def _handle(parser, args, argv):
    return run(BenchmarkSettings.from_args(args, parser), argv)


# ---------------------------------------------------------------- settings


def _seeds(values):
    """``--seeds N`` -> 0..N-1; ``--seeds A B ...`` -> those seeds."""
    if len(values) == 1:
        if values[0] < 1:
            raise ValueError(f"--seeds N needs N >= 1; got {values[0]}.")
        return tuple(range(values[0]))
    if len(set(values)) != len(values):
        raise ValueError(f"--seeds lists a seed twice: {values}.")
    return tuple(values)


@dataclasses.dataclass(frozen=True)
class BenchmarkSettings:
    """Everything one ``skhsfm benchmark`` run needs, checked.

    Built from the command line by :meth:`from_args`; a run never changes it
    (:func:`run` works on a copy whose ``device`` is resolved). The fields
    follow the options: ``root`` and ``cache_dir`` are absolute paths (None: the
    embedded dominoes; no cache), ``methods`` and ``seeds`` tuples without
    repeats, ``preset`` a preset name or None (the estimator's defaults),
    ``n_train/n_val/n_test`` split sizes (embedded dominoes) or caps (datasets
    on disk; None: all), and ``budgets`` the budget overrides given, by
    method name (``{"hsfm": 3}`` for ``--hsfm-epochs 3``; a method not in it
    keeps its estimator's default), ``situations`` the data situations
    (:data:`~skhsfm.cli._evaluate.SITUATIONS`) every method is fit in.
    """

    dataset: str = "dominoes"
    root: str | None = None
    backbone: str | None = None
    pretrained: str | None = None
    weights: str | None = None
    methods: tuple = METHODS
    seeds: tuple = tuple(range(DEFAULT_SEEDS))
    preset: str | None = None
    reference: str | None = "dfr"
    situations: tuple = (SITUATIONS["val"],)
    init: str = "backbone"
    n_train: int | None = _FULL["n_train"]
    n_val: int | None = _FULL["n_val"]
    n_test: int | None = _FULL["n_test"]
    backbone_epochs: int = _FULL["backbone_epochs"]
    budgets: dict = dataclasses.field(default_factory=dict)
    batch_size: int = 64
    num_workers: int = 0
    cache_dir: str | None = None
    device: str = "auto"
    threads: int | None = None
    out: str = "skhsfm_out"
    quiet: bool = False

    @property
    def embedded(self):
        """Whether this is the embedded dominoes benchmark (no ``--root``)."""
        return self.dataset == "dominoes" and self.root is None

    @classmethod
    def from_args(cls, args, parser):
        """Check the parsed arguments; bad ones end in ``parser.error`` (exit 2)."""
        check_positive(parser, args, _SIZE_OPTIONS + ("batch_size", "threads"))
        if args.num_workers < 0:
            parser.error(f"--num-workers must be >= 0; got {args.num_workers}.")
        if args.dataset != "dominoes" and args.root is None:
            parser.error(
                f"--dataset {args.dataset} needs --root PATH, the folder that holds "
                "the dataset (nothing is downloaded)."
            )
        root = None
        if args.root is not None:
            root = os.path.abspath(os.path.expanduser(args.root))
            if not os.path.isdir(root):
                parser.error(
                    f"--root {args.root}: folder not found. Pass the folder that "
                    f"holds the {args.dataset} dataset."
                )
        try:
            seeds = _seeds(args.seeds) if args.seeds else None
        except ValueError as exc:
            parser.error(str(exc))
        sizes = dict(_QUICK if args.quick else _FULL)
        if root is not None:
            cap = _QUICK_REAL_CAP if args.quick else None
            sizes.update(n_train=cap, n_val=cap, n_test=cap)
        budgets = {}
        for flag in _SIZE_HELP:
            value = getattr(args, _dest(flag))
            if value is not None and flag in _BUDGETS:
                budgets[_BUDGETS[flag].key] = value
            elif value is not None:
                sizes[_dest(flag)] = value
        cache_dir = None
        if not args.no_cache:
            cache_dir = os.path.abspath(
                os.path.expanduser(args.cache or os.path.join(args.out, "cache"))
            )
        try:
            situations = parse(args.situations)
        except ValueError as exc:
            parser.error(str(exc))
        methods = tuple(dict.fromkeys(args.methods))
        reference = None if args.reference == "none" else args.reference
        if reference is not None and reference not in methods:
            if args.reference != parser.get_default("reference"):
                parser.error(
                    f"--reference {reference} is not among --methods "
                    f"{' '.join(methods)}; add it or pass --reference none."
                )
            reference = None
        return cls(
            dataset=args.dataset,
            root=root,
            backbone=args.backbone,
            pretrained=args.pretrained,
            weights=args.weights,
            methods=methods,
            reference=reference,
            situations=situations,
            init=args.init,
            seeds=seeds or tuple(range(1 if args.quick else DEFAULT_SEEDS)),
            preset={"none": None, "auto": args.dataset}.get(args.preset, args.preset),
            batch_size=args.batch_size,
            num_workers=args.num_workers,
            cache_dir=cache_dir,
            device=args.device,
            threads=args.threads,
            out=args.out,
            quiet=args.quiet,
            budgets=budgets,
            **sizes,
        )


# --------------------------------------------------------------------- run


def _seed_text(seeds):
    return ", ".join(str(s) for s in seeds)


def run(settings, argv=()):
    """Run the benchmark ``settings`` describe: print the table, write the files.

    ``argv`` (the command's arguments) is recorded in ``results.json``.
    Returns the exit status, 0.
    """
    from skhsfm import __version__
    from skhsfm.cli._report import (
        benchmark_footnotes,
        benchmark_table,
        write_benchmark_outputs,
    )
    from skhsfm.cli._sources import make_source

    reporter = Reporter(quiet=settings.quiet)
    device, threads = setup_torch(settings.device, settings.threads)
    settings = dataclasses.replace(settings, device=str(device))
    out = make_out(settings.out)
    if settings.cache_dir is not None:
        # as BackboneEmbedder(memory=...): a cache that cannot be a folder is an
        # error naming the option, not a whole run without a cache (checked
        # without creating it: a source that caches nothing leaves no folder)
        try:
            check_folder_path(settings.cache_dir, "--cache")
        except OSError as exc:
            raise CLIError(f"{exc} (or pass --no-cache)") from exc
    tic = time.perf_counter()
    source = make_source(settings, reporter)
    config = source.config()
    reporter.log(
        f"skhsfm benchmark: {config['dataset']}; backbone: {config['backbone']}; "
        f"methods: {' '.join(settings.methods)}; seeds: {_seed_text(settings.seeds)}; "
        f"device: {settings.device}, {threads} torch thread(s)"
    )
    result = run_seeds(source, settings, reporter)
    wall = time.perf_counter() - tic
    reference = reference_label(settings)
    summary, groups = summarize(result["records"], result["group_names"], reference)
    n = len(settings.seeds)
    title = [
        f"skhsfm benchmark: {config['dataset']}",
        f"backbone: {config['backbone']}",
        f"test split, {n} seed{'s' if n > 1 else ''} ({_seed_text(settings.seeds)}); "
        "mean +- std over seeds",
    ]
    footnotes = benchmark_footnotes(
        result["has_head"] and settings.init == "backbone",
        wall,
        result["timings"],
        result["notes"],
        result["cached_seeds"],
        reference,
    )
    table = benchmark_table(summary, groups, title, footnotes)
    print(table, flush=True)
    payload = {
        "skhsfm_version": __version__,
        "command": "skhsfm " + " ".join(argv),
        "config": {
            **config,
            "seeds": settings.seeds,
            "methods": settings.methods,
            "hsfm_preset": settings.preset,
            "reference": reference,
            "situations": [situation.key for situation in settings.situations],
            "init": settings.init,
            **{
                _dest(flag): settings.budgets.get(entry.key)
                for flag, entry in _BUDGETS.items()
            },
            "device": settings.device,
            "torch_threads": threads,
            "python": platform.python_version(),
        },
        "groups": groups,
        "summary": summary,
        "per_seed": result["records"],
        "timings": {"wall_seconds": wall, "per_seed": result["timings"]},
        "warnings": result["notes"],
    }
    try:
        paths = write_benchmark_outputs(out, table, payload, "\n".join(title))
    except (OSError, ValueError, RuntimeError) as exc:
        raise CLIError(
            f"--out {out}: writing the results failed ({exc}); the folder keeps "
            "the previous run's files, if any. Free space or pick another --out, "
            "then run again."
        ) from exc
    if "figure" not in paths:
        reporter.log("no figure: matplotlib is not installed (pip install matplotlib)")
    if not settings.quiet:
        print(f"\nwrote {', '.join(paths.values())}", flush=True)
    return 0


def run_seeds(source, settings, reporter):
    """Every seed through ``source`` and the methods.

    Returns a dict with ``records`` (one per seed and method), ``timings`` (per
    seed), ``notes`` (warnings per method), ``group_names``, ``has_head``
    (whether the methods started from the backbone's own head) and
    ``cached_seeds`` (seeds whose embeddings came from the on-disk cache).
    """
    records, timings, notes, cached = [], [], {}, []
    bar = reporter.bar(len(settings.seeds), "seeds", unit="seed", leave=True)
    group_names, has_head = None, False
    try:
        for seed in settings.seeds:
            emb = source.load(seed)
            group_names = emb.group_names
            has_head = emb.head is not None
            if emb.info.get("cached"):
                cached.append(int(seed))
            tic = time.perf_counter()
            records.extend(evaluate_seed(emb, seed, settings, reporter, notes))
            timings.append(
                {"seed": int(seed), **emb.timings, "methods": time.perf_counter() - tic}
            )
            bar.update(1)
    finally:
        bar.close()
    return {
        "records": records,
        "timings": timings,
        "notes": notes,
        "group_names": group_names,
        "has_head": has_head,
        "cached_seeds": cached,
    }
