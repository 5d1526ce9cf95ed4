"""Check that refactoring leaves every head's fit bit-identical.

Fits HSFM, AFR, DFR and the ERM head on a few synthetic problems and seeds, in
several settings (with and without ``X_val``, with and without groups, a preset,
float32 input, three classes), and collects every fitted numpy attribute (and
``history_``). ``--save PATH`` writes them to an ``.npz``; ``--check PATH``
fits again and compares with ``np.array_equal`` (NaN equal to NaN), listing
every array that differs. Run ``--save`` before a change and ``--check`` after
it, on the same machine and library versions (bit-identity across machines is
not expected).

Run: ``python benchmarks/check_identical_fits.py --save /tmp/fits.npz`` then
``python benchmarks/check_identical_fits.py --check /tmp/fits.npz``.
"""

import argparse
import sys
import time
import warnings

import numpy as np

from skhsfm import HSFMClassifier
from skhsfm.baselines import AFRClassifier, DFRClassifier, ERMHeadClassifier
from skhsfm.datasets import make_spurious_embeddings

SEEDS = (0, 1)
#: History entries that are wall-clock times, never identical between runs.
_TIMINGS = ("seconds",)


def problems(seed):
    """``{name: (X, y, g, X_val, y_val, g_val)}`` for one seed."""
    out = {}
    for name, kwargs in {
        "binary": dict(n_features=16),
        "three_classes": dict(n_features=12, n_classes=3, n_attributes=3),
        "float32": dict(n_features=16, dtype=np.float32),
    }.items():
        X, y, _, g = make_spurious_embeddings(300, random_state=seed, **kwargs)
        Xv, yv, _, gv = make_spurious_embeddings(
            150, split="val", random_state=seed, **kwargs
        )
        out[name] = (X, y, g, Xv, yv, gv)
    return out


def estimators(seed):
    """``{name: (estimator, uses_X_val, uses_groups)}``."""
    hsfm = dict(n_epochs=6, device="cpu", random_state=seed)
    afr = dict(n_epochs=40, device="cpu", random_state=seed)
    return {
        "hsfm": (HSFMClassifier(**hsfm), False, True),
        "hsfm_val": (HSFMClassifier(**hsfm), True, True),
        "hsfm_nogroups": (HSFMClassifier(**hsfm), False, False),
        "hsfm_classes_adam": (
            HSFMClassifier(balance="classes", head_update="adam", **hsfm),
            True,
            True,
        ),
        "hsfm_preset": (
            HSFMClassifier("waterbirds", **{**hsfm, "n_epochs": 3}),
            True,
            True,
        ),
        "hsfm_nosel": (
            HSFMClassifier(selection_fraction=None, hard_size=0.5, **hsfm),
            False,
            True,
        ),
        "afr": (AFRClassifier(**afr), False, True),
        "afr_val": (AFRClassifier(**afr), True, True),
        "afr_nogroups": (AFRClassifier(gamma=2.0, reg_lambda=0.1, **afr), True, False),
        "dfr": (DFRClassifier(n_models=5, random_state=seed), False, True),
        "dfr_val": (DFRClassifier(n_models=5, random_state=seed), True, True),
        "dfr_classes": (
            DFRClassifier(balance="classes", n_models=5, random_state=seed),
            True,
            False,
        ),
        "erm": (ERMHeadClassifier(), False, False),
    }


def fitted_arrays(estimator):
    """Every fitted numeric attribute (trailing ``_``) and ``history_`` entry."""
    out = {}
    names = [k for k in vars(estimator) if k.endswith("_") and not k.startswith("_")]
    for name in sorted(names):
        value = getattr(estimator, name)
        if isinstance(value, dict):
            for key, item in value.items():
                if np.asarray(item).dtype.kind in "biuf":
                    out[f"{name}{key}"] = np.asarray(item)
        elif value is not None and np.asarray(value).dtype.kind in "biuf":
            out[name] = np.asarray(value)
    history = getattr(estimator, "history_", None)
    if history is not None:
        for key in history:
            if key not in _TIMINGS:
                out[f"history_{key}"] = np.asarray(history[key])
    return out


def fit_all():
    """``{"seed/problem/estimator/attribute": array}`` of every fit."""
    arrays = {}
    for seed in SEEDS:
        for pname, (X, y, g, Xv, yv, gv) in problems(seed).items():
            for ename, (est, with_val, with_groups) in estimators(seed).items():
                kwargs = {}
                if with_val:
                    kwargs = dict(X_val=Xv, y_val=yv)
                    if with_groups:
                        kwargs["groups_val"] = gv
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    est.fit(X, y, g if with_groups else None, **kwargs)
                    pred = est.predict(Xv)
                prefix = f"{seed}/{pname}/{ename}/"
                arrays[prefix + "predict"] = pred
                for key, value in fitted_arrays(est).items():
                    arrays[prefix + key] = value
    return arrays


def compare(reference, arrays):
    """The keys whose arrays differ (or are missing on either side)."""
    bad = sorted(set(reference) ^ set(arrays))
    for key in sorted(set(reference) & set(arrays)):
        a, b = reference[key], arrays[key]
        if a.shape != b.shape or a.dtype != b.dtype:
            bad.append(key)
        elif a.dtype.kind == "f":
            if not np.array_equal(a, b, equal_nan=True):
                bad.append(key)
        elif not np.array_equal(a, b):
            bad.append(key)
    return bad


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    group = parser.add_mutually_exclusive_group(required=True)
    group.add_argument("--save", metavar="PATH", help="write the fits to PATH")
    group.add_argument("--check", metavar="PATH", help="compare the fits with PATH")
    args = parser.parse_args(argv)
    tic = time.perf_counter()
    arrays = fit_all()
    seconds = time.perf_counter() - tic
    n_fits = len({key.rsplit("/", 1)[0] for key in arrays})
    if args.save:
        np.savez(args.save, **arrays)
        print(f"saved {len(arrays)} arrays of {n_fits} fits to {args.save} "
              f"({seconds:.0f} s)")  # fmt: skip
        return 0
    with np.load(args.check) as data:
        reference = {key: data[key] for key in data.files}
    bad = compare(reference, arrays)
    for key in bad:
        print(f"DIFFERS: {key}")
    print(
        f"{len(arrays) - len(bad)}/{len(arrays)} arrays of {n_fits} fits identical "
        f"to {args.check} ({seconds:.0f} s)"
    )
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
