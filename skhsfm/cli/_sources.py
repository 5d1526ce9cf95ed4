"""Where ``skhsfm benchmark`` gets its embeddings.

A *source* turns a dataset (the embedded dominoes benchmark, dominoes-style
``.npy`` arrays, or an image dataset on disk) into train / validation / test
embeddings with labels and groups, one :class:`Embeddings` per seed. Sources
whose embeddings do not depend on the seed (a fixed pretrained backbone) compute
them once. Embeddings are cached on disk so that a re-run skips the backbone.
Which model ``--backbone/--pretrained/--weights`` name is decided in one place,
:func:`resolve_backbone`.

torch, torchvision and open_clip are imported inside the functions.
"""

import os
import time
from dataclasses import dataclass, field

import numpy as np

from skhsfm._linear import LinearHead
from skhsfm._utils.hashing import array_digest
from skhsfm.cli._cache import CacheInvalid, cache_file, read_cache, write_cache
from skhsfm.cli._common import CLIError
from skhsfm.embedding._registry import parse_backbone

__all__ = [
    "SPLITS",
    "Embeddings",
    "EmbeddedDominoes",
    "DominoesArrays",
    "ImageDataset",
    "make_source",
    "resolve_backbone",
]

SPLITS = ("train", "val", "test")
# What users can catch from loaders and the embedder: reported as one line.
_USER_ERRORS = (OSError, ValueError, RuntimeError, ImportError, TypeError)


@dataclass
class Embeddings:
    """Embeddings of the three splits, plus what the methods may start from.

    ``head`` is the backbone's own last layer as a :class:`~skhsfm.LinearHead`
    (scikit-learn's convention), or None when the backbone has none (then the
    methods start from a logistic regression on the training embeddings).
    ``val`` may be None (no validation split): the methods then hold out part
    of the training split themselves.
    """

    splits: dict
    group_names: list
    head: LinearHead = None
    timings: dict = field(default_factory=dict)
    info: dict = field(default_factory=dict)


# ----------------------------------------------------------------- backbones


def resolve_backbone(backbone, pretrained, weights, dataset):
    """Turn ``--backbone/--pretrained/--weights`` into an embedder configuration.

    Model names go through the backbone registry's one parser
    (:func:`skhsfm.embedding._registry.parse_backbone`); this function adds
    the command's defaults and its ``--pretrained``/``--weights`` rules.

    Returns ``{"kind": "dominoes-cnn"}`` or ``{"kind": "embedder", "backbone":
    "torchvision" | "open_clip", "model_name": ..., "pretrained": ...}``.
    """
    if pretrained is not None and weights is not None:
        raise CLIError(
            "give either --pretrained (open_clip weights) or --weights "
            "(torchvision weights), not both."
        )
    if backbone is None:
        if dataset == "dominoes":
            if pretrained is not None or weights is not None:
                raise CLIError(
                    "--pretrained/--weights need --backbone NAME; the default "
                    "dominoes backbone is the small CNN trained on the training split."
                )
            return {"kind": "dominoes-cnn"}
        backbone = "resnet50"
        if pretrained is None and weights is None:
            weights = "IMAGENET1K_V1"
    if backbone == "dominoes-cnn":
        if dataset != "dominoes":
            raise CLIError(
                f"--backbone dominoes-cnn is trained on dominoes images; for "
                f"--dataset {dataset} pick a torchvision or open_clip backbone, "
                "e.g. --backbone resnet50 --weights /path/to/resnet50.pth."
            )
        return {"kind": "dominoes-cnn"}
    # Which weights option was given decides the library of a bare model name.
    library = "torchvision" if weights is not None else None
    if pretrained is not None:
        library = "open_clip"
    try:
        name = parse_backbone(backbone, library=library, argument="--backbone")
    except ValueError as exc:
        raise CLIError(str(exc)) from exc
    if name.library == "torchvision":
        if pretrained is not None:
            raise CLIError(
                f"--pretrained is for open_clip backbones; for torchvision model "
                f"{name.model_name!r} pass --weights NAME_OR_FILE."
            )
        chosen = "DEFAULT" if weights is None else weights
    else:
        if weights is not None:
            raise CLIError(
                f"--weights is for torchvision backbones; for open_clip model "
                f"{name.model_name!r} pass --pretrained TAG_OR_FILE."
            )
        if pretrained is None and name.source is None:
            raise CLIError(
                f"--backbone {backbone}: open_clip needs --pretrained, a weights "
                "tag (e.g. laion2b_s34b_b79k) or a local weights file, or "
                "'none' for random weights."
            )
        chosen = pretrained
    if isinstance(chosen, str) and chosen.lower() == "none":
        chosen = None
    return {"kind": "embedder", **name.embedder_params(), "pretrained": chosen}


