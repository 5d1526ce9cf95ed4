"""Tests of the ``skhsfm`` command, called in-process through ``main``.

End to end: parsing, both commands, every source of embeddings. The pieces are
tested next to their modules: ``test_cli_benchmark.py``, ``test_cli_speed.py``,
``test_cli_sources.py``, ``test_cli_report.py`` and ``test_cli_common.py``.
"""

import csv
import json
import subprocess
import sys
from contextlib import redirect_stderr, redirect_stdout
from io import StringIO

import numpy as np
import pytest

from skhsfm.cli import main

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
# Tiny budgets so that every run takes a few seconds.
TINY_METHODS = [
    "--hsfm-epochs",
    "2",
    "--afr-epochs",
    "5",
    "--dfr-models",
    "2",
    "--device",
    "cpu",
]
TINY_SIZES = ["--n-train", "120", "--n-val", "80", "--n-test", "80"]
TINY_SIZES += ["--backbone-epochs", "1"]
TINY_EMBEDDED = ["benchmark"] + TINY_SIZES + ["--seeds", "2"] + TINY_METHODS
DOMINOES_GROUPS = ["digit<5|china", "digit<5|flower", "digit>=5|china"]
DOMINOES_GROUPS += ["digit>=5|flower"]


def _read_csv(path):
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def _run(argv, capsys):
    status = main(argv)
    captured = capsys.readouterr()
    return status, captured.out, captured.err


@pytest.fixture(scope="module")
def embedded_run(tmp_path_factory):
    """The default benchmark at tiny size, run once for several tests."""
    out = tmp_path_factory.mktemp("embedded")
    stdout, stderr = StringIO(), StringIO()
    with redirect_stdout(stdout), redirect_stderr(stderr):
        status = main(TINY_EMBEDDED + ["--out", str(out)])
    return status, stdout.getvalue(), stderr.getvalue(), out


def test_embedded_benchmark_prints_the_table(embedded_run):
    status, stdout, stderr, _ = embedded_run
    assert status == 0
    assert "worst-group acc. (%)" in stdout
    assert "digit>=5 / china" in stdout  # "|" would split a Markdown cell
    for method in ("ERM (backbone head)", "ERM (logistic regression)", "DFR"):
        assert f"| {method}" in stdout
    assert "| AFR" in stdout and "| DPE" in stdout and "| SELF" in stdout
    assert "| HSFM" in stdout
    assert "2 seeds (0, 1)" in stdout
    assert "seed 1: backbone trained" in stderr  # progress goes to stderr


def test_embedded_benchmark_writes_json(embedded_run):
    _, _, _, out = embedded_run
    with open(out / "results.json", encoding="utf-8") as handle:
        payload = json.load(handle)
    assert payload["command"].startswith("skhsfm benchmark")
    assert payload["config"]["seeds"] == [0, 1]
    assert payload["config"]["n_train"] == 120
    assert payload["groups"] == DOMINOES_GROUPS
    methods = [entry["method"] for entry in payload["summary"]]
    assert methods == [
        "ERM (backbone head)",
        "ERM (logistic regression)",
        "DFR",
        "AFR",
        "DPE",
        "SELF",
        "HSFM",
    ]
    assert len(payload["per_seed"]) == 2 * len(methods)
    for entry in payload["summary"]:
        assert entry["n_seeds"] == 2
        wga = entry["worst_group_accuracy"]
        assert 0.0 <= wga["mean"] <= 1.0 and wga["std"] >= 0.0
        assert set(entry["group_accuracy"]) == set(DOMINOES_GROUPS)
        # the worst group is the minimum of the group accuracies, per seed
    for record in payload["per_seed"]:
        worst = min(record["group_accuracy"].values())
        assert record["worst_group_accuracy"] == pytest.approx(worst)
    erm_head = payload["summary"][0]
    assert erm_head["fit_seconds"]["mean"] is None  # the backbone's own head
    hsfm = [r for r in payload["per_seed"] if r["method"] == "HSFM"]
    assert all(1 <= r["details"]["best_epoch"] <= 2 for r in hsfm)


def test_embedded_benchmark_writes_csv_and_png(embedded_run):
    _, _, _, out = embedded_run
    rows = _read_csv(out / "results.csv")
    assert [r["method"] for r in rows][-1] == "HSFM"
    assert len(rows) == 7  # two ERM heads, DFR, AFR, DPE, SELF, HSFM
    for row in rows:
        assert 0.0 <= float(row["worst_group_accuracy_mean"]) <= 1.0
        assert f"group_accuracy_mean[{DOMINOES_GROUPS[0]}]" in row
    per_seed = _read_csv(out / "results_per_seed.csv")
    assert {r["seed"] for r in per_seed} == {"0", "1"}
    assert len(per_seed) == 2 * len(rows)
    assert (out / "per_group_accuracy.png").read_bytes()[:8] == PNG_MAGIC
    assert (out / "results.md").read_text().startswith("skhsfm benchmark")


