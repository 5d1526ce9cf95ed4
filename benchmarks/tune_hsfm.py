"""How HSFMClassifier's defaults were chosen (0.2), with the tuning discipline.

Stage ``tune``: candidate settings are compared on the tuning seeds only, and
scored on *validation* data the fit never sees: each seed's validation split is
cut in two group-stratified halves, one the hard pool (``X_val``), the other the
scoring set. The test splits are not read. Problems: the embedded dominoes
benchmark (seeds 0-4, embeddings from ``skhsfm benchmark`` cache files) and
four synthetic problems (seeds 0-4, ``make_spurious_embeddings``: d=64
Gaussian, d=512 unit-norm, d=2048 at scale 100, 3 classes x 3 attributes).

Stage ``final``: the chosen defaults against DFR on fresh seeds (10-19), test
split, whole validation split as the hard pool, from both initial heads (the
backbone's own last layer and HSFM's default logistic-regression start), with
paired 95% intervals; plus the stability figures (largest single-epoch drop of
the hard-pool worst-group accuracy) and fit times.

Run::

    skhsfm benchmark --seeds 0 1 2 3 4 10 11 12 13 14 15 16 17 18 19 \\
        --methods erm --out tune_out
    python benchmarks/tune_hsfm.py tune --cache tune_out/cache
    python benchmarks/tune_hsfm.py final --cache tune_out/cache
    python benchmarks/tune_hsfm.py time --cache tune_out/cache   # fit times

(on 2 cores: tune about 45 minutes, final about 25, time about 1.)
"""

import argparse
import glob
import os
import statistics
import time
import warnings

import numpy as np

from skhsfm import HSFMClassifier, worst_group_accuracy
from skhsfm._pools import holdout_split
from skhsfm.baselines import DFRClassifier
from skhsfm.datasets import make_spurious_embeddings
from skhsfm.metrics import paired_difference

#: The 0.1 defaults, as HSFMClassifier ran them.
BEFORE = dict(
    support_size=16, inner_steps=15, inner_lr=1e-2, outer_steps=15, outer_lr=0.1,
    hard_size=256, n_epochs=100,
    head_update="adam", balance="classes",
)  # fmt: skip
#: The 0.2 defaults, spelled out.
NEW = dict(
    support_size=32,
    inner_steps=15,
    inner_lr=0.03,
    outer_steps=10,
    outer_lr=0.03,
    hard_size=128,
    n_epochs=200,
    head_update="gd",
    balance="auto",
)
CANDIDATES = {
    "0.1 defaults (adam, per class)": BEFORE,
    "0.1 defaults with gd": dict(BEFORE, head_update="gd"),
    "0.2 defaults (gd, groups, |S| 32, a/eta .03, K 128)": NEW,
    "  ... balance per class (plain initial head)": dict(NEW, balance="classes"),
    "  ... K_H 15": dict(NEW, outer_steps=15),
    "  ... |S| 16": dict(NEW, support_size=16),
    "  ... support pool = hard pool (validation)": dict(NEW, support="validation"),
}  # fmt: skip
SYNTHETIC = {
    "gauss-d64": dict(n_features=64),
    "unitnorm-d512": dict(n_features=512, normalize=True),
    "x100-d2048": dict(n_features=2048, scale=100.0),
    "3cls-3attr-d128": dict(n_features=128, n_classes=3, n_attributes=3),
}


def synthetic(name, seed):
    kw = dict(SYNTHETIC[name])
    normalize = kw.pop("normalize", False)
    out = {}
    for split, n in (("train", 2000), ("val", 600), ("test", 2000)):
        X, y, _, g = make_spurious_embeddings(
            n, spurious_correlation=0.95, split=split, random_state=seed, **kw
        )
        if normalize:
            X = X / np.linalg.norm(X, axis=1, keepdims=True)
        out[split] = (X, y, g)
    return out


def dominoes(cache, seed):
    files = glob.glob(os.path.join(cache, f"*seed{seed}[_.]*npz"))
    if not files:
        raise SystemExit(f"no cached embeddings of seed {seed} in {cache}")
    with np.load(files[0]) as d:
        out = {s: (d[f"X_{s}"], d[f"y_{s}"], d[f"g_{s}"]) for s in ("train", "val")}
        out["test"] = (d["X_test"], d["y_test"], d["g_test"])
        out["head"] = (d["head_coef"], d["head_intercept"])
    return out


def tuning_view(data, seed):
    """Hard pool = one half of validation, scoring set = the other half."""
    X, y, g = data["val"]
    fit_half, score_half = holdout_split(y, g, 0.5, np.random.RandomState(seed))
    return dict(
        data,
        val=(X[fit_half], y[fit_half], g[fit_half]),
        test=(X[score_half], y[score_half], g[score_half]),
    )


def fit_score(estimator, data, with_groups=True):
    """Test worst-group accuracy and fit seconds; ``with_groups=False`` fits
    without any group labels (selection by worst-class accuracy)."""
    (X, y, g), (Xv, yv, gv), (Xt, yt, gt) = data["train"], data["val"], data["test"]
    if not with_groups:
        g = gv = None
    tic = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        estimator.fit(X, y, g, X_val=Xv, y_val=yv, groups_val=gv)
    seconds = time.perf_counter() - tic
    return worst_group_accuracy(yt, estimator.predict(Xt), groups=gt), seconds


