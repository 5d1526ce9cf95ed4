"""Documentation written once and filled into several docstrings.

Lines that hold only ``{name}`` in a docstring are replaced by
:data:`PARAMETER_DOCS` entries, indented like the placeholder
(:func:`fill_doc`), so that shared parameters (``validation_fraction``,
``init_coef``, ...) and the prediction methods' input read the same everywhere.
"""

import re

__all__ = ["PARAMETER_DOCS", "fill_doc"]

#: Documentation of the parameters several heads share, by placeholder name.
PARAMETER_DOCS = {
    "fitted_features": """\
intercept_ : ndarray of shape (1,) or (n_classes,)
    Head biases.
n_features_in_ : int
    Number of embedding dimensions seen in ``fit``.
feature_names_in_ : ndarray of shape (`n_features_in_`,)
    Defined only when ``X`` has string column names.""",
    "y_true_y_pred": """\
y_true : array-like of shape (n_samples,)
    True labels.
y_pred : array-like of shape (n_samples,)
    Predicted labels.""",
    "groups_metric": """\
groups : array-like of shape (n_samples,)
    Group label of each sample (a class x attribute cell).""",
    "predict_X": """\
X : array-like or dask array of shape (n_samples, n_features)
    Embeddings. A dask array gives a lazy dask array.""",
    "validation_fraction": """\
validation_fraction : float in (0, 1), default=0.2
    Share of ``X`` held out as the hard pool when ``X_val`` is not given,
    stratified by group when ``groups`` are given, else by class.""",
    "init_coef": """\
init_coef : array-like of shape (n_classes, n_features) or (1, n_features), \
default=None
    Coefficients of the initial (ERM) head in the space of ``X``, e.g. the
    backbone's own last layer, in
    :class:`~sklearn.linear_model.LogisticRegression`'s convention
    (``(1, n_features)`` for two classes). None fits a multinomial logistic
    regression on the support pool.""",
    "init_intercept": """\
init_intercept : array-like of shape (n_classes,) or (1,), default=None
    Intercept of the initial head; zeros when ``init_coef`` is given without
    it. Needs ``init_coef`` (an error without it).""",
    "erm_C": """\
erm_C : float, default=1.0
    Inverse L2 regularization strength of the logistic regression that gives
    the initial head when ``init_coef`` is None.""",
    "max_samples": """\
max_samples : int >= 2, "auto" or None, default="auto"
    Most rows of the support pool the initial logistic regression is fit on
    (a seeded uniform draw without replacement when the pool is larger; a
    draw that misses a class is refused).
    None uses every row. "auto" uses every row of an in-memory ``X`` and, for
    a lazy ``X`` (a dask array or numpy memmap, read only where rows are
    needed), 128 MiB worth of rows (at least 10,000), so that the fit never
    holds more of ``X`` than that plus the hard pool. A lazy ``X`` and its
    in-memory copy give the same fit for the same int value.""",
    "rescale": """\
rescale : bool, default=True
    Fit on ``X`` multiplied by one scalar so that the root-mean-square
    coordinate of the rows the regression is fit on is 1, and fold the
    scalar back into ``coef_`` (``scale_``): the solvers see a problem of
    the same size whatever the units of the embeddings, so ``X`` and
    ``c * X`` (any ``c > 0``, float32 or float64) give the same predictions
    up to rounding, and the regularisation means the same for unit-norm and
    un-normalised features. All-zero ``X`` is refused. False fits ``X`` as
    given (the L2 penalty then depends on the scale of ``X``).""",
    "device": """\
device : str, default="auto"
    Torch device for ``fit``: "auto" (CUDA when available, else CPU), "cpu",
    "cuda", "cuda:1", ... Prediction always runs in numpy.""",
    "fit_parameters": """\
X : array-like, dask array or numpy memmap of shape (n_samples, n_features)
    Support pool: the training embeddings. A dask array or memmap is read
    only where the head needs rows (see the head's Notes).
y : array-like of shape (n_samples,)
    Class labels of ``X``.
groups : array-like of shape (n_samples,), default=None
    Group (class x attribute cell) of each row of ``X``. Stratifies the
    hold-out and, when the hard pool is held out from ``X``, gives its groups.
    Requested by default under metadata routing.
X_val : array-like, dask array or memmap of shape (n_val, n_features), \
default=None
    Hard pool: held-out embeddings (the validation split). None holds out
    ``validation_fraction`` of ``X``. The hard pool is read into memory.
y_val : array-like of shape (n_val,), default=None
    Labels of ``X_val``; required with ``X_val``.
groups_val : array-like of shape (n_val,), default=None
    Groups of ``X_val``. Without hard-pool groups, selection falls back to
    worst-class accuracy.""",
}

_PLACEHOLDER = re.compile(r"^(?P<indent>[ \t]*)\{(?P<name>[A-Za-z_]+)\}[ \t]*$", re.M)


def fill_doc(obj):
    """Replace lines ``{name}`` in ``obj.__doc__`` by :data:`PARAMETER_DOCS`
    entries, indented like the placeholder. Unknown names are left alone."""

    def replace(match):
        text = PARAMETER_DOCS.get(match["name"])
        if text is None:
            return match[0]
        return "\n".join(
            match["indent"] + line if line else line for line in text.splitlines()
        )

    if obj.__doc__:
        obj.__doc__ = _PLACEHOLDER.sub(replace, obj.__doc__)
    return obj