def test_rerun_reads_the_cache_and_gives_the_same_numbers(
    embedded_run, capsys, monkeypatch
):
    _, _, _, out = embedded_run
    with open(out / "results.json", encoding="utf-8") as handle:
        first = json.load(handle)

    def fail(*args, **kwargs):
        raise AssertionError("the backbone was trained again")

    import skhsfm.datasets._dominoes_cnn as cnn_module

    monkeypatch.setattr(cnn_module, "train_dominoes_backbone", fail)
    again = out / "again"
    argv = TINY_EMBEDDED + ["--out", str(again), "--cache", str(out / "cache")]
    status, stdout, stderr = _run(argv, capsys)
    assert status == 0
    assert "read from cache" in stderr
    assert "embeddings of seed(s) 0, 1 were read from the cache" in stdout
    with open(again / "results.json", encoding="utf-8") as handle:
        second = json.load(handle)
    for a, b in zip(first["per_seed"], second["per_seed"]):
        assert a["method"] == b["method"]
        assert a["group_accuracy"] == b["group_accuracy"]


def test_methods_and_preset_choose_the_rows(tmp_path, capsys):
    argv = ["benchmark"] + TINY_SIZES + TINY_METHODS + ["--seeds", "1"]
    argv += ["--methods", "hsfm", "erm", "--preset", "dominoes"]
    status, stdout, _ = _run(argv + ["--out", str(tmp_path), "--quiet"], capsys)
    assert status == 0
    payload = json.loads((tmp_path / "results.json").read_text())
    methods = [entry["method"] for entry in payload["summary"]]
    assert methods == [
        "ERM (backbone head)",
        "ERM (logistic regression)",
        "HSFM (preset dominoes)",
    ]
    assert payload["config"]["hsfm_preset"] == "dominoes"
    assert "| DFR" not in stdout


# ------------------------------------------------------------- bad arguments


@pytest.mark.parametrize(
    "argv, message",
    [
        (["benchmark", "--methods", "erm", "svm"], "invalid choice: 'svm'"),
        (["benchmark", "--dataset", "imagenet"], "invalid choice: 'imagenet'"),
        (["benchmark", "--dataset", "waterbirds"], "needs --root PATH"),
        (["benchmark", "--seeds", "0"], "--seeds N needs N >= 1"),
        (["benchmark", "--seeds", "1", "1"], "lists a seed twice"),
        (["benchmark", "--n-train", "0"], "--n-train must be >= 1"),
        (["frobnicate"], "invalid choice: 'frobnicate'"),
    ],
)
def test_bad_arguments_exit_with_status_2(argv, message, capsys):
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert message in err
    assert "Traceback" not in err


def test_unknown_method_lists_the_valid_ones(capsys):
    with pytest.raises(SystemExit):
        main(["benchmark", "--methods", "svm"])
    err = capsys.readouterr().err
    assert "usage: skhsfm benchmark" in err
    choices = err.partition("choose from")[2]
    assert all(name in choices for name in ("erm", "dfr", "afr", "hsfm"))


def test_missing_root_folder_exits_with_status_2(tmp_path, capsys):
    missing = tmp_path / "no_such_folder"
    with pytest.raises(SystemExit) as info:
        main(["benchmark", "--dataset", "waterbirds", "--root", str(missing)])
    assert info.value.code == 2
    assert "folder not found" in capsys.readouterr().err


def test_root_without_metadata_is_a_one_line_error(tmp_path, capsys):
    argv = ["benchmark", "--dataset", "waterbirds", "--root", str(tmp_path)]
    status, _, err = _run(argv + ["--out", str(tmp_path / "out")], capsys)
    assert status == 1
    assert err.startswith("skhsfm: error:") and "metadata.csv" in err
    assert "Traceback" not in err


def test_unknown_device_is_a_one_line_error(tmp_path, capsys):
    argv = ["benchmark", "--device", "tpu", "--out", str(tmp_path)]
    status, _, err = _run(argv, capsys)
    assert status == 1
    assert "skhsfm: error: --device tpu" in err


