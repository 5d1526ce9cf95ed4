"""What the learned feature edits mean: statistics, retrieval, CLIP prompts, plots.

HSFM edits a small support set of embeddings (``support_edited_ -
support_init_`` on a fitted :class:`~skhsfm.HSFMClassifier`). The paper shows
that these edits move embeddings along the spurious attribute (the background
for Waterbirds, gender for CelebA) by decoding them with a diffusion model. This
module gives lighter ways to see the same thing on your own data:

- :func:`edit_statistics`: per support example, the edit norm, its norm relative
  to the embedding, and its cosine with the class-mean difference and with an
  attribute direction; a per-class summary.
- :func:`edit_retrieval`: nearest neighbours of each initial and edited support
  embedding in a labelled gallery; how often the neighbours' attribute (good)
  or class (bad) changes after editing. :func:`plot_retrieval` shows them.
- :func:`prompt_scores`: zero-shot CLIP attribute probabilities of the initial
  and edited embeddings from text prompts. :func:`plot_prompt_scores`.
- :func:`edit_projection` / :func:`plot_edit_projection`: a 2-D PCA of the
  support set, its edits and the hard set.
- :func:`plot_training_curves`: the fit's per-epoch history.

Every function takes a fitted ``HSFMClassifier`` or any object with the arrays
``support_init_``, ``support_edited_`` and ``support_labels_`` (e.g. a
:class:`~sklearn.utils.Bunch`, to inspect edits made some other way). Figures
need matplotlib, imported on first use; they are built as
:class:`matplotlib.figure.Figure` objects without pyplot, so no backend is
selected or changed.
"""

from numbers import Integral, Real

import numpy as np

from skhsfm._inspect_plots import (
    plot_edit_projection,
    plot_prompt_scores,
    plot_retrieval,
    plot_training_curves,
)
from skhsfm._sklearn_compat import Interval, StrOptions, validate_params
from skhsfm._validation import check_X

__all__ = [
    "EditProjection",
    "EditRetrieval",
    "EditStatistics",
    "PromptScores",
    "edit_projection",
    "edit_retrieval",
    "edit_statistics",
    "mean_difference_direction",
    "plot_edit_projection",
    "plot_prompt_scores",
    "plot_retrieval",
    "plot_training_curves",
    "prompt_scores",
]

_SUPPORT_ATTRIBUTES = ("support_init_", "support_edited_", "support_labels_")


# ------------------------------------------------------------------ helpers


