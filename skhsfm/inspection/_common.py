"""Checks and small numeric helpers shared by the inspection analyses.

Nothing here imports matplotlib (that is :mod:`skhsfm.inspection._plotting`).
"""

import numpy as np

from skhsfm._validation import check_labels

SUPPORT_ATTRIBUTES = ("support_init_", "support_edited_", "support_labels_")


def support_arrays(estimator, where):
    """``(init, edited, labels)`` of a fitted HSFM (or look-alike), checked."""
    missing = [name for name in SUPPORT_ATTRIBUTES if not hasattr(estimator, name)]
    if missing:
        raise ValueError(
            f"{where} needs a fitted HSFMClassifier (or an object with "
            f"{', '.join(SUPPORT_ATTRIBUTES)}); got {type(estimator).__name__} "
            f"without {', '.join(missing)}. Call fit first."
        )
    init = np.asarray(estimator.support_init_, dtype=np.float64)
    edited = np.asarray(estimator.support_edited_, dtype=np.float64)
    labels = np.asarray(estimator.support_labels_)
    if init.ndim != 2 or init.shape != edited.shape:
        raise ValueError(
            "support_init_ and support_edited_ must be 2-d arrays of one shape; got "
            f"{init.shape} and {edited.shape}."
        )
    if labels.shape != (init.shape[0],):
        raise ValueError(
            f"support_labels_ must have one label per support row ({init.shape[0]}); "
            f"got shape {labels.shape}."
        )
    return init, edited, labels


def estimator_classes(estimator, labels):
    """The estimator's ``classes_``, else the sorted support labels."""
    classes = getattr(estimator, "classes_", None)
    return np.unique(labels) if classes is None else np.asarray(classes)


def check_rows(values, name, n, against):
    """One label per row of ``against`` (``n`` rows) as a 1-d array, or None."""
    if values is None:
        return None
    values = check_labels(values, name)
    if values.shape[0] != n:
        raise ValueError(
            f"{name} must have one entry per row of {against} ({n}); got shape "
            f"{values.shape}."
        )
    return values


def check_width(X, d, name):
    """``X`` unchanged when it has the support embeddings' ``d`` features."""
    if X.shape[1] != d:
        raise ValueError(
            f"{name} has {X.shape[1]} features but the support embeddings have {d}; "
            "pass embeddings from the same backbone the classifier was fit on."
        )
    return X


def row_cosine(A, b):
    """Cosine of each row of ``A`` with the vector(s) ``b``; nan for a zero row."""
    b = np.broadcast_to(b, A.shape)
    num = np.einsum("ij,ij->i", A, b)
    den = np.linalg.norm(A, axis=1) * np.linalg.norm(b, axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, num / np.where(den > 0, den, 1.0), np.nan)


def finite_mean(values):
    """Mean of the finite entries (nan when there are none)."""
    values = values[np.isfinite(values)]
    return float(values.mean()) if values.size else float("nan")


def check_result(result, cls, where, compute):
    """Reject anything but a ``cls`` result, naming the function that makes one."""
    if not isinstance(result, cls):
        raise TypeError(
            f"{where} takes the {cls.__name__} returned by {compute}(...); got "
            f"{type(result).__name__}."
        )
