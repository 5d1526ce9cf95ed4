"""Extra peak memory of each head's ``fit``, relative to the size of ``X``.

Every fit runs in a fresh subprocess that builds the data, records its peak
resident memory (``ru_maxrss``), fits, and records the peak again; the
difference is the memory ``fit`` needed on top of the data. Printed as MiB and
as a multiple of the size of ``X``.

The default case is the one of the memory issue: float32 ``X`` of
100,000 x 512 (195 MiB) as the support pool plus a 20,000-row hard pool
(``X_val``, with ``groups_val``). HSFM runs 2 epochs and AFR 20 (memory does
not grow with epochs; time does).

Run: ``python benchmarks/bench_memory.py [--n 100000] [--d 512] [--n-val 20000]
[--heads hsfm dfr afr erm] [--hard-corr 0.5] [--holdout] [--lazy] [--cold]``.
``--holdout`` holds the hard pool out of ``X`` instead of passing ``X_val``;
``--hard-corr`` sets the hard pool's group balance (DFR fits on group-balanced
subsamples of it, whose size follows its smallest group). ``--lazy`` passes
``X`` and ``X_val`` as dask arrays built chunk by chunk (nothing of ``X`` is in
memory before ``fit``) and reports the extra peak over the pre-fit peak the
same way. torch's one-time start-up runs before the baseline unless
``--cold``. One thread (``OMP_NUM_THREADS=1``).
"""

import argparse
import json
import os
import subprocess
import sys

HEADS = {
    "hsfm": "HSFMClassifier(n_epochs=2, device='cpu', random_state=0)",
    "hsfm-init": "HSFMClassifier(n_epochs=2, device='cpu', random_state=0, "
    "init_coef=np.ones((1, X.shape[1])) * 1e-3)",
    "hsfm-norescale": "HSFMClassifier(n_epochs=2, device='cpu', random_state=0, "
    "rescale=False)",
    "dfr": "DFRClassifier(n_models=5, random_state=0)",
    "afr": "AFRClassifier(n_epochs=20, device='cpu', random_state=0)",
    "erm": "ERMHeadClassifier()",
}

_CHILD = r"""
import json, resource, sys, time
import numpy as np
from skhsfm import HSFMClassifier
from skhsfm.baselines import AFRClassifier, DFRClassifier, ERMHeadClassifier

n, d, n_val, hard_corr, holdout, lazy, warm, check, head = json.loads(sys.argv[1])

def peak_mib():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

def split(n, corr, seed):
    rng = np.random.RandomState(seed)
    y = rng.randint(0, 2, n)
    a = np.where(rng.rand(n) < corr, y, 1 - y)
    return y, 2 * y + a

def block(start, stop, seed, y, a):
    rng = np.random.default_rng([seed, start])
    X = rng.standard_normal((stop - start, d), dtype=np.float32)
    X[:, :16] += (2 * y[start:stop] - 1)[:, None]
    X[:, 16:32] += 2.0 * (2 * a[start:stop] - 1)[:, None]
    return X

def make_X(n, y, g, seed):
    a = g % 2
    if lazy:
        import dask.array as da
        from dask import delayed
        chunk = 8192
        parts = [
            da.from_delayed(delayed(block)(s, min(s + chunk, n), seed, y, a),
                            shape=(min(s + chunk, n) - s, d), dtype=np.float32)
            for s in range(0, n, chunk)
        ]
        return da.concatenate(parts)
    X = np.empty((n, d), dtype=np.float32)
    for s in range(0, n, 8192):
        X[s:s + 8192] = block(s, min(s + 8192, n), seed, y, a)
    return X

y, groups = split(n, 0.95, 0)
X = make_X(n, y, groups, 0)
kwargs = {}
if not holdout:
    y_val, groups_val = split(n_val, hard_corr, 1)
    kwargs = dict(X_val=make_X(n_val, y_val, groups_val, 1), y_val=y_val,
                  groups_val=groups_val)
import sklearn.linear_model  # noqa: F401
import torch
if warm:
    # torch's one-time start-up (MKL/OpenMP buffers, ~20 MiB) happens before
    # the baseline, as in any process that has run a torch operation before
    torch.ones(64, 64) @ torch.ones(64, 64)
if lazy:
    import dask
    dask.config.set(scheduler="synchronous")
est = eval(head)
before = peak_mib()
tic = time.perf_counter()
est.fit(X, y, groups, **kwargs)
seconds = time.perf_counter() - tic
after = peak_mib()
size_X = n * d * 4 / 2**20
same = None
if lazy and check:
    # the same fit on the data in memory, with the sample size "auto" chose
    from sklearn.base import clone
    from skhsfm._utils.lazy import default_sample_size
    eager = clone(est)
    if "max_samples" in eager.get_params():
        eager.set_params(max_samples=default_sample_size(X))
    memory = {k: (v.compute() if hasattr(v, "compute") else v)
              for k, v in kwargs.items()}
    eager.fit(X.compute(), y, groups, **memory)
    X_check = memory.get("X_val", X[:20000].compute())
    same = bool((eager.predict(X_check) == est.predict(X_check)).all()
                and (eager.coef_ == est.coef_).all())
print(json.dumps(dict(before=before, after=after, extra=after - before,
                      size_X=size_X, seconds=seconds, same=same)))
"""


