"""Linear heads in numpy: the value type, the prediction mixin, the initial head.

A fitted head is ``coef`` (``(n_classes, n_features)``, or ``(1, n_features)``
for two classes, like :class:`~sklearn.linear_model.LogisticRegression`),
``intercept`` and ``classes``. Two classes use a sigmoid of one score (positive
class ``classes[1]``); more use a softmax over one score per class. Prediction
never needs torch.

Inside the fitting code heads are kept with one row per class (``W, b``, the
*softmax* form); :func:`to_softmax_head` and :func:`to_sklearn_head` convert.

Because the conventions are :class:`~sklearn.linear_model.LogisticRegression`'s
(binary: sigmoid of one score; more classes: multinomial softmax, never
one-vs-rest), every head converts to a fitted ``LogisticRegression`` that
predicts the same (:func:`logistic_regression`, ``to_sklearn()``): a plain
scikit-learn model to deploy, or to export to ONNX with ``skl2onnx``.
"""

from dataclasses import dataclass
from functools import partial

import numpy as np
from scipy.special import expit, log_expit, log_softmax, softmax
from sklearn.linear_model import LogisticRegression
from sklearn.utils.validation import check_is_fitted, validate_data

from skhsfm._logistic import scaled_logistic_regression
from skhsfm._utils.docstrings import fill_doc
from skhsfm._utils.lazy import check_lazy_X, is_dask_array, lazy_map_rows

__all__ = ["LinearHead", "LinearHeadMixin", "logistic_regression"]


def _scores(X, coef, intercept):
    scores = X @ np.asarray(coef, dtype=np.float64).T + intercept
    return scores.ravel() if scores.shape[1] == 1 else scores


def _labels(scores, classes):
    if scores.ndim == 1:
        return classes[(scores > 0).astype(int)]
    return classes[np.argmax(scores, axis=1)]


def _proba(scores):
    if scores.ndim == 1:
        positive = expit(scores)
        return np.column_stack([1.0 - positive, positive])
    return softmax(scores, axis=1)


def _log_proba(scores):
    if scores.ndim == 1:
        return np.column_stack([log_expit(-scores), log_expit(scores)])
    return log_softmax(scores, axis=1)


def _apply(scores, func, n_out, dtype, *args):
    """``func(scores, *args)``, block by block when ``scores`` is a dask array.

    ``n_out`` is the number of output columns (None for one value per row).
    """
    if not is_dask_array(scores):
        return func(scores, *args)
    if n_out is None:
        extra = {"drop_axis": 1} if scores.ndim == 2 else {}
    elif scores.ndim == 1:
        extra = {"new_axis": 1, "chunks": (scores.chunks[0], (n_out,))}
    else:
        extra = {"chunks": (scores.chunks[0], (n_out,))}
    return scores.map_blocks(func, *args, dtype=dtype, **extra)


