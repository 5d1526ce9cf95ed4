"""Pure input checks shared by the estimators, the metrics and the splitters.

Each check either returns the validated value or raises an error that names the
argument, says what was received and what to do. Nothing here fits, splits or
draws anything (that is :mod:`skhsfm._pools`).
"""

from numbers import Number, Real

import numpy as np
from sklearn.preprocessing import LabelEncoder
from sklearn.utils import check_array
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import column_or_1d, validate_data

from skhsfm._sklearn_compat import InvalidParameterError
from skhsfm._utils.lazy import LazyRows, check_lazy_X, is_lazy
from skhsfm._utils.text import plain

__all__ = [
    "FLOAT_DTYPES",
    "check_X",
    "check_finite",
    "check_float_array",
    "check_grid",
    "check_groups",
    "check_label_kinds",
    "check_labels",
    "check_missing",
    "label_kinds",
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
    return check_missing(array, name, what=what)


def check_missing(values, name, *, what="label"):
    """Reject missing labels (None, NaN, inf, ``pd.NA``), naming the argument.

    The part of :func:`check_labels` that runs before scikit-learn sees the
    labels, whose own errors for missing entries do not name the argument.
    Returns ``values`` as an array.
    """
    array = np.asarray(values)
    if array.dtype.kind == "f" and not np.isfinite(array).all():
        raise ValueError(f"{name} contains NaN or inf; every sample needs a {what}.")
    if array.dtype.kind == "O":
        missing = [i for i, v in enumerate(array.ravel()) if _is_missing(v)]
        if missing:
            raise ValueError(
                f"{name} contains None or NaN at position(s) {missing[:5]}"
                f"{' ...' if len(missing) > 5 else ''}; every sample needs a "
                f"{what}. Fill or drop those samples."
            )
    return array


def _is_missing(value):
    """None, NaN, or pandas' missing markers (``pd.NA``, ``pd.NaT``), which a
    pandas column with missing values gives as object entries."""
    if value is None or type(value).__name__ in ("NAType", "NaTType"):
        return True
    return isinstance(value, (float, np.floating)) and not np.isfinite(value)


# What a label is, by numpy dtype kind: labels of two different kinds never
# compare equal (1 != "1" != b"1"), whatever container holds them.
_KIND_OF_DTYPE = {
    "b": "number",
    "i": "number",
    "u": "number",
    "f": "number",
    "c": "number",
    "U": "str",
    "S": "bytes",
    "M": "datetime",
    "m": "timedelta",
}


def _value_kind(value):
    if isinstance(value, (str, np.str_)):
        return "str"
    if isinstance(value, (bytes, np.bytes_)):
        return "bytes"
    if isinstance(value, (bool, np.bool_, Number)):
        return "number"
    if isinstance(value, np.generic):
        return _KIND_OF_DTYPE.get(value.dtype.kind, type(value).__name__)
    return type(value).__name__


def label_kinds(values):
    """The kinds of the values in a 1-d label array: a set of "number", "str",
    "bytes", ... Object arrays (pandas columns, Categorical, StringDtype) are
    looked at value by value, so ``["a", "b"]`` as ``<U1`` or as object is
    "str" both times."""
    kind = values.dtype.kind
    if kind != "O":
        return {_KIND_OF_DTYPE.get(kind, str(values.dtype))}
    return {_value_kind(v) for v in values}


def _describe(values, kinds):
    if values.dtype.kind != "O":
        return f"{values.dtype} labels"
    return f"object-dtype labels of kind {', '.join(sorted(kinds))}"


def check_label_kinds(a, b, a_name, b_name, fix=None):
    """Reject two label arrays whose values could never compare equal.

    ``1 == "1"`` is False, so comparing integer predictions with string labels
    (or ``str`` with ``bytes``) scores every sample wrong without an error.
    Both arrays must hold values of one kind (numbers, str, bytes, ...), the
    same kind for both, whatever their dtype (``<U``, object, pandas
    Categorical or StringDtype turned into arrays). Empty arrays pass.

    Parameters
    ----------
    a, b : ndarray of shape (n,)
        Checked 1-d label arrays (see :func:`check_labels`).
    a_name, b_name : str
        Argument names, for messages.
    fix : str or None, default=None
        What to do, for the message; None suggests using the same label type.
    """
    kinds = {}
    for values, name in ((a, a_name), (b, b_name)):
        kinds[name] = label_kinds(values) if values.size else set()
        if len(kinds[name]) > 1:
            raise ValueError(
                f"{name} mixes labels of kinds {sorted(kinds[name])}; use one "
                "label type (e.g. all str or all int)."
            )
    if kinds[a_name] and kinds[b_name] and kinds[a_name] != kinds[b_name]:
        fix = fix or "Use the same label type for both (e.g. the estimator's classes_)."
        raise ValueError(
            f"{a_name} holds {_describe(a, kinds[a_name])} but {b_name} holds "
            f"{_describe(b, kinds[b_name])}; they would never compare equal. {fix}"
        )


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
    as a :class:`~skhsfm._utils.lazy.LazyRows`; its values are checked when rows are
    read. ``y`` is always brought into memory.
    """
    if is_lazy(X):
        X = LazyRows(check_lazy_X(estimator, X, "X", reset=True))
        y = check_labels(np.asarray(y), "y", X.shape[0])
    else:
        if y is not None:
            check_missing(y, "y")
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


def _is_real(value):
    """A real number (Python or numpy), not a bool and not a string."""
    return isinstance(value, Real) and not isinstance(value, (bool, np.bool_))


def _entries(value):
    """The entries of a parameter as a flat object array, or None when it has
    no array shape (ragged nesting)."""
    if isinstance(value, np.ndarray) and value.dtype.kind in "iuf":
        return None  # numeric already: nothing to look at one by one
    try:
        return np.asarray(value, dtype=object).ravel()
    except (TypeError, ValueError):
        return np.array([value], dtype=object)[:0]


def _bad_entry(entries):
    """Position and value of the first entry that is not a real number."""
    for i, entry in enumerate(entries):
        if not _is_real(entry):
            return i, entry
    return None


def check_float_array(value, name):
    """``value`` as a float64 array, checked entry by entry first.

    numpy would turn ``"0.5"`` into 0.5 and fail on ``"x"`` with "could not
    convert string to float", naming neither the parameter nor the entry. Here
    every entry must be a real number (not a string, bool or None), and the
    error names the parameter, the entry's position and its value. Returns
    the array (any shape; the caller checks the shape).
    """
    entries = _entries(value)
    if entries is not None:
        bad = _bad_entry(entries)
        if bad is not None:
            i, entry = bad
            if isinstance(entry, (list, tuple, np.ndarray)):
                raise InvalidParameterError(
                    f"{name} must be a rectangular array of numbers; its rows "
                    "have different lengths."
                )
            raise InvalidParameterError(
                f"{name} must hold only numbers; its entry {i} (in row-major "
                f"order) is {plain(entry)} ({type(entry).__name__})."
            )
    try:
        return np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError) as exc:  # ragged nesting
        raise InvalidParameterError(
            f"{name} must be a rectangular array of numbers; got {plain(value):.80}."
        ) from exc


def check_grid(value, name, *, low=0.0, closed="left", high=None, integer=False):
    """A number or a non-empty sequence of numbers, as a list.

    The values a grid-valued parameter (AFR's ``gamma``, DFR's ``Cs``, SELF's
    ``n_selected``, ...) searches, checked one by one: each must be a finite
    real number ``>= low`` (``closed="left"``) or ``> low``
    (``closed="neither"``), below ``high`` when given, and a whole number with
    ``integer`` (returned as int; else float). The error names the parameter
    and the bad entry, e.g. ``reg_lambda[0]``.
    """
    kind = "an int" if integer else "a float"
    if high is not None:
        left = "[" if closed == "left" else "("
        bound = f"in {left}{low:g}, {high:g})"
    else:
        bound = f">= {low:g}" if closed == "left" else f"> {low:g}"
    need = f"{name} must be {kind} {bound} or a non-empty sequence of them"
    if _is_real(value):
        entries = [value]
    elif isinstance(value, (str, bytes, dict)) or not hasattr(value, "__iter__"):
        raise InvalidParameterError(
            f"{need}; got {plain(value)} ({type(value).__name__})."
        )
    else:
        entries = (
            np.ravel(np.asarray(value)) if isinstance(value, np.ndarray) else value
        )
        entries = list(entries)
    if not entries:
        raise InvalidParameterError(f"{need}; got an empty {type(value).__name__}.")
    values = []
    for i, entry in enumerate(entries):
        ok = _is_real(entry) and np.isfinite(entry)
        ok = ok and (entry >= low if closed == "left" else entry > low)
        ok = ok and (high is None or entry < high)
        ok = ok and (not integer or float(entry).is_integer())
        if not ok:
            raise InvalidParameterError(
                f"{need}; {name}[{i}] is {plain(entry)} ({type(entry).__name__}), "
                f"not a finite {'int' if integer else 'float'} {bound}."
            )
        values.append(int(entry) if integer else float(entry))
    return values