def measure(name, n, d, n_val, hard_corr, holdout, lazy, warm, check=False):
    """Run one fit in a fresh interpreter; its JSON result as a dict."""
    env = dict(os.environ, OMP_NUM_THREADS="1")
    settings = [n, d, n_val, hard_corr, holdout, lazy, warm, check, HEADS[name]]
    out = subprocess.run(
        [sys.executable, "-c", _CHILD, json.dumps(settings)],
        capture_output=True,
        text=True,
        env=env,
    )
    if out.returncode != 0:
        raise RuntimeError(f"{name} failed:\n{out.stderr}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--d", type=int, default=512)
    parser.add_argument("--n-val", type=int, default=20_000)
    parser.add_argument(
        "--heads",
        nargs="+",
        default=["hsfm", "dfr", "afr", "erm"],
        choices=sorted(HEADS),
    )
    parser.add_argument(
        "--hard-corr",
        type=float,
        default=0.5,
        help="how often the attribute agrees with the class in the hard pool "
        "(0.5: groups balanced, DFR's subsamples are the whole pool; 0.95: as "
        "in the support pool, small minority groups)",
    )
    parser.add_argument("--holdout", action="store_true")
    parser.add_argument("--lazy", action="store_true")
    parser.add_argument(
        "--check",
        action="store_true",
        help="with --lazy: after measuring, fit the same data in memory (with "
        "the sample size the lazy fit used) and report whether coef_ and the "
        "predictions are identical",
    )
    parser.add_argument(
        "--cold",
        action="store_true",
        help="count torch's one-time start-up in the fit (no warm-up)",
    )
    args = parser.parse_args(argv)
    hard = "held out of X" if args.holdout else f"X_val of {args.n_val} rows"
    print(
        f"X: {args.n} x {args.d} float32 ({args.n * args.d * 4 / 2**20:.0f} MiB), "
        f"hard pool: {hard} (attribute agrees with class {args.hard_corr:.0%})"
        f"{', lazy (dask)' if args.lazy else ''}"
        f"{', torch cold' if args.cold else ''}"
    )
    print(f"{'head':<16}{'extra peak MiB':>16}{'x size of X':>14}{'fit s':>8}")
    for name in args.heads:
        r = measure(
            name,
            args.n,
            args.d,
            args.n_val,
            args.hard_corr,
            args.holdout,
            args.lazy,
            not args.cold,
            args.check,
        )
        same = "" if r["same"] is None else f"  same as in memory: {r['same']}"
        print(
            f"{name:<16}{r['extra']:>16.0f}{r['extra'] / r['size_X']:>14.2f}"
            f"{r['seconds']:>8.1f}{same}"
        )


if __name__ == "__main__":
    main()
