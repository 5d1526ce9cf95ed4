"""Fault injection: malformed datasets and images of unusual depth.

Classes 4, 5 and 7 (files) of the reliability issue: loaders refuse
duplicates, conflicts, unreadable metadata and empty requested splits with an
error naming the file, the line and the image; images that are not 8-bit are
converted by their value range (or refused), never clipped; unreadable weight
files and cache folders are named.
"""

import os

import numpy as np
import pytest

from skhsfm.datasets import (
    load_celeba,
    load_dominoes_arrays,
    load_metashift,
    load_waterbirds,
)

PIL = pytest.importorskip("PIL")
from PIL import Image  # noqa: E402

# ---------------------------------------------------------- 4. the loaders

WB_HEADER = "img_id,img_filename,y,split,place,place_filename\n"
WB_ROWS = [
    "1,001.Albatross/a1.jpg,1,0,1,/p/1.jpg",
    "2,001.Albatross/a2.jpg,1,1,0,/p/2.jpg",
    "3,002.Sparrow/s1.jpg,0,0,0,/p/3.jpg",
    "4,002.Sparrow/s2.jpg,0,2,1,/p/4.jpg",
]


def _waterbirds(root, rows=WB_ROWS, header=WB_HEADER):
    root.mkdir(parents=True, exist_ok=True)
    (root / "metadata.csv").write_text(header + "\n".join(rows) + "\n")
    return root


@pytest.mark.parametrize(
    "extra, message",
    [
        # the same row twice: counted twice
        (WB_ROWS[0], r"line 6: image '001.Albatross/a1.jpg' .* first at line 2, "),
        # the same image in train and test with another label: leakage
        (
            "9,001.Albatross/a1.jpg,0,2,1,/p/9.jpg",
            r"line 6: .*a1.jpg.*first at line 2, as a conflicting row "
            r"\(img_id '1' vs '9', y '1' vs '0', split '0' vs '2'",
        ),
        # another spelling of the same file
        ("9,./001.Albatross//a1.jpg,1,1,1,/p/9.jpg", r"line 6: .*first at line 2"),
        # one id for two images
        ("3,002.Sparrow/s9.jpg,0,1,1,/p/9.jpg", r"line 6: .*'3' \(img_id\)"),
    ],
)
def test_waterbirds_refuses_duplicates_and_conflicts(tmp_path, extra, message):
    root = _waterbirds(tmp_path / "wb", WB_ROWS + [extra])
    with pytest.raises(ValueError, match=message) as info:
        load_waterbirds(root, check_files=False)
    assert str(root / "metadata.csv") in str(info.value)


@pytest.mark.parametrize(
    "content, message",
    [
        (WB_HEADER + "1,001.Albatross/a1.jpg,1\n", r"line 2: the row has 3 field"),
        (WB_HEADER + WB_ROWS[0] + ",extra\n", r"line 2: the row has 7 field"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\xff\xfe binary", "not a UTF-8 text file"),
        (WB_HEADER.encode() + b"1,a\xff\xfe.jpg,1,0,1,p\n", "not a UTF-8 text file"),
        ("img_id,img_id,img_filename,y,split,place,place_filename\n", "more than once"),
        (WB_HEADER + '1,"unterminated,1,0,1,p\n', r"the row has 2 field"),
    ],
)
def test_waterbirds_unreadable_metadata_names_the_file(tmp_path, content, message):
    root = tmp_path / "wb"
    root.mkdir()
    path = root / "metadata.csv"
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content)
    with pytest.raises(ValueError, match=message) as info:
        load_waterbirds(root, check_files=False)
    assert str(path) in str(info.value)


def test_line_numbers_count_blank_and_quoted_lines(tmp_path):
    rows = [WB_ROWS[0], "", '2,"001.Albatross/a\n2.jpg",1,1,0,p', "3,x.jpg,7,0,0,p"]
    root = _waterbirds(tmp_path / "wb", rows)
    with pytest.raises(ValueError, match="line 6: column 'y' has value '7'"):
        load_waterbirds(root, check_files=False)


@pytest.mark.parametrize("split", ["val", ["train", "val"], "test"])
def test_an_empty_requested_split_is_an_error(tmp_path, split):
    rows = [r for r in WB_ROWS if r.split(",")[3] == "0"]  # train only
    root = _waterbirds(tmp_path / "wb", rows)
    with pytest.raises(ValueError, match=r"requested split\(s\) \['(val|test)'"):
        load_waterbirds(root, split=split, check_files=False)
    assert load_waterbirds(root, split="train", check_files=False).target.size == 2
    assert load_waterbirds(root, check_files=False).target.size == 2  # all there is


