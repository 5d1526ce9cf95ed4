"""Deprecated alias of :mod:`skhsfm.inspection` (deprecated in 0.2, removed in 0.3).

Importing it re-exports the public names of :mod:`skhsfm.inspection` and warns.
"""

from skhsfm._utils.deprecation import warn_deprecated

# a star import keeps this alias in step with skhsfm.inspection's public names
from skhsfm.inspection import *  # noqa: F403
from skhsfm.inspection import __all__  # noqa: F401

warn_deprecated(
    "skhsfm.inspect",
    "it was renamed skhsfm.inspection: import from skhsfm.inspection instead",
    stacklevel=2,
)
