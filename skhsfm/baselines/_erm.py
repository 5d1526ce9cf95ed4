"""ERMHeadClassifier: the plain logistic-regression head every method starts from."""

from numbers import Integral, Real

from sklearn.utils import check_random_state

from skhsfm._base import MAX_SAMPLES_CONSTRAINT, BaseHead, draw_fit_rows, fill_doc
from skhsfm._linear import fit_erm_head
from skhsfm._sklearn_compat import Interval
from skhsfm._utils.lazy import read_rows
from skhsfm._validation import validate_support_pool

__all__ = ["ERMHeadClassifier"]


@fill_doc
class ERMHeadClassifier(BaseHead):
    """Plain ERM linear head: multinomial logistic regression on the embeddings.

    The reference point for the group-robust heads: it is the head
    :class:`~skhsfm.HSFMClassifier` and :class:`AFRClassifier` start from, with
    the same ``fit`` signature so that every head in the package can be swapped
    in a comparison. It uses neither group labels nor held-out data.

    Parameters
    ----------
    C : float, default=1.0
        Inverse L2 regularisation strength of the logistic regression.
    max_iter : int, default=1000
        Maximum number of L-BFGS iterations.
    max_samples : int >= 2, "auto" or None, default="auto"
        Most rows of ``X`` the regression is fit on (a seeded uniform draw
        without replacement when ``X`` is larger; a draw that misses a class
        is refused). None uses every row. "auto"
        uses every row of an in-memory ``X`` and, for a lazy ``X`` (a dask
        array or numpy memmap, read only where rows are needed), 128 MiB worth
        of rows (at least 10,000). A lazy ``X`` and its in-memory copy give
        the same fit for the same int value.
    {rescale}
    random_state : int, RandomState instance or None, default=None
        Seeds the ``max_samples`` draw; unused when every row is used.

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        Class labels.
    coef_ : ndarray of shape (1, n_features) or (n_classes, n_features)
        Head weights (one row for two classes, as in
        :class:`~sklearn.linear_model.LogisticRegression`).
    {fitted_features}
    n_iter_ : int
        L-BFGS iterations used.
    scale_ : float
        The scalar ``X`` was multiplied by for the regression (1.0 with
        ``rescale=False``).

    See Also
    --------
    DFRClassifier : Group-balanced last-layer retraining on held-out data.
    AFRClassifier : Automatic feature reweighting of the ERM head.
    skhsfm.HSFMClassifier : Hard-set-guided feature-space meta-learning.

    Notes
    -----
    ``fit`` fits on all of ``X`` (up to ``max_samples`` rows of a lazy one);
    ``groups``, ``X_val``, ``y_val`` and ``groups_val`` are accepted for a
    uniform API and not used. (HSFM and AFR,
    when ``X_val`` is None, fit their ERM head on ``X`` minus a held-out
    fraction, so their starting head differs slightly from this one then.)

    Examples
    --------
    >>> import numpy as np
    >>> from skhsfm.baselines import ERMHeadClassifier
    >>> rng = np.random.RandomState(0)
    >>> X = rng.normal(size=(40, 3)); y = (X[:, 0] > 0).astype(int)
    >>> head = ERMHeadClassifier().fit(X, y)
    >>> head.score(X, y) > 0.9
    True
    >>> same = ERMHeadClassifier().fit(1e-6 * X, y)  # any scale: same predictions
    >>> bool((same.predict(1e-6 * X) == head.predict(X)).all())
    True
    """

    _parameter_constraints: dict = {
        **BaseHead._parameter_constraints,
        "C": [Interval(Real, 0, None, closed="neither")],
        "max_iter": [Interval(Integral, 1, None, closed="left")],
        "max_samples": MAX_SAMPLES_CONSTRAINT,
        "rescale": ["boolean"],
        "random_state": ["random_state"],
    }

    def __init__(
        self,
        C=1.0,
        max_iter=1000,
        *,
        max_samples="auto",
        rescale=True,
        random_state=None,
    ):
        self.C = C
        self.max_iter = max_iter
        self.max_samples = max_samples
        self.rescale = rescale
        self.random_state = random_state

    def _fit(self, X, y, groups, X_val, y_val, groups_val):
        X, y_enc, _, encoder = validate_support_pool(self, X, y, groups)
        classes = encoder.classes_
        rows = draw_fit_rows(
            self, X, y_enc, classes, check_random_state(self.random_state)
        )
        (X,) = read_rows([(X, rows)])  # in memory and rows=None: X itself
        if rows is not None:
            y_enc = y_enc[rows]
        scale = self._feature_scale(X)
        coef, intercept, n_iter = fit_erm_head(
            X, y_enc, classes.shape[0], C=self.C, max_iter=self.max_iter,
            feature_scale=scale, fix="Raise max_iter, or lower C.",
        )  # fmt: skip
        self.classes_ = classes
        self.coef_ = coef * scale
        self.intercept_ = intercept
        self.scale_ = scale
        self.n_iter_ = n_iter

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        # random_state only seeds a max_samples draw, which in-memory data at
        # the default never makes: the fit is deterministic.
        tags.non_deterministic = False
        return tags
