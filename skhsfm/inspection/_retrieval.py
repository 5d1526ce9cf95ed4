"""Retrieval: nearest labelled gallery examples before and after editing."""

from dataclasses import dataclass, field
from numbers import Integral

import numpy as np

from skhsfm._sklearn_compat import Interval, StrOptions, validate_params
from skhsfm._utils.table import format_table
from skhsfm._validation import check_X
from skhsfm.inspection._common import (
    check_result,
    check_rows,
    check_width,
    support_arrays,
)
from skhsfm.inspection._plotting import as_images, finish, namer, new_figure, pixels

__all__ = ["EditRetrieval", "edit_retrieval", "plot_retrieval"]


@dataclass(eq=False, repr=False)
class EditRetrieval:
    """Nearest gallery neighbors before and after editing; see :func:`edit_retrieval`.

    Prints as a per-class table; :meth:`plot` shows the images.

    Parameters
    ----------
    labels : ndarray of shape (n_support,)
        Class of each support example.
    indices_before, indices_after : ndarray of shape (n_support, n_neighbors)
        Gallery rows nearest to each initial / edited support embedding,
        nearest first.
    distances_before, distances_after : ndarray of shape (n_support, n_neighbors)
        Their distances.
    attribute_before, attribute_after : ndarray of shape (n_support,) or None
        Majority attribute among the neighbors (ties: the tied value of the
        nearest neighbor). None without ``gallery_attribute``.
    class_before, class_after : ndarray of shape (n_support,) or None
        Majority class among the neighbors. None without ``gallery_y``.
    n_neighbors : int
    metric : str
    support_indices : ndarray of shape (n_support,) or None, default=None
        ``support_indices_`` of the classifier (rows of its ``X``), if any.
    support_attribute : ndarray of shape (n_support,) or None, default=None
        The support examples' own attributes, when given.
    gallery_y, gallery_attribute : ndarray or None, default=None
        The gallery labels, kept for :meth:`plot`.

    Attributes
    ----------
    attribute_changed, class_changed : ndarray of bool or None
        Whether the majority attribute / class changed after editing.
    attribute_change_fraction, class_change_fraction : float or None
        Share of support examples whose majority attribute / class changed. A
        high attribute share with a low class share is what an edit along the
        spurious attribute looks like; a high class share means the edits turn
        examples into another class.
    by_class : dict
        ``{class: {"n", "attribute_change_fraction", "class_change_fraction"}}``.
    by_group : dict or None
        ``{(class, attribute): {...}}`` like ``by_class`` per support group, when
        ``support_attribute`` was given (the table then shows groups).
    """

    labels: np.ndarray
    indices_before: np.ndarray
    indices_after: np.ndarray
    distances_before: np.ndarray
    distances_after: np.ndarray
    attribute_before: np.ndarray | None
    attribute_after: np.ndarray | None
    class_before: np.ndarray | None
    class_after: np.ndarray | None
    n_neighbors: int
    metric: str
    support_indices: np.ndarray | None = None
    support_attribute: np.ndarray | None = None
    gallery_y: np.ndarray | None = None
    gallery_attribute: np.ndarray | None = None
    attribute_changed: np.ndarray | None = field(init=False)
    class_changed: np.ndarray | None = field(init=False)
    attribute_change_fraction: float | None = field(init=False)
    class_change_fraction: float | None = field(init=False)
    by_class: dict = field(init=False)
    by_group: dict | None = field(init=False)

    def __post_init__(self):
        self.attribute_changed = _changed(self.attribute_before, self.attribute_after)
        self.class_changed = _changed(self.class_before, self.class_after)
        self.attribute_change_fraction = _share(self.attribute_changed)
        self.class_change_fraction = _share(self.class_changed)
        self.by_class = {
            c: self._shares(self.labels == c) for c in np.unique(self.labels).tolist()
        }
        self.by_group = None
        if self.support_attribute is not None:
            pairs = sorted(
                set(zip(self.labels.tolist(), self.support_attribute.tolist()))
            )
            self.by_group = {
                (c, a): self._shares((self.labels == c) & (self.support_attribute == a))
                for c, a in pairs
            }

    def _shares(self, mask):
        return {
            "n": int(mask.sum()),
            "attribute_change_fraction": _share(self.attribute_changed, mask),
            "class_change_fraction": _share(self.class_changed, mask),
        }

    def __repr__(self):
        if self.by_group is None:
            first, table = "class", self.by_class
        else:
            first = "class | attribute"
            table = {f"{c} | {a}": v for (c, a), v in self.by_group.items()}
        header = [first, "n", "attribute changed", "class changed"]
        rows = [
            [str(c), v["n"], v["attribute_change_fraction"], v["class_change_fraction"]]
            for c, v in table.items()
        ]
        rows.append(
            [
                "all",
                self.labels.shape[0],
                self.attribute_change_fraction,
                self.class_change_fraction,
            ]
        )
        title = (
            f"EditRetrieval: {self.n_neighbors} nearest gallery neighbors "
            f"({self.metric}), majority vote before vs after editing"
        )
        return format_table(header, rows, title=title)

    def plot(self, support_images, gallery_images, **kwargs):
        """The figure of :func:`plot_retrieval` for this result.

        Parameters
        ----------
        support_images, gallery_images : sequence of images
        **kwargs
            ``examples``, ``n_examples``, ``n_shown``, ``class_names``,
            ``attribute_names``, ``path``; see :func:`plot_retrieval`.

        Returns
        -------
        fig : matplotlib.figure.Figure
        """
        return plot_retrieval(self, support_images, gallery_images, **kwargs)


