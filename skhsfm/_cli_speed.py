"""``skhsfm speed``: fit / predict timings and embedding throughput.

Synthetic embeddings of the paper's Waterbirds and CelebA shapes (d=2048) for
:class:`~skhsfm.HSFMClassifier` with the matching preset, and the throughput of
two backbones on random images. Nothing is downloaded.
"""

import time

import numpy as np

__all__ = ["SHAPES", "run_speed"]

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

    from skhsfm._torch import torch
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


def run_speed(quick, device, reporter):
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


def format_speed_table(rows, title):
    header = ["step", "shape", "seconds", "rate"]
    cells = [
        [r["step"], r["shape"], f"{r['seconds']:.3f}", r["rate"] or "-"] for r in rows
    ]
    widths = [max(len(c[i]) for c in [header] + cells) for i in range(4)]

    def line(row):
        parts = [
            c.ljust(w) if i < 2 else c.rjust(w)
            for i, (c, w) in enumerate(zip(row, widths))
        ]
        return "| " + " | ".join(parts) + " |"

    separator = "|" + "|".join(
        ":" + "-" * (w + 1) if i < 2 else "-" * (w + 1) + ":"
        for i, w in enumerate(widths)
    )
    return "\n".join(
        [title, "", line(header), separator + "|"] + [line(c) for c in cells]
    )
