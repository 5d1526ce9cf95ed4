"""What every head estimator of the package shares.

- :class:`BaseHead`: numpy prediction (:class:`~skhsfm._linear.LinearHeadMixin`),
  ``groups`` requested by default under metadata routing, the uniform
  ``fit(X, y, groups=None, *, X_val=None, y_val=None, groups_val=None)`` and the
  ``non_deterministic`` tag.
- :class:`HeldOutHead`: heads fit on a support pool and a hard pool
  (``validation_fraction``, ``random_state``; DFR, AFR, HSFM).
- :class:`InitializedHead`: held-out heads that start from an initial ERM head
  and train with torch (``init_coef``, ``init_intercept``, ``erm_C``,
  ``device``, ``verbose``; AFR, HSFM).

Every head records the skhsfm version it was fitted with; unpickling (pickle,
joblib, ``skops.io.load``) a head fitted by another version warns with
:class:`InconsistentVersionWarning`, as scikit-learn does for its own
estimators.

Parameter and ``fit`` documentation shared by several heads is written once in
:data:`PARAMETER_DOCS` and filled into docstrings by :func:`fill_doc`.
"""

import warnings
from numbers import Integral, Real

from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils import check_random_state

from skhsfm._linear import LinearHeadMixin, initial_head
from skhsfm._pools import fit_pools
from skhsfm._sklearn_compat import Interval, StrOptions, fit_context
from skhsfm._utils.deprecation import warn_deprecated
from skhsfm._utils.doc_link import DOC_LINK_MODULE, DOC_LINK_TEMPLATE
from skhsfm._utils.docstrings import PARAMETER_DOCS, fill_doc
from skhsfm._utils.lazy import default_sample_size, sample_rows
from skhsfm._version import __version__

__all__ = [
    "BaseHead",
    "InconsistentVersionWarning",
    "HeldOutHead",
    "RenamedKeys",
    "InitializedHead",
    "PARAMETER_DOCS",
    "fill_doc",
]


class InconsistentVersionWarning(UserWarning):
    """A fitted head was loaded by another skhsfm version than it was fitted with.

    Raised as a warning when a head is unpickled (``pickle``, ``joblib``,
    ``skops.io.load``), the counterpart of scikit-learn's
    :class:`~sklearn.exceptions.InconsistentVersionWarning` for skhsfm's own
    estimators. The fitted state of one version may mean something else to
    another (a renamed attribute, a changed convention); refit with the
    installed version, or load with the version the head was fitted with.

    Parameters
    ----------
    estimator_name : str
        Class name of the loaded estimator.
    current_version : str
        The installed skhsfm version.
    original_version : str or None
        The version the estimator was fitted with; None when the file predates
        the version stamp.

    Examples
    --------
    >>> import pickle, warnings
    >>> import numpy as np
    >>> from skhsfm import ERMHeadClassifier, InconsistentVersionWarning
    >>> head = ERMHeadClassifier().fit(np.eye(4), [0, 0, 1, 1])
    >>> state = head.__getstate__()
    >>> state["_skhsfm_version"] = "0.0.1"  # as if fitted by an old release
    >>> with warnings.catch_warnings(record=True) as caught:
    ...     warnings.simplefilter("always")
    ...     ERMHeadClassifier().__setstate__(state)
    >>> caught[0].message.original_version
    '0.0.1'
    """

    def __init__(self, *, estimator_name, current_version, original_version):
        self.estimator_name = estimator_name
        self.current_version = current_version
        self.original_version = original_version

    def __str__(self):
        fitted_with = (
            "an unknown skhsfm version (saved before skhsfm recorded versions)"
            if self.original_version is None
            else f"skhsfm version {self.original_version}"
        )
        return (
            f"Loading {self.estimator_name} fitted with {fitted_with} while skhsfm "
            f"{self.current_version} is installed. This might lead to breaking code "
            "or invalid results. Refit it with this version, or load it with the "
            "version it was fitted with."
        )


#: Name of the version stamp in a fitted head's state (a plain ``str``).
VERSION_KEY = "_skhsfm_version"


def _is_fitted_state(state):
    """Whether a ``__dict__``-like state holds fitted attributes (as
    :func:`~sklearn.utils.validation.check_is_fitted` decides)."""
    return any(k.endswith("_") and not k.startswith("__") for k in state)


