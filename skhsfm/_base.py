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
estimators. A fitted head's saved state also carries a digest of its contents
(``_skhsfm_digest``, BLAKE2b over every attribute), checked when it is loaded:
a damaged file (flipped or edited bytes that still unpickle) raises
:class:`pickle.UnpicklingError` instead of predicting differently.

Three hooks keep every head's fit safe in the same way:

- ``_check_params()``: combinations of parameters and grid-valued parameters
  checked by ``fit`` before any work (after ``_parameter_constraints``).
- ``_feature_scale(X)``: the one scale convention (``rescale``): the solvers
  work on ``rms_scale(X) * X`` and fold the scalar back into ``coef_``.
- :func:`draw_fit_rows`: the ``max_samples`` draw of the rows a logistic
  regression is fit on, which must hold every class.

Parameter and ``fit`` documentation shared by several heads is written once in
:data:`PARAMETER_DOCS` and filled into docstrings by :func:`fill_doc`.
"""

import pickle
import warnings
from numbers import Integral, Real

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils import check_random_state

from skhsfm._linear import LinearHeadMixin, initial_head
from skhsfm._logistic import rms_scale
from skhsfm._pools import fit_pools
from skhsfm._sklearn_compat import Interval, StrOptions, fit_context
from skhsfm._utils.doc_link import DOC_LINK_MODULE, DOC_LINK_TEMPLATE
from skhsfm._utils.docstrings import PARAMETER_DOCS, fill_doc
from skhsfm._utils.hashing import state_digest
from skhsfm._utils.lazy import default_sample_size, sample_rows
from skhsfm._validation import check_float_array
from skhsfm._version import __version__

__all__ = [
    "BaseHead",
    "InconsistentVersionWarning",
    "HeldOutHead",
    "RenamedKeys",
    "InitializedHead",
    "MAX_SAMPLES_CONSTRAINT",
    "PARAMETER_DOCS",
    "draw_fit_rows",
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

#: Name of the digest of a fitted head's saved state (a hex ``str``). Only in
#: the saved state: ``__getstate__`` writes it, ``__setstate__`` checks and
#: drops it.
DIGEST_KEY = "_skhsfm_digest"

#: ``max_samples`` of every head that has it: a logistic regression needs a row
#: of each class, and a classifier has at least two.
MAX_SAMPLES_CONSTRAINT = [
    Interval(Integral, 2, None, closed="left"),
    StrOptions({"auto"}),
    None,
]


def _digest(state):
    """The digest of a state, the version stamp left out (it has its own check,
    and a warning rather than an error when it differs)."""
    return state_digest(state, skip=(VERSION_KEY, DIGEST_KEY))


def _damaged(estimator_name):
    return pickle.UnpicklingError(
        f"The saved {estimator_name} is damaged: its contents do not match the "
        "digest recorded when it was saved (bytes changed after it was written: "
        "a bad disk or transfer, a truncated or edited copy). Its predictions "
        "would differ from the saved head's. Load an intact copy of the file, "
        "or refit."
    )


def draw_fit_rows(estimator, X, y, classes, rng):
    """Positions of the rows a head's logistic regression is fit on
    (``estimator.max_samples``); None for all of them, drawing nothing.

    ``X`` is the pool (array or lazy), ``y`` its encoded labels and
    ``classes`` the class labels. A draw that misses a class is refused,
    naming ``max_samples``: the regression needs every class (scikit-learn's
    own error does not say which parameter to change, and HSFM's blocked
    regression would silently never predict that class).
    """
    max_samples = estimator.max_samples
    if max_samples == "auto":
        max_samples = default_sample_size(X)
    rows = sample_rows(X.shape[0], max_samples, rng)
    if rows is None:
        return None
    missing = np.setdiff1d(np.arange(classes.shape[0]), y[rows])
    if missing.size:
        raise ValueError(
            f"max_samples={estimator.max_samples!r} drew {rows.shape[0]} of the "
            f"{X.shape[0]} rows, with no row of class(es) "
            f"{classes[missing].tolist()}: the logistic regression needs every "
            f"class. Raise max_samples (at least {classes.shape[0]}; more for rare "
            "classes) or pass max_samples=None to use every row."
        )
    return rows


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
    is checked when it is loaded, with a digest of the state.

    Before ``_fit``, ``fit`` calls ``_check_params()``: the place where a head
    checks what ``_parameter_constraints`` cannot express (combinations of
    parameters, the entries of grid-valued parameters), naming the parameters
    and the fix. Heads with a ``rescale`` parameter get their scale from
    ``_feature_scale(X)``.
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
        self._check_params()
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

    def _check_params(self):
        """Check what ``_parameter_constraints`` cannot: combinations of
        parameters and the entries of grid-valued ones. Called by ``fit``
        before any work; subclasses extend it (calling ``super()``) and raise
        errors that name the parameters and the fix."""

    #: Whether the solvers convert ``X`` to float32 before rescaling it (HSFM's
    #: torch loop): ``X`` must then have a float32-sized scale.
    _float32_X = False

    def _feature_scale(self, X, name="X"):
        """The scalar the head's solvers multiply ``X`` by: ``rms_scale(X)``
        with ``rescale=True`` (every head's one scale convention, folded back
        into ``coef_``), 1.0 with ``rescale=False``. All-zero ``X`` is refused
        (naming ``name``), and so is an ``X`` that float32 cannot hold when
        the head's solver converts to float32 first."""
        if not self.rescale:
            return 1.0
        scale = rms_scale(X, name=name)
        if self._float32_X and not 1e-30 <= 1.0 / scale <= 1e30:
            raise ValueError(
                f"{type(self).__name__} trains in float32, and the root-mean-square "
                f"entry of {name} is {1.0 / scale:.3g}, beyond what float32 holds "
                "well (1e-30 to 1e30). Multiply X (and X_val) by one constant "
                "first: the predictions do not depend on it."
            )
        return scale

    def __getstate__(self):
        # Copy: on Python >= 3.11 object.__getstate__ returns the live __dict__.
        state = dict(super().__getstate__())
        if _is_fitted_state(state):
            if VERSION_KEY not in state:
                # fitted by a subclass whose fit skipped BaseHead.fit, or
                # restored from an unstamped file (which warned when loaded)
                state[VERSION_KEY] = __version__
            state[DIGEST_KEY] = _digest(state)
        return state

    def __setstate__(self, state):
        state = dict(state)
        digest = state.pop(DIGEST_KEY, None)
        fitted = _is_fitted_state(state)
        if fitted and digest is not None and digest != _digest(state):
            raise _damaged(type(self).__name__)
        version = state.get(VERSION_KEY)
        if fitted and digest is None and version == __version__:
            # every head this version saves carries a digest
            warnings.warn(
                f"The saved {type(self).__name__} has no digest of its contents, "
                "so it cannot be checked for damage (every head saved by this "
                "skhsfm version has one: the file was edited or damaged). Check "
                "its predictions, or refit.",
                UserWarning,
                stacklevel=2,
            )
        if fitted and version != __version__:
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
        "max_samples": MAX_SAMPLES_CONSTRAINT,
        "rescale": ["boolean"],
        "device": [str],
        "verbose": ["verbose"],
    }

    def _check_params(self):
        super()._check_params()
        if self.init_coef is None and self.init_intercept is not None:
            raise ValueError(
                "init_intercept was given without init_coef; it would be ignored "
                "(the initial head is then a logistic regression with its own "
                "intercept). Pass init_coef as well, or leave init_intercept=None."
            )
        if self.init_coef is not None:
            check_float_array(self.init_coef, "init_coef")
        if self.init_intercept is not None:
            check_float_array(self.init_intercept, "init_intercept")

    def _initial_rows(self, pools, rng):
        """Positions in the support pool of the rows the initial head is fit
        on (``max_samples``); None for all of them, drawing nothing. Without
        ``init_coef`` (a regression is fit) the draw must hold every class."""
        if self.init_coef is None:
            return draw_fit_rows(self, pools.X, pools.y, self.classes_, rng)
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
            warnings.warn(
                f"history_[{key!r}] was renamed history_[{new!r}] in 0.2 and will "
                f"be removed in {version}; use history_[{new!r}].",
                FutureWarning,
                stacklevel=2,
            )
            return self[new]
        raise KeyError(key)
