"""``skhsfm benchmark``: ERM head, DFR, AFR and HSFM on identical embeddings.

For every seed: get the train / validation / test embeddings from a source
(:mod:`skhsfm._cli_data`), fit every method with the training embeddings as
``X`` (support pool) and the validation embeddings as ``X_val`` (hard pool), and
score test predictions per group. Then summarise over seeds.
"""

import time

import numpy as np

from skhsfm._cli_common import collect_warnings

__all__ = ["METHODS", "run_benchmark", "summarise"]

#: Method names accepted by ``--methods``, in table order.
METHODS = ("erm", "dfr", "afr", "hsfm")

ERM_BACKBONE = "ERM (backbone head)"
ERM_LOGREG = "ERM (logistic regression)"


class _FixedHead:
    """The backbone's own last layer, used as a classifier on the embeddings."""

    def __init__(self, coef, intercept):
        self.coef = np.asarray(coef, dtype=np.float64)
        self.intercept = np.asarray(intercept, dtype=np.float64).ravel()

    def predict(self, X):
        scores = np.asarray(X, dtype=np.float64) @ self.coef.T + self.intercept
        if scores.shape[1] == 1:
            return (scores[:, 0] > 0).astype(np.int64)
        return scores.argmax(axis=1)


def hsfm_label(preset):
    return "HSFM" if preset is None else f"HSFM (preset {preset})"


def _estimators(methods, seed, init, settings):
    """``[(label, estimator)]`` for the requested methods; None = fixed head."""
    from skhsfm import HSFMClassifier
    from skhsfm.baselines import AFRClassifier, DFRClassifier

    device = str(settings.device)
    coef, intercept = init if init is not None else (None, None)
    out = []
    if "dfr" in methods:
        extra = {} if settings.dfr_models is None else {"n_models": settings.dfr_models}
        out.append(("DFR", DFRClassifier(random_state=seed, **extra)))
    if "afr" in methods:
        extra = {} if settings.afr_epochs is None else {"n_epochs": settings.afr_epochs}
        afr = AFRClassifier(
            init_coef=coef,
            init_intercept=intercept,
            device=device,
            random_state=seed,
            **extra,
        )
        out.append(("AFR", afr))
    if "hsfm" in methods:
        hsfm = HSFMClassifier(
            settings.preset,
            n_epochs=settings.hsfm_epochs,
            init_coef=coef,
            init_intercept=intercept,
            device=device,
            random_state=seed,
        )
        out.append((hsfm_label(settings.preset), hsfm))
    return out


def _score(y_true, y_pred, groups, group_names):
    from skhsfm.metrics import group_accuracy_report

    report = group_accuracy_report(y_true, y_pred, groups=groups)
    by_name = {}
    for label, accuracy in report.by_group.items():
        index = int(label)
        name = group_names[index] if 0 <= index < len(group_names) else str(label)
        by_name[name] = float(accuracy)
    return {
        "worst_group_accuracy": float(report.worst),
        "mean_accuracy": float(report.mean),
        "group_accuracy": by_name,
    }


def _record(seed, method, scores, seconds, details=None):
    return {
        "seed": int(seed),
        "method": method,
        **scores,
        "fit_seconds": None if seconds is None else float(seconds),
        "details": details or {},
    }


def _details(estimator):
    details = {}
    names = ("best_epoch_", "best_score_", "best_C_", "best_gamma_", "best_lambda_")
    for name in names:
        value = getattr(estimator, name, None)
        if isinstance(value, (int, float, np.integer, np.floating)):
            details[name.rstrip("_")] = (
                value.item() if hasattr(value, "item") else value
            )
    return details


def _shared_logreg(emb):
    """The logistic-regression ERM head on the training embeddings (fitted once)."""
    if "logreg" not in emb.memo:
        from skhsfm.baselines import ERMHeadClassifier

        X, y, g = emb.splits["train"]
        notes = []
        tic = time.perf_counter()
        with collect_warnings(notes):
            head = ERMHeadClassifier().fit(X, y)
        emb.memo["logreg"] = (head, time.perf_counter() - tic, notes)
    return emb.memo["logreg"]


