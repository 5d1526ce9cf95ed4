"""The embedded "dominoes" benchmark, built only from data scikit-learn ships.

Each image stacks two halves: a crop of one of scikit-learn's two sample photos
(the spurious attribute, easy to see) over an 8x8 digit from ``load_digits``
(the core feature, harder to see). The label is a rule on the digit. In the
training split the photo agrees with the label most of the time; in the
validation and test splits it is balanced within every class, as in Waterbirds.
"""

from numbers import Integral, Real

import numpy as np
from sklearn.datasets import load_digits, load_sample_images
from sklearn.utils import Bunch, check_random_state

from skhsfm._sklearn_compat import Interval, validate_params
from skhsfm._utils.text import plain
from skhsfm.datasets._common import balanced_counts

__all__ = ["make_dominoes"]

_SPLITS = ("train", "val", "test")
_ATTRIBUTE_NAMES = ("china", "flower")
_N_DIGITS = 10
# Photo crops span this many source pixels in height (width is twice that), so
# the photos look the same at every ``image_size``.
_CROP_HEIGHT_RANGE = (64, 256)

_DESCR = """\
Dominoes benchmark (skhsfm, built from scikit-learn's bundled data)
-------------------------------------------------------------------

Each RGB uint8 image of shape (image_size, image_size, 3) has two halves:

- top half: a random crop (random scale, position and horizontal flip,
  box-downsampled) of one of scikit-learn's two sample photos, ``china.jpg``
  (attribute 0) or ``flower.jpg`` (attribute 1): the *spurious attribute*;
- bottom half: an 8x8 digit from ``load_digits``, upsampled by pixel
  repetition, white on black, at a random horizontal position: the *core
  feature*.

Target: ``digit * n_classes // 10`` (n_classes=2: digit >= 5; n_classes=5:
pairs of digits; n_classes=10: the digit). The photo that goes with class c
is ``c % 2``. In the training split that photo is used for a fraction
``spurious_correlation`` of each class (exact up to rounding); in the
validation and test splits each class is split evenly between the two photos.
Classes are balanced in every split.

The three splits are built from disjoint sets of digit images (the 1797
digits are partitioned per digit value in proportion to the split sizes);
each digit image is reused within its split with different crops and
positions. ``group = target * 2 + attribute``; worst-group accuracy is the
metric that matters.

This is a small offline stand-in for the Dominoes benchmark (MNIST/CIFAR
halves) used in the spurious-correlation literature, not a reproduction of it.
"""


def _target_names(n_classes):
    if n_classes == 2:
        return ["digit<5", "digit>=5"]
    width = _N_DIGITS // n_classes
    if width == 1:
        return [f"digit={c}" for c in range(n_classes)]
    return [f"digit{c * width}-{(c + 1) * width - 1}" for c in range(n_classes)]


def _partition_digits(digit_values, fractions, rng):
    """Split digit-image indices into len(fractions) disjoint sets, per digit."""
    parts = [[] for _ in fractions]
    cum = np.cumsum(fractions) / np.sum(fractions)
    for d in range(_N_DIGITS):
        members = rng.permutation(np.flatnonzero(digit_values == d))
        cuts = np.round(cum * members.shape[0]).astype(int)
        # Every split needs at least one image of every digit.
        for i in range(len(cuts) - 1):
            lo = (cuts[i - 1] if i else 0) + 1
            hi = members.shape[0] - (len(cuts) - 1 - i)
            cuts[i] = min(max(cuts[i], lo), hi)
        for i, chunk in enumerate(np.split(members, cuts[:-1])):
            parts[i].append(chunk)
    return [np.sort(np.concatenate(p)) for p in parts]


