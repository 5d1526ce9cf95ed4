"""Statistics of ``skhsfm benchmark`` over seeds: means, spreads and paired
differences against a reference method."""

import numpy as np

from skhsfm.metrics import paired_difference

__all__ = ["summarize"]

#: Confidence level of the paired intervals in the tables and files.
CONFIDENCE = 0.95


def _stats(values):
    values = np.asarray([np.nan if v is None else v for v in values], dtype=float)
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return {"mean": None, "std": None}
    std = float(finite.std(ddof=1)) if finite.size > 1 else 0.0
    return {"mean": float(finite.mean()), "std": std}


def _paired(rows, reference_rows, reference, key="worst_group_accuracy"):
    """Paired difference of ``key`` against the reference on the shared seeds."""
    by_seed = {r["seed"]: r[key] for r in reference_rows if r[key] is not None}
    pairs = [(r[key], by_seed[r["seed"]]) for r in rows if r["seed"] in by_seed]
    if not pairs:
        return None
    result = paired_difference(*zip(*pairs), confidence=CONFIDENCE)
    return {
        "reference": reference,
        "metric": key,
        "mean": result.mean,
        "low": result.low,
        "high": result.high,
        "std": result.std,
        "n_pairs": result.n_pairs,
        "confidence": result.confidence,
        "method": "paired t",
    }


def summarize(records, group_names, reference=None):
    """Mean and standard deviation over seeds for every method, in table order,
    and each method's paired difference to ``reference`` (a method label).

    Returns ``(summary, groups)``: one dict per method, and the group names
    present, in the dataset's order. With a ``reference``, every other method's
    entry has ``"paired_difference"``: the mean per-seed difference of test
    worst-group accuracy to the reference, with its 95% paired-t interval
    (None on the reference itself).
    """
    order = list(dict.fromkeys(record["method"] for record in records))
    present = list(
        dict.fromkeys(name for record in records for name in record["group_accuracy"])
    )
    rank = {name: i for i, name in enumerate(group_names or [])}
    groups = sorted(present, key=lambda name: (rank.get(name, len(rank)), name))
    reference_rows = [r for r in records if r["method"] == reference]
    summary = []
    for method in order:
        rows = [r for r in records if r["method"] == method]
        entry = {
            "method": method,
            "n_seeds": len(rows),
            "worst_group_accuracy": _stats([r["worst_group_accuracy"] for r in rows]),
            "mean_accuracy": _stats([r["mean_accuracy"] for r in rows]),
            "group_accuracy": {
                name: _stats([r["group_accuracy"].get(name) for r in rows])
                for name in groups
            },
            "fit_seconds": _stats([r["fit_seconds"] for r in rows]),
        }
        if reference_rows:
            entry["paired_difference"] = (
                None
                if method == reference
                else _paired(rows, reference_rows, reference)
            )
        summary.append(entry)
    return summary, groups
