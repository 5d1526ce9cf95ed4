"""Pure input checks shared by the estimators, the metrics and the splitters.

Each check either returns the validated value or raises an error that names the
argument, says what was received and what to do. Nothing here fits, splits or
draws anything (that is :mod:`skhsfm._pools`).
"""

import numpy as np
from sklearn.preprocessing import LabelEncoder
from sklearn.utils import check_array
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import column_or_1d, validate_data

from skhsfm._lazy import LazyRows, check_lazy_X, is_lazy

__all__ = [
    "FLOAT_DTYPES",
    "check_X",
    "check_finite",
    "check_groups",
    "check_labels",
    "validate_support_pool",
]

# float32 embeddings are used as they are (no float64 copy): fitting runs in
# float32 torch anyway, and large pools would double their memory.
FLOAT_DTYPES = (np.float64, np.float32)


def check_labels(values, name, n_samples=None, *, what="label"):
    """One label per sample as a 1-d array, with no missing entries.

    Parameters
    ----------
    values : array-like of shape (n_samples,)
    name : str
        The argument's name, for messages.
    n_samples : int or None, default=None
        Required length; None skips the length check.
    what : str, default="label"
        What one entry is, for messages ("group label", "value", ...).

    Returns
    -------
    ndarray of shape (n_samples,)
    """
    array = np.asarray(values)
    if array.ndim == 0:
        raise ValueError(
            f"{name} must be 1-dimensional (one {what} per sample); got the "
            f"scalar {array.item()!r}."
        )
    try:
        array = column_or_1d(array, warn=True)
    except ValueError as exc:
        raise ValueError(
            f"{name} must be 1-dimensional (one {what} per sample); got an array "
            f"of shape {array.shape}."
        ) from exc
    if n_samples is not None and array.shape[0] != n_samples:
        raise ValueError(
            f"{name} has {array.shape[0]} entries but X has {n_samples} rows; "
            f"pass one {what} per sample."
        )
    if array.dtype.kind == "f" and not np.isfinite(array).all():
        raise ValueError(f"{name} contains NaN or inf; every sample needs a {what}.")
    if array.dtype.kind == "O":
        missing = [
            i
            for i, v in enumerate(array)
            if v is None or (isinstance(v, float) and not np.isfinite(v))
        ]
        if missing:
            raise ValueError(
                f"{name} contains None or NaN at position(s) {missing[:5]}"
                f"{' ...' if len(missing) > 5 else ''}; every sample needs a "
                f"{what}. Fill or drop those samples."
            )
    return array


def check_groups(groups, n_samples, name="groups"):
    """Return ``groups`` as a 1-d array of length ``n_samples`` (or None)."""
    if groups is None:
        return None
    return check_labels(groups, name, n_samples, what="group label")


def check_finite(X, name="X"):
    """Reject NaN/inf in an already validated array, naming the argument."""
    # one float64 sum is finite for finite input of any practical size; only a
    # non-finite sum needs the element-wise look
    if not np.isfinite(X.sum(dtype=np.float64)) and not np.isfinite(X).all():
        raise ValueError(
            f"{name} contains NaN or inf; embeddings must be finite. Remove or "
            "impute those rows before fitting."
        )
    return X


def check_X(X, name="X"):
    """Validate a 2-d float array and reject NaN/inf, naming the argument."""
    X = check_array(X, dtype=np.float64, ensure_all_finite=False, input_name=name)
    return check_finite(X, name)


def validate_support_pool(estimator, X, y, groups):
    """Validate the support pool; return ``X, y_enc, groups, encoder``.

    Sets ``n_features_in_`` on ``estimator`` (through ``validate_data``). A
    lazy ``X`` (dask array, memmap) is checked without being read and returned
    as a :class:`~skhsfm._lazy.LazyRows`; its values are checked when rows are
    read. ``y`` is always brought into memory.
    """
    if is_lazy(X):
        X = LazyRows(check_lazy_X(estimator, X, "X", reset=True))
        y = check_labels(np.asarray(y), "y", X.shape[0])
    else:
        X, y = validate_data(
            estimator, X, y, dtype=FLOAT_DTYPES, ensure_all_finite=False
        )
        check_finite(X, "X")
    check_classification_targets(y)
    encoder = LabelEncoder().fit(y)
    if encoder.classes_.shape[0] < 2:
        raise ValueError(
            f"y has 1 class ({encoder.classes_[0]}); a classifier needs at least "
            "two classes."
        )
    groups = check_groups(groups, X.shape[0], "groups")
    return X, encoder.transform(y), groups, encoder
