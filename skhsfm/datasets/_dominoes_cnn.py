"""A small CNN trained by plain ERM on the dominoes images, and its trainer.

The dominoes benchmark embeds its images with this CNN (the embedder's
pretrained backbones live in :mod:`skhsfm.embedding`). torch is imported at
module level here; :mod:`skhsfm.datasets` loads this module only when one of its
names is first used, so ``import skhsfm`` stays light.
"""

import logging
import math
import time
from dataclasses import dataclass
from numbers import Integral, Real

import numpy as np
from sklearn.utils import check_random_state

from skhsfm._linear import LinearHead
from skhsfm._sklearn_compat import Hidden, Interval, StrOptions, validate_params
from skhsfm._utils.deprecation import warn_deprecated
from skhsfm._utils.text import plain
from skhsfm._utils.torch import make_generator, resolve_device, to_numpy, torch

__all__ = [
    "CNN_VERSION",
    "EpochRecord",
    "ERMBackbone",
    "ImageTransform",
    "train_dominoes_backbone",
]

#: Changes with the network or its training: cached embeddings of another
#: version (``skhsfm benchmark``'s cache) are recomputed, not reused.
#: 2: stride-2 first block, width 16, 6 epochs, channels-last (issue 24).
CNN_VERSION = 2

logger = logging.getLogger(__name__)

nn = torch.nn

# Channels-last tensors let the CPU convolutions run about 1.5x faster on the
# 32x32 dominoes images (measured, issue 24); results agree to float rounding.
_MEMORY_FORMAT = torch.channels_last


class ImageTransform:
    """Map uint8 RGB images to the normalized float tensors a backbone expects.

    Parameters
    ----------
    mean : array-like of shape (3,)
        Per-channel mean, in [0, 1] units, subtracted after scaling by 1/255.
    std : array-like of shape (3,)
        Per-channel standard deviation, in [0, 1] units.

    Notes
    -----
    Calling the transform on one image (an ``(H, W, 3)`` uint8 array or a PIL
    image) returns a ``(3, H, W)`` float32 tensor, as torchvision transforms do;
    :meth:`batch` does the same for an ``(n, H, W, 3)`` array at once.
    """

    def __init__(self, mean, std):
        self.mean = np.asarray(mean, dtype=np.float32).reshape(3)
        self.std = np.asarray(std, dtype=np.float32).reshape(3)

    def __repr__(self):
        mean = np.round(self.mean, 4).tolist()
        std = np.round(self.std, 4).tolist()
        return f"ImageTransform(mean={mean}, std={std})"

    def _to_array(self, images):
        if hasattr(images, "convert"):  # a PIL image
            images = np.asarray(images.convert("RGB"))
        images = np.asarray(images)
        if images.shape[-1] != 3 or images.ndim not in (3, 4):
            raise ValueError(
                "expected RGB images with channels last, shape (H, W, 3) or "
                f"(n, H, W, 3); got shape {images.shape}."
            )
        return images

    def _normalize(self, images):
        scaled = images.astype(np.float32) / np.float32(255.0)
        return (scaled - self.mean) / self.std

    def __call__(self, image):
        """One ``(H, W, 3)`` uint8 image (or PIL image) -> ``(3, H, W)`` tensor."""
        image = self._to_array(image)
        if image.ndim != 3:
            raise ValueError(
                f"expected one image of shape (H, W, 3); got shape {image.shape}. "
                "Use .batch() for a stack of images."
            )
        return torch.from_numpy(
            np.ascontiguousarray(self._normalize(image).transpose(2, 0, 1))
        )

    def batch(self, images):
        """``(n, H, W, 3)`` uint8 images -> ``(n, 3, H, W)`` float32 tensor."""
        images = self._to_array(images)
        if images.ndim == 3:
            images = images[None]
        out = self._normalize(images).transpose(0, 3, 1, 2)
        return torch.from_numpy(np.ascontiguousarray(out))


