"""The documentation covers the package: API pages, repr links, examples.

Runs without Sphinx: it reads ``docs/api/index.rst`` (whose ``autosummary``
lists make one page per name), ``docs/conf.py`` and ``examples/``. The docs
build itself (``python -m sphinx -W -b html docs ...``) is a CI stage.
"""

import ast
import importlib
import inspect
import pkgutil
import re
from pathlib import Path

import pytest
from sklearn.base import BaseEstimator
from sklearn.linear_model import LogisticRegression

import skhsfm
from skhsfm import HSFMClassifier
from skhsfm._utils.doc_link import DOCS_URL

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
EXAMPLES = ROOT / "examples"

#: Public-looking modules that are not documented: a deprecated alias.
UNDOCUMENTED_MODULES = ("skhsfm.inspect",)


def public_modules():
    """``skhsfm`` and its first-level public modules and subpackages."""
    names = ["skhsfm"]
    for info in pkgutil.iter_modules(skhsfm.__path__, prefix="skhsfm."):
        short = info.name.rsplit(".", 1)[1]
        if not short.startswith("_") and info.name not in UNDOCUMENTED_MODULES:
            names.append(info.name)
    return names


def api_entries():
    """``{(module, name): has_page}`` for every autosummary entry of the API
    reference; ``has_page`` says whether the list has a ``:toctree:``."""
    entries, module, in_list, toctree = {}, None, False, False
    for line in (DOCS / "api" / "index.rst").read_text().splitlines():
        stripped = line.strip()
        if stripped.startswith(".. currentmodule::"):
            module = stripped.split("::", 1)[1].strip()
        if stripped == ".. autosummary::":
            in_list, toctree = True, False
            continue
        if in_list:
            if stripped and not line[0].isspace():
                in_list = False
            elif stripped.startswith(":toctree:"):
                toctree = True
            elif stripped and not stripped.startswith(":"):
                entries[(module, stripped.lstrip("~"))] = toctree
    return entries


def documented_objects():
    """``{id(obj): "module.name"}`` of the objects the API reference documents."""
    documented = {}
    for (module, name), has_page in api_entries().items():
        assert has_page, f"{module}.{name} is listed without a :toctree: page"
        obj = getattr(importlib.import_module(module), name)
        documented[id(obj)] = f"{module}.{name}"
    return documented


def public_names():
    for module in public_modules():
        for name in importlib.import_module(module).__all__:
            yield module, name


@pytest.mark.parametrize("module, name", list(public_names()))
def test_every_public_name_has_an_api_page(module, name):
    obj = getattr(importlib.import_module(module), name)
    assert id(obj) in documented_objects(), (
        f"{module}.{name} is public (in {module}.__all__) but has no API page: add "
        "it to an autosummary list in docs/api/index.rst, under the module that "
        "defines it."
    )


def test_api_entries_are_public():
    public = set(public_names())
    for module, name in api_entries():
        assert (module, name) in public, f"{module}.{name} is not in __all__"


def estimator_classes():
    seen = {}
    for module, name in public_names():
        obj = getattr(importlib.import_module(module), name)
        if isinstance(obj, type) and issubclass(obj, BaseEstimator):
            seen[obj] = None
    return list(seen)


@pytest.mark.parametrize("cls", estimator_classes(), ids=lambda cls: cls.__name__)
def test_html_repr_links_to_the_api_page(cls):
    page = documented_objects()[id(cls)]
    link = f"{DOCS_URL}api/generated/{page}.html"
    estimator = _construct(cls)
    assert estimator._get_doc_link() == link
    assert f'href="{link}"' in estimator._repr_html_()


def _construct(cls):
    """An instance of ``cls``; a meta-estimator gets a plain logistic regression."""
    required = [
        p.name
        for p in inspect.signature(cls).parameters.values()
        if p.default is inspect.Parameter.empty
        and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
    ]
    return cls(**{name: LogisticRegression() for name in required})


def test_hsfm_repr_html_links_to_its_page():
    html = HSFMClassifier()._repr_html_()
    assert (
        'href="https://skhsfm.readthedocs.io/en/stable/api/generated/'
        'skhsfm.HSFMClassifier.html"'
    ) in html


def not_executed_examples():
    tree = ast.parse((DOCS / "conf.py").read_text())
    for node in tree.body:
        if isinstance(node, ast.Assign) and node.targets[0].id == "NOT_EXECUTED":
            return ast.literal_eval(node.value)
    raise AssertionError("docs/conf.py has no NOT_EXECUTED")


@pytest.mark.parametrize("path", sorted(EXAMPLES.glob("*.py")), ids=lambda p: p.name)
def test_example_has_a_gallery_title(path):
    docstring = ast.get_docstring(ast.parse(path.read_text()), clean=False)
    assert docstring is not None, f"{path.name} has no docstring"
    lines = docstring.lstrip("\n").splitlines()
    assert len(lines) >= 2 and re.fullmatch(r"=+", lines[1]), (
        f"{path.name}: the docstring must start with a title underlined with '='"
    )
    assert len(lines[1]) >= len(lines[0]), f"{path.name}: title underline too short"


def test_not_executed_examples_exist():
    for name in not_executed_examples():
        assert (EXAMPLES / name).is_file(), f"NOT_EXECUTED names a missing {name}"


def test_references_to_examples_exist():
    """Renaming an example must update every ``examples/...`` reference."""
    texts = [ROOT / "README.md", *DOCS.rglob("*.rst"), *EXAMPLES.glob("*.py")]
    for path in texts:
        if "generated" in path.parts or "auto_examples" in path.parts:
            continue
        for name in re.findall(r"examples/(\w+\.py)", path.read_text()):
            assert (EXAMPLES / name).is_file(), f"{path.name} refers to {name}"
        for name in re.findall(r"sphx_glr_auto_examples_(\w+)\.py", path.read_text()):
            assert (EXAMPLES / f"{name}.py").is_file(), f"{path.name} links {name}"
