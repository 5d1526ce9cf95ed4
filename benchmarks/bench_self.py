"""SELF with no group labels against DFR with validation groups.

``SELFClassifier`` is fit with ``X, y, X_val, y_val`` and no group label at
all; the references are ``DFRClassifier`` fit with the validation groups
(``groups_val``), as DFR is meant to be used, and ``InferredGroupsClassifier(
DFRClassifier())``, DFR with groups inferred from the data (no labels either).
The logistic-regression ERM head is printed for scale.

Problems:

- the embedded dominoes benchmark, one file per seed as ``skhsfm benchmark``
  caches them (``--dominoes DIR``: files ``dominoes_seed{N}_*.npz``); SELF
  starts from the logistic regression on the training embeddings, and with
  ``--backbone-head`` also from the CNN's own last layer (``head_coef``);
- ``make_spurious_embeddings`` problems (training split 95% correlated, 2000
  rows; balanced validation split of 600 and test split of 2000 rows):
  ``gauss-d64``, ``3cls-3attr-d128`` (3 classes x 3 attributes) and
  ``unitnorm-d512`` (rows scaled to norm 1).

For each problem it prints the mean test worst-group accuracy of every method,
the paired difference of SELF to each reference with a 95% paired-t interval
(:func:`skhsfm.metrics.paired_difference`) and the median fit time. The
settings of SELF were chosen on seeds 0-9; report fresh seeds (10-19).

Run::

    python benchmarks/bench_self.py --dominoes /work/data/dom/cache --seeds 10 11 12
    python benchmarks/bench_self.py --problems gauss-d64 --seeds 0 1 --self dropout=0.5

``--records FILE`` keeps every fit's numbers in a JSON-lines file and reuses
the references found there (same problem, seed and method), so that trying
SELF settings does not refit DFR.
"""

import argparse
import glob
import json
import os
import time
import warnings

import numpy as np
from sklearn.linear_model import LogisticRegression

from skhsfm import worst_group_accuracy
from skhsfm.baselines import DFRClassifier, SELFClassifier
from skhsfm.datasets import make_spurious_embeddings
from skhsfm.groups import InferredGroupsClassifier
from skhsfm.metrics import paired_difference

SYNTHETIC = {
    "gauss-d64": dict(n_features=64),
    "3cls-3attr-d128": dict(n_features=128, n_classes=3, n_attributes=3),
    "unitnorm-d512": dict(n_features=512, normalize=True),
}
SPLITS = (("train", 2000), ("val", 600), ("test", 2000))
DFR_VAL = "DFR (val groups)"
DFR_INF = "DFR (inferred groups)"
LOGREG = "ERM (logistic regression)"
SELF = "SELF (no groups)"
SELF_BACKBONE = "SELF (no groups, backbone head)"
REFERENCES = (DFR_VAL, DFR_INF, LOGREG)


def synthetic(name, seed):
    params = dict(SYNTHETIC[name])
    normalize = params.pop("normalize", False)
    data = {}
    for split, n in SPLITS:
        X, y, _, g = make_spurious_embeddings(
            n, spurious_correlation=0.95, split=split, random_state=seed, **params
        )
        if normalize:
            X = X / np.linalg.norm(X, axis=1, keepdims=True)
        data[split] = (X.astype(np.float32), y, g)
    return data


def dominoes(folder, seed):
    files = sorted(glob.glob(os.path.join(folder, f"dominoes_seed{seed}_*.npz")))
    if not files:
        raise SystemExit(f"no dominoes_seed{seed}_*.npz in {folder}")
    with np.load(files[0]) as d:
        data = {s: (d[f"X_{s}"], d[f"y_{s}"], d[f"g_{s}"]) for s in ("train", "val")}
        data["test"] = (d["X_test"], d["y_test"], d["g_test"])
        data["head"] = (d["head_coef"], d["head_intercept"])
    return data


def estimators(data, seed, self_params, backbone_head):
    """``{label: (estimator, uses_validation_groups)}``."""
    out = {
        DFR_VAL: (DFRClassifier(random_state=seed), True),
        DFR_INF: (
            InferredGroupsClassifier(
                DFRClassifier(random_state=seed), random_state=seed
            ),
            False,
        ),
        LOGREG: (LogisticRegression(max_iter=1000), False),
        SELF: (SELFClassifier(random_state=seed, **self_params), False),
    }
    if backbone_head and "head" in data:
        coef, intercept = data["head"]
        out[SELF_BACKBONE] = (
            SELFClassifier(
                init_coef=coef, init_intercept=intercept, random_state=seed,
                **self_params,
            ),
            False,
        )  # fmt: skip
    return out