def _changed(before, after):
    return None if before is None else before != after


def _share(changed, mask=None):
    if changed is None:
        return None
    values = changed if mask is None else changed[mask]
    return float(values.mean()) if values.size else float("nan")


def _majority(neighbor_labels):
    """Most common label per row; ties go to the tied label met first (nearest)."""
    out = np.empty(neighbor_labels.shape[0], dtype=neighbor_labels.dtype)
    for i, row in enumerate(neighbor_labels):
        values, first, counts = np.unique(row, return_index=True, return_counts=True)
        tied = counts == counts.max()
        out[i] = values[tied][np.argmin(first[tied])]
    return out


def _neighbors(gallery, queries, n_neighbors, metric, exclude):
    """Nearest gallery rows of each query, nearest first, skipping ``exclude``."""
    from sklearn.neighbors import NearestNeighbors

    extra = 0 if exclude is None else 1
    index = NearestNeighbors(
        n_neighbors=n_neighbors + extra, metric=metric, algorithm="brute"
    ).fit(gallery)
    dist, ind = index.kneighbors(queries)
    if exclude is None:
        return ind, dist
    keep = ind != exclude[:, None]
    # drop the excluded row where present, else the farthest extra neighbor
    keep[keep.all(axis=1), -1] = False
    n = queries.shape[0]
    return ind[keep].reshape(n, n_neighbors), dist[keep].reshape(n, n_neighbors)


def _check_exclude(exclude_indices, n_support, n_gallery):
    if exclude_indices is None:
        return None
    exclude = np.asarray(exclude_indices)
    if exclude.shape != (n_support,) or exclude.dtype.kind not in "iu":
        raise ValueError(
            "exclude_indices must be integers, one per support example "
            f"({n_support}); got shape {exclude.shape} and dtype {exclude.dtype}."
        )
    if np.any((exclude < -1) | (exclude >= n_gallery)):
        raise ValueError(
            f"exclude_indices must be gallery rows in [0, {n_gallery}) or -1; "
            f"got values in [{exclude.min()}, {exclude.max()}]."
        )
    return exclude


