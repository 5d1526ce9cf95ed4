"""``skhsfm benchmark``: ERM head, DFR, AFR, DPE, SELF and HSFM on one set of
embeddings.

For every seed: get the train / validation / test embeddings from a source
(:mod:`skhsfm.cli._sources`), fit every method with the training embeddings as
``X`` (support pool) and the validation embeddings as ``X_val`` (hard pool), and
score test predictions per group. Then summarize over seeds and write the
report (:mod:`skhsfm.cli._report`).

The parser (:func:`add_parser`), the checked settings
(:class:`BenchmarkSettings`) and the run (:func:`run`) are in this module.
"""

import argparse
import dataclasses
import os
import platform
import time

import numpy as np

from skhsfm._utils.atomic import check_folder_path
from skhsfm.cli._common import (
    CLIError,
    Reporter,
    add_backbone_options,
    add_common_options,
    check_positive,
    collect_warnings,
    make_out,
    setup_torch,
)
from skhsfm.cli._summary import summarize

__all__ = [
    "DATASETS",
    "METHODS",
    "BenchmarkSettings",
    "add_parser",
    "run",
    "run_seeds",
]

#: Method names accepted by ``--methods``, in table order.
METHODS = ("erm", "dfr", "afr", "dpe", "self", "hsfm")
DATASETS = ("dominoes", "waterbirds", "celeba", "metashift")
DEFAULT_SEEDS = 3
# Embedded dominoes: split sizes and CNN epochs of the default run and of --quick.
_FULL = dict(n_train=4800, n_val=1200, n_test=2400, backbone_epochs=10)
_QUICK = dict(n_train=1600, n_val=400, n_test=800, backbone_epochs=8)
# --quick on an image dataset embeds at most this many images per split.
_QUICK_REAL_CAP = 256
_SIZE_HELP = {
    "--n-train": "training images (dominoes: default 4800, 1600 with --quick); "
    "other datasets: use at most N (256 with --quick)",
    "--n-val": "validation images (as --n-train)",
    "--n-test": "test images (as --n-train)",
    "--backbone-epochs": "dominoes CNN epochs (default 10, 8 with --quick)",
    "--hsfm-epochs": "HSFM n_epochs override",
    "--afr-epochs": "AFR n_epochs override",
    "--dfr-models": "DFR n_models override",
}
# The same options as attribute names; each takes a count >= 1.
_SIZE_OPTIONS = tuple(flag[2:].replace("-", "_") for flag in _SIZE_HELP)

