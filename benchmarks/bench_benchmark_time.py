"""Wall time of ``skhsfm benchmark``, stage by stage, from a fresh process.

Each repeat runs the command as a new Python process with ``--no-cache`` (so
nothing is read from an earlier run), times it from the outside, and reads the
stage times the command records in ``results.json``:

- ``start-up``: interpreter start, imports and set-up (the outer wall time
  minus the command's own ``wall_seconds``);
- ``data``: building the dominoes images, all seeds;
- ``CNN training``: the dominoes CNN, all seeds;
- ``embedding``: embedding the three splits with it, all seeds;
- one row per method: its fits, all seeds;
- ``other``: the rest (scoring, report, files);
- ``total wall``: the outer wall time;
- ``CPU time (all threads)``: user + system CPU seconds of the process, a
  figure the machine's other work changes less than the wall time.

It prints each stage's median over the repeats, the machine's load average
before and after each run (the machine's other work slows every stage), and
the test worst-group accuracy of every method (mean over seeds and each seed;
identical across repeats when the run is deterministic).

Run (the default run: 3 seeds, 4800/1200/2400 images)::

    python benchmarks/bench_benchmark_time.py --repeats 3
    python benchmarks/bench_benchmark_time.py --repeats 3 -- --quick
    python benchmarks/bench_benchmark_time.py -- --threads 1 --methods erm dfr

Arguments after ``--`` go to ``skhsfm benchmark``. Target (issue 24): the
default run in at most 90 s on 2 CPU cores of a quiet machine.
"""

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def load_text():
    """``"1.23 1.10 0.95"``: the 1, 5 and 15 minute load averages."""
    try:
        return " ".join(f"{value:.2f}" for value in os.getloadavg())
    except OSError:  # not available on this platform
        return "n/a"


def _children_cpu():
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_once(extra, env):
    """One fresh ``skhsfm benchmark`` process; ``(outer wall, CPU seconds,
    results.json)``."""
    with tempfile.TemporaryDirectory(prefix="skhsfm_bench_time_") as out:
        command = [sys.executable, "-m", "skhsfm", "benchmark", "--no-cache"]
        command += ["--quiet", "--out", out, *extra]
        cpu, tic = _children_cpu(), time.perf_counter()
        done = subprocess.run(command, env=env, capture_output=True, text=True)
        wall, cpu = time.perf_counter() - tic, _children_cpu() - cpu
        if done.returncode != 0:
            sys.stderr.write(done.stdout + done.stderr)
            raise SystemExit(f"skhsfm benchmark failed (exit {done.returncode})")
        results = json.loads(Path(out, "results.json").read_text())
        results["printed_table"] = done.stdout
        return wall, cpu, results


def stages(wall, results):
    """``{stage: seconds}`` of one run."""
    per_seed = results["timings"]["per_seed"]
    inner = results["timings"]["wall_seconds"]
    out = {"start-up": wall - inner}
    for key, label in (
        ("data", "data"),
        ("backbone_training", "CNN training"),
        ("embedding", "embedding"),
    ):
        out[label] = sum(seed.get(key, 0.0) for seed in per_seed)
    fits = {}
    for record in results["per_seed"]:
        if record["fit_seconds"] is not None:
            fits[record["method"]] = fits.get(record["method"], 0.0)
            fits[record["method"]] += record["fit_seconds"]
    out.update(fits)
    out["other"] = wall - sum(out.values())
    out["total wall"] = wall
    return out


def accuracies(results):
    """``{method: [test worst-group accuracy of each seed]}``."""
    scores = {}
    for record in results["per_seed"]:
        scores.setdefault(record["method"], []).append(record["worst_group_accuracy"])
    return scores


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    extra = []
    if "--" in argv:
        cut = argv.index("--")
        argv, extra = argv[:cut], argv[cut + 1 :]
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    env = dict(os.environ)
    # this checkout's skhsfm, whatever is installed
    env["PYTHONPATH"] = os.pathsep.join(
        [str(ROOT)] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
    )
    print(f"skhsfm benchmark --no-cache {' '.join(extra)}".rstrip())
    print(f"{os.cpu_count()} CPUs; {args.repeats} fresh runs\n")
    runs, scores = [], None
    for i in range(args.repeats):
        before = load_text()
        wall, cpu, results = run_once(extra, env)
        runs.append({**stages(wall, results), "CPU time (all threads)": cpu})
        scores = accuracies(results)
        print(
            f"run {i + 1}: {wall:.1f} s wall, {cpu:.1f} s CPU; load average "
            f"(1, 5, 15 min) before {before}, after {load_text()}",
            flush=True,
        )
    names = list(dict.fromkeys(name for run in runs for name in run))
    width = max(len(name) for name in names)
    print(f"\n{'stage':<{width}}  median (s)  runs (s)")
    for name in names:
        values = [run.get(name, 0.0) for run in runs]
        text = " ".join(f"{v:.1f}" for v in values)
        print(f"{name:<{width}}  {statistics.median(values):10.1f}  {text}")
    print(f"\nthe last run's table:\n{results['printed_table']}")
    print("test worst-group accuracy (last run): mean over seeds, then each seed")
    for method, values in scores.items():
        each = " ".join(f"{v:.3f}" for v in values)
        print(f"  {method:<{width}}  {statistics.fmean(values):.3f}  ({each})")


if __name__ == "__main__":
    main()