def _conv_block(in_channels, out_channels, *, stride=1, pool=True):
    layers = [
        nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
    ]
    if pool:
        layers.append(nn.MaxPool2d(2))
    return nn.Sequential(*layers)


class ERMBackbone(nn.Module):
    """A compact CNN whose ``forward`` returns penultimate embeddings.

    Three conv blocks (conv 3x3, batch norm, ReLU): the first with stride 2,
    the next two each followed by a max pool 2; then global average pooling
    and a linear layer with ReLU to ``embedding_dim``; ``head`` maps embeddings
    to class logits. Build one with :func:`train_dominoes_backbone`.

    Parameters
    ----------
    n_classes : int, default=2
        Number of outputs of ``head``.
    width : int, default=16
        Channels of the first block (doubled in each later block).
    embedding_dim : int, default=128
        Size ``d`` of the embeddings ``forward`` returns.
    preprocess : ImageTransform or None, default=None
        The transform from uint8 images to the tensors this network expects;
        kept here so that embedding code finds it.

    Notes
    -----
    In skhsfm 0.1 the first block kept the full resolution and pooled after
    the convolution, and ``width`` was 32. The dominoes images need neither:
    their digit is drawn at twice its 8x8 size by pixel repetition and the
    photo is box-downsampled, so a stride-2 first convolution sees what a
    full-resolution one saw. The leaner network trains about five times faster
    on a CPU and leaves the same shortcut for the heads to fix (the numbers
    are in the user guide's benchmark page).

    Attributes
    ----------
    features : torch.nn.Sequential
        The embedding network; ``forward(x)`` runs it on ``x`` of shape
        ``(n, 3, H, W)`` and returns ``(n, embedding_dim)``.
    head : torch.nn.Linear
        ``Linear(embedding_dim, n_classes)``, the ERM classifier;
        :meth:`linear_head` gives it as a numpy :class:`~skhsfm.LinearHead`.
    loss_curve : list of float
        Mean training loss per epoch (filled by :func:`train_dominoes_backbone`).
    """

    def __init__(self, n_classes=2, width=16, embedding_dim=128, preprocess=None):
        super().__init__()
        self.n_classes = int(n_classes)
        self.embedding_dim = int(embedding_dim)
        self.preprocess = preprocess
        self.loss_curve = []
        self.features = nn.Sequential(
            _conv_block(3, width, stride=2, pool=False),
            _conv_block(width, 2 * width),
            _conv_block(2 * width, 4 * width),
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
            nn.Linear(4 * width, embedding_dim),
            nn.ReLU(inplace=True),
        )
        self.head = nn.Linear(embedding_dim, n_classes)

    def forward(self, x):
        """Penultimate embeddings of ``x`` (float tensor ``(n, 3, H, W)``)."""
        return self.features(x)

    def logits(self, x):
        """Class logits ``head(forward(x))``."""
        return self.head(self.features(x))

    def linear_head(self):
        """The ERM head as a :class:`~skhsfm.LinearHead` (numpy, no torch).

        In scikit-learn's convention: with two classes one row
        ``coef[1] - coef[0]`` (the same predictions as the two-row head), so
        ``head.coef`` and ``head.intercept`` can be passed as ``init_coef`` /
        ``init_intercept`` of :class:`~skhsfm.HSFMClassifier` and its peers;
        ``head.softmax_weights()`` gives one row per class. Classes are the
        indices ``0 .. n_classes - 1``.

        Returns
        -------
        head : LinearHead
        """
        W = to_numpy(self.head.weight).astype(np.float64)
        b = to_numpy(self.head.bias).astype(np.float64)
        return LinearHead.from_softmax(W, b)

    def head_weights(self, *, collapse_binary=False):
        """The ERM head as numpy arrays ``(coef, intercept)``.

        .. deprecated:: 0.2
            Use :meth:`linear_head`: ``linear_head().coef`` and ``.intercept``
            for ``collapse_binary=True``, the raw ``head.weight`` and
            ``head.bias`` otherwise. ``head_weights`` will be removed in 0.3.

        Parameters
        ----------
        collapse_binary : bool, default=False
            With two classes, return the single-row form ``(coef[1] - coef[0],
            intercept[1] - intercept[0])``.

        Returns
        -------
        coef : ndarray of shape (n_classes, d) or (1, d)
        intercept : ndarray of shape (n_classes,) or (1,)
        """
        warn_deprecated(
            "ERMBackbone.head_weights()",
            "use ERMBackbone.linear_head(), a LinearHead with .coef and "
            ".intercept (one row for two classes)",
        )
        if collapse_binary:
            head = self.linear_head()
            return head.coef, head.intercept
        coef = to_numpy(self.head.weight).astype(np.float64)
        intercept = to_numpy(self.head.bias).astype(np.float64)
        return coef, intercept

    def _run_batches(self, images, fn, batch_size, device):
        if self.preprocess is None:
            raise ValueError(
                "this backbone has no preprocess transform; set "
                "backbone.preprocess = ImageTransform(mean, std) first."
            )
        device = resolve_device(device)
        was_training = self.training
        self.eval()
        self.to(device, memory_format=_MEMORY_FORMAT)
        outputs = []
        try:
            with torch.inference_mode():
                for start in range(0, len(images), batch_size):
                    x = self.preprocess.batch(images[start : start + batch_size])
                    x = x.to(device).contiguous(memory_format=_MEMORY_FORMAT)
                    outputs.append(to_numpy(fn(x)).astype(np.float32))
        finally:
            self.train(was_training)
        if not outputs:
            return np.empty((0, self.embedding_dim), dtype=np.float32)
        return np.concatenate(outputs)

    def embed(self, images, *, batch_size=256, device="cpu"):
        """Embeddings of uint8 images ``(n, H, W, 3)`` as a float32 array ``(n, d)``."""
        return self._run_batches(images, self.forward, batch_size, device)

    def predict(self, images, *, batch_size=256, device="cpu"):
        """ERM head predictions (class indices) for uint8 images ``(n, H, W, 3)``."""
        logits = self._run_batches(images, self.logits, batch_size, device)
        return logits.argmax(axis=1)