@dataclass(frozen=True, eq=False)
class LinearHead:
    """A linear classifier head as plain arrays, with numpy prediction.

    The value type behind every fitted head of the package, and a way to use a
    head that comes from elsewhere (a backbone's own last layer, the initial
    head of an HSFM fit) with the same conventions.

    Parameters
    ----------
    coef : array-like of shape (n_classes, n_features) or (1, n_features)
        Weights; one row for two classes means a sigmoid of one score, as in
        :class:`~sklearn.linear_model.LogisticRegression`.
    intercept : array-like of shape (n_classes,) or (1,)
        Biases.
    classes : array-like of shape (n_classes,), default=None
        Class labels; None means ``0 .. n_classes - 1``.

    See Also
    --------
    LinearHead.from_softmax : Build from one row per class, also for two.

    Examples
    --------
    >>> import numpy as np
    >>> from skhsfm import LinearHead
    >>> head = LinearHead([[1.0, -1.0]], [0.0], classes=["cat", "dog"])
    >>> head.predict(np.array([[2.0, 0.0], [0.0, 2.0]])).tolist()
    ['dog', 'cat']
    """

    coef: np.ndarray
    intercept: np.ndarray
    classes: np.ndarray = None

    def __post_init__(self):
        coef = np.asarray(self.coef, dtype=np.float64)
        intercept = np.asarray(self.intercept, dtype=np.float64).ravel()
        if coef.ndim != 2 or coef.shape[0] < 1:
            raise ValueError(
                f"coef must be a 2-d array with one row per class (or one row for "
                f"two classes); got shape {coef.shape}."
            )
        if intercept.shape[0] != coef.shape[0]:
            raise ValueError(
                f"intercept must have {coef.shape[0]} entries to match coef; got "
                f"{intercept.shape[0]}."
            )
        n_classes = 2 if coef.shape[0] == 1 else coef.shape[0]
        classes = (
            np.arange(n_classes) if self.classes is None else np.asarray(self.classes)
        )
        if classes.ndim != 1 or classes.shape[0] != n_classes:
            raise ValueError(
                f"classes must list {n_classes} labels for a coef of shape "
                f"{coef.shape}; got {classes.shape[0] if classes.ndim else 0}."
            )
        object.__setattr__(self, "coef", coef)
        object.__setattr__(self, "intercept", intercept)
        object.__setattr__(self, "classes", classes)

    @classmethod
    def from_softmax(cls, W, b, classes=None):
        """A head from one weight row per class (two rows for two classes)."""
        coef, intercept = to_sklearn_head(W, b)
        return cls(coef, intercept, classes)

    @property
    def n_features(self):
        """Number of input features."""
        return self.coef.shape[1]

    def softmax_weights(self):
        """The head with one row per class, ``(W, b)`` (same probabilities)."""
        return to_softmax_head(self.coef, self.intercept, self.classes.shape[0])

    def decision_function(self, X):
        """Linear scores: one per sample for two classes, else one per class."""
        return _scores(np.asarray(X), self.coef, self.intercept)

    def predict(self, X):
        """Labels from ``classes``."""
        return _labels(self.decision_function(X), self.classes)

    def predict_proba(self, X):
        """Class probabilities, columns following ``classes``."""
        return _proba(self.decision_function(X))

    def predict_log_proba(self, X):
        """Log of :meth:`predict_proba`, computed stably."""
        return _log_proba(self.decision_function(X))

    def to_sklearn(self):
        """The head as a fitted scikit-learn ``LogisticRegression``.

        Returns
        -------
        model : sklearn.linear_model.LogisticRegression
            Fitted, with ``coef_``, ``intercept_``, ``classes_`` and
            ``n_features_in_`` of this head: same ``predict``,
            ``predict_proba`` and ``decision_function``. A two-class head
            given with two rows becomes sklearn's one row ``coef[1] - coef[0]``
            (same labels and probabilities; ``decision_function`` then returns
            that one score).

        See Also
        --------
        LinearHeadMixin.to_sklearn : The same for a fitted head estimator.

        Examples
        --------
        >>> from skhsfm import LinearHead
        >>> head = LinearHead([[1.0, -1.0]], [0.0], classes=["cat", "dog"])
        >>> head.to_sklearn().predict([[2.0, 0.0], [0.0, 2.0]]).tolist()
        ['dog', 'cat']
        """
        coef, intercept = self.coef, self.intercept
        if coef.shape[0] == 2:  # two classes in the softmax form
            coef, intercept = to_sklearn_head(coef, intercept)
        return logistic_regression(coef, intercept, self.classes)


