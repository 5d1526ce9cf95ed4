"""Tests of skhsfm._utils.verified: the one layer of keyed, checksummed,
atomically written files under the package's three stores."""

import json
import os

import numpy as np
import pytest

from skhsfm._utils import atomic
from skhsfm._utils.verified import (
    MANIFEST,
    FileInvalid,
    key_digest,
    read_json,
    read_verified,
    verified_shapes,
    write_json,
    write_verified,
)

ARRAYS = {
    "X": np.arange(12, dtype=np.float32).reshape(3, 4),
    "names": np.array(["a", "b"]),
    "seconds": np.float64(1.5),
}


def _assert_same(found, expected):
    assert set(found) == set(expected)
    for name, value in expected.items():
        np.testing.assert_array_equal(found[name], value)
        assert found[name].dtype == np.asarray(value).dtype


def test_round_trip_and_cheap_look(tmp_path):
    path = tmp_path / "f.npz"
    write_verified(path, ARRAYS, "key 1")
    _assert_same(read_verified(path, "key 1"), ARRAYS)
    assert verified_shapes(path, "key 1") == {
        "X": ((3, 4), np.dtype(np.float32)),
        "names": ((2,), np.dtype("<U1")),
        "seconds": ((), np.dtype(np.float64)),
    }
    assert sorted(os.listdir(tmp_path)) == ["f.npz"]  # no temporary left


def _rewrite(path, change):
    """Rewrite the file with ``change(arrays)`` applied, keeping its manifest."""
    with np.load(path) as stored:
        arrays = {name: stored[name] for name in stored.files}
    change(arrays)
    with open(path, "wb") as handle:
        np.savez(handle, **arrays)


def _manifest(arrays, **changes):
    manifest = json.loads(str(arrays[MANIFEST][()]))
    manifest.update(changes)
    arrays[MANIFEST] = np.asarray(json.dumps(manifest))


BAD = {
    "other key": (lambda a: _manifest(a, key="key 2"), "other settings", True),
    "no manifest": (lambda a: a.pop(MANIFEST), "no checksums", True),
    "extra array": (lambda a: a.update(y=np.zeros(2)), "arrays differ", True),
    "tampered value": (lambda a: a.update(X=a["X"] + 1), "checksum", False),
    "other shape": (lambda a: a.update(X=a["X"][:2]), "shape", True),
    "other dtype": (lambda a: a.update(X=a["X"].astype(np.float64)), "dtype", True),
}


@pytest.mark.parametrize("bad", list(BAD))
def test_every_mismatch_is_named(tmp_path, bad):
    change, reason, seen_cheaply = BAD[bad]
    path = tmp_path / "f.npz"
    write_verified(path, ARRAYS, "key 1")
    _rewrite(path, change)
    with pytest.raises(FileInvalid, match=reason):
        read_verified(path, "key 1")
    if seen_cheaply:
        with pytest.raises(FileInvalid, match=reason):
            verified_shapes(path, "key 1")
    else:  # the cheap look does not read the data
        verified_shapes(path, "key 1")


@pytest.mark.parametrize("content", [None, b"", b"garbage", "half"])
def test_unreadable_files_are_invalid_and_nothing_else(tmp_path, content):
    path = tmp_path / "f.npz"
    write_verified(path, ARRAYS, "k")
    if content == "half":
        data = path.read_bytes()
        path.write_bytes(data[: len(data) // 2])
    elif content is None:
        path.unlink()
    else:
        path.write_bytes(content)
    for read in (read_verified, verified_shapes):
        with pytest.raises(FileInvalid, match="cannot be read"):
            read(path, "k")


def test_a_failed_write_leaves_the_old_file(tmp_path, monkeypatch):
    path = tmp_path / "f.npz"
    write_verified(path, ARRAYS, "k")

    def full(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(np, "savez", full)
    with pytest.raises(OSError, match="No space"):
        write_verified(path, {"X": np.zeros(3)}, "k")
    monkeypatch.undo()
    _assert_same(read_verified(path, "k"), ARRAYS)
    assert sorted(os.listdir(tmp_path)) == ["f.npz"]


def test_durable_writes_flush_and_others_do_not(tmp_path, monkeypatch):
    flushed = []
    monkeypatch.setattr(atomic, "_fsync", flushed.append)
    write_verified(tmp_path / "a.npz", ARRAYS, "k")
    write_verified(tmp_path / "b.npz", ARRAYS, "k", durable=False)
    write_json(tmp_path / "c.json", {"a": 1}, durable=False)
    assert len(flushed) == 1 and flushed[0].endswith(".npz")


def test_the_manifest_name_is_reserved(tmp_path):
    with pytest.raises(ValueError, match="manifest"):
        write_verified(tmp_path / "f.npz", {MANIFEST: np.zeros(1)}, "k")


def test_json_manifests(tmp_path):
    path = tmp_path / "m.json"
    write_json(path, {"format": 2, "names": ["a"]})
    assert read_json(path) == {"format": 2, "names": ["a"]}
    assert read_json(tmp_path / "missing.json") is None
    path.write_text("[1, 2]")  # JSON, but not an object
    assert read_json(path) is None
    path.write_text("{not json")
    assert read_json(path) is None


def test_key_digest_names_files():
    assert key_digest("a") == key_digest("a") != key_digest("b")
    assert len(key_digest("a")) == 32 and len(key_digest("a", 8)) == 16
    int(key_digest("a"), 16)  # hex
