"""The two pools every held-out head fits on.

Every estimator here fits on a *support pool* ``(X, y, groups)`` and selects or
trains on a *hard pool* (held-out data): either the user's ``X_val, y_val,
groups_val`` or a stratified hold-out of the support pool. :func:`fit_pools` is
the shared start of every head's ``fit``.
"""

import warnings
from dataclasses import dataclass

import numpy as np
from sklearn.utils.validation import validate_data

from skhsfm._utils.lazy import LazyRows, check_lazy_X, is_lazy, read_rows
from skhsfm._validation import (
    FLOAT_DTYPES,
    check_finite,
    check_groups,
    check_label_kinds,
    check_labels,
    validate_support_pool,
)

__all__ = [
    "Pools",
    "balanced_subsample",
    "cell_labels",
    "cell_weights",
    "draw_support",
    "fit_pools",
    "holdout_split",
    "make_pools",
    "read_pools",
    "selection_split",
]


def holdout_split(y, groups, validation_fraction, random_state):
    """Split indices into (support, hard) pools, stratified by group or class.

    Every stratum with at least two samples puts at least one sample in each
    pool; a stratum with a single sample stays in the support pool.

    Returns
    -------
    support_idx, hard_idx : ndarray of int
        Sorted indices into ``y``.
    """
    strata = groups if groups is not None else y
    _, inverse = np.unique(strata, return_inverse=True)
    hard = []
    for k in range(inverse.max() + 1):
        members = np.flatnonzero(inverse == k)
        if members.shape[0] < 2:
            continue
        n_hard = int(round(validation_fraction * members.shape[0]))
        n_hard = min(max(n_hard, 1), members.shape[0] - 1)
        hard.append(random_state.choice(members, size=n_hard, replace=False))
    hard_idx = np.sort(np.concatenate(hard)) if hard else np.array([], dtype=int)
    mask = np.ones(y.shape[0], dtype=bool)
    mask[hard_idx] = False
    return np.flatnonzero(mask), hard_idx


@dataclass
class Pools:
    """The support pool and the hard pool of one fit, as plain arrays.

    Attributes
    ----------
    X, y, groups : support pool (``y`` encoded as 0..n_classes-1).
    X_hard, y_hard, groups_hard : hard pool.
        ``X`` and ``X_hard`` are numpy arrays, or
        :class:`~skhsfm._utils.lazy.LazyRows` (not read yet) when the head was given
        a dask array or memmap; :func:`read_pools` reads what a head needs.
    support_index : indices of the support pool into the ``X`` given to ``fit``.
    hard_index : indices of the hard pool into ``X`` when it was held out from
        it, else None (the hard pool is ``X_val``).
    """

    X: object
    y: np.ndarray
    groups: object
    X_hard: np.ndarray
    y_hard: np.ndarray
    groups_hard: object
    support_index: np.ndarray
    hard_index: object


def unwrap_held_out(X_val, y_val, groups_val, X):
    """Unwrap the never-sliced form ``(array,)`` of the held-out arguments.

    scikit-learn's cross-validation slices every fit parameter that has as many
    rows as ``X``, so a fixed validation set of exactly that length would reach
    each fold cut down to the fold's rows. A one-element tuple is never sliced
    (it has one "row"), and a ``Pipeline`` with ``transform_input=["X_val"]``
    transforms a tuple element by element. Without the tuple form, a held-out
    set as long as ``X`` gets a warning saying so.
    """
    values = []
    for name, value in (("X_val", X_val), ("y_val", y_val), ("groups_val", groups_val)):
        if isinstance(value, tuple):
            if len(value) != 1:
                raise ValueError(
                    f"{name} is a tuple of {len(value)} items; pass the array itself, "
                    f"or ({name},), a one-element tuple, to keep a fixed held-out "
                    "set whole under cross-validation."
                )
            value = value[0]
        values.append(value)
    n_samples = X.shape[0]
    if X_val is not None and not isinstance(X_val, tuple):
        # the training rows themselves as the hard pool are no sliced copy
        if _num_samples(values[0]) == n_samples and not _same_rows(values[0], X):
            warnings.warn(
                f"X_val has as many rows as X ({n_samples}). Inside GridSearchCV, "
                "cross_validate and friends, scikit-learn slices every fit "
                "parameter as long as the X given to the search, so a fixed "
                "validation set of that length reaches each fold cut down to the "
                "fold's rows, which is what this looks like. Pass X_val=(X_val,), "
                "y_val=(y_val,), groups_val=(groups_val,): one-element tuples are "
                "never sliced. If the lengths only happen to match, pass the "
                "tuples as well to silence this.",
                UserWarning,
                stacklevel=4,
            )
    return values


def _same_rows(X_val, X):
    try:
        return bool(np.array_equal(np.asarray(X_val, dtype=X.dtype), X))
    except (TypeError, ValueError):
        return False


