"""Run the Examples sections of skhsfm's docstrings, one test per docstring.

The API reference shows these examples, so they must run. :mod:`doctest` finds
them in every module of the package; collecting them here keeps the test
command ``python -m pytest -q tests`` as it is.
"""

import doctest
import importlib
import pkgutil

import numpy as np
import pytest

import skhsfm

#: Modules whose import runs the command line, or warns (a deprecated alias).
NOT_IMPORTED = ("skhsfm.__main__", "skhsfm.cli.__main__", "skhsfm.inspect")

OPTIONFLAGS = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE


def module_names():
    names = ["skhsfm"]
    for info in pkgutil.walk_packages(skhsfm.__path__, prefix="skhsfm."):
        if info.name not in NOT_IMPORTED:
            names.append(info.name)
    return names


def find_doctests():
    """``{name: doctest.DocTest}`` of every docstring with examples."""
    finder = doctest.DocTestFinder(exclude_empty=True)
    found = {}
    for name in module_names():
        module = importlib.import_module(name)
        for test in finder.find(module, name):
            if test.examples:
                found[test.name] = test
    return found


DOCTESTS = find_doctests()


def print_options():
    # numpy >= 2 prints scalars as np.float64(...): print them as numpy 1.x
    # does, so one expected output holds on every supported numpy
    if int(np.__version__.split(".")[0]) >= 2:
        return np.printoptions(legacy="1.25")
    return np.printoptions()


def test_doctests_are_found():
    assert "skhsfm._hsfm.HSFMClassifier" in DOCTESTS
    assert len(DOCTESTS) >= 20


@pytest.mark.parametrize("name", sorted(DOCTESTS))
def test_docstring_examples(name):
    report = []
    runner = doctest.DocTestRunner(optionflags=OPTIONFLAGS)
    with print_options():
        result = runner.run(DOCTESTS[name], out=report.append, clear_globs=True)
    assert result.failed == 0, "".join(report)