def _describe_backbone(spec):
    if spec["kind"] == "dominoes-cnn":
        return "dominoes CNN trained by ERM on the training split (one per seed)"
    weights = spec["pretrained"]
    weights = "random weights" if weights is None else f"weights {weights}"
    return f"{spec['backbone']} {spec['model_name']} ({weights})"


def _make_embedder(spec, settings, reporter):
    from skhsfm.embedding import BackboneEmbedder

    memory = None
    if settings.cache_dir is not None:
        memory = os.path.join(settings.cache_dir, "embeddings")
    return BackboneEmbedder(
        spec["backbone"],
        model_name=spec["model_name"],
        pretrained=spec["pretrained"],
        batch_size=settings.batch_size,
        device=str(settings.device),
        num_workers=settings.num_workers,
        show_progress_bar=reporter.bars,
        memory=memory,
    )


def _embed_with(embedder, images, what):
    try:
        return embedder.transform(images)
    except _USER_ERRORS as exc:
        hint = ""
        if "weights" in str(exc):
            hint = (
                " On the command line, give a local weights file with --weights "
                "FILE (torchvision) or --pretrained FILE (open_clip)."
            )
        raise CLIError(f"embedding the {what} failed: {exc}{hint}") from exc


# ---------------------------------------------------------------- the CNN


def _train_cnn(train_images, train_target, seed, settings, reporter):
    from sklearn.utils import Bunch

    from skhsfm.datasets import train_dominoes_backbone

    n_epochs = settings.backbone_epochs
    tic = time.perf_counter()
    with reporter.epoch_callback(n_epochs, f"seed {seed}: backbone") as on_epoch:
        backbone = train_dominoes_backbone(
            Bunch(images=train_images, target=train_target),
            n_epochs=n_epochs,
            random_state=seed,
            device=str(settings.device),
            on_epoch=on_epoch,
        )
    return backbone, time.perf_counter() - tic


def _cnn_embeddings(images, targets, groups, seed, settings, reporter):
    """Train the CNN on ``images["train"]`` and embed every split with it."""
    backbone, train_seconds = _train_cnn(
        images["train"], targets["train"], seed, settings, reporter
    )
    reporter.log(
        f"seed {seed}: backbone trained in {train_seconds:.1f} s "
        f"({settings.backbone_epochs} epochs, final loss "
        f"{backbone.loss_curve[-1]:.3f})"
    )
    tic = time.perf_counter()
    splits = {}
    for split in SPLITS:
        if images.get(split) is None:
            splits[split] = None
            continue
        X = backbone.embed(images[split], device=str(settings.device))
        splits[split] = (X, targets[split], groups[split])
    embed_seconds = time.perf_counter() - tic
    return splits, backbone.linear_head(), train_seconds, embed_seconds


