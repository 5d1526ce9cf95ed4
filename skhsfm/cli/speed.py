"""``skhsfm speed``: fit / predict timings and embedding throughput.

Synthetic embeddings of the paper's Waterbirds and CelebA shapes (d=2048) for
:class:`~skhsfm.HSFMClassifier` with the matching preset, and the throughput of
two backbones on random images. Nothing is downloaded.

The parser (:func:`add_parser`), the checked settings (:class:`SpeedSettings`)
and the run (:func:`run`) are in this module.
"""

import dataclasses
import os
import platform
import time

import numpy as np

from skhsfm.cli._common import (
    Reporter,
    add_common_options,
    check_positive,
    make_out,
    setup_torch,
)

__all__ = ["QUICK_SHAPES", "SHAPES", "SpeedSettings", "add_parser", "run"]

#: name: (support pool, hard pool, test set, d, preset). CelebA's real support
#: pool is the 162,770-image training split; a 4,096-example pool (enough for
#: the preset's 1,024 support examples per class) keeps the initial logistic
#: regression short, and the meta-loop does not depend on the pool size.
SHAPES = {
    "waterbirds": (4795, 1199, 5794, 2048, "waterbirds"),
    "celeba": (4096, 19867, 19962, 2048, "celeba"),
}
#: --quick: the same structure, much smaller (seconds in total).
QUICK_SHAPES = {
    "waterbirds": (600, 300, 600, 128, "waterbirds"),
    "celeba": (2100, 1000, 1000, 128, "celeba"),
}
QUICK_EPOCHS = 2

# ------------------------------------------------------------------ parser


def add_parser(subparsers):
    """Add the ``speed`` subcommand to ``subparsers``."""
    p = subparsers.add_parser(
        "speed",
        help="HSFM fit/predict timings and embedding throughput",
        description="HSFM fit and predict timings on synthetic Waterbirds- and "
        "CelebA-shaped embeddings (d=2048) and the embedding throughput of a "
        "random-weight torchvision resnet18 and the dominoes CNN.",
    )
    add_common_options(p)
    p.set_defaults(handler=_handle, subparser=p)
    return p


def _handle(parser, args, argv):
    return run(SpeedSettings.from_args(args, parser), argv)


@dataclasses.dataclass(frozen=True)
class SpeedSettings:
    """Everything one ``skhsfm speed`` run needs, checked.

    Attributes
    ----------
    quick : bool
        Reduced shapes and 2 HSFM epochs (seconds in total).
    device : str
        ``--device`` as given (``"auto"``...), resolved by :func:`run`.
    threads : int or None
        torch CPU threads (None: torch's choice).
    out : str
        The output folder (``speed.json``).
    quiet : bool
        No progress output.
    """

    quick: bool = False
    device: str = "auto"
    threads: int | None = None
    out: str = "skhsfm_out"
    quiet: bool = False

    @classmethod
    def from_args(cls, args, parser):
        """Check the parsed arguments; bad ones end in ``parser.error`` (exit 2)."""
        check_positive(parser, args, ("threads",))
        return cls(
            quick=bool(args.quick),
            device=args.device,
            threads=args.threads,
            out=args.out,
            quiet=bool(args.quiet),
        )


def run(settings, argv=()):
    """Time everything, print the table and write ``speed.json``; returns 0."""
    from skhsfm import __version__
    from skhsfm.cli._report import speed_table, write_json

    reporter = Reporter(quiet=settings.quiet)
    device, threads = setup_torch(settings.device, settings.threads)
    out = make_out(settings.out)
    rows = timing_rows(settings.quick, device, reporter)
    scope = "quick: reduced shapes, 2 epochs" if settings.quick else "paper shapes"
    title = (
        f"skhsfm speed ({scope}) | device {device}, {threads} torch thread(s), "
        f"{platform.processor() or platform.machine()}, Python "
        f"{platform.python_version()}"
    )
    print(speed_table(rows, title), flush=True)
    path = os.path.join(out, "speed.json")
    write_json(
        path,
        {
            "skhsfm_version": __version__,
            "command": "skhsfm " + " ".join(argv),
            "device": str(device),
            "torch_threads": threads,
            "quick": settings.quick,
            "rows": rows,
        },
    )
    if not settings.quiet:
        print(f"\nwrote {path}", flush=True)
    return 0


# ------------------------------------------------------------------ timings


def _embeddings(n, d, split, seed):
    from skhsfm.datasets import make_spurious_embeddings

    X, y, _, g = make_spurious_embeddings(
        n, d, split=split, dtype=np.float32, random_state=seed
    )
    return X, y, g


