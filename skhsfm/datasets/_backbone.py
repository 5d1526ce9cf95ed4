"""A small CNN trained by plain ERM on the dominoes images: the benchmark's backbone.

torch is imported at module level here; :mod:`skhsfm.datasets` loads this module
only when one of its names is first used, so ``import skhsfm`` stays light.
"""

import logging
import math
import time
from numbers import Integral, Real

import numpy as np
from sklearn.utils import check_random_state

from skhsfm._sklearn_compat import Interval, validate_params
from skhsfm._torch import make_generator, resolve_device, to_numpy, torch

__all__ = ["ERMBackbone", "ImageTransform", "train_dominoes_backbone"]

logger = logging.getLogger(__name__)

nn = torch.nn


class ImageTransform:
    """Map uint8 RGB images to the normalised float tensors a backbone expects.

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

    def _normalise(self, images):
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
            np.ascontiguousarray(self._normalise(image).transpose(2, 0, 1))
        )

    def batch(self, images):
        """``(n, H, W, 3)`` uint8 images -> ``(n, 3, H, W)`` float32 tensor."""
        images = self._to_array(images)
        if images.ndim == 3:
            images = images[None]
        out = self._normalise(images).transpose(0, 3, 1, 2)
        return torch.from_numpy(np.ascontiguousarray(out))


def _conv_block(in_channels, out_channels):
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
        nn.MaxPool2d(2),
    )


class ERMBackbone(nn.Module):
    """A compact CNN whose ``forward`` returns penultimate embeddings.

    Three conv blocks (conv 3x3, batch norm, ReLU, max pool 2), global average
    pooling, then a linear layer with ReLU to ``embedding_dim``; ``head`` maps
    embeddings to class logits. Build one with :func:`train_dominoes_backbone`.

    Parameters
    ----------
    n_classes : int, default=2
        Number of outputs of ``head``.
    width : int, default=32
        Channels of the first block (doubled in each later block).
    embedding_dim : int, default=128
        Size ``d`` of the embeddings ``forward`` returns.
    preprocess : ImageTransform or None, default=None
        The transform from uint8 images to the tensors this network expects;
        kept here so that embedding code finds it.

    Attributes
    ----------
    features : torch.nn.Sequential
        The embedding network; ``forward(x)`` runs it on ``x`` of shape
        ``(n, 3, H, W)`` and returns ``(n, embedding_dim)``.
    head : torch.nn.Linear
        ``Linear(embedding_dim, n_classes)``, the ERM classifier.
    loss_curve : list of float
        Mean training loss per epoch (filled by :func:`train_dominoes_backbone`).
    """

    def __init__(self, n_classes=2, width=32, embedding_dim=128, preprocess=None):
        super().__init__()
        self.n_classes = int(n_classes)
        self.embedding_dim = int(embedding_dim)
        self.preprocess = preprocess
        self.loss_curve = []
        self.features = nn.Sequential(
            _conv_block(3, width),
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

    def head_weights(self, *, collapse_binary=False):
        """The ERM head as numpy arrays, for ``init_coef`` / ``init_intercept``.

        Parameters
        ----------
        collapse_binary : bool, default=False
            With two classes, return the single-row form used by
            :class:`~sklearn.linear_model.LogisticRegression`
            (``coef[1] - coef[0]``, shape ``(1, d)``), which gives the same
            predictions.

        Returns
        -------
        coef : ndarray of shape (n_classes, d) or (1, d)
        intercept : ndarray of shape (n_classes,) or (1,)
        """
        coef = to_numpy(self.head.weight).astype(np.float64)
        intercept = to_numpy(self.head.bias).astype(np.float64)
        if collapse_binary and self.n_classes == 2:
            return coef[1:] - coef[:1], intercept[1:] - intercept[:1]
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
        self.to(device)
        outputs = []
        try:
            with torch.inference_mode():
                for start in range(0, len(images), batch_size):
                    x = self.preprocess.batch(images[start : start + batch_size])
                    outputs.append(to_numpy(fn(x.to(device))).astype(np.float32))
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
    """PyTorch's default initialisation, drawn from a local generator."""
    for layer in module.modules():
        if isinstance(layer, (nn.Conv2d, nn.Linear)):
            nn.init.kaiming_uniform_(layer.weight, a=math.sqrt(5), generator=generator)
            if layer.bias is not None:
                fan_in = layer.weight[0].numel()
                bound = 1.0 / math.sqrt(fan_in)
                nn.init.uniform_(layer.bias, -bound, bound, generator=generator)


