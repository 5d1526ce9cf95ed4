"""Where an HSFM fit starts: the support set, the initial head, the groups.

:func:`prepare_start` reads the rows a fit needs, completes the groups of the
two pools where they are missing (:class:`~skhsfm.groups.GroupInferrer`, the
hard pool playing ``X_val``), draws the support set per (group, class) cell or
per class, and fits the initial logistic regression with every cell weighing
the same: everything :func:`skhsfm._meta.run_hsfm` starts from.
:func:`keep_initial_unless_better` lets that initial head keep its place
against an epoch that beats it by no more than noise.
"""

import dataclasses
from dataclasses import dataclass

import numpy as np
from sklearn.base import clone

from skhsfm._linear import fit_temperature, margin_temperature
from skhsfm._pools import cell_labels, cell_weights, draw_support, read_pools
from skhsfm.metrics._engine import group_counts

__all__ = [
    "GIVEN",
    "NONE",
    "Start",
    "keep_initial_unless_better",
    "prepare_start",
    "start_temperature",
]

GIVEN, NONE = "given", "none"


@dataclass
class Start:
    """Where the HSFM loop starts: the support set (rows, encoded labels and
    positions in the support pool), the hard pool's rows, the initial head
    (one row per class, on the scaled features), the scale and where the
    groups came from."""

    X_support: np.ndarray
    y_support: np.ndarray
    support: np.ndarray
    X_hard: np.ndarray
    W0: np.ndarray
    b0: np.ndarray
    scale: float
    sources: dict


def prepare_start(head, pools, params, rng, infer, by_groups):
    """Read the rows an HSFM fit needs, complete the groups, draw the support
    set and fit ``head``'s initial head: a :class:`Start`.

    Which rows are needed is known before any is read: the initial head's
    (``max_samples``; none when it is given and ``X`` is not rescaled),
    the support draw and the hard pool; a lazy ``X`` is read once. With
    groups to infer, they are inferred on the initial head's rows, and the
    support set is drawn from those (all rows of an in-memory ``X``).
    """
    sources = {
        "groups": NONE if pools.groups is None else GIVEN,
        "groups_val": NONE if pools.groups_hard is None else GIVEN,
    }
    if head.init_coef is None or head.rescale or infer:
        fit_rows = head._initial_rows(pools, rng)
    else:
        fit_rows = np.zeros(0, dtype=int)
    size = params["support_size"]
    if infer:
        (X_fit,), X_hard = read_pools(pools, fit_rows)
        y_fit = _rows(pools.y, fit_rows)
        groups_fit, pools.groups_hard, sources = _infer_groups(
            params["group_inference"], head.classes_, X_fit, y_fit,
            _rows(pools.groups, fit_rows), X_hard, pools, rng,
        )  # fmt: skip
        drawn = draw_support(y_fit, head.classes_, size, rng, groups_fit)
        X_support = X_fit[drawn]
        support = drawn if fit_rows is None else fit_rows[drawn]
    else:
        strata = pools.groups if by_groups else None
        support = draw_support(pools.y, head.classes_, size, rng, strata)
        (X_fit, X_support), X_hard = read_pools(pools, fit_rows, support)
        y_fit = _rows(pools.y, fit_rows)
        groups_fit = _rows(pools.groups, fit_rows) if by_groups else None
    scale = head._feature_scale(X_fit)  # every head's one scale convention
    weights = None
    if groups_fit is not None:
        # the initial logistic regression weighs every (group, class) cell
        # the same, like the support set
        weights = cell_weights(cell_labels(y_fit, groups_fit))
    W0, b0 = head._initial_head(
        X_fit, y_fit, feature_scale=scale, sample_weight=weights
    )
    return Start(X_support, pools.y[support], support, X_hard, W0, b0, scale, sources)


def start_temperature(setting, start, y_hard, hard, hard_strata):
    """The temperature the initial head is divided by (``init_temperature``).

    "auto" cools it until it is neither overconfident on the hard pool's rows
    ``hard`` (temperature scaling, each stratum weighing the same) nor
    saturated on the support set (median margin 2), whichever asks for more;
    never below 1. A number is used as it is.
    """
    if setting != "auto":
        return float(setting)
    strata = None if hard_strata is None else hard_strata[hard]
    return max(
        fit_temperature(start.W0, start.b0, start.X_hard[hard], y_hard[hard],
                        start.scale, strata),
        margin_temperature(start.W0, start.b0, start.X_support, start.y_support,
                           start.scale),
    )  # fmt: skip


def _infer_groups(inferrer, classes, X_fit, y_fit, groups_fit, X_hard, pools, rng):
    """``(groups_fit, groups_hard, sources)`` completed by a
    :class:`~skhsfm.groups.GroupInferrer` (the hard pool plays
    ``X_val``)."""
    from skhsfm.groups import GroupInferrer

    if isinstance(inferrer, str):
        inferrer = GroupInferrer()
    inferrer = clone(inferrer).set_params(
        random_state=rng.randint(np.iinfo(np.int32).max)
    )
    inferrer.infer_encoded(
        X_fit, y_fit, groups_fit, X_hard, pools.y_hard, pools.groups_hard,
        classes,
    )  # fmt: skip
    return inferrer.groups_, inferrer.groups_val_, inferrer.groups_source_


def _rows(values, rows):
    """``values[rows]``; ``values`` for None rows or None values."""
    return values if values is None or rows is None else values[rows]


def keep_initial_unless_better(result, W0, b0, start, y_select, groups_select, rows):
    """The initial head instead of the selected epoch when the epoch beats it
    by at most one standard error of the initial head's worst-group accuracy
    on the selection rows (a handful of held-out rows cannot tell less apart).
    """
    X = np.asarray(start.X_hard[rows], dtype=np.float64) * start.scale
    pred = np.argmax(X @ W0.T + b0, axis=1)
    counts = group_counts(
        y_select, pred, y_select if groups_select is None else groups_select
    )
    worst, n = counts.worst, counts.counts[np.argmin(counts.accuracies)]
    margin = max(np.sqrt(worst * (1.0 - worst) / n), 1.0 / n)
    if result.best_score > worst + margin:
        return result
    return dataclasses.replace(
        result,
        W=np.asarray(W0, dtype=np.float64),
        b=np.asarray(b0, dtype=np.float64),
        H=np.asarray(start.X_support, dtype=np.float64) * start.scale,
        hard_set=np.zeros(0, dtype=np.int64),
        best_epoch=0,
        best_score=worst,
    )
