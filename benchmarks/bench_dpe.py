"""DPEClassifier against the official DPE package, with DFR beside them.

On the same embeddings, for every data set x seed (x balancing mode): fits the
official package (``dpe`` 0.2.0 from PyPI, run in its own environment by
``dpe_official_runner.py``), :class:`~skhsfm.baselines.DPEClassifier` with the
same number of members and epochs, and :class:`~skhsfm.baselines.DFRClassifier`;
prints test worst-group accuracy and fit seconds of each, then the means per
data set, the paired difference ours - official over all runs (95% t
interval) and the ratio of the fit times.

Data sets (train split 95% correlated, validation and test balanced):

- ``gauss64``: ``make_spurious_embeddings``, d=64, 2 classes x 2 attributes;
- ``multi128``: d=128, 3 classes x 3 attributes;
- ``unit512``: d=512, 2 x 2, every row scaled to unit norm;
- ``dominoes``: the embeddings ``skhsfm benchmark`` caches
  (``--dominoes-cache``, npz files ``dominoes_seed{S}_*.npz``; read only).

The official package reads ``feats_val.npy``, ``feats_test.npy`` and a
metadata CSV; they are written to a temporary folder from the same arrays.
Its fit is timed inside its process (``DPE.fit()`` alone; loading the files
is timed apart), with one torch thread (``--official-threads``) as
DPEClassifier trains on the CPU; ours and DFR's are ``fit`` calls in this
process. The ratio is taken of CPU seconds (``time.process_time``), which a
shared, busy machine disturbs far less than wall seconds; both are printed.

Two fidelity checks come with it: the official ensemble's test probabilities
are recomputed with skhsfm's prediction function from the official
prototypes (largest absolute difference printed), and ``--member-check``
trains one member with the official ``_train_prototypes`` and with
skhsfm's core from the same start and batches (relative difference printed).

Setup (once): ``python3 -m venv /work/venvs/dpe && /work/venvs/dpe/bin/pip
install dpe==0.2.0 netcal pandas torch``.

Run (slow: an official fit takes minutes. Its results are kept in
``--official-cache``, so a rerun fits only ours and DFR, in seconds)::

    nice -n 15 python benchmarks/bench_dpe.py --datasets gauss64 multi128 dominoes
"""

import argparse
import glob
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

from skhsfm.baselines import DFRClassifier, DPEClassifier
from skhsfm.baselines._dpe_core import ensemble_log_proba, unit_rows
from skhsfm.datasets import make_spurious_embeddings
from skhsfm.metrics import paired_difference, worst_group_accuracy

HERE = os.path.dirname(os.path.abspath(__file__))
RUNNER = os.path.join(HERE, "dpe_official_runner.py")
DATASETS = ("gauss64", "multi128", "unit512", "dominoes")
SIZES = dict(n_train=4000, n_val=1200, n_test=2400)
SYNTHETIC = {
    "gauss64": dict(n_features=64),
    "multi128": dict(n_features=128, n_classes=3, n_attributes=3),
    "unit512": dict(n_features=512),
}


# ------------------------------------------------------------------ data


def load(dataset, seed, cache):
    """``{"train"|"val"|"test": (X, y, attribute, group)}`` as float32."""
    if dataset == "dominoes":
        return _dominoes(seed, cache)
    kwargs = dict(SYNTHETIC[dataset], spurious_correlation=0.95, random_state=seed)
    splits = {}
    for split in ("train", "val", "test"):
        X, y, a, g = make_spurious_embeddings(
            SIZES[f"n_{split}"], split=split, dtype=np.float32, **kwargs
        )
        if dataset == "unit512":
            X = X / np.linalg.norm(X, axis=1, keepdims=True)
        splits[split] = (X, y, a, g)
    return splits


