"""Projection: the support set, its edits and the hard set on two PCA axes."""

import warnings
from dataclasses import dataclass

import numpy as np

from skhsfm._sklearn_compat import validate_params
from skhsfm._utils.table import format_table
from skhsfm._validation import check_X
from skhsfm.inspection._common import check_rows, check_width, support_arrays
from skhsfm.inspection._plotting import MARKERS, finish, namer, new_figure, palette

__all__ = ["EditProjection", "edit_projection", "plot_edit_projection"]

_LIMITS = ("auto", "all", "data")


@dataclass(eq=False, repr=False)
class EditProjection:
    """2-D PCA coordinates of the support set, its edits and the hard set; see
    :func:`edit_projection`.

    :meth:`plot` draws them (:func:`plot_edit_projection`).

    Parameters
    ----------
    support_init, support_edited : ndarray of shape (n_support, 2)
        Coordinates of the initial and edited support embeddings.
    hard : ndarray of shape (n_hard, 2)
        Coordinates of the hard set.
    hard_indices : ndarray of shape (n_hard,)
        Rows of the ``X`` passed to :func:`edit_projection` that form the hard
        set.
    support_labels : ndarray of shape (n_support,)
    components : ndarray of shape (2, n_features)
        The principal axes.
    explained_variance_ratio : ndarray of shape (2,)
        Share of the variance of the initial support and hard-set embeddings
        along each axis.
    support_attribute : ndarray of shape (n_support,) or None, default=None
    hard_labels, hard_attribute : ndarray of shape (n_hard,) or None, \
            default=None
    epoch : int or None, default=None
        The classifier's selected epoch (``best_epoch_``), whose hard set this
        is; None when unknown.
    """

    support_init: np.ndarray
    support_edited: np.ndarray
    hard: np.ndarray
    hard_indices: np.ndarray
    support_labels: np.ndarray
    components: np.ndarray
    explained_variance_ratio: np.ndarray
    support_attribute: np.ndarray | None = None
    hard_labels: np.ndarray | None = None
    hard_attribute: np.ndarray | None = None
    epoch: int | None = None

    def __repr__(self):
        header = ["points", "n", "PC1 mean", "PC2 mean"]
        rows = [
            [name, points.shape[0], *points.mean(axis=0).tolist()]
            for name, points in (
                ("support, initial", self.support_init),
                ("support, edited", self.support_edited),
                ("hard set", self.hard),
            )
        ]
        ratio = self.explained_variance_ratio
        title = (
            f"EditProjection (epoch {'?' if self.epoch is None else self.epoch}): "
            f"PC1 {ratio[0]:.1%}, PC2 {ratio[1]:.1%} of the variance"
        )
        return format_table(header, rows, title=title)

    def plot(self, **kwargs):
        """The figure of :func:`plot_edit_projection` for this result.

        Parameters
        ----------
        **kwargs
            ``class_names``, ``attribute_names``, ``limits``, ``path``; see
            :func:`plot_edit_projection`.

        Returns
        -------
        fig : matplotlib.figure.Figure
        """
        return plot_edit_projection(self, **kwargs)


def _hard_rows(estimator, n_rows):
    """Rows of the user's hard-pool source array that form the hard set."""
    for name in ("hard_set_indices_", "hard_pool_indices_"):
        if not hasattr(estimator, name):
            raise ValueError(
                f"edit_projection needs a fitted HSFMClassifier with {name}; got "
                f"{type(estimator).__name__} without it."
            )
    hard_set = np.asarray(estimator.hard_set_indices_, dtype=np.intp)
    pool = estimator.hard_pool_indices_
    rows = hard_set if pool is None else np.asarray(pool, dtype=np.intp)[hard_set]
    # the pool of X, not only the hard set (empty when the initial head was kept)
    refs = rows if pool is None else np.asarray(pool, dtype=np.intp)
    if refs.size and refs.max() >= n_rows:
        source = "X_val" if pool is None else "the X passed to fit"
        raise ValueError(
            f"X has {n_rows} rows but the hard set refers to row {refs.max()}; pass "
            f"{source}."
        )
    return rows