class LinearHeadMixin:
    """``decision_function`` / ``predict`` / ``predict_proba`` from a linear head.

    Put it left of ``ClassifierMixin`` and ``BaseEstimator``. The estimator's
    ``fit`` must set ``coef_``, ``intercept_``, ``classes_`` and
    ``n_features_in_`` (via ``validate_data``); prediction then follows
    :class:`LinearHead`.
    """

    def _decision(self, X):
        check_is_fitted(self, ("coef_", "intercept_", "classes_"))
        if is_dask_array(X):  # stays lazy: scores block by block
            check_lazy_X(self, X, "X", reset=False)
            coef = np.asarray(self.coef_, dtype=np.float64)
            n_out = None if coef.shape[0] == 1 else coef.shape[0]
            scores = partial(_scores, coef=coef, intercept=self.intercept_)
            return lazy_map_rows(X, scores, n_out, np.float64)
        X = validate_data(self, X, reset=False, dtype=(np.float64, np.float32))
        return _scores(X, self.coef_, self.intercept_)

    def decision_function(self, X):
        """Linear scores ``X @ coef_.T + intercept_``.

        Parameters
        ----------
        {predict_X}

        Returns
        -------
        scores : ndarray of shape (n_samples,) or (n_samples, n_classes)
            One score per sample for two classes (positive means
            ``classes_[1]``), else one score per class.
        """
        return self._decision(X)

    def predict(self, X):
        """Predict the class of each sample.

        Parameters
        ----------
        {predict_X}

        Returns
        -------
        y_pred : ndarray of shape (n_samples,)
            Labels from ``classes_``.
        """
        scores = self._decision(X)
        classes = self.classes_
        return _apply(scores, _labels, None, classes.dtype, classes)

    def predict_proba(self, X):
        """Class probabilities (sigmoid for two classes, softmax otherwise).

        Parameters
        ----------
        {predict_X}

        Returns
        -------
        proba : ndarray of shape (n_samples, n_classes)
            Columns follow ``classes_``.
        """
        scores = self._decision(X)
        return _apply(scores, _proba, self.classes_.shape[0], np.float64)

    def predict_log_proba(self, X):
        """Log of :meth:`predict_proba`, computed stably.

        Parameters
        ----------
        {predict_X}

        Returns
        -------
        log_proba : ndarray of shape (n_samples, n_classes)
        """
        scores = self._decision(X)
        return _apply(scores, _log_proba, self.classes_.shape[0], np.float64)

    def to_sklearn(self):
        """The fitted head as a plain scikit-learn ``LogisticRegression``.

        A fitted head of this package is a linear model in
        :class:`~sklearn.linear_model.LogisticRegression`'s layout, so the
        returned model, given the same ``coef_``, ``intercept_`` and
        ``classes_``, predicts the same: identical ``predict`` and
        ``decision_function``, and ``predict_proba`` equal up to floating-point
        rounding (sigmoid for two classes, multinomial softmax for more). Use it
        to serve predictions where skhsfm is not installed, or to export the
        head with tools that know scikit-learn's linear models, e.g. to ONNX
        with ``skl2onnx.to_onnx(head.to_sklearn(), X[:1])``.

        Returns
        -------
        model : sklearn.linear_model.LogisticRegression
            A fitted model with copies of ``coef_``, ``intercept_``,
            ``classes_``, ``n_features_in_`` and, when ``fit`` saw string
            column names, ``feature_names_in_``. Its hyperparameters are
            ``LogisticRegression``'s defaults: calling its ``fit`` would train
            a plain logistic regression, not this head.

        Raises
        ------
        sklearn.exceptions.NotFittedError
            When the head is not fitted.

        See Also
        --------
        skhsfm.LinearHead.to_sklearn : The same for a head given as arrays.

        Notes
        -----
        Only what prediction needs is carried over; the method's own fitted
        attributes (``history_``, ``support_edited_``, ...) stay on the head.

        Examples
        --------
        >>> import numpy as np
        >>> from skhsfm import ERMHeadClassifier
        >>> rng = np.random.RandomState(0)
        >>> X = rng.normal(size=(30, 3)); y = np.repeat(["a", "b", "c"], 10)
        >>> head = ERMHeadClassifier().fit(X, y)
        >>> model = head.to_sklearn()
        >>> type(model).__name__
        'LogisticRegression'
        >>> bool((model.predict(X) == head.predict(X)).all())
        True
        >>> np.allclose(model.predict_proba(X), head.predict_proba(X))
        True

        Export to ONNX (needs ``pip install skhsfm[onnx]``)::

            from skl2onnx import to_onnx
            onx = to_onnx(head.to_sklearn(), X[:1].astype(np.float32))
        """
        check_is_fitted(self, ("coef_", "intercept_", "classes_"))
        model = logistic_regression(self.coef_, self.intercept_, self.classes_)
        model.n_features_in_ = self.n_features_in_
        if hasattr(self, "feature_names_in_"):
            model.feature_names_in_ = np.array(self.feature_names_in_, copy=True)
        return model


for _method in ("decision_function", "predict", "predict_proba", "predict_log_proba"):
    fill_doc(getattr(LinearHeadMixin, _method))


