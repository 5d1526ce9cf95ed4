"""Outputs of ``skhsfm benchmark``: the printed table, JSON, CSV and a figure.

matplotlib is imported inside :func:`write_figure`; without it the figure is
skipped with a message.
"""

import csv
import json
import math
import os

__all__ = [
    "format_table",
    "write_json",
    "write_summary_csv",
    "write_per_seed_csv",
    "write_figure",
]


def _pct(stat, with_std=True):
    if stat["mean"] is None:
        return "-"
    if not with_std:
        return f"{100 * stat['mean']:.1f}"
    return f"{100 * stat['mean']:.1f} +- {100 * stat['std']:.1f}"


def _seconds(stat):
    return "-" if stat["mean"] is None else f"{stat['mean']:.2f}"


def _markdown(header, rows):
    """An aligned Markdown table: first column left, the others right."""
    widths = [max(len(r[i]) for r in [header] + rows) for i in range(len(header))]

    def line(cells):
        parts = [
            cell.ljust(width) if i == 0 else cell.rjust(width)
            for i, (cell, width) in enumerate(zip(cells, widths))
        ]
        return "| " + " | ".join(parts) + " |"

    rule = [":" + "-" * (widths[0] + 1)] + ["-" * (w + 1) + ":" for w in widths[1:]]
    return [line(header), "|" + "|".join(rule) + "|"] + [line(r) for r in rows]


def _cell_name(name):
    # "|" would split a Markdown cell; group names are "class|attribute".
    return str(name).replace("|", " / ")


def format_table(summary, groups, title_lines, footnotes=()):
    """Two Markdown tables (aligned, so they also read well in a terminal).

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
    group_header = ["method"] + [_cell_name(name) for name in groups]
    group_rows = [
        [entry["method"]]
        + [_pct(entry["group_accuracy"][name], with_std=False) for name in groups]
        for entry in summary
    ]
    lines = list(title_lines) + [""] + _markdown(header, rows)
    lines += ["", "Test accuracy per group (%), mean over seeds:", ""]
    lines += _markdown(group_header, group_rows)
    if footnotes:
        lines.append("")
        lines.extend(footnotes)
    return "\n".join(lines)


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


def write_json(path, payload):
    with open(path, "w", encoding="utf-8") as handle:
        json.dump(_clean(payload), handle, indent=2)
        handle.write("\n")


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
