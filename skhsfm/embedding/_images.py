"""Image inputs for the embedder: validate what users pass, decode one image at a time.

Everything here works on numpy and PIL; torch tensors given as input are turned
into numpy arrays once, so this module imports neither torch nor PIL at import
time. Fingerprints of validated images (for the cache) live in ``_keys``.
"""

import os

import numpy as np

from skhsfm.embedding._pixels import pil_to_rgb, to_uint8

__all__ = ["as_image_sequence", "to_pil_rgb"]

_CHANNELS = (1, 3, 4)
_PIL_MISSING = (
    "Decoding images needs Pillow; install it with `pip install pillow` "
    "(or `pip install skhsfm[all]`)."
)


def _import_pil():
    try:
        from PIL import Image
    except ImportError as exc:  # pragma: no cover - pillow ships with torchvision
        raise ImportError(_PIL_MISSING) from exc
    return Image


def _is_pil(obj):
    return type(obj).__module__.startswith("PIL.") and hasattr(obj, "convert")


def _is_torch_tensor(obj):
    return type(obj).__module__.startswith("torch") and hasattr(obj, "detach")


def _is_path(obj):
    return isinstance(obj, (str, os.PathLike))


def _check_pixels(array, where):
    """Return ``array`` if its dtype and value range are valid image pixels."""
    if array.dtype == np.uint8:
        return array
    if array.dtype.kind == "f":
        if array.size and not np.isfinite(array).all():
            raise ValueError(f"{where} contains NaN or infinite pixel values.")
        if array.size and (array.min() < 0.0 or array.max() > 1.0):
            raise ValueError(
                f"{where} is a float array with values in "
                f"[{array.min():.4g}, {array.max():.4g}]; float images must lie in "
                "[0, 1]. Divide 8-bit images by 255 or pass them as uint8."
            )
        return array
    raise TypeError(
        f"{where} has dtype {array.dtype}; images must be uint8 (0-255) or float "
        "in [0, 1]."
    )


def _tensor_to_channels_last(tensor, where, gray_ndim):
    """A CPU numpy copy of an image tensor, channels last.

    ``gray_ndim`` is the number of dimensions of a grayscale input (no channel
    axis): 2 for one image (H, W), 3 for a batch (N, H, W).
    """
    tensor = tensor.detach().cpu()
    if str(tensor.dtype) == "torch.bfloat16":  # numpy has no bfloat16
        tensor = tensor.float()
    array = tensor.numpy()
    if array.ndim <= gray_ndim:  # grayscale: no channel axis to move
        return array
    if array.shape[-3] in _CHANNELS:
        return np.moveaxis(array, -3, -1)
    if array.shape[-1] in _CHANNELS:
        return array
    raise ValueError(
        f"{where} is a tensor of shape {tuple(array.shape)}; image tensors must be "
        "channels-first (..., C, H, W) or channels-last (..., H, W, C) with C in "
        "{1, 3, 4}."
    )


def _check_one_array(array, where):
    """Validate one image given as an (H, W) or (H, W, C) array."""
    if array.ndim == 3 and array.shape[-1] not in _CHANNELS:
        raise ValueError(
            f"{where} has shape {array.shape}; a single image array must be (H, W) "
            "or (H, W, C) with C in {1, 3, 4}."
        )
    if array.ndim not in (2, 3) or min(array.shape[:2]) == 0:
        raise ValueError(
            f"{where} has shape {array.shape}; a single image array must be (H, W) "
            "or (H, W, C) with C in {1, 3, 4}."
        )
    return _check_pixels(array, where)


def _check_batch_array(array):
    """Validate a stack of images, (N, H, W) or (N, H, W, C)."""
    if array.ndim == 4 and array.shape[-1] not in _CHANNELS:
        raise ValueError(
            f"X has shape {array.shape}; a 4-D image array must be channels-last "
            "(N, H, W, C) with C in {1, 3, 4} (torch tensors may be (N, C, H, W))."
        )
    if array.ndim not in (3, 4):
        raise ValueError(
            f"X has shape {array.shape}; image arrays must be (N, H, W) grayscale or "
            "(N, H, W, C) with C in {1, 3, 4}. A 2-D array is not a batch of images: "
            "pass embeddings straight to the classifier instead."
        )
    if array.shape[0] == 0:
        raise ValueError("X is empty (0 images); pass at least one image.")
    return _check_pixels(array, "X")