def _write(path, text):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def _celeba(root, attr_rows, part_rows):
    _write(root / "list_attr_celeba.csv", "image_id,Blond_Hair,Male\n" + attr_rows)
    _write(root / "list_eval_partition.csv", "image_id,partition\n" + part_rows)
    return root


ATTR = "1.jpg,1,-1\n2.jpg,-1,1\n3.jpg,1,1\n"
PART = "1.jpg,0\n2.jpg,1\n3.jpg,2\n"


@pytest.mark.parametrize(
    "attr, part, file, message",
    [
        # a later partition row must not override an earlier one
        (ATTR, PART + "1.jpg,2\n", "list_eval_partition.csv", "line 5: image '1.jpg'"),
        (ATTR, PART + "3.jpg,2\n", "list_eval_partition.csv", "an identical row"),
        (ATTR + "2.jpg,1,1\n", PART, "list_attr_celeba.csv", "line 5: image '2.jpg'"),
        (ATTR + "4.jpg,1\n", PART, "list_attr_celeba.csv", "line 5: the row has 2"),
    ],
)
def test_celeba_refuses_duplicates(tmp_path, attr, part, file, message):
    root = _celeba(tmp_path / "celeba", attr, part)
    with pytest.raises(ValueError, match=message) as info:
        load_celeba(root, check_files=False)
    assert str(root / file) in str(info.value)


def test_celeba_split_csv_duplicates_and_empty_splits(tmp_path):
    root = tmp_path / "celeba"
    rows = "image_id,Blond_Hair,Male,split\na.jpg,1,0,0\nb.jpg,0,1,2\n"
    _write(root / "celeba_split.csv", rows + "a.jpg,1,0,2\n")
    with pytest.raises(ValueError, match="celeba_split.csv, line 4: image 'a.jpg'"):
        load_celeba(root, check_files=False)
    _write(root / "celeba_split.csv", rows)
    with pytest.raises(ValueError, match=r"celeba_split.csv .*\['val'\] have no"):
        load_celeba(root, split="val", check_files=False)
    root = _celeba(tmp_path / "kaggle", ATTR, "1.jpg,0\n2.jpg,0\n3.jpg,2\n")
    with pytest.raises(ValueError, match=r"list_eval_partition.csv .*\['val'\]"):
        load_celeba(root, split="val", check_files=False)


def _png(path, value, size=4):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (size, size), (value, value, value)).save(path)


def _metashift(root, extra=()):
    for folder, name, value in [
        ("train/cat/cat(sofa)", "1.png", 10),
        ("train/dog/dog(bench)", "2.png", 20),
        ("test/cat/cat(shelf)", "3.png", 30),
        ("test/dog/dog(shelf)", "4.png", 40),
        *extra,
    ]:
        _png(root / folder / name, value)
    return root


def test_metashift_empty_and_missing_splits(tmp_path):
    root = _metashift(tmp_path / "ms")
    for split in ("val", ["train", "val"]):
        with pytest.raises(ValueError, match=r"requested split\(s\) \['val'\]"):
            load_metashift(root, split=split)
    assert load_metashift(root).target.size == 4


@pytest.mark.parametrize(
    "copy, message",
    [
        (("test/cat/cat(shelf)", "1.png", 10), "two splits"),
        (("train/dog/dog(bench)", "1.png", 10), "two classes"),
    ],
)
def test_metashift_refuses_one_image_in_two_places(tmp_path, copy, message):
    root = _metashift(tmp_path / "ms", [copy])
    with pytest.raises(ValueError, match=f"same image is in {message}.*1.png"):
        load_metashift(root)


def test_metashift_allows_same_names_with_other_content(tmp_path):
    """Numbered files (1.png in every folder) are different images."""
    root = _metashift(tmp_path / "ms", [("test/cat/cat(shelf)", "1.png", 99)])
    root = _metashift(root, [("train/cat/cat(bed)", "1.png", 10)])  # own overlap
    assert load_metashift(root).target.size == 6


