"""Paired comparison of two methods scored on the same seeds (or folds)."""

from dataclasses import dataclass

import numpy as np
from scipy import stats

from skhsfm._utils.text import plain
from skhsfm._validation import check_labels

__all__ = ["PairedDifference", "paired_difference"]


@dataclass(frozen=True)
class PairedDifference:
    """Mean paired difference ``scores - reference_scores`` and its interval.

    Attributes
    ----------
    mean : float
        Mean of the per-seed differences.
    low, high : float
        The ends of the confidence interval (NaN with fewer than two pairs).
    std : float
        Sample standard deviation of the differences (NaN for one pair).
    n_pairs : int
        Number of pairs.
    confidence : float
        Confidence level of the interval.
    method : str
        ``"t"`` (Student's t over the differences) or ``"bootstrap"``
        (percentile bootstrap over the pairs).
    differences : ndarray of shape (n_pairs,)
        The per-seed differences.
    """

    mean: float
    low: float
    high: float
    std: float
    n_pairs: int
    confidence: float
    method: str
    differences: np.ndarray

    @property
    def significant(self):
        """Whether the interval excludes 0 (False when it is undefined)."""
        return bool(self.low > 0 or self.high < 0)

    def __repr__(self):
        level = f"{100 * self.confidence:g}%"
        return (
            f"PairedDifference(mean={self.mean:+.4f}, {level} interval "
            f"[{self.low:+.4f}, {self.high:+.4f}], n_pairs={self.n_pairs}, "
            f"method={self.method!r})"
        )


def paired_difference(
    scores,
    reference_scores,
    *,
    confidence=0.95,
    method="t",
    n_resamples=10_000,
    random_state=0,
):
    """Mean difference of two methods' scores on the same seeds, with an interval.

    Seed-to-seed variation (data draws, initialisations) is usually larger than
    the difference between two methods, so comparing their means ± standard
    deviations decides little. Pairing the scores of the same seed removes the
    variation the two methods share.

    Parameters
    ----------
    scores : array-like of shape (n_pairs,)
        The scores of the method of interest, one per seed (or fold).
    reference_scores : array-like of shape (n_pairs,)
        The reference method's scores on the same seeds, in the same order.
    confidence : float in (0, 1), default=0.95
        Confidence level of the interval.
    method : {"t", "bootstrap"}, default="t"
        ``"t"``: mean ± Student's t quantile × standard error of the
        differences (assumes roughly normal differences). ``"bootstrap"``:
        percentile interval of the mean over ``n_resamples`` resamples of the
        pairs.
    n_resamples : int, default=10000
        Bootstrap resamples (``method="bootstrap"`` only).
    random_state : int, default=0
        Seed of the bootstrap resamples.

    Returns
    -------
    PairedDifference

    Examples
    --------
    >>> from skhsfm.metrics import paired_difference
    >>> result = paired_difference([0.93, 0.95, 0.94, 0.96], [0.92, 0.93, 0.93, 0.94])
    >>> round(result.mean, 4), result.significant
    (0.015, True)
    """
    a = np.asarray(check_labels(scores, "scores", what="score"), dtype=np.float64)
    b = np.asarray(
        check_labels(reference_scores, "reference_scores", what="score"),
        dtype=np.float64,
    )
    if a.shape[0] != b.shape[0]:
        raise ValueError(
            f"scores has {a.shape[0]} entries but reference_scores has "
            f"{b.shape[0]}; pass one score per seed for both methods, in the same "
            "seed order."
        )
    if a.shape[0] == 0:
        raise ValueError("scores is empty; pass at least one pair of scores.")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1); got {plain(confidence)}.")
    if method not in ("t", "bootstrap"):
        raise ValueError(f"method must be 't' or 'bootstrap'; got {plain(method)}.")
    diff = a - b
    n = diff.shape[0]
    mean = float(diff.mean())
    if n < 2:
        low = high = std = float("nan")
    else:
        std = float(diff.std(ddof=1))
        if method == "t":
            half = stats.t.ppf(0.5 + confidence / 2, n - 1) * std / np.sqrt(n)
            low, high = mean - half, mean + half
        else:
            rng = np.random.default_rng(random_state)
            means = diff[rng.integers(0, n, size=(n_resamples, n))].mean(axis=1)
            tail = 100 * (1 - confidence) / 2
            low, high = np.percentile(means, [tail, 100 - tail])
    return PairedDifference(
        mean, float(low), float(high), std, n, float(confidence), method, diff
    )
