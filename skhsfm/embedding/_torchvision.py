"""The torchvision loader: a classifier without its last linear layer.

The embedding is the penultimate activation. Weights are a torchvision weights
name (fetched cache-first into the torch hub cache) or a local ``state_dict``
file, with or without the classifier's parameters. torch and torchvision are
imported inside the functions.
"""

import os

from skhsfm.embedding._hub import ensure_downloadable
from skhsfm.embedding._loading import (
    LoadedBackbone,
    looks_like_path,
    read_state_dict,
    seeded_init,
)

__all__ = ["TORCHVISION_MISSING", "list_models", "load_torchvision"]

TORCHVISION_MISSING = (
    "backbone='torchvision' needs torchvision; install it with "
    "`pip install torchvision` (or `pip install skhsfm[clip]`)."
)
_FIX = (
    "To work offline, download the weights once where the internet is reachable "
    "and pass the file: BackboneEmbedder('torchvision', model_name={model!r}, "
    "pretrained='/path/to/weights.pth') (a state_dict saved with torch.save), or "
    "put it in {cache_dir}, where torchvision looks first."
)


def _import_models():
    try:
        from torchvision import models
    except ImportError as exc:
        raise ImportError(TORCHVISION_MISSING) from exc
    return models


def list_models():
    """The classification models torchvision builds (``torchvision.models``)."""
    models = _import_models()
    return list(models.list_models(module=models))


def _find_head(model):
    """Name and module of the last ``nn.Linear``: the classifier to remove."""
    from skhsfm._utils.torch import torch

    head = None
    for name, module in model.named_modules():
        if isinstance(module, torch.nn.Linear):
            head = (name, module)
    return head


def _replace_module(model, name, new):
    parent_name, _, child = name.rpartition(".")
    parent = model.get_submodule(parent_name) if parent_name else model
    setattr(parent, child, new)


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


def _weights(models, model_name, pretrained):
    """The weights enum member for ``pretrained``, or a checked file path."""
    weights_enum = models.get_model_weights(model_name)
    pretrained = os.path.expanduser(os.fspath(pretrained))
    if os.path.isfile(pretrained):
        return None, pretrained
    member = pretrained.rpartition(".")[2] if "_Weights." in pretrained else pretrained
    try:
        return weights_enum[member], None
    except KeyError:
        pass
    names = [weights.name for weights in weights_enum] + ["DEFAULT"]
    error = FileNotFoundError if looks_like_path(pretrained) else ValueError
    raise error(
        f"pretrained={pretrained!r} is neither an existing weights file nor a "
        f"weights name of torchvision model {model_name!r} (names: {names}). Pass "
        "one of the names, a path to a state_dict file, or None for random weights."
    )


def _ensure_download(weights, model_name):
    """Fail fast when the weights are not cached and cannot be downloaded."""
    from skhsfm._utils.torch import torch

    cache_dir = os.path.join(torch.hub.get_dir(), "checkpoints")
    ensure_downloadable(
        weights.url,
        cache_dir,
        describe=f"torchvision weights {weights}",
        fix=_FIX.format(model=model_name, cache_dir=cache_dir),
    )


def load_torchvision(name, pretrained, device):
    """Build a torchvision classifier and cut off its last linear layer.

    Parameters
    ----------
    name : BackboneName
        With ``library == "torchvision"``.
    pretrained : str, path-like or None
        A weights name (``"DEFAULT"``, ``"IMAGENET1K_V2"``), a state_dict file
        or None (random weights).
    device : torch.device
    """
    from skhsfm._utils.torch import torch

    models = _import_models()
    model_name = name.model_name
    if model_name not in list_models():
        raise ValueError(
            f"model_name={model_name!r} is not a torchvision classification model. "
            "Use one of torchvision.models.list_models(module=torchvision.models), "
            "e.g. 'resnet50', 'convnext_tiny' or 'vit_b_16'."
        )
    weights, path = (None, None)
    if pretrained is not None:
        weights, path = _weights(models, model_name, pretrained)
    if weights is not None:
        _ensure_download(weights, model_name)
    with seeded_init():
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
    _replace_module(model, head_name, torch.nn.Identity())
    model = model.eval().to(device)
    preset = weights if weights is not None else models.get_model_weights(model_name)
    preprocess = (weights or preset.DEFAULT).transforms()
    return LoadedBackbone(
        library="torchvision",
        model=model,
        forward=model,
        preprocess=preprocess,
        dim=int(head_module.in_features),
    )
