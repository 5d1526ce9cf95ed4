"""Fault injection: caches, written outputs and the command's errors.

Classes 1, 2 and 7 (command) of the reliability issue: a corrupted benchmark
cache is recomputed with a warning, never trusted and never fatal; the
benchmark's files are replaced as one set, so a failing or interrupted write
leaves the previous run; every input error of the command is one
``skhsfm: error:`` line.
"""

import errno
import json
import os

import numpy as np
import pytest

from skhsfm._utils import atomic as _atomic
from skhsfm.cli import main
from skhsfm.cli._cache import cache_file, read_cache, write_cache
from skhsfm.cli._common import CLIError

TINY_METHODS = ["--hsfm-epochs", "2", "--afr-epochs", "5", "--dfr-models", "2"]
TINY_METHODS += ["--device", "cpu"]


def _run(argv, capsys):
    status = main(argv)
    captured = capsys.readouterr()
    return status, captured.out, captured.err


# ------------------------------------------------------------ 1. the cache


class _Reporter:
    """Collects what the sources report."""

    def __init__(self):
        self.warnings, self.logs = [], []

    def warn(self, message):
        self.warnings.append(message)

    def log(self, message):
        self.logs.append(message)


class _Settings:
    def __init__(self, cache_dir):
        self.cache_dir = cache_dir


def _splits(seed=0):
    rng = np.random.RandomState(seed)
    return {
        split: (rng.rand(6, 4).astype(np.float32), np.arange(6) % 2, np.arange(6) % 3)
        for split in ("train", "val", "test")
    }


def _load(tmp_path, calls, key=("k", 1)):
    """One seed through the cache; ``calls`` counts the computations."""
    from skhsfm import LinearHead
    from skhsfm.cli._sources import _load_or_compute

    def compute():
        calls.append(1)
        head = LinearHead(np.ones((1, 4)), np.zeros(1))
        return _splits(), head, ["a", "b", "c"], {"embedding": 0.5}

    reporter = _Reporter()
    emb = _load_or_compute(
        _Settings(str(tmp_path / "cache")), reporter, 0, "seed0", key, compute
    )
    return emb, reporter


def _cache_path(tmp_path):
    (path,) = (tmp_path / "cache").glob("*.npz")
    return path


def _truncate(path):
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _flip_middle(path):
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))


def _flip_in_array(path):
    """Flip one byte inside the stored X_train values (zip CRC catches it)."""
    data = bytearray(path.read_bytes())
    with np.load(path) as stored:
        needle = stored["X_train"].tobytes()[:16]
    at = bytes(data).index(needle)
    data[at + 3] ^= 0x01
    path.write_bytes(bytes(data))


def _garbage(path):
    path.write_bytes(b"this is not a zip file at all")


def _empty(path):
    path.write_bytes(b"")


def _old_format(path):
    """A file as skhsfm wrote it before checksums (plain np.savez)."""
    arrays = {f"{k}_{s}": v for s, vs in _splits().items() for k, v in zip("Xyg", vs)}
    arrays["group_names"] = np.array(["a", "b", "c"])
    with open(path, "wb") as handle:
        np.savez(handle, **arrays)


def _tampered(path):
    """Valid zip, valid checksum record, but an array swapped for another."""
    with np.load(path) as stored:
        arrays = {name: stored[name] for name in stored.files}
    arrays["X_test"] = arrays["X_test"] + 1.0
    with open(path, "wb") as handle:
        np.savez(handle, **arrays)


def _reshaped(path):
    with np.load(path) as stored:
        arrays = {name: stored[name] for name in stored.files}
    arrays["y_val"] = arrays["y_val"][:3]
    with open(path, "wb") as handle:
        np.savez(handle, **arrays)


def _a_folder(path):
    path.unlink()
    path.mkdir()


