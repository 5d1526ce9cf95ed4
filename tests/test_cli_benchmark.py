"""Tests of skhsfm.cli.benchmark: settings, per-seed evaluation, summary.

The whole command runs end to end in ``test_cli.py``.
"""

import dataclasses
import os

import numpy as np
import pytest

from skhsfm.cli import build_parser
from skhsfm.cli._report import benchmark_table
from skhsfm.cli._summary import summarize
from skhsfm.cli.benchmark import (
    METHODS,
    BenchmarkSettings,
    evaluate_seed,
)


def _settings(argv):
    parser = build_parser()
    args = parser.parse_args(["benchmark"] + argv)
    return BenchmarkSettings.from_args(args, args.subparser)


def test_settings_are_a_frozen_dataclass():
    settings = _settings([])
    assert dataclasses.is_dataclass(settings)
    with pytest.raises(dataclasses.FrozenInstanceError):
        settings.seeds = (5,)
    assert settings == _settings([])  # a value: equal for equal arguments
    moved = dataclasses.replace(settings, device="cpu")
    assert moved.device == "cpu" and settings.device == "auto"


def test_settings_defaults_and_quick(tmp_path):
    settings = _settings(["--out", str(tmp_path)])
    assert settings.embedded and settings.root is None
    assert settings.seeds == (0, 1, 2) and settings.methods == METHODS
    assert (settings.n_train, settings.n_val, settings.n_test) == (4800, 1200, 2400)
    assert settings.backbone_epochs == 6 and settings.preset is None
    assert settings.cache_dir == os.path.abspath(tmp_path / "cache")
    quick = _settings(["--quick", "--no-cache", "--n-val", "7"])
    assert quick.seeds == (0,) and quick.cache_dir is None
    assert (quick.n_train, quick.n_val, quick.backbone_epochs) == (1600, 7, 8)


def test_settings_from_the_options(tmp_path):
    argv = ["--dataset", "celeba", "--root", str(tmp_path), "--quick"]
    argv += ["--methods", "hsfm", "erm", "hsfm", "--seeds", "4", "7"]
    argv += ["--preset", "auto", "--hsfm-epochs", "3", "--cache", str(tmp_path)]
    settings = _settings(argv)
    assert not settings.embedded and settings.root == str(tmp_path)
    assert settings.methods == ("hsfm", "erm") and settings.seeds == (4, 7)
    assert settings.preset == "celeba" and settings.budgets == {"hsfm": 3}
    assert (settings.n_train, settings.n_test) == (256, 256)  # --quick cap
    assert settings.cache_dir == str(tmp_path)


def test_evaluate_seed_uses_the_backbone_head(tmp_path):
    from skhsfm import LinearHead
    from skhsfm.cli._common import Reporter
    from skhsfm.cli._sources import Embeddings
    from skhsfm.datasets import make_spurious_embeddings

    splits = {}
    for split, n in (("train", 200), ("val", 80), ("test", 80)):
        X, y, _, g = make_spurious_embeddings(n, 8, split=split, random_state=0)
        splits[split] = (X, y, g)
    head = LinearHead(np.ones((1, 8)), [0.0])
    names = ["g0", "g1", "g2", "g3"]
    emb = Embeddings(splits, names, head)
    settings = BenchmarkSettings(methods=("erm",), device="cpu")
    notes = {}
    records = evaluate_seed(emb, 0, settings, Reporter(quiet=True), notes)
    assert [r["method"] for r in records] == [
        "ERM (backbone head)",
        "ERM (logistic regression)",
    ]
    X_test, y_test, g_test = splits["test"]
    pred = head.predict(X_test)
    worst = min(
        np.mean(pred[g_test == k] == y_test[g_test == k]) for k in np.unique(g_test)
    )
    assert records[0]["worst_group_accuracy"] == pytest.approx(worst)
    assert records[0]["fit_seconds"] is None and records[1]["fit_seconds"] > 0


def test_summarize_orders_methods_and_groups():
    records = [
        {
            "seed": seed,
            "method": method,
            "worst_group_accuracy": 0.5 + 0.1 * seed,
            "mean_accuracy": 0.8,
            "group_accuracy": {"b": 0.5, "a": 1.0},
            "fit_seconds": None if method == "ERM" else 1.0 + seed,
        }
        for seed in (0, 1)
        for method in ("ERM", "HSFM")
    ]
    summary, groups = summarize(records, ["a", "b"])
    assert groups == ["a", "b"]
    assert [entry["method"] for entry in summary] == ["ERM", "HSFM"]
    hsfm = summary[1]
    assert hsfm["n_seeds"] == 2
    assert hsfm["worst_group_accuracy"]["mean"] == pytest.approx(0.55)
    assert hsfm["worst_group_accuracy"]["std"] == pytest.approx(
        np.std([0.5, 0.6], ddof=1)
    )
    assert hsfm["fit_seconds"] == {"mean": 1.5, "std": pytest.approx(np.sqrt(0.5))}
    assert summary[0]["fit_seconds"] == {"mean": None, "std": None}


