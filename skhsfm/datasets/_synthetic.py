"""Synthetic embeddings with a core and a spurious component (for tests and speed)."""

from numbers import Integral, Real

import numpy as np
from sklearn.utils import Bunch, check_random_state

from skhsfm._sklearn_compat import Interval, StrOptions, validate_params
from skhsfm.datasets._common import balanced_counts

__all__ = ["make_spurious_embeddings"]

_SPLIT_IDS = {"train": 1, "val": 2, "test": 3}

_DESCR = """\
Synthetic spurious embeddings (skhsfm)
--------------------------------------

X = scale * (core_strength * u[y] + spurious_strength * v[a] + noise * e), with
orthonormal class directions u, attribute directions v, and standard normal e.
Classes are balanced. In a correlated split, attribute y % n_attributes goes
with class y for a fraction spurious_correlation of the class; a balanced split
spreads each class evenly over the attributes. group = y * n_attributes + a.
"""


def _seed_of(random_state):
    """An int seed: kept when given, drawn from the RandomState otherwise."""
    if isinstance(random_state, Integral):
        return int(random_state)
    return int(check_random_state(random_state).randint(0, 2**31 - 1))


def _directions(n_features, n_classes, n_attributes, seed):
    """Orthonormal class and attribute directions, shared by all splits of a seed."""
    rng = np.random.default_rng([seed, 0])
    basis, _ = np.linalg.qr(rng.standard_normal((n_features, n_classes + n_attributes)))
    return basis[:, :n_classes].T, basis[:, n_classes:].T


def _labels(n_samples, n_classes, n_attributes, correlation, rng):
    """Class-balanced labels; attributes correlated with the class (or balanced)."""
    ys, attrs = [], []
    for c, n_c in enumerate(balanced_counts(n_samples, n_classes, rng)):
        majority = c % n_attributes
        if correlation is None:
            per_attr = balanced_counts(n_c, n_attributes, rng)
        else:
            n_major = int(round(correlation * n_c))
            others = [a for a in range(n_attributes) if a != majority]
            per_attr = np.zeros(n_attributes, dtype=int)
            per_attr[majority] = n_major
            per_attr[others] = balanced_counts(n_c - n_major, len(others), rng)
        attrs.append(np.repeat(np.arange(n_attributes), per_attr))
        ys.append(np.full(n_c, c))
    order = rng.permutation(n_samples)
    return np.concatenate(ys)[order], np.concatenate(attrs)[order]


