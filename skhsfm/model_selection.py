"""Cross-validation splitters that keep every group in every fold.

A *group* here is a (class, spurious attribute) cell, as everywhere in skhsfm.
scikit-learn's :class:`~sklearn.model_selection.GroupKFold` uses the word for
something else: clusters of samples that must never be split across train and
test (e.g. all images of one patient). The splitter below does the opposite: it
spreads each group over all folds.
"""

import numbers
import warnings

import numpy as np
from sklearn.model_selection import BaseCrossValidator, StratifiedKFold

from skhsfm._utils.text import plain
from skhsfm._validation import check_groups

__all__ = ["GroupStratifiedKFold"]


class GroupStratifiedKFold(BaseCrossValidator):
    """K-fold splits stratified on group labels.

    Each test fold holds every group in about its overall proportion, so
    worst-group accuracy can be measured on every fold and minority groups are
    seen in every training split. It is :class:`~sklearn.model_selection.
    StratifiedKFold` applied to the group labels instead of the classes; when
    groups are (class, attribute) cells the classes are stratified too.

    Here a group is a (class, spurious attribute) cell. This is *not* the
    meaning of :class:`~sklearn.model_selection.GroupKFold`, whose groups are
    non-overlapping clusters kept out of each other's folds.

    Under metadata routing (``sklearn.set_config(enable_metadata_routing=True)``)
    ``split`` requests ``groups`` by default, so ``GridSearchCV(...,
    cv=GroupStratifiedKFold()).fit(X, y, groups=groups)`` and
    ``cross_validate(..., params={"groups": groups})`` pass them on. Without
    routing, scikit-learn passes ``groups`` to splitters directly.

    Parameters
    ----------
    n_splits : int, default=5
        Number of folds; at least 2.
    shuffle : bool, default=False
        Whether to shuffle each group's samples before splitting them into
        folds.
    random_state : int, RandomState instance or None, default=None
        Controls the shuffling when ``shuffle=True``; must stay None otherwise.

    See Also
    --------
    sklearn.model_selection.StratifiedKFold : The same on class labels.
    sklearn.model_selection.GroupKFold : Non-overlapping clusters (other
        meaning of "group").

    Notes
    -----
    A group with fewer than ``n_splits`` samples cannot appear in every test
    fold; ``split`` warns and names such groups.

    Examples
    --------
    >>> import numpy as np
    >>> from skhsfm.model_selection import GroupStratifiedKFold
    >>> groups = np.array(["maj"] * 8 + ["min"] * 2)
    >>> cv = GroupStratifiedKFold(n_splits=2)
    >>> for train, test in cv.split(np.zeros((10, 1)), groups=groups):
    ...     print(np.unique(groups[test]).tolist())
    ['maj', 'min']
    ['maj', 'min']
    """

    # Splitters' ``split`` is only routed ``groups`` when it requests them;
    # request by default, like scikit-learn's GroupKFold.
    __metadata_request__split = {"groups": True}

    def __init__(self, n_splits=5, *, shuffle=False, random_state=None):
        if isinstance(n_splits, bool) or not isinstance(n_splits, numbers.Integral):
            raise ValueError(
                f"n_splits must be an integer >= 2; got {plain(n_splits)} of type "
                f"{type(n_splits).__name__}."
            )
        if n_splits < 2:
            raise ValueError(
                f"n_splits must be >= 2 (one fold to train on, one to test); got "
                f"{n_splits}."
            )
        if not isinstance(shuffle, (bool, np.bool_)):
            raise ValueError(f"shuffle must be True or False; got {plain(shuffle)}.")
        if not shuffle and random_state is not None:
            raise ValueError(
                f"random_state={plain(random_state)} has no effect with shuffle=False; "
                "pass shuffle=True or leave random_state=None."
            )
        self.n_splits = int(n_splits)
        self.shuffle = shuffle
        self.random_state = random_state

    def get_n_splits(self, X=None, y=None, groups=None):
        """Number of splitting iterations.

        Parameters
        ----------
        X, y, groups : object
            Ignored; present for API compatibility.

        Returns
        -------
        n_splits : int
        """
        return self.n_splits

    def split(self, X, y=None, groups=None):
        """Generate train/test indices, every group spread over every fold.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Training data; only its length is used.
        y : array-like of shape (n_samples,), default=None
            Ignored: stratification uses ``groups``.
        groups : array-like of shape (n_samples,)
            Group label of each sample (a class x attribute cell). Required.

        Yields
        ------
        train : ndarray of int
            Training indices of the split.
        test : ndarray of int
            Test indices of the split.
        """
        if groups is None:
            raise ValueError(
                "GroupStratifiedKFold.split needs groups (one group label per "
                "sample) and got groups=None. Pass them as "
                "`search.fit(X, y, groups=groups)` or "
                "`cross_validate(..., params={'groups': groups})` with "
                "sklearn.set_config(enable_metadata_routing=True), or "
                "`cross_validate(..., groups=groups)` with routing off."
            )
        n_samples = X.shape[0] if hasattr(X, "shape") else len(X)
        groups = check_groups(groups, n_samples)
        if self.n_splits > n_samples:
            raise ValueError(
                f"n_splits={self.n_splits} is greater than the number of samples "
                f"({n_samples}); lower n_splits."
            )
        labels, encoded, counts = np.unique(
            groups, return_inverse=True, return_counts=True
        )
        if np.all(counts < self.n_splits):
            raise ValueError(
                f"n_splits={self.n_splits} is greater than the size of every group "
                f"(largest has {counts.max()} samples); lower n_splits."
            )
        small = labels[counts < self.n_splits]
        if small.size:
            warnings.warn(
                f"groups {small.tolist()} have fewer than n_splits={self.n_splits} "
                "samples, so some test folds will miss them and worst-group "
                "accuracy on those folds ignores them.",
                UserWarning,
            )
        stratified = StratifiedKFold(
            n_splits=self.n_splits,
            shuffle=self.shuffle,
            random_state=self.random_state,
        )
        # Materialised so the warning filter is not left active while the
        # generator is suspended; our warning above already names the groups.
        with warnings.catch_warnings():
            warnings.filterwarnings(
                "ignore", message="The least populated class", category=UserWarning
            )
            folds = list(stratified.split(np.zeros((n_samples, 1)), encoded))
        yield from folds