@validate_params(
    {
        "estimator": "no_validation",
        "X": ["array-like"],
        "y": ["array-like", None],
        "attribute": ["array-like", None],
        "support_attribute": ["array-like", None],
    },
    prefer_skip_nested_validation=True,
)
def edit_projection(estimator, X, *, y=None, attribute=None, support_attribute=None):
    """Project the support set, its edits and the hard set on two PCA axes.

    The PCA is fitted on the initial support embeddings and the hard set of the
    selected epoch (the data); the edited embeddings are projected on the same
    axes, so an arrow shows the part of an edit that lies in the data's main
    plane.

    Parameters
    ----------
    estimator : HSFMClassifier
        A fitted classifier (it stores ``hard_set_indices_``, indices into its
        hard pool, and ``hard_pool_indices_``).
    X : array-like of shape (n_samples, n_features)
        Where the hard pool came from: ``X_val`` when the classifier was fit
        with ``X_val``, else the ``X`` passed to ``fit`` (the hard pool was held
        out of it; ``hard_pool_indices_`` says which rows).
    y : array-like of shape (n_samples,), default=None
        Class labels of the rows of ``X`` (for coloring the hard set).
    attribute : array-like of shape (n_samples,), default=None
        Spurious attribute of the rows of ``X``.
    support_attribute : array-like of shape (n_support,), default=None
        Attribute of each support example. None takes
        ``attribute[support_indices_]`` when ``X`` is the ``X`` passed to fit
        (no ``X_val``); with ``X_val`` pass e.g.
        ``attribute_train[clf.support_indices_]``.

    Returns
    -------
    projection : EditProjection
        The 2-D coordinates; ``projection.plot()`` draws them.

    See Also
    --------
    plot_edit_projection : The figure of this projection.

    Examples
    --------
    >>> from skhsfm import HSFMClassifier
    >>> from skhsfm.datasets import make_spurious_embeddings
    >>> from skhsfm.inspection import edit_projection
    >>> X, y, a, g = make_spurious_embeddings(200, 8, random_state=0)
    >>> clf = HSFMClassifier(
    ...     n_epochs=2, support_size=4, hard_size=8, inner_steps=2, outer_steps=2,
    ...     random_state=0,
    ... ).fit(X, y, g)
    >>> projection = edit_projection(clf, X, y=y, attribute=a)
    >>> projection.support_init.shape  # 4 rows in each of the 4 (group, class) cells
    (16, 2)
    >>> projection.hard.shape[1]
    2
    """
    from sklearn.decomposition import PCA

    init, edited, labels = support_arrays(estimator, "edit_projection")
    X = check_width(check_X(X, "X"), init.shape[1], "X")
    n = X.shape[0]
    y = check_rows(y, "y", n, "X")
    attribute = check_rows(attribute, "attribute", n, "X")
    support_attribute = check_rows(
        support_attribute, "support_attribute", init.shape[0], "the support set"
    )
    rows = _hard_rows(estimator, n)
    held_out_of_X = estimator.hard_pool_indices_ is not None
    support_rows = getattr(estimator, "support_indices_", None)
    if held_out_of_X and support_rows is not None:
        support_rows = np.asarray(support_rows, dtype=np.intp)
        if support_rows.max() >= n or not np.allclose(X[support_rows], init):
            raise ValueError(
                "X is not the X the classifier was fit on (its support rows differ "
                "from support_init_); pass the same X."
            )
        if support_attribute is None and attribute is not None:
            support_attribute = attribute[support_rows]
    hard = X[rows]
    pca = PCA(n_components=2, svd_solver="full").fit(np.vstack([init, hard]))
    # the initial head kept (best_epoch_ 0) has no hard set: nothing to project
    hard_2d = pca.transform(hard) if rows.size else np.zeros((0, 2))
    epoch = getattr(estimator, "best_epoch_", None)
    return EditProjection(
        support_init=pca.transform(init),
        support_edited=pca.transform(edited),
        hard=hard_2d,
        hard_indices=rows,
        support_labels=labels,
        components=pca.components_,
        explained_variance_ratio=pca.explained_variance_ratio_,
        support_attribute=support_attribute,
        hard_labels=None if y is None else y[rows],
        hard_attribute=None if attribute is None else attribute[rows],
        epoch=None if epoch is None else int(epoch),
    )