def max_drop(estimator):
    wga = estimator.history_["worst_group_accuracy"]
    start = estimator.best_score_ if len(wga) < 2 else wga[0]
    return float(np.max(-np.diff(np.r_[start, wga]), initial=0.0))


def run(problems, configs, init):
    """Rows of (config, problem, seed, hsfm score, dfr score, drop, seconds)."""
    rows = []
    for (problem, seed), data in problems.items():
        dfr, _ = fit_score(DFRClassifier(random_state=seed), data)
        head = data.get("head") if init == "backbone" else None
        for name, params in configs.items():
            params = dict(params)
            with_groups = params.pop("with_groups", True)
            fit_data = data
            if params.pop("support", "train") == "validation":
                # the validation split (the hard pool) is the support pool too
                fit_data = dict(data, train=data["val"])
            clf = HSFMClassifier(
                **params, device="cpu", random_state=seed,
                init_coef=None if head is None else head[0],
                init_intercept=None if head is None else head[1],
            )  # fmt: skip
            score, seconds = fit_score(clf, fit_data, with_groups)
            rows.append((name, problem, seed, score, dfr, max_drop(clf), seconds))
        print(".", end="", flush=True)
    print()
    return rows


def summarize(rows, title):
    print(f"\n{title}")
    print(f"{'setting':55s} {'HSFM':>6s} {'DFR':>6s} {'HSFM-DFR (95% CI)':>22s}"
          f" {'max drop':>8s} {'fit s':>6s}")  # fmt: skip
    for name in dict.fromkeys(r[0] for r in rows):
        mine = [r for r in rows if r[0] == name]
        diff = paired_difference([r[3] for r in mine], [r[4] for r in mine])
        print(
            f"{name:55s} {np.mean([r[3] for r in mine]):6.3f} "
            f"{np.mean([r[4] for r in mine]):6.3f} "
            f"{100 * diff.mean:+6.1f} [{100 * diff.low:+5.1f}, {100 * diff.high:+5.1f}]"
            f" {max(r[5] for r in mine):8.2f} "
            f"{statistics.median(r[6] for r in mine):6.2f}"
        )


def fit_times(cache, seeds):
    """Fit seconds of the 0.1 and the 0.2 defaults, in turn on the same seeds
    (run it on a quiet machine)."""
    seconds = {"0.1 defaults": [], "0.2 defaults": []}
    for seed in seeds:
        data = dominoes(cache, seed)
        for name, params in (("0.1 defaults", BEFORE), ("0.2 defaults", {})):
            clf = HSFMClassifier(**params, device="cpu", random_state=seed)
            seconds[name].append(fit_score(clf, data)[1])
    for name, values in seconds.items():
        print(f"{name}: " + " ".join(f"{v:.2f}" for v in values)
              + f" s, median {statistics.median(values):.2f} s")  # fmt: skip
    ratio = statistics.median(seconds["0.2 defaults"]) / statistics.median(
        seconds["0.1 defaults"]
    )
    print(f"ratio of medians: {ratio:.2f}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("stage", choices=("tune", "final", "time"))
    parser.add_argument("--cache", required=True, help="skhsfm benchmark cache")
    parser.add_argument("--seeds", type=int, nargs="+")
    parser.add_argument("--synthetic-seeds", type=int, nargs="+")
    parser.add_argument(
        "--only", metavar="TEXT", help="run only the settings whose name has TEXT"
    )
    args = parser.parse_args()

    def chosen(configs):
        return (
            {k: v for k, v in configs.items() if args.only in k}
            if args.only
            else configs
        )

    if args.stage == "time":
        fit_times(args.cache, args.seeds or [10, 11, 12])
        return
    if args.stage == "tune":
        seeds = args.seeds or [0, 1, 2, 3, 4]
        syn_seeds = args.synthetic_seeds or seeds[:3]
        dom = {("dominoes", s): tuning_view(dominoes(args.cache, s), s) for s in seeds}
        syn = {
            (p, s): tuning_view(synthetic(p, s), s)
            for p in SYNTHETIC
            for s in syn_seeds
        }
        summarize(run(dom, chosen(CANDIDATES), "default"), "dominoes, tuning "
                  "seeds, validation halves (default initial head)")  # fmt: skip
        summarize(run(syn, chosen(CANDIDATES), "default"), "synthetic, tuning seeds, "
                  "validation halves")  # fmt: skip
        return
    seeds = args.seeds or list(range(10, 20))
    syn_seeds = args.synthetic_seeds or seeds[:5]
    final = chosen({
        "0.2 defaults": {},
        "0.2 defaults, no group labels": {"with_groups": False},
        "0.1 defaults": BEFORE,
        "0.2 defaults, support pool = validation split": {"support": "validation"},
    })  # fmt: skip
    dom = {("dominoes", s): dominoes(args.cache, s) for s in seeds}
    for init in ("backbone", "default"):
        summarize(run(dom, final, init), f"dominoes, fresh seeds, test ({init} head)")
    syn = {(p, s): synthetic(p, s) for p in SYNTHETIC for s in syn_seeds}
    summarize(run(syn, final, "default"), "synthetic, fresh seeds, test")


if __name__ == "__main__":
    main()
