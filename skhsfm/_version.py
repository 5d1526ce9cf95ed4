"""The package version, in a module of its own.

Any module of the package can read it (the version stamp of fitted heads in
:mod:`skhsfm._base`) without importing :mod:`skhsfm` itself, which would be an
import cycle. ``setup.cfg`` reads it from here too.
"""

#: The installed skhsfm version, a PEP 440 string; fitted heads record it.
__version__ = "0.2.0"
