"""Tests of skhsfm.cli._report: the tables and the files of the commands."""

import json
import math
import sys

from skhsfm._utils.table import format_table
from skhsfm.cli._report import (
    benchmark_footnotes,
    benchmark_table,
    speed_table,
    write_figure,
    write_json,
)


def _stat(mean, std=0.0):
    return {"mean": mean, "std": std}


SUMMARY = [
    {
        "method": "ERM (backbone head)",
        "worst_group_accuracy": _stat(0.5, 0.1),
        "mean_accuracy": _stat(0.75, 0.05),
        "group_accuracy": {"a|x": _stat(0.5), "b|y": _stat(1.0)},
        "fit_seconds": _stat(None, None),
    },
    {
        "method": "HSFM",
        "worst_group_accuracy": _stat(0.875, 0.0),
        "mean_accuracy": _stat(0.9),
        "group_accuracy": {"a|x": _stat(0.875), "b|y": _stat(None, None)},
        "fit_seconds": _stat(1.234, 0.1),
    },
]


def test_benchmark_table_text():
    text = benchmark_table(SUMMARY, ["a|x", "b|y"], ["title", "second line"], ["note"])
    assert text == (
        "title\n"
        "second line\n"
        "\n"
        "| method              | worst-group acc. (%) | mean acc. (%) | fit (s) |\n"
        "|:--------------------|---------------------:|--------------:|--------:|\n"
        "| ERM (backbone head) |         50.0 +- 10.0 |   75.0 +- 5.0 |       - |\n"
        "| HSFM                |          87.5 +- 0.0 |   90.0 +- 0.0 |    1.23 |\n"
        "\n"
        "Test accuracy per group (%), mean over seeds:\n"
        "\n"
        "| method              | a / x | b / y |\n"
        "|:--------------------|------:|------:|\n"
        "| ERM (backbone head) |  50.0 | 100.0 |\n"
        "| HSFM                |  87.5 |     - |\n"
        "\n"
        "note"
    )


def test_speed_table_text():
    rows = [
        {"step": "fit", "shape": "10 x 2", "seconds": 0.12345, "rate": "1 s/epoch"},
        {"step": "initial LR head", "shape": "10 x 2", "seconds": 2.0, "rate": None},
    ]
    assert speed_table(rows, "skhsfm speed") == (
        "skhsfm speed\n"
        "\n"
        "| step            | shape  | seconds |      rate |\n"
        "|:----------------|:-------|--------:|----------:|\n"
        "| fit             | 10 x 2 |   0.123 | 1 s/epoch |\n"
        "| initial LR head | 10 x 2 |   2.000 |         - |"
    )


def test_tables_come_from_the_one_renderer():
    rows = [{"step": "s", "shape": "x", "seconds": 1.0, "rate": "r"}]
    expected = format_table(
        ["step", "shape", "seconds", "rate"],
        [["s", "x", 1.0, "r"]],
        markdown=True,
        left=2,
        title="t",
    )
    assert speed_table(rows, "t") == expected
    text = benchmark_table(SUMMARY[:1], ["a|x"], ["t"])
    assert text.startswith(
        format_table(
            ["method", "worst-group acc. (%)", "mean acc. (%)", "fit (s)"],
            [["ERM (backbone head)", "50.0 +- 10.0", "75.0 +- 5.0", "-"]],
            markdown=True,
            title="t",
        )
    )


def test_footnotes_sum_the_stage_times():
    timings = [{"seed": 0, "embedding": 1.0, "methods": 0.5}]
    timings += [{"seed": 1, "embedding": 2.0, "methods": 0.25}]
    lines = benchmark_footnotes(True, 4.0, timings, {"HSFM": ["W: w"]}, [1])
    assert "the backbone's own last layer" in lines[1]
    assert "wall time: 4.0 s (embedding 3.0 s, methods 0.8 s)" in lines
    assert any("seed(s) 1 were read from the cache" in line for line in lines)
    assert lines[-1] == "warning during HSFM fit: W: w"


def test_write_json_is_strict_json(tmp_path):
    import numpy as np

    path = tmp_path / "r.json"
    write_json(path, {"a": np.float32(0.5), "b": math.nan, "c": (1, np.int64(2))})
    assert json.loads(path.read_text()) == {"a": 0.5, "b": None, "c": [1, 2]}


def test_figure_is_skipped_without_matplotlib(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)
    stat = {"mean": 0.5, "std": 0.0}
    summary = [
        {"method": "HSFM", "group_accuracy": {"a": stat}, "worst_group_accuracy": stat}
    ]
    assert write_figure(tmp_path / "f.png", summary, ["a"], "title") is None
    assert not (tmp_path / "f.png").exists()