def _records(scores):
    return [
        {
            "seed": seed,
            "method": method,
            "worst_group_accuracy": value,
            "mean_accuracy": 0.9,
            "group_accuracy": {"a": value},
            "fit_seconds": 1.0,
        }
        for method, values in scores.items()
        for seed, value in enumerate(values)
    ]


def test_summarize_pairs_each_method_with_the_reference_by_seed():
    dfr = [0.90, 0.80, 0.85, 0.95]
    hsfm = [0.92, 0.83, 0.86, 0.97]  # +2, +3, +1, +2 points on the same seeds
    summary, _ = summarize(_records({"DFR": dfr, "HSFM": hsfm}), ["a"], "DFR")
    assert summary[0]["paired_difference"] is None  # the reference itself
    paired = summary[1]["paired_difference"]
    diff = np.subtract(hsfm, dfr)
    assert paired["reference"] == "DFR" and paired["n_pairs"] == 4
    assert paired["mean"] == pytest.approx(diff.mean())
    half = 3.182446305284263 * diff.std(ddof=1) / 2  # t(0.975, 3) * sd / sqrt(4)
    assert paired["low"] == pytest.approx(diff.mean() - half)
    assert paired["high"] == pytest.approx(diff.mean() + half)
    assert paired["low"] > 0  # consistent gains although the spreads overlap
    table = benchmark_table(summary, ["a"], ["title"])
    assert "vs DFR, paired (pp)" in table
    hsfm_line = next(line for line in table.splitlines() if "| HSFM" in line)
    assert "+2.0 [+0.7, +3.3]" in hsfm_line
    assert "ref." in next(line for line in table.splitlines() if "| DFR" in line)


def test_summarize_without_reference_has_no_paired_column():
    summary, _ = summarize(_records({"DFR": [0.9, 0.8], "HSFM": [0.8, 0.9]}), ["a"])
    assert all("paired_difference" not in entry for entry in summary)
    assert "paired" not in benchmark_table(summary, ["a"], ["title"])


def test_reference_must_be_a_requested_method():
    settings = _settings(["--methods", "erm", "hsfm"])
    assert settings.reference is None  # the default (dfr) is not run: no column
    assert _settings(["--reference", "erm", "--methods", "erm"]).reference == "erm"
    with pytest.raises(SystemExit):
        _settings(["--reference", "afr", "--methods", "erm", "hsfm"])


# ------------------------------------------------------------- situations


def _embeddings(head=None):
    from skhsfm.cli._sources import Embeddings
    from skhsfm.datasets import make_spurious_embeddings

    splits = {}
    for split, n in (("train", 240), ("val", 120), ("test", 120)):
        X, y, _, g = make_spurious_embeddings(n, 8, split=split, random_state=0)
        splits[split] = (X, y, g)
    return Embeddings(splits, ["g0", "g1", "g2", "g3"], head)


def test_situations_option(tmp_path):
    from skhsfm.cli._evaluate import SITUATIONS

    assert [s.key for s in _settings([]).situations] == ["val"]
    every = _settings(["--situations", "all"]).situations
    assert [s.key for s in every] == ["both", "val", "none", "train"]
    assert every == tuple(SITUATIONS.values())
    # table order whatever the order given
    picked = _settings(["--situations", "train", "val"]).situations
    assert [s.key for s in picked] == ["val", "train"]
    for bad in (["val", "val"], ["sometimes"]):
        with pytest.raises(SystemExit):
            _settings(["--situations", *bad])


def test_fit_call_gives_each_situation_its_labels():
    from skhsfm.cli._evaluate import SITUATIONS, fit_call

    emb = _embeddings()
    X, y, g = emb.splits["train"]
    Xv, yv, gv = emb.splits["val"]
    (args, kwargs) = fit_call(SITUATIONS["both"], emb.splits)
    assert args[2] is g and kwargs["groups_val"] is gv and kwargs["X_val"] is Xv
    (args, kwargs) = fit_call(SITUATIONS["val"], emb.splits)
    assert args[2] is None and kwargs["groups_val"] is gv
    (args, kwargs) = fit_call(SITUATIONS["none"], emb.splits)
    assert args[2] is None and set(kwargs) == {"X_val", "y_val"}
    (args, kwargs) = fit_call(SITUATIONS["train"], emb.splits)
    assert args[2] is g and kwargs == {}
    no_val = {"train": emb.splits["train"]}
    assert fit_call(SITUATIONS["val"], no_val) is None
    assert fit_call(SITUATIONS["train"], no_val) is not None