@validate_params(
    {
        "estimator": "no_validation",
        "gallery_X": ["array-like"],
        "gallery_y": ["array-like", None],
        "gallery_attribute": ["array-like", None],
        "n_neighbors": [Interval(Integral, 1, None, closed="left")],
        "metric": [StrOptions({"cosine", "euclidean"})],
        "exclude_indices": ["array-like", None],
        "support_attribute": ["array-like", None],
    },
    prefer_skip_nested_validation=True,
)
def edit_retrieval(
    estimator,
    gallery_X,
    *,
    gallery_y=None,
    gallery_attribute=None,
    n_neighbors=5,
    metric="cosine",
    exclude_indices=None,
    support_attribute=None,
):
    """Nearest labelled gallery examples of each support embedding, before and
    after editing.

    If the edits move embeddings along the spurious attribute, the neighbors
    of an edited embedding carry the other attribute value but the same class.

    Parameters
    ----------
    estimator : HSFMClassifier
        A fitted classifier, or any object with ``support_init_``,
        ``support_edited_`` and ``support_labels_``.
    gallery_X : array-like of shape (n_gallery, n_features)
        Labelled embeddings to search, from the same backbone, e.g. validation
        or test embeddings.
    gallery_y : array-like of shape (n_gallery,), default=None
        Class of each gallery row.
    gallery_attribute : array-like of shape (n_gallery,), default=None
        Spurious attribute of each gallery row. At least one of ``gallery_y``
        and ``gallery_attribute`` is needed.
    n_neighbors : int, default=5
        Neighbors per support embedding; the majority label among them is
        compared before and after editing.
    metric : {"cosine", "euclidean"}, default="cosine"
        Distance between embeddings.
    exclude_indices : array-like of shape (n_support,), default=None
        A gallery row to leave out for each support example, or -1 for none.
        When the gallery is the ``X`` the classifier was fit on, pass
        ``clf.support_indices_`` so that an initial embedding does not find
        itself.
    support_attribute : array-like of shape (n_support,), default=None
        The support examples' own attributes (e.g.
        ``attribute_train[clf.support_indices_]``), to break the change
        fractions down by support group (``by_group``).

    Returns
    -------
    retrieval : EditRetrieval
        Neighbor indices, majority labels before and after, and the
        ``attribute_change_fraction`` and ``class_change_fraction``; prints as
        a per-class table.

    See Also
    --------
    plot_retrieval : Show the source image and its nearest gallery images.
    edit_statistics : Norms and cosines of the edits.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.utils import Bunch
    >>> from skhsfm.inspection import edit_retrieval
    >>> gallery = np.array([[1.0, 0.0], [0.0, 1.0]])
    >>> fake = Bunch(
    ...     support_init_=np.array([[1.0, 0.1]]),
    ...     support_edited_=np.array([[0.1, 1.0]]),
    ...     support_labels_=np.array([0]),
    ... )
    >>> result = edit_retrieval(
    ...     fake, gallery, gallery_y=[0, 0], gallery_attribute=[0, 1], n_neighbors=1
    ... )
    >>> result.attribute_change_fraction, result.class_change_fraction
    (1.0, 0.0)
    """
    init, edited, labels = support_arrays(estimator, "edit_retrieval")
    n_support = init.shape[0]
    gallery_X = check_width(check_X(gallery_X, "gallery_X"), init.shape[1], "gallery_X")
    n_gallery = gallery_X.shape[0]
    gallery_y = check_rows(gallery_y, "gallery_y", n_gallery, "gallery_X")
    gallery_attribute = check_rows(
        gallery_attribute, "gallery_attribute", n_gallery, "gallery_X"
    )
    if gallery_y is None and gallery_attribute is None:
        raise ValueError(
            "pass gallery_y, gallery_attribute or both: the labels whose change "
            "after editing is measured."
        )
    exclude = _check_exclude(exclude_indices, n_support, n_gallery)
    support_attribute = check_rows(
        support_attribute, "support_attribute", n_support, "the support set"
    )
    available = n_gallery - (0 if exclude is None else 1)
    if n_neighbors > available:
        raise ValueError(
            f"n_neighbors={n_neighbors} is larger than the {available} gallery rows "
            "available; lower n_neighbors or pass a larger gallery."
        )

    ind_before, dist_before = _neighbors(gallery_X, init, n_neighbors, metric, exclude)
    ind_after, dist_after = _neighbors(gallery_X, edited, n_neighbors, metric, exclude)

    def vote(values, indices):
        return None if values is None else _majority(values[indices])

    support_indices = getattr(estimator, "support_indices_", None)
    return EditRetrieval(
        labels=labels,
        indices_before=ind_before,
        indices_after=ind_after,
        distances_before=dist_before,
        distances_after=dist_after,
        attribute_before=vote(gallery_attribute, ind_before),
        attribute_after=vote(gallery_attribute, ind_after),
        class_before=vote(gallery_y, ind_before),
        class_after=vote(gallery_y, ind_after),
        n_neighbors=int(n_neighbors),
        metric=metric,
        support_indices=None
        if support_indices is None
        else np.asarray(support_indices),
        support_attribute=support_attribute,
        gallery_y=gallery_y,
        gallery_attribute=gallery_attribute,
    )


# ------------------------------------------------------------------- figure


def _default_examples(result, n_examples):
    """Up to ``n_examples`` support rows, alternating over classes, those whose
    neighbors' attribute changed first."""
    changed = result.attribute_changed
    if changed is None:
        changed = result.class_changed
    per_class = []
    for c in np.unique(result.labels):
        rows = np.flatnonzero(result.labels == c)
        per_class.append(list(rows[np.argsort(~changed[rows], kind="stable")]))
    picked = []
    while len(picked) < n_examples and any(per_class):
        for rows in per_class:
            if rows and len(picked) < n_examples:
                picked.append(rows.pop(0))
    return np.asarray(picked, dtype=np.intp)


def _neighbor_title(result, j, class_name, attribute_name):
    parts = []
    if result.gallery_y is not None:
        parts.append(class_name(result.gallery_y[j]))
    if result.gallery_attribute is not None:
        parts.append(attribute_name(result.gallery_attribute[j]))
    return "\n".join(parts)