def _num_samples(value):
    shape = getattr(value, "shape", None)
    return shape[0] if shape is not None and len(shape) else len(value)


def _validate_held_out(estimator, X_val, y_val, groups_val, encoder):
    """Validate the user's held-out set against the support pool."""
    if y_val is None:
        raise ValueError(
            "X_val was given without y_val; pass the held-out labels as y_val."
        )
    try:
        if is_lazy(X_val):  # read later, with the rows of X the head needs
            X_val = LazyRows(
                check_lazy_X(estimator, X_val, "X_val", reset=False), name="X_val"
            )
        else:
            X_val = validate_data(
                estimator,
                X_val,
                reset=False,
                dtype=FLOAT_DTYPES,
                ensure_all_finite=False,
            )
            check_finite(X_val, "X_val")
    except ValueError as exc:
        raise ValueError(f"X_val does not match X: {exc}") from exc
    y_val = check_labels(y_val, "y_val")
    if y_val.shape[0] != X_val.shape[0]:
        raise ValueError(
            f"y_val has {y_val.shape[0]} entries but X_val has {X_val.shape[0]} "
            "rows; pass one label per held-out sample."
        )
    check_label_kinds(
        y_val,
        encoder.classes_,
        "y_val",
        "y",
        fix="Give y_val the type of y (the classes_ are "
        f"{encoder.classes_[:5].tolist()}).",
    )
    unknown = np.setdiff1d(np.unique(y_val), encoder.classes_)
    if unknown.size:
        raise ValueError(
            f"y_val contains classes absent from y: {unknown.tolist()}; the "
            "held-out set must use the training classes."
        )
    groups_val = check_groups(groups_val, X_val.shape[0], "groups_val")
    return X_val, encoder.transform(y_val), groups_val


def make_pools(
    estimator,
    X,
    y_enc,
    groups,
    X_val,
    y_val,
    groups_val,
    validation_fraction,
    random_state,
    encoder,
    *,
    view_support=False,
):
    """Validate the held-out arguments and build the two pools.

    Parameters
    ----------
    estimator : fitted-in-progress estimator (for ``validate_data`` on X_val).
    X, y_enc, groups : validated support-pool arrays, ``y_enc`` already encoded.
    X_val, y_val, groups_val : user's held-out data or None.
    validation_fraction : float, used only when ``X_val`` is None.
    random_state : numpy RandomState.
    encoder : fitted ``LabelEncoder`` of the support-pool classes.
    view_support : bool, default=False
        Keep a support pool held out of an in-memory ``X`` as a
        :class:`~skhsfm._utils.lazy.LazyRows` view of ``X`` instead of a copy, for
        heads that only stream over it.
    """
    n_classes = encoder.classes_.shape[0]
    X_val, y_val, groups_val = unwrap_held_out(X_val, y_val, groups_val, X)
    if X_val is None:
        if y_val is not None or groups_val is not None:
            raise ValueError(
                "y_val or groups_val was given without X_val; pass X_val, y_val "
                "(and optionally groups_val) together."
            )
        support_idx, hard_idx = holdout_split(
            y_enc, groups, validation_fraction, random_state
        )
        support = (
            LazyRows(X, support_idx)
            if view_support and not isinstance(X, LazyRows)
            else X[support_idx]
        )
        pools = Pools(
            support,
            y_enc[support_idx],
            None if groups is None else groups[support_idx],
            X[hard_idx],
            y_enc[hard_idx],
            None if groups is None else groups[hard_idx],
            support_idx,
            hard_idx,
        )
        where = f"the hold-out of validation_fraction={validation_fraction} of X"
    else:
        X_val, y_val_enc, groups_val = _validate_held_out(
            estimator, X_val, y_val, groups_val, encoder
        )
        pools = Pools(
            X, y_enc, groups, X_val, y_val_enc, groups_val, np.arange(X.shape[0]), None
        )
        where = "X_val"
    present = np.unique(pools.y_hard)
    if present.shape[0] < n_classes:
        missing = np.setdiff1d(np.arange(n_classes), present)
        raise ValueError(
            f"classes {encoder.classes_[missing].tolist()} have no example in the "
            f"hard pool ({where}); every class needs held-out examples. Pass an "
            "X_val/y_val covering all classes or give each class at least two "
            "samples in y."
        )
    return pools


def fit_pools(estimator, X, y, groups, X_val, y_val, groups_val, random_state):
    """Validate a head estimator's ``fit`` arguments and build its two pools.

    :func:`~skhsfm._validation.validate_support_pool` then :func:`make_pools`
    with the estimator's ``validation_fraction`` (and its ``_view_support``
    class attribute, when it has one): the shared start of every held-out
    head's ``fit``.

    Returns
    -------
    pools : Pools
    classes : ndarray
        The sorted class labels (``classes_``); pool labels index into it.
    """
    X, y_enc, groups, encoder = validate_support_pool(estimator, X, y, groups)
    pools = make_pools(
        estimator, X, y_enc, groups, X_val, y_val, groups_val,
        estimator.validation_fraction, random_state, encoder,
        view_support=getattr(estimator, "_view_support", False),
    )  # fmt: skip
    return pools, encoder.classes_