def fit_one(estimator, with_groups, data):
    (X, y, _), (Xv, yv, gv), (Xt, yt, gt) = data["train"], data["val"], data["test"]
    tic = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if isinstance(estimator, LogisticRegression):
            estimator.fit(X, y)
        elif with_groups:
            estimator.fit(X, y, X_val=Xv, y_val=yv, groups_val=gv)
        else:  # no group label anywhere
            estimator.fit(X, y, X_val=Xv, y_val=yv)
    seconds = time.perf_counter() - tic
    pred = estimator.predict(Xt)
    return {
        "wga": float(worst_group_accuracy(yt, pred, groups=gt)),
        "acc": float(np.mean(pred == yt)),
        "seconds": seconds,
    }


def details(estimator):
    names = ("best_n_selected_", "best_learning_rate_", "best_dropout_")
    return {n.strip("_"): getattr(estimator, n, None) for n in names}


def load_records(path):
    if not path or not os.path.exists(path):
        return {}
    with open(path) as f:
        rows = [json.loads(line) for line in f if line.strip()]
    return {(r["problem"], r["seed"], r["method"]): r for r in rows}


def run_problem(problem, seeds, load, args, self_params, records):
    rows = []
    for seed in seeds:
        data = load(seed)
        found = {}
        for label, (est, with_groups) in estimators(
            data, seed, self_params, args.backbone_head
        ).items():
            key = (problem, seed, label)
            if label in REFERENCES and key in records:
                found[label] = records[key]
                continue
            rec = {"problem": problem, "seed": seed, "method": label}
            rec.update(fit_one(est, with_groups, data))
            if label.startswith("SELF"):
                rec.update(details(est), params=self_params)
            found[label] = rec
            if args.records:
                with open(args.records, "a") as f:
                    f.write(json.dumps(rec) + "\n")
        rows.append(found)
        if args.verbose:
            print(
                f"  {problem} seed {seed}: "
                + ", ".join(f"{m} {r['wga']:.3f}" for m, r in found.items()),
                flush=True,
            )
    return rows


def report(title, rows):
    methods = list(rows[0])
    print(f"\n{title} ({len(rows)} seeds): test worst-group accuracy, fit time")
    for m in methods:
        wga = [r[m]["wga"] for r in rows]
        sec = np.median([r[m]["seconds"] for r in rows])
        print(
            f"  {m:<34s} mean {100 * np.mean(wga):5.1f}  min {100 * np.min(wga):5.1f}"
            f"  median fit {sec:6.2f} s"
        )
    for m in (SELF, SELF_BACKBONE):
        if m not in methods:
            continue
        for ref in (DFR_VAL, DFR_INF):
            diff = paired_difference(
                [r[m]["wga"] for r in rows], [r[ref]["wga"] for r in rows]
            )
            print(
                f"  {m} - {ref}: {100 * diff.mean:+.1f} points, 95% interval "
                f"[{100 * diff.low:+.1f}, {100 * diff.high:+.1f}]"
            )


def parse_params(items):
    params = {}
    for item in items:
        key, _, value = item.partition("=")
        try:
            params[key] = json.loads(value)
        except json.JSONDecodeError:
            params[key] = value
        if isinstance(params[key], list):
            params[key] = tuple(params[key])
    return params


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=list(range(10, 20)))
    parser.add_argument("--dominoes", metavar="DIR", help="skhsfm benchmark cache")
    parser.add_argument(
        "--problems", nargs="*", default=list(SYNTHETIC), choices=list(SYNTHETIC)
    )
    parser.add_argument(
        "--self", nargs="*", default=[], metavar="KEY=VALUE",
        help="SELFClassifier parameters (JSON values), e.g. 'n_selected=[20,100]'",
    )  # fmt: skip
    parser.add_argument("--backbone-head", action="store_true")
    parser.add_argument("--records", metavar="FILE", help="JSON-lines record file")
    parser.add_argument("--verbose", action="store_true")
    args = parser.parse_args()
    self_params = parse_params(args.self)
    records = load_records(args.records)
    everything = []
    if args.dominoes:
        rows = run_problem(
            "dominoes", args.seeds, lambda s: dominoes(args.dominoes, s), args,
            self_params, records,
        )  # fmt: skip
        report("dominoes", rows)
        everything += rows
    for name in args.problems:
        rows = run_problem(
            name, args.seeds, lambda s, n=name: synthetic(n, s), args, self_params,
            records,
        )  # fmt: skip
        report(name, rows)
        everything += rows
    if len(everything) > len(args.seeds):
        common = [
            {m: r[m] for m in (SELF, DFR_VAL, DFR_INF, LOGREG)} for r in everything
        ]
        report("all problems pooled", common)


if __name__ == "__main__":
    main()
