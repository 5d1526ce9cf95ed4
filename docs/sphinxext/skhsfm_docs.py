"""Build helpers for the skhsfm docs (a Sphinx extension, see :func:`setup`).

- :func:`figure_scraper`: skhsfm draws its figures as
  :class:`matplotlib.figure.Figure` objects without pyplot (so that a library
  call never selects a backend), which sphinx-gallery's matplotlib scraper,
  looking only at pyplot's figures, does not see. This scraper saves every such
  figure an example keeps in a variable.
- :func:`write_cli_help`: the ``--help`` text of ``skhsfm`` and of each of its
  commands, written to text files that the command-line page includes, so that
  the page always shows the options of the code it documents.
- :func:`skip_foreign_member`, :func:`process_docstring`: API pages list the
  methods skhsfm's classes define or take from scikit-learn (``get_params``,
  ``set_fit_request``, ...), not the dozens a torch ``nn.Module`` brings;
  scikit-learn's docstrings lose their links into scikit-learn's own site (kept
  as text), and module-level data (``PRESETS``, ``worst_group_scorer``,
  ``__version__``) get the ``#:`` comment written where they are defined.
"""

import os
import re
import sys
from pathlib import Path

__all__ = [
    "figure_scraper",
    "process_docstring",
    "setup",
    "skip_foreign_member",
    "write_cli_help",
]

#: Libraries whose inherited members are not listed on skhsfm's API pages.
FOREIGN = ("torch", "builtins")

# :ref:`text <label>`, :ref:`label`, :term:`text <entry>`, :term:`entry`
_STD_ROLE = re.compile(r":(?:ref|term):`(?:([^`<]*?)\s*<[^`>]*>|([^`]*))`")

# attribute set on a figure once it is in the gallery
_SCRAPED = "_skhsfm_gallery_scraped"


def figure_scraper(block, block_vars, gallery_conf, **kwargs):
    """Save the pyplot-free figures held by the example's variables.

    Each figure is saved once, after the code block that made it. Figures that
    pyplot manages are left to sphinx-gallery's own matplotlib scraper, which
    must come after this one in ``image_scrapers``: it closes them, after which
    they would look pyplot-free.
    """
    from matplotlib.figure import Figure
    from sphinx_gallery.scrapers import figure_rst

    figures = []
    for value in block_vars["example_globals"].values():
        if not isinstance(value, Figure) or getattr(value, _SCRAPED, False):
            continue
        if getattr(value.canvas, "manager", None) is None:
            figures.append(value)
        else:  # pyplot's: saved by the matplotlib scraper
            setattr(value, _SCRAPED, True)
    paths = []
    for figure, path in zip(figures, block_vars["image_path_iterator"]):
        figure.savefig(path, dpi=100)
        setattr(figure, _SCRAPED, True)
        paths.append(path)
    return figure_rst(paths, gallery_conf["src_dir"])


def write_cli_help(folder):
    """Write ``skhsfm.txt`` and ``skhsfm_<command>.txt`` help texts to ``folder``.

    Files are rewritten only when their text changes, so that an unchanged
    command line does not make Sphinx rebuild the page.
    """
    import argparse

    from skhsfm.cli import build_parser

    os.environ["COLUMNS"] = "88"  # argparse wraps to the terminal width
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    parser = build_parser()
    texts = {"skhsfm": parser.format_help()}
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, subparser in action.choices.items():
                texts[f"skhsfm_{name}"] = subparser.format_help()
    for name, text in texts.items():
        path = folder / f"{name}.txt"
        if not path.exists() or path.read_text() != text:
            path.write_text(text)
    return sorted(texts)


def _defining_module(obj):
    return getattr(obj, "__module__", None) or ""


def skip_foreign_member(app, what, name, obj, skip, options):
    """``autodoc-skip-member``: leave out members inherited from torch."""
    if _defining_module(obj).split(".")[0] in FOREIGN and callable(obj):
        return True
    return None


def _attribute_doc(name, obj):
    """The ``#:`` comment of module-level ``name`` where skhsfm defines it."""
    from sphinx.pycode import ModuleAnalyzer

    for module_name, module in sorted(sys.modules.items()):
        if (
            not module_name.startswith("skhsfm")
            or getattr(module, name, None) is not obj
        ):
            continue
        try:
            docs = ModuleAnalyzer.for_module(module_name).find_attr_docs()
        except Exception:  # noqa: BLE001 - a module without source
            continue
        if ("", name) in docs:
            return list(docs[("", name)])
    return None


def process_docstring(app, what, name, obj, options, lines):
    """``autodoc-process-docstring``: see the module docstring."""
    if what == "data":
        doc = _attribute_doc(name.rsplit(".", 1)[1], obj)
        if doc is not None:
            lines[:] = doc
    elif _defining_module(obj).startswith("sklearn"):
        lines[:] = [
            _STD_ROLE.sub(lambda m: m.group(1) or m.group(2), line) for line in lines
        ]


def setup(app):
    app.connect("autodoc-skip-member", skip_foreign_member)
    app.connect("autodoc-process-docstring", process_docstring)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
