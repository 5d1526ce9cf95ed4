"""Every head fit on training data alone: the GridSearchCV setting without X_val.

A user who passes only ``X, y, groups`` (no separate validation set) leaves each
head to hold out part of ``X`` itself (``validation_fraction``). This script
fits logistic regression, AFR, DFR and HSFM that way and scores them on a
balanced test split:

- ``make_spurious_embeddings`` problems (d=32, 90% spurious correlation in
  training, balanced test), with 800 and 4000 training rows;
- the embedded dominoes benchmark's training split alone (``--dominoes DIR``: a
  folder of ``skhsfm benchmark`` cache files, ``OUT/cache``).

It prints mean test worst-group accuracy per method and HSFM's paired
difference to DFR over seeds (95% paired-t interval).

Run: ``python benchmarks/bench_training_only.py --seeds 0 1 2 3 4``
(add ``--dominoes skhsfm_out/cache`` after an ``skhsfm benchmark`` run).
"""

import argparse
import glob
import os
import warnings

import numpy as np
from sklearn.linear_model import LogisticRegression

from skhsfm import HSFMClassifier, worst_group_accuracy
from skhsfm.baselines import AFRClassifier, DFRClassifier
from skhsfm.datasets import make_spurious_embeddings
from skhsfm.metrics import paired_difference

METHODS = ("LogReg", "AFR", "DFR", "HSFM")


def synthetic(n_train, seed):
    train = make_spurious_embeddings(
        n_train, 32, spurious_correlation=0.9, split="train", random_state=seed
    )
    test = make_spurious_embeddings(4000, 32, split="test", random_state=seed)
    return train, test


def dominoes(path):
    with np.load(path) as d:
        train = (d["X_train"], d["y_train"], None, d["g_train"])
        test = (d["X_test"], d["y_test"], None, d["g_test"])
    return train, test


def fit_all(train, test, seed, hsfm_params):
    (X, y, _, g), (Xt, yt, _, gt) = train, test
    models = {
        "LogReg": LogisticRegression(max_iter=2000),
        "AFR": AFRClassifier(device="cpu", random_state=seed),
        "DFR": DFRClassifier(random_state=seed),
        "HSFM": HSFMClassifier(device="cpu", random_state=seed, **hsfm_params),
    }
    scores = {}
    for name, model in models.items():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # small held-out splits warn
            if name == "LogReg":
                model.fit(X, y)
            else:
                model.fit(X, y, g)
        scores[name] = worst_group_accuracy(yt, model.predict(Xt), groups=gt)
    return scores


def report(title, rows):
    print(f"\n{title} ({len(rows)} seeds): test worst-group accuracy")
    print("  " + "  ".join(f"{m:>8s}" for m in METHODS))
    means = [np.mean([r[m] for r in rows]) for m in METHODS]
    print("  " + "  ".join(f"{v:8.3f}" for v in means))
    diff = paired_difference([r["HSFM"] for r in rows], [r["DFR"] for r in rows])
    print(
        f"  HSFM - DFR: {100 * diff.mean:+.1f} points, 95% interval "
        f"[{100 * diff.low:+.1f}, {100 * diff.high:+.1f}]"
    )


def parse_params(items):
    params = {}
    for item in items:
        key, _, value = item.partition("=")
        try:
            params[key] = int(value)
        except ValueError:
            try:
                params[key] = float(value)
            except ValueError:
                params[key] = value
    return params


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--sizes", type=int, nargs="*", default=[800, 4000])
    parser.add_argument("--dominoes", metavar="DIR", help="benchmark cache folder")
    parser.add_argument(
        "--hsfm", nargs="*", default=[], metavar="KEY=VALUE",
        help="HSFMClassifier parameters to change, e.g. hard_size=0.5",
    )  # fmt: skip
    args = parser.parse_args()
    params = parse_params(args.hsfm)
    for n in args.sizes:
        rows = [fit_all(*synthetic(n, s), s, params) for s in args.seeds]
        report(f"synthetic, {n} training rows", rows)
    if args.dominoes:
        files = sorted(glob.glob(os.path.join(args.dominoes, "*.npz")))
        rows = [fit_all(*dominoes(f), i, params) for i, f in enumerate(files)]
        report("dominoes, training split alone", rows)


if __name__ == "__main__":
    main()
