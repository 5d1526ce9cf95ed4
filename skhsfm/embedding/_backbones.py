"""Backbone adapters for the embedder: open_clip, torchvision, user modules.

Each loader returns a :class:`LoadedBackbone`: the model, a ``forward`` that maps
a preprocessed batch to ``(n, d)`` embeddings, the PIL -> tensor ``preprocess``
and the embedding size when it is known without running the model.

Pretrained weights are fetched cache-first: a copy already on disk is used
without touching the network, and a missing one fails within about two seconds
when the hub cannot be reached (instead of huggingface_hub's retry loop, which
takes ~45 s) with a message that says how to pass local weights.

torch, torchvision and open_clip are imported inside the functions.
"""

import contextlib
import os
import socket
import threading
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from typing import Any, Callable, Optional

import numpy as np

__all__ = [
    "LoadedBackbone",
    "load_open_clip",
    "load_torchvision",
    "prepare_custom",
    "pil_to_float_tensor",
    "offline_requested",
    "flatten_output",
]

#: Seconds allowed for the "is the weights host reachable?" probe.
HUB_PROBE_TIMEOUT = 2.0
#: Seed for randomly initialised backbones, so every load gives the same weights.
RANDOM_INIT_SEED = 0

_WEIGHT_SUFFIXES = (".bin", ".pt", ".pth", ".safetensors", ".ckpt", ".npz")
_OPEN_CLIP_MISSING = (
    "backbone='open_clip' needs the open_clip package; install it with "
    "`pip install open_clip_torch` (or `pip install skhsfm[clip]`)."
)
_TORCHVISION_MISSING = (
    "backbone='torchvision' needs torchvision; install it with "
    "`pip install torchvision` (or `pip install skhsfm[clip]`)."
)
_OPEN_CLIP_FIX = (
    "To work offline, download the weights once where the internet is reachable "
    "and pass the file: BackboneEmbedder(model_name={model!r}, "
    "pretrained='/path/to/open_clip_model.safetensors'), or a folder holding "
    "open_clip_config.json and the weights: "
    "BackboneEmbedder(model_name='local-dir:/path/to/folder'). Weights already in "
    "the Hugging Face cache (HF_HOME) are found without network access."
)
_TORCHVISION_FIX = (
    "To work offline, download the weights once where the internet is reachable "
    "and pass the file: BackboneEmbedder('torchvision', model_name={model!r}, "
    "pretrained='/path/to/weights.pth') (a state_dict saved with torch.save), or "
    "put it in {cache_dir}, where torchvision looks first."
)


@dataclass
class LoadedBackbone:
    """A ready-to-run backbone (never pickled: the embedder drops it)."""

    family: str
    model: Any
    forward: Callable
    preprocess: Callable
    dim: Optional[int] = None
    tokenizer: Optional[Callable] = None
    extras: dict = field(default_factory=dict)


# --------------------------------------------------------------------- helpers


def pil_to_float_tensor(image):
    """RGB PIL image -> float32 CHW tensor in [0, 1] (torchvision's ``ToTensor``)."""
    import torch

    array = np.asarray(image, dtype=np.uint8)
    return torch.from_numpy(array.copy()).permute(2, 0, 1).float().div_(255.0)


def _truthy(value):
    return str(value).strip().upper() in {"1", "ON", "YES", "TRUE"}


def offline_requested():
    """Whether the user asked for offline mode (``HF_HUB_OFFLINE`` or equivalent)."""
    if _truthy(os.environ.get("HF_HUB_OFFLINE", "")):
        return True
    if _truthy(os.environ.get("TRANSFORMERS_OFFLINE", "")):
        return True
    try:
        from huggingface_hub import constants
    except ImportError:
        return False
    return bool(getattr(constants, "HF_HUB_OFFLINE", False))


_OFFLINE_LOCK = threading.Lock()


@contextlib.contextmanager
def _hub_offline():
    """Make huggingface_hub resolve files from its cache only, for this block.

    huggingface_hub reads ``HF_HUB_OFFLINE`` once at import time into
    ``constants.HF_HUB_OFFLINE`` and checks that flag before each request, so
    setting the environment variable now would have no effect.
    """
    try:
        from huggingface_hub import constants
    except ImportError:
        yield
        return
    with _OFFLINE_LOCK:
        previous = getattr(constants, "HF_HUB_OFFLINE", False)
        constants.HF_HUB_OFFLINE = True
        try:
            yield
        finally:
            constants.HF_HUB_OFFLINE = previous


