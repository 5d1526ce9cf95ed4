"""Sphinx configuration of the skhsfm documentation.

Build (offline, a few minutes on two cores)::

    python -m sphinx -W -b html docs docs/_build/html

The site has a user guide (``user_guide/``), an API reference generated from the
numpydoc docstrings (``api/index.rst``, one page per public name under
``api/generated/``) and a gallery built from ``examples/`` by sphinx-gallery
(``auto_examples/``). Nothing is downloaded: names of scikit-learn link to
its site through an inventory made from the installed scikit-learn
(``_intersphinx/sklearn.inv``, written at build time); links to the Python,
numpy, torch and matplotlib docs, and scikit-learn's own inventory, are added
with ``SKHSFM_DOCS_INTERSPHINX=1`` (the publishing build, which has network
access; scikit-learn falls back to the local inventory when its site cannot be
reached).
"""

import os
import sys
import warnings
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
# document this checkout, not whatever skhsfm is installed
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(HERE / "sphinxext"))

from skhsfm_docs import write_cli_help, write_sklearn_inventory  # noqa: E402
from skhsfm_thumbnails import write_thumbnails  # noqa: E402

import skhsfm  # noqa: E402
from skhsfm._utils.doc_link import PUBLISHED_URL  # noqa: E402

# -- Project -----------------------------------------------------------------

project = "skhsfm"
author = "skhsfm developers"
copyright = "skhsfm developers"
release = skhsfm.__version__
version = ".".join(release.split(".")[:2])

# -- General -----------------------------------------------------------------

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.viewcode",
    "numpydoc",
    "sphinx_gallery.gen_gallery",
    "sphinx.ext.intersphinx",
    "skhsfm_docs",
]
SKLEARN_INVENTORY = HERE / "_intersphinx" / "sklearn.inv"
write_sklearn_inventory(SKLEARN_INVENTORY)
intersphinx_mapping = {
    "sklearn": ("https://scikit-learn.org/stable", str(SKLEARN_INVENTORY)),
}
if os.environ.get("SKHSFM_DOCS_INTERSPHINX") == "1":
    intersphinx_mapping = {
        "python": ("https://docs.python.org/3", None),
        "numpy": ("https://numpy.org/doc/stable", None),
        # the site's own inventory, else the local one
        "sklearn": ("https://scikit-learn.org/stable", (None, str(SKLEARN_INVENTORY))),
        "torch": ("https://docs.pytorch.org/docs/stable", None),
        "matplotlib": ("https://matplotlib.org/stable", None),
    }

templates_path = ["_templates"]
exclude_patterns = [
    "_build",
    "**.ipynb_checkpoints",
    "auto_examples/*.py",
    # tables that pages include (written by benchmarks/bench_groups_optional.py
    # --rst), not pages of their own
    "user_guide/*_table.rst",
]
default_role = "py:obj"
root_doc = "index"
# Straight quotes as written: an estimator's HTML repr links each parameter to
# its line on the API page by the text of its type (``default="auto"``), which
# curly quotes would not match; code-like defaults also read better straight.
smartquotes = False
# "fit", not "HSFMClassifier.fit", in a page's table of contents: long class
# names cut the method names off in the narrow right-hand column
toc_object_entries_show_parents = "hide"

# API pages: one per public name, written at build time into api/generated/.
autosummary_generate = True
autodoc_typehints = "none"
autodoc_default_options = {"member-order": "groupwise"}
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False

# -- HTML --------------------------------------------------------------------

html_theme = "pydata_sphinx_theme"
html_title = f"skhsfm {release}"
html_baseurl = PUBLISHED_URL
html_static_path = ["_static"]
html_css_files = ["skhsfm.css"]
html_show_sourcelink = False
html_theme_options = {
    "navigation_depth": 2,
    "show_toc_level": 2,
    "navbar_align": "left",
    "footer_start": ["copyright"],
    "footer_end": ["sphinx-version"],
}
html_context = {"default_mode": "light"}

# -- Gallery -----------------------------------------------------------------

#: Examples shown with their code only. Three train the dominoes CNN (once or
#: for every seed) and take minutes; embed_images.py downloads CLIP weights
#: when the network is reachable (offline it embeds with a random ResNet-18 for
#: about a minute); dask_search.py and ray_embedding.py start a cluster and
#: take a minute or two. Every other example runs during the build, in seconds.
NOT_EXECUTED = (
    "compare_methods.py",
    "dask_search.py",
    "ray_embedding.py",
    "dominoes_benchmark_data.py",
    "embed_images.py",
    "plot_inspect_edits.py",
)

sphinx_gallery_conf = {
    "examples_dirs": str(ROOT / "examples"),
    "gallery_dirs": "auto_examples",
    # a path executes unless it ends with one of NOT_EXECUTED
    "filename_pattern": r"^(?!.*(" + "|".join(map(str, NOT_EXECUTED)) + r")$)",
    "ignore_pattern": r"__init__\.py|^_",
    # skhsfm draws without pyplot; its scraper goes first (see skhsfm_docs)
    "image_scrapers": ("skhsfm_docs.figure_scraper", "matplotlib"),
    "abort_on_example_error": True,
    "doc_module": ("skhsfm",),
    "backreferences_dir": "api/generated/backreferences",
    "within_subsection_order": "FileNameSortKey",
    "download_all_examples": False,
    "remove_config_comments": True,
    "show_memory": False,
    "min_reported_time": 1,
    "matplotlib_animations": False,
}

# The examples run with every warning shown; these are expected and harmless.
warnings.filterwarnings("ignore", category=UserWarning, message=".*non-GUI backend")

# -- Generated pages ---------------------------------------------------------

# `skhsfm --help` and each command's help, included by user_guide/cli.rst
write_cli_help(HERE / "user_guide" / "generated")
# thumbnails of the examples that draw no figure during the build, named by
# their `sphinx_gallery_thumbnail_path` (see skhsfm_thumbnails)
write_thumbnails(HERE / "_thumbnails", ROOT / "examples")