# ------------------------------------------------------------------- figure


def _projection_from_estimator(estimator, X, y, attribute, support_attribute):
    """The deprecated call ``plot_edit_projection(estimator, X, ...)``."""
    if X is None:
        raise TypeError(
            "plot_edit_projection takes the EditProjection returned by "
            f"edit_projection(...); got {type(estimator).__name__}."
        )
    warnings.warn(
        "plot_edit_projection(estimator, X, ...) is deprecated in 0.2 and will be "
        "removed in 0.3; call edit_projection(estimator, X, y=..., attribute=..., "
        "support_attribute=...) first and pass its result: "
        "plot_edit_projection(edit_projection(estimator, X, ...)) or "
        "edit_projection(estimator, X, ...).plot().",
        FutureWarning,
        stacklevel=3,
    )
    return edit_projection(
        estimator, X, y=y, attribute=attribute, support_attribute=support_attribute
    )


def plot_edit_projection(
    result,
    X=None,
    *,
    y=None,
    attribute=None,
    support_attribute=None,
    class_names=None,
    attribute_names=None,
    limits="auto",
    path=None,
):
    """2-D PCA of the support set, arrows to its edited points, and the hard set.

    Color is the class, marker the attribute (circles when unknown). Filled
    markers with a black edge are initial support embeddings, hollow markers
    their edited versions (an arrow joins each pair), small faint markers the
    hard set of the selected epoch.

    Parameters
    ----------
    result : EditProjection
        From :func:`~skhsfm.inspection.edit_projection`. A fitted classifier
        is still accepted (with ``X``, ``y``, ``attribute`` and
        ``support_attribute`` as in :func:`edit_projection`) but deprecated.
    X, y, attribute, support_attribute : array-like, default=None
        Deprecated: only with a classifier as ``result``; pass them to
        :func:`edit_projection` instead.
    class_names, attribute_names : dict or sequence, default=None
        Display names for the legend.
    limits : {"auto", "all", "data"}, default="auto"
        Axis limits. ``"all"`` shows every point; ``"data"`` frames the initial
        support and the hard set, so edits that go far out leave the frame (the
        title counts them); ``"auto"`` is ``"data"`` when some edited point lies
        more than twice the data's extent beyond it, else ``"all"``.
    path : str or path-like, default=None
        Where to save the figure.

    Returns
    -------
    fig : matplotlib.figure.Figure

    Notes
    -----
    .. deprecated:: 0.2
        ``plot_edit_projection(estimator, X, ...)`` computes the projection
        itself; it will be removed in 0.3. Call :func:`edit_projection` first.
    """
    from matplotlib.lines import Line2D

    if limits not in _LIMITS:
        raise ValueError(f"limits must be 'auto', 'all' or 'data'; got {limits!r}.")
    if isinstance(result, EditProjection):
        given = [
            name
            for name, value in (
                ("X", X),
                ("y", y),
                ("attribute", attribute),
                ("support_attribute", support_attribute),
            )
            if value is not None
        ]
        if given:
            raise TypeError(
                f"{', '.join(given)} belong to edit_projection(...), not to "
                "plot_edit_projection(result); the result already holds them."
            )
        proj = result
    else:
        proj = _projection_from_estimator(result, X, y, attribute, support_attribute)
    labels = [proj.support_labels]
    if proj.hard_labels is not None:
        labels.append(proj.hard_labels)
    class_values = np.unique(np.concatenate(labels))
    attrs = [a for a in (proj.support_attribute, proj.hard_attribute) if a is not None]
    attr_values = np.unique(np.concatenate(attrs)) if attrs else np.array([])
    colors = palette(class_values.shape[0])

    def color_of(values):
        return [colors[k] for k in np.searchsorted(class_values, values)]

    def marker_groups(attr_of_points, n):
        if attr_of_points is None:
            return [("o", np.ones(n, dtype=bool))]
        index = np.searchsorted(attr_values, attr_of_points)
        return [
            (MARKERS[k % len(MARKERS)], index == k) for k in range(attr_values.shape[0])
        ]

    fig = new_figure("plot_edit_projection", figsize=(7.5, 6.2))
    ax = fig.subplots()
    # hard set, faint, colored by class when known
    hard_colors = (
        color_of(proj.hard_labels)
        if proj.hard_labels is not None
        else ["0.6"] * proj.hard.shape[0]
    )
    hard_colors = np.array(hard_colors, dtype=object)
    for marker, mask in marker_groups(proj.hard_attribute, proj.hard.shape[0]):
        if mask.any():
            ax.scatter(
                proj.hard[mask, 0],
                proj.hard[mask, 1],
                s=10,
                marker=marker,
                c=list(hard_colors[mask]),
                alpha=0.3,
                linewidths=0,
            )
    support_colors = np.array(color_of(proj.support_labels), dtype=object)
    start, end = proj.support_init, proj.support_edited
    ax.quiver(
        start[:, 0],
        start[:, 1],
        end[:, 0] - start[:, 0],
        end[:, 1] - start[:, 1],
        angles="xy",
        scale_units="xy",
        scale=1,
        color=list(support_colors),
        width=0.003,
        alpha=0.7,
    )
    for marker, mask in marker_groups(proj.support_attribute, start.shape[0]):
        if not mask.any():
            continue
        ax.scatter(
            start[mask, 0],
            start[mask, 1],
            s=55,
            marker=marker,
            c=list(support_colors[mask]),
            edgecolors="k",
            linewidths=0.8,
            zorder=3,
        )
        ax.scatter(
            end[mask, 0],
            end[mask, 1],
            s=55,
            marker=marker,
            facecolors="none",
            edgecolors=list(support_colors[mask]),
            linewidths=1.4,
            zorder=3,
        )
    class_name = namer(class_names, "y")
    attribute_name = namer(attribute_names, "a")
    handles = [
        Line2D([], [], ls="", marker="s", ms=8, color=colors[k], label=class_name(c))
        for k, c in enumerate(class_values)
    ]
    handles += [
        Line2D(
            [],
            [],
            ls="",
            marker=MARKERS[k % len(MARKERS)],
            ms=7,
            color="0.3",
            label=attribute_name(a),
        )
        for k, a in enumerate(attr_values)
    ]
    handles += [
        Line2D(
            [],
            [],
            ls="",
            marker="o",
            ms=7,
            mfc="0.5",
            mec="k",
            label="support, initial",
        ),
        Line2D(
            [],
            [],
            ls="",
            marker="o",
            ms=7,
            mfc="none",
            mec="0.3",
            label="support, edited",
        ),
        Line2D(
            [], [], ls="", marker="o", ms=4, color="0.5", alpha=0.4, label="hard set"
        ),
    ]
    ax.legend(handles=handles, fontsize="small", loc="best", framealpha=0.8)
    ratio = proj.explained_variance_ratio
    ax.set_xlabel(f"PC1 ({ratio[0]:.0%} of variance)")
    ax.set_ylabel(f"PC2 ({ratio[1]:.0%} of variance)")
    epoch = "?" if proj.epoch is None else proj.epoch
    title = (
        f"Support edits and hard set (epoch {epoch}), PCA of initial support + hard set"
    )
    outside = _frame_data(ax, proj, limits)
    if outside:
        title += (
            f"\n{outside} edited points lie outside the frame; limits='all' shows them"
        )
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    return finish(fig, path)


def _frame_data(ax, proj, limits):
    """Frame the data when asked (or when edits go far out); count the edited
    points left outside."""
    data = np.vstack([proj.support_init, proj.hard])
    lo, hi = data.min(axis=0), data.max(axis=0)
    span = np.maximum(hi - lo, 1e-12)
    edited = proj.support_edited
    if limits == "auto":
        far = (edited.max(axis=0) - hi > 2 * span) | (
            lo - edited.min(axis=0) > 2 * span
        )
        limits = "data" if far.any() else "all"
    if limits == "all":
        return 0
    lo, hi = lo - 0.08 * span, hi + 0.08 * span
    ax.set_xlim(lo[0], hi[0])
    ax.set_ylim(lo[1], hi[1])
    inside = np.all((edited >= lo) & (edited <= hi), axis=1)
    return int((~inside).sum())