CORRUPTIONS = {
    "truncated": (_truncate, "cannot be read"),
    "byte flipped": (_flip_middle, ""),
    "value flipped": (_flip_in_array, ""),
    "garbage": (_garbage, "cannot be read"),
    "empty": (_empty, "cannot be read"),
    "older format": (_old_format, "no checksums"),
    "tampered array": (_tampered, "checksum"),
    "wrong shape": (_reshaped, "shape"),
    "a folder": (_a_folder, "cannot be read"),
}


def test_cache_round_trip_checks_everything(tmp_path):
    calls = []
    first, reporter = _load(tmp_path, calls)
    assert calls == [1] and reporter.warnings == []
    again, reporter = _load(tmp_path, calls)
    assert calls == [1] and again.info == {"cached": True, "embedding": 0.5}
    assert reporter.warnings == [] and "read from cache" in reporter.logs[0]
    np.testing.assert_array_equal(again.splits["test"][0], first.splits["test"][0])
    np.testing.assert_array_equal(again.head.coef, first.head.coef)
    assert again.group_names == ["a", "b", "c"]
    # nothing left behind by the atomic write
    assert sorted(p.name for p in (tmp_path / "cache").iterdir()) == [
        _cache_path(tmp_path).name
    ]


@pytest.mark.parametrize("corruption", list(CORRUPTIONS))
def test_corrupted_cache_is_recomputed_with_a_warning(tmp_path, corruption):
    damage, reason = CORRUPTIONS[corruption]
    calls = []
    first, _ = _load(tmp_path, calls)
    path = _cache_path(tmp_path)
    damage(path)
    emb, reporter = _load(tmp_path, calls)  # never raises
    assert calls == [1, 1], "the bad file must not be used"
    warning = reporter.warnings[0]
    assert str(path) in warning and "Recomputing" in warning and reason in warning
    np.testing.assert_array_equal(emb.splits["train"][0], first.splits["train"][0])
    if corruption == "a folder":  # left alone: the new file cannot be written
        assert "could not write the cache file" in reporter.warnings[1]
        assert path.is_dir()
    else:
        assert len(reporter.warnings) == 1
        _, reporter = _load(tmp_path, calls)
        assert calls == [1, 1] and reporter.warnings == []  # rewritten, valid


def test_cache_for_other_settings_is_not_used(tmp_path):
    calls = []
    _load(tmp_path, calls, key=("k", 1))
    path = _cache_path(tmp_path)
    other, key = cache_file(str(tmp_path / "cache"), "seed0", ["k", 2])
    os.replace(path, other)  # a file under the name of other settings
    _, reporter = _load(tmp_path, calls, key=("k", 2))
    assert calls == [1, 1] and "other settings" in reporter.warnings[0]


def test_cache_that_cannot_be_written_is_skipped_with_a_warning(tmp_path, monkeypatch):
    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(np, "savez", full)
    calls = []
    emb, reporter = _load(tmp_path, calls)
    assert calls == [1] and emb.splits["train"][0].shape == (6, 4)
    assert "could not write the cache file" in reporter.warnings[0]
    assert "No space left" in reporter.warnings[0]
    assert list((tmp_path / "cache").iterdir()) == []  # no partial file


def test_read_cache_raises_only_cache_invalid(tmp_path):
    from skhsfm.cli._cache import CacheInvalid

    path, key = cache_file(str(tmp_path), "p", ["x"])
    write_cache(path, key, _splits(), None, ["a"], {})
    read_cache(path, key)
    with open(path, "r+b") as handle:
        handle.truncate(100)
    with pytest.raises(CacheInvalid, match="cannot be read"):
        read_cache(path, key)


@pytest.fixture(scope="module")
def dominoes_images(tmp_path_factory):
    from skhsfm.datasets import make_dominoes

    root = tmp_path_factory.mktemp("dominoes_images")
    data = make_dominoes(64, 32, 32, random_state=0)
    for split in ("train", "val", "test"):
        np.save(root / f"X_{split}.npy", data[split].images)
        np.save(root / f"y_{split}.npy", data[split].target)
        np.save(root / f"env_{split}.npy", data[split].attribute)
    return root