def _support_arrays(estimator, where):
    """``(init, edited, labels)`` of a fitted HSFM (or look-alike), checked."""
    missing = [name for name in _SUPPORT_ATTRIBUTES if not hasattr(estimator, name)]
    if missing:
        raise ValueError(
            f"{where} needs a fitted HSFMClassifier (or an object with "
            f"{', '.join(_SUPPORT_ATTRIBUTES)}); got {type(estimator).__name__} "
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


def _classes(estimator, labels):
    classes = getattr(estimator, "classes_", None)
    return np.unique(labels) if classes is None else np.asarray(classes)


def _check_labels(values, n, name, against):
    """A 1-d array of ``n`` labels (or None)."""
    if values is None:
        return None
    values = np.asarray(values)
    if values.ndim != 1 or values.shape[0] != n:
        raise ValueError(
            f"{name} must have one entry per row of {against} ({n}); got shape "
            f"{values.shape}."
        )
    return values


def _check_width(X, d, name):
    if X.shape[1] != d:
        raise ValueError(
            f"{name} has {X.shape[1]} features but the support embeddings have {d}; "
            "pass embeddings from the same backbone the classifier was fit on."
        )
    return X


def _row_cosine(A, b):
    """Cosine of each row of ``A`` with the vector(s) ``b``; nan for a zero row."""
    b = np.broadcast_to(b, A.shape)
    num = np.einsum("ij,ij->i", A, b)
    den = np.linalg.norm(A, axis=1) * np.linalg.norm(b, axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, num / np.where(den > 0, den, 1.0), np.nan)


def _finite_mean(values):
    values = values[np.isfinite(values)]
    return float(values.mean()) if values.size else float("nan")


def _format_table(title, header, rows):
    """A plain-text table: left-aligned first column, right-aligned numbers."""

    def cell(value):
        if isinstance(value, float):
            return "nan" if np.isnan(value) else f"{value:.3f}"
        return str(value)

    cells = [[cell(v) for v in row] for row in rows]
    widths = [
        max(len(header[j]), *(len(row[j]) for row in cells)) if cells else len(h)
        for j, h in enumerate(header)
    ]
    lines = [title]
    for row in [header] + cells:
        first = f"{row[0]:<{widths[0]}}"
        rest = [f"{v:>{w}}" for v, w in zip(row[1:], widths[1:])]
        lines.append("  ".join([first] + rest).rstrip())
    return "\n".join(lines)


def _majority(neighbor_labels):
    """Most common label per row; ties go to the tied label met first (nearest)."""
    out = np.empty(neighbor_labels.shape[0], dtype=neighbor_labels.dtype)
    for i, row in enumerate(neighbor_labels):
        values, first, counts = np.unique(row, return_index=True, return_counts=True)
        tied = counts == counts.max()
        out[i] = values[tied][np.argmin(first[tied])]
    return out


# --------------------------------------------------------------- directions


@validate_params(
    {
        "X": ["array-like"],
        "labels": ["array-like"],
        "source": "no_validation",
        "target": "no_validation",
    },
    prefer_skip_nested_validation=True,
)
def mean_difference_direction(X, labels, *, source=None, target=None):
    """Difference of two label means: a direction for an attribute or a class.

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features)
        Embeddings, e.g. validation embeddings with known attributes.
    labels : array-like of shape (n_samples,)
        Label of each row (an attribute, a class, a group).
    source, target : label, default=None
        The direction points from the mean of ``source`` rows to the mean of
        ``target`` rows. With both None, ``labels`` must take exactly two
        values: ``source`` is the smaller and ``target`` the larger.

    Returns
    -------
    direction : ndarray of shape (n_features,)
        ``mean(X[labels == target]) - mean(X[labels == source])`` (not
        normalised; its norm is the distance between the two means).

    Examples
    --------
    >>> import numpy as np
    >>> from skhsfm.inspect import mean_difference_direction
    >>> X = np.array([[0.0, 1.0], [0.0, 3.0], [2.0, 1.0], [2.0, 3.0]])
    >>> mean_difference_direction(X, [0, 0, 1, 1])
    array([2., 0.])
    """
    X = check_X(X, "X")
    labels = _check_labels(labels, X.shape[0], "labels", "X")
    values = np.unique(labels)
    if source is None and target is None:
        if values.shape[0] != 2:
            raise ValueError(
                f"labels takes {values.shape[0]} values ({values.tolist()[:5]}); "
                "pass source= and target= to say which two means to compare."
            )
        source, target = values
    elif source is None or target is None:
        raise ValueError("pass both source and target, or neither.")
    for name, value in (("source", source), ("target", target)):
        if not np.any(labels == value):
            raise ValueError(
                f"{name}={value!r} does not occur in labels; labels takes the values "
                f"{values.tolist()[:10]}."
            )
    return X[labels == target].mean(axis=0) - X[labels == source].mean(axis=0)


# --------------------------------------------------------------- statistics


class EditStatistics:
    """Size and direction of each support edit; built by :func:`edit_statistics`.

    Prints as a per-class table.

    Attributes
    ----------
    classes : ndarray of shape (n_classes,)
        Class labels, in the classifier's order.
    labels : ndarray of shape (n_support,)
        Class of each support example.
    edit_norm : ndarray of shape (n_support,)
        ``||edited - initial||``.
    relative_norm : ndarray of shape (n_support,)
        ``edit_norm / ||initial||`` (inf for a zero initial embedding).
    class_cosine : ndarray of shape (n_support,)
        Cosine of the edit with the direction from the example's class mean
        towards the mean of the other class means. Positive: the edit moves the
        example towards the other class(es). nan for a zero edit.
    attribute_cosine : ndarray of shape (n_support,) or None
        Cosine of the edit with ``attribute_direction`` (signed: +1 moves along
        it, -1 against it); None when no direction was given.
    summary : dict
        ``{class: {"n", "edit_norm", "relative_norm", "class_cosine",
        "attribute_cosine", "abs_attribute_cosine"}}`` means over the class's
        support examples (nan-valued cosines skipped), plus the key ``"all"``.
    """

    _COLUMNS = (
        ("n", "n"),
        ("edit_norm", "edit norm"),
        ("relative_norm", "relative"),
        ("class_cosine", "cos(class)"),
        ("attribute_cosine", "cos(attr)"),
        ("abs_attribute_cosine", "|cos(attr)|"),
    )

    def __init__(
        self, classes, labels, edit_norm, relative_norm, class_cosine, attribute_cosine
    ):
        self.classes = classes
        self.labels = labels
        self.edit_norm = edit_norm
        self.relative_norm = relative_norm
        self.class_cosine = class_cosine
        self.attribute_cosine = attribute_cosine
        self.summary = {c: self._summarise(labels == c) for c in classes.tolist()}
        self.summary["all"] = self._summarise(np.ones(labels.shape[0], dtype=bool))

    def _summarise(self, mask):
        attr = self.attribute_cosine
        nan = float("nan")
        return {
            "n": int(mask.sum()),
            "edit_norm": _finite_mean(self.edit_norm[mask]),
            "relative_norm": _finite_mean(self.relative_norm[mask]),
            "class_cosine": _finite_mean(self.class_cosine[mask]),
            "attribute_cosine": nan if attr is None else _finite_mean(attr[mask]),
            "abs_attribute_cosine": (
                nan if attr is None else _finite_mean(np.abs(attr[mask]))
            ),
        }

    def __repr__(self):
        columns = self._COLUMNS
        if self.attribute_cosine is None:
            columns = columns[:4]
        header = ["class"] + [title for _, title in columns]
        rows = [
            [str(key)] + [values[name] for name, _ in columns]
            for key, values in self.summary.items()
        ]
        title = f"EditStatistics: {self.labels.shape[0]} support examples"
        return _format_table(title, header, rows)


@validate_params(
    {
        "estimator": "no_validation",
        "attribute_direction": ["array-like", None],
        "class_means": ["array-like", None],
        "X": ["array-like", None],
        "y": ["array-like", None],
    },
    prefer_skip_nested_validation=True,
)
def edit_statistics(
    estimator, *, attribute_direction=None, class_means=None, X=None, y=None
):
    """Edit norm and direction of every support example of a fitted HSFM.

    Parameters
    ----------
    estimator : HSFMClassifier
        A fitted classifier, or any object with ``support_init_``,
        ``support_edited_`` and ``support_labels_`` (and optionally
        ``classes_``).
    attribute_direction : array-like of shape (n_features,), default=None
        A direction of the spurious attribute in embedding space, e.g.
        ``mean_difference_direction(X_val, attribute_val)``. None skips the
        attribute cosine.
    class_means : array-like of shape (n_classes, n_features), default=None
        Class means, in the order of ``estimator.classes_``. None computes them
        from ``X`` and ``y`` when given, else from the initial support
        embeddings.
    X : array-like of shape (n_samples, n_features), default=None
        Embeddings to compute the class means from (with ``y``).
    y : array-like of shape (n_samples,), default=None
        Class labels of ``X``.

    Returns
    -------
    statistics : EditStatistics
        Per-example arrays and a per-class ``summary``; prints as a table.

    See Also
    --------
    edit_retrieval : What the edited embeddings look like to a gallery.

    Notes
    -----
    An edit that moves an example along the spurious attribute has
    ``|attribute_cosine|`` near 1; the sign says which way along
    ``attribute_direction`` it went. ``class_cosine`` near 1 would mean the edit
    pushes the example towards another class rather than along the attribute.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.utils import Bunch
    >>> from skhsfm.inspect import edit_statistics
    >>> fake = Bunch(
    ...     support_init_=np.array([[1.0, 0.0], [-1.0, 0.0]]),
    ...     support_edited_=np.array([[1.0, 2.0], [-1.0, -1.0]]),
    ...     support_labels_=np.array([0, 1]),
    ... )
    >>> stats = edit_statistics(fake, attribute_direction=[0.0, 1.0])
    >>> stats.edit_norm, stats.attribute_cosine
    (array([2., 1.]), array([ 1., -1.]))
    """
    init, edited, labels = _support_arrays(estimator, "edit_statistics")
    classes = _classes(estimator, labels)
    if classes.shape[0] < 2:
        raise ValueError(
            f"edit_statistics needs at least two classes to define class-mean "
            f"directions; got {classes.tolist()}."
        )
    d = init.shape[1]
    edits = edited - init

    if class_means is not None:
        if X is not None or y is not None:
            raise ValueError("pass class_means or X and y, not both.")
        means = check_X(class_means, "class_means")
        if means.shape != (classes.shape[0], d):
            raise ValueError(
                f"class_means must have shape (n_classes, n_features) = "
                f"({classes.shape[0]}, {d}); got {means.shape}."
            )
    elif X is not None or y is not None:
        if X is None or y is None:
            raise ValueError("pass both X and y to compute the class means.")
        X = _check_width(check_X(X, "X"), d, "X")
        y = _check_labels(y, X.shape[0], "y", "X")
        means = _class_means(X, y, classes, "y")
    else:
        means = _class_means(init, labels, classes, "support_labels_")

    position = {c: k for k, c in enumerate(classes.tolist())}
    own = np.array([position[c] for c in labels.tolist()])
    n_classes = classes.shape[0]
    # mean of the other classes' means, for each class
    others = (means.sum(axis=0, keepdims=True) - means) / (n_classes - 1)
    towards_other = (others - means)[own]

    if attribute_direction is None:
        attribute_cosine = None
    else:
        direction = np.asarray(attribute_direction, dtype=np.float64)
        if direction.shape != (d,):
            raise ValueError(
                f"attribute_direction must have shape (n_features,) = ({d},); got "
                f"{direction.shape}."
            )
        if not np.isfinite(direction).all() or not np.any(direction):
            raise ValueError("attribute_direction must be finite and non-zero.")
        attribute_cosine = _row_cosine(edits, direction)

    edit_norm = np.linalg.norm(edits, axis=1)
    init_norm = np.linalg.norm(init, axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        relative_norm = edit_norm / init_norm
    return EditStatistics(
        classes,
        labels,
        edit_norm,
        relative_norm,
        _row_cosine(edits, towards_other),
        attribute_cosine,
    )


def _class_means(X, y, classes, name):
    means = []
    for c in classes.tolist():
        rows = y == c
        if not rows.any():
            raise ValueError(
                f"class {c!r} has no row in {name}; every class of the classifier "
                "needs examples to compute its mean."
            )
        means.append(X[rows].mean(axis=0))
    return np.vstack(means)


# ---------------------------------------------------------------- retrieval


class EditRetrieval:
    """Nearest gallery neighbours before and after editing; see :func:`edit_retrieval`.

    Prints as a per-class table.

    Attributes
    ----------
    labels : ndarray of shape (n_support,)
        Class of each support example.
    support_indices : ndarray of shape (n_support,) or None
        ``support_indices_`` of the classifier (rows of its ``X``), if any.
    indices_before, indices_after : ndarray of shape (n_support, n_neighbors)
        Gallery rows nearest to each initial / edited support embedding,
        nearest first.
    distances_before, distances_after : ndarray of shape (n_support, n_neighbors)
        Their distances.
    attribute_before, attribute_after : ndarray of shape (n_support,) or None
        Majority attribute among the neighbours (ties: the tied value of the
        nearest neighbour). None without ``gallery_attribute``.
    class_before, class_after : ndarray of shape (n_support,) or None
        Majority class among the neighbours. None without ``gallery_y``.
    attribute_changed, class_changed : ndarray of bool or None
        Whether the majority attribute / class changed after editing.
    attribute_change_fraction, class_change_fraction : float or None
        Share of support examples whose majority attribute / class changed. A
        high attribute share with a low class share is what an edit along the
        spurious attribute looks like; a high class share means the edits turn
        examples into another class.
    by_class : dict
        ``{class: {"n", "attribute_change_fraction", "class_change_fraction"}}``.
    support_attribute : ndarray of shape (n_support,) or None
        The support examples' own attributes, when given.
    by_group : dict or None
        ``{(class, attribute): {...}}`` like ``by_class`` per support group, when
        ``support_attribute`` was given (the table then shows groups).
    gallery_y, gallery_attribute : ndarray or None
        The gallery labels, kept for :func:`plot_retrieval`.
    n_neighbors : int
    metric : str
    """

    def __init__(self, **fields):
        self.__dict__.update(fields)
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
        rows = [[r[0], r[1]] + ["-" if v is None else v for v in r[2:]] for r in rows]
        title = (
            f"EditRetrieval: {self.n_neighbors} nearest gallery neighbours "
            f"({self.metric}), majority vote before vs after editing"
        )
        return _format_table(title, header, rows)


def _changed(before, after):
    return None if before is None else before != after


def _share(changed, mask=None):
    if changed is None:
        return None
    values = changed if mask is None else changed[mask]
    return float(values.mean()) if values.size else float("nan")


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
    # drop the excluded row where present, else the farthest extra neighbour
    keep[keep.all(axis=1), -1] = False
    n = queries.shape[0]
    return ind[keep].reshape(n, n_neighbors), dist[keep].reshape(n, n_neighbors)


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

    If the edits move embeddings along the spurious attribute, the neighbours
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
        Neighbours per support embedding; the majority label among them is
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
        Neighbour indices, majority labels before and after, and the
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
    >>> from skhsfm.inspect import edit_retrieval
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
    init, edited, labels = _support_arrays(estimator, "edit_retrieval")
    gallery_X = check_X(gallery_X, "gallery_X")
    gallery_X = _check_width(gallery_X, init.shape[1], "gallery_X")
    n_gallery = gallery_X.shape[0]
    gallery_y = _check_labels(gallery_y, n_gallery, "gallery_y", "gallery_X")
    gallery_attribute = _check_labels(
        gallery_attribute, n_gallery, "gallery_attribute", "gallery_X"
    )
    if gallery_y is None and gallery_attribute is None:
        raise ValueError(
            "pass gallery_y, gallery_attribute or both: the labels whose change "
            "after editing is measured."
        )
    exclude = None
    if exclude_indices is not None:
        exclude = np.asarray(exclude_indices)
        if exclude.shape != (init.shape[0],) or exclude.dtype.kind not in "iu":
            raise ValueError(
                "exclude_indices must be integers, one per support example "
                f"({init.shape[0]}); got shape {exclude.shape} and dtype "
                f"{exclude.dtype}."
            )
        if np.any((exclude < -1) | (exclude >= n_gallery)):
            raise ValueError(
                f"exclude_indices must be gallery rows in [0, {n_gallery}) or -1; "
                f"got values in [{exclude.min()}, {exclude.max()}]."
            )
    support_attribute = _check_labels(
        support_attribute, init.shape[0], "support_attribute", "the support set"
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

    return EditRetrieval(
        labels=labels,
        support_indices=getattr(estimator, "support_indices_", None),
        indices_before=ind_before,
        indices_after=ind_after,
        distances_before=dist_before,
        distances_after=dist_after,
        attribute_before=vote(gallery_attribute, ind_before),
        attribute_after=vote(gallery_attribute, ind_after),
        class_before=vote(gallery_y, ind_before),
        class_after=vote(gallery_y, ind_after),
        support_attribute=support_attribute,
        gallery_y=gallery_y,
        gallery_attribute=gallery_attribute,
        n_neighbors=n_neighbors,
        metric=metric,
    )


# ------------------------------------------------------------- CLIP prompts


class PromptScores:
    """Zero-shot prompt probabilities before and after editing; see
    :func:`prompt_scores`.

    Prints as a per-class table.

    Attributes
    ----------
    prompt_names : list of str
        One name per scored prompt (or prompt group).
    classes : ndarray of shape (n_classes,)
        Class labels present in the support set.
    labels : ndarray of shape (n_support,)
        Class of each support example.
    probabilities_before, probabilities_after : ndarray of shape \
            (n_support, n_prompts)
        ``softmax(temperature * cosine(embedding, text))`` of each initial /
        edited support embedding over the prompts.
    mean_before, mean_after : ndarray of shape (n_classes, n_prompts)
        Their means per class.
    top_changed : ndarray of bool of shape (n_support,)
        Whether the most probable prompt changed after editing.
    top_change_fraction : float
        Share of support examples whose most probable prompt changed.
    by_class : dict
        ``{class: {"n", "top_change_fraction"}}``.
    temperature : float
    """

    def __init__(
        self, prompt_names, labels, probabilities_before, probabilities_after, temp
    ):
        self.prompt_names = prompt_names
        self.labels = labels
        self.classes = np.unique(labels)
        self.probabilities_before = probabilities_before
        self.probabilities_after = probabilities_after
        self.temperature = temp
        masks = [labels == c for c in self.classes]
        self.mean_before = np.vstack([probabilities_before[m].mean(0) for m in masks])
        self.mean_after = np.vstack([probabilities_after[m].mean(0) for m in masks])
        top_before = probabilities_before.argmax(axis=1)
        self.top_changed = top_before != probabilities_after.argmax(axis=1)
        self.top_change_fraction = float(self.top_changed.mean())
        self.by_class = {
            c: {
                "n": int(m.sum()),
                "top_change_fraction": float(self.top_changed[m].mean()),
            }
            for c, m in zip(self.classes.tolist(), masks)
        }

    def __repr__(self):
        header = ["class", "prompt", "before", "after", "change"]
        rows = []
        for k, c in enumerate(self.classes.tolist()):
            for j, name in enumerate(self.prompt_names):
                before, after = self.mean_before[k, j], self.mean_after[k, j]
                label = f"{c} (n={self.by_class[c]['n']})" if j == 0 else ""
                rows.append(
                    [label, name, float(before), float(after), float(after - before)]
                )
        title = (
            f"PromptScores: mean zero-shot probability per class (temperature "
            f"{self.temperature:g}); top prompt changed for "
            f"{self.top_change_fraction:.3f} of support examples"
        )
        return _format_table(title, header, rows)


def _prompt_groups(prompts):
    """``(names, groups)``: one list of prompt strings per scored name."""
    if isinstance(prompts, dict):
        names = [str(name) for name in prompts]
        groups = [[p] if isinstance(p, str) else list(p) for p in prompts.values()]
    else:
        groups = [[p] for p in prompts]
        names = [p for (p,) in groups]
    bad = [p for group in groups for p in group if not isinstance(p, str)]
    if bad:
        raise TypeError(f"prompts must be strings; got {type(bad[0]).__name__}.")
    if len(groups) < 2 or any(len(group) == 0 for group in groups):
        raise ValueError(
            f"prompts must give at least two non-empty prompts (one per attribute "
            f"value); got {len(groups)}."
        )
    return names, groups


def _unit_rows(A):
    norms = np.linalg.norm(A, axis=1, keepdims=True)
    return A / np.maximum(norms, 1e-12)


def _softmax(logits):
    logits = logits - logits.max(axis=1, keepdims=True)
    e = np.exp(logits)
    return e / e.sum(axis=1, keepdims=True)


@validate_params(
    {
        "estimator": "no_validation",
        "prompts": [list, tuple, dict],
        "embedder": "no_validation",
        "text_embeddings": ["array-like", None],
        "temperature": [Interval(Real, 0, None, closed="neither")],
    },
    prefer_skip_nested_validation=True,
)
def prompt_scores(
    estimator, prompts, *, embedder=None, text_embeddings=None, temperature=100.0
):
    """Zero-shot CLIP probabilities of attribute prompts, before and after editing.

    Each initial and edited support embedding is scored against text prompts
    describing the values of the spurious attribute (e.g. ``"a photo with a
    water background"`` / ``"a photo with a land background"``): the
    probabilities are ``softmax(temperature * cosine(image, text))`` over the
    prompts, the CLIP zero-shot convention. Edits along the attribute shift
    the probability mass from one prompt to the other.

    Parameters
    ----------
    estimator : HSFMClassifier
        A classifier fit on **CLIP image embeddings** of the same model as
        ``embedder`` (the scores mean nothing in any other space); or any
        object with ``support_init_``, ``support_edited_`` and
        ``support_labels_``.
    prompts : list of str or dict
        One prompt per attribute value, or a dict ``{name: prompt or list of
        prompts}``; several prompts for one name are averaged after
        normalisation (CLIP prompt ensembling).
    embedder : BackboneEmbedder, default=None
        A CLIP embedder (``backbone="open_clip"``) whose ``encode_text`` turns
        the prompts into text embeddings.
    text_embeddings : array-like of shape (n_prompt_strings, n_features), \
            default=None
        Precomputed text embeddings, one row per prompt string in the order
        given (dict values flattened); instead of ``embedder``.
    temperature : float, default=100.0
        Multiplies the cosines before the softmax (CLIP's learned logit scale
        is 100).

    Returns
    -------
    scores : PromptScores
        Per-example probabilities before and after, per-class means; prints
        as a table.

    See Also
    --------
    plot_prompt_scores : The per-class means as a bar chart.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.utils import Bunch
    >>> from skhsfm.inspect import prompt_scores
    >>> fake = Bunch(
    ...     support_init_=np.array([[1.0, 0.0]]),
    ...     support_edited_=np.array([[0.0, 1.0]]),
    ...     support_labels_=np.array([0]),
    ... )
    >>> scores = prompt_scores(
    ...     fake, ["water", "land"], text_embeddings=np.eye(2), temperature=10.0
    ... )
    >>> scores.probabilities_before.round(4), scores.top_change_fraction
    (array([[1., 0.]]), 1.0)
    """
    init, edited, labels = _support_arrays(estimator, "prompt_scores")
    names, groups = _prompt_groups(prompts)
    flat = [p for group in groups for p in group]
    if (embedder is None) == (text_embeddings is None):
        raise ValueError(
            "pass exactly one of embedder (a CLIP BackboneEmbedder) and "
            "text_embeddings."
        )
    if embedder is not None:
        if not hasattr(embedder, "encode_text"):
            raise ValueError(
                "embedder must be a CLIP BackboneEmbedder (with encode_text); got "
                f"{type(embedder).__name__}."
            )
        text = np.asarray(embedder.encode_text(flat), dtype=np.float64)
    else:
        text = check_X(text_embeddings, "text_embeddings")
    if text.shape[0] != len(flat):
        raise ValueError(
            f"text_embeddings has {text.shape[0]} rows for {len(flat)} prompts; pass "
            "one row per prompt string."
        )
    if text.shape[1] != init.shape[1]:
        raise ValueError(
            f"the text embeddings have {text.shape[1]} features but the support "
            f"embeddings have {init.shape[1]}; the classifier must be fit on the "
            "CLIP image embeddings of the same model."
        )
    text = _unit_rows(text)
    bounds = np.cumsum([0] + [len(group) for group in groups])
    centroids = _unit_rows(
        np.vstack([text[a:b].mean(axis=0) for a, b in zip(bounds[:-1], bounds[1:])])
    )

    def probabilities(H):
        return _softmax(temperature * (_unit_rows(H) @ centroids.T))

    return PromptScores(
        names, labels, probabilities(init), probabilities(edited), float(temperature)
    )


# --------------------------------------------------------------- projection


class EditProjection:
    """2-D PCA coordinates of the support set, its edits and the hard set; see
    :func:`edit_projection`.

    Attributes
    ----------
    support_init, support_edited : ndarray of shape (n_support, 2)
        Coordinates of the initial and edited support embeddings.
    hard : ndarray of shape (n_hard, 2)
        Coordinates of the hard set.
    hard_indices : ndarray of shape (n_hard,)
        Rows of the ``X`` passed to :func:`edit_projection` that form the hard
        set.
    support_labels : ndarray of shape (n_support,)
    support_attribute : ndarray of shape (n_support,) or None
    hard_labels, hard_attribute : ndarray of shape (n_hard,) or None
    components : ndarray of shape (2, n_features)
        The principal axes.
    explained_variance_ratio : ndarray of shape (2,)
        Share of the variance of the initial support and hard-set embeddings
        along each axis.
    """

    def __init__(self, **fields):
        self.__dict__.update(fields)


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
    if rows.size and rows.max() >= n_rows:
        source = "X_val" if pool is None else "the X passed to fit"
        raise ValueError(
            f"X has {n_rows} rows but the hard set refers to row {rows.max()}; pass "
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
        Class labels of the rows of ``X`` (for colouring the hard set).
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

    See Also
    --------
    plot_edit_projection : The figure of this projection.
    """
    from sklearn.decomposition import PCA

    init, edited, labels = _support_arrays(estimator, "edit_projection")
    X = _check_width(check_X(X, "X"), init.shape[1], "X")
    n = X.shape[0]
    y = _check_labels(y, n, "y", "X")
    attribute = _check_labels(attribute, n, "attribute", "X")
    support_attribute = _check_labels(
        support_attribute, init.shape[0], "support_attribute", "the support set"
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
    return EditProjection(
        support_init=pca.transform(init),
        support_edited=pca.transform(edited),
        hard=pca.transform(hard),
        hard_indices=rows,
        support_labels=labels,
        support_attribute=support_attribute,
        hard_labels=None if y is None else y[rows],
        hard_attribute=None if attribute is None else attribute[rows],
        components=pca.components_,
        explained_variance_ratio=pca.explained_variance_ratio_,
    )
