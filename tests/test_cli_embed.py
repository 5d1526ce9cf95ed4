"""``skhsfm embed``: images to a .npy file, resumable by shards, on three backends."""

import os

import numpy as np
import pytest

from skhsfm.cli import embed as embed_command
from skhsfm.cli import main
from skhsfm.embedding import BackboneEmbedder

pytest.importorskip("torchvision")
Image = pytest.importorskip("PIL.Image")

BACKBONE = ["--backbone", "resnet18", "--weights", "none", "--device", "cpu"]


@pytest.fixture
def folder(tmp_path):
    """Ten small PNGs, two of them in a subfolder, plus a file that is not one."""
    rng = np.random.RandomState(0)
    root = tmp_path / "images"
    (root / "sub").mkdir(parents=True)
    for i in range(10):
        where = root / "sub" if i >= 8 else root
        array = rng.randint(0, 256, size=(20, 24, 3)).astype(np.uint8)
        Image.fromarray(array).save(where / f"img{i}.png")
    (root / "notes.txt").write_text("not an image")
    return root


def _expected(paths, batch_size):
    embedder = BackboneEmbedder(
        "torchvision",
        model_name="resnet18",
        pretrained=None,
        device="cpu",
        batch_size=batch_size,
    )
    return embedder.transform(paths)


def _run(argv, capsys):
    status = main(argv)
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def test_folder_to_npy_with_paths_in_order(folder, tmp_path, capsys):
    out = tmp_path / "emb.npy"
    argv = ["embed", str(folder), "--out", str(out), "--shard-size", "4"]
    status, stdout, _ = _run(argv + ["--batch-size", "4"] + BACKBONE, capsys)
    assert status == 0
    paths = (tmp_path / "emb.paths.txt").read_text().splitlines()
    assert paths == sorted(paths) and len(paths) == 10
    assert all(os.path.isabs(p) and p.endswith(".png") for p in paths)
    X = np.load(out)
    assert X.shape == (10, 512) and X.dtype == np.float32
    # shards of 4 with batches of 4: the batches of a plain transform
    np.testing.assert_array_equal(X, _expected(paths, 4))
    assert not os.path.exists(str(out) + ".shards")  # joined and removed
    assert "10 x 512" in stdout


def test_glob_and_path_list(folder, tmp_path, capsys):
    listed = tmp_path / "list.txt"
    chosen = [folder / "img3.png", folder / "sub" / "img9.png", folder / "img0.png"]
    listed.write_text("\n".join(os.path.relpath(p, tmp_path) for p in chosen) + "\n")
    out = tmp_path / "list.npy"
    assert main(["embed", str(listed), "--out", str(out), "--quiet"] + BACKBONE) == 0
    assert (tmp_path / "list.paths.txt").read_text().splitlines() == [
        str(p) for p in chosen
    ]  # the list's order
    np.testing.assert_allclose(
        np.load(out), _expected([str(p) for p in chosen], 64), rtol=1e-5, atol=1e-6
    )
    pattern = str(folder / "img[1-2].png")
    out = tmp_path / "glob.npy"
    assert main(["embed", pattern, "--out", str(out), "--quiet"] + BACKBONE) == 0
    assert np.load(out).shape == (2, 512)
    capsys.readouterr()


def test_resumes_from_finished_shards(folder, tmp_path, capsys, monkeypatch):
    broken = folder / "img6.png"  # in the second shard of four
    good = broken.read_bytes()
    broken.write_bytes(b"not a png")
    out = tmp_path / "emb.npy"
    argv = ["embed", str(folder), "--out", str(out), "--shard-size", "4"] + BACKBONE
    status, _, err = _run(argv, capsys)
    assert status == 1
    last = err.strip().splitlines()[-1]  # after the progress lines
    assert last.startswith("skhsfm: error:") and "Traceback" not in err
    assert "img6.png" in last and "1 of 3 shards are done" in last
    assert not out.exists()

    broken.write_bytes(good)
    computed = []
    original = embed_command._embed_shard

    def counting(embedder, paths):
        computed.append(paths)
        return original(embedder, paths)

    monkeypatch.setattr(embed_command, "_embed_shard", counting)
    status, _, err = _run(argv, capsys)
    assert status == 0, err
    assert len(computed) == 2  # the first shard was not embedded again
    paths = (tmp_path / "emb.paths.txt").read_text().splitlines()
    np.testing.assert_allclose(np.load(out), _expected(paths, 64), rtol=1e-5, atol=1e-6)