def _dominoes(seed, cache):
    paths = glob.glob(os.path.join(cache, f"dominoes_seed{seed}_*.npz"))
    if not paths:
        raise SystemExit(f"no dominoes_seed{seed}_*.npz in {cache}")
    with np.load(paths[0], allow_pickle=False) as z:
        splits = {}
        for split in ("train", "val", "test"):
            y, g = z[f"y_{split}"], z[f"g_{split}"]
            n_attributes = (int(g.max()) + 1) // (int(y.max()) + 1)
            if not np.array_equal(g // n_attributes, y):
                raise SystemExit(f"{paths[0]}: groups are not class x attribute")
            splits[split] = (z[f"X_{split}"].astype(np.float32), y, g % n_attributes, g)
    return splits


def write_official_inputs(folder, splits):
    """``feats_val.npy``, ``feats_test.npy`` and ``metadata.csv`` (split 1 =
    validation, 2 = test, in row order)."""
    lines = ["filename,split,y,a,g"]
    for code, split in ((1, "val"), (2, "test")):
        X, y, a, g = splits[split]
        np.save(os.path.join(folder, f"feats_{split}.npy"), X)
        lines += [f"x{i},{code},{y[i]},{a[i]},{g[i]}" for i in range(y.shape[0])]
    path = os.path.join(folder, "metadata.csv")
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")
    return path


# ------------------------------------------------------------------ fits


def run_official(splits, dataset, seed, mode, args):
    """The official package's fit in its environment, from ``--official-cache``
    when this run is there: its test probabilities, ensemble and seconds."""
    name = f"{dataset}_seed{seed}_{mode}_m{args.members}_e{args.epochs}"
    name += "_fasteval.npz" if args.official_eval == "fast" else ".npz"
    cached = os.path.join(args.official_cache, name)
    if not os.path.exists(cached):
        with tempfile.TemporaryDirectory(prefix="dpe_official_") as folder:
            job = dict(
                data_dir=folder,
                metadata_path=write_official_inputs(folder, splits),
                num_stages=args.members,
                epochs=args.epochs,
                device="cpu",
                emb_dim=int(splits["val"][0].shape[1]),
                train_attr=mode == "groups",
                seed=seed,
                workers=0,
                fast_eval=args.official_eval == "fast",
            )
            with open(os.path.join(folder, "job.json"), "w") as f:
                json.dump(job, f)
            done = subprocess.run(
                [args.official_python, RUNNER, "fit", folder],
                capture_output=True,
                text=True,
                env=dict(os.environ, DPE_THREADS=str(args.official_threads)),
            )
            if done.returncode != 0:
                raise SystemExit(f"the official run failed:\n{done.stderr[-3000:]}")
            os.makedirs(args.official_cache, exist_ok=True)
            os.replace(os.path.join(folder, "result.npz"), cached)
    with np.load(cached) as z:
        return {key: z[key] for key in z.files}


def score(y, pred, g):
    return float(worst_group_accuracy(y, pred, groups=g))


def one_run(dataset, seed, mode, args, dfr_cache):
    splits = load(dataset, seed, args.dominoes_cache)
    (X, y, _, g), (Xv, yv, _, gv) = splits["train"], splits["val"]
    Xt, yt, _, gt = splits["test"]
    fit_kwargs = dict(X_val=Xv, y_val=yv, groups_val=gv)
    record = dict(dataset=dataset, seed=seed, mode=mode)

    ours = DPEClassifier(
        args.members, args.epochs, balance=mode, device="cpu", random_state=seed
    )
    tic, cpu = time.perf_counter(), time.process_time()
    ours.fit(X, y, g, **fit_kwargs)
    record["ours_cpu_seconds"] = time.process_time() - cpu
    record["ours_seconds"] = time.perf_counter() - tic
    record["ours_wga"] = score(yt, ours.predict(Xt), gt)

    key = (dataset, seed)
    if key not in dfr_cache:
        dfr = DFRClassifier(random_state=seed)
        tic, cpu = time.perf_counter(), time.process_time()
        dfr.fit(X, y, g, **fit_kwargs)
        dfr_cache[key] = dict(
            dfr_cpu_seconds=time.process_time() - cpu,
            dfr_seconds=time.perf_counter() - tic,
            dfr_wga=score(yt, dfr.predict(Xt), gt),
        )
    record.update(dfr_cache[key])

    if not args.skip_official:
        official = run_official(splits, dataset, seed, mode, args)
        proba = official["proba_test"]
        record["official_eval"] = args.official_eval
        record["official_seconds"] = float(official["fit_seconds"])
        record["official_cpu_seconds"] = float(official["fit_cpu_seconds"])
        record["official_load_seconds"] = float(official["load_seconds"])
        record["official_wga"] = score(yt, proba.argmax(1), gt)
        # our prediction function on the official ensemble gives its probabilities
        ours_proba = np.exp(
            ensemble_log_proba(
                unit_rows(Xt), official["prototypes"], official["scales"]
            )
        )
        record["predict_max_abs_diff"] = float(np.abs(ours_proba - proba).max())
    return record


# --------------------------------------------------------------- summary


def summarize(records):
    by_dataset = {}
    for r in records:
        by_dataset.setdefault((r["dataset"], r["mode"]), []).append(r)
    head = (
        f"{'data set':<10} {'mode':<8} {'runs':>4} {'official':>9} {'ours':>7} "
        f"{'DFR':>7} {'t official':>11} {'t ours':>8} {'t DFR':>7}"
    )
    print("\nmean test worst-group accuracy (%) and median fit CPU seconds")
    print(head)
    print("-" * len(head))
    for (dataset, mode), rows in sorted(by_dataset.items()):
        official = [r["official_wga"] for r in rows if "official_wga" in r]
        t_official = [r["official_cpu_seconds"] for r in rows if _timed(r)]
        print(
            f"{dataset:<10} {mode:<8} {len(rows):>4} "
            f"{_mean(official):>9} {_mean([r['ours_wga'] for r in rows]):>7} "
            f"{_mean([r['dfr_wga'] for r in rows]):>7} {_median(t_official):>11} "
            f"{_median([r['ours_cpu_seconds'] for r in rows]):>8} "
            f"{_median([r['dfr_cpu_seconds'] for r in rows]):>7}"
        )
    paired = [r for r in records if "official_wga" in r]
    if len(paired) >= 2:
        for mode in sorted({r["mode"] for r in paired}):
            rows = [r for r in paired if r["mode"] == mode]
            if len(rows) < 2:
                continue
            _paired_line(f"ours - official ({mode})", rows, "ours_wga", "official_wga")
            _paired_line(f"DFR - official ({mode})", rows, "dfr_wga", "official_wga")
            timed = [r for r in rows if _timed(r)]
            for kind in ("cpu_seconds", "seconds") if timed else ():
                ratio = [r[f"ours_{kind}"] / r[f"official_{kind}"] for r in timed]
                print(
                    f"  fit {kind.replace('_', ' ')} ours / official ({mode}): "
                    f"median {100 * np.median(ratio):.2f}%, largest "
                    f"{100 * max(ratio):.2f}% over {len(timed)} runs"
                )
            diff = max(r["predict_max_abs_diff"] for r in rows)
            print(
                "  our predict on the official ensembles: largest |probability "
                f"difference| {diff:.1e}"
            )


def _timed(record):
    """Whether the record times the official package as published."""
    return record.get("official_eval") == "full"


def _paired_line(label, rows, key, reference):
    d = paired_difference(
        [100 * r[key] for r in rows], [100 * r[reference] for r in rows]
    )
    print(
        f"  {label}: mean {d.mean:+.2f} points, 95% CI "
        f"[{d.low:+.2f}, {d.high:+.2f}] over {len(rows)} runs"
    )


def _mean(values):
    return f"{100 * np.mean(values):.1f}" if values else "-"


def _median(values):
    return f"{np.median(values):.2f}" if values else "-"


def member_check(args, n_seeds=3):
    """One member trained by both implementations from the same start."""
    env = dict(os.environ, PYTHONPATH=os.path.dirname(HERE))
    for seed in range(n_seeds):
        with tempfile.TemporaryDirectory(prefix="dpe_member_") as folder:
            code = (
                f"import sys; sys.path.insert(0, {HERE!r}); "
                "import dpe_official_runner as r; "
                f"r.member({folder!r}, seed={seed}, epochs=8)"
            )
            subprocess.run([args.official_python, "-c", code], env=env, check=True)
            with np.load(os.path.join(folder, "member.npz")) as z:
                a, b = z["official_prototypes"], z["ours_prototypes"]
                rel = np.linalg.norm(a - b) / np.linalg.norm(a)
                scales = (float(z["official_scale"][0]), float(z["ours_scale"][0]))
        print(
            f"member check seed {seed}: prototypes relative difference "
            f"{rel:.1e}, distance scale official {scales[0]:.6f} ours {scales[1]:.6f}"
        )


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", nargs="+", choices=DATASETS, default=DATASETS)
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument(
        "--modes", nargs="+", choices=("groups", "classes"), default=["groups"]
    )
    parser.add_argument("--members", type=int, default=15)
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--official-python", default="/work/venvs/dpe/bin/python")
    parser.add_argument("--dominoes-cache", default="/work/data/dom/cache")
    parser.add_argument("--official-cache", default="dpe_official_runs")
    parser.add_argument(
        "--official-threads",
        type=int,
        default=1,
        help="torch threads of the official fit (default 1, as DPEClassifier "
        "uses on the CPU: the fairer timing on a small, busy machine)",
    )
    parser.add_argument(
        "--official-eval",
        choices=("full", "fast"),
        default="full",
        help="fast: replace the official per-epoch validation by an exact "
        "equivalent (dpe_official_runner.fast_evaluate: the same fits, for "
        "accuracy runs on a busy machine; its times are then not the "
        "official package's)",
    )
    parser.add_argument("--skip-official", action="store_true")
    parser.add_argument("--member-check", action="store_true")
    args = parser.parse_args(argv)

    if args.member_check:
        member_check(args)
    # the first fit in a process pays torch's import: not part of any timing
    DPEClassifier(1, 1, device="cpu", random_state=0).fit(np.eye(4), [0, 0, 1, 1])
    records, dfr_cache = [], {}
    for dataset in args.datasets:
        for seed in args.seeds:
            for mode in args.modes:
                record = one_run(dataset, seed, mode, args, dfr_cache)
                print(json.dumps(record), flush=True)
                records.append(record)
    summarize(records)


if __name__ == "__main__":
    sys.exit(main())
