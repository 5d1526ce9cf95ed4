"""How HSFMClassifier's own defaults were chosen: a small grid on synthetic problems.

Each problem is drawn with ``make_spurious_embeddings`` (train split 95% correlated,
balanced validation = hard pool, balanced test), at different dimensions and scales:
plain Gaussian features (d=64), unit-norm CLIP-like features (d=512), large-scale
features (d=2048, x100) and a 3-class x 3-attribute problem. Prints the mean test
worst-group accuracy over seeds for every configuration and problem, and the
configuration with the best average.

Run: ``python benchmarks/tune_defaults.py [--seeds 2]`` (a few minutes on 2 cores).
"""

import argparse
import itertools

import numpy as np

from skhsfm import HSFMClassifier, worst_group_accuracy
from skhsfm.datasets import make_spurious_embeddings

PROBLEMS = {
    "gauss-d64": dict(n_features=64),
    "unitnorm-d512": dict(n_features=512, normalize=True),
    "x100-d2048": dict(n_features=2048, scale=100.0),
    "3cls-3attr-d128": dict(n_features=128, n_classes=3, n_attributes=3),
}
GRIDS = {
    # stage 1: step sizes and hard-set size, paper's other settings
    "coarse": dict(
        inner_lr=[1e-4, 1e-3, 1e-2], outer_lr=[0.1, 1.0], hard_size=[64, 256]
    ),
    # stage 2: around stage 1's best (inner_lr 1e-3, outer_lr 0.1, hard_size 256)
    "fine": dict(
        inner_lr=[1e-3, 3e-3],
        outer_lr=[0.1],
        hard_size=[256],
        support_size=[16, 64, 128],
        n_epochs=[40, 100],
    ),
}


def problem(name, seed):
    kw = dict(PROBLEMS[name])
    normalize = kw.pop("normalize", False)
    out = []
    for split, n in (("train", 2000), ("val", 600), ("test", 2000)):
        X, y, _, g = make_spurious_embeddings(
            n, spurious_correlation=0.95, split=split, random_state=seed, **kw
        )
        if normalize:
            X = X / np.linalg.norm(X, axis=1, keepdims=True)
        out.append((X, y, g))
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--stage", choices=GRIDS, default="fine")
    args = parser.parse_args()
    data = {(p, s): problem(p, s) for p in PROBLEMS for s in range(args.seeds)}
    grid = GRIDS[args.stage]
    names = list(grid)
    rows = []
    print("init head (logistic regression) test WGA:", end=" ")
    for p in PROBLEMS:
        scores = []
        for s in range(args.seeds):
            (X, y, g), (Xv, yv, gv), (Xt, yt, gt) = data[p, s]
            clf = HSFMClassifier(n_epochs=1, random_state=s).fit(
                X, y, g, X_val=Xv, y_val=yv, groups_val=gv
            )
            clf.coef_, clf.intercept_ = clf.init_coef_, clf.init_intercept_
            scores.append(worst_group_accuracy(yt, clf.predict(Xt), groups=gt))
        print(f"{p} {np.mean(scores):.3f}", end="  ")
    print()
    for values in itertools.product(*grid.values()):
        config = dict(zip(names, values))
        per_problem = []
        for p in PROBLEMS:
            scores = []
            for s in range(args.seeds):
                (X, y, g), (Xv, yv, gv), (Xt, yt, gt) = data[p, s]
                clf = HSFMClassifier(random_state=s, **config).fit(
                    X, y, g, X_val=Xv, y_val=yv, groups_val=gv
                )
                scores.append(worst_group_accuracy(yt, clf.predict(Xt), groups=gt))
            per_problem.append(np.mean(scores))
        rows.append((np.mean(per_problem), config, per_problem))
        cells = "  ".join(f"{p} {v:.3f}" for p, v in zip(PROBLEMS, per_problem))
        print(f"{config}  mean {np.mean(per_problem):.3f}  | {cells}", flush=True)
    best = max(rows, key=lambda r: r[0])
    print("best:", best[1], f"mean test WGA {best[0]:.3f}")


if __name__ == "__main__":
    main()