def _scores(out):
    records = json.loads((out / "results.json").read_text())["per_seed"]
    return [(r["method"], r["group_accuracy"]) for r in records]


def test_benchmark_recomputes_a_corrupted_cache(dominoes_images, tmp_path, capsys):
    out = tmp_path / "out"
    argv = ["benchmark", "--dataset", "dominoes", "--root", str(dominoes_images)]
    argv += ["--seeds", "1", "--backbone-epochs", "1", "--methods", "erm"]
    argv += ["--out", str(out)] + TINY_METHODS
    status, _, err = _run(argv, capsys)
    assert status == 0 and "warning" not in err
    first = _scores(out)
    (path,) = (out / "cache").glob("*.npz")
    _truncate(path)
    status, _, err = _run(argv, capsys)
    assert status == 0, err
    assert "Traceback" not in err and "BadZipFile" in err
    assert f"skhsfm: warning: seed 0: cached embeddings {path} not used" in err
    assert _scores(out) == first
    status, _, err = _run(argv, capsys)
    assert status == 0 and "read from cache" in err and "warning" not in err


# ---------------------------------------------------------- 2. the outputs

NAMES = ["results.md", "results.json", "results.csv", "per_group_accuracy.png"]


def _write_set(folder, content, fail=None, skip=()):
    def writer(name):
        def write(path):
            if name == fail:
                with open(path, "w") as handle:
                    handle.write("half")
                raise OSError(errno.ENOSPC, "No space left on device")
            if name in skip:
                return False
            with open(path, "w") as handle:
                handle.write(f"{content}:{name}")

        return write

    return _atomic.write_file_set(folder, {name: writer(name) for name in NAMES})


def _contents(folder):
    return {p.name: p.read_text() for p in folder.iterdir()}


@pytest.mark.parametrize("fail", NAMES)
def test_a_failing_writer_leaves_the_previous_run(tmp_path, fail):
    _write_set(tmp_path, "old")
    before = _contents(tmp_path)
    with pytest.raises(OSError, match="No space left"):
        _write_set(tmp_path, "new", fail=fail)
    assert _contents(tmp_path) == before  # no new file, no temporary folder


@pytest.mark.parametrize("at", range(1, 10))
def test_an_interrupted_swap_rolls_back(tmp_path, monkeypatch, at):
    """KeyboardInterrupt at the at-th rename (journal, old files aside, new in)."""
    _write_set(tmp_path, "old")
    before = _contents(tmp_path)
    replace, count = os.replace, []

    def interrupted(src, dst):
        count.append(1)
        if len(count) == at:
            raise KeyboardInterrupt
        return replace(src, dst)

    monkeypatch.setattr(_atomic.os, "replace", interrupted)
    with pytest.raises(KeyboardInterrupt):
        _write_set(tmp_path, "new")
    monkeypatch.setattr(_atomic.os, "replace", replace)
    assert _contents(tmp_path) == before


@pytest.mark.parametrize("at", range(2, 10))
def test_a_killed_swap_is_undone_by_the_next_write(tmp_path, monkeypatch, at):
    """A process killed mid-swap (no roll-back ran) leaves a journal; the next
    write, or recover_file_set, restores the previous run first."""
    _write_set(tmp_path, "old")
    before = _contents(tmp_path)
    replace, count = os.replace, []

    class Killed(BaseException):
        pass

    def killed(src, dst):
        count.append(1)
        if len(count) == at:
            raise Killed
        return replace(src, dst)

    monkeypatch.setattr(_atomic.os, "replace", killed)
    monkeypatch.setattr(_atomic, "_roll_back", lambda folder, journal: None)
    monkeypatch.setattr(_atomic.shutil, "rmtree", lambda *a, **k: None)
    with pytest.raises(Killed):
        _write_set(tmp_path, "new")
    monkeypatch.undo()
    assert (tmp_path / _atomic._JOURNAL).exists()
    assert _atomic.recover_file_set(tmp_path) is True
    assert _contents(tmp_path) == before
    _write_set(tmp_path, "newer")
    assert set(_contents(tmp_path).values()) == {f"newer:{n}" for n in NAMES}


