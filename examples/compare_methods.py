"""
Compare the ERM head, DFR, AFR and HSFM on identical frozen embeddings
======================================================================

Two benchmarks, each over several seeds:

- ``dominoes``: for every seed, build the offline dominoes images
  (:func:`skhsfm.datasets.make_dominoes`, photo = spurious attribute, digit =
  class), train the small ERM CNN on the training split
  (:func:`~skhsfm.datasets.train_dominoes_backbone`) and embed all three
  splits with it;
- ``synthetic``: :func:`skhsfm.datasets.make_spurious_embeddings`, a fresh
  problem per seed (correlated training split, balanced validation and test).

Every method gets the same arrays: the training embeddings as ``X`` (support
pool) and the validation embeddings as ``X_val`` (hard pool, with
``groups_val``); the test split is used only for the table. The seed sets the
data, the backbone and every method's ``random_state``, so the spread covers all
sources of randomness. Reported: test worst-group accuracy, mean accuracy and
the ``fit`` wall time of each method (the CPU may be shared, so times are
noisy).

The default run (5 seeds, reduced dominoes of 2400/600/1200 images) takes a few
minutes on two CPU cores, most of it training the five CNNs; ``--full`` uses the
Waterbirds-sized splits of ``make_dominoes`` (4800/1200/2400).

Usage::

    python examples/compare_methods.py [--seeds 0 1 2 3 4]
        [--benchmarks dominoes synthetic] [--full] [--cache-dir DIR]
"""

# sphinx_gallery_thumbnail_path = "_thumbnails/compare_methods.png"

import argparse
import os
import time

import numpy as np

from skhsfm import HSFMClassifier
from skhsfm.baselines import AFRClassifier, DFRClassifier, ERMHeadClassifier
from skhsfm.datasets import make_dominoes, make_spurious_embeddings
from skhsfm.metrics import worst_group_accuracy

SPLITS = ("train", "val", "test")


def dominoes_embeddings(seed, full, epochs, cache_dir):
    """Embeddings of the three dominoes splits from a CNN trained on ``train``."""
    sizes = (4800, 1200, 2400) if full else (2400, 600, 1200)
    path = None
    if cache_dir:
        name = f"dominoes_seed{seed}_{'full' if full else 'small'}_e{epochs}.npz"
        path = os.path.join(cache_dir, name)
        if os.path.exists(path):
            with np.load(path) as stored:
                return {s: tuple(stored[f"{k}_{s}"] for k in "Xyg") for s in SPLITS}
    from skhsfm.datasets import train_dominoes_backbone

    data = make_dominoes(*sizes, random_state=seed)
    # On the CPU, as measured in the docstring and the README.
    backbone = train_dominoes_backbone(
        data.train, n_epochs=epochs, random_state=seed, device="cpu"
    )
    splits = {
        s: (backbone.embed(data[s].images), data[s].target, data[s].group)
        for s in SPLITS
    }
    if path:
        os.makedirs(cache_dir, exist_ok=True)
        arrays = {f"{k}_{s}": v for s in SPLITS for k, v in zip("Xyg", splits[s])}
        np.savez(path, **arrays)
    return splits


def synthetic_embeddings(seed):
    """A fresh correlated-train / balanced-val-and-test embedding problem."""
    sizes = {"train": 4000, "val": 1000, "test": 4000}
    splits = {}
    for s in SPLITS:
        X, y, _, g = make_spurious_embeddings(sizes[s], 64, split=s, random_state=seed)
        splits[s] = (X, y, g)
    return splits


def make_methods(benchmark, seed, device):
    methods = {
        "ERM head": ERMHeadClassifier(),
        "DFR": DFRClassifier(random_state=seed),
        "AFR": AFRClassifier(device=device, random_state=seed),
        # The paper's Waterbirds step size and epochs (the defaults above) leave
        # gradient descent short of converged on these embeddings: the selected
        # epoch is almost always one of the last. This setting had the best
        # *selection-split* score on every dominoes seed 0-4 among learning
        # rates 0.02, 0.1, 0.5 and 500 or 2000 epochs.
        "AFR (lr 0.1, 2000 ep.)": AFRClassifier(
            learning_rate=0.1, n_epochs=2000, device=device, random_state=seed
        ),
        "HSFM": HSFMClassifier(device=device, random_state=seed),
    }
    if benchmark == "dominoes":
        # the paper's own setting for its Dominoes benchmark (Table 11)
        methods["HSFM (paper preset)"] = HSFMClassifier(
            "dominoes", device=device, random_state=seed
        )
    return methods


def evaluate(splits, methods):
    X, y, g = splits["train"]
    X_val, y_val, g_val = splits["val"]
    X_test, y_test, g_test = splits["test"]
    results = {}
    for name, estimator in methods.items():
        tic = time.perf_counter()
        estimator.fit(X, y, g, X_val=X_val, y_val=y_val, groups_val=g_val)
        seconds = time.perf_counter() - tic
        pred = estimator.predict(X_test)
        results[name] = (
            worst_group_accuracy(y_test, pred, groups=g_test),
            float(np.mean(pred == y_test)),
            seconds,
        )
    return results


def print_table(benchmark, per_seed):
    names = list(per_seed[0])
    print(f"\n{benchmark}: test accuracy over {len(per_seed)} seeds (mean +- std)")
    print("| method | worst-group acc. | mean acc. | fit time (s) |")
    print("|---|---|---|---|")
    for name in names:
        values = np.array([r[name] for r in per_seed])
        mean, std = values.mean(0), values.std(0)
        print(
            f"| {name} | {100 * mean[0]:.1f} +- {100 * std[0]:.1f} "
            f"| {100 * mean[1]:.1f} +- {100 * std[1]:.1f} "
            f"| {mean[2]:.2f} +- {std[2]:.2f} |"
        )


def main(argv=None):
    parser = argparse.ArgumentParser(
        description="Compare the ERM head, DFR, AFR and HSFM on the same embeddings"
    )
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument(
        "--benchmarks",
        nargs="+",
        choices=["dominoes", "synthetic"],
        default=["dominoes", "synthetic"],
    )
    parser.add_argument("--full", action="store_true", help="full-size dominoes")
    parser.add_argument("--epochs", type=int, default=10, help="CNN epochs")
    parser.add_argument("--cache-dir", default=None, help="reuse embeddings here")
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args(argv)

    for benchmark in args.benchmarks:
        per_seed = []
        for seed in args.seeds:
            tic = time.perf_counter()
            if benchmark == "dominoes":
                splits = dominoes_embeddings(
                    seed, args.full, args.epochs, args.cache_dir
                )
            else:
                splits = synthetic_embeddings(seed)
            data_s = time.perf_counter() - tic
            result = evaluate(splits, make_methods(benchmark, seed, args.device))
            per_seed.append(result)
            print(
                f"{benchmark} seed {seed} (data {data_s:.0f}s): "
                + "; ".join(
                    f"{n} WGA {100 * r[0]:.1f} mean {100 * r[1]:.1f}"
                    for n, r in result.items()
                ),
                flush=True,
            )
        print_table(benchmark, per_seed)


if __name__ == "__main__":
    main()
