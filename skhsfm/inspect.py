"""Deprecated alias of :mod:`skhsfm.inspection` (renamed in 0.2, removed in 0.3).

Importing it re-exports the public names of :mod:`skhsfm.inspection` and warns.
"""

import warnings

# a star import keeps this alias in step with skhsfm.inspection's public names
from skhsfm.inspection import *  # noqa: F403
from skhsfm.inspection import __all__  # noqa: F401

warnings.warn(
    "skhsfm.inspect was renamed skhsfm.inspection in 0.2 and will be removed in "
    "0.3; import from skhsfm.inspection instead.",
    FutureWarning,
    stacklevel=2,
)