def _init_weights(module, generator):
    """PyTorch's default initialization, drawn from a local generator."""
    for layer in module.modules():
        if isinstance(layer, (nn.Conv2d, nn.Linear)):
            nn.init.kaiming_uniform_(layer.weight, a=math.sqrt(5), generator=generator)
            if layer.bias is not None:
                fan_in = layer.weight[0].numel()
                bound = 1.0 / math.sqrt(fan_in)
                nn.init.uniform_(layer.bias, -bound, bound, generator=generator)


@dataclass(frozen=True)
class EpochRecord:
    """What :func:`train_dominoes_backbone` passes to ``on_epoch`` after an epoch.

    Attributes
    ----------
    epoch : int
        The epoch just finished, from 1 to ``n_epochs``.
    n_epochs : int
        The number of epochs of the whole run.
    loss : float
        Mean training cross-entropy over the epoch's mini-batches (weighted by
        batch size); also appended to the backbone's ``loss_curve``.
    accuracy : float or None
        Training accuracy over the epoch's mini-batches (as the weights moved),
        or None when it was not computed.
    seconds : float
        Wall time of the epoch.
    """

    epoch: int
    n_epochs: int
    loss: float
    accuracy: float = None
    seconds: float = 0.0

    def __str__(self):
        accuracy = (
            "" if self.accuracy is None else f", train accuracy {self.accuracy:.4f}"
        )
        return (
            f"epoch {self.epoch}/{self.n_epochs}: loss {self.loss:.4f}{accuracy} "
            f"({self.seconds:.1f}s)"
        )


#: Renamed keyword arguments of :func:`train_dominoes_backbone`: old -> new.
_RENAMED = {"epochs": "n_epochs", "lr": "learning_rate"}
_DEPRECATED = "deprecated"


