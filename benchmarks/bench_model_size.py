"""Size of a fitted head on disk: joblib (pickle) and skops files.

A fitted head is a linear model, ``coef_`` and ``intercept_``: a few KB. This
prints, per head and embedding size, the bytes of ``coef_ + intercept_`` and of
the whole fitted estimator saved with ``joblib.dump`` and ``skops.io.dump``
(both uncompressed, their defaults), so that extra fitted state shows.

Data: float32 embeddings from ``make_spurious_embeddings``, 2 classes, a
4000-example support pool and a balanced 1000-example hard pool (``X_val``).
Heads: HSFM with its defaults but ``n_epochs=10``; DFR and AFR with their
defaults (AFR on the CPU).

Run: ``python benchmarks/bench_model_size.py [--dims 64 2048]``.
"""

import argparse
import os
import tempfile
import time

import joblib
import numpy as np

from skhsfm import AFRClassifier, DFRClassifier, HSFMClassifier
from skhsfm.datasets import make_spurious_embeddings

HEADS = {
    "HSFM": lambda: HSFMClassifier(n_epochs=10, device="cpu", random_state=0),
    "DFR": lambda: DFRClassifier(random_state=0),
    "AFR": lambda: AFRClassifier(device="cpu", random_state=0),
}


def make_data(d, seed=0):
    def split(n, name):
        X, y, _, g = make_spurious_embeddings(
            n, d, split=name, dtype=np.float32, random_state=seed
        )
        return X.astype(np.float32, copy=False), y, g

    return split(4000, "train"), split(1000, "val")


def file_sizes(estimator):
    """Bytes of the joblib and the skops file of ``estimator`` (None without skops)."""
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "head.joblib")
        joblib.dump(estimator, path)
        sizes = [os.path.getsize(path)]
        try:
            import skops.io as sio
        except ImportError:
            return sizes + [None]
        path = os.path.join(folder, "head.skops")
        sio.dump(estimator, path)
        return sizes + [os.path.getsize(path)]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dims", type=int, nargs="+", default=[64, 2048])
    args = parser.parse_args(argv)
    header = (
        "| head | d | coef_ + intercept_ (KB) | joblib (KB) | skops (KB) | fit (s) |"
    )
    print(header)
    print("|---|---|---|---|---|---|")
    for d in args.dims:
        (X, y, g), (Xv, yv, gv) = make_data(d)
        for name, make in HEADS.items():
            start = time.perf_counter()
            head = make().fit(X, y, g, X_val=Xv, y_val=yv, groups_val=gv)
            seconds = time.perf_counter() - start
            model = (head.coef_.nbytes + head.intercept_.nbytes) / 1e3
            joblib_size, skops_size = file_sizes(head)
            skops_text = "-" if skops_size is None else f"{skops_size / 1e3:.1f}"
            print(
                f"| {name} | {d} | {model:.1f} | {joblib_size / 1e3:.1f} | "
                f"{skops_text} | {seconds:.1f} |"
            )


if __name__ == "__main__":
    main()
