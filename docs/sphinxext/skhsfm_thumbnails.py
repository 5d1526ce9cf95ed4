"""Gallery thumbnails of the examples the docs build does not run.

Examples that the build executes get their thumbnail from the first figure they
draw. The others (``NOT_EXECUTED`` in ``conf.py``: they train the dominoes
CNN, start a cluster or look for weights, and take minutes) and the examples
that draw no figure name a thumbnail with ``# sphinx_gallery_thumbnail_path =
"_thumbnails/<name>.png"``; :func:`write_thumbnails` draws them when the build
starts, in a second or two, from cheap stand-ins of what the example shows:

- pictures of the example's own data (the dominoes images, the drawn shapes of
  ``embed_images.py``);
- for ``plot_inspect_edits.py``, the same analysis on synthetic embeddings (an
  HSFM fit of 20 epochs);
- for the examples about moving work around (a cluster, a file), a diagram of
  that flow.
"""

import importlib.util
import tempfile
from pathlib import Path

__all__ = ["THUMBNAILS", "write_thumbnails"]

_SIZE = (4.0, 3.0)  # inches, at 100 dpi: sphinx-gallery scales to 400 x 280

_FLOWS = {
    "compare_methods": (
        "Four heads, the same embeddings",
        ["embeddings", "ERM · DFR\nAFR · HSFM", "worst-group\naccuracy"],
    ),
    "dask_search": (
        "GridSearchCV on a Dask cluster",
        ["GridSearchCV", "scheduler", "2 workers"],
    ),
    "ray_embedding": (
        "Sharded embedding on Ray",
        ["images", "actor pool", "embeddings"],
    ),
    "deploy_head": (
        "A fitted head, three ways to ship it",
        ["fitted head", "skops · sklearn\nONNX", "predict"],
    ),
}


def _figure():
    from matplotlib.figure import Figure

    return Figure(figsize=_SIZE, dpi=100)


def _flow(title, steps):
    """Rounded boxes joined by arrows, left to right."""
    fig = _figure()
    ax = fig.add_axes((0, 0, 1, 1))
    ax.set_axis_off()
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.text(0.5, 0.86, title, ha="center", va="center", fontsize=12)
    xs = [0.18, 0.5, 0.82]
    box = dict(boxstyle="round,pad=0.5", facecolor="#dbe9f6", edgecolor="#2a6099")
    labels = [
        ax.text(x, 0.45, text, ha="center", va="center", fontsize=9, bbox=box)
        for x, text in zip(xs, steps)
    ]
    for left, right in zip(labels, labels[1:]):
        # from box edge to box edge, whatever the text widths
        ax.annotate(
            "",
            xy=(0, 0.5),
            xycoords=right.get_bbox_patch(),
            xytext=(1, 0.5),
            textcoords=left.get_bbox_patch(),
            arrowprops=dict(
                arrowstyle="->", color="#2a6099", lw=1.5, shrinkA=4, shrinkB=4
            ),
        )
    return fig


def _image_grid(images, title):
    fig = _figure()
    fig.suptitle(title, fontsize=11)
    n_cols = 4
    for i, image in enumerate(images[: 2 * n_cols]):
        ax = fig.add_subplot(2, n_cols, i + 1)
        ax.imshow(image, interpolation="nearest")
        ax.set_axis_off()
    return fig


def _dominoes():
    import numpy as np

    from skhsfm.datasets import make_dominoes

    data = make_dominoes(32, 16, 16, random_state=0).val  # balanced groups
    order = np.argsort(data.group, kind="stable")
    first = [order[np.searchsorted(data.group[order], g)] for g in range(4)]
    second = [order[np.searchsorted(data.group[order], g) + 1] for g in range(4)]
    return _image_grid(data.images[first + second], "Dominoes: photo over digit")


def _drawn_shapes(examples):
    import numpy as np
    from PIL import Image

    spec = importlib.util.spec_from_file_location(
        "embed_images_example", examples / "embed_images.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # defines draw_images; main() is guarded
    with tempfile.TemporaryDirectory() as folder:
        paths, _, _ = module.draw_images(folder, 8, 0.5, np.random.RandomState(1))
        images = [np.asarray(Image.open(path)) for path in paths]
    return _image_grid(images, "Shapes on backgrounds, embedded")


def _edit_projection():
    from skhsfm import HSFMClassifier
    from skhsfm.datasets import make_spurious_embeddings
    from skhsfm.inspection import edit_projection

    X, y, a, g = make_spurious_embeddings(
        600, 16, spurious_correlation=0.95, split="train", random_state=0
    )
    X_val, y_val, a_val, g_val = make_spurious_embeddings(
        200, 16, split="val", random_state=0
    )
    clf = HSFMClassifier(n_epochs=20, device="cpu", random_state=0)
    clf.fit(X, y, g, X_val=X_val, y_val=y_val, groups_val=g_val)
    projection = edit_projection(
        clf, X_val, y=y_val, attribute=a_val, support_attribute=a[clf.support_indices_]
    )
    return projection.plot()


#: Thumbnail name -> what draws it (``examples`` is the examples folder).
THUMBNAILS = {
    "dominoes_benchmark_data": lambda examples: _dominoes(),
    "embed_images": _drawn_shapes,
    "plot_inspect_edits": lambda examples: _edit_projection(),
    **{name: (lambda examples, f=flow: _flow(*f)) for name, flow in _FLOWS.items()},
}


def write_thumbnails(folder, examples):
    """Draw every :data:`THUMBNAILS` entry into ``folder/<name>.png``."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for name, draw in THUMBNAILS.items():
        figure = draw(Path(examples))
        figure.savefig(folder / f"{name}.png", dpi=100)
    return sorted(THUMBNAILS)