def _sample_split(pool, classes_of_pool, n, n_classes, correlation, rng):
    """Digit-image indices and attributes for one split (balanced if correlation
    is None)."""
    sources, targets, attributes = [], [], []
    for c, n_c in enumerate(balanced_counts(n, n_classes, rng)):
        members = pool[classes_of_pool == c]
        n_tiles = -(-n_c // members.shape[0])
        src = np.concatenate([rng.permutation(members) for _ in range(n_tiles)])
        majority = c % 2
        if correlation is None:
            n_major = n_c // 2 + (rng.rand() < 0.5) * (n_c % 2)
        else:
            n_major = int(round(correlation * n_c))
        attr = np.full(n_c, 1 - majority)
        attr[:n_major] = majority
        sources.append(src[:n_c])
        targets.append(np.full(n_c, c))
        attributes.append(rng.permutation(attr))
    order = rng.permutation(n)
    return (
        np.concatenate(sources)[order],
        np.concatenate(targets)[order],
        np.concatenate(attributes)[order],
    )


def _summed_area_tables(photos):
    """Integral images of the photos, shape (n_photos, H + 1, W + 1, 3), exact."""
    photos = np.stack([np.asarray(p, dtype=np.float64) for p in photos])
    sat = np.zeros((photos.shape[0], photos.shape[1] + 1, photos.shape[2] + 1, 3))
    sat[:, 1:, 1:] = photos.cumsum(axis=1).cumsum(axis=2)
    return sat


def _render_photo_halves(sat, attributes, half, width, rng):
    """Box-downsampled random crops, shape (n, half, width, 3) uint8."""
    n = attributes.shape[0]
    src_h, src_w = sat.shape[1] - 1, sat.shape[2] - 1
    k_min = max(1, -(-_CROP_HEIGHT_RANGE[0] // half))
    k_max = max(k_min, min(_CROP_HEIGHT_RANGE[1] // half, src_h // half))
    k_max = min(k_max, src_w // width)
    k = rng.randint(k_min, k_max + 1, size=n)
    y0 = (rng.rand(n) * (src_h - k * half + 1)).astype(int)
    x0 = (rng.rand(n) * (src_w - k * width + 1)).astype(int)
    flip = rng.rand(n) < 0.5
    rows = y0[:, None] + k[:, None] * np.arange(half + 1)
    cols = x0[:, None] + k[:, None] * np.arange(width + 1)
    a = attributes[:, None, None]
    corners = sat[a, rows[:, :, None], cols[:, None, :]]
    box = corners[:, 1:, 1:] - corners[:, :-1, 1:] - corners[:, 1:, :-1]
    box += corners[:, :-1, :-1]
    out = np.rint(box / (k * k)[:, None, None, None])
    out[flip] = out[flip, :, ::-1]
    return np.clip(out, 0, 255).astype(np.uint8)


def _render_digit_halves(digit_images, sources, half, width, rng):
    """Upsampled digits on black at random horizontal offsets, (n, half, width)."""
    scale = half // 8
    digits = np.rint(digit_images[sources] * (255.0 / 16.0)).astype(np.uint8)
    digits = digits.repeat(scale, axis=1).repeat(scale, axis=2)
    side = digits.shape[1]
    offsets = rng.randint(0, width - side + 1, size=sources.shape[0])
    out = np.zeros((sources.shape[0], half, width), dtype=np.uint8)
    for i, off in enumerate(offsets):
        out[i, :, off : off + side] = digits[i]
    return out


@validate_params(
    {
        "n_train": [Interval(Integral, 1, None, closed="left")],
        "n_val": [Interval(Integral, 1, None, closed="left")],
        "n_test": [Interval(Integral, 1, None, closed="left")],
        "spurious_correlation": [Interval(Real, 0, 1, closed="both")],
        "n_classes": [Integral],
        "image_size": [Interval(Integral, 16, None, closed="left")],
        "random_state": ["random_state"],
    },
    prefer_skip_nested_validation=True,
)
def make_dominoes(
    n_train=4800,
    n_val=1200,
    n_test=2400,
    *,
    spurious_correlation=0.95,
    n_classes=2,
    image_size=32,
    random_state=None,
):
    """Make the offline dominoes benchmark: photo crop (spurious) over a digit (core).

    Built only from data scikit-learn ships (``load_digits`` and
    ``load_sample_images``); nothing is downloaded. Read more in the
    ``DESCR`` of the returned Bunch.

    Parameters
    ----------
    n_train : int, default=4800
        Number of training images (Waterbirds has 4795).
    n_val : int, default=1200
        Number of validation images (Waterbirds has 1199).
    n_test : int, default=2400
        Number of test images (Waterbirds has 5794).
    spurious_correlation : float in [0, 1], default=0.95
        Fraction of each training class shown with the photo that goes with
        that class (exact up to rounding). 0.5 means no correlation. Validation
        and test splits are always balanced within each class.
    n_classes : {2, 5, 10}, default=2
        Label rule: ``digit * n_classes // 10``. 2: ``digit >= 5``; 5: pairs
        of consecutive digits; 10: the digit itself.
    image_size : int, default=32
        Side of the square images; a multiple of 16 (the digit is upsampled by
        ``image_size // 16``).
    random_state : int, RandomState instance or None, default=None
        Controls the digit partition, sampling, crops and positions. An int
        gives the same arrays bit for bit on every call.

    Returns
    -------
    data : :class:`~sklearn.utils.Bunch`
        With ``train``, ``val`` and ``test``, each a Bunch with:

        images : ndarray of shape (n, image_size, image_size, 3), uint8
            RGB images, channels last.
        target : ndarray of shape (n,), int64
            Class label.
        attribute : ndarray of shape (n,), int64
            0 for china, 1 for flower.
        group : ndarray of shape (n,), int64
            ``target * 2 + attribute``.
        digit : ndarray of shape (n,), int64
            The digit shown.
        source_index : ndarray of shape (n,), int64
            Row of ``load_digits()`` the digit comes from; the three splits
            use disjoint rows.

        plus ``target_names``, ``attribute_names``, ``group_names`` (e.g.
        ``"digit>=5|flower"``) and ``DESCR``, which the top-level Bunch also
        carries.

    See Also
    --------
    make_spurious_embeddings : Synthetic embeddings with a spurious direction.
    train_dominoes_backbone : A small ERM CNN for these images.

    Examples
    --------
    >>> from skhsfm.datasets import make_dominoes
    >>> data = make_dominoes(200, 100, 100, random_state=0)
    >>> data.train.images.shape, data.train.images.dtype
    ((200, 32, 32, 3), dtype('uint8'))
    >>> data.group_names[3]
    'digit>=5|flower'
    """
    if n_classes not in (2, 5, 10):
        raise ValueError(
            f"n_classes must be 2, 5 or 10 (a rule on the digit 0-9); got "
            f"{plain(n_classes)}."
        )
    if image_size % 16:
        raise ValueError(
            f"image_size must be a multiple of 16 (the digit is upsampled by "
            f"image_size // 16); got {image_size}. Try {16 * round(image_size / 16)}."
        )
    n_groups = 2 * n_classes
    sizes = {"train": n_train, "val": n_val, "test": n_test}
    for name, n in sizes.items():
        if n < n_groups:
            raise ValueError(
                f"n_{name} must be at least 2 * n_classes = {n_groups} so that "
                f"every group can appear; got {n}."
            )
    rng = check_random_state(random_state)
    digits = load_digits()
    digit_values = digits.target.astype(np.int64)
    class_of_image = digit_values * n_classes // _N_DIGITS
    photos = load_sample_images().images
    sat = _summed_area_tables(photos)
    half = image_size // 2

    target_names = _target_names(n_classes)
    attribute_names = list(_ATTRIBUTE_NAMES)
    group_names = [f"{t}|{a}" for t in target_names for a in attribute_names]
    common = dict(
        target_names=target_names,
        attribute_names=attribute_names,
        group_names=group_names,
        DESCR=_DESCR,
    )

    pools = _partition_digits(digit_values, [sizes[s] for s in _SPLITS], rng)
    result = Bunch(**common)
    for name, pool in zip(_SPLITS, pools):
        correlation = spurious_correlation if name == "train" else None
        sources, target, attribute = _sample_split(
            pool, class_of_image[pool], sizes[name], n_classes, correlation, rng
        )
        images = np.empty((sources.shape[0], image_size, image_size, 3), np.uint8)
        images[:, :half] = _render_photo_halves(sat, attribute, half, image_size, rng)
        images[:, half:] = _render_digit_halves(
            digits.images, sources, image_size - half, image_size, rng
        )[..., None]
        result[name] = Bunch(
            images=images,
            target=target.astype(np.int64),
            attribute=attribute.astype(np.int64),
            group=(target * 2 + attribute).astype(np.int64),
            digit=digit_values[sources],
            source_index=sources.astype(np.int64),
            **common,
        )
    return result