def host_reachable(url, timeout=HUB_PROBE_TIMEOUT):
    """Whether a TCP connection to ``url``'s host (or its proxy) opens in time.

    Name resolution has no timeout of its own, so the probe runs in a daemon
    thread and is abandoned after ``timeout`` seconds.
    """
    parsed = urllib.parse.urlparse(url)
    host = parsed.hostname
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    proxy = urllib.request.getproxies().get(parsed.scheme or "https")
    if proxy and host and not urllib.request.proxy_bypass(host):
        proxy_url = urllib.parse.urlparse(proxy if "//" in proxy else f"//{proxy}")
        host, port = proxy_url.hostname, proxy_url.port or 80
    if not host:
        return False
    result = []

    def probe():
        try:
            with socket.create_connection((host, port), timeout=timeout):
                result.append(True)
        except OSError:
            result.append(False)

    thread = threading.Thread(target=probe, daemon=True)
    thread.start()
    thread.join(timeout + 0.5)
    return bool(result and result[0])


def _hub_endpoint():
    try:
        from huggingface_hub import constants
    except ImportError:  # pragma: no cover - open_clip depends on huggingface_hub
        return "https://huggingface.co"
    return getattr(constants, "ENDPOINT", "https://huggingface.co")


def fetch_cache_first(fetch, *, describe, fix, url=None):
    """Run ``fetch`` from the local cache only; go online only if that can work.

    Parameters
    ----------
    fetch : callable
        Downloads (or finds in the cache) the files; huggingface_hub based.
    describe : str
        What is fetched, for error messages ("open_clip weights 'ViT-B-32' ...").
    fix : str
        The actionable part of the error message.
    url : str, optional
        The host to probe; the Hugging Face endpoint by default.
    """
    try:
        with _hub_offline():
            return fetch()
    except Exception as exc:  # not cached (or the cache copy is unusable)
        cache_error = exc
    url = url or _hub_endpoint()
    if offline_requested():
        raise RuntimeError(
            f"{describe} are not in the local cache and offline mode is on "
            f"(HF_HUB_OFFLINE is set), so they cannot be downloaded. {fix}"
        ) from cache_error
    if not host_reachable(url):
        raise RuntimeError(
            f"{describe} are not in the local cache and {url} cannot be reached "
            f"(no network access?). {fix}"
        ) from cache_error
    try:
        return fetch()
    except Exception as exc:
        raise RuntimeError(f"Downloading {describe} failed: {exc}. {fix}") from exc


@contextlib.contextmanager
def _seeded_init():
    """Deterministic random initialisation that leaves the global RNG untouched.

    ``fork_rng`` saves torch's CPU generator state and restores it on exit, so the
    caller's random stream is unchanged; models are built on the CPU.
    """
    import torch

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(RANDOM_INIT_SEED)
        yield


def _looks_like_path(value):
    value = str(value)
    return (
        os.sep in value
        or (os.altsep is not None and os.altsep in value)
        or value.lower().endswith(_WEIGHT_SUFFIXES)
        or value.startswith("~")
    )


def flatten_output(output, n_images):
    """Check a backbone's output and bring it to shape (n_images, d)."""
    import torch

    if isinstance(output, np.ndarray):
        output = torch.from_numpy(output)
    if not isinstance(output, torch.Tensor):
        raise TypeError(
            f"The backbone returned a {type(output).__name__}; it must return a "
            "tensor of shape (n_images, d). Wrap models that return tuples or dicts "
            "in a module that selects the embedding."
        )
    if output.ndim > 2 and all(size == 1 for size in output.shape[2:]):
        output = output.flatten(1)  # e.g. (n, C, 1, 1) after global pooling
    if output.ndim != 2 or output.shape[0] != n_images:
        raise ValueError(
            f"The backbone returned shape {tuple(output.shape)} for {n_images} "
            "images; expected (n_images, d). Add pooling to the module, e.g. "
            "torch.nn.Sequential(trunk, torch.nn.AdaptiveAvgPool2d(1), "
            "torch.nn.Flatten())."
        )
    return output


# -------------------------------------------------------------------- open_clip


def _import_open_clip():
    try:
        import open_clip
    except ImportError as exc:
        raise ImportError(_OPEN_CLIP_MISSING) from exc
    return open_clip