def _load_or_compute(settings, reporter, seed, prefix, key_parts, compute):
    """One seed's :class:`Embeddings` from the verified cache, else ``compute()``.

    ``compute()`` returns ``(splits, head, group_names, timings)``; its result
    is cached when there is a cache folder. A cache file that fails
    verification (:mod:`skhsfm.cli._cache`) is recomputed and overwritten with
    a warning; a cache file that cannot be written is skipped with a warning.
    The run never stops because of the cache.
    """
    path, key = cache_file(settings.cache_dir, prefix, key_parts)
    if path is not None and os.path.lexists(path):
        try:
            splits, head, names, timings = read_cache(path, key)
        except CacheInvalid as exc:
            reporter.warn(
                f"seed {seed}: cached embeddings {path} not used: {exc}. "
                "Recomputing them and replacing the file."
            )
        else:
            reporter.log(f"seed {seed}: embeddings read from cache {path}")
            return Embeddings(splits, names, head, {}, {"cached": True, **timings})
    splits, head, names, timings = compute()
    if path is not None:
        try:
            write_cache(path, key, splits, head, names, timings)
        except OSError as exc:
            reporter.warn(
                f"seed {seed}: could not write the cache file {path} ({exc}); "
                "continuing without it (--no-cache turns caching off)."
            )
    return Embeddings(splits, list(names), head, timings)


# ---------------------------------------------------------------- sources


class EmbeddedDominoes:
    """The offline dominoes benchmark: new images and a new CNN for every seed."""

    name = "dominoes (embedded)"

    def __init__(self, settings, reporter):
        self.settings = settings
        self.reporter = reporter

    def config(self):
        s = self.settings
        return {
            "dataset": "dominoes (embedded, built from scikit-learn's data)",
            "n_train": s.n_train,
            "n_val": s.n_val,
            "n_test": s.n_test,
            "backbone": _describe_backbone({"kind": "dominoes-cnn"}),
            "backbone_epochs": s.backbone_epochs,
        }

    def load(self, seed):
        s = self.settings
        from skhsfm.datasets._dominoes_cnn import CNN_VERSION

        key = (
            "embedded",
            seed,
            s.n_train,
            s.n_val,
            s.n_test,
            s.backbone_epochs,
            CNN_VERSION,
        )
        return _load_or_compute(
            s,
            self.reporter,
            seed,
            f"dominoes_seed{seed}",
            key,
            lambda: self._compute(seed),
        )

    def _compute(self, seed):
        from skhsfm.datasets import make_dominoes

        s = self.settings
        tic = time.perf_counter()
        try:
            data = make_dominoes(s.n_train, s.n_val, s.n_test, random_state=seed)
        except ValueError as exc:  # sizes too small for every group
            raise CLIError(f"--n-train/--n-val/--n-test: {exc}") from exc
        images = {split: data[split].images for split in SPLITS}
        targets = {split: data[split].target for split in SPLITS}
        groups = {split: data[split].group for split in SPLITS}
        data_seconds = time.perf_counter() - tic
        splits, head, train_seconds, embed_seconds = _cnn_embeddings(
            images, targets, groups, seed, s, self.reporter
        )
        timings = {
            "data": data_seconds,
            "backbone_training": train_seconds,
            "embedding": embed_seconds,
        }
        return splits, head, list(data.group_names), timings


def _as_uint8_images(x, path_hint, value_range=None):
    """Images from a .npy array as uint8 ``(n, H, W, 3)``.

    Pixels that are not uint8 are brought to 8 bits by their value range
    (:func:`skhsfm.embedding._pixels.to_uint8`: 16-bit scaled, floats in [0, 1]
    or [0, 255]); NaN and out-of-range values are refused. ``value_range``
    (the range over every split) makes the splits of one dataset read alike.
    """
    from skhsfm.embedding._pixels import to_uint8

    x = np.asarray(x)
    if x.ndim == 3:
        x = x[..., None]
    if x.ndim != 4:
        raise CLIError(
            f"{path_hint}: expected features (n, d) or images (n, H, W[, C]) / "
            f"(n, C, H, W); got shape {x.shape}."
        )
    if x.shape[-1] not in (1, 3) and x.shape[1] in (1, 3):
        x = x.transpose(0, 2, 3, 1)
    if x.shape[-1] not in (1, 3):
        raise CLIError(
            f"{path_hint}: images must have 1 or 3 channels (first or last axis "
            f"after the sample axis); got shape {x.shape}."
        )
    if x.dtype.kind not in "fiub":
        raise CLIError(f"{path_hint}: images must be numeric; got dtype {x.dtype}.")
    try:
        x = to_uint8(x, path_hint, value_range)
    except ValueError as exc:
        raise CLIError(str(exc)) from exc
    if x.shape[-1] == 1:
        x = np.repeat(x, 3, axis=-1)
    return np.ascontiguousarray(x)


