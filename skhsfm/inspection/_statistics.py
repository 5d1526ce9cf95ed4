"""Edit statistics: size and direction of each support edit."""

from dataclasses import dataclass, field

import numpy as np

from skhsfm._sklearn_compat import validate_params
from skhsfm._utils.table import format_table
from skhsfm._utils.text import plain
from skhsfm._validation import check_X
from skhsfm.inspection._common import (
    check_rows,
    check_width,
    estimator_classes,
    finite_mean,
    row_cosine,
    support_arrays,
)

__all__ = ["EditStatistics", "edit_statistics", "mean_difference_direction"]


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
        normalized; its norm is the distance between the two means).

    Examples
    --------
    >>> import numpy as np
    >>> from skhsfm.inspection import mean_difference_direction
    >>> X = np.array([[0.0, 1.0], [0.0, 3.0], [2.0, 1.0], [2.0, 3.0]])
    >>> mean_difference_direction(X, [0, 0, 1, 1])
    array([2., 0.])
    """
    X = check_X(X, "X")
    labels = check_rows(labels, "labels", X.shape[0], "X")
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
                f"{name}={plain(value)} does not occur in labels; labels takes the "
                f"values {values.tolist()[:10]}."
            )
    return X[labels == target].mean(axis=0) - X[labels == source].mean(axis=0)


_COLUMNS = (
    ("n", "n"),
    ("edit_norm", "edit norm"),
    ("relative_norm", "relative"),
    ("class_cosine", "cos(class)"),
    ("attribute_cosine", "cos(attr)"),
    ("abs_attribute_cosine", "|cos(attr)|"),
)


@dataclass(eq=False, repr=False)
class EditStatistics:
    """Size and direction of each support edit; built by :func:`edit_statistics`.

    Prints as a per-class table.

    Parameters
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

    Attributes
    ----------
    summary : dict
        ``{class: {"n", "edit_norm", "relative_norm", "class_cosine",
        "attribute_cosine", "abs_attribute_cosine"}}`` means over the class's
        support examples (nan-valued cosines skipped), plus the key ``"all"``.
    """

    classes: np.ndarray
    labels: np.ndarray
    edit_norm: np.ndarray
    relative_norm: np.ndarray
    class_cosine: np.ndarray
    attribute_cosine: np.ndarray | None = None
    summary: dict = field(init=False)

    def __post_init__(self):
        self.summary = {
            c: self._summarize(self.labels == c) for c in self.classes.tolist()
        }
        self.summary["all"] = self._summarize(np.ones(self.labels.shape[0], bool))

    def _summarize(self, mask):
        attr = self.attribute_cosine
        nan = float("nan")
        return {
            "n": int(mask.sum()),
            "edit_norm": finite_mean(self.edit_norm[mask]),
            "relative_norm": finite_mean(self.relative_norm[mask]),
            "class_cosine": finite_mean(self.class_cosine[mask]),
            "attribute_cosine": nan if attr is None else finite_mean(attr[mask]),
            "abs_attribute_cosine": (
                nan if attr is None else finite_mean(np.abs(attr[mask]))
            ),
        }

    def __repr__(self):
        columns = _COLUMNS if self.attribute_cosine is not None else _COLUMNS[:4]
        header = ["class"] + [title for _, title in columns]
        rows = [
            [str(key)] + [values[name] for name, _ in columns]
            for key, values in self.summary.items()
        ]
        title = f"EditStatistics: {self.labels.shape[0]} support examples"
        return format_table(header, rows, title=title)


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
    >>> from skhsfm.inspection import edit_statistics
    >>> fake = Bunch(
    ...     support_init_=np.array([[1.0, 0.0], [-1.0, 0.0]]),
    ...     support_edited_=np.array([[1.0, 2.0], [-1.0, -1.0]]),
    ...     support_labels_=np.array([0, 1]),
    ... )
    >>> stats = edit_statistics(fake, attribute_direction=[0.0, 1.0])
    >>> stats.edit_norm, stats.attribute_cosine
    (array([2., 1.]), array([ 1., -1.]))
    """
    init, edited, labels = support_arrays(estimator, "edit_statistics")
    classes = estimator_classes(estimator, labels)
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
        X = check_width(check_X(X, "X"), d, "X")
        y = check_rows(y, "y", X.shape[0], "X")
        means = _class_means(X, y, classes, "y")
    else:
        means = _class_means(init, labels, classes, "support_labels_")

    position = {c: k for k, c in enumerate(classes.tolist())}
    own = np.array([position[c] for c in labels.tolist()])
    n_classes = classes.shape[0]
    # mean of the other classes' means, for each class
    others = (means.sum(axis=0, keepdims=True) - means) / (n_classes - 1)
    towards_other = (others - means)[own]

    attribute_cosine = None
    if attribute_direction is not None:
        direction = np.asarray(attribute_direction, dtype=np.float64)
        if direction.shape != (d,):
            raise ValueError(
                f"attribute_direction must have shape (n_features,) = ({d},); got "
                f"{direction.shape}."
            )
        if not np.isfinite(direction).all() or not np.any(direction):
            raise ValueError("attribute_direction must be finite and non-zero.")
        attribute_cosine = row_cosine(edits, direction)

    edit_norm = np.linalg.norm(edits, axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        relative_norm = edit_norm / np.linalg.norm(init, axis=1)
    return EditStatistics(
        classes=classes,
        labels=labels,
        edit_norm=edit_norm,
        relative_norm=relative_norm,
        class_cosine=row_cosine(edits, towards_other),
        attribute_cosine=attribute_cosine,
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