def _check_item(item, index):
    """Validate one element of a list of images; return it in a decodable form."""
    where = f"X[{index}]"
    if _is_path(item):
        path = os.fspath(item)
        if not os.path.isfile(path):
            raise FileNotFoundError(
                f"{where}: image file {path!r} does not exist (or is not a file)."
            )
        return path
    if _is_pil(item):
        return item
    if _is_torch_tensor(item):
        item = _tensor_to_channels_last(item, where, gray_ndim=2)
    if isinstance(item, np.ndarray):
        return _check_one_array(item, where)
    raise TypeError(
        f"{where} is a {type(item).__name__}; each image must be a file path "
        "(str or pathlib.Path), a PIL image, or a numpy array / torch tensor."
    )


def as_image_sequence(X):
    """Validate ``X`` and return an indexable sequence of images.

    Parameters
    ----------
    X : sequence of images, ndarray or tensor
        See :class:`skhsfm.embedding.BackboneEmbedder` for the accepted kinds.

    Returns
    -------
    images : ndarray of shape (N, H, W[, C]) or list
        A validated numpy stack (channels last) or a list whose elements are
        file paths (``str``), PIL images or validated numpy arrays.
    """
    if _is_path(X) or _is_pil(X):
        raise TypeError(
            f"X must be a collection of images; got a single {type(X).__name__}. "
            "Wrap it in a list: transform([image])."
        )
    if _is_torch_tensor(X):
        if X.ndim not in (3, 4):
            raise ValueError(
                f"X is a tensor of shape {tuple(X.shape)}; image tensors must be "
                "(N, C, H, W), (N, H, W, C) or (N, H, W)."
            )
        X = _tensor_to_channels_last(X, "X", gray_ndim=3)
    if isinstance(X, np.ndarray) and X.dtype.kind not in "OUS":  # not paths
        return _check_batch_array(X)
    if hasattr(X, "iloc") and getattr(X, "ndim", 1) == 2:  # one-column DataFrame
        if X.shape[1] != 1:
            raise ValueError(
                f"X is a DataFrame with {X.shape[1]} columns; pass a single column "
                "of image paths or images."
            )
        X = X.iloc[:, 0]
    if not hasattr(X, "__len__") or not hasattr(X, "__iter__"):
        raise TypeError(
            f"X must be a list of images, an image array or a tensor; got "
            f"{type(X).__name__}."
        )
    items = [_check_item(item, i) for i, item in enumerate(X)]
    if not items:
        raise ValueError("X is empty (0 images); pass at least one image.")
    return items


def _array_to_pil(array):
    Image = _import_pil()
    # uint8, or float in [0, 1] (validated earlier); one depth rule for all
    array = to_uint8(array, "image array")
    if array.ndim == 3 and array.shape[-1] == 1:
        array = array[..., 0]
    return Image.fromarray(np.ascontiguousarray(array))


def _pil_to_rgb(image, where="a PIL image"):
    # by the pixels' value range: convert("RGB") would clip 16-bit and float
    return pil_to_rgb(image, where)


def _open_rgb(path):
    Image = _import_pil()
    try:
        with Image.open(path) as image:
            image.load()
            return _pil_to_rgb(image, f"image file {path!r}").copy()
    except FileNotFoundError as exc:
        raise FileNotFoundError(f"Image file {path!r} does not exist.") from exc
    except (OSError, Image.DecompressionBombError) as exc:
        raise ValueError(
            f"Could not read image file {path!r}: {exc}. Check that the file is a "
            "valid image (JPEG, PNG, ...) and not truncated."
        ) from exc
    except ValueError as exc:
        if path in str(exc):  # already names the file (pixel range, mode)
            raise
        raise ValueError(
            f"Could not read image file {path!r}: {exc}. Check that the file is a "
            "valid image (JPEG, PNG, ...) and not truncated."
        ) from exc


def to_pil_rgb(image):
    """Decode one validated image (path, PIL image or array) to an RGB PIL image.

    Pixels that are not 8-bit (16-bit PNG or TIFF, float TIFF, integer
    arrays) are brought to 8 bits by their value range
    (:mod:`skhsfm.embedding._pixels`), never clipped.
    """
    if isinstance(image, str):
        return _open_rgb(image)
    if isinstance(image, np.ndarray):
        return _pil_to_rgb(_array_to_pil(image))
    return _pil_to_rgb(image)
