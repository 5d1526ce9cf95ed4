"""Tests of skhsfm.utils: the estimator registry and what reads it."""

import importlib

import numpy as np
import pytest
from sklearn.base import BaseEstimator, is_classifier

import skhsfm
from skhsfm import HSFMClassifier
from skhsfm.utils import _registry, all_estimators


def _public_estimators():
    """Every estimator class some public module exports (its ``__all__``)."""
    import pkgutil

    found = {}
    names = ["skhsfm"] + [
        info.name
        for info in pkgutil.iter_modules(skhsfm.__path__, prefix="skhsfm.")
        if not info.name.rsplit(".", 1)[1].startswith("_")
        and info.name != "skhsfm.inspect"  # a deprecated alias
    ]
    for module_name in names:
        module = importlib.import_module(module_name)
        for name in module.__all__:
            obj = getattr(module, name)
            if isinstance(obj, type) and issubclass(obj, BaseEstimator):
                found[obj.__name__] = obj
    return found


def test_all_estimators_is_sorted_name_class_pairs():
    pairs = all_estimators()
    assert [name for name, _ in pairs] == sorted(name for name, _ in pairs)
    assert all(cls.__name__ == name for name, cls in pairs)
    assert dict(pairs)["HSFMClassifier"] is skhsfm.HSFMClassifier


def test_every_public_estimator_is_registered():
    assert dict(all_estimators()) == _public_estimators()


def test_type_filters():
    classifiers = dict(all_estimators("classifier"))
    assert classifiers and all(
        is_classifier(entry.check_instance()) for entry in _registry("classifier")
    )
    assert [name for name, _ in all_estimators("transformer")] == ["BackboneEmbedder"]
    heads = dict(all_estimators("head"))
    # every classifier is a compared head but the meta-estimator
    assert set(classifiers) - set(heads) == {"InferredGroupsClassifier"}
    both = dict(all_estimators(["classifier", "transformer"]))
    # the group inferrer is of no scikit-learn type: listed only unfiltered
    assert set(dict(all_estimators())) - set(both) == {"GroupInferrer"}
    assert all_estimators(("transformer",)) == all_estimators("transformer")


@pytest.mark.parametrize("bad", ["regressor", ["classifier", "splitter"], [], 3])
def test_unknown_type_filter_is_refused(bad):
    with pytest.raises((ValueError, TypeError), match="type_filter"):
        all_estimators(bad)


def test_registry_lines_are_consistent():
    entries = _registry()
    keys = [entry.key for entry in entries if entry.key is not None]
    assert len(set(keys)) == len(keys)
    for entry in entries:
        assert entry.type in ("classifier", "transformer", None)
        assert entry.groups in ("required", "optional", "unused")
        assert set(entry.check_params) <= entry.parameters
        if entry.key is None:
            assert entry.label is None and entry.budget is None
            continue
        assert entry.key.isidentifier() and entry.key == entry.key.lower()
        assert entry.label
        if entry.budget is not None:
            word, parameter = entry.budget
            assert parameter in entry.parameters
            assert entry.budget_option == f"--{entry.key}-{word}"


@pytest.mark.parametrize("entry", _registry("head"), ids=lambda entry: entry.key)
def test_registered_group_use_is_what_the_head_does(entry, grouped_data):
    """The ``groups`` of a registry line is true of the head: "required" at
    its defaults (the check settings make it group-free), "optional" and
    "unused" at the check settings, with and without group labels."""
    X, y, g, Xv, yv, gv = grouped_data
    if entry.groups == "required":
        with pytest.raises(ValueError, match="group"):
            entry.estimator().fit(X, y, X_val=Xv, y_val=yv)
        entry.estimator().fit(X, y, g, X_val=Xv, y_val=yv, groups_val=gv)
        return
    fitted = entry.check_instance().fit(X, y, g, X_val=Xv, y_val=yv, groups_val=gv)
    without = entry.check_instance().fit(X, y, X_val=Xv, y_val=yv)
    same = np.array_equal(fitted.predict_proba(X), without.predict_proba(X))
    assert same == (entry.groups == "unused")


def test_benchmark_methods_come_from_the_registry():
    from skhsfm.cli import build_parser
    from skhsfm.cli.benchmark import METHODS, BenchmarkSettings, _estimators

    heads = _registry("head")
    assert METHODS == tuple(entry.key for entry in heads)
    parser = build_parser()
    help_text = parser.parse_args(["benchmark"]).subparser.format_help()
    for entry in heads:
        if entry.budget is not None:
            assert entry.budget_option in help_text
    settings = BenchmarkSettings(device="cpu", budgets={"hsfm": 3, "dfr": 2})
    built = {label: est for _, label, est in _estimators(METHODS, 7, None, settings)}
    assert list(built) == [entry.label for entry in heads]
    for entry in heads:
        params = built[entry.label].get_params()
        if "random_state" in params:
            assert params["random_state"] == 7
        if "device" in params:
            assert params["device"] == "cpu"
    assert built["HSFM"].n_epochs == 3 and built["DFR"].n_models == 2


def test_benchmark_gives_the_backbone_head_to_heads_that_take_one():
    from skhsfm import LinearHead
    from skhsfm.cli.benchmark import METHODS, BenchmarkSettings, _estimators

    init = LinearHead(np.ones((1, 4)), [0.5])
    settings = BenchmarkSettings(device="cpu", preset="dominoes")
    built = {label: est for _, label, est in _estimators(METHODS, 0, init, settings)}
    for label, estimator in built.items():
        params = estimator.get_params()
        if "init_coef" in params:
            assert params["init_coef"] is init.coef
    # a preset through from_preset, not the deprecated preset= parameter
    hsfm = built["HSFM (preset dominoes)"].get_params()
    expected = HSFMClassifier.from_preset("dominoes", device="cpu", random_state=0)
    expected = expected.get_params()
    assert hsfm["preset"] is None
    for params in (hsfm, expected):
        del params["init_coef"], params["init_intercept"]
    assert hsfm == expected
