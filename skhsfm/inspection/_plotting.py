"""matplotlib helpers shared by the inspection figures.

matplotlib is imported inside the functions that need it. Figures are plain
:class:`matplotlib.figure.Figure` objects (no pyplot), so building or saving one
never selects or changes a backend; show one in a notebook by leaving it as the
cell's value, or save it with ``path=`` / ``fig.savefig``.
"""

import numpy as np

MATPLOTLIB_MISSING = (
    "{} needs matplotlib; install it with `pip install matplotlib` (or "
    "`pip install skhsfm[plot]`)."
)
MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")


def new_figure(where, **kwargs):
    """A constrained-layout :class:`~matplotlib.figure.Figure`, without pyplot."""
    try:
        from matplotlib.figure import Figure
    except ImportError as exc:  # pragma: no cover - matplotlib is installed in CI
        raise ImportError(MATPLOTLIB_MISSING.format(where)) from exc
    return Figure(layout="constrained", **kwargs)


def finish(fig, path):
    """Save ``fig`` to ``path`` when given; return it."""
    if path is not None:
        fig.savefig(path, dpi=120)
    return fig


def namer(names, what):
    """label -> display string, from a dict, a sequence indexed by label, or None."""
    if names is None:
        return lambda label: f"{what}={label}"
    if isinstance(names, dict):
        return lambda label: str(names.get(label, f"{what}={label}"))
    names = list(names)

    def name(label):
        try:
            return str(names[int(label)])
        except (IndexError, TypeError, ValueError):
            return f"{what}={label}"

    return name


def palette(n):
    """``n`` distinct colors of the tab10 map (repeating after ten)."""
    import matplotlib

    cmap = matplotlib.colormaps["tab10"]
    return [cmap(i % 10) for i in range(n)]


def as_images(images, name):
    """An indexable sequence of images, errors naming the argument."""
    from skhsfm.embedding._images import as_image_sequence

    try:
        return as_image_sequence(images)
    except (TypeError, ValueError) as exc:
        raise type(exc)(f"{name}: {exc}") from exc


def pixels(images, i):
    """Image ``i`` as an RGB pixel array for ``imshow``."""
    from skhsfm.embedding._images import to_pil_rgb

    return np.asarray(to_pil_rgb(images[i]))