@validate_params(
    {
        "n_samples": [Interval(Integral, 1, None, closed="left")],
        "n_features": [Interval(Integral, 1, None, closed="left")],
        "n_classes": [Interval(Integral, 2, None, closed="left")],
        "n_attributes": [Interval(Integral, 2, None, closed="left")],
        "spurious_correlation": [Interval(Real, 0, 1, closed="both")],
        "core_strength": [Interval(Real, 0, None, closed="left")],
        "spurious_strength": [Interval(Real, 0, None, closed="left")],
        "noise": [Interval(Real, 0, None, closed="left")],
        "scale": [Interval(Real, 0, None, closed="neither")],
        "split": [StrOptions(set(_SPLIT_IDS))],
        "balanced": ["boolean", None],
        "dtype": "no_validation",
        "as_bunch": ["boolean"],
        "random_state": ["random_state"],
    },
    prefer_skip_nested_validation=True,
)
def make_spurious_embeddings(
    n_samples=1000,
    n_features=64,
    *,
    n_classes=2,
    n_attributes=2,
    spurious_correlation=0.9,
    core_strength=1.0,
    spurious_strength=2.0,
    noise=1.0,
    scale=1.0,
    split="train",
    balanced=None,
    dtype=np.float64,
    as_bunch=False,
    random_state=None,
):
    """Make embeddings where a spurious attribute is easier to read than the class.

    Each sample is ``scale * (core_strength * u[y] + spurious_strength * v[a] +
    noise * e)`` with ``u`` (one per class) and ``v`` (one per attribute)
    orthonormal directions in ``n_features`` dimensions and ``e`` standard
    normal. Classes are balanced. In a correlated split the attribute
    ``y % n_attributes`` goes with class ``y`` for a fraction
    ``spurious_correlation`` of that class (exact up to rounding), the rest is
    spread over the other attributes; a balanced split spreads every class
    evenly over all attributes.

    Calls with the same int ``random_state`` share the directions ``u`` and
    ``v``, and each ``split`` draws its own independent samples, so
    ``split="train"`` and ``split="val"`` give a training set and a
    (balanced) held-out set of the same problem.

    Parameters
    ----------
    n_samples : int, default=1000
        Number of samples.
    n_features : int, default=64
        Embedding dimension ``d``; must be at least
        ``n_classes + n_attributes``.
    n_classes : int, default=2
        Number of classes.
    n_attributes : int, default=2
        Number of values of the spurious attribute.
    spurious_correlation : float in [0, 1], default=0.9
        Fraction of each class with its own attribute in a correlated split.
    core_strength : float, default=1.0
        Length of the class signal. Its separation relative to ``noise`` sets
        how well the class can be read at all.
    spurious_strength : float, default=2.0
        Length of the attribute signal; larger than ``core_strength`` makes the
        shortcut easier than the class, as in real spurious benchmarks.
    noise : float, default=1.0
        Standard deviation of the isotropic Gaussian noise per feature.
    scale : float, default=1.0
        Multiplies every feature (to test scale handling).
    split : {"train", "val", "test"}, default="train"
        Which independent sample of the problem to draw. ``"train"`` is
        correlated and the others are balanced unless ``balanced`` says
        otherwise.
    balanced : bool or None, default=None
        Force a balanced (True) or correlated (False) split; None follows
        ``split``.
    dtype : numpy dtype, default=np.float64
        dtype of ``X`` (``np.float32`` halves memory for speed benchmarks).
    as_bunch : bool, default=False
        Return a Bunch instead of a tuple.
    random_state : int, RandomState instance or None, default=None
        An int makes the result exact and shares the directions across splits.
        A RandomState or None draws a fresh seed (and fresh directions).

    Returns
    -------
    X : ndarray of shape (n_samples, n_features)
        Embeddings.
    y : ndarray of shape (n_samples,), int64
        Class labels.
    attribute : ndarray of shape (n_samples,), int64
        Spurious attribute.
    group : ndarray of shape (n_samples,), int64
        ``y * n_attributes + attribute``.

    With ``as_bunch=True``, a Bunch with ``data``, ``target``, ``attribute``,
    ``group``, ``core_directions`` ``(n_classes, n_features)``,
    ``spurious_directions`` ``(n_attributes, n_features)``, ``group_names``
    and ``DESCR``.

    See Also
    --------
    make_dominoes : The image benchmark this stands in for.

    Examples
    --------
    >>> import numpy as np
    >>> from skhsfm.datasets import make_spurious_embeddings
    >>> X, y, a, g = make_spurious_embeddings(200, 16, random_state=0)
    >>> X.shape, np.unique(g).tolist()
    ((200, 16), [0, 1, 2, 3])
    >>> Xv, yv, av, gv = make_spurious_embeddings(40, 16, split="val", random_state=0)
    >>> [int((gv == k).sum()) for k in range(4)]
    [10, 10, 10, 10]
    """
    if n_features < n_classes + n_attributes:
        raise ValueError(
            f"n_features must be at least n_classes + n_attributes = "
            f"{n_classes + n_attributes} so that the class and attribute directions "
            f"are orthogonal; got n_features={n_features}."
        )
    seed = _seed_of(random_state)
    if balanced is None:
        balanced = split != "train"
    rng = np.random.default_rng([seed, _SPLIT_IDS[split]])
    core, spurious = _directions(n_features, n_classes, n_attributes, seed)
    correlation = None if balanced else spurious_correlation
    y, attribute = _labels(n_samples, n_classes, n_attributes, correlation, rng)
    X = rng.standard_normal((n_samples, n_features))
    X *= noise
    X += core_strength * core[y] + spurious_strength * spurious[attribute]
    X *= scale
    X = X.astype(dtype, copy=False)
    y = y.astype(np.int64)
    attribute = attribute.astype(np.int64)
    group = y * n_attributes + attribute
    if not as_bunch:
        return X, y, attribute, group
    return Bunch(
        data=X,
        target=y,
        attribute=attribute,
        group=group,
        core_directions=core,
        spurious_directions=spurious,
        group_names=[
            f"y={c}|a={a}" for c in range(n_classes) for a in range(n_attributes)
        ],
        DESCR=_DESCR,
    )
