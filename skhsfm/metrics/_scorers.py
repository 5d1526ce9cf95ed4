"""Group-aware scorers that fail loudly when ``groups`` do not arrive."""

import sklearn
from sklearn.metrics import make_scorer

from skhsfm._sklearn_compat import inside_cv_scoring
from skhsfm.metrics._accuracy import worst_group_accuracy

__all__ = ["make_group_scorer", "make_worst_group_scorer", "worst_group_scorer"]

_ROUTING_OFF_MESSAGE = (
    "{name} received no `groups` because scikit-learn metadata routing is off: "
    "with routing off, GridSearchCV, cross_validate and cross_val_score never "
    "pass `groups` to a scorer (they only give it to the splitter). Call "
    "`sklearn.set_config(enable_metadata_routing=True)` before fitting, or run the "
    "search inside `with sklearn.config_context(enable_metadata_routing=True):`, "
    "and pass the group labels as `search.fit(X, y, groups=groups)` or "
    "`cross_validate(estimator, X, y, params={{'groups': groups}}, ...)`."
)
_ROUTING_ON_MESSAGE = (
    "{name} received no `groups`. Pass one group label per sample: "
    "`search.fit(X, y, groups=groups)`, "
    "`cross_validate(estimator, X, y, params={{'groups': groups}}, ...)`, or "
    "`scorer(estimator, X, y, groups=groups)` when calling it directly. If you "
    "changed the scorer's request, restore it with "
    "`scorer.set_score_request(groups=True)`."
)


class _ScoringFailure:
    """Returned instead of a score when scikit-learn's cross-validation would
    otherwise swallow the error: ``_score`` rejects any non-number, outside its
    ``error_score`` handling, with a ValueError that shows this object's text."""

    def __init__(self, message):
        self.message = message

    def __repr__(self):
        return f"no score. {self.message}\n"

    __str__ = __repr__

    def __mul__(self, other):
        return self

    __rmul__ = __mul__

    def __float__(self):
        raise ValueError(self.message)


class _GroupMetric:
    """A group metric as a scorer's score function: errors loudly without groups."""

    def __init__(self, metric):
        self.metric = metric
        self.__name__ = getattr(metric, "__name__", type(metric).__name__)

    def __call__(self, y_true, y_pred, groups=None, **kwargs):
        if groups is not None:
            return self.metric(y_true, y_pred, groups=groups, **kwargs)
        routing = sklearn.get_config()["enable_metadata_routing"]
        template = _ROUTING_ON_MESSAGE if routing else _ROUTING_OFF_MESSAGE
        message = template.format(name=f"The scorer for {self.__name__}")
        # GridSearchCV, cross_validate and cross_val_score catch scorer errors and
        # record error_score (NaN) with a warning; a non-number result instead
        # makes them raise, so a misconfigured search cannot finish silently.
        if inside_cv_scoring():
            return _ScoringFailure(message)
        raise ValueError(message)


def make_group_scorer(score_func, *, greater_is_better=True, **kwargs):
    """Scorer from a group metric, requesting ``groups`` by metadata routing.

    Parameters
    ----------
    score_func : callable
        Metric with signature ``score_func(y_true, y_pred, *, groups, **kwargs)``,
        e.g. :func:`worst_group_accuracy` or :func:`group_weighted_accuracy`.
    greater_is_better : bool, default=True
        Whether a higher value of ``score_func`` is better.
    **kwargs
        Extra keyword arguments for ``score_func`` (e.g. ``reference_groups``).

    Returns
    -------
    scorer : callable
        A scikit-learn scorer (from :func:`sklearn.metrics.make_scorer`) whose
        score request has ``groups=True``. It can be created whatever the
        configuration, but using it in ``GridSearchCV``, ``cross_validate`` or
        ``cross_val_score`` needs
        ``sklearn.set_config(enable_metadata_routing=True)``; without routing,
        or without ``groups`` passed to ``fit``, scoring raises a ValueError
        saying what to do (it never records a NaN score).

    See Also
    --------
    make_worst_group_scorer : The worst-group accuracy scorer.

    Examples
    --------
    >>> import sklearn
    >>> from sklearn.linear_model import LogisticRegression
    >>> from skhsfm.metrics import group_weighted_accuracy, make_group_scorer
    >>> X = [[0.0], [1.0], [2.0], [3.0]]
    >>> y = [0, 0, 1, 1]
    >>> groups = ["a", "b", "a", "b"]
    >>> clf = LogisticRegression().fit(X, y)
    >>> scorer = make_group_scorer(
    ...     group_weighted_accuracy, reference_groups={"a": 3, "b": 1}
    ... )
    >>> with sklearn.config_context(enable_metadata_routing=True):
    ...     print(scorer(clf, X, y, groups=groups))
    1.0
    """
    scorer = make_scorer(
        _GroupMetric(score_func), greater_is_better=greater_is_better, **kwargs
    )
    # set_score_request raises unless routing is on; requesting inside a local
    # context lets the scorer be built at import time or before set_config.
    with sklearn.config_context(enable_metadata_routing=True):
        scorer.set_score_request(groups=True)
    return scorer


def make_worst_group_scorer():
    """Worst-group accuracy scorer for GridSearchCV, cross_validate and friends.

    Returns
    -------
    scorer : callable
        A new scorer computing :func:`worst_group_accuracy` on the estimator's
        predictions, with ``groups`` requested by metadata routing. Needs
        ``sklearn.set_config(enable_metadata_routing=True)`` (or
        ``sklearn.config_context(enable_metadata_routing=True)``) when used, and
        the group labels passed to ``fit`` / ``params``; otherwise scoring raises
        a ValueError saying what to do.

    See Also
    --------
    worst_group_scorer : A ready-made instance.
    make_group_scorer : Scorers for any group metric.

    Examples
    --------
    >>> import numpy as np
    >>> import sklearn
    >>> from sklearn.linear_model import LogisticRegression
    >>> from sklearn.model_selection import cross_val_score
    >>> from skhsfm.metrics import make_worst_group_scorer
    >>> X = np.arange(12.0).reshape(-1, 1)
    >>> y = np.repeat([0, 1], 6)
    >>> groups = np.tile(["a", "b"], 6)
    >>> with sklearn.config_context(enable_metadata_routing=True):
    ...     scores = cross_val_score(
    ...         LogisticRegression(), X, y, cv=2,
    ...         scoring=make_worst_group_scorer(), params={"groups": groups},
    ...     )
    >>> scores.shape
    (2,)
    """
    return make_group_scorer(worst_group_accuracy)


#: Ready-made worst-group accuracy scorer (see :func:`make_worst_group_scorer`).
worst_group_scorer = make_worst_group_scorer()