def test_heads_that_need_groups_infer_them_where_there_are_none():
    from skhsfm.baselines import DFRClassifier
    from skhsfm.cli._evaluate import SITUATIONS, adapt
    from skhsfm.groups import InferredGroupsClassifier

    dfr = DFRClassifier()
    for key in ("both", "val", "train"):
        assert adapt(dfr, "required", SITUATIONS[key], 0) is dfr
    wrapped = adapt(dfr, "required", SITUATIONS["none"], 3)
    assert isinstance(wrapped, InferredGroupsClassifier)
    assert wrapped.estimator is dfr and wrapped.random_state == 3
    assert adapt(dfr, "optional", SITUATIONS["none"], 0) is dfr


def test_evaluate_seed_in_every_situation():
    from skhsfm import LinearHead
    from skhsfm.cli._common import Reporter
    from skhsfm.cli._evaluate import SITUATIONS

    emb = _embeddings(LinearHead(np.ones((1, 8)), [0.0]))
    settings = BenchmarkSettings(
        methods=("erm", "dfr", "hsfm"),
        device="cpu",
        budgets={"hsfm": 2},
        situations=tuple(SITUATIONS.values()),
    )
    notes = {}
    records = evaluate_seed(emb, 0, settings, Reporter(quiet=True), notes)
    labels = [r["method"] for r in records]
    # the heads that ignore groups and X_val are fit once, without a tag
    assert labels[:2] == ["ERM (backbone head)", "ERM (logistic regression)"]
    tags = [s.tag for s in SITUATIONS.values()]
    assert labels[2:] == [f"{m} [{t}]" for t in tags for m in ("DFR", "HSFM")]
    by_label = {r["method"]: r for r in records}
    for record in records:
        assert 0.0 <= record["worst_group_accuracy"] <= record["mean_accuracy"] <= 1
    # HSFM records the groups it inferred per situation in its details
    assert by_label["HSFM [val groups]"]["details"]["best_epoch"] >= 0
    # without a validation split the source would be skipped with a note
    no_val = dataclasses.replace(
        emb, splits={k: emb.splits[k] for k in ("train", "test")}
    )
    notes = {}
    records = evaluate_seed(no_val, 0, settings, Reporter(quiet=True), notes)
    assert {r["method"] for r in records} >= {
        "DFR [no val split]",
        "HSFM [no val split]",
    }
    assert not any("[val groups]" in r["method"] for r in records)
    assert any("no validation split" in n for n in notes["[val groups]"])


def test_reference_is_taken_in_the_val_situation():
    from skhsfm.cli._evaluate import SITUATIONS, reference_label

    every = tuple(SITUATIONS.values())
    settings = BenchmarkSettings(situations=every)
    assert reference_label(settings) == "DFR [val groups]"
    settings = BenchmarkSettings(situations=(SITUATIONS["none"], SITUATIONS["train"]))
    assert reference_label(settings) == "DFR [no groups]"
    assert reference_label(BenchmarkSettings()) == "DFR"
    assert reference_label(BenchmarkSettings(reference=None)) is None
    # a head that ignores groups is fit once and has no situation tag
    erm = BenchmarkSettings(reference="erm", situations=every)
    assert reference_label(erm) == "ERM (logistic regression)"


def test_a_head_that_cannot_run_in_one_of_several_situations_gets_a_note(
    monkeypatch,
):
    from skhsfm.baselines import DFRClassifier
    from skhsfm.cli._common import Reporter
    from skhsfm.cli._evaluate import SITUATIONS

    original = DFRClassifier.fit

    def fit(self, X, y, groups=None, **kwargs):
        if "X_val" not in kwargs:
            raise ValueError("DFR needs X_val here")
        return original(self, X, y, groups, **kwargs)

    monkeypatch.setattr(DFRClassifier, "fit", fit)
    emb = _embeddings()
    both = (SITUATIONS["val"], SITUATIONS["train"])
    settings = BenchmarkSettings(methods=("dfr",), device="cpu", situations=both)
    notes = {}
    records = evaluate_seed(emb, 0, settings, Reporter(quiet=True), notes)
    assert [r["method"] for r in records] == ["DFR [val groups]"]
    assert notes["DFR [no val split]"] == ["seed 0: not run: DFR needs X_val here"]
    # with one situation the error is the run's: it is raised
    alone = dataclasses.replace(settings, situations=(SITUATIONS["train"],))
    with pytest.raises(ValueError, match="DFR needs X_val here"):
        evaluate_seed(emb, 0, alone, Reporter(quiet=True), {})
