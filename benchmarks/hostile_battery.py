"""A hostile battery: what a careful but unlucky user might do to the heads.

Tries well over a hundred cases, each judged *handled* or *left*:

- an error is handled when it is an ordinary exception whose message names the
  argument (or file, or option) at fault and is not numpy's or scikit-learn's
  bare "could not convert ..." / "needs samples of at least 2 classes";
- a result is handled when it is correct: finite scores, labels from
  ``classes_``, the same predictions as the reference fit where the case says
  so (scales), the old state kept after a failed fit, ...

Cases: every numeric hyperparameter of every head at -1, 0, NaN, inf and a
string; grid-valued parameters with bad entries; parameter combinations;
bad inputs and predictions; ``X`` at scales 1e-12 .. 1e12 (float64 and
float32), at the ends of float64 (1e-300, 1e300), subnormal and all-zero;
damaged model files (joblib, pickle, skops); damaged caches; the command's
Ctrl-C and ``--cache``; interrupted fits; scorers without routing.

Prints one line per case (``ok`` or ``LEFT``, the case, what happened) and the
totals: tried / handled / left. Exit status 0 (it measures, it does not gate).

Run: ``python benchmarks/hostile_battery.py [--only WORD] [--quiet]``
(about half a minute on two CPU cores; 347 cases).
"""

import argparse
import contextlib
import io
import os
import pickle
import sys
import tempfile
import time
import warnings

import joblib
import numpy as np

from skhsfm import HSFMClassifier
from skhsfm.baselines import (
    AFRClassifier,
    DFRClassifier,
    DPEClassifier,
    ERMHeadClassifier,
    SELFClassifier,
)
from skhsfm.datasets import make_spurious_embeddings

HEADS = {
    "ERM": lambda **kw: ERMHeadClassifier(**kw),
    "DFR": lambda **kw: DFRClassifier(
        **{"n_models": 2, "Cs": (1.0, 0.1), "random_state": 0, **kw}
    ),
    "AFR": lambda **kw: AFRClassifier(
        **{
            "gamma": (1.0, 4.0),
            "reg_lambda": (0.0, 0.1),
            "n_epochs": 20,
            "device": "cpu",
            "random_state": 0,
            **kw,
        }
    ),  # fmt: skip
    "DPE": lambda **kw: DPEClassifier(
        **{"n_members": 2, "n_epochs": 3, "device": "cpu", "random_state": 0, **kw}
    ),
    "SELF": lambda **kw: SELFClassifier(
        **{
            "n_selected": (10, 40),
            "learning_rate": (1.0, 10.0),
            "n_steps": 50,
            "random_state": 0,
            **kw,
        }
    ),  # fmt: skip
    "HSFM": lambda **kw: HSFMClassifier(
        **{
            "n_epochs": 2,
            "support_size": 8,
            "hard_size": 16,
            "device": "cpu",
            "random_state": 0,
            **kw,
        }
    ),  # fmt: skip
}

#: Numeric hyperparameters of each head.
NUMERIC = {
    "ERM": ["C", "max_iter", "max_samples"],
    "DFR": ["Cs", "n_models", "validation_fraction", "max_iter"],
    "AFR": [
        "gamma",
        "reg_lambda",
        "n_epochs",
        "learning_rate",
        "max_grad_norm",
        "selection_fraction",
        "validation_fraction",
        "erm_C",
        "max_samples",
    ],  # fmt: skip
    "DPE": [
        "n_members",
        "n_epochs",
        "learning_rate",
        "batch_size",
        "entropic_scale",
        "prototype_penalty",
        "diversity_penalty",
        "diversity_decay",
        "validation_fraction",
    ],
    "SELF": [
        "n_selected",
        "learning_rate",
        "dropout",
        "n_steps",
        "batch_size",
        "momentum",
        "weight_decay",
        "tuning_fraction",
        "validation_fraction",
        "erm_C",
        "max_samples",
    ],
    "HSFM": [
        "support_size",
        "hard_size",
        "inner_steps",
        "inner_lr",
        "outer_steps",
        "outer_lr",
        "n_epochs",
        "n_iter_no_change",
        "validation_fraction",
        "selection_fraction",
        "erm_C",
        "max_grad_norm",
        "max_samples",
    ],  # fmt: skip
}
HOSTILE_VALUES = (-1, 0, float("nan"), float("inf"), "1")

#: What a clear error must not be.
CRYPTIC = ("could not convert", "needs samples of at least 2 classes")