def logistic_regression(coef, intercept, classes):
    """A fitted :class:`~sklearn.linear_model.LogisticRegression` with this head.

    ``coef`` in sklearn's convention (``(1, n_features)`` for two classes).
    Default hyperparameters: its binary ``predict_proba`` is the sigmoid of the
    one score and, for more classes, the softmax over the scores (the default
    lbfgs solver is multinomial), as the package's heads predict.
    """
    coef = np.array(coef, dtype=np.float64, copy=True, order="C")
    intercept = np.array(intercept, dtype=np.float64, copy=True).ravel()
    classes = np.array(classes, copy=True)
    n_rows = 1 if classes.shape[0] == 2 else classes.shape[0]
    if coef.ndim != 2 or coef.shape[0] != n_rows or intercept.shape != (n_rows,):
        raise ValueError(
            f"A head with {classes.shape[0]} classes needs coef of shape "
            f"({n_rows}, n_features) and intercept of shape ({n_rows},); got "
            f"{coef.shape} and {intercept.shape}."
        )
    model = LogisticRegression()
    model.classes_ = classes
    model.coef_ = coef
    model.intercept_ = intercept
    model.n_features_in_ = coef.shape[1]
    return model


def to_softmax_head(coef, intercept, n_classes):
    """A head in sklearn's convention as ``(W, b)`` with one row per class.

    sklearn's binary ``(1, d)`` head becomes the symmetric two-row head
    ``[-w/2, w/2]`` (same probabilities); other heads are returned as float
    arrays unchanged.
    """
    coef = np.asarray(coef, dtype=np.float64)
    intercept = np.asarray(intercept, dtype=np.float64).ravel()
    if n_classes == 2 and coef.shape[0] == 1:
        return np.vstack([-coef[0] / 2, coef[0] / 2]), np.array(
            [-intercept[0] / 2, intercept[0] / 2]
        )
    return coef, intercept


def to_sklearn_head(W, b):
    """A one-row-per-class head ``(W, b)`` in sklearn's convention (one row for
    two classes: ``W[1] - W[0]``)."""
    W = np.asarray(W, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64).ravel()
    if W.shape[0] == 2:
        return (W[1] - W[0])[None, :], np.array([b[1] - b[0]])
    return W, b


def softmax_head_proba(X, W, b):
    """Softmax probabilities of a one-row-per-class head on ``X``."""
    return softmax(X @ W.T + b, axis=1)


#: Stopping tolerance of the initial logistic regression (scikit-learn's default).
ERM_TOL = 1e-4


def fit_erm_head(
    X,
    y,
    n_classes,
    *,
    C=1.0,
    max_iter=1000,
    tol=ERM_TOL,
    sample_weight=None,
    feature_scale=1.0,
    fix="Increase erm_C's regularisation (lower erm_C) or pass init_coef.",
):
    """Multinomial L2 logistic regression of ``(feature_scale * X, y)``.

    ``y`` holds the encoded labels ``0 .. n_classes - 1``, every class present.
    At scale 1 it is scikit-learn's ``LogisticRegression``; at any other
    scale the same objective and solver over row blocks of
    ``feature_scale * X`` (:func:`skhsfm._logistic.scaled_logistic_regression`),
    without a scaled copy of ``X``. ``fix`` ends the convergence warning.

    Returns
    -------
    coef, intercept : ndarray
        For ``feature_scale * X``, in scikit-learn's convention (one row for
        two classes).
    n_iter : int
        L-BFGS iterations.
    """
    if feature_scale == 1.0:
        model = LogisticRegression(C=C, max_iter=max_iter, tol=tol)
        model.fit(X, y, sample_weight=sample_weight)
        return (
            model.coef_.astype(np.float64),
            model.intercept_.astype(np.float64),
            int(np.max(model.n_iter_)),
        )
    return scaled_logistic_regression(
        X, y, n_classes, C=C, scale=feature_scale, max_iter=max_iter, tol=tol,
        sample_weight=sample_weight, return_n_iter=True, fix=fix,
    )  # fmt: skip