def _check_values(x, path):
    """Numeric and finite: NaN embeddings or pixels would fail deep inside a fit."""
    if x.dtype.kind not in "fiub":
        raise CLIError(
            f"{path}: X must hold numbers (features or pixels); got dtype {x.dtype}."
        )
    if x.dtype.kind == "f" and not np.isfinite(x).all():
        bad = int(x.size - np.isfinite(x).sum())
        raise CLIError(
            f"{path}: {bad} of {x.size} values are NaN or infinite; features and "
            "pixels must be finite. Fix or drop those samples."
        )


def _subsample(n, cap, seed=0):
    """Sorted indices of a random subset of size ``cap`` (all when cap is None)."""
    if cap is None or cap >= n:
        return np.arange(n)
    return np.sort(np.random.RandomState(seed).choice(n, cap, replace=False))


class DominoesArrays:
    """``X_{split}.npy`` / ``y_{split}.npy`` / ``env_{split}.npy`` from a folder.

    ``X`` holding features ``(n, d)`` is used as the embeddings; ``X`` holding
    images is embedded by the CNN (trained per seed on the training images) or
    by a pretrained backbone.
    """

    name = "dominoes (arrays)"

    def __init__(self, root, backbone_spec, settings, reporter):
        self.root = root
        self.spec = backbone_spec
        self.settings = settings
        self.reporter = reporter
        self._shared = None
        from skhsfm.datasets import load_dominoes_arrays

        s = settings
        caps = {"train": s.n_train, "val": s.n_val, "test": s.n_test}
        self.raw = {}
        try:
            for split in SPLITS:
                bunch = load_dominoes_arrays(root, split=split, mmap_mode="r")
                keep = _subsample(bunch.target.shape[0], caps[split])
                self.raw[split] = (
                    np.asarray(bunch.data[keep]),
                    bunch.target[keep],
                    bunch.group[keep],
                )
        except _USER_ERRORS as exc:
            raise CLIError(str(exc)) from exc
        for split, (x, _, _) in self.raw.items():
            _check_values(x, os.path.join(root, f"X_{split}.npy"))
        self.group_names = list(bunch.group_names)
        self.features = self.raw["train"][0].ndim == 2

    def config(self):
        s = self.settings
        config = {
            "dataset": f"dominoes arrays from {self.root}",
            "n_train": int(self.raw["train"][1].shape[0]),
            "n_val": int(self.raw["val"][1].shape[0]),
            "n_test": int(self.raw["test"][1].shape[0]),
        }
        if self.features:
            config["backbone"] = "none (X_*.npy hold embeddings)"
        else:
            config["backbone"] = _describe_backbone(self.spec)
            if self.spec["kind"] == "dominoes-cnn":
                config["backbone_epochs"] = s.backbone_epochs
        return config

    def load(self, seed):
        if self.features:
            if self._shared is None:
                splits = {
                    split: (x.astype(np.float32, copy=False), y, g)
                    for split, (x, y, g) in self.raw.items()
                }
                self._shared = Embeddings(splits, self.group_names)
            return self._shared
        from skhsfm.embedding._pixels import value_range

        joint = value_range([x for x, _, _ in self.raw.values()])
        images = {
            split: _as_uint8_images(x, os.path.join(self.root, f"X_{split}.npy"), joint)
            for split, (x, _, _) in self.raw.items()
        }
        targets = {split: v[1] for split, v in self.raw.items()}
        groups = {split: v[2] for split, v in self.raw.items()}
        if self.spec["kind"] == "dominoes-cnn":
            return self._cnn(images, targets, groups, seed)
        if self._shared is None:
            self._shared = self._embed(images, targets, groups)
        return self._shared

    def _cnn(self, images, targets, groups, seed):
        from skhsfm.datasets._dominoes_cnn import CNN_VERSION

        s = self.settings
        key = [
            "arrays",
            seed,
            s.backbone_epochs,
            CNN_VERSION,
            # what is embedded and what the labels are: a changed y_/env_ file
            # must not reuse embeddings stored with the old labels
            [
                (
                    images[split].shape,
                    array_digest(images[split]),
                    array_digest(targets[split]),
                    array_digest(groups[split]),
                )
                for split in SPLITS
            ],
        ]

        def compute():
            splits, head, train_seconds, embed_seconds = _cnn_embeddings(
                images, targets, groups, seed, s, self.reporter
            )
            timings = {"backbone_training": train_seconds, "embedding": embed_seconds}
            return splits, head, self.group_names, timings

        return _load_or_compute(
            s, self.reporter, seed, f"dominoes_arrays_seed{seed}", key, compute
        )

    def _embed(self, images, targets, groups):
        embedder = _make_embedder(self.spec, self.settings, self.reporter)
        tic = time.perf_counter()
        splits = {}
        for split in SPLITS:
            self.reporter.log(f"embedding {split} ({len(images[split])} images)")
            X = _embed_with(embedder, images[split], f"{split} images")
            splits[split] = (X, targets[split], groups[split])
        seconds = time.perf_counter() - tic
        return Embeddings(splits, self.group_names, None, {"embedding": seconds})


