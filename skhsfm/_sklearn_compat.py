"""The one place that touches scikit-learn's private names.

scikit-learn keeps its parameter-validation machinery (``Interval``,
``StrOptions``, ``validate_params``, ``_fit_context``) in private modules, and
the rest of the package needs it to feel like scikit-learn itself. Importing
those names here, and only here, means a scikit-learn release that moves them
breaks one module, which ``tests/test_sklearn_compat.py`` checks.

The same goes for :func:`inside_cv_scoring`, the only code that relies on how
scikit-learn's cross-validation calls a scorer, and for :func:`l1_logistic_params`,
the only code that depends on which scikit-learn release is installed.
"""

import sys
from functools import lru_cache

from sklearn.base import _fit_context
from sklearn.utils._param_validation import (
    HasMethods,
    Hidden,
    Interval,
    InvalidParameterError,
    Options,
    StrOptions,
    validate_params,
)

__all__ = [
    "HasMethods",
    "Hidden",
    "Interval",
    "InvalidParameterError",
    "Options",
    "StrOptions",
    "fit_context",
    "inside_cv_scoring",
    "l1_logistic_params",
    "validate_params",
    "CV_SCORE_FUNCTION",
]

#: ``@fit_context(prefer_skip_nested_validation=True)`` on ``fit`` validates the
#: parameters against ``_parameter_constraints``, as scikit-learn's own
#: estimators do.
fit_context = _fit_context

#: Where scikit-learn's cross-validation calls a scorer and turns any exception
#: into ``error_score`` (NaN by default): ``(module, function)``.
CV_SCORE_FUNCTION = ("sklearn.model_selection._validation", "_score")


def inside_cv_scoring(max_depth=10, *, skip=2):
    """Whether the caller runs below scikit-learn's cross-validation scoring.

    ``GridSearchCV``, ``cross_validate`` and ``cross_val_score`` score through
    :data:`CV_SCORE_FUNCTION`, which catches every exception of a scorer and
    records ``error_score`` with a warning. A scorer that must fail loudly there
    (a worst-group scorer without groups would otherwise yield NaN scores) asks
    this function and returns a non-number instead of raising: scikit-learn
    rejects a non-number outside its ``error_score`` handling.

    Parameters
    ----------
    max_depth : int, default=10
        How many frames above the caller to look at.
    skip : int, default=2
        Frames to skip first (this function and its caller).

    Returns
    -------
    bool
    """
    module, function = CV_SCORE_FUNCTION
    frame = sys._getframe(skip)
    for _ in range(max_depth):
        if frame is None:
            return False
        code = frame.f_code
        if code.co_name == function and frame.f_globals.get("__name__") == module:
            return True
        frame = frame.f_back
    return False


@lru_cache(maxsize=1)
def l1_logistic_params():
    """Keyword arguments that make ``LogisticRegression``'s penalty pure L1.

    scikit-learn 1.8 made ``l1_ratio`` choose the penalty (``l1_ratio=1`` is L1)
    and deprecated ``penalty``, whose default became the string
    ``"deprecated"``; 1.10 removes it. Before 1.8, ``l1_ratio`` is ignored
    unless ``penalty="elasticnet"``, so ``l1_ratio=1`` alone silently fits an L2
    model (with a warning). Which API is installed is read from
    ``LogisticRegression``'s own default rather than its version string.

    Returns
    -------
    params : dict
        ``{"l1_ratio": 1.0}`` on scikit-learn >= 1.8, ``{"penalty": "l1"}``
        before (no deprecation warning on either).
    """
    from sklearn.linear_model import LogisticRegression

    penalty = LogisticRegression().get_params().get("penalty", "deprecated")
    if penalty == "deprecated":
        return {"l1_ratio": 1.0}
    return {"penalty": "l1"}