def test_a_corrupted_shard_is_removed_and_computed_again(
    folder, tmp_path, capsys, monkeypatch
):
    """Shards are verified files: resuming looks at their key and shape, the
    join checks their checksums; a shard whose bytes changed is removed and
    the next run embeds it again."""
    out = tmp_path / "emb.npy"
    argv = ["embed", str(folder), "--out", str(out), "--shard-size", "4"] + BACKBONE
    finished = []
    original = embed_command.ShardStore.join

    def keep_shards(store, *args):  # stop before the join: shards stay
        finished.extend(sorted(os.listdir(store.folder)))
        raise RuntimeError("stopped before the join")

    monkeypatch.setattr(embed_command.ShardStore, "join", keep_shards)
    status, _, err = _run(argv + ["--quiet"], capsys)
    assert status != 0 and "stopped before the join" in err
    assert finished == ["manifest.json"] + [f"shard-00000{k}.npz" for k in range(3)]
    shard = tmp_path / "emb.npy.shards" / "shard-000001.npz"
    data = bytearray(shard.read_bytes())
    data[len(data) // 2] ^= 0xFF  # one flipped byte inside the data
    shard.write_bytes(bytes(data))
    monkeypatch.setattr(embed_command.ShardStore, "join", original)
    status, _, err = _run(argv, capsys)
    assert status == 1 and "shard 1" in err and "run the same command again" in err
    assert not shard.exists() and not out.exists()
    computed = []
    embed = embed_command._embed_shard

    def counting(embedder, paths):
        computed.append(paths)
        return embed(embedder, paths)

    monkeypatch.setattr(embed_command, "_embed_shard", counting)
    status, _, err = _run(argv, capsys)
    assert status == 0, err
    assert len(computed) == 1  # only the removed shard
    paths = (tmp_path / "emb.paths.txt").read_text().splitlines()
    np.testing.assert_allclose(np.load(out), _expected(paths, 64), rtol=1e-5, atol=1e-6)


def test_other_settings_do_not_mix_with_old_shards(folder, tmp_path, capsys):
    out = tmp_path / "emb.npy"
    shards = tmp_path / "emb.npy.shards"
    shards.mkdir()
    (shards / "manifest.json").write_text('{"format": 1, "images": 3}')
    argv = ["embed", str(folder), "--out", str(out)] + BACKBONE
    status, _, err = _run(argv, capsys)
    assert status == 1 and "holds shards of another run" in err
    assert "--restart" in err
    status, _, err = _run(argv + ["--restart", "--quiet"], capsys)
    assert status == 0, err


@pytest.mark.parametrize(
    "images, message",
    [
        ("missing-folder", "does not exist"),
        ("empty", "no images in folder"),
        ("list", "lists 1 path(s) that are not files"),
    ],
)
def test_input_errors_are_one_line(tmp_path, capsys, images, message):
    (tmp_path / "empty").mkdir()
    (tmp_path / "list").write_text("nowhere.png\n")
    argv = ["embed", str(tmp_path / images), "--out", str(tmp_path / "o.npy")]
    status, _, err = _run(argv + BACKBONE, capsys)
    assert status == 1
    assert err.strip().startswith("skhsfm: error:") and message in err
    assert len(err.strip().splitlines()) == 1


def test_argument_errors(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["embed", str(tmp_path), "--out", str(tmp_path / "o.txt")] + BACKBONE)
    assert exit_info.value.code == 2
    assert "--out must name a .npy file" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["embed", str(tmp_path), "--out", "o.npy", "--address", "x"] + BACKBONE)
    assert "--address needs --backend dask" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["embed", str(tmp_path), "--out", "o.npy", "--shard-size", "0"] + BACKBONE)
    assert "--shard-size must be >= 1" in capsys.readouterr().err


@pytest.mark.distributed
def test_dask_backend_on_an_existing_scheduler(folder, tmp_path, capsys, dask_cluster):
    out = tmp_path / "dask.npy"
    argv = ["embed", str(folder), "--out", str(out), "--shard-size", "4"]
    argv += ["--batch-size", "4", "--backend", "dask"]
    argv += ["--address", dask_cluster.scheduler_address, "--quiet"]
    status, _, err = _run(argv + BACKBONE, capsys)
    assert status == 0, err
    paths = (tmp_path / "dask.paths.txt").read_text().splitlines()
    np.testing.assert_array_equal(np.load(out), _expected(paths, 4))


@pytest.mark.distributed
def test_ray_backend(folder, tmp_path, capsys, ray_session):
    out = tmp_path / "ray.npy"
    argv = ["embed", str(folder), "--out", str(out), "--shard-size", "4"]
    argv += ["--batch-size", "4", "--backend", "ray", "--workers", "2", "--quiet"]
    status, _, err = _run(argv + BACKBONE, capsys)
    assert status == 0, err
    paths = (tmp_path / "ray.paths.txt").read_text().splitlines()
    np.testing.assert_allclose(np.load(out), _expected(paths, 4), rtol=1e-5, atol=1e-6)
    assert ray_session.is_initialized()  # the session's Ray was used, not shut
