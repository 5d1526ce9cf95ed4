"""Build helpers for the skhsfm docs (a Sphinx extension, see :func:`setup`).

- :func:`figure_scraper`: skhsfm draws its figures as
  :class:`matplotlib.figure.Figure` objects without pyplot (so that a library
  call never selects a backend), which sphinx-gallery's matplotlib scraper,
  looking only at pyplot's figures, does not see. This scraper saves every such
  figure an example keeps in a variable.
- :func:`write_cli_help`: the ``--help`` text of ``skhsfm`` and of each of its
  commands, written to text files that the command-line page includes, so that
  the page always shows the options of the code it documents.
- :func:`write_sklearn_inventory`: an intersphinx inventory of scikit-learn's
  public names, made from the installed scikit-learn, so that an offline
  build links them to scikit-learn's site.
- :func:`skip_foreign_member`, :func:`process_docstring`: API pages list the
  methods skhsfm's classes define or take from scikit-learn (``get_params``,
  ``set_fit_request``, ...), not the dozens a torch ``nn.Module`` brings;
  scikit-learn's docstrings lose their links into scikit-learn's own site (kept
  as text), and module-level data (``PRESETS``, ``worst_group_scorer``,
  ``__version__``) get the ``#:`` comment written where they are defined.
"""

import importlib
import inspect
import os
import re
import sys
import zlib
from pathlib import Path

__all__ = [
    "figure_scraper",
    "process_docstring",
    "setup",
    "skip_foreign_member",
    "write_cli_help",
    "write_sklearn_inventory",
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


def _sklearn_entries():
    """``(name, role, uri)`` of scikit-learn's public API, by its page scheme:
    one page per class or function under ``modules/generated/``, its methods
    as anchors there, one page per module under ``api/``. A ``$`` in ``uri``
    stands for the name (the inventory format's shorthand)."""
    import sklearn

    modules = [f"sklearn.{name}" for name in sklearn.__all__ if name[0] != "_"]
    modules += [f"sklearn.utils.{name}" for name in ("validation", "multiclass")]
    entries = [
        (f"sklearn.{name}", "function", f"modules/generated/sklearn.{name}.html#$")
        for name in ("set_config", "get_config", "config_context", "show_versions")
    ]
    for module_name in modules:
        try:
            module = importlib.import_module(module_name)
        except ImportError:
            continue
        if not inspect.ismodule(module):
            continue
        entries.append((module_name, "module", f"api/{module_name}.html"))
        for name in getattr(module, "__all__", ()):
            try:
                obj = getattr(module, name, None)
            except ImportError:  # experimental names need an enabling import
                continue
            full = f"{module_name}.{name}"
            page = f"modules/generated/{full}.html#$"
            if inspect.isclass(obj):
                entries.append((full, "class", page))
                for member in dir(obj):
                    value = getattr(obj, member, None)
                    if not member.startswith("_") and inspect.isroutine(value):
                        entries.append((f"{full}.{member}", "method", page))
            elif callable(obj):
                entries.append((full, "function", page))
    return entries


def write_sklearn_inventory(path):
    """Write an intersphinx inventory (``objects.inv`` format) of scikit-learn.

    scikit-learn's own inventory is downloaded from its site, which an offline
    build cannot reach; this one is made from the installed scikit-learn's
    public modules and their ``__all__``, with the addresses of its site's page
    scheme (``modules/generated/<name>.html#<name>``), so that
    ``:class:`~sklearn.pipeline.Pipeline``` links there in any build.
    """
    import sklearn

    lines = [f"{name} py:{role} 1 {uri} -\n" for name, role, uri in _sklearn_entries()]
    header = (
        "# Sphinx inventory version 2\n"
        "# Project: scikit-learn\n"
        f"# Version: {sklearn.__version__}\n"
        "# The remainder of this file is compressed using zlib.\n"
    )
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    data = header.encode() + zlib.compress("".join(lines).encode())
    if not path.exists() or path.read_bytes() != data:
        path.write_bytes(data)
    return len(lines)


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