def _resolve_open_clip_source(open_clip, model_name, pretrained):
    """Decide where the weights come from; fetch hub files cache-first.

    Returns the ``pretrained`` value to give open_clip and whether every file it
    needs is now on disk (then open_clip runs with the hub in offline mode).
    """
    fix = _OPEN_CLIP_FIX.format(model=model_name)
    if model_name.startswith("local-dir:"):
        folder = os.path.expanduser(model_name[len("local-dir:") :])
        if not os.path.isdir(folder):
            raise FileNotFoundError(
                f"model_name={model_name!r}: folder {folder!r} does not exist. It "
                "must hold open_clip_config.json and the weights file."
            )
        return None, True
    if model_name.startswith("hf-hub:"):
        from open_clip.pretrained import download_pretrained_from_hf

        model_id = model_name[len("hf-hub:") :]

        def fetch():
            download_pretrained_from_hf(model_id, filename="open_clip_config.json")
            return download_pretrained_from_hf(model_id)

        fetch_cache_first(
            fetch, describe=f"open_clip files for {model_name!r}", fix=fix
        )
        return None, True
    if model_name not in open_clip.list_models():
        raise ValueError(
            f"model_name={model_name!r} is not an open_clip model. Use one of "
            "open_clip.list_models() (e.g. 'ViT-B-32'), 'local-dir:/path/to/folder' "
            "or 'hf-hub:org/repo'."
        )
    if pretrained is None:
        return None, True
    pretrained = os.path.expanduser(os.fspath(pretrained))
    if os.path.isfile(pretrained):
        return pretrained, True
    tag_cfg = open_clip.get_pretrained_cfg(model_name, pretrained)
    if tag_cfg:
        fetch_cache_first(
            lambda: open_clip.download_pretrained(tag_cfg),
            describe=f"open_clip weights {model_name!r} / {pretrained!r}",
            fix=fix,
        )
        return pretrained, True
    tags = open_clip.list_pretrained_tags_by_model(model_name)
    error = FileNotFoundError if _looks_like_path(pretrained) else ValueError
    raise error(
        f"pretrained={pretrained!r} is neither an existing weights file nor a "
        f"pretrained tag of open_clip model {model_name!r} (tags: {tags}). Pass "
        "one of the tags, a path to a weights file, or None for random weights."
    )


def load_open_clip(model_name, pretrained, device):
    """Build an open_clip model; its image tower gives the embeddings."""
    open_clip = _import_open_clip()
    weights, on_disk = _resolve_open_clip_source(open_clip, model_name, pretrained)
    offline = _hub_offline() if on_disk else contextlib.nullcontext()
    try:
        with _seeded_init(), offline:
            model, _, preprocess = open_clip.create_model_and_transforms(
                model_name, pretrained=weights, device="cpu"
            )
    except RuntimeError as exc:
        if weights is not None and os.path.isfile(weights):
            raise RuntimeError(
                f"Could not load weights file {weights!r} into open_clip model "
                f"{model_name!r}: {exc}"
            ) from exc
        raise
    model = model.eval().to(device)
    dim = getattr(model.visual, "output_dim", None)

    def forward(batch):
        return model.encode_image(batch)

    def tokenizer():
        return open_clip.get_tokenizer(model_name)

    return LoadedBackbone(
        family="open_clip",
        model=model,
        forward=forward,
        preprocess=preprocess,
        dim=int(dim) if dim is not None else None,
        extras={"make_tokenizer": tokenizer},
    )


# ------------------------------------------------------------------ torchvision


def _import_torchvision_models():
    try:
        from torchvision import models
    except ImportError as exc:
        raise ImportError(_TORCHVISION_MISSING) from exc
    return models


def _find_head(model):
    """Name and module of the last ``nn.Linear``: the classifier to remove."""
    import torch

    head = None
    for name, module in model.named_modules():
        if isinstance(module, torch.nn.Linear):
            head = (name, module)
    return head


def _replace_module(model, name, new):
    parent_name, _, child = name.rpartition(".")
    parent = model.get_submodule(parent_name) if parent_name else model
    setattr(parent, child, new)


def read_state_dict(path):
    """Read a state_dict saved with ``torch.save`` or safetensors."""
    import torch

    if str(path).endswith(".safetensors"):
        from safetensors.torch import load_file

        state = load_file(path, device="cpu")
    else:
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:
            raise ValueError(
                f"Could not read weights file {path!r}: {exc}. Save weights with "
                "torch.save(model.state_dict(), path)."
            ) from exc
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]
    if not isinstance(state, dict):
        raise ValueError(
            f"Weights file {path!r} holds a {type(state).__name__}, not a "
            "state_dict; save weights with torch.save(model.state_dict(), path)."
        )
    if all(key.startswith("module.") for key in state):  # saved from DataParallel
        state = {key[len("module.") :]: value for key, value in state.items()}
    return state