class BaseHead(LinearHeadMixin, ClassifierMixin, BaseEstimator):
    """Base class of the package's linear heads.

    Subclasses implement ``_fit(X, y, groups, X_val, y_val, groups_val)``,
    which sets the fitted attributes (``coef_``, ``intercept_``, ``classes_``
    and ``n_features_in_`` at least) by assigning them, never by changing the
    previous fit's values in place. When ``_fit`` raises (or is interrupted),
    ``fit`` restores every attribute, so a failed fit leaves the head exactly
    as it was. After a successful ``_fit``, ``fit`` stamps the skhsfm version
    (``_skhsfm_version``, a ``str``), which travels with the pickled state and
    is checked when it is loaded.
    """

    # a fixed validation set travels with the training data by default, as
    # groups do (a Pipeline transforms it with transform_input=["X_val"])
    __metadata_request__fit = {
        "groups": True,
        "X_val": True,
        "y_val": True,
        "groups_val": True,
    }

    # the "?" of the HTML repr links to the class's page on the docs site
    _doc_link_module = DOC_LINK_MODULE
    _doc_link_template = DOC_LINK_TEMPLATE

    _parameter_constraints: dict = {}

    @fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y, groups=None, *, X_val=None, y_val=None, groups_val=None):
        """Fit the head.

        Parameters
        ----------
        {fit_parameters}

        Returns
        -------
        self : object
            The fitted estimator.
        """
        previous = dict(vars(self))
        try:
            self._fit(X, y, groups, X_val, y_val, groups_val)
            setattr(self, VERSION_KEY, __version__)
        except BaseException:
            # A failed or interrupted fit (bad input, Ctrl-C, an error in a
            # callback) must not leave this call's classes_ / n_features_in_
            # next to the previous fit's coef_: put every attribute back, so the
            # head is exactly as before (unfitted before a first fit). _fit only
            # rebinds attributes, so the shallow copy holds the old values.
            vars(self).clear()
            vars(self).update(previous)
            raise
        return self

    def _fit(self, X, y, groups, X_val, y_val, groups_val):  # pragma: no cover
        raise NotImplementedError

    def __getstate__(self):
        # Copy: on Python >= 3.11 object.__getstate__ returns the live __dict__.
        state = dict(super().__getstate__())
        if _is_fitted_state(state) and VERSION_KEY not in state:
            # fitted by a subclass whose fit skipped BaseHead.fit, or restored
            # from an unstamped file (which warned when it was loaded)
            state[VERSION_KEY] = __version__
        return state

    def __setstate__(self, state):
        version = state.get(VERSION_KEY)
        if _is_fitted_state(state) and version != __version__:
            warnings.warn(
                InconsistentVersionWarning(
                    estimator_name=type(self).__name__,
                    current_version=__version__,
                    original_version=version,
                ),
                stacklevel=2,
            )
        super().__setstate__(state)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        if "random_state" in self._parameter_constraints:
            tags.non_deterministic = self.random_state is None
        return tags


fill_doc(BaseHead.fit)


class HeldOutHead(BaseHead):
    """A head fit on a support pool and a hard pool (held-out data)."""

    _parameter_constraints: dict = {
        **BaseHead._parameter_constraints,
        "validation_fraction": [Interval(Real, 0, 1, closed="neither")],
        "random_state": ["random_state"],
    }

    def _pools(self, X, y, groups, X_val, y_val, groups_val):
        """Validate ``fit``'s arguments, set ``classes_`` and return
        ``(pools, rng)``."""
        rng = check_random_state(self.random_state)
        pools, self.classes_ = fit_pools(
            self, X, y, groups, X_val, y_val, groups_val, rng
        )
        return pools, rng


class InitializedHead(HeldOutHead):
    """A held-out head that starts from an initial ERM head and trains with torch."""

    _parameter_constraints: dict = {
        **HeldOutHead._parameter_constraints,
        "init_coef": ["array-like", None],
        "init_intercept": ["array-like", None],
        "erm_C": [Interval(Real, 0, None, closed="neither")],
        "max_samples": [
            Interval(Integral, 1, None, closed="left"),
            StrOptions({"auto"}),
            None,
        ],
        "device": [str],
        "verbose": ["verbose"],
    }

    def _initial_rows(self, pools, rng):
        """Positions in the support pool of the rows the initial head is fit
        on (``max_samples``); None for all of them, drawing nothing."""
        max_samples = self.max_samples
        if max_samples == "auto":
            max_samples = default_sample_size(pools.X)
        return sample_rows(pools.X.shape[0], max_samples, rng)

    def _initial_head(self, X, y, feature_scale=1.0, sample_weight=None):
        """The initial head as one row per class, acting on ``feature_scale * X``
        (``X, y``: the rows it is fit on, in memory; ``sample_weight``: their
        weights, mean 1)."""
        return initial_head(
            self.init_coef,
            self.init_intercept,
            X,
            y,
            self.classes_.shape[0],
            C=self.erm_C,
            feature_scale=feature_scale,
            sample_weight=sample_weight,
        )


class RenamedKeys(dict):
    """A read-only view of a fitted ``history_`` dict whose renamed keys still
    answer, with a ``FutureWarning``, for one more release.

    Fitted state stays a plain dict of numpy arrays (``_history``); a head that
    renamed a key exposes ``history_`` as a property returning this view.
    """

    def __init__(self, data, renamed):
        super().__init__(data)
        self._renamed = renamed

    def __missing__(self, key):
        if key in self._renamed:
            new, version = self._renamed[key]
            warn_deprecated(
                f"history_[{key!r}]",
                f"it was renamed history_[{new!r}]: use history_[{new!r}]",
                removed_in=version,
            )
            return self[new]
        raise KeyError(key)