def check_init_head(init_coef, init_intercept, n_classes, n_features):
    """Validate a user's initial head; return it as a one-row-per-class head.

    ``init_coef`` follows sklearn's convention: ``(n_classes, n_features)``, or
    ``(1, n_features)`` for two classes.
    """
    coef = np.asarray(init_coef, dtype=np.float64)
    rows = (1, n_classes) if n_classes == 2 else (n_classes,)
    if coef.ndim != 2 or coef.shape[0] not in rows or coef.shape[1] != n_features:
        expected = " or ".join(f"({r}, {n_features})" for r in rows)
        raise ValueError(
            f"init_coef must have shape {expected} for {n_classes} classes and "
            f"{n_features} features; got shape {coef.shape}."
        )
    if init_intercept is None:
        intercept = np.zeros(coef.shape[0])
    else:
        intercept = np.ravel(np.asarray(init_intercept, dtype=np.float64))
        if intercept.shape[0] != coef.shape[0]:
            raise ValueError(
                f"init_intercept must have {coef.shape[0]} entries to match "
                f"init_coef; got {intercept.shape[0]}."
            )
    if not (np.isfinite(coef).all() and np.isfinite(intercept).all()):
        raise ValueError("init_coef and init_intercept must be finite; got NaN or inf.")
    return to_softmax_head(coef, intercept, n_classes)


def initial_head(
    init_coef,
    init_intercept,
    X,
    y,
    n_classes,
    *,
    C=1.0,
    feature_scale=1.0,
    sample_weight=None,
):
    """The initial (ERM) head of HSFM and AFR as a one-row-per-class ``(W, b)``.

    The head acts on ``feature_scale * X``: the multinomial logistic regression
    of ``(feature_scale * X, y)`` when ``init_coef`` is None, else the user's
    head for ``X`` (validated) rescaled accordingly. With a scale other than 1
    the regression runs on row blocks of ``feature_scale * X``
    (:func:`skhsfm._logistic.scaled_logistic_regression`): scikit-learn's
    objective, solver and options, without a scaled copy of ``X``.
    ``sample_weight`` (mean 1) weighs the rows of the regression.
    """
    if init_coef is None:
        coef, intercept, _ = fit_erm_head(
            X, y, n_classes, C=C, sample_weight=sample_weight,
            feature_scale=feature_scale,
        )  # fmt: skip
        return to_softmax_head(coef, intercept, n_classes)
    W, b = check_init_head(init_coef, init_intercept, n_classes, X.shape[1])
    return W / feature_scale, b


def fit_temperature(W, b, X, y, feature_scale=1.0, strata=None):
    """The temperature ``t`` that minimises the cross-entropy of the head
    ``(W / t, b / t)`` on ``(feature_scale * X, y)`` (temperature scaling, Guo
    et al., 2017), each stratum weighing the same when ``strata`` is given.

    Dividing a head by ``t > 0`` leaves its predictions unchanged; it only
    changes how confident they are. Searched on a log scale in
    ``[exp(-3), exp(6)]``.
    """
    from scipy.optimize import minimize_scalar
    from scipy.special import log_softmax

    Z = (np.asarray(X, dtype=np.float64) * feature_scale) @ W.T + b
    picked = np.arange(y.shape[0]), y
    if strata is None:
        weights = np.full(y.shape[0], 1.0 / y.shape[0])
    else:
        _, inverse, counts = np.unique(strata, return_inverse=True, return_counts=True)
        weights = 1.0 / (counts.shape[0] * counts[inverse])

    def loss(log_t):
        return -(log_softmax(Z / np.exp(log_t), axis=1)[picked] @ weights)

    found = minimize_scalar(loss, bounds=(-3.0, 6.0), method="bounded")
    return float(np.exp(found.x))


def margin_temperature(W, b, X, y, feature_scale=1.0, margin=2.0):
    """The temperature ``t >= 1`` that brings the median margin of the head
    ``(W / t, b / t)`` on ``(feature_scale * X, y)`` down to ``margin``.

    A row's margin is its class's logit minus the largest other logit. A head
    more confident than that on these rows is cooled; dividing a head by
    ``t > 0`` leaves its predictions unchanged.
    """
    Z = (np.asarray(X, dtype=np.float64) * feature_scale) @ W.T + b
    rows = np.arange(y.shape[0])
    own = Z[rows, y]
    Z[rows, y] = -np.inf
    median = float(np.median(own - Z.max(axis=1)))
    return max(1.0, median / margin)
