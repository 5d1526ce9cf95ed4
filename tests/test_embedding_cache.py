"""Per-image ``memory`` entries and per-process backbone sharing of the embedder."""

import json
import os
import pickle
import warnings

import numpy as np
import pytest
from sklearn.base import clone

from skhsfm.embedding import BackboneEmbedder
from skhsfm.embedding._runtime import load_counts

torch = pytest.importorskip("torch")
Image = pytest.importorskip("PIL.Image")

CALLS = {"n": 0}


class TinyNet(torch.nn.Module):
    """(n, 3, H, W) -> (n, 5); counts forward calls outside the module."""

    def __init__(self, seed=0):
        super().__init__()
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            self.conv = torch.nn.Conv2d(3, 5, kernel_size=3)

    def forward(self, x):
        CALLS["n"] += len(x)
        return self.conv(x).mean(dim=(2, 3))


@pytest.fixture(scope="module")
def images():
    rng = np.random.RandomState(0)
    return rng.randint(0, 256, size=(9, 12, 12, 3)).astype(np.uint8)


def entries(folder):
    found = []
    for dirpath, _, files in os.walk(folder):
        found += [os.path.join(dirpath, f) for f in files if f.endswith(".npz")]
    return sorted(found)


def test_shards_and_full_list_share_entries(images, tmp_path):
    embedder = BackboneEmbedder(TinyNet(), device="cpu", memory=tmp_path)
    expected = BackboneEmbedder(TinyNet(), device="cpu").transform(images)
    CALLS["n"] = 0
    for start in range(0, 9, 4):  # shard by shard
        embedder.transform(images[start : start + 4])
    assert CALLS["n"] == 9
    full = embedder.transform(images)  # the full list: all hits
    assert CALLS["n"] == 9
    # batches of 4 and of 9 differ in the last float32 bits only
    np.testing.assert_allclose(full, expected, rtol=1e-5, atol=1e-6)
    assert len(entries(tmp_path)) == 9
    # a list of the same images (and a reordered subset) hits the stack's entries
    listed = embedder.transform([images[i] for i in (8, 0, 3)])
    assert CALLS["n"] == 9
    np.testing.assert_array_equal(listed, full[[8, 0, 3]])
    # the other way round: a full-list cache serves a shard
    other = tmp_path / "other"
    again = clone(embedder).set_params(memory=other)
    whole = again.transform(images)
    calls = CALLS["n"]
    np.testing.assert_array_equal(again.transform(images[2:5]), whole[2:5])
    assert CALLS["n"] == calls
    # no temporary files are left behind
    assert not [
        f for _, _, files in os.walk(tmp_path) for f in files if f.endswith(".tmp")
    ]


def test_files_are_keyed_on_path_and_mtime(images, tmp_path):
    paths = []
    for i, array in enumerate(images[:3]):
        path = tmp_path / f"img{i}.png"
        Image.fromarray(array).save(path)
        paths.append(str(path))
    embedder = BackboneEmbedder(TinyNet(), device="cpu", memory=tmp_path / "cache")
    CALLS["n"] = 0
    first = embedder.transform(paths)
    embedder.transform(paths[1:])
    assert CALLS["n"] == 3
    Image.fromarray(images[5]).save(paths[0])  # rewritten: new size/mtime
    os.utime(paths[0], ns=(1, 1))
    changed = embedder.transform(paths)
    assert CALLS["n"] == 4
    np.testing.assert_array_equal(changed[1:], first[1:])


def test_mismatching_entry_is_recomputed_with_a_warning(images, tmp_path):
    embedder = BackboneEmbedder(TinyNet(), device="cpu", memory=tmp_path)
    expected = embedder.transform(images[:3])
    files = entries(tmp_path)
    # overwrite one entry with another array (the old whole-list bug: (5, 7))
    np.save(open(files[0], "wb"), np.zeros((5, 7), dtype=np.float32))
    with pytest.warns(UserWarning, match="do not match what they were written"):
        out = embedder.transform(images[:3])
    assert out.shape == (3, 5)
    np.testing.assert_array_equal(out, expected)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # rewritten: reads clean now
        np.testing.assert_array_equal(embedder.transform(images[:3]), expected)


