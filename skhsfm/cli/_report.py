"""What the ``skhsfm`` commands print and write.

The printed tables (every one rendered by :func:`skhsfm._utils.table.format_table`,
as Markdown that also reads well in a terminal), ``results.md``,
``results.json``, the CSV files and the per-group figure. matplotlib is
imported inside :func:`write_figure`; without it the figure is skipped.

Files are written atomically (:mod:`skhsfm._utils.atomic`): ``speed.json`` alone,
and the benchmark's files as one set, so an output folder always holds one
complete run, the previous one when writing the new one fails.
"""

import csv
import json
import math
import os

from skhsfm._utils.atomic import atomic_write, write_file_set
from skhsfm._utils.table import format_table

__all__ = [
    "OUTPUT_FILES",
    "benchmark_footnotes",
    "benchmark_table",
    "speed_table",
    "write_benchmark_outputs",
    "write_figure",
    "write_json",
    "write_per_seed_csv",
    "write_summary_csv",
]

#: What ``skhsfm benchmark`` writes to ``--out``: key -> file name.
OUTPUT_FILES = {
    "table": "results.md",
    "json": "results.json",
    "csv": "results.csv",
    "per_seed_csv": "results_per_seed.csv",
    "figure": "per_group_accuracy.png",
}


# ------------------------------------------------------------------ tables


def _pct(stat, with_std=True):
    if stat["mean"] is None:
        return "-"
    if not with_std:
        return f"{100 * stat['mean']:.1f}"
    return f"{100 * stat['mean']:.1f} +- {100 * stat['std']:.1f}"


def _paired_text(paired):
    """``+1.2 [-0.3, +2.7]``: the mean paired difference and its interval, in
    percentage points; ``ref.`` for the reference itself."""
    if paired is None:
        return "ref."
    mean = f"{100 * paired['mean']:+.1f}"
    if not math.isfinite(paired["low"]):
        return f"{mean} (1 seed)"
    return f"{mean} [{100 * paired['low']:+.1f}, {100 * paired['high']:+.1f}]"


def _seconds(stat):
    return "-" if stat["mean"] is None else f"{stat['mean']:.2f}"


def _cell_name(name):
    # "|" would split a Markdown cell; group names are "class|attribute".
    return str(name).replace("|", " / ")


def benchmark_table(summary, groups, title_lines, footnotes=()):
    """Two Markdown tables under ``title_lines``, then ``footnotes``.

    The first gives worst-group and mean accuracy (mean +- std over seeds) and
    fit time per method; the second the mean accuracy of every group.
    """
    header = ["method", "worst-group acc. (%)", "mean acc. (%)", "fit (s)"]
    rows = [
        [
            entry["method"],
            _pct(entry["worst_group_accuracy"]),
            _pct(entry["mean_accuracy"]),
            _seconds(entry["fit_seconds"]),
        ]
        for entry in summary
    ]
    reference = next(
        (e["method"] for e in summary if "paired_difference" in e and
         e["paired_difference"] is None),
        None,
    )  # fmt: skip
    if reference is not None:
        header.insert(2, f"vs {reference}, paired (pp)")
        for row, entry in zip(rows, summary):
            row.insert(2, _paired_text(entry["paired_difference"]))
    group_header = ["method"] + [_cell_name(name) for name in groups]
    group_rows = [
        [entry["method"]]
        + [_pct(entry["group_accuracy"][name], with_std=False) for name in groups]
        for entry in summary
    ]
    parts = [
        format_table(header, rows, markdown=True, title="\n".join(title_lines)),
        format_table(
            group_header,
            group_rows,
            markdown=True,
            title="Test accuracy per group (%), mean over seeds:",
        ),
    ]
    if footnotes:
        parts.append("\n".join(footnotes))
    return "\n\n".join(parts)


def speed_table(rows, title):
    """The ``skhsfm speed`` rows as one Markdown table (step and shape left)."""
    cells = [[r["step"], r["shape"], r["seconds"], r["rate"]] for r in rows]
    return format_table(
        ["step", "shape", "seconds", "rate"], cells, markdown=True, left=2, title=title
    )


def _seed_text(seeds):
    return ", ".join(str(s) for s in seeds)


def benchmark_footnotes(has_head, wall, timings, notes, cached_seeds, reference=None):
    """The lines under the benchmark tables: what the numbers mean, where the
    time went, cached seeds and the warnings raised during fits."""
    start = (
        "the backbone's own last layer"
        if has_head
        else "their default initial head (a logistic regression on the training "
        "embeddings)"
    )
    lines = [
        "worst-group acc.: the lowest test accuracy over the (class, attribute) "
        "groups; +- is the standard deviation over seeds; per-group columns are "
        "means over seeds.",
        "All methods fit on the same embeddings: support pool = train split, "
        f"hard pool = validation split. AFR and HSFM start from {start}"
        + (
            " (in the no-val-split situation from their default: the backbone's "
            "head was trained on the very rows they hold out)."
            if has_head
            else "."
        ),
        "fit (s): wall time of fit (mean over seeds; the CPU may be shared).",
    ]
    if reference is not None:
        lines.insert(
            1,
            f"vs {reference}, paired: mean over seeds of (method - {reference}) test "
            "worst-group accuracy on the same seed, in percentage points, with its "
            "95% confidence interval (paired t); an interval wholly above 0 means "
            f"better than {reference} at that confidence.",
        )
    stages = {}
    for entry in timings:
        for key, value in entry.items():
            if key != "seed":
                stages[key] = stages.get(key, 0.0) + value
    parts = [f"{key.replace('_', ' ')} {value:.1f} s" for key, value in stages.items()]
    lines.append(f"wall time: {wall:.1f} s ({', '.join(parts)})")
    if cached_seeds:
        lines.append(
            f"embeddings of seed(s) {_seed_text(cached_seeds)} were read from the "
            "cache (--no-cache recomputes them)."
        )
    for method, messages in notes.items():
        for message in messages:
            lines.append(f"warning during {method} fit: {message}")
    return lines


