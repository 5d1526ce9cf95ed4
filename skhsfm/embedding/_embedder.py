"""BackboneEmbedder: images to frozen-backbone embeddings, scikit-learn style.

The estimator orchestrates; the work is done elsewhere in the package: names
are read by ``_registry.parse_backbone`` and loaded by the registry's loaders,
images are validated and decoded by ``_images``, batches run in ``_forward``,
prompts in ``_text``, and ``memory`` goes through ``_cache`` with keys from
``_keys``. torch, torchvision, open_clip, PIL and tqdm are imported where they
are used, so importing this module (and :mod:`skhsfm`) stays light.
"""

import logging
import os
from numbers import Integral

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin

from skhsfm._sklearn_compat import HasMethods, Interval, StrOptions, fit_context
from skhsfm._utils.atomic import ensure_folder
from skhsfm._utils.doc_link import DOC_LINK_MODULE, DOC_LINK_TEMPLATE
from skhsfm._utils.progress import progress_bar
from skhsfm.embedding._cache import cached_embeddings
from skhsfm.embedding._forward import embed_batches, l2_normalize
from skhsfm.embedding._images import as_image_sequence
from skhsfm.embedding._keys import backbone_key, load_key
from skhsfm.embedding._registry import library_names, load_backbone, parse_backbone
from skhsfm.embedding._runtime import shared_backbone
from skhsfm.embedding._text import check_prompts, encode_prompts

# The name users configure; it was the module's name before the package split.
logger = logging.getLogger("skhsfm.embedding")

# Size of the blank image embedded to learn the output size of a user module.
_PROBE_SIZE = 224