def selection_split(y, groups, fraction, rng, n_classes, what):
    """Split held-out rows into the rows a head trains on and the rows that
    select its epoch (or hyperparameters), stratified by group (else class).

    The one selection split of every head. When no stratum has two rows to
    split, or a class would be left without training rows, it warns (``what``
    names the head's step) and returns every row for both: ``(rows, None)``.

    Returns
    -------
    train_rows : ndarray of int
    select_rows : ndarray of int or None
        Positions in ``y``; None when the rows could not be split.
    """
    everything = np.arange(y.shape[0])
    train_rows, select_rows = holdout_split(y, groups, fraction, rng)
    if select_rows.shape[0] == 0 or np.unique(y[train_rows]).shape[0] < n_classes:
        warnings.warn(
            f"{what} on a part of the held-out rows, but no class or group has "
            "two held-out rows to split; selecting on the rows training uses "
            "instead (optimistic). Pass X_val or raise validation_fraction.",
            UserWarning,
        )
        return everything, None
    return train_rows, select_rows


def cell_labels(y, groups):
    """One integer per (group, class) cell, or per class when ``groups`` is None.

    For groups that are already class x attribute cells this is just the group;
    pairing with the class keeps the cells pure when a user passes the attribute
    alone as ``groups``.
    """
    if groups is None:
        return np.unique(y, return_inverse=True)[1]
    group_codes = np.unique(groups, return_inverse=True)[1]
    return np.unique(group_codes * (int(y.max()) + 1) + y, return_inverse=True)[1]


def balanced_subsample(cells, random_state):
    """Draw, without replacement, the size of the smallest cell from every cell.

    Parameters
    ----------
    cells : ndarray of int of shape (n,)
        Cell label of each sample (``cell_labels``).
    random_state : numpy RandomState

    Returns
    -------
    indices : ndarray of int
        Sorted indices into ``cells``; ``n_cells * size`` of them.
    size : int
        Samples drawn per cell (the smallest cell's size).
    """
    counts = np.bincount(cells)
    counts = counts[counts > 0]
    size = int(counts.min())
    picked = [
        random_state.permutation(np.flatnonzero(cells == c))[:size]
        for c in np.unique(cells)
    ]
    return np.sort(np.concatenate(picked)), size


def read_pools(pools, *support_rows):
    """The requested rows of the support pool and the whole hard pool, as numpy.

    Parameters
    ----------
    pools : Pools
    *support_rows : ndarray of int or None
        Positions in the support pool (None: all of it).

    Returns
    -------
    support_arrays : list of ndarray
        One per entry of ``support_rows``. In-memory pools give ``pools.X``
        itself for None and ``pools.X[rows]`` otherwise (as before lazy input
        existed); lazy pools are read in one pass over ``X`` (and ``X_val``).
    X_hard : ndarray
    """
    arrays = read_rows(
        [(pools.X, rows) for rows in support_rows] + [(pools.X_hard, None)]
    )
    return arrays[:-1], arrays[-1]


def cell_weights(cells):
    """Weights of mean 1 that give every cell the same total weight."""
    _, inverse, counts = np.unique(cells, return_inverse=True, return_counts=True)
    return cells.shape[0] / (counts.shape[0] * counts[inverse])


def draw_support(y, classes, support_size, rng, strata=None):
    """Draw ``support_size`` indices into the encoded labels ``y`` per class, or
    per (group, class) cell when ``strata`` (the support pool's groups) is given.

    Per class (the paper) a class with fewer rows is drawn with replacement,
    with a warning. Per cell, small cells (minority groups) are drawn with
    replacement so that every cell weighs the same in the support set.
    """
    if strata is not None:
        cells = cell_labels(y, strata)
        picked = []
        for c in np.unique(cells):
            members = np.flatnonzero(cells == c)
            replace = members.shape[0] < support_size
            picked.append(rng.choice(members, size=support_size, replace=replace))
        return np.concatenate(picked)
    picked = []
    for k in range(classes.shape[0]):
        members = np.flatnonzero(y == k)
        replace = members.shape[0] < support_size
        if replace:
            label = (
                classes[k].item() if isinstance(classes[k], np.generic) else classes[k]
            )
            warnings.warn(
                f"support_size={support_size} is larger than class {label!r}'s "
                f"{members.shape[0]} examples in the support pool; sampling that "
                "class with replacement. Lower support_size to avoid duplicates.",
                UserWarning,
            )
        picked.append(rng.choice(members, size=support_size, replace=replace))
    return np.concatenate(picked)