@validate_params(
    {
        "epochs": [Interval(Integral, 1, None, closed="left")],
        "batch_size": [Interval(Integral, 1, None, closed="left")],
        "lr": [Interval(Real, 0, None, closed="neither")],
        "weight_decay": [Interval(Real, 0, None, closed="left")],
        "width": [Interval(Integral, 1, None, closed="left")],
        "embedding_dim": [Interval(Integral, 1, None, closed="left")],
        "random_state": ["random_state"],
        "verbose": ["verbose"],
    },
    prefer_skip_nested_validation=True,
)
def train_dominoes_backbone(
    train,
    *,
    epochs=10,
    batch_size=128,
    lr=1e-3,
    weight_decay=1e-4,
    width=32,
    embedding_dim=128,
    random_state=0,
    device="cpu",
    verbose=False,
):
    """Train an :class:`ERMBackbone` by plain ERM on a dominoes training split.

    Adam on the mean cross-entropy, no augmentation, no group information: the
    backbone is meant to pick up the spurious photo as a real ERM model would.

    Parameters
    ----------
    train : Bunch
        A split from :func:`make_dominoes` (anything with ``images`` of shape
        ``(n, H, W, 3)`` uint8 and integer ``target`` in ``0..n_classes-1``).
    epochs : int, default=10
        Passes over the training images.
    batch_size : int, default=128
        Mini-batch size.
    lr : float, default=1e-3
        Adam learning rate.
    weight_decay : float, default=1e-4
        Adam weight decay.
    width : int, default=32
        Channels of the first conv block.
    embedding_dim : int, default=128
        Size of the embeddings the backbone returns.
    random_state : int, RandomState instance or None, default=0
        Seeds weight initialisation and shuffling through a local
        ``torch.Generator``; torch's global RNG is never touched. The same int
        gives the same weights on the same machine and thread settings.
    device : str, default="cpu"
        Where to train (``"auto"``, ``"cpu"``, ``"cuda"``...). The returned
        backbone is moved back to the CPU.
    verbose : bool or int, default=False
        Print the loss and training accuracy after each epoch.

    Returns
    -------
    backbone : ERMBackbone
        In eval mode, on the CPU, with ``preprocess`` (an :class:`ImageTransform`
        normalising with the training images' channel statistics),
        ``head`` and ``loss_curve`` set.

    Examples
    --------
    >>> from skhsfm.datasets import make_dominoes, train_dominoes_backbone
    >>> data = make_dominoes(100, 20, 20, random_state=0)
    >>> backbone = train_dominoes_backbone(data.train, epochs=1, width=4,
    ...                                    embedding_dim=8)
    >>> backbone.embed(data.val.images).shape
    (20, 8)
    """
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
    model.to(dev)
    shuffle_gen = make_generator(rng)

    x_all = transform.batch(images)
    y_all = torch.as_tensor(target, dtype=torch.long)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay)
    loss_fn = nn.CrossEntropyLoss()
    n = images.shape[0]
    model.train()
    for epoch in range(1, epochs + 1):
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
        msg = (
            f"epoch {epoch}/{epochs}: loss {total / n:.4f}, train accuracy "
            f"{hits / n:.4f} ({time.perf_counter() - tic:.1f}s)"
        )
        logger.debug(msg)
        if verbose:
            print(msg)
    model.eval()
    return model.to("cpu")