def _arrays(root, n=(6, 4, 5), y=None):
    root.mkdir(parents=True, exist_ok=True)
    for s, k in zip(("train", "val", "test"), n):
        np.save(root / f"X_{s}.npy", np.random.RandomState(0).rand(k, 3))
        np.save(root / f"y_{s}.npy", np.arange(k) % 2 if y is None else y[:k])
        np.save(root / f"env_{s}.npy", (np.arange(k) // 2) % 2)
    return root


@pytest.mark.parametrize(
    "labels, message",
    [
        (np.array(["a", "b"] * 3), r"y_train.npy: y must hold .* dtype <U1"),
        (np.array([b"a", b"b"] * 3), r"y_train.npy: y must hold .* dtype \|S1"),
        (np.array([0.5] * 6), "y_train.npy: y must hold non-negative integer"),
        (np.array([np.nan] * 6), "y_train.npy: y must hold non-negative integer"),
        (np.array([-1] * 6), "y_train.npy: y must hold .* min -1"),
    ],
)
def test_dominoes_label_files_of_the_wrong_kind(tmp_path, labels, message):
    root = _arrays(tmp_path / "dom", y=labels)
    with pytest.raises(ValueError, match=message):
        load_dominoes_arrays(root)


@pytest.mark.parametrize("mmap_mode", [None, "r"])
@pytest.mark.parametrize("name", ["X_val.npy", "y_val.npy", "env_val.npy"])
def test_truncated_dominoes_files_name_the_path(tmp_path, name, mmap_mode):
    root = _arrays(tmp_path / "dom")
    data = (root / name).read_bytes()
    (root / name).write_bytes(data[: len(data) - 9])
    with pytest.raises(ValueError, match="could not read a numpy array") as info:
        load_dominoes_arrays(root, mmap_mode=mmap_mode)
    assert str(root / name) in str(info.value)


def test_dominoes_object_arrays_and_empty_splits(tmp_path):
    root = _arrays(tmp_path / "dom")
    np.save(root / "X_test.npy", np.array([{"a": 1}] * 5, dtype=object))
    with pytest.raises(ValueError, match="X_test.npy: could not read"):
        load_dominoes_arrays(root)
    root = _arrays(tmp_path / "dom2", n=(6, 0, 5))
    with pytest.raises(ValueError, match="the val split is empty"):
        load_dominoes_arrays(root, split="val")
    assert load_dominoes_arrays(root, split="train").target.size == 6


def test_waterbirds_short_row_in_the_command_is_one_line(tmp_path, capsys):
    from skhsfm.cli import main

    root = _waterbirds(tmp_path / "wb", WB_ROWS + ["5,002.Sparrow/x.jpg"])
    status = main(
        ["benchmark", "--dataset", "waterbirds", "--root", str(root), "--quiet"]
        + ["--out", str(tmp_path / "out"), "--device", "cpu"]
    )
    err = capsys.readouterr().err
    assert status == 1
    (line,) = err.strip().splitlines()
    assert line.startswith("skhsfm: error: ") and "metadata.csv, line 6" in line


# ------------------------------------------------------------ 5. the images


def _decode(image):
    from skhsfm.embedding._images import to_pil_rgb

    out = to_pil_rgb(image)
    assert out.mode == "RGB"
    return np.asarray(out)


def test_16bit_png_is_scaled_not_clipped(tmp_path):
    values = (np.arange(32 * 32).reshape(32, 32) * 64).astype(np.uint16)
    path = tmp_path / "deep.png"
    Image.fromarray(values).save(path)
    assert Image.open(path).mode == "I;16"
    rgb = _decode(str(path))
    expected = np.rint(values / 257.0).astype(np.uint8)
    np.testing.assert_array_equal(rgb[..., 0], expected)
    assert (rgb == 255).mean() < 0.01  # convert("RGB") made 99.6% white


@pytest.mark.parametrize(
    "values, expected",
    [
        (np.linspace(0, 1, 16, dtype=np.float32), np.linspace(0, 255, 16)),
        (np.linspace(0, 200, 16, dtype=np.float32), np.linspace(0, 200, 16)),
    ],
)
def test_float_tiff_follows_the_range_rule(tmp_path, values, expected):
    path = tmp_path / "float.tif"
    Image.fromarray(values.reshape(4, 4)).save(path)
    assert Image.open(path).mode == "F"
    rgb = _decode(str(path))
    np.testing.assert_array_equal(rgb[..., 1].ravel(), np.rint(expected))


@pytest.mark.parametrize(
    "values, message",
    [
        (np.full((4, 4), -0.5, np.float32), "float pixels outside"),
        (np.full((4, 4), 1000.0, np.float32), "float pixels outside"),
        (np.full((4, 4), np.nan, np.float32), "NaN or infinite"),
    ],
)
def test_float_tiff_out_of_range_is_refused(tmp_path, values, message):
    path = tmp_path / "bad.tif"
    Image.fromarray(values).save(path)
    with pytest.raises(ValueError, match=message) as info:
        _decode(str(path))
    assert str(path) in str(info.value)


@pytest.mark.parametrize(
    "mode",
    ["1", "L", "P", "RGB", "RGBA", "CMYK", "YCbCr", "LAB", "HSV", "LA", "PA"]
    + ["RGBX", "RGBa", "I", "F", "I;16", "I;16B", "I;16L"],
)
def test_every_pil_mode_decodes_to_rgb(mode):
    color = {"F": 0.5, "I": 30000, "I;16": 30000, "I;16B": 30000, "I;16L": 30000}
    image = Image.new(mode, (3, 3), color.get(mode, 0))
    rgb = _decode(image)
    assert rgb.shape == (3, 3, 3) and rgb.dtype == np.uint8
    if mode in color:  # deep modes: scaled by the range rule
        want = 128 if mode == "F" else round(30000 / 257)
        assert (rgb == want).all()


def test_pil_modes_that_cannot_be_converted_are_refused():
    with pytest.raises(ValueError, match="cannot convert an image of mode 'La'"):
        _decode(Image.new("La", (2, 2)))
    with pytest.raises(ValueError, match="integer pixels outside 0-65535"):
        _decode(Image.fromarray(np.full((2, 2), 70000, dtype=np.int32)))


def test_16bit_and_8bit_images_give_the_same_embeddings(tmp_path):
    import torch

    from skhsfm.embedding import BackboneEmbedder

    class Mean(torch.nn.Module):
        def forward(self, x):
            return x.mean(dim=(2, 3))

    rng = np.random.RandomState(0)
    eight = rng.randint(0, 256, (16, 16)).astype(np.uint8)
    Image.fromarray(eight).save(tmp_path / "8.png")
    Image.fromarray(eight.astype(np.uint16) * 257).save(tmp_path / "16.png")
    embedder = BackboneEmbedder(Mean(), device="cpu")
    out = embedder.transform([str(tmp_path / "8.png"), str(tmp_path / "16.png")])
    np.testing.assert_allclose(out[0], out[1])


def test_command_arrays_follow_the_range_rule():
    from skhsfm.cli._common import CLIError
    from skhsfm.cli._sources import _as_uint8_images

    deep = (np.arange(2 * 4 * 4) * 2000).reshape(2, 4, 4).astype(np.uint16)
    np.testing.assert_array_equal(
        _as_uint8_images(deep, "X")[..., 0], np.rint(deep / 257.0).astype(np.uint8)
    )
    wide = np.full((2, 4, 4), 40000, dtype=np.int64)  # 16-bit values in int64
    assert (_as_uint8_images(wide, "X") == round(40000 / 257)).all()
    floats = np.full((2, 4, 4), 100.0)  # 0-255 floats
    assert (_as_uint8_images(floats, "X") == 100).all()
    # one rule for every split: a split whose values all lie in [0, 1] is read
    # as 0-255 when another split shows the dataset is 0-255
    dim = np.full((2, 4, 4), 0.8)
    assert (_as_uint8_images(dim, "X", (0.0, 200.0)) == 1).all()
    for bad in (np.full((2, 4, 4), -1.0), np.full((2, 4, 4), 300.0)):
        with pytest.raises(CLIError, match="X_train.npy: float pixels outside"):
            _as_uint8_images(bad, "X_train.npy")


# ------------------------------------------------ 7. weights and cache folders


@pytest.mark.filterwarnings("ignore:Detected pickle protocol")
def test_garbage_open_clip_weights_name_the_file(tiny_clip, tmp_path):
    from skhsfm.embedding import BackboneEmbedder

    tiny = np.zeros((1, 8, 8, 3), dtype=np.uint8)
    for name, content in [("w.pt", b"garbage" * 20), ("w.bin", b"\x80\x04junk")]:
        path = tmp_path / name
        path.write_bytes(content)
        embedder = BackboneEmbedder(
            model_name=tiny_clip, pretrained=str(path), device="cpu"
        )
        with pytest.raises((ValueError, RuntimeError), match="weights file") as info:
            embedder.transform(tiny)
        assert str(path) in str(info.value)


def test_garbage_safetensors_name_the_file(tmp_path):
    pytest.importorskip("safetensors")
    from skhsfm.embedding._loading import read_state_dict

    path = tmp_path / "w.safetensors"
    path.write_bytes(b"\x00\x01 not safetensors")
    with pytest.raises(ValueError, match="Could not read weights file") as info:
        read_state_dict(str(path))
    assert str(path) in str(info.value)


@pytest.mark.parametrize("where", ["a file", "under a file"])
def test_unusable_memory_folder_names_the_argument(tmp_path, where):
    import torch

    from skhsfm.embedding import BackboneEmbedder

    blocker = tmp_path / "blocker"
    blocker.write_text("x")
    memory = blocker if where == "a file" else blocker / "cache"
    embedder = BackboneEmbedder(torch.nn.Flatten(), device="cpu", memory=memory)
    with pytest.raises(OSError, match=r"memory=.*blocker") as info:
        embedder.transform(np.zeros((1, 4, 4, 3), dtype=np.uint8))
    assert "Pass a folder you can write to" in str(info.value)
    assert os.path.isfile(blocker)