class BackboneEmbedder(TransformerMixin, BaseEstimator):
    """Embed images with a frozen pretrained backbone.

    Turns images (file paths, PIL images, arrays or tensors) into one embedding
    vector per image, so that a classifier on embeddings can sit behind it in a
    :class:`~sklearn.pipeline.Pipeline`::

        Pipeline([("embed", BackboneEmbedder()), ("clf", HSFMClassifier())])

    The transformer is stateless: :meth:`fit` only checks the parameters, and
    :meth:`transform` may be called without it. The backbone is loaded on first
    use and never pickled; a pickled pipeline stays small and reloads the
    backbone when it is next used.

    Parameters
    ----------
    backbone : {"open_clip", "torchvision"}, torch.nn.Module or callable, \
            default="open_clip"
        Where the embeddings come from.

        - ``"open_clip"``: the image tower of an open_clip CLIP model named by
          ``model_name``, with weights ``pretrained``.
        - ``"torchvision"``: a torchvision classification model named by
          ``model_name`` whose last linear layer (the classifier) is replaced by
          the identity, so the embedding is the penultimate activation.
        - a ``torch.nn.Module`` or any callable mapping a float batch of shape
          ``(n, C, H, W)`` to a tensor of shape ``(n, d)`` (trailing dimensions
          of size 1 are flattened). A module is put in eval mode and moved to
          ``device`` in place. ``model_name`` and ``pretrained`` are ignored.

    model_name : str, default="ViT-B-32"
        For open_clip: a model name from ``open_clip.list_models()``, or
        ``"local-dir:/path/to/folder"`` (a folder with ``open_clip_config.json``
        and a weights file; ``pretrained`` is then ignored), or
        ``"hf-hub:org/repo"``. For torchvision: a name from
        ``torchvision.models.list_models()``, e.g. ``"resnet50"``.

    pretrained : str, path-like or None, default="laion2b_s34b_b79k"
        The weights. For open_clip: a pretrained tag
        (``open_clip.list_pretrained_tags_by_model(model_name)``), downloaded
        once into the Hugging Face cache, or a local weights file. For
        torchvision: a weights name such as ``"DEFAULT"`` or ``"IMAGENET1K_V2"``
        (downloaded once into the torch hub cache) or a local ``state_dict``
        file (with or without the classifier's parameters). ``None`` gives
        random weights, drawn with a fixed seed so that every load gives the
        same model. Weights that are not cached and cannot be downloaded fail
        within about two seconds with a message naming the local-file fix.

    preprocess : callable or None, default=None
        Maps one RGB PIL image to a ``(C, H, W)`` float tensor (a torchvision
        transform, for example). ``None`` uses the backbone's own transform for
        open_clip and torchvision (resize, crop, normalise) and, for a
        user-supplied backbone, a plain conversion to a float tensor in
        ``[0, 1]`` without resizing (so the images of one batch must share a
        size).

    batch_size : int, default=64
        Number of images per forward pass. Results do not depend on it (up to
        floating point).

    device : str, default="auto"
        ``"auto"`` uses CUDA when available, else the CPU; or any torch device
        string such as ``"cpu"``, ``"cuda"``, ``"cuda:1"``, ``"mps"``.

    precision : {"fp32", "amp"}, default="fp32"
        ``"amp"`` runs the backbone under ``torch.autocast`` (float16 on CUDA
        and MPS, bfloat16 on the CPU), which is much faster on recent GPUs and
        usually slower on CPUs. Embeddings are returned as float32 either way.

    normalize : bool, default=False
        Scale each embedding to unit L2 norm (also applies to
        :meth:`encode_text`), as usual for CLIP similarity.

    num_workers : int, default=0
        Threads that decode and preprocess images while the backbone runs on
        the previous batch. ``0`` does everything in the calling thread.
        Helps with file paths (JPEG decoding, resizing); little for arrays.

    show_progress_bar : bool or None, default=None
        Show a tqdm progress bar. ``None`` shows it when the ``"skhsfm"`` logger
        is enabled for INFO messages (``logging.getLogger("skhsfm")``).

    memory : str, path-like, joblib.Memory or None, default=None
        Cache embeddings on disk, one entry per image, so that a repeated
        :meth:`transform` on the same images with the same backbone
        configuration (for example in every fit of a grid search) reads them
        back without loading the backbone, and a cache filled shard by shard
        (:func:`skhsfm.distributed.embed_dask`, ``skhsfm embed``) serves the
        whole list and the other way round. A str or path is the folder (a
        ``joblib.Memory`` gives its ``location``); entries go to its
        ``skhsfm_embeddings`` subfolder. An image's key is its content (arrays
        and PIL images) or its file path, size and modification time (files),
        plus ``backbone``, ``model_name``, ``pretrained`` (with the weights
        file's size and time), ``preprocess`` and ``precision``.
        ``batch_size``, ``device``, ``num_workers`` and ``normalize`` (applied
        after the cache) are not part of the key. Every entry is verified when
        read (the key it was written for, its shape and dtype, the file's
        checksum); one that does not match is recomputed with a warning.
        Entries are written atomically. A folder that cannot be created is a
        ``ValueError`` naming ``memory``.

    See Also
    --------
    skhsfm.HSFMClassifier : A group-robust linear head for these embeddings.

    Notes
    -----
    Accepted inputs for ``X``:

    - a list (or 1-D array, pandas Series, one-column DataFrame) of image file
      paths (``str`` or ``pathlib.Path``), PIL images, single-image numpy arrays
      ``(H, W)`` / ``(H, W, C)``, or single-image tensors ``(C, H, W)`` /
      ``(H, W, C)``; kinds may be mixed and sizes may differ;
    - a numpy array ``(N, H, W, C)`` (channels last) or ``(N, H, W)``
      (grayscale);
    - a torch tensor ``(N, C, H, W)`` or ``(N, H, W, C)`` (the layout is read
      from which axis has 1, 3 or 4 entries, channels-first winning when both
      do) or ``(N, H, W)``.

    Pixels are uint8 (0-255) or float in ``[0, 1]``; float images are rounded to
    8 bits before preprocessing, as the standard transforms work on 8-bit
    images. Grayscale, RGBA and palette images are converted to RGB (alpha is
    dropped). A 3-D array or tensor is always a stack of grayscale images, not
    one color image.

    The embedder itself holds no fitted state. Loading a large backbone takes
    seconds; it happens once per process for equal load settings: embedders
    with the same ``backbone``, ``model_name``, ``pretrained`` and ``device``
    (a module backbone: the same class and weights) share one loaded model,
    so clones made by :func:`~sklearn.base.clone` or copies unpickled in a
    Dask or Ray worker do not load it again. A process keeps the two most
    recently loaded models for such sharing. A module that is already loaded
    in the process under the same fingerprint is used in place of an equal
    copy (which is then not moved to ``device``).

    Examples
    --------
    >>> import numpy as np
    >>> import torch
    >>> from skhsfm.embedding import BackboneEmbedder
    >>> trunk = torch.nn.Sequential(
    ...     torch.nn.Conv2d(3, 8, kernel_size=3),
    ...     torch.nn.AdaptiveAvgPool2d(1),
    ...     torch.nn.Flatten(),
    ... )
    >>> images = np.zeros((4, 32, 32, 3), dtype=np.uint8)
    >>> embedder = BackboneEmbedder(trunk, device="cpu")
    >>> embedder.fit_transform(images).shape
    (4, 8)
    >>> embedder.get_feature_names_out()[:2]
    array(['backboneembedder0', 'backboneembedder1'], dtype=object)
    """

    # the "?" of the HTML repr links to this class's page on the docs site
    _doc_link_module = DOC_LINK_MODULE
    _doc_link_template = DOC_LINK_TEMPLATE

    _parameter_constraints = {
        # Library names come from the registry: a new library is one entry there.
        "backbone": [StrOptions(set(library_names())), callable],
        "model_name": [str],
        "pretrained": [str, os.PathLike, None],
        "preprocess": [callable, None],
        "batch_size": [Interval(Integral, 1, None, closed="left")],
        "device": [str],
        "precision": [StrOptions({"fp32", "amp"})],
        "normalize": ["boolean"],
        "num_workers": [Interval(Integral, 0, None, closed="left")],
        "show_progress_bar": ["boolean", None],
        "memory": [None, str, os.PathLike, HasMethods(["cache"])],
    }

    def __init__(
        self,
        backbone="open_clip",
        *,
        model_name="ViT-B-32",
        pretrained="laion2b_s34b_b79k",
        preprocess=None,
        batch_size=64,
        device="auto",
        precision="fp32",
        normalize=False,
        num_workers=0,
        show_progress_bar=None,
        memory=None,
    ):
        self.backbone = backbone
        self.model_name = model_name
        self.pretrained = pretrained
        self.preprocess = preprocess
        self.batch_size = batch_size
        self.device = device
        self.precision = precision
        self.normalize = normalize
        self.num_workers = num_workers
        self.show_progress_bar = show_progress_bar
        self.memory = memory

    # ------------------------------------------------------------ public API

    @fit_context(prefer_skip_nested_validation=True)
    def fit(self, X=None, y=None):
        """Check the parameters; the embedder learns nothing from data.

        Parameters
        ----------
        X : images or None, default=None
            Ignored (accepted for API consistency). The backbone is not loaded.
        y : None
            Ignored.

        Returns
        -------
        self : BackboneEmbedder
            The embedder.
        """
        return self

    def transform(self, X):
        """Embed images.

        Parameters
        ----------
        X : sequence of images, ndarray or tensor
            File paths, PIL images, arrays or tensors; see the class Notes.

        Returns
        -------
        X_embedded : ndarray of shape (n_images, n_features), dtype float32
            One embedding per image, in input order.
        """
        self._validate_params()
        if isinstance(self.memory, (str, os.PathLike)):  # say which argument
            ensure_folder(self.memory, "memory")
        images = as_image_sequence(X)
        embeddings = cached_embeddings(
            self.memory, self._cache_key, images, self._embed, stacklevel=2
        )
        # Remember the output size so get_feature_names_out needs no backbone.
        self._dim_memo = (self._config_identity(), embeddings.shape[1])
        if self.normalize:
            embeddings = l2_normalize(embeddings)
        return embeddings

    def encode_text(self, prompts):
        """Embed text prompts in the image embedding space (CLIP backbones).

        Parameters
        ----------
        prompts : str or sequence of str
            Text prompts, e.g. ``["a photo of a landbird", "a photo of a
            waterbird"]``.

        Returns
        -------
        text_embeddings : ndarray of shape (n_prompts, n_features), dtype float32
            L2-normalised when ``normalize=True``, like the image embeddings.
        """
        self._validate_params()
        if not self._name().encodes_text:
            raise ValueError(
                "encode_text needs a CLIP backbone (backbone='open_clip'); got "
                f"backbone={_short_repr(self.backbone)}."
            )
        prompts = check_prompts(prompts)
        embeddings = encode_prompts(
            self._loaded(),
            prompts,
            batch_size=self.batch_size,
            device=self._device(),
            precision=self.precision,
        )
        if self.normalize:
            embeddings = l2_normalize(embeddings)
        return embeddings

    def get_feature_names_out(self, input_features=None):
        """Names of the embedding dimensions: ``backboneembedder0``, ...

        Parameters
        ----------
        input_features : None
            Ignored; the inputs are images, which have no feature names.

        Returns
        -------
        feature_names_out : ndarray of str objects
            ``"backboneembedder{i}"`` for ``i`` in ``range(n_features)``. The
            number of features is remembered from the last :meth:`transform`;
            before any, it is read from the backbone (loading it), or for a
            user-supplied module found by embedding one blank 224x224 image.
        """
        prefix = type(self).__name__.lower()
        dim = self._embedding_dim()
        return np.asarray([f"{prefix}{i}" for i in range(dim)], dtype=object)

    def __sklearn_is_fitted__(self):
        # Stateless: usable right after construction, like FunctionTransformer.
        return True

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.requires_fit = False
        # Inputs are images (paths, PIL, image stacks), not 2-D feature arrays;
        # this also tells scikit-learn's common checks not to feed 2-D data.
        tags.input_tags.two_d_array = False
        tags.input_tags.three_d_array = True
        tags.input_tags.string = True
        tags.transformer_tags.preserves_dtype = ["float32"]
        return tags

    def __getstate__(self):
        # Copy: on Python >= 3.11 object.__getstate__ returns the live __dict__.
        state = dict(super().__getstate__())
        # the loaded model, and the dimension memo keyed on this process's ids
        for name in ("_runtime", "_dim_memo", "_load_key_memo"):
            state.pop(name, None)
        return state

    # ------------------------------------------------------------- helpers

    def _name(self):
        """The parsed backbone (model_name only counts next to a library name)."""
        model_name = self.model_name if isinstance(self.backbone, str) else None
        return parse_backbone(self.backbone, model_name)

    def _device(self):
        from skhsfm._utils.torch import resolve_device

        return resolve_device(self.device)

    def _runtime_key(self, device):
        name = self._name()
        if name.is_custom:
            identity = (name, id(self.backbone))
        else:
            pretrained = self.pretrained
            if isinstance(pretrained, os.PathLike):
                pretrained = os.fspath(pretrained)
            identity = (name, pretrained)
        return identity + (str(device),)

    def _load_key(self, device):
        """The key of the per-process registry of loaded backbones.

        Fingerprinting a module hashes its weights, so it is done once per
        module object (memo keyed on its ``id``, never pickled).
        """
        name = self._name()
        if not name.is_custom:
            return load_key(
                name, backbone=None, pretrained=self.pretrained, device=device
            )
        memo = getattr(self, "_load_key_memo", None)
        identity = (id(self.backbone), str(device))
        if memo is not None and memo[0] == identity:
            return memo[1]
        key = load_key(name, backbone=self.backbone, pretrained=None, device=device)
        self._load_key_memo = (identity, key)
        return key

    def _cache_key(self):
        """The backbone part of the ``memory`` key; None when it cannot be made."""
        return backbone_key(
            self._name(),
            backbone=self.backbone,
            pretrained=self.pretrained,
            preprocess=self.preprocess,
            precision=self.precision,
        )

    def _config_identity(self):
        """What fixes the output size: the backbone and the preprocess."""
        return self._runtime_key("-") + (id(self.preprocess),)

    def _loaded(self):
        """The loaded backbone, (re)loading it when the configuration changed."""
        device = self._device()
        key = self._runtime_key(device)
        runtime = getattr(self, "_runtime", None)
        if runtime is not None and runtime[0] == key:
            return runtime[1]
        self._runtime = None  # free the old model before loading a new one

        def load():
            loaded = load_backbone(
                self._name(), self.pretrained, device, module=self.backbone
            )
            logger.info("Loaded backbone %s on %s.", _short_repr(self.backbone), device)
            return loaded

        # Equal load settings share one model per process (a worker's fresh
        # copies of this embedder, clones in a search): see _runtime.
        loaded = shared_backbone(self._load_key(device), load)
        self._runtime = (key, loaded)
        return loaded

    def _embed(self, images):
        """Run the backbone over ``images`` in batches; float32 (n, d) array."""
        loaded = self._loaded()
        bar = progress_bar(
            len(images), "Embedding images", show=self.show_progress_bar, unit="img"
        )
        with bar:
            out = embed_batches(
                loaded.forward,
                self.preprocess or loaded.preprocess,
                images,
                batch_size=self.batch_size,
                device=self._device(),
                precision=self.precision,
                num_workers=self.num_workers,
                bar=bar,
            )
        if loaded.dim is None:
            loaded.dim = out.shape[1]
        return out

    def _embedding_dim(self):
        self._validate_params()
        memo = getattr(self, "_dim_memo", None)
        if memo is not None and memo[0] == self._config_identity():
            return memo[1]
        loaded = self._loaded()
        if loaded.dim is None:  # a user module: run it once on a blank image
            blank = np.zeros((1, _PROBE_SIZE, _PROBE_SIZE, 3), dtype=np.uint8)
            loaded.dim = self._embed(blank).shape[1]
        return loaded.dim


def _short_repr(value, limit=60):
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."