@pytest.mark.skipif(os.name != "posix", reason="process ids checked on POSIX")
def test_a_swap_of_another_live_process_is_not_undone(tmp_path):
    """A fresh journal of a live process (pid 1) is another run swapping right
    now: refuse instead of rolling its swap back. An old one was left by a
    killed process whose id was reused: roll it back."""
    _write_set(tmp_path, "old")
    before = _contents(tmp_path)
    backup = tmp_path / f"{_atomic._BACKUP}1-xyz"
    backup.mkdir()
    journal = tmp_path / _atomic._JOURNAL
    journal.write_text(
        json.dumps(
            {"staging": f"{_atomic._STAGING}1-abc", "backup": backup.name,
             "old": NAMES, "names": NAMES}
        )
    )  # fmt: skip
    with pytest.raises(OSError, match=r"another process \(pid 1\) is replacing"):
        _write_set(tmp_path, "new")
    os.utime(journal, (1, 1))
    _write_set(tmp_path, "new")
    assert not journal.exists() and not backup.exists()
    assert set(_contents(tmp_path)) == set(before)


def test_a_new_set_without_a_file_removes_the_old_one(tmp_path):
    _write_set(tmp_path, "old")
    _write_set(tmp_path, "new", skip={"per_group_accuracy.png"})
    assert sorted(_contents(tmp_path)) == sorted(NAMES[:3])
    assert set(_contents(tmp_path).values()) == {f"new:{n}" for n in NAMES[:3]}


def test_a_folder_in_the_way_is_refused_before_writing(tmp_path):
    _write_set(tmp_path, "old")
    (tmp_path / "results.csv").unlink()
    (tmp_path / "results.csv").mkdir()
    (tmp_path / "results.csv" / "keep.txt").write_text("mine")
    with pytest.raises(OSError, match="results.csv exists and is not a file"):
        _write_set(tmp_path, "new")
    assert (tmp_path / "results.csv" / "keep.txt").read_text() == "mine"
    assert (tmp_path / "results.json").read_text() == "old:results.json"


def test_stale_staging_of_a_dead_process_is_removed(tmp_path):
    stale = tmp_path / f"{_atomic._STAGING}999999999-abc"
    stale.mkdir()
    (stale / "results.json").write_text("x")
    _write_set(tmp_path, "new")
    assert not stale.exists()


def test_atomic_write_keeps_the_old_file(tmp_path):
    path = tmp_path / "speed.json"
    path.write_text("old")

    def write(tmp):
        with open(tmp, "w") as handle:
            handle.write("new, half")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        _atomic.atomic_write(path, write)
    assert [p.name for p in tmp_path.iterdir()] == ["speed.json"]
    assert path.read_text() == "old"


@pytest.fixture
def features_tree(tmp_path):
    from skhsfm.datasets import make_spurious_embeddings

    root = tmp_path / "features"
    root.mkdir()
    for split, n in (("train", 120), ("val", 60), ("test", 60)):
        X, y, a, _ = make_spurious_embeddings(n, 8, split=split, random_state=0)
        np.save(root / f"X_{split}.npy", X)
        np.save(root / f"y_{split}.npy", y)
        np.save(root / f"env_{split}.npy", a)
    return root


def _features_argv(root, out):
    argv = ["benchmark", "--dataset", "dominoes", "--root", str(root)]
    argv += ["--seeds", "1", "--methods", "erm", "dfr", "--quiet"]
    return argv + ["--out", str(out)]