ERM_BACKBONE = "ERM (backbone head)"
ERM_LOGREG = "ERM (logistic regression)"

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
        help="compare ERM, DFR, AFR, DPE, SELF and HSFM on frozen embeddings",
        description="Fit the ERM head, DFR, AFR, DPE, SELF and HSFM on identical\n"
        "embeddings (support pool = train split, hard pool = validation split)\n"
        "for several seeds; report test worst-group, mean and per-group accuracy\n"
        "and fit time.",
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
        "--init",
        choices=("backbone", "default"),
        default="backbone",
        help="where AFR and HSFM start: backbone: the backbone's own last layer "
        "when the source has one (the dominoes CNN), else their default; default: "
        "their default initial head, a logistic regression on the training "
        "embeddings (default: %(default)s). SELF always starts from that "
        "logistic regression (better on dominoes than the CNN's head)",
    )
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
    on disk; None: all), and ``hsfm_epochs/afr_epochs/dfr_models`` budget
    overrides (None: the estimator's defaults).
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
    init: str = "backbone"
    n_train: int | None = _FULL["n_train"]
    n_val: int | None = _FULL["n_val"]
    n_test: int | None = _FULL["n_test"]
    backbone_epochs: int = _FULL["backbone_epochs"]
    hsfm_epochs: int | None = None
    afr_epochs: int | None = None
    dfr_models: int | None = None
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
        for name in _SIZE_OPTIONS:
            if getattr(args, name) is not None:
                sizes[name] = getattr(args, name)
        cache_dir = None
        if not args.no_cache:
            cache_dir = os.path.abspath(
                os.path.expanduser(args.cache or os.path.join(args.out, "cache"))
            )
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
    reference = (
        None if settings.reference is None else _label(settings.reference, settings)
    )
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
            "init": settings.init,
            "hsfm_epochs": settings.hsfm_epochs,
            "afr_epochs": settings.afr_epochs,
            "dfr_models": settings.dfr_models,
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


# ------------------------------------------------------------ one seed


def _estimators(methods, seed, init, settings):
    """``[(label, estimator)]`` for the requested methods, AFR and HSFM starting
    from the :class:`~skhsfm.LinearHead` ``init`` (None: their default start)."""
    from skhsfm import HSFMClassifier
    from skhsfm.baselines import (
        AFRClassifier,
        DFRClassifier,
        DPEClassifier,
        SELFClassifier,
    )

    device = str(settings.device)
    coef, intercept = (None, None) if init is None else (init.coef, init.intercept)
    out = []
    if "dfr" in methods:
        extra = {} if settings.dfr_models is None else {"n_models": settings.dfr_models}
        out.append(("DFR", DFRClassifier(random_state=seed, **extra)))
    if "afr" in methods:
        extra = {} if settings.afr_epochs is None else {"n_epochs": settings.afr_epochs}
        afr = AFRClassifier(
            init_coef=coef,
            init_intercept=intercept,
            device=device,
            random_state=seed,
            **extra,
        )
        out.append(("AFR", afr))
    if "dpe" in methods:
        out.append(("DPE", DPEClassifier(device=device, random_state=seed)))
    if "self" in methods:
        out.append(("SELF", SELFClassifier(random_state=seed)))
    if "hsfm" in methods:
        hsfm = HSFMClassifier(
            settings.preset,
            n_epochs=settings.hsfm_epochs,
            init_coef=coef,
            init_intercept=intercept,
            device=device,
            random_state=seed,
        )
        out.append((_label("hsfm", settings), hsfm))
    return out


def _label(method, settings):
    """The table label of a ``--methods`` name."""
    if method == "hsfm" and settings.preset is not None:
        return f"HSFM (preset {settings.preset})"
    labels = {"erm": ERM_LOGREG, "dfr": "DFR", "afr": "AFR", "dpe": "DPE"}
    return {**labels, "self": "SELF", "hsfm": "HSFM"}[method]


def _score(y_true, y_pred, groups, group_names):
    from skhsfm.metrics import group_accuracy_report

    report = group_accuracy_report(y_true, y_pred, groups=groups)
    by_name = {}
    for label, accuracy in report.by_group.items():
        index = int(label)
        name = group_names[index] if 0 <= index < len(group_names) else str(label)
        by_name[name] = float(accuracy)
    return {
        "worst_group_accuracy": float(report.worst),
        "mean_accuracy": float(report.mean),
        "group_accuracy": by_name,
    }


def _details(estimator):
    """The fitted estimator's selected epoch, score and hyperparameters."""
    names = ("best_epoch_", "best_score_", "best_C_", "best_gamma_", "best_lambda_")
    names += ("best_n_selected_", "best_learning_rate_", "best_dropout_")
    values = {name.rstrip("_"): getattr(estimator, name, None) for name in names}
    return {
        name: value.item() if hasattr(value, "item") else value
        for name, value in values.items()
        if isinstance(value, (int, float, np.integer, np.floating))
    }


def _shared_logreg(emb):
    """The logistic-regression ERM head on the training embeddings (fitted once)."""
    if "logreg" not in emb.memo:
        from skhsfm.baselines import ERMHeadClassifier

        X, y, g = emb.splits["train"]
        notes = []
        tic = time.perf_counter()
        with collect_warnings(notes):
            head = ERMHeadClassifier().fit(X, y)
        emb.memo["logreg"] = (head, time.perf_counter() - tic, notes)
    return emb.memo["logreg"]


def evaluate_seed(emb, seed, settings, reporter, notes):
    """Fit and score every requested method on one seed's embeddings."""
    methods = settings.methods
    X, y, g = emb.splits["train"]
    X_test, y_test, g_test = emb.splits["test"]
    val = emb.splits.get("val")
    fit_kwargs = {}
    if val is not None:
        fit_kwargs = dict(X_val=val[0], y_val=val[1], groups_val=val[2])
    records = []

    def add(label, pred, seconds, details=None):
        scores = _score(y_test, pred, g_test, emb.group_names)
        records.append(
            {
                "seed": int(seed),
                "method": label,
                **scores,
                "fit_seconds": None if seconds is None else float(seconds),
                "details": details or {},
            }
        )
        fit = "no fit" if seconds is None else f"fit {seconds:.1f} s"
        reporter.log(
            f"seed {seed}: {label:<26} test worst-group "
            f"{scores['worst_group_accuracy']:.3f}, mean "
            f"{scores['mean_accuracy']:.3f} ({fit})"
        )

    # AFR and HSFM start from the backbone's head, or (None) from their default
    init = emb.head if settings.init == "backbone" else None
    if "erm" in methods and emb.head is not None:
        add(ERM_BACKBONE, emb.head.predict(X_test), None)
    if "erm" in methods:
        head, seconds, logreg_notes = _shared_logreg(emb)
        notes.setdefault(ERM_LOGREG, [])
        notes[ERM_LOGREG].extend(n for n in logreg_notes if n not in notes[ERM_LOGREG])
        add(ERM_LOGREG, head.predict(X_test), seconds)
    estimators = _estimators(methods, seed, init, settings)
    bar = reporter.bar(len(estimators), f"seed {seed}: methods", unit="method")
    try:
        for label, estimator in estimators:
            bar.set_postfix_str(label)
            sink = notes.setdefault(label, [])
            tic = time.perf_counter()
            with collect_warnings(sink):
                estimator.fit(X, y, g, **fit_kwargs)
            seconds = time.perf_counter() - tic
            add(label, estimator.predict(X_test), seconds, _details(estimator))
            bar.update(1)
    finally:
        bar.close()
    return records
