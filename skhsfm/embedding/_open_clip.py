"""The open_clip loader: the image tower of a CLIP model gives the embeddings.

Model names arrive parsed (a :class:`~skhsfm.embedding._registry.BackboneName`),
so the ``hf-hub:`` and ``local-dir:`` sources are read from ``name.source``
instead of from string prefixes. open_clip is imported inside the functions.
"""

import os

from skhsfm.embedding._hub import fetch_cache_first, hub_offline
from skhsfm.embedding._loading import LoadedBackbone, looks_like_path, seeded_init

__all__ = ["OPEN_CLIP_MISSING", "list_models", "load_open_clip"]

OPEN_CLIP_MISSING = (
    "backbone='open_clip' needs the open_clip package; install it with "
    "`pip install open_clip_torch` (or `pip install skhsfm[clip]`)."
)
_FIX = (
    "To work offline, download the weights once where the internet is reachable "
    "and pass the file: BackboneEmbedder(model_name={model!r}, "
    "pretrained='/path/to/open_clip_model.safetensors'), or a folder holding "
    "open_clip_config.json and the weights: "
    "BackboneEmbedder(model_name='local-dir:/path/to/folder'). Weights already in "
    "the Hugging Face cache (HF_HOME) are found without network access."
)


def _import_open_clip():
    try:
        import open_clip
    except ImportError as exc:
        raise ImportError(OPEN_CLIP_MISSING) from exc
    return open_clip


def list_models():
    """The model names open_clip builds (``open_clip.list_models()``)."""
    return list(_import_open_clip().list_models())


def _local_dir(name):
    folder = os.path.expanduser(name.model)
    if not os.path.isdir(folder):
        raise FileNotFoundError(
            f"model_name={name.model_name!r}: folder {folder!r} does not exist. It "
            "must hold open_clip_config.json and the weights file."
        )


def _fetch_hf_hub(name):
    from open_clip.pretrained import download_pretrained_from_hf

    def fetch():
        download_pretrained_from_hf(name.model, filename="open_clip_config.json")
        return download_pretrained_from_hf(name.model)

    fetch_cache_first(
        fetch,
        describe=f"open_clip files for {name.model_name!r}",
        fix=_FIX.format(model=name.model_name),
    )


def _resolve_weights(open_clip, name, pretrained):
    """Decide where the weights come from; fetch hub files cache-first.

    Returns the ``pretrained`` value to give open_clip. Every file open_clip
    needs is on disk afterwards, so it then runs with the hub in offline mode.
    """
    if name.source == "local-dir":
        _local_dir(name)
        return None
    if name.source == "hf-hub":
        _fetch_hf_hub(name)
        return None
    model_name = name.model_name
    if model_name not in open_clip.list_models():
        raise ValueError(
            f"model_name={model_name!r} is not an open_clip model. Use one of "
            "open_clip.list_models() (e.g. 'ViT-B-32'), 'local-dir:/path/to/folder' "
            "or 'hf-hub:org/repo'."
        )
    if pretrained is None:
        return None
    pretrained = os.path.expanduser(os.fspath(pretrained))
    if os.path.isfile(pretrained):
        return pretrained
    tag_cfg = open_clip.get_pretrained_cfg(model_name, pretrained)
    if tag_cfg:
        fetch_cache_first(
            lambda: open_clip.download_pretrained(tag_cfg),
            describe=f"open_clip weights {model_name!r} / {pretrained!r}",
            fix=_FIX.format(model=model_name),
        )
        return pretrained
    tags = open_clip.list_pretrained_tags_by_model(model_name)
    error = FileNotFoundError if looks_like_path(pretrained) else ValueError
    raise error(
        f"pretrained={pretrained!r} is neither an existing weights file nor a "
        f"pretrained tag of open_clip model {model_name!r} (tags: {tags}). Pass "
        "one of the tags, a path to a weights file, or None for random weights."
    )


def load_open_clip(name, pretrained, device):
    """Build an open_clip model; its image tower gives the embeddings.

    Parameters
    ----------
    name : BackboneName
        With ``library == "open_clip"``.
    pretrained : str, path-like or None
        A pretrained tag, a weights file or None (random weights); ignored for
        the ``local-dir`` and ``hf-hub`` sources, which carry their weights.
    device : torch.device
    """
    open_clip = _import_open_clip()
    weights = _resolve_weights(open_clip, name, pretrained)
    try:
        with seeded_init(), hub_offline():
            model, _, preprocess = open_clip.create_model_and_transforms(
                name.model_name, pretrained=weights, device="cpu"
            )
    except RuntimeError as exc:
        if weights is not None and os.path.isfile(weights):
            raise RuntimeError(
                f"Could not load weights file {weights!r} into open_clip model "
                f"{name.model_name!r}: {exc}"
            ) from exc
        raise
    except Exception as exc:  # UnpicklingError, SafetensorError, EOFError...
        if weights is not None and os.path.isfile(weights):
            # torch's first sentence; its advice (weights_only=False) is not
            # what a garbage or truncated file needs
            reason = (str(exc).strip().splitlines() or [""])[0].split(". ")[0]
            raise ValueError(
                f"Could not read weights file {weights!r} for open_clip model "
                f"{name.model_name!r} ({type(exc).__name__}: {reason}). Pass a "
                "complete weights file saved for this model (.safetensors, .bin "
                "or .pt, as open_clip writes them) or a pretrained tag."
            ) from exc
        raise
    model = model.eval().to(device)
    dim = getattr(model.visual, "output_dim", None)

    def forward(batch):
        return model.encode_image(batch)

    def make_tokenizer():
        return open_clip.get_tokenizer(name.model_name)

    return LoadedBackbone(
        library="open_clip",
        model=model,
        forward=forward,
        preprocess=preprocess,
        dim=int(dim) if dim is not None else None,
        make_tokenizer=make_tokenizer,
    )