@pytest.mark.parametrize(
    "writer", ["write_summary_csv", "write_per_seed_csv", "_dump_json", "write_figure"]
)
def test_benchmark_outputs_fail_as_one_line_and_keep_the_old_run(
    features_tree, tmp_path, capsys, monkeypatch, writer
):
    from skhsfm.cli import _report

    out = tmp_path / "out"
    argv = _features_argv(features_tree, out) + TINY_METHODS
    assert _run(argv, capsys)[0] == 0
    before = {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()}

    def full(path, *args):
        with open(path, "w") as handle:
            handle.write("partial")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(_report, writer, full)
    status, _, err = _run(argv, capsys)
    assert status == 1
    lines = err.strip().splitlines()
    assert lines[-1].startswith("skhsfm: error: --out") and "No space left" in lines[-1]
    assert "Traceback" not in err
    after = {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()}
    assert after == before
    assert sorted(p.name for p in out.iterdir() if p.is_dir()) == []


# ------------------------------------------------ 7. one line per input error


def _arrays(root, X, y=None, env=None):
    root.mkdir(exist_ok=True)
    for split in ("train", "val", "test"):
        n = X.shape[0]
        np.save(root / f"X_{split}.npy", X)
        np.save(root / f"y_{split}.npy", np.arange(n) % 2 if y is None else y)
        np.save(
            root / f"env_{split}.npy", (np.arange(n) // 2) % 2 if env is None else env
        )


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda rng: np.where(rng.rand(16, 4) > 0.9, np.nan, 1.0), "NaN or infinite"),
        (lambda rng: np.full((16, 4), np.inf), "NaN or infinite"),
        (lambda rng: np.full((16, 8, 8, 3), np.nan), "NaN or infinite"),
        (lambda rng: rng.rand(16, 8, 8, 3) * -5, "outside"),
        (lambda rng: np.full((16, 8, 8, 3), 70000, dtype=np.int64), "outside 0-65535"),
    ],
)
def test_bad_arrays_are_one_line(tmp_path, capsys, make, message):
    root = tmp_path / "bad"
    _arrays(root, make(np.random.RandomState(0)))
    argv = _features_argv(root, tmp_path / "out")
    status, _, err = _run(argv + ["--backbone-epochs", "1"] + TINY_METHODS, capsys)
    assert status == 1
    (line,) = err.strip().splitlines()
    assert line.startswith("skhsfm: error: ") and "X_train.npy" in line
    assert message in line


@pytest.mark.parametrize(
    "labels, message",
    [
        (np.array(["a", "b"] * 8), "integer labels"),
        (np.full(16, np.nan), "integer labels"),
        (np.zeros(0, dtype=int), "split is empty"),
    ],
)
def test_bad_label_files_are_one_line(tmp_path, capsys, labels, message):
    root = tmp_path / "bad"
    _arrays(root, np.random.RandomState(0).rand(16, 4), y=labels)
    status, _, err = _run(_features_argv(root, tmp_path / "out"), capsys)
    assert status == 1
    (line,) = err.strip().splitlines()
    assert line.startswith("skhsfm: error: ") and "y_train.npy" in line
    assert message in line


def test_truncated_array_file_is_one_line(tmp_path, capsys):
    root = tmp_path / "bad"
    _arrays(root, np.random.RandomState(0).rand(16, 4))
    data = (root / "y_val.npy").read_bytes()
    (root / "y_val.npy").write_bytes(data[: len(data) - 20])
    status, _, err = _run(_features_argv(root, tmp_path / "out"), capsys)
    assert status == 1
    (line,) = err.strip().splitlines()
    assert "y_val.npy: could not read a numpy array" in line


def test_unexpected_errors_are_one_line_and_traceback_on_request(
    features_tree, tmp_path, capsys, monkeypatch
):
    from skhsfm.cli import benchmark

    def broken(*args, **kwargs):
        raise KeyError("something internal")

    monkeypatch.setattr(benchmark, "run_seeds", broken)
    argv = _features_argv(features_tree, tmp_path / "out")
    status, _, err = _run(argv, capsys)
    assert status == 1
    (line,) = err.strip().splitlines()
    assert line.startswith("skhsfm: error: KeyError:") and "--traceback" in line
    with pytest.raises(KeyError, match="something internal"):
        main(argv + ["--traceback"])