def plot_retrieval(
    result,
    support_images,
    gallery_images,
    *,
    examples=None,
    n_examples=6,
    n_shown=1,
    class_names=None,
    attribute_names=None,
    path=None,
):
    """Show support images with their nearest gallery images before and after editing.

    One row per chosen support example: its own image, then the ``n_shown``
    nearest gallery images of its initial embedding, then those of its edited
    embedding, each titled with the gallery image's class and attribute.

    Parameters
    ----------
    result : EditRetrieval
        From :func:`~skhsfm.inspection.edit_retrieval`.
    support_images : sequence of images of length n_support
        The image of each support example, in support-set order, e.g.
        ``train_images[clf.support_indices_]``. Arrays ``(n, H, W[, C])``,
        lists of arrays, PIL images or file paths.
    gallery_images : sequence of images
        The gallery's images, in the order of ``gallery_X``.
    examples : array-like of int, default=None
        Support rows to show. None takes ``n_examples`` rows alternating over
        classes, those whose neighbors' attribute changed first.
    n_examples : int, default=6
        Rows shown when ``examples`` is None.
    n_shown : int, default=1
        Neighbors shown per side (at most ``result.n_neighbors``).
    class_names, attribute_names : dict or sequence, default=None
        Display names of the class and attribute labels (a dict keyed by label,
        or a sequence indexed by integer label).
    path : str or path-like, default=None
        Where to save the figure.

    Returns
    -------
    fig : matplotlib.figure.Figure
    """
    check_result(result, EditRetrieval, "plot_retrieval", "edit_retrieval")
    n_support = result.labels.shape[0]
    support = as_images(support_images, "support_images")
    gallery = as_images(gallery_images, "gallery_images")
    if len(support) != n_support:
        raise ValueError(
            f"support_images has {len(support)} images but the support set has "
            f"{n_support}; pass the support set's images, e.g. "
            "train_images[clf.support_indices_]."
        )
    needed = int(max(result.indices_before.max(), result.indices_after.max())) + 1
    if len(gallery) < needed:
        raise ValueError(
            f"gallery_images has {len(gallery)} images but the retrieval refers to "
            f"gallery row {needed - 1}; pass the images of gallery_X, in order."
        )
    if not 1 <= n_shown <= result.n_neighbors:
        raise ValueError(
            f"n_shown must be between 1 and n_neighbors={result.n_neighbors}; got "
            f"{n_shown}."
        )
    if examples is None:
        examples = _default_examples(result, n_examples)
    examples = np.asarray(examples, dtype=np.intp).ravel()
    if examples.size == 0 or examples.min() < 0 or examples.max() >= n_support:
        raise ValueError(
            f"examples must be support rows in [0, {n_support}); got "
            f"{examples.tolist()[:10]}."
        )
    class_name = namer(class_names, "y")
    attribute_name = namer(attribute_names, "a")

    n_cols = 1 + 2 * n_shown
    fig = new_figure(
        "plot_retrieval", figsize=(1.7 * n_cols + 0.4, 1.95 * examples.size + 0.3)
    )
    axes = fig.subplots(examples.size, n_cols, squeeze=False)
    for r, i in enumerate(examples):
        own = class_name(result.labels[i])
        if result.support_attribute is not None:
            own += f"\n{attribute_name(result.support_attribute[i])}"
        cells = [(pixels(support, i), f"support #{i}\n{own}")]
        for indices in (result.indices_before, result.indices_after):
            for k in range(n_shown):
                j = indices[i, k]
                title = _neighbor_title(result, j, class_name, attribute_name)
                cells.append((pixels(gallery, j), title))
        for c, (image, title) in enumerate(cells):
            ax = axes[r, c]
            ax.imshow(image, cmap="gray" if image.ndim == 2 else None)
            ax.set_title(title, fontsize=8)
            ax.set_xticks([])
            ax.set_yticks([])
    headers = ["source"] + [f"before, #{k + 1}" for k in range(n_shown)]
    headers += [f"after, #{k + 1}" for k in range(n_shown)]
    for c, header in enumerate(headers):
        axes[0, c].set_title(
            f"{header}\n{axes[0, c].get_title()}", fontsize=8, fontweight="normal"
        )
    summary = []
    if result.attribute_change_fraction is not None:
        summary.append(f"attribute changed {result.attribute_change_fraction:.0%}")
    if result.class_change_fraction is not None:
        summary.append(f"class changed {result.class_change_fraction:.0%}")
    fig.suptitle(
        f"Nearest gallery images ({result.metric}) of initial vs edited support\n"
        f"embeddings. All {n_support} support examples, {result.n_neighbors}-NN "
        "majority:\n" + ", ".join(summary),
        fontsize=9,
    )
    return finish(fig, path)
