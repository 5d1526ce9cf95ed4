"""Tests for skhsfm.embedding.BackboneEmbedder (offline: random or local weights)."""

import json
import logging
import os
import pickle
import shutil
import subprocess
import sys
import warnings

import numpy as np
import pytest
from conftest import TINY_CLIP, TINY_CLIP_CFG
from sklearn.base import clone
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.utils import estimator_checks

from skhsfm._sklearn_compat import InvalidParameterError
from skhsfm.embedding import BackboneEmbedder

torch = pytest.importorskip("torch")
open_clip = pytest.importorskip("open_clip")
torchvision = pytest.importorskip("torchvision")
Image = pytest.importorskip("PIL.Image")

# Counts forward calls of CountingNet without living on the module (a counter
# attribute would change the module's fingerprint and so the cache key).
CALLS = {"n": 0}


class CountingNet(torch.nn.Module):
    """A tiny conv backbone: (n, 3, H, W) -> (n, 6)."""

    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 6, kernel_size=3)

    def forward(self, x):
        CALLS["n"] += 1
        return self.conv(x).mean(dim=(2, 3))


def small_preprocess(image):
    """Module-level (picklable) preprocess: resize to 16x16, float tensor."""
    image = image.resize((16, 16))
    array = np.asarray(image, dtype=np.float32) / 255.0
    return torch.from_numpy(array).permute(2, 0, 1)