@pytest.mark.parametrize(
    "damage",
    ["truncate", "garbage", "other_key", "wrong_shape", "wrong_dtype", "tampered"],
)
def test_every_kind_of_bad_entry_is_caught(images, tmp_path, damage):
    """Entries are verified files: a key, a checksum, the backbone's shape."""
    from skhsfm._utils.verified import MANIFEST, write_verified

    embedder = BackboneEmbedder(TinyNet(), device="cpu", memory=tmp_path)
    expected = embedder.transform(images[:2])
    path = entries(tmp_path)[0]
    with np.load(path) as entry:
        manifest, row = entry[MANIFEST], entry["embedding"]
    key = json.loads(str(manifest[()]))["key"]
    if damage == "truncate":
        data = open(path, "rb").read()
        open(path, "wb").write(data[: len(data) // 2])
    elif damage == "garbage":
        open(path, "wb").write(b"not an entry")
    elif damage == "other_key":  # a valid entry of another image
        write_verified(path, {"embedding": row}, key + "x")
    elif damage == "wrong_shape":
        write_verified(path, {"embedding": row[:3]}, key)
    elif damage == "wrong_dtype":
        write_verified(path, {"embedding": row.astype(np.float64)}, key)
    else:  # a value changed under the old manifest: the checksum tells
        np.savez(open(path, "wb"), embedding=row + 1, **{MANIFEST: manifest})
    CALLS["n"] = 0
    with pytest.warns(UserWarning, match="recomputing them"):
        out = embedder.transform(images[:2])
    assert CALLS["n"] == 1  # only the bad entry
    np.testing.assert_array_equal(out, expected)


def test_uncreatable_memory_folder_names_memory(images, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("a file, not a folder")
    embedder = BackboneEmbedder(TinyNet(), device="cpu", memory=blocker / "cache")
    with pytest.raises(OSError, match="memory=.*cannot create"):
        embedder.transform(images[:2])


def test_joblib_memory_and_no_location(images, tmp_path):
    from joblib import Memory

    embedder = BackboneEmbedder(
        TinyNet(), device="cpu", memory=Memory(str(tmp_path), verbose=0)
    )
    embedder.transform(images[:2])
    assert len(entries(tmp_path)) == 2
    off = BackboneEmbedder(TinyNet(), device="cpu", memory=Memory(None))
    off.transform(images[:2])  # caches nothing, writes nothing


def test_equal_embedders_share_one_load_per_process(images):
    def loads():
        return sum(load_counts().values())

    first = BackboneEmbedder(TinyNet(seed=7), device="cpu")
    before = loads()
    out = first.transform(images)
    assert loads() == before + 1
    # a clone, an unpickled copy and an equal module load nothing more
    for other in (
        clone(first),
        pickle.loads(pickle.dumps(first)),
        BackboneEmbedder(TinyNet(seed=7), device="cpu"),
    ):
        np.testing.assert_array_equal(other.transform(images), out)
    assert loads() == before + 1
    # other weights are another model
    BackboneEmbedder(TinyNet(seed=8), device="cpu").transform(images)
    assert loads() == before + 2


def test_library_backbones_share_by_load_settings(images):
    pytest.importorskip("torchvision")
    settings = dict(model_name="resnet18", pretrained=None, device="cpu")
    first = BackboneEmbedder("torchvision", **settings)
    before = sum(load_counts().values())
    out = first.transform(images[:2])
    again = BackboneEmbedder("torchvision", batch_size=1, **settings)
    np.testing.assert_array_equal(again.transform(images[:2]), out)
    assert sum(load_counts().values()) == before + 1
