"""The documentation covers the package: API pages, repr links, examples.

Runs without Sphinx: it reads the API module pages ``docs/api/skhsfm*.rst``
(whose ``autosummary`` lists make one page per name), the API index
``docs/api/index.rst``, ``docs/conf.py`` and ``examples/``. The docs
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
from skhsfm._utils import doc_link

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


def api_entries(pages=None):
    """``{(module, name): has_page}`` for every autosummary entry of the API
    module pages (``docs/api/skhsfm*.rst``; or of ``pages``); ``has_page``
    says whether the list has a ``:toctree:``."""
    if pages is None:
        pages = sorted((DOCS / "api").glob("skhsfm*.rst"))
    entries = {}
    for page in pages:
        entries.update(_autosummary_entries(page))
    return entries


def _autosummary_entries(page):
    entries, module, in_list, toctree = {}, None, False, False
    for line in page.read_text().splitlines():
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
        "it to an autosummary list of docs/api/<module>.rst (the module that "
        "defines it) and to that module's table in docs/api/index.rst."
    )


def test_api_entries_are_public():
    public = set(public_names())
    for module, name in api_entries():
        assert (module, name) in public, f"{module}.{name} is not in __all__"


def test_api_index_lists_every_documented_name():
    """The API index (one table per module, a one-line summary per name, as
    scikit-learn's) lists exactly the names the module pages document."""
    index = api_entries([DOCS / "api" / "index.rst"])
    assert set(index) == set(api_entries())
    assert not any(index.values()), "the index links the module pages' entries"
    toctree = (DOCS / "api" / "index.rst").read_text().split(".. toctree::")[1]
    for page in sorted((DOCS / "api").glob("skhsfm*.rst")):
        assert f"   {page.stem}\n" in toctree, f"{page.name} is not in the index"


def estimator_classes():
    seen = {}
    for module, name in public_names():
        obj = getattr(importlib.import_module(module), name)
        if isinstance(obj, type) and issubclass(obj, BaseEstimator):
            seen[obj] = None
    return list(seen)


SITE = "https://docs.example.org/skhsfm/"


@pytest.mark.parametrize("cls", estimator_classes(), ids=lambda cls: cls.__name__)
def test_html_repr_links_to_the_api_page(cls, monkeypatch):
    monkeypatch.setenv("SKHSFM_DOCS_URL", SITE)
    page = documented_objects()[id(cls)]
    link = f"{SITE}api/generated/{page}.html"
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


def test_docs_url_setting(monkeypatch, tmp_path):
    """SKHSFM_DOCS_URL, else the checkout's local build, else no link until
    the site is published (a link to an empty site lands on an error page)."""
    build = tmp_path / "html"
    monkeypatch.setattr(doc_link, "_LOCAL_BUILD", build)
    monkeypatch.delenv("SKHSFM_DOCS_URL", raising=False)
    monkeypatch.setattr(doc_link, "PUBLISHED", False)
    assert HSFMClassifier()._get_doc_link() == ""
    assert "api/generated" not in HSFMClassifier()._repr_html_()
    monkeypatch.setattr(doc_link, "PUBLISHED", True)
    assert HSFMClassifier()._get_doc_link() == (
        doc_link.PUBLISHED_URL + "api/generated/skhsfm.HSFMClassifier.html"
    )
    build.mkdir()
    (build / "index.html").write_text("<html></html>")
    local = build.resolve().as_uri() + "/api/generated/skhsfm.HSFMClassifier.html"
    assert HSFMClassifier()._get_doc_link() == local  # the local build first
    monkeypatch.setenv("SKHSFM_DOCS_URL", "https://docs.example.org/skhsfm")
    assert HSFMClassifier()._get_doc_link().startswith(SITE + "api/")
    monkeypatch.setenv("SKHSFM_DOCS_URL", str(build))  # a folder
    assert HSFMClassifier()._get_doc_link() == local
    monkeypatch.setenv("SKHSFM_DOCS_URL", "none")
    assert HSFMClassifier()._get_doc_link() == ""


@pytest.mark.skipif(
    not hasattr(BaseEstimator, "_get_params_html"),
    reason="this scikit-learn's HTML repr has no parameter table (1.7 added it)",
)
def test_the_repr_links_each_parameter_by_its_type_line(monkeypatch):
    """The repr links each parameter by the text of its type line, straight
    quotes included (``default="auto"``)."""
    monkeypatch.setenv("SKHSFM_DOCS_URL", SITE)
    page = SITE + "api/generated/skhsfm.HSFMClassifier.html"
    link = page + "#:~:text=device,-str%2C%20default%3D%22auto%22"
    assert f'href="{link}"' in HSFMClassifier()._repr_html_()


def test_parameter_links_match_the_pages():
    """The pages must show the type lines the repr links to as written, not
    with curly quotes."""
    tree = ast.parse((DOCS / "conf.py").read_text())
    settings = {
        node.targets[0].id: ast.literal_eval(node.value)
        for node in tree.body
        if isinstance(node, ast.Assign)
        and isinstance(node.targets[0], ast.Name)
        and isinstance(node.value, ast.Constant)
    }
    assert settings.get("smartquotes") is False, "docs/conf.py: smartquotes = False"


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


# ------------------------------------------------------ changelog, deprecations


def _texts():
    """The package's sources, the docs' pages and the README."""
    paths = [ROOT / "README.md", *ROOT.joinpath("skhsfm").rglob("*.py")]
    paths += [p for p in DOCS.rglob("*.rst") if "generated" not in p.parts]
    return [
        p for p in paths if "auto_examples" not in p.parts and "_build" not in p.parts
    ]


def test_changelog_has_the_installed_version():
    lines = (DOCS / "changelog.rst").read_text().splitlines()
    headings = [a for a, b in zip(lines, lines[1:]) if b and set(b) == {"="}]
    assert skhsfm.__version__ in headings, (
        f"docs/changelog.rst has no section {skhsfm.__version__}: add what changed"
    )
    index = (DOCS / "index.rst").read_text()
    assert re.search(r"^\s+changelog$", index, re.M), "changelog not in the toctree"


def test_every_deprecation_names_the_same_two_releases():
    """Warnings, docstrings and pages all say "deprecated in 0.2, removed in
    0.3" (the constants of skhsfm._utils.deprecation)."""
    from skhsfm._utils.deprecation import DEPRECATED_IN, REMOVED_IN

    patterns = {
        r"deprecated\s+(?:in|since)\s+(\d+\.\d+)": DEPRECATED_IN,
        r"\.\. deprecated::\s+(\d+\.\d+)": DEPRECATED_IN,
        r"removed\s+in\s+(\d+\.\d+)": REMOVED_IN,
    }
    found = 0
    for path in _texts():
        text = path.read_text()
        assert "deprecated since" not in text, f"{path.name}: say 'deprecated in'"
        for pattern, expected in patterns.items():
            for version in re.findall(pattern, text):
                found += 1
                assert version == expected, (
                    f"{path.relative_to(ROOT)}: {pattern!r} gives {version}, not "
                    f"{expected} (skhsfm._utils.deprecation)"
                )
    assert found >= 5  # the changelog and every deprecated name's docstring


def test_every_registered_estimator_has_an_api_page():
    from skhsfm.utils import all_estimators

    documented = documented_objects()
    for name, cls in all_estimators():
        assert id(cls) in documented, (
            f"{name} is registered in skhsfm/utils.py but has no API page: add it "
            "to an autosummary list in docs/api/index.rst"
        )
