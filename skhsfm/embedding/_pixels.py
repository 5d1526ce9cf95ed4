"""Pixels of any depth to 8 bits: the one rule the decoders follow.

Backbones take 8-bit RGB images. PIL's ``convert("RGB")`` clips 16-bit and
float images to 0-255 instead of scaling them (a 16-bit PNG comes out almost
white, a float TIFF in [0, 1] black), so images whose pixels are not 8-bit are
brought to 8 bits here, by their value range:

==========================  ==================================================
pixel type                  rule
==========================  ==================================================
uint8                       as they are
bool (PIL mode ``1``)       False -> 0, True -> 255
uint16 (PIL ``I;16*``)      16-bit: ``round(v * 255 / 65535)``
other integers (PIL ``I``)  values in [0, 255] as they are; values in
                            [0, 65535] as 16-bit; anything else is refused
float (PIL ``F``)           values in [0, 1] times 255; values in [0, 255]
                            (maximum above 1) as they are; NaN, infinities,
                            negative values or values above 255 are refused
==========================  ==================================================

numpy and PIL only; PIL is imported by the callers.
"""

import numpy as np

__all__ = ["RANGE_RULE", "pil_to_rgb", "to_uint8", "value_range"]

#: The rule in one sentence, for error messages.
RANGE_RULE = (
    "8-bit values are used as they are, 16-bit values (0-65535) are scaled to "
    "0-255, and float values must lie in [0, 1] (scaled by 255) or in [0, 255]"
)


def _refuse(where, array, what):
    low, high = (float(array.min()), float(array.max())) if array.size else (0, 0)
    raise ValueError(
        f"{where}: {what} (pixel type {array.dtype}, values in [{low:.6g}, "
        f"{high:.6g}]); cannot tell how to show it as an 8-bit image. Rescale it "
        f"first: {RANGE_RULE}."
    )


def _scale_16bit(array):
    return np.rint(array.astype(np.float64) * (255.0 / 65535.0)).astype(np.uint8)


def value_range(arrays):
    """``(min, max)`` over several pixel arrays (None when all are empty), to
    read the arrays of one dataset (its splits) by one rule."""
    ranges = [(a.min(), a.max()) for a in map(np.asarray, arrays) if a.size]
    if not ranges:
        return None
    return min(r[0] for r in ranges), max(r[1] for r in ranges)


def to_uint8(array, where, value_range=None):
    """The pixels of ``array`` as uint8, by the rule of this module's table.

    Parameters
    ----------
    array : ndarray
        Pixel values of any shape.
    where : str
        What the pixels are (a file name, ``X[3]``), for messages.
    value_range : (low, high) or None, default=None
        The range that picks the rule for integer and float pixels; None uses
        the array's own. Give the range of a whole dataset
        (:func:`value_range`) so that its parts are read alike.

    Returns
    -------
    ndarray of uint8, same shape.
    """
    array = np.asarray(array)
    kind = array.dtype.kind
    if array.dtype == np.uint8:
        return array
    if kind == "b":
        return array.astype(np.uint8) * np.uint8(255)
    if kind in "iu":
        if array.dtype.itemsize == 2 and kind == "u":
            return _scale_16bit(array)
        if not array.size:
            return array.astype(np.uint8)
        low, high = value_range or (array.min(), array.max())
        low, high = min(low, array.min()), max(high, array.max())
        if low >= 0 and high <= 255:
            return array.astype(np.uint8)
        if low >= 0 and high <= 65535:
            return _scale_16bit(array)
        _refuse(where, array, "integer pixels outside 0-65535")
    if kind == "f":
        if not array.size:
            return array.astype(np.uint8)
        if not np.isfinite(array).all():
            raise ValueError(
                f"{where}: contains NaN or infinite pixel values; an image needs "
                "finite pixels."
            )
        low, high = value_range or (array.min(), array.max())
        low, high = min(low, array.min()), max(high, array.max())
        if low < 0 or high > 255:
            _refuse(where, array, "float pixels outside [0, 255]")
        scale = 255.0 if high <= 1.0 else 1.0
        return np.rint(array.astype(np.float64) * scale).astype(np.uint8)
    raise ValueError(
        f"{where}: pixels of type {array.dtype} are not image values; images "
        "hold integers or floats."
    )


def _pixel_dtype(mode):
    from PIL import ImageMode

    try:
        return np.dtype(ImageMode.getmode(mode).typestr)
    except (KeyError, TypeError, ValueError):
        return None


def pil_to_rgb(image, where):
    """An RGB PIL image from a PIL image of any mode, without clipping.

    8-bit modes (``L``, ``P``, ``RGBA``, ``CMYK``, ``LAB``, ...) go through
    PIL's own conversion. Deeper modes (``I;16``, ``I``, ``F``) are brought to
    8 bits by :func:`to_uint8` first, then repeated over three channels.
    Modes PIL cannot convert are refused with a clear error.
    """
    from PIL import Image

    if image.mode == "RGB":
        return image
    dtype = _pixel_dtype(image.mode)
    if dtype is not None and dtype != np.uint8 and dtype.kind != "b":
        gray = to_uint8(np.asarray(image), f"{where} (PIL mode {image.mode})")
        if gray.ndim != 2:
            raise ValueError(
                f"{where}: PIL mode {image.mode} with {gray.shape[-1]} channels "
                "is not supported; save the image as 8-bit RGB or grayscale."
            )
        return Image.fromarray(gray).convert("RGB")
    if image.mode == "P" and "transparency" in image.info:
        image = image.convert("RGBA")  # PIL warns when going P -> RGB directly
    try:
        return image.convert("RGB")
    except ValueError as exc:
        raise ValueError(
            f"{where}: PIL cannot convert an image of mode {image.mode!r} to RGB "
            f"({exc}); save it as RGB, grayscale (L) or 16-bit grayscale (I;16)."
        ) from exc