def test_cli_error_messages_are_one_line(capsys, monkeypatch, features_tree, tmp_path):
    from skhsfm.cli import benchmark

    def multiline(*args, **kwargs):
        raise CLIError("first part\nsecond part")

    monkeypatch.setattr(benchmark, "run_seeds", multiline)
    status, _, err = _run(_features_argv(features_tree, tmp_path / "out"), capsys)
    assert status == 1 and err.strip() == "skhsfm: error: first part second part"


# ------------------------------------------- issue 23: leaks, Ctrl-C, --cache


def _resource_warnings(read):
    """ResourceWarnings raised while ``read()`` fails and its garbage goes."""
    import gc
    import warnings

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            read()
        except Exception:
            pass
        gc.collect()
    return [w for w in caught if issubclass(w.category, ResourceWarning)]


def test_a_truncated_benchmark_cache_file_is_closed(tmp_path):
    from skhsfm.cli._cache import CacheInvalid

    path, key = cache_file(str(tmp_path), "p", ["x"])
    write_cache(path, key, _splits(), None, ["a"], {})
    _truncate(__import__("pathlib").Path(path))  # numpy leaked the handle
    with pytest.raises(CacheInvalid):
        read_cache(path, key)
    assert _resource_warnings(lambda: read_cache(path, key)) == []


def test_a_truncated_embedding_cache_entry_is_closed(tmp_path):
    from skhsfm.embedding._cache import _read_entry

    path = tmp_path / "entry.npz"
    np.savez(path, key=np.array("k"), embedding=np.zeros(4, dtype=np.float32))
    assert _read_entry(str(path), "k", 4)[1] is None
    _truncate(path)
    row, reason = _read_entry(str(path), "k", 4)
    assert row is None and "cannot be read" in reason
    assert _resource_warnings(lambda: _read_entry(str(path), "k", 4)) == []


def test_a_late_ctrl_c_exits_130(features_tree, tmp_path, capsys, monkeypatch):
    import skhsfm.cli
    from skhsfm.cli import benchmark

    class LateReporter:
        """Ctrl-C while the command prints its last line ("done in ...")."""

        def __init__(self, *args, **kwargs):
            pass

        def log(self, message):
            raise KeyboardInterrupt

    monkeypatch.setattr(benchmark, "run", lambda settings, argv=(): 0)
    monkeypatch.setattr(skhsfm.cli, "Reporter", LateReporter)
    argv = _features_argv(features_tree, tmp_path / "out")
    argv.remove("--quiet")
    try:
        status, _, err = _run(argv, capsys)
    except KeyboardInterrupt:  # would end the process by the signal (status -2)
        pytest.fail("a late KeyboardInterrupt escaped main()")
    assert status == 130 and err.strip() == "skhsfm: interrupted"


@pytest.mark.parametrize("where", ["a file", "under a file"])
def test_cache_that_is_a_file_is_an_error_as_for_memory(
    features_tree, tmp_path, capsys, where
):
    blocker = tmp_path / "blocker"
    blocker.write_text("x")
    cache = blocker if where == "a file" else blocker / "cache"
    argv = _features_argv(features_tree, tmp_path / "out") + TINY_METHODS
    status, _, err = _run(argv + ["--cache", str(cache)], capsys)
    assert status == 1
    (line,) = err.strip().splitlines()
    assert line.startswith(f"skhsfm: error: --cache='{cache}'")
    assert "Pass a folder you can write to" in line and "--no-cache" in line
    assert blocker.read_text() == "x"
    assert not (tmp_path / "out" / "results.json").exists()  # nothing was run
