"""Values as messages show them: plain numbers and names, never numpy reprs.

numpy >= 2 writes a scalar's ``repr`` as ``np.int64(0)``, and a list of numpy
scalars prints each element that way, so a message built with ``{label!r}`` or
``{list_of_labels}`` reads ``class np.int64(0)``. Messages put values through
:func:`plain` instead, which shows what the user passed: ``class 0``,
``class 'landbird'``, ``[0, 1]``.
"""

import numpy as np

__all__ = ["plain", "python_value"]


def python_value(value):
    """``value`` with every numpy scalar or array turned into Python values.

    Lists, tuples, sets and dicts are converted element by element; anything
    else is returned as it is.
    """
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, list):
        return [python_value(v) for v in value]
    if isinstance(value, tuple):
        return tuple(python_value(v) for v in value)
    if isinstance(value, (set, frozenset)):
        return {python_value(v) for v in value}
    if isinstance(value, dict):
        return {python_value(k): python_value(v) for k, v in value.items()}
    return value


def plain(value):
    """The text a message shows for ``value``: the ``repr`` of its Python value.

    Numbers read as numbers (``0``, ``0.5``), strings keep their quotes
    (``'landbird'``), so that a label ``'0'`` and a label ``0`` stay apart.

    Examples
    --------
    >>> import numpy as np
    >>> from skhsfm._utils.text import plain
    >>> f"class {plain(np.int64(0))}, labels {plain(np.array(['a', 'b']))}"
    "class 0, labels ['a', 'b']"
    """
    return repr(python_value(value))