def _time(fn, repeats=1):
    best = np.inf
    result = None
    for _ in range(repeats):
        tic = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - tic)
    return best, result


def _hsfm_rows(name, shape, n_epochs, device, reporter):
    from skhsfm import HSFMClassifier
    from skhsfm.baselines import ERMHeadClassifier

    n_support, n_hard, n_test, d, preset = shape
    X, y, g = _embeddings(n_support, d, "train", 0)
    X_val, y_val, g_val = _embeddings(n_hard, d, "val", 0)
    X_test, _, _ = _embeddings(n_test, d, "test", 0)
    reporter.log(f"{name}: initial logistic regression ({n_support} x {d})")
    lr_seconds, head = _time(lambda: ERMHeadClassifier().fit(X, y))
    clf = HSFMClassifier(
        preset,
        n_epochs=n_epochs,
        init_coef=head.coef_,
        init_intercept=head.intercept_,
        device=str(device),
        random_state=0,
    )
    reporter.log(f"{name}: HSFM fit (preset {preset})")
    fit_seconds, _ = _time(
        lambda: clf.fit(X, y, g, X_val=X_val, y_val=y_val, groups_val=g_val)
    )
    predict_seconds, _ = _time(lambda: clf.predict(X_test), repeats=3)
    epochs = clf.n_iter_
    shape_text = f"support pool {n_support}, hard pool {n_hard}, d {d}"
    return [
        {
            "step": f"{name}: initial LR head",
            "shape": f"{n_support} x {d}",
            "seconds": lr_seconds,
            "rate": None,
        },
        {
            "step": f"{name}: HSFM fit (preset {preset}, {epochs} epochs)",
            "shape": shape_text,
            "seconds": fit_seconds,
            "rate": f"{fit_seconds / epochs:.3f} s/epoch",
        },
        {
            "step": f"{name}: HSFM predict",
            "shape": f"{n_test} x {d}",
            "seconds": predict_seconds,
            "rate": f"{n_test / predict_seconds:,.0f} rows/s",
        },
    ]


def _embed_rows(quick, device, reporter):
    from skhsfm.embedding import BackboneEmbedder

    rng = np.random.RandomState(0)
    rows = []
    n = 8 if quick else 64
    images = rng.randint(0, 256, size=(n, 224, 224, 3), dtype=np.uint8)
    embedder = BackboneEmbedder(
        "torchvision",
        model_name="resnet18",
        pretrained=None,
        batch_size=32,
        device=str(device),
        show_progress_bar=False,
    )
    reporter.log("embedding: torchvision resnet18 (random weights)")
    embedder.transform(images[:2])  # load the model and warm up
    seconds, X = _time(lambda: embedder.transform(images))
    rows.append(
        {
            "step": "embed: torchvision resnet18 (weights=None)",
            "shape": f"{n} images 224x224 -> d {X.shape[1]}",
            "seconds": seconds,
            "rate": f"{n / seconds:,.1f} img/s",
        }
    )

    from skhsfm._utils.torch import torch
    from skhsfm.datasets import ERMBackbone, ImageTransform

    n = 256 if quick else 4096
    images = rng.randint(0, 256, size=(n, 32, 32, 3), dtype=np.uint8)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        cnn = ERMBackbone(preprocess=ImageTransform([0.5] * 3, [0.25] * 3)).eval()
    reporter.log("embedding: dominoes CNN (untrained)")
    cnn.embed(images[:2], device=str(device))
    seconds, X = _time(lambda: cnn.embed(images, device=str(device)))
    rows.append(
        {
            "step": "embed: dominoes CNN",
            "shape": f"{n} images 32x32 -> d {X.shape[1]}",
            "seconds": seconds,
            "rate": f"{n / seconds:,.0f} img/s",
        }
    )
    return rows


def timing_rows(quick, device, reporter):
    """All timing rows, in table order."""
    from skhsfm import HSFMClassifier

    shapes = QUICK_SHAPES if quick else SHAPES
    n_epochs = QUICK_EPOCHS if quick else None
    # Warm up torch (import, thread pool) so the first timing is not inflated.
    X, y, g = _embeddings(64, 8, "train", 0)
    HSFMClassifier(n_epochs=1, device=str(device), random_state=0).fit(X, y, g)
    rows = []
    for name, shape in shapes.items():
        rows.extend(_hsfm_rows(name, shape, n_epochs, device, reporter))
    rows.extend(_embed_rows(quick, device, reporter))
    return rows
