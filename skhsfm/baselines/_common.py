"""Small helpers shared by the baseline heads: (group, class) cells and
group-balanced subsampling."""

import numpy as np


def cell_labels(y, groups):
    """One integer per (group, class) cell, or per class when ``groups`` is None.

    For groups that are already class x attribute cells this is just the group;
    pairing with the class keeps the cells pure when a user passes the attribute
    alone as ``groups``.
    """
    if groups is None:
        return np.unique(y, return_inverse=True)[1]
    group_codes = np.unique(groups, return_inverse=True)[1]
    return np.unique(group_codes * (int(y.max()) + 1) + y, return_inverse=True)[1]


def balanced_subsample(cells, random_state):
    """Draw, without replacement, the size of the smallest cell from every cell.

    Parameters
    ----------
    cells : ndarray of int of shape (n,)
        Cell label of each sample (``cell_labels``).
    random_state : numpy RandomState

    Returns
    -------
    indices : ndarray of int
        Sorted indices into ``cells``; ``n_cells * size`` of them.
    size : int
        Samples drawn per cell (the smallest cell's size).
    """
    counts = np.bincount(cells)
    counts = counts[counts > 0]
    size = int(counts.min())
    picked = [
        random_state.permutation(np.flatnonzero(cells == c))[:size]
        for c in np.unique(cells)
    ]
    return np.sort(np.concatenate(picked)), size
