"""Helpers shared by the synthetic and dominoes generators."""

import numpy as np

__all__ = ["balanced_counts"]


def balanced_counts(n, k, rng):
    """``n`` split into ``k`` near-equal integer counts; the remainder goes to
    ``n % k`` bins chosen at random by ``rng``."""
    counts = np.full(k, n // k)
    counts[rng.permutation(k)[: n % k]] += 1
    return counts