# ------------------------------------------------------------------ files


def _clean(value):
    """JSON-safe: NaN and infinities become null, numpy scalars become Python."""
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _dump_json(path, payload):
    with open(path, "w", encoding="utf-8") as handle:
        json.dump(_clean(payload), handle, indent=2)
        handle.write("\n")


def write_json(path, payload):
    """Write ``payload`` as JSON at ``path`` atomically (old file or new file)."""
    atomic_write(path, lambda tmp: _dump_json(tmp, payload))


def _write_text(path, text):
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(text)


def _fmt(value, scale=1.0):
    return "" if value is None else f"{scale * value:.6g}"


def write_summary_csv(path, summary, groups):
    """One row per method; accuracies as fractions in [0, 1]."""
    fields = [
        "method",
        "n_seeds",
        "worst_group_accuracy_mean",
        "worst_group_accuracy_std",
        "mean_accuracy_mean",
        "mean_accuracy_std",
    ]
    fields += [f"group_accuracy_mean[{name}]" for name in groups]
    fields += ["fit_seconds_mean", "fit_seconds_std"]
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(fields)
        for entry in summary:
            wga, acc = entry["worst_group_accuracy"], entry["mean_accuracy"]
            row = [entry["method"], entry["n_seeds"]]
            row += [_fmt(wga["mean"]), _fmt(wga["std"])]
            row += [_fmt(acc["mean"]), _fmt(acc["std"])]
            row += [_fmt(entry["group_accuracy"][name]["mean"]) for name in groups]
            row += [
                _fmt(entry["fit_seconds"]["mean"]),
                _fmt(entry["fit_seconds"]["std"]),
            ]
            writer.writerow(row)


def write_per_seed_csv(path, records, groups):
    """One row per (seed, method)."""
    fields = ["seed", "method", "worst_group_accuracy", "mean_accuracy"]
    fields += [f"group_accuracy[{name}]" for name in groups] + ["fit_seconds"]
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(fields)
        for r in records:
            row = [r["seed"], r["method"]]
            row += [_fmt(r["worst_group_accuracy"]), _fmt(r["mean_accuracy"])]
            row += [_fmt(r["group_accuracy"].get(name)) for name in groups]
            row.append(_fmt(r["fit_seconds"]))
            writer.writerow(row)


def write_figure(path, summary, groups, title):
    """Grouped bars: test accuracy of every group, one bar per method.

    Returns the path, or None when matplotlib is not installed.
    """
    try:
        from matplotlib.figure import Figure
    except ImportError:
        return None
    import numpy as np

    n_methods = max(len(summary), 1)
    x = np.arange(len(groups) + 1)  # the groups, then the worst group
    labels = list(groups) + ["worst group"]
    width = 0.8 / n_methods
    fig = Figure(figsize=(max(6.0, 1.2 * len(labels) * max(1, n_methods / 3)), 4.2))
    ax = fig.subplots()
    for i, entry in enumerate(summary):
        stats = [entry["group_accuracy"][name] for name in groups]
        stats.append(entry["worst_group_accuracy"])
        means = [np.nan if s["mean"] is None else 100 * s["mean"] for s in stats]
        stds = [0.0 if s["std"] is None else 100 * s["std"] for s in stats]
        offset = (i - (n_methods - 1) / 2) * width
        ax.bar(
            x + offset,
            means,
            width,
            yerr=stds,
            capsize=2,
            label=entry["method"],
            error_kw={"linewidth": 0.8},
        )
    ax.set_xticks(x)
    ax.set_xticklabels(labels, rotation=15 if len(labels) > 5 else 0, fontsize=8)
    ax.set_ylabel("test accuracy (%)")
    ax.set_ylim(0, 105)
    ax.set_title(title, fontsize=9)
    ax.grid(axis="y", alpha=0.3)
    ax.set_axisbelow(True)
    ax.legend(fontsize=7, loc="lower left", ncol=min(n_methods, 3))
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    return os.fspath(path)


def write_benchmark_outputs(out, table, payload, title):
    """Write every benchmark file of :data:`OUTPUT_FILES` to the folder ``out``.

    ``table`` is the printed text (``results.md``); ``payload`` the JSON
    document, whose ``summary``, ``groups`` and ``per_seed`` entries also give
    the CSV files and the figure (titled ``title``). Returns ``{key: path}`` of
    the files written (no figure without matplotlib).

    The files are written as one set (:func:`skhsfm._utils.atomic.write_file_set`):
    when any of them cannot be written, ``out`` keeps the previous run's files
    (none of the new ones) and the error propagates.
    """
    summary, groups = payload["summary"], payload["groups"]
    names = OUTPUT_FILES
    writers = {
        names["table"]: lambda path: _write_text(path, table + "\n"),
        names["json"]: lambda path: _dump_json(path, payload),
        names["csv"]: lambda path: write_summary_csv(path, summary, groups),
        names["per_seed_csv"]: lambda path: write_per_seed_csv(
            path, payload["per_seed"], groups
        ),
        names["figure"]: lambda path: (
            write_figure(path, summary, groups, title) is not None
        ),
    }
    written = set(write_file_set(out, writers, names=list(names.values())))
    return {
        key: os.path.join(out, name) for key, name in names.items() if name in written
    }