# ----------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def clip_weights(tiny_clip, tmp_path_factory):
    """A random tiny CLIP saved to a file, with its model and transform."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(123)
        model, _, preprocess = open_clip.create_model_and_transforms(tiny_clip)
    model.eval()
    path = tmp_path_factory.mktemp("weights") / "tiny_clip.pt"
    torch.save(model.state_dict(), path)
    return str(path), model, preprocess


@pytest.fixture(scope="module")
def images():
    rng = np.random.RandomState(0)
    return rng.randint(0, 256, size=(7, 40, 36, 3)).astype(np.uint8)


@pytest.fixture(scope="module")
def image_files(images, tmp_path_factory):
    folder = tmp_path_factory.mktemp("images")
    paths = []
    for i, array in enumerate(images):
        path = folder / f"img{i}.png"
        Image.fromarray(array).save(path)
        paths.append(path)
    return paths


def clip_embedder(weights, **params):
    params.setdefault("device", "cpu")
    return BackboneEmbedder(model_name=TINY_CLIP, pretrained=weights, **params)


def hand_clip(model, preprocess, images, normalize=False):
    batch = torch.stack([preprocess(Image.fromarray(a)) for a in images])
    with torch.inference_mode():
        out = model.encode_image(batch)
    if normalize:
        out = out / out.norm(dim=1, keepdim=True)
    return out.numpy()


# ------------------------------------------------------------ import & API


def test_import_does_not_load_heavy_packages():
    code = (
        "import sys, skhsfm, skhsfm.embedding; "
        "heavy = [m for m in ('torch', 'open_clip', 'torchvision', 'PIL', 'tqdm') "
        "if m in sys.modules]; print(heavy)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "[]"


@pytest.mark.parametrize(
    "check",
    [
        estimator_checks.check_estimator_cloneable,
        estimator_checks.check_estimator_repr,
        estimator_checks.check_no_attributes_set_in_init,
        estimator_checks.check_parameters_default_constructible,
        estimator_checks.check_get_params_invariance,
        estimator_checks.check_set_params,
        estimator_checks.check_do_not_raise_errors_in_init_or_set_params,
        estimator_checks.check_mixin_order,
        estimator_checks.check_estimator_tags_renamed,
        estimator_checks.check_valid_tag_types,
        estimator_checks.check_param_validation,
    ],
    ids=lambda check: check.__name__,
)
def test_sklearn_api_checks(check):
    # parametrize_with_checks skips estimators whose input is not a 2-D array
    # (tags.input_tags.two_d_array=False), and the data checks feed random 2-D
    # floats that are not images; these are the checks about the API itself
    # (construction, params, tags, validation). Pickling, clone and stateless
    # transform are tested below on images.
    check("BackboneEmbedder", BackboneEmbedder())


def test_fit_is_stateless_and_validates_params(images):
    embedder = BackboneEmbedder(CountingNet(), device="cpu")
    assert embedder.fit(images) is embedder
    assert not hasattr(embedder, "_runtime")  # fit does not load the backbone
    assert embedder.__sklearn_tags__().requires_fit is False
    with pytest.raises(InvalidParameterError, match="batch_size"):
        BackboneEmbedder(CountingNet(), batch_size=0).fit(images)
    with pytest.raises(InvalidParameterError, match="precision"):
        BackboneEmbedder(CountingNet(), precision="fp8").transform(images)


# ---------------------------------------------------------------- open_clip


def test_open_clip_matches_hand_computation(clip_weights, images):
    path, model, preprocess = clip_weights
    expected = hand_clip(model, preprocess, images)
    out = clip_embedder(path).transform(images)
    assert out.dtype == np.float32 and out.shape == (len(images), 32)
    np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-5)

    normed = clip_embedder(path, normalize=True).transform(images)
    np.testing.assert_allclose(np.linalg.norm(normed, axis=1), 1.0, rtol=1e-5)
    np.testing.assert_allclose(
        normed, hand_clip(model, preprocess, images, normalize=True), atol=1e-5
    )


def test_open_clip_random_weights_are_reproducible(tiny_clip, images):
    first = clip_embedder(None).transform(images[:2])
    second = clip_embedder(None).transform(images[:2])
    np.testing.assert_array_equal(first, second)


def test_open_clip_local_dir(clip_weights, tmp_path, images):
    path, model, preprocess = clip_weights
    (tmp_path / "open_clip_config.json").write_text(
        json.dumps({"model_cfg": TINY_CLIP_CFG, "preprocess_cfg": {}})
    )
    torch.save(model.state_dict(), tmp_path / "open_clip_pytorch_model.bin")
    embedder = BackboneEmbedder(model_name=f"local-dir:{tmp_path}", device="cpu")
    np.testing.assert_allclose(
        embedder.transform(images),
        hand_clip(model, preprocess, images),
        rtol=1e-5,
        atol=1e-5,
    )


def test_encode_text(clip_weights):
    path, model, _ = clip_weights
    prompts = ["a photo of a landbird", "a photo of a waterbird", "water"]
    embedder = clip_embedder(path, normalize=True, batch_size=2)
    text = embedder.encode_text(prompts)
    tokenizer = open_clip.get_tokenizer(TINY_CLIP)
    with torch.inference_mode():
        expected = model.encode_text(tokenizer(prompts))
        expected = (expected / expected.norm(dim=1, keepdim=True)).numpy()
    assert text.dtype == np.float32 and text.shape == (3, 32)
    np.testing.assert_allclose(text, expected, atol=1e-5)
    assert embedder.encode_text("water").shape == (1, 32)
    with pytest.raises(ValueError, match="prompts is empty"):
        embedder.encode_text([])
    with pytest.raises(TypeError, match="prompts must be strings"):
        embedder.encode_text(["ok", 3])
    with pytest.raises(ValueError, match="encode_text needs a CLIP backbone"):
        BackboneEmbedder(CountingNet()).encode_text(["x"])


def test_open_clip_bad_names(tiny_clip, tmp_path):
    tiny = np.zeros((1, 8, 8, 3), dtype=np.uint8)
    with pytest.raises(ValueError, match="model_name='no-such-model' is not an"):
        BackboneEmbedder(model_name="no-such-model", device="cpu").transform(tiny)
    with pytest.raises(ValueError, match="pretrained='no_such_tag' is neither"):
        clip_embedder("no_such_tag").transform(tiny)
    missing = str(tmp_path / "missing.safetensors")
    with pytest.raises(FileNotFoundError, match="missing.safetensors"):
        clip_embedder(missing).transform(tiny)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        BackboneEmbedder(model_name=f"local-dir:{tmp_path}/nope").transform(tiny)


def test_weights_file_that_does_not_fit(tiny_clip, tmp_path):
    path = tmp_path / "other.pt"
    torch.save({"something.weight": torch.zeros(2)}, path)
    with pytest.raises(RuntimeError, match="Could not load weights file"):
        clip_embedder(str(path)).transform(np.zeros((1, 8, 8, 3), np.uint8))


# ------------------------------------------------------------------ offline


@pytest.fixture
def empty_caches(tmp_path, monkeypatch):
    """Point the Hugging Face and torch hub caches at empty folders."""
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hf"))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    return constants


def test_offline_tag_fails_fast_with_fix(empty_caches, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    embedder = BackboneEmbedder(device="cpu")  # ViT-B-32 / laion2b_s34b_b79k
    with pytest.raises(RuntimeError, match="offline mode is on") as info:
        embedder.transform(np.zeros((1, 8, 8, 3), np.uint8))
    message = str(info.value)
    assert "pretrained='/path/to/" in message and "local-dir:" in message


def test_offline_search_shows_one_reason(empty_caches, monkeypatch):
    """Every fit of a search fails for want of weights: the search's error
    shows that one reason, without huggingface_hub's chained tracebacks, and
    the fits fail at once (no network probe)."""
    import sklearn
    from sklearn.model_selection import GridSearchCV

    from skhsfm.baselines import ERMHeadClassifier
    from skhsfm.embedding import _hub

    def no_probe(url, **kwargs):
        raise AssertionError("offline mode is on: the network must not be probed")

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(_hub, "host_reachable", no_probe)
    images = np.zeros((12, 8, 8, 3), np.uint8)
    y = np.tile([0, 1], 6)
    pipe = Pipeline([("embed", BackboneEmbedder()), ("clf", ERMHeadClassifier())])
    search = GridSearchCV(pipe, {"clf__C": [0.1, 1.0]}, cv=3)
    with sklearn.config_context(enable_metadata_routing=True):
        with pytest.raises(ValueError, match="All the 6 fits failed") as info:
            search.fit(images, y)
    text = str(info.value)
    assert "6 fits failed with the following error" in text  # one reason
    assert text.count("offline mode is on") == 1
    assert text.rstrip().splitlines()[-1].startswith("RuntimeError: open_clip")
    for noise in ("huggingface_hub", "During handling", "direct cause"):
        assert noise not in text


def test_unreachable_host_is_probed_once(monkeypatch):
    from skhsfm.embedding import _hub

    calls = []

    def refuse(address, timeout):
        calls.append(address)
        raise OSError("connection refused")

    monkeypatch.setattr(_hub.socket, "create_connection", refuse)
    monkeypatch.setattr(_hub, "_UNREACHABLE", {})
    url = "https://weights.invalid/model.bin"
    assert not _hub.host_reachable(url, timeout=0.5)
    assert not _hub.host_reachable(url, timeout=0.5)  # remembered
    assert len(calls) == 1
    monkeypatch.setattr(_hub, "UNREACHABLE_RETRY", 0.0)
    assert not _hub.host_reachable(url, timeout=0.5)  # retried after the window
    assert len(calls) == 2


def test_unreachable_hub_fails_without_download(empty_caches, monkeypatch):
    from skhsfm.embedding import _hub

    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
    monkeypatch.setattr(empty_caches, "HF_HUB_OFFLINE", False)
    probed = []
    monkeypatch.setattr(
        _hub, "host_reachable", lambda url, **kw: probed.append(url) or False
    )
    with pytest.raises(RuntimeError, match="cannot be reached") as info:
        BackboneEmbedder(device="cpu").transform(np.zeros((1, 8, 8, 3), np.uint8))
    assert "pretrained='/path/to/" in str(info.value)
    assert probed and "huggingface" in probed[0]
    with pytest.raises(RuntimeError, match="cannot be reached.*pretrained="):
        BackboneEmbedder(
            "torchvision", model_name="resnet18", pretrained="DEFAULT", device="cpu"
        ).transform(np.zeros((1, 8, 8, 3), np.uint8))


def test_torchvision_offline(empty_caches, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    embedder = BackboneEmbedder(
        "torchvision", model_name="resnet18", pretrained="IMAGENET1K_V1"
    )
    with pytest.raises(RuntimeError, match="not in the local cache.*pretrained="):
        embedder.transform(np.zeros((1, 8, 8, 3), np.uint8))


def test_cached_tag_loads_without_touching_the_network(
    clip_weights, images, empty_caches, monkeypatch
):
    from open_clip import pretrained as oc_pretrained

    from skhsfm.embedding import _hub

    path, model, preprocess = clip_weights
    # A pretrained tag for the tiny model whose weights sit in the (empty) HF
    # cache, laid out as huggingface_hub stores downloads.
    repo = empty_caches.HF_HUB_CACHE + "/models--skhsfm-test--tiny-clip"
    snapshot = f"{repo}/snapshots/{'0' * 40}"
    os.makedirs(snapshot)
    os.makedirs(f"{repo}/refs")
    with open(f"{repo}/refs/main", "w") as handle:
        handle.write("0" * 40)
    shutil.copy(path, f"{snapshot}/open_clip_pytorch_model.bin")
    monkeypatch.setitem(
        oc_pretrained._PRETRAINED,
        TINY_CLIP,
        {"cached": oc_pretrained._pcfg(hf_hub="skhsfm-test/tiny-clip/")},
    )
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setattr(empty_caches, "HF_HUB_OFFLINE", False)

    def no_probe(url, **kwargs):
        raise AssertionError("the network was probed although the files are cached")

    monkeypatch.setattr(_hub, "host_reachable", no_probe)
    out = clip_embedder("cached").transform(images)
    np.testing.assert_allclose(
        out, hand_clip(model, preprocess, images), rtol=1e-5, atol=1e-5
    )
    assert empty_caches.HF_HUB_OFFLINE is False  # offline switch restored


# -------------------------------------------------------------- torchvision


def tv_preprocess():
    from torchvision import transforms

    return transforms.Compose(
        [transforms.Resize(32), transforms.CenterCrop(32), transforms.ToTensor()]
    )


def test_torchvision_penultimate_layer_and_weights_file(images, tmp_path):
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(7)
        model = torchvision.models.resnet18()
    path = tmp_path / "resnet18.pth"
    torch.save(model.state_dict(), path)
    model.fc = torch.nn.Identity()
    model.eval()
    preprocess = tv_preprocess()
    with torch.inference_mode():
        expected = model(
            torch.stack([preprocess(Image.fromarray(a)) for a in images])
        ).numpy()
    embedder = BackboneEmbedder(
        "torchvision",
        model_name="resnet18",
        pretrained=path,
        preprocess=preprocess,
        device="cpu",
    )
    out = embedder.transform(images)
    assert out.shape == (len(images), 512)
    np.testing.assert_allclose(out, expected, rtol=1e-4, atol=1e-5)
    assert embedder.get_feature_names_out().shape == (512,)

    # A headless state_dict (classifier removed before saving) loads too.
    headless = tmp_path / "headless.pth"
    torch.save(model.state_dict(), headless)
    out_headless = clone(embedder).set_params(pretrained=str(headless))
    np.testing.assert_allclose(out_headless.transform(images), out, atol=1e-6)

    other = tmp_path / "other.pth"
    torch.save(torchvision.models.resnet34().state_dict(), other)
    with pytest.raises(ValueError, match="does not fit torchvision model"):
        embedder.set_params(pretrained=str(other)).transform(images)


def test_torchvision_default_transform_random_weights(images):
    embedder = BackboneEmbedder(
        "torchvision", model_name="resnet18", pretrained=None, device="auto"
    )
    out = embedder.transform(images[:2])  # default ImageNet transform: 224x224
    assert out.shape == (2, 512) and np.isfinite(out).all()
    np.testing.assert_array_equal(clone(embedder).transform(images[:2]), out)


def test_torchvision_bad_names():
    tiny = np.zeros((1, 8, 8, 3), np.uint8)
    with pytest.raises(ValueError, match="not a torchvision classification model"):
        BackboneEmbedder("torchvision", model_name="ViT-B-32").transform(tiny)
    with pytest.raises(ValueError, match="IMAGENET1K_V1"):
        BackboneEmbedder(
            "torchvision", model_name="resnet18", pretrained="laion2b_s34b_b79k"
        ).transform(tiny)


# ------------------------------------------------------------ custom module


def test_custom_module_and_callable(images):
    net = CountingNet()
    out = BackboneEmbedder(net, device="cpu").transform(images)
    assert out.shape == (len(images), 6)
    with torch.inference_mode():
        batch = torch.from_numpy(images).permute(0, 3, 1, 2).float() / 255
        expected = net(batch).numpy()
    np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-6)

    # A plain callable; (n, C, 1, 1) outputs are flattened.
    def pooled(x):
        return x.mean(dim=(2, 3), keepdim=True)

    out = BackboneEmbedder(pooled, device="cpu").transform(images)
    np.testing.assert_allclose(out, images.mean(axis=(1, 2)) / 255, atol=1e-5)


def test_custom_module_bad_outputs(images):
    with pytest.raises(ValueError, match=r"returned shape \(7, 3, 40, 36\)"):
        BackboneEmbedder(lambda x: x, device="cpu").transform(images)
    with pytest.raises(TypeError, match="returned a tuple"):
        BackboneEmbedder(lambda x: (x, x), device="cpu").transform(images)


def test_custom_module_needs_one_size_without_preprocess():
    mixed = [np.zeros((8, 8, 3), np.uint8), np.zeros((9, 9, 3), np.uint8)]
    with pytest.raises(ValueError, match="different shapes.*preprocess="):
        BackboneEmbedder(CountingNet(), device="cpu").transform(mixed)
    out = BackboneEmbedder(
        CountingNet(), preprocess=small_preprocess, device="cpu"
    ).transform(mixed)
    assert out.shape == (2, 6)


def test_feature_names_for_unloaded_custom_module():
    names = BackboneEmbedder(CountingNet(), device="cpu").get_feature_names_out()
    assert list(names) == [f"backboneembedder{i}" for i in range(6)]


# ------------------------------------------------------------------- inputs


def test_input_kinds_give_identical_embeddings(clip_weights, images, image_files):
    path = clip_weights[0]
    embedder = clip_embedder(path)
    reference = embedder.transform(images)
    tensor_nchw = torch.from_numpy(images).permute(0, 3, 1, 2).contiguous()
    kinds = {
        "paths": [str(p) for p in image_files],
        "pathlib": list(image_files),
        "pil": [Image.fromarray(a) for a in images],
        "float_array": images.astype(np.float32) / 255.0,
        "list_of_arrays": list(images),
        "tensor_nchw": tensor_nchw,
        "tensor_nhwc": torch.from_numpy(images),
        "tensor_float": tensor_nchw.float() / 255.0,
        "list_of_tensors": list(tensor_nchw),
        "object_array": np.array([str(p) for p in image_files], dtype=object),
        "str_array": np.array([str(p) for p in image_files]),
        "tensor_bf16": tensor_nchw.to(torch.bfloat16) / 255.0,
        "mixed": [str(image_files[0]), Image.fromarray(images[1])] + list(images[2:]),
    }
    for name, X in kinds.items():
        np.testing.assert_allclose(
            embedder.transform(X), reference, atol=1e-6, err_msg=name
        )


def test_grayscale_rgba_palette_are_converted(images):
    embedder = BackboneEmbedder(CountingNet(), device="cpu")
    gray = images[..., 0]
    gray_rgb = np.repeat(gray[..., None], 3, axis=-1)
    expected = embedder.transform(gray_rgb)
    np.testing.assert_allclose(embedder.transform(gray), expected, atol=1e-6)
    np.testing.assert_allclose(embedder.transform(gray[..., None]), expected, atol=1e-6)
    pil_gray = [Image.fromarray(g, mode="L") for g in gray]
    np.testing.assert_allclose(embedder.transform(pil_gray), expected, atol=1e-6)
    # A 3-D tensor is a stack of grayscale images, even with 3 of them.
    np.testing.assert_allclose(
        embedder.transform(torch.from_numpy(gray[:3])), expected[:3], atol=1e-6
    )

    rgba = np.concatenate([images, np.full(images.shape[:3] + (1,), 7, np.uint8)], -1)
    np.testing.assert_allclose(
        embedder.transform(rgba), embedder.transform(images), atol=1e-6
    )

    palette = Image.fromarray(images[0]).convert("P")
    palette.info["transparency"] = 0
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # PIL warns on a direct P -> RGB here
        out = embedder.transform([palette])
    expected = embedder.transform([palette.convert("RGBA").convert("RGB")])
    np.testing.assert_allclose(out, expected, atol=1e-6)


def test_input_errors(images, image_files, tmp_path):
    embedder = BackboneEmbedder(CountingNet(), device="cpu")
    missing = str(tmp_path / "nope.jpg")
    with pytest.raises(FileNotFoundError, match=r"X\[1\].*nope\.jpg"):
        embedder.transform([str(image_files[0]), missing])
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"not an image")
    with pytest.raises(ValueError, match="Could not read image file.*broken.png"):
        embedder.transform([broken])
    with pytest.raises(ValueError, match="X is empty"):
        embedder.transform([])
    with pytest.raises(ValueError, match="X is empty"):
        embedder.transform(np.zeros((0, 8, 8, 3), np.uint8))
    with pytest.raises(TypeError, match="Wrap it in a list"):
        embedder.transform(str(image_files[0]))
    with pytest.raises(ValueError, match="2-D array is not a batch of images"):
        embedder.transform(np.zeros((5, 3)))
    with pytest.raises(ValueError, match=r"float images must lie in\s+\[0, 1\]"):
        embedder.transform(images.astype(np.float32))
    with pytest.raises(TypeError, match="dtype int64"):
        embedder.transform(images.astype(np.int64))
    with pytest.raises(ValueError, match="C in"):
        embedder.transform(np.zeros((2, 8, 8, 5), np.uint8))
    with pytest.raises(TypeError, match=r"X\[1\] is a dict"):
        embedder.transform([images[0], {}])


# ------------------------------------------------------ batching & devices


def test_results_do_not_depend_on_batching(clip_weights, images, image_files):
    path = clip_weights[0]
    reference = clip_embedder(path, batch_size=64).transform(images)
    for batch_size, num_workers in [(1, 0), (3, 0), (2, 2), (64, 3)]:
        out = clip_embedder(
            path, batch_size=batch_size, num_workers=num_workers
        ).transform(image_files)
        np.testing.assert_allclose(out, reference, rtol=1e-5, atol=1e-5)


def test_amp_on_cpu_is_close_to_fp32(images):
    net = CountingNet()
    fp32 = BackboneEmbedder(net, device="cpu").transform(images)
    amp = BackboneEmbedder(net, device="cpu", precision="amp").transform(images)
    assert amp.dtype == np.float32
    np.testing.assert_allclose(amp, fp32, atol=2e-2)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_matches_cpu(clip_weights, images):
    path = clip_weights[0]
    cpu = clip_embedder(path).transform(images)
    gpu = clip_embedder(path, device="cuda").transform(images)
    np.testing.assert_allclose(gpu, cpu, rtol=1e-3, atol=1e-3)
    amp = clip_embedder(path, device="cuda", precision="amp").transform(images)
    np.testing.assert_allclose(amp, cpu, rtol=5e-2, atol=5e-2)


def test_progress_bar_follows_logger(images, capsys):
    embedder = BackboneEmbedder(CountingNet(), device="cpu")
    embedder.transform(images)
    assert "Embedding images" not in capsys.readouterr().err
    embedder.set_params(show_progress_bar=True).transform(images)
    assert "Embedding images" in capsys.readouterr().err
    logger = logging.getLogger("skhsfm")
    level = logger.level
    logger.setLevel(logging.INFO)
    try:
        embedder.set_params(show_progress_bar=None).transform(images)
        assert "Embedding images" in capsys.readouterr().err
        embedder.set_params(show_progress_bar=False).transform(images)
        assert "Embedding images" not in capsys.readouterr().err
    finally:
        logger.setLevel(level)


# ------------------------------------------------- pickling, clone, params


def test_pickle_drops_model_and_reloads(clip_weights, images):
    path = clip_weights[0]
    embedder = clip_embedder(path)
    expected = embedder.transform(images)
    assert hasattr(embedder, "_runtime")
    blob = pickle.dumps(embedder)
    assert len(blob) < 2_000  # parameters only (the tiny model alone is ~7 MB)
    assert hasattr(embedder, "_runtime")  # pickling leaves the original loaded
    restored = pickle.loads(blob)
    assert not hasattr(restored, "_runtime")
    np.testing.assert_array_equal(restored.transform(images), expected)


def test_clone_and_set_params(clip_weights, images):
    net = CountingNet()
    embedder = BackboneEmbedder(net, device="cpu", batch_size=3)
    expected = embedder.transform(images)
    cloned = clone(embedder)
    assert cloned.backbone is not net  # clone deep-copies the module
    np.testing.assert_array_equal(cloned.transform(images), expected)
    assert cloned.get_params()["batch_size"] == 3

    # Changing the backbone configuration after loading reloads the backbone.
    clip = clip_embedder(clip_weights[0])
    before = clip.transform(images)
    after = clip.set_params(pretrained=None).transform(images)
    assert not np.allclose(before, after)


def test_pipeline_end_to_end_with_hsfm(clip_weights):
    from skhsfm import HSFMClassifier

    rng = np.random.RandomState(0)
    n = 40
    y = np.arange(n) % 2
    groups = 2 * y + (np.arange(n) // 2) % 2
    base = rng.randint(0, 60, size=(n, 32, 32, 3))
    base[y == 1, :, :, 0] += 180  # class 1 is red
    X = base.astype(np.uint8)
    pipe = Pipeline(
        [
            ("embed", clip_embedder(clip_weights[0], normalize=True)),
            (
                "clf",
                HSFMClassifier(
                    support_size=4,
                    hard_size=4,
                    inner_steps=2,
                    outer_steps=2,
                    n_epochs=2,
                    erm_C=100.0,
                    random_state=0,
                    device="cpu",
                ),
            ),
        ]
    )
    pipe.fit(X, y, clf__groups=groups)
    assert pipe.score(X, y) >= 0.9
    blob = pickle.dumps(pipe)
    assert len(blob) < 50_000
    restored = pickle.loads(blob)
    np.testing.assert_array_equal(restored.predict(X), pipe.predict(X))

    logreg = Pipeline(
        [("embed", clip_embedder(clip_weights[0])), ("clf", LogisticRegression())]
    )
    assert logreg.fit(X, y).score(X, y) >= 0.9


def test_set_output_pandas(images):
    pd = pytest.importorskip("pandas")
    embedder = BackboneEmbedder(CountingNet(), device="cpu").set_output(
        transform="pandas"
    )
    frame = embedder.transform(images)
    assert isinstance(frame, pd.DataFrame)
    assert list(frame.columns)[:2] == ["backboneembedder0", "backboneembedder1"]


# ------------------------------------------------------------------ caching


def test_memory_skips_the_model_on_repeat(images, image_files, tmp_path):
    embedder = BackboneEmbedder(CountingNet(), device="cpu", memory=str(tmp_path))
    CALLS["n"] = 0
    first = embedder.transform(images)
    assert CALLS["n"] == 1
    np.testing.assert_array_equal(embedder.transform(images), first)
    fresh = clone(embedder).set_params(normalize=True, batch_size=2)
    normed = fresh.transform(images)  # new object, other batch size, normalised
    assert CALLS["n"] == 1
    assert fresh.get_feature_names_out().shape == (6,)
    assert not hasattr(fresh, "_runtime")  # backbone never loaded
    np.testing.assert_allclose(np.linalg.norm(normed, axis=1), 1.0, rtol=1e-5)

    changed = images.copy()
    changed[0, 0, 0, 0] ^= 1
    embedder.transform(changed)
    assert CALLS["n"] == 2

    embedder.transform(image_files)  # files are keyed on path, size and mtime
    calls = CALLS["n"]
    embedder.transform(image_files)
    assert CALLS["n"] == calls


def test_image_fingerprints_are_content_digests(images):
    import hashlib

    from skhsfm.embedding._keys import fingerprint_images

    def blake(data):
        return hashlib.blake2b(data, digest_size=16).hexdigest()

    def expected(keys):
        hasher = hashlib.blake2b(digest_size=16)
        for key in keys:
            hasher.update(repr(key).encode())
        return hasher.hexdigest()

    # The same keys as before the embedder became a package: caches stay valid.
    stack = ("stack", images.shape, "uint8", blake(images.tobytes()))
    assert fingerprint_images(images) == expected([stack])
    pil = Image.fromarray(images[1])
    keys = [
        ("array", images[0].shape, "uint8", blake(images[0].tobytes())),
        ("pil", "RGB", pil.size, blake(pil.tobytes())),
    ]
    assert fingerprint_images([images[0], pil]) == expected(keys)


def test_memory_keys_on_backbone_config(clip_weights, images, tmp_path):
    from joblib import Memory

    memory = Memory(str(tmp_path), verbose=0)
    seeded = clip_embedder(clip_weights[0], memory=memory).transform(images)
    random = clip_embedder(None, memory=memory).transform(images)
    assert not np.allclose(seeded, random)
    # A path-like memory means the same cache as joblib.Memory(str(path)).
    again = clip_embedder(clip_weights[0], memory=tmp_path)
    np.testing.assert_array_equal(again.transform(images), seeded)
    assert not hasattr(again, "_runtime")


def test_memory_with_unpicklable_preprocess_warns(images, tmp_path):
    embedder = BackboneEmbedder(
        CountingNet(),
        preprocess=lambda image: small_preprocess(image),
        device="cpu",
        memory=str(tmp_path),
    )
    with pytest.warns(UserWarning, match="memory is ignored"):
        out = embedder.transform(images)
    assert out.shape == (len(images), 6)