def evaluate_seed(emb, seed, settings, reporter, notes):
    """Fit and score every requested method on one seed's embeddings."""
    methods = settings.methods
    X, y, g = emb.splits["train"]
    X_test, y_test, g_test = emb.splits["test"]
    val = emb.splits.get("val")
    fit_kwargs = {}
    if val is not None:
        fit_kwargs = dict(X_val=val[0], y_val=val[1], groups_val=val[2])
    records = []

    def add(label, pred, seconds, details=None):
        scores = _score(y_test, pred, g_test, emb.group_names)
        records.append(_record(seed, label, scores, seconds, details))
        fit = "no fit" if seconds is None else f"fit {seconds:.1f} s"
        reporter.log(
            f"seed {seed}: {label:<26} test worst-group "
            f"{scores['worst_group_accuracy']:.3f}, mean "
            f"{scores['mean_accuracy']:.3f} ({fit})"
        )

    init = emb.head
    if "erm" in methods and emb.head is not None:
        add(ERM_BACKBONE, _FixedHead(*emb.head).predict(X_test), None)
    needs_logreg = "erm" in methods or (
        emb.head is None and ({"afr", "hsfm"} & set(methods))
    )
    if needs_logreg:
        head, seconds, logreg_notes = _shared_logreg(emb)
        notes.setdefault(ERM_LOGREG, [])
        notes[ERM_LOGREG].extend(n for n in logreg_notes if n not in notes[ERM_LOGREG])
        if "erm" in methods:
            add(ERM_LOGREG, head.predict(X_test), seconds)
        if init is None:
            init = (head.coef_, head.intercept_)
    estimators = _estimators(methods, seed, init, settings)
    bar = reporter.bar(len(estimators), f"seed {seed}: methods", unit="method")
    try:
        for label, estimator in estimators:
            bar.set_postfix_str(label)
            sink = notes.setdefault(label, [])
            tic = time.perf_counter()
            with collect_warnings(sink):
                estimator.fit(X, y, g, **fit_kwargs)
            seconds = time.perf_counter() - tic
            add(label, estimator.predict(X_test), seconds, _details(estimator))
            bar.update(1)
    finally:
        bar.close()
    return records


def run_benchmark(source, settings, reporter):
    """Every seed through ``source`` and the methods.

    Returns a dict with ``records`` (one per seed and method), ``timings`` (per
    seed), ``notes`` (warnings per method), ``group_names``, ``has_head``
    (whether the methods started from the backbone's own head) and
    ``cached_seeds`` (seeds whose embeddings came from the on-disk cache).
    """
    records, timings, notes, cached = [], [], {}, []
    bar = reporter.bar(len(settings.seeds), "seeds", unit="seed", leave=True)
    group_names, has_head = None, False
    try:
        for seed in settings.seeds:
            emb = source.load(seed)
            group_names = emb.group_names
            has_head = emb.head is not None
            if emb.info.get("cached"):
                cached.append(int(seed))
            tic = time.perf_counter()
            records.extend(evaluate_seed(emb, seed, settings, reporter, notes))
            timings.append(
                {"seed": int(seed), **emb.timings, "methods": time.perf_counter() - tic}
            )
            bar.update(1)
    finally:
        bar.close()
    return {
        "records": records,
        "timings": timings,
        "notes": notes,
        "group_names": group_names,
        "has_head": has_head,
        "cached_seeds": cached,
    }


def _stats(values):
    values = np.asarray([np.nan if v is None else v for v in values], dtype=float)
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return {"mean": None, "std": None}
    std = float(finite.std(ddof=1)) if finite.size > 1 else 0.0
    return {"mean": float(finite.mean()), "std": std}


def summarise(records, group_names):
    """Mean and standard deviation over seeds for every method, in table order."""
    order = []
    for record in records:
        if record["method"] not in order:
            order.append(record["method"])
    present = []
    for record in records:
        for name in record["group_accuracy"]:
            if name not in present:
                present.append(name)
    rank = {name: i for i, name in enumerate(group_names or [])}
    groups = sorted(present, key=lambda name: (rank.get(name, len(rank)), name))
    summary = []
    for method in order:
        rows = [r for r in records if r["method"] == method]
        summary.append(
            {
                "method": method,
                "n_seeds": len(rows),
                "worst_group_accuracy": _stats(
                    [r["worst_group_accuracy"] for r in rows]
                ),
                "mean_accuracy": _stats([r["mean_accuracy"] for r in rows]),
                "group_accuracy": {
                    name: _stats([r["group_accuracy"].get(name) for r in rows])
                    for name in groups
                },
                "fit_seconds": _stats([r["fit_seconds"] for r in rows]),
            }
        )
    return summary, groups