def _renamed_arguments(given, current, defaults):
    """Values of the renamed arguments, warning for each old name used.

    ``given`` maps old names to what the caller passed (``"deprecated"`` when
    not passed), ``current`` new names to their values.
    """
    values = dict(current)
    for old, new in _RENAMED.items():
        value = given[old]
        if isinstance(value, str) and value == _DEPRECATED:
            continue
        if values[new] != defaults[new]:
            raise ValueError(
                f"{old} and {new} were both given ({old}={plain(value)}, "
                f"{new}={plain(values[new])}); {old} is the deprecated name of {new}, "
                f"pass {new} only."
            )
        warn_deprecated(
            f"train_dominoes_backbone({old}=...)",
            f"use {new}={plain(value)}",
            stacklevel=4,
        )
        values[new] = value
    return values


_DEFAULTS = {"n_epochs": 6, "learning_rate": 1e-3}


@validate_params(
    {
        "n_epochs": [Interval(Integral, 1, None, closed="left")],
        "batch_size": [Interval(Integral, 1, None, closed="left")],
        "learning_rate": [Interval(Real, 0, None, closed="neither")],
        "weight_decay": [Interval(Real, 0, None, closed="left")],
        "width": [Interval(Integral, 1, None, closed="left")],
        "embedding_dim": [Interval(Integral, 1, None, closed="left")],
        "random_state": ["random_state"],
        "verbose": ["verbose"],
        "on_epoch": [callable, None],
        "epochs": [
            Interval(Integral, 1, None, closed="left"),
            Hidden(StrOptions({_DEPRECATED})),
        ],
        "lr": [
            Interval(Real, 0, None, closed="neither"),
            Hidden(StrOptions({_DEPRECATED})),
        ],
    },
    prefer_skip_nested_validation=True,
)
def train_dominoes_backbone(
    train,
    *,
    n_epochs=_DEFAULTS["n_epochs"],
    batch_size=128,
    learning_rate=_DEFAULTS["learning_rate"],
    weight_decay=1e-4,
    width=16,
    embedding_dim=128,
    random_state=0,
    device="auto",
    verbose=False,
    on_epoch=None,
    epochs=_DEPRECATED,
    lr=_DEPRECATED,
):
    """Train an :class:`ERMBackbone` by plain ERM on a dominoes training split.

    Adam on the mean cross-entropy, no augmentation, no group information: the
    backbone is meant to pick up the spurious photo as a real ERM model would.

    Parameters
    ----------
    train : Bunch
        A split from :func:`make_dominoes` (anything with ``images`` of shape
        ``(n, H, W, 3)`` uint8 and integer ``target`` in ``0..n_classes-1``).
    n_epochs : int, default=6
        Passes over the training images (10 in skhsfm 0.1, for the wider
        network of :class:`ERMBackbone`'s Notes).
    batch_size : int, default=128
        Mini-batch size.
    learning_rate : float, default=1e-3
        Adam learning rate.
    weight_decay : float, default=1e-4
        Adam weight decay.
    width : int, default=16
        Channels of the first conv block.
    embedding_dim : int, default=128
        Size of the embeddings the backbone returns.
    random_state : int, RandomState instance or None, default=0
        Seeds weight initialization and shuffling through a local
        ``torch.Generator``; torch's global RNG is never touched. The same int
        gives the same weights on the same device and thread settings.
    device : str, default="auto"
        Where to train: ``"auto"`` (CUDA when available, else the CPU),
        ``"cpu"``, ``"cuda"``, ``"cuda:N"``... The returned backbone is moved
        back to the CPU.
    verbose : bool or int, default=False
        Print the loss and training accuracy after each epoch.
    on_epoch : callable or None, default=None
        Called after every epoch with an :class:`EpochRecord` (epoch, n_epochs,
        loss, accuracy, seconds), e.g. to advance a progress bar; its return
        value is ignored.
    epochs : int
        Deprecated alias of ``n_epochs`` (deprecated in 0.2, removed in 0.3).
    lr : float
        Deprecated alias of ``learning_rate`` (deprecated in 0.2, removed in 0.3).

    Returns
    -------
    backbone : ERMBackbone
        In eval mode, on the CPU, with ``preprocess`` (an :class:`ImageTransform`
        normalizing with the training images' channel statistics),
        ``head`` and ``loss_curve`` set.

    Examples
    --------
    >>> from skhsfm.datasets import make_dominoes, train_dominoes_backbone
    >>> data = make_dominoes(100, 20, 20, random_state=0)
    >>> losses = []
    >>> backbone = train_dominoes_backbone(
    ...     data.train, n_epochs=1, width=4, embedding_dim=8, device="cpu",
    ...     on_epoch=lambda record: losses.append(record.loss))
    >>> backbone.embed(data.val.images).shape
    (20, 8)
    >>> len(losses)
    1
    """
    renamed = _renamed_arguments(
        {"epochs": epochs, "lr": lr},
        {"n_epochs": n_epochs, "learning_rate": learning_rate},
        _DEFAULTS,
    )
    n_epochs, learning_rate = renamed["n_epochs"], renamed["learning_rate"]
    images, target = _check_train(train)
    n_classes = max(int(target.max()) + 1, len(getattr(train, "target_names", ())), 2)
    rng = check_random_state(random_state)
    dev = resolve_device(device)

    scaled = images.reshape(-1, 3).astype(np.float64) / 255.0
    transform = ImageTransform(scaled.mean(axis=0), scaled.std(axis=0) + 1e-6)
    # Module constructors draw default weights from torch's global RNG; fork it so
    # that the caller's RNG state is left as it was, then re-draw every weight
    # from a local generator.
    with torch.random.fork_rng(devices=[]):
        model = ERMBackbone(n_classes, width, embedding_dim, preprocess=transform)
    init_gen = make_generator(rng)
    with torch.no_grad():
        _init_weights(model, init_gen)
    model.to(dev, memory_format=_MEMORY_FORMAT)
    shuffle_gen = make_generator(rng)

    x_all = transform.batch(images).contiguous(memory_format=_MEMORY_FORMAT)
    y_all = torch.as_tensor(target, dtype=torch.long)
    optimizer = torch.optim.Adam(
        model.parameters(), lr=learning_rate, weight_decay=weight_decay
    )
    loss_fn = nn.CrossEntropyLoss()
    n = images.shape[0]
    model.train()
    for epoch in range(1, n_epochs + 1):
        tic = time.perf_counter()
        order = torch.randperm(n, generator=shuffle_gen)
        total, hits = 0.0, 0
        for start in range(0, n, batch_size):
            idx = order[start : start + batch_size]
            xb, yb = x_all[idx].to(dev), y_all[idx].to(dev)
            logits = model.logits(xb)
            loss = loss_fn(logits, yb)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            total += float(loss.detach()) * idx.shape[0]
            hits += int((logits.argmax(1) == yb).sum())
        model.loss_curve.append(total / n)
        record = EpochRecord(
            epoch, n_epochs, total / n, hits / n, time.perf_counter() - tic
        )
        logger.debug("%s", record)
        if verbose:
            print(record)
        if on_epoch is not None:
            on_epoch(record)
    model.eval()
    return model.to("cpu")


def _check_train(train):
    """``(images, target)`` of a training split, or a ValueError saying why not."""
    images = np.asarray(train.images)
    target = np.asarray(train.target)
    if images.ndim != 4 or images.shape[-1] != 3 or images.dtype != np.uint8:
        raise ValueError(
            "train.images must be uint8 RGB images of shape (n, H, W, 3); got "
            f"dtype {images.dtype} and shape {images.shape}."
        )
    if target.shape != (images.shape[0],) or target.dtype.kind not in "iu":
        raise ValueError(
            f"train.target must be integer class labels of shape ({images.shape[0]},);"
            f" got dtype {target.dtype} and shape {target.shape}."
        )
    if target.min() < 0:
        raise ValueError(
            f"train.target must hold class indices 0..n_classes-1; got {target.min()}."
        )
    return images, target
