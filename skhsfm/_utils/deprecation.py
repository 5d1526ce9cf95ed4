"""One wording for every deprecation: "deprecated in 0.2, removed in 0.3".

Each deprecated name of the package warns through :func:`warn_deprecated` (or
builds its text with :func:`deprecation_message`), so that the warnings, the
docstrings' ``.. deprecated::`` notes and the changelog
(``docs/changelog.rst``) name the same two releases. A test reads these
constants and checks every "deprecated in" / "removed in" of the sources and
docs against them.
"""

import warnings

__all__ = ["DEPRECATED_IN", "REMOVED_IN", "deprecation_message", "warn_deprecated"]

#: The release that deprecated the names that still warn.
DEPRECATED_IN = "0.2"
#: The release that removes them.
REMOVED_IN = "0.3"


def deprecation_message(old, fix, *, removed_in=REMOVED_IN):
    """``"{old} is deprecated in 0.2 and will be removed in 0.3; {fix}"``.

    Parameters
    ----------
    old : str
        The deprecated spelling, as a user wrote it (``"skhsfm.inspect"``,
        ``"train_dominoes_backbone(lr=...)"``).
    fix : str
        What to write instead, a full sentence without the final period.
    removed_in : str, default=REMOVED_IN
        The release that removes ``old``.

    Examples
    --------
    >>> deprecation_message("f(x=...)", "use f(y=...)")
    'f(x=...) is deprecated in 0.2 and will be removed in 0.3; use f(y=...).'
    """
    return (
        f"{old} is deprecated in {DEPRECATED_IN} and will be removed in "
        f"{removed_in}; {fix}."
    )


def warn_deprecated(old, fix, *, stacklevel=2, removed_in=REMOVED_IN):
    """Warn with a ``FutureWarning`` (shown to users by default, as
    scikit-learn does) that ``old`` goes in ``removed_in``.

    ``stacklevel`` counts from the caller of this function, as for
    :func:`warnings.warn`.
    """
    warnings.warn(
        deprecation_message(old, fix, removed_in=removed_in),
        FutureWarning,
        stacklevel=stacklevel + 1,
    )