_LOADERS = {
    "waterbirds": "load_waterbirds",
    "celeba": "load_celeba",
    "metashift": "load_metashift",
}


class ImageDataset:
    """Waterbirds, CelebA or MetaShift images embedded by a pretrained backbone."""

    def __init__(self, dataset, root, backbone_spec, settings, reporter):
        import skhsfm.datasets

        self.name = dataset
        self.root = root
        self.spec = backbone_spec
        self.settings = settings
        self.reporter = reporter
        self._shared = None
        loader = getattr(skhsfm.datasets, _LOADERS[dataset])
        try:
            bunch = loader(root)
        except _USER_ERRORS as exc:
            raise CLIError(str(exc)) from exc
        self.bunch = bunch
        s = settings
        caps = {"train": s.n_train, "val": s.n_val, "test": s.n_test}
        self.index = {}
        for split in SPLITS:
            members = np.flatnonzero(bunch.split == split)
            self.index[split] = members[_subsample(members.shape[0], caps[split])]
        for split in ("train", "test"):
            if self.index[split].shape[0] == 0:
                raise CLIError(
                    f"{dataset} at {root}: the {split} split is empty; the "
                    "benchmark needs train and test images (and uses val as the "
                    "hard pool when present)."
                )

    def config(self):
        return {
            "dataset": f"{self.name} from {self.root}",
            "n_train": int(self.index["train"].shape[0]),
            "n_val": int(self.index["val"].shape[0]),
            "n_test": int(self.index["test"].shape[0]),
            "backbone": _describe_backbone(self.spec),
        }

    def load(self, seed):
        if self._shared is not None:
            return self._shared
        embedder = _make_embedder(self.spec, self.settings, self.reporter)
        bunch = self.bunch
        tic = time.perf_counter()
        splits = {}
        for split in SPLITS:
            index = self.index[split]
            if index.shape[0] == 0:
                splits[split] = None
                self.reporter.log(
                    f"no {split} images: each method holds out part of the "
                    "training split as its hard pool"
                )
                continue
            self.reporter.log(f"embedding {split} ({index.shape[0]} images)")
            files = bunch.filenames[index].tolist()
            X = _embed_with(embedder, files, f"{self.name} {split} images")
            splits[split] = (X, bunch.target[index], bunch.group[index])
        timings = {"embedding": time.perf_counter() - tic}
        self._shared = Embeddings(splits, list(bunch.group_names), None, timings)
        return self._shared


def make_source(settings, reporter):
    """The source the benchmark ``settings`` ask for (a :class:`CLIError` when
    the backbone options do not fit the dataset)."""
    if settings.embedded:
        return EmbeddedDominoes(settings, reporter)
    spec = resolve_backbone(
        settings.backbone, settings.pretrained, settings.weights, settings.dataset
    )
    if settings.dataset == "dominoes":
        return DominoesArrays(settings.root, spec, settings, reporter)
    return ImageDataset(settings.dataset, settings.root, spec, settings, reporter)