def _load_weights_file(model, head_name, path, model_name):
    """Load a state_dict, with or without the classifier head's parameters."""
    state = read_state_dict(path)
    try:
        result = model.load_state_dict(state, strict=False)
    except RuntimeError as exc:  # shape mismatch
        raise ValueError(
            f"Weights file {path!r} does not fit torchvision model {model_name!r}: "
            f"{exc}"
        ) from exc
    head_keys = {f"{head_name}.weight", f"{head_name}.bias"}
    missing = sorted(set(result.missing_keys) - head_keys)
    if missing or result.unexpected_keys:
        raise ValueError(
            f"Weights file {path!r} does not fit torchvision model {model_name!r}: "
            f"missing keys {missing[:5]}, unexpected keys "
            f"{list(result.unexpected_keys)[:5]}."
        )


def _torchvision_weights(models, model_name, pretrained):
    """The weights enum member for ``pretrained``, or a checked file path."""
    weights_enum = models.get_model_weights(model_name)
    pretrained = os.path.expanduser(os.fspath(pretrained))
    if os.path.isfile(pretrained):
        return None, pretrained
    name = pretrained.rpartition(".")[2] if "_Weights." in pretrained else pretrained
    try:
        return weights_enum[name], None
    except KeyError:
        pass
    names = [member.name for member in weights_enum] + ["DEFAULT"]
    error = FileNotFoundError if _looks_like_path(pretrained) else ValueError
    raise error(
        f"pretrained={pretrained!r} is neither an existing weights file nor a "
        f"weights name of torchvision model {model_name!r} (names: {names}). Pass "
        "one of the names, a path to a state_dict file, or None for random weights."
    )


def _ensure_torchvision_download(weights, model_name):
    """Fail fast when the weights are not cached and cannot be downloaded."""
    import torch

    cache_dir = os.path.join(torch.hub.get_dir(), "checkpoints")
    filename = os.path.basename(urllib.parse.urlparse(weights.url).path)
    if os.path.isfile(os.path.join(cache_dir, filename)):
        return
    fix = _TORCHVISION_FIX.format(model=model_name, cache_dir=cache_dir)
    describe = f"torchvision weights {weights}"
    if offline_requested():
        raise RuntimeError(
            f"{describe} are not in the local cache ({cache_dir}) and offline mode "
            f"is on (HF_HUB_OFFLINE is set). {fix}"
        )
    if not host_reachable(weights.url):
        raise RuntimeError(
            f"{describe} are not in the local cache ({cache_dir}) and "
            f"{weights.url} cannot be reached (no network access?). {fix}"
        )


def load_torchvision(model_name, pretrained, device):
    """Build a torchvision classifier and cut off its last linear layer."""
    models = _import_torchvision_models()
    available = models.list_models(module=models)
    if model_name not in available:
        raise ValueError(
            f"model_name={model_name!r} is not a torchvision classification model. "
            "Use one of torchvision.models.list_models(module=torchvision.models), "
            "e.g. 'resnet50', 'convnext_tiny' or 'vit_b_16'."
        )
    weights, path = (None, None)
    if pretrained is not None:
        weights, path = _torchvision_weights(models, model_name, pretrained)
    if weights is not None:
        _ensure_torchvision_download(weights, model_name)
    with _seeded_init():
        model = models.get_model(model_name, weights=weights)
    head = _find_head(model)
    if head is None:
        raise ValueError(
            f"torchvision model {model_name!r} has no final linear layer to remove; "
            "pass the feature extractor itself as backbone=<module> with "
            "preprocess=<transform>."
        )
    head_name, head_module = head
    if path is not None:
        _load_weights_file(model, head_name, path, model_name)
    import torch

    _replace_module(model, head_name, torch.nn.Identity())
    model = model.eval().to(device)
    preset = weights if weights is not None else models.get_model_weights(model_name)
    preprocess = (weights or preset.DEFAULT).transforms()
    return LoadedBackbone(
        family="torchvision",
        model=model,
        forward=model,
        preprocess=preprocess,
        dim=int(head_module.in_features),
    )


# ----------------------------------------------------------------- user modules


def prepare_custom(backbone, device):
    """Use a user's ``nn.Module`` (moved to ``device``, eval mode) or callable."""
    import torch

    if isinstance(backbone, torch.nn.Module):
        backbone.eval().to(device)
    return LoadedBackbone(
        family="custom",
        model=backbone,
        forward=backbone,
        preprocess=pil_to_float_tensor,
    )
