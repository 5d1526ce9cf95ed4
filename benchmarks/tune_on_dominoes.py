"""Second stage of choosing HSFMClassifier's defaults: single changes on CNN embeddings.

Reads the embeddings that ``skhsfm benchmark`` caches (``OUT/cache/*.npz``: train,
validation and test embeddings of the dominoes benchmark with the CNN's own head)
and fits HSFM with the defaults and with one hyperparameter changed at a time,
support pool = train, hard pool = validation, initial head = the CNN's head.
Prints test worst-group accuracy (mean +- std over the cached seeds).

Run::

    skhsfm benchmark --seeds 0 1 2 3 4 5 --out bench_out --methods erm
    python benchmarks/tune_on_dominoes.py bench_out/cache
"""

import argparse
import glob
import os

import numpy as np

from skhsfm import HSFMClassifier, worst_group_accuracy

CHANGES = {
    "defaults": {},
    "n_epochs=40": dict(n_epochs=40),
    "support_size=64": dict(support_size=64),
    "hard_size=128": dict(hard_size=128),
    "outer_steps=5": dict(outer_steps=5),
    "inner_steps=5": dict(inner_steps=5),
    "inner_lr=3e-3": dict(inner_lr=3e-3),
    "outer_lr=0.3": dict(outer_lr=0.3),
    'preset="dominoes"': dict(preset="dominoes"),
}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("cache", help="folder of cached dominoes embeddings (.npz)")
    args = parser.parse_args()
    files = sorted(glob.glob(os.path.join(args.cache, "*.npz")))
    if not files:
        parser.error(f"no .npz files in {args.cache}; run `skhsfm benchmark` first")
    scores = {name: [] for name in CHANGES}
    for path in files:
        d = np.load(path)
        for name, change in CHANGES.items():
            clf = HSFMClassifier(
                init_coef=d["head_coef"], init_intercept=d["head_intercept"],
                random_state=0, **change,
            )  # fmt: skip
            clf.fit(d["X_train"], d["y_train"], d["g_train"], X_val=d["X_val"],
                    y_val=d["y_val"], groups_val=d["g_val"])  # fmt: skip
            pred = clf.predict(d["X_test"])
            scores[name].append(worst_group_accuracy(d["y_test"], pred,
                                                     groups=d["g_test"]))  # fmt: skip
    print(f"test worst-group accuracy over {len(files)} cached seeds")
    for name, values in scores.items():
        print(f"{name:20s} {np.mean(values):.3f} +- {np.std(values):.3f}")


if __name__ == "__main__":
    main()