def test_help_does_not_import_torch():
    code = (
        "import sys, contextlib, io\n"
        "from skhsfm.cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()) as out:\n"
        "    try:\n"
        "        main(['benchmark', '--help'])\n"
        "    except SystemExit as exc:\n"
        "        assert exc.code == 0\n"
        "assert '--methods' in out.getvalue()\n"
        "assert 'torch' not in sys.modules, 'torch imported'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_idle_torch_threads_sleep_unless_the_user_chose():
    # spinning OpenMP threads slowed the CNN's training up to 8x on a busy
    # machine; the command asks for passive waiting before torch loads
    code = (
        "import os\n"
        "from skhsfm.cli import main\n"
        "os.environ.pop('OMP_WAIT_POLICY', None)\n"
        "try:\n"
        "    main(['--version'])\n"
        "except SystemExit:\n"
        "    pass\n"
        "print('policy', os.environ['OMP_WAIT_POLICY'])\n"
        "os.environ['OMP_WAIT_POLICY'] = 'ACTIVE'\n"
        "try:\n"
        "    main(['--version'])\n"
        "except SystemExit:\n"
        "    pass\n"
        "print('policy', os.environ['OMP_WAIT_POLICY'])\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    policies = [
        line.split()[1] for line in result.stdout.splitlines() if "policy" in line
    ]
    assert policies == ["PASSIVE", "ACTIVE"]


def test_import_stays_light():
    code = (
        "import sys, skhsfm.cli, skhsfm.cli.benchmark, skhsfm.cli.speed\n"
        "import skhsfm.cli._sources, skhsfm.cli._report, skhsfm.cli._common\n"
        "heavy = {'torch', 'matplotlib', 'tqdm'} & set(sys.modules)\n"
        "assert not heavy, heavy\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.parametrize("module", ["skhsfm", "skhsfm.cli"])
def test_python_dash_m(module):
    from skhsfm import __version__

    result = subprocess.run(
        [sys.executable, "-m", module, "--version"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert result.stdout.strip() == f"skhsfm {__version__}"


# -------------------------------------------------- datasets from --root


@pytest.fixture(scope="module")
def dominoes_tree(tmp_path_factory):
    """X_/y_/env_{split}.npy holding tiny dominoes images (uint8, NHWC)."""
    from skhsfm.datasets import make_dominoes

    root = tmp_path_factory.mktemp("dominoes_arrays")
    data = make_dominoes(96, 48, 48, random_state=0)
    for split in ("train", "val", "test"):
        np.save(root / f"X_{split}.npy", data[split].images)
        np.save(root / f"y_{split}.npy", data[split].target)
        np.save(root / f"env_{split}.npy", data[split].attribute)
    return root


def test_dominoes_arrays_with_the_cnn(dominoes_tree, tmp_path, capsys):
    argv = ["benchmark", "--dataset", "dominoes", "--root", str(dominoes_tree)]
    argv += ["--seeds", "1", "--backbone-epochs", "1", "--out", str(tmp_path)]
    status, stdout, _ = _run(argv + TINY_METHODS, capsys)
    assert status == 0
    payload = json.loads((tmp_path / "results.json").read_text())
    assert payload["config"]["backbone"].startswith("dominoes CNN")
    assert payload["config"]["n_test"] == 48
    assert payload["groups"] == ["y=0|env=0", "y=0|env=1", "y=1|env=0", "y=1|env=1"]
    assert payload["summary"][0]["method"] == "ERM (backbone head)"
    assert "y=1 / env=0" in stdout


def test_dominoes_arrays_holding_embeddings(tmp_path, capsys):
    """2-D X arrays are used as the embeddings themselves (no backbone)."""
    from skhsfm.datasets import make_spurious_embeddings

    root = tmp_path / "features"
    root.mkdir()
    for split, n in (("train", 200), ("val", 80), ("test", 80)):
        X, y, a, _ = make_spurious_embeddings(n, 16, split=split, random_state=0)
        np.save(root / f"X_{split}.npy", X)
        np.save(root / f"y_{split}.npy", y)
        np.save(root / f"env_{split}.npy", a)
    out = tmp_path / "out"
    argv = ["benchmark", "--dataset", "dominoes", "--root", str(root)]
    argv += ["--seeds", "0", "1", "--out", str(out), "--quiet"] + TINY_METHODS
    status, _, err = _run(argv, capsys)
    assert status == 0 and err == ""  # --quiet: nothing on stderr
    payload = json.loads((out / "results.json").read_text())
    assert payload["config"]["backbone"].startswith("none")
    methods = [entry["method"] for entry in payload["summary"]]
    assert methods == ["ERM (logistic regression)", "DFR", "AFR", "DPE", "SELF", "HSFM"]
    # the same logistic regression for both seeds: embeddings do not change
    erm = [r for r in payload["per_seed"] if r["method"].startswith("ERM")]
    assert erm[0]["group_accuracy"] == erm[1]["group_accuracy"]


def test_dominoes_arrays_with_an_open_clip_backbone(
    dominoes_tree, tiny_clip, tmp_path, capsys
):
    argv = ["benchmark", "--dataset", "dominoes", "--root", str(dominoes_tree)]
    argv += ["--backbone", tiny_clip, "--pretrained", "none", "--seeds", "2"]
    argv += ["--methods", "erm", "hsfm", "--out", str(tmp_path)] + TINY_METHODS
    status, _, stderr = _run(argv, capsys)
    assert status == 0
    payload = json.loads((tmp_path / "results.json").read_text())
    assert payload["config"]["backbone"] == (f"open_clip {tiny_clip} (random weights)")
    methods = [entry["method"] for entry in payload["summary"]]
    assert methods == ["ERM (logistic regression)", "HSFM"]
    # one embedding pass serves both seeds (the backbone does not change)
    assert stderr.count("embedding train") == 1


def _write_png(path, color):
    from PIL import Image

    Image.new("RGB", (24, 24), color).save(path)


@pytest.fixture(scope="module")
def waterbirds_tree(tmp_path_factory):
    """A Waterbirds-layout folder: metadata.csv and 48 tiny PNG images."""
    root = tmp_path_factory.mktemp("waterbirds")
    rng = np.random.RandomState(0)
    rows = []
    for split in (0, 1, 2):
        for y in (0, 1):
            for place in (0, 1):
                for k in range(4):
                    name = f"{split}_{y}_{place}_{k}.png"
                    color = tuple(int(c) for c in rng.randint(0, 256, 3))
                    color = (color[0], 200 * place, 200 * y)
                    _write_png(root / name, color)
                    rows.append([len(rows), name, y, split, place, f"places/{name}"])
    with open(root / "metadata.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(
            ["img_id", "img_filename", "y", "split", "place", "place_filename"]
        )
        writer.writerows(rows)
    return root


def test_waterbirds_with_a_random_resnet18(
    waterbirds_tree, tmp_path, capsys, monkeypatch
):
    argv = ["benchmark", "--dataset", "waterbirds", "--root", str(waterbirds_tree)]
    argv += ["--backbone", "resnet18", "--weights", "none", "--seeds", "1"]
    argv += ["--out", str(tmp_path), "--batch-size", "16"] + TINY_METHODS
    status, stdout, _ = _run(argv, capsys)
    assert status == 0
    payload = json.loads((tmp_path / "results.json").read_text())
    assert payload["config"]["backbone"] == "torchvision resnet18 (random weights)"
    assert payload["groups"] == [
        "landbird|land",
        "landbird|water",
        "waterbird|land",
        "waterbird|water",
    ]
    assert payload["config"]["n_val"] == 16
    assert "landbird / water" in stdout

    # A re-run reads the embeddings from the cache: the backbone is not loaded.
    def fail(*args, **kwargs):
        raise AssertionError("the backbone was loaded again")

    from skhsfm.embedding import _torchvision

    monkeypatch.setattr(_torchvision, "load_torchvision", fail)
    status, _, _ = _run(argv, capsys)
    assert status == 0


def test_weights_that_cannot_be_loaded_offline(
    waterbirds_tree, tmp_path, capsys, monkeypatch
):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "empty_torch_home"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    argv = ["benchmark", "--dataset", "waterbirds", "--root", str(waterbirds_tree)]
    argv += ["--backbone", "resnet18", "--weights", "IMAGENET1K_V1"]
    argv += ["--out", str(tmp_path / "out"), "--no-cache"] + TINY_METHODS
    status, _, err = _run(argv, capsys)
    assert status == 1
    last = err.strip().splitlines()[-1]  # after the run's first progress line
    assert last.startswith("skhsfm: error: embedding the waterbirds train")
    assert "offline" in last and "--weights FILE" in last
    assert "Traceback" not in err


def test_missing_weights_file(waterbirds_tree, tmp_path, capsys):
    argv = ["benchmark", "--dataset", "waterbirds", "--root", str(waterbirds_tree)]
    argv += ["--backbone", "resnet18", "--weights", str(tmp_path / "nope.pth")]
    argv += ["--out", str(tmp_path / "out"), "--no-cache"] + TINY_METHODS
    status, _, err = _run(argv, capsys)
    assert status == 1
    assert "nope.pth" in err and "Traceback" not in err