def make_data(seed=0):
    X, y, _, g = make_spurious_embeddings(240, 8, split="train", random_state=seed)
    Xv, yv, _, gv = make_spurious_embeddings(120, 8, split="val", random_state=seed)
    Xt, yt, _, gt = make_spurious_embeddings(200, 8, split="test", random_state=seed)
    return dict(X=X, y=y, g=g, Xv=Xv, yv=yv, gv=gv, Xt=Xt, yt=yt)


DATA = make_data()


def fit(head, X=None, y=None, groups="default", **kw):
    d = DATA
    X = d["X"] if X is None else X
    y = d["y"] if y is None else y
    groups = d["g"] if isinstance(groups, str) else groups
    kw.setdefault("X_val", d["Xv"])
    kw.setdefault("y_val", d["yv"])
    kw.setdefault("groups_val", d["gv"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return head.fit(X, y, groups, **kw)


def one_line(text, width=150):
    text = " ".join(str(text).split())
    return text if len(text) <= width else text[: width - 3] + "..."


# ----------------------------------------------------------------- judges


def error_naming(run, *names):
    """Handled when ``run()`` raises an error whose message has every name."""
    try:
        run()
    except Exception as exc:
        text = f"{type(exc).__name__}: {exc}"
        ok = all(n in str(exc) for n in names) and not any(
            c in str(exc) for c in CRYPTIC
        )
        return ok, one_line(text)
    return False, "no error"


def sound(head):
    """A fitted head whose predictions are well-formed."""
    scores = head.decision_function(DATA["Xt"])
    pred = head.predict(DATA["Xt"])
    ok = bool(np.isfinite(scores).all()) and set(pred) <= set(head.classes_)
    acc = float(np.mean(pred == DATA["yt"]))
    return ok, f"fitted; finite scores={ok}, test accuracy {acc:.2f}"


def error_or_sound(run, name):
    """A parameter value: refused naming ``name``, or a sound fit."""
    try:
        head = run()
    except Exception as exc:
        ok = name in str(exc) and not any(c in str(exc) for c in CRYPTIC)
        return ok, one_line(f"{type(exc).__name__}: {exc}")
    return sound(head)


# ------------------------------------------------------------------ cases


def numeric_cases():
    for head, params in NUMERIC.items():
        for param in params:
            for value in HOSTILE_VALUES:
                yield (
                    f"{head}({param}={value!r})",
                    lambda h=head, p=param, v=value: error_or_sound(
                        lambda: fit(HEADS[h](**{p: v})), p
                    ),
                )


def grid_cases():
    afr, dfr, hsfm = HEADS["AFR"], HEADS["DFR"], HEADS["HSFM"]
    bad = [
        ("AFR(reg_lambda=['a'])", lambda: afr(reg_lambda=["a"]), "reg_lambda"),
        ("AFR(gamma=[1, 'x'])", lambda: afr(gamma=[1, "x"]), "gamma"),
        ("AFR(gamma=[])", lambda: afr(gamma=[]), "gamma"),
        ("AFR(gamma=[[1, 2]])", lambda: afr(gamma=[[1, 2]]), "gamma"),
        ("AFR(gamma=[1, nan])", lambda: afr(gamma=[1, np.nan]), "gamma"),
        ("AFR(reg_lambda=[0, -1])", lambda: afr(reg_lambda=[0, -1]), "reg_lambda"),
        ("DFR(Cs=['0.1', 'x'])", lambda: dfr(Cs=["0.1", "x"]), "Cs"),
        ("DFR(Cs=[1, None])", lambda: dfr(Cs=[1, None]), "Cs"),
        ("DFR(Cs=[1, inf])", lambda: dfr(Cs=[1, np.inf]), "Cs"),
        ("DFR(Cs=[True])", lambda: dfr(Cs=[True]), "Cs"),
        ("HSFM(init_coef=strings)", lambda: hsfm(init_coef=[["a"] * 8]), "init_coef"),
        ("HSFM(init_coef=ragged)", lambda: hsfm(init_coef=[[1] * 8, [1]]), "init_coef"),
        (
            "HSFM(init_coef wrong shape)",
            lambda: hsfm(init_coef=np.ones((3, 8))),
            "init_coef",
        ),  # fmt: skip
        (
            "AFR(init_coef with NaN)",
            lambda: afr(init_coef=np.full((1, 8), np.nan)),
            "init_coef",
        ),  # fmt: skip
        (
            "AFR(init_intercept of 3)",
            lambda: afr(init_coef=np.ones((1, 8)), init_intercept=[0, 0, 0]),
            "init_intercept",
        ),  # fmt: skip
    ]
    for name, make, param in bad:
        yield name, lambda m=make, p=param: error_naming(lambda: fit(m()), p)


def combination_cases():
    rng = np.random.RandomState(0)
    rare_y = np.r_[np.zeros(150, int), np.ones(150, int), [2, 2]]
    rare_X = rng.normal(size=(302, 8)) + rare_y[:, None]
    rare_kw = dict(X_val=rng.normal(size=(30, 8)), y_val=np.arange(30) % 3,
                   groups_val=None)  # fmt: skip
    for head in ("AFR", "HSFM"):
        yield (
            f"{head}(init_intercept without init_coef)",
            lambda h=head: error_naming(
                lambda: fit(HEADS[h](init_intercept=[0.5])), "init_intercept"
            ),
        )
    for head in ("ERM", "AFR", "HSFM"):
        yield (
            f"{head}(max_samples=5), a class of 2 rows in 302",
            lambda h=head: error_naming(
                lambda: fit(HEADS[h](max_samples=5), rare_X, rare_y, None, **rare_kw),
                "max_samples",
            ),
        )
    for head, kw in (("DFR", {}), ("DPE", {}), ("HSFM", {"group_inference": None})):
        yield (
            f"{head}(balance='groups'{''.join(f', {k}={v}' for k, v in kw.items())})"
            " without groups",
            lambda h=head, kw=kw: error_naming(
                lambda: fit(
                    HEADS[h](balance="groups", **kw), groups=None, groups_val=None
                ),
                "groups",
            ),
        )

    def inferred():
        # HSFM infers missing groups by default (group_inference="auto")
        head = fit(HEADS["HSFM"](balance="groups"), groups=None, groups_val=None)
        ok, text = sound(head)
        source = head.groups_source_
        return ok and "given" not in source.values(), f"{text}; {source}"

    yield "HSFM(balance='groups') without groups: inferred", inferred
    yield (
        "HSFM y_val without X_val",
        lambda: error_naming(
            lambda: fit(HEADS["HSFM"](), X_val=None, groups_val=None), "X_val"
        ),
    )
    yield (
        "HSFM X_val without y_val",
        lambda: error_naming(
            lambda: fit(HEADS["HSFM"](), y_val=None, groups_val=None), "y_val"
        ),
    )


def input_cases():
    d = DATA
    nan_X = d["X"].copy()
    nan_X[3, 2] = np.nan
    inf_val = d["Xv"].copy()
    inf_val[0, 0] = np.inf
    y_none = d["y"].astype(object)
    y_none[5] = None
    bad = [
        ("NaN in X", lambda h: fit(h, nan_X), "X"),
        ("inf in X_val", lambda h: fit(h, X_val=inf_val), "X_val"),
        ("one class in y", lambda h: fit(h, y=np.zeros_like(d["y"])), "class"),
        ("None in y", lambda h: fit(h, y=y_none), "y"),
        ("groups too short", lambda h: fit(h, groups=d["g"][:-1]), "groups"),
        ("X_val of other width", lambda h: fit(h, X_val=d["Xv"][:, :5]), "X_val"),
        ("y_val of strings", lambda h: fit(h, y_val=d["yv"].astype(str)), "y_val"),
        ("y_val unknown class", lambda h: fit(h, y_val=d["yv"] + 5), "y_val"),
    ]
    for head in HEADS:
        for name, run, arg in bad:
            if head == "ERM" and "val" in name:
                continue  # the ERM head does not look at held-out data
            yield (
                f"{head}: {name}",
                lambda h=head, r=run, a=arg: error_naming(lambda: r(HEADS[h]()), a),
            )
        nan_test = d["Xt"].copy()
        nan_test[0, 0] = np.nan
        yield (
            f"{head}: predict on X with NaN",
            lambda h=head, x=nan_test: error_naming(
                lambda: fit(HEADS[h]()).predict(x), "X contains NaN"
            ),
        )
        yield (
            f"{head}: predict on no rows",
            lambda h=head: error_naming(
                lambda: fit(HEADS[h]()).predict(d["Xt"][:0]), "0 sample"
            ),
        )
        outlier = d["X"].copy()
        outlier[0] = 1e9
        yield (
            f"{head}: one row 1e9 times the others",
            lambda h=head, x=outlier: sound(fit(HEADS[h](), x)),
        )
        if head in ("AFR", "DPE", "HSFM"):
            for device in ("bogus", "cuda:7"):
                yield (
                    f"{head}(device={device!r})",
                    lambda h=head, v=device: error_naming(
                        lambda: fit(HEADS[h](device=v)), "device="
                    ),
                )
        yield (
            f"{head}: predict with 5 features",
            lambda h=head: error_naming(
                lambda: fit(HEADS[h]()).predict(d["Xt"][:, :5]), "features"
            ),
        )


def scale_cases():
    refs = {}
    for head in HEADS:
        for factor, dtype in ((1e-12, np.float64), (1e12, np.float64),
                              (1e-12, np.float32), (1e12, np.float32)):  # fmt: skip

            def run(h=head, c=factor, t=dtype):
                if h not in refs:
                    refs[h] = fit(HEADS[h]()).predict(DATA["Xt"])
                head = fit(
                    HEADS[h](),
                    (DATA["X"] * c).astype(t),
                    X_val=(DATA["Xv"] * c).astype(t),
                )
                same = np.mean(head.predict((DATA["Xt"] * c).astype(t)) == refs[h])
                return same >= 0.99, f"{same:.1%} of test predictions as at scale 1"

            yield f"{head}: X * {factor:g} ({np.dtype(dtype).name})", run
        for factor in (1e-300, 1e300):

            def run_extreme(h=head, c=factor):
                # float64 ends: the same predictions, or (HSFM, which trains in
                # float32) an error naming X and float32
                if h not in refs:
                    refs[h] = fit(HEADS[h]()).predict(DATA["Xt"])
                try:
                    head = fit(HEADS[h](), DATA["X"] * c, X_val=DATA["Xv"] * c)
                except ValueError as exc:
                    ok = "float32" in str(exc) and "X" in str(exc)
                    return ok, one_line(f"ValueError: {exc}")
                same = np.mean(head.predict(DATA["Xt"] * c) == refs[h])
                return same >= 0.99, f"{same:.1%} of test predictions as at scale 1"

            yield f"{head}: X * {factor:g} (float64)", run_extreme
        yield (
            f"{head}: subnormal X (X * 1e-310)",
            lambda h=head: error_naming(
                lambda: fit(
                    HEADS[h](), DATA["X"] * 1e-310, X_val=DATA["Xv"] * 1e-310
                ),  # fmt: skip
                "X",
                "too extreme",
            ),
        )
        yield (
            f"{head}: all-zero X",
            lambda h=head: error_naming(
                lambda: fit(
                    HEADS[h](),
                    np.zeros_like(DATA["X"]),
                    X_val=np.zeros_like(DATA["Xv"]),
                ),  # fmt: skip
                "X",
                "zeros",
            ),
        )


def _flip(data, array):
    needle = np.ascontiguousarray(array).tobytes()[:16]
    at = data.index(needle)
    damaged = bytearray(data)
    damaged[at + 3] ^= 0x01
    return bytes(damaged)


def file_cases(folder):
    import skops.io as sio

    fitted = {}

    def head_of(name):
        if name not in fitted:
            fitted[name] = fit(HEADS[name]())
        return fitted[name]

    def joblib_flip(name):
        path = os.path.join(folder, f"{name}.joblib")
        joblib.dump(head_of(name), path)
        with open(path, "rb") as handle:
            data = handle.read()
        with open(path, "wb") as handle:
            handle.write(_flip(data, _weights(head_of(name))))
        return error_naming(lambda: joblib.load(path), "damaged")

    def pickle_flip(name):
        data = _flip(pickle.dumps(head_of(name)), _weights(head_of(name), 1))
        return error_naming(lambda: pickle.loads(data), "damaged")

    def skops_flip(name):
        path = os.path.join(folder, f"{name}.skops")
        sio.dump(head_of(name), path)
        with open(path, "rb") as handle:
            data = bytearray(handle.read())
        data[len(data) // 3] ^= 0xFF
        with open(path, "wb") as handle:
            handle.write(bytes(data))
        trusted = [f"{type(head_of(name)).__module__}.{type(head_of(name)).__name__}"]
        return error_naming(lambda: sio.load(path, trusted=trusted))

    def intact(name):
        loaded = pickle.loads(pickle.dumps(head_of(name)))
        same = np.array_equal(
            loaded.decision_function(DATA["Xt"]),
            head_of(name).decision_function(DATA["Xt"]),
        )
        return same, "loads with the same scores" if same else "scores differ"

    for name in HEADS:
        yield f"{name}: a flipped bit in a joblib file", lambda n=name: joblib_flip(n)
        yield f"{name}: a flipped bit in a pickle", lambda n=name: pickle_flip(n)
        yield f"{name}: a flipped byte in a skops file", lambda n=name: skops_flip(n)
        yield f"{name}: an intact pickle", lambda n=name: intact(n)


def _weights(head, which=0):
    """A fitted array of ``head`` to damage: ``coef_`` / ``intercept_`` of a
    linear head, ``prototypes_`` / ``distance_scales_`` of DPE's ensemble."""
    names = (
        ("prototypes_", "distance_scales_")
        if hasattr(head, "prototypes_")
        else ("coef_", "intercept_")
    )
    return getattr(head, names[which])


def _leaks(run):
    import gc

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with contextlib.suppress(Exception):
            run()
        gc.collect()
    return [w for w in caught if issubclass(w.category, ResourceWarning)]


def cache_cases(folder):
    from skhsfm.cli._cache import CacheInvalid, cache_file, read_cache, write_cache
    from skhsfm.embedding._cache import _read_entry

    splits = {
        s: (np.ones((4, 3), np.float32), np.arange(4) % 2, np.arange(4) % 2)
        for s in ("train", "val", "test")
    }

    def truncated_benchmark_cache():
        path, key = cache_file(folder, "seed", ["k"])
        write_cache(path, key, splits, None, ["a", "b"], {})
        with open(path, "r+b") as handle:
            handle.truncate(os.path.getsize(path) // 2)
        try:
            read_cache(path, key)
        except CacheInvalid as exc:
            leaks = _leaks(lambda: read_cache(path, key))
            return not leaks, one_line(f"CacheInvalid: {exc}; {len(leaks)} leak(s)")
        return False, "a truncated file was used"

    def truncated_entry():
        path = os.path.join(folder, "entry.npz")
        np.savez(path, key=np.array("k"), embedding=np.zeros(3, np.float32))
        with open(path, "r+b") as handle:
            handle.truncate(os.path.getsize(path) // 2)
        row, reason = _read_entry(path, "k", 3)
        leaks = _leaks(lambda: _read_entry(path, "k", 3))
        ok = row is None and not leaks
        return ok, one_line(f"{reason}; {len(leaks)} leak(s)")

    def memory_file():
        import torch

        from skhsfm.embedding import BackboneEmbedder

        blocker = os.path.join(folder, "memory-file")
        with open(blocker, "w") as handle:
            handle.write("x")
        embedder = BackboneEmbedder(torch.nn.Flatten(), device="cpu", memory=blocker)
        images = np.zeros((1, 4, 4, 3), np.uint8)
        return error_naming(lambda: embedder.transform(images), "memory=")

    yield "a truncated benchmark cache file", truncated_benchmark_cache
    yield "a truncated embedding cache entry", truncated_entry
    yield "BackboneEmbedder(memory=FILE)", memory_file


def _main_status(argv, patches=()):
    """``skhsfm.cli.main(argv)`` with ``patches`` applied; (status, stderr)."""
    import skhsfm.cli

    saved = [(obj, name, getattr(obj, name)) for obj, name, _ in patches]
    for obj, name, value in patches:
        setattr(obj, name, value)
    err = io.StringIO()
    try:
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            try:
                status = skhsfm.cli.main(argv)
            except SystemExit as exc:
                status = exc.code
            except KeyboardInterrupt:
                status = "KeyboardInterrupt escaped (the process would exit -2)"
    finally:
        for obj, name, value in saved:
            setattr(obj, name, value)
    return status, err.getvalue()


def cli_cases(folder):
    import skhsfm.cli
    from skhsfm.cli import benchmark

    root = os.path.join(folder, "features")
    os.makedirs(root, exist_ok=True)
    for split, n in (("train", 120), ("val", 60), ("test", 60)):
        X, y, a, _ = make_spurious_embeddings(n, 8, split=split, random_state=0)
        np.save(os.path.join(root, f"X_{split}.npy"), X)
        np.save(os.path.join(root, f"y_{split}.npy"), y)
        np.save(os.path.join(root, f"env_{split}.npy"), a)
    argv = ["benchmark", "--dataset", "dominoes", "--root", root, "--seeds", "1",
            "--methods", "erm", "--out", os.path.join(folder, "out")]  # fmt: skip

    def interrupt(*args, **kwargs):
        raise KeyboardInterrupt

    class LateReporter:
        def __init__(self, *args, **kwargs):
            pass

        def log(self, message):
            raise KeyboardInterrupt

    def expect(status_wanted, text, args, patches=()):
        status, err = _main_status(args, patches)
        ok = status == status_wanted and text in err
        return ok, one_line(f"status {status}: {err.strip()}")

    blocker = os.path.join(folder, "cache-file")
    with open(blocker, "w") as handle:
        handle.write("x")
    yield (
        "skhsfm benchmark: Ctrl-C during the run",
        lambda: expect(130, "interrupted", argv, [(benchmark, "run_seeds", interrupt)]),
    )
    yield "skhsfm benchmark: a late Ctrl-C", lambda: expect(
        130, "interrupted", argv,
        [(benchmark, "run", lambda s, a=(): 0), (skhsfm.cli, "Reporter", LateReporter)],
    )  # fmt: skip
    yield (
        "skhsfm benchmark --cache FILE",
        lambda: expect(1, "--cache=", argv + ["--cache", blocker]),
    )
    yield (
        "skhsfm benchmark --seeds 0",
        lambda: expect(2, "--seeds", argv + ["--seeds", "0"]),
    )


def fit_state_cases():
    def interrupted_refit():
        head = fit(HEADS["AFR"]())
        before = head.coef_.copy()
        import skhsfm.baselines._afr as afr

        original = afr.run_afr

        def stop(*args, **kwargs):
            raise KeyboardInterrupt

        afr.run_afr = stop
        try:
            fit(head, y=np.array(["a", "b"])[DATA["y"]],
                y_val=np.array(["a", "b"])[DATA["yv"]])  # fmt: skip
        except KeyboardInterrupt:
            pass
        finally:
            afr.run_afr = original
        ok = np.array_equal(head.coef_, before) and set(head.classes_) == {0, 1}
        return ok, "the head is as before" if ok else "the head changed"

    def scorer_without_routing():
        from sklearn.model_selection import cross_val_score

        from skhsfm.metrics import worst_group_scorer

        return error_naming(
            lambda: cross_val_score(
                ERMHeadClassifier(),
                DATA["X"],
                DATA["y"],
                scoring=worst_group_scorer,
                error_score="raise",
            ),  # fmt: skip
            "routing",
        )

    yield "AFR: Ctrl-C inside a refit", interrupted_refit
    yield "worst_group_scorer without metadata routing", scorer_without_routing


def all_cases(folder):
    yield from (("parameter", *c) for c in numeric_cases())
    yield from (("grid", *c) for c in grid_cases())
    yield from (("combination", *c) for c in combination_cases())
    yield from (("input", *c) for c in input_cases())
    yield from (("scale", *c) for c in scale_cases())
    yield from (("file", *c) for c in file_cases(folder))
    yield from (("cache", *c) for c in cache_cases(folder))
    yield from (("command", *c) for c in cli_cases(folder))
    yield from (("fit state", *c) for c in fit_state_cases())


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", help="run the cases whose name contains WORD")
    parser.add_argument("--quiet", action="store_true", help="print the totals only")
    args = parser.parse_args(argv)
    tic = time.perf_counter()
    tally = {}
    left = []
    with tempfile.TemporaryDirectory() as folder:
        for kind, name, run in all_cases(folder):
            if args.only and args.only not in f"{kind} {name}":
                continue
            try:
                ok, detail = run()
            except Exception as exc:  # the battery itself must not stop
                ok, detail = (
                    False,
                    one_line(f"battery error {type(exc).__name__}: {exc}"),
                )
            tried, handled = tally.get(kind, (0, 0))
            tally[kind] = (tried + 1, handled + bool(ok))
            if not ok:
                left.append(f"{kind}: {name}")
            if not args.quiet:
                print(
                    f"{'ok  ' if ok else 'LEFT'}  [{kind}] {name}: {detail}", flush=True
                )
    print()
    for kind, (tried, handled) in tally.items():
        print(
            f"{kind:12s} tried {tried:3d}  handled {handled:3d}  left {tried - handled}"
        )
    tried = sum(t for t, _ in tally.values())
    handled = sum(h for _, h in tally.values())
    print(
        f"{'total':12s} tried {tried:3d}  handled {handled:3d}  left {tried - handled}"
    )
    print(f"({time.perf_counter() - tic:.0f} s)")
    for case in left:
        print(f"left: {case}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
