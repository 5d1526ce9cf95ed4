"""Fault injection: failed and interrupted fits, labels that never compare
equal, missing labels, devices and a half-imported torch.

Classes 3, 6 and 7 (estimators) of the reliability issue. The other classes
are in ``test_faults_io.py`` (caches, outputs, the command's errors) and
``test_faults_data.py`` (loaders, images, weight files, cache folders).
"""

import os
import subprocess
import sys
import textwrap
import warnings

import numpy as np
import pytest
from sklearn.exceptions import NotFittedError

from skhsfm import HSFMClassifier
from skhsfm.baselines import AFRClassifier, DFRClassifier, ERMHeadClassifier
from skhsfm.datasets import make_spurious_embeddings

pd = pytest.importorskip("pandas")

HEADS = {
    "erm": lambda: ERMHeadClassifier(),
    "dfr": lambda: DFRClassifier(n_models=2, Cs=1.0, random_state=0),
    "afr": lambda: AFRClassifier(n_epochs=3, device="cpu", random_state=0),
    "hsfm": lambda: HSFMClassifier(n_epochs=2, device="cpu", random_state=0),
}


@pytest.fixture(scope="module")
def data():
    X, y, _, g = make_spurious_embeddings(160, 6, split="train", random_state=0)
    X_val, y_val, _, g_val = make_spurious_embeddings(
        80, 6, split="val", random_state=1
    )
    return X, y, g, X_val, y_val, g_val


def _fit(head, data, **changes):
    X, y, g, X_val, y_val, g_val = data
    kwargs = dict(X=X, y=y, groups=g, X_val=X_val, y_val=y_val, groups_val=g_val)
    kwargs.update(changes)
    return head.fit(kwargs.pop("X"), kwargs.pop("y"), kwargs.pop("groups"), **kwargs)


def _state(estimator):
    """A comparable copy of every attribute."""
    out = {}
    for name, value in vars(estimator).items():
        if isinstance(value, np.ndarray):
            out[name] = ("array", value.dtype.str, value.shape, value.tobytes())
        elif isinstance(value, dict):
            out[name] = ("dict", repr(sorted(value, key=str)))
        else:
            out[name] = ("value", repr(value))
    return out


# ------------------------------------------------- 3. failed and interrupted


def _bad_refits(data):
    X, y, g, X_val, y_val, g_val = data
    letters = np.array(["a", "b"])[y]
    return {
        # validation fails after validate_data set n_features_in_
        "string classes, int y_val": dict(y=letters),
        # n_features_in_ changes, then the NaN check fails
        "NaN in a wider X": dict(
            X=np.where(np.arange(12) == 11, np.nan, np.hstack([X, X])),
            X_val=None,
            y_val=None,
            groups_val=None,
        ),
        "NaN in X_val": dict(X_val=np.full_like(X_val, np.nan)),
        "unknown y_val class": dict(y_val=np.where(y_val == 0, 5, y_val)),
        "groups with None": dict(groups=np.array([None] * len(y), dtype=object)),
    }


@pytest.mark.parametrize("name", list(HEADS))
@pytest.mark.parametrize(
    "bad",
    [
        "string classes, int y_val",
        "NaN in a wider X",
        "NaN in X_val",
        "unknown y_val class",
        "groups with None",
    ],
)
def test_a_failed_refit_leaves_the_head_as_it_was(data, name, bad):
    if name == "erm" and ("y_val" in bad or "X_val" in bad):
        pytest.skip("the ERM head does not look at X_val, y_val")
    head = _fit(HEADS[name](), data)
    before, pred = _state(head), head.predict(data[3])
    with pytest.raises(ValueError):
        _fit(head, data, **_bad_refits(data)[bad])
    assert _state(head) == before
    np.testing.assert_array_equal(head.predict(data[3]), pred)


@pytest.mark.parametrize("name", list(HEADS))
def test_a_failed_first_fit_leaves_the_head_unfitted(data, name):
    head = HEADS[name]()
    params = head.get_params()
    with pytest.raises(ValueError):
        _fit(head, data, **_bad_refits(data)["groups with None"])
    assert [k for k in vars(head) if k.endswith("_")] == []
    assert head.get_params() == params
    with pytest.raises(NotFittedError):
        head.predict(data[3])


def _interrupt_on(monkeypatch, module, name, call=1):
    """Make ``module.name`` raise KeyboardInterrupt at its ``call``-th call."""
    original, count = getattr(module, name), []

    def interrupted(*args, **kwargs):
        count.append(1)
        if len(count) == call:
            raise KeyboardInterrupt
        return original(*args, **kwargs)

    monkeypatch.setattr(module, name, interrupted)


def _interruptions():
    import skhsfm._hsfm
    import skhsfm.baselines._afr
    import skhsfm.baselines._dfr
    import skhsfm.baselines._erm

    return {
        # inside the model-selection callback of HSFM's loop, second epoch
        "hsfm": (skhsfm._hsfm, "selection_score", 2),
        # AFR's grid training, after the pools and classes_ were set
        "afr": (skhsfm.baselines._afr, "_train_grid", 1),
        # DFR's second subsample, after best_C_ was chosen
        "dfr": (skhsfm.baselines._dfr, "balanced_subsample", 2),
        "erm": (skhsfm.baselines._erm, "fit_erm_head", 1),
    }


@pytest.mark.parametrize("name", list(HEADS))
def test_an_interrupted_refit_leaves_the_head_as_it_was(data, monkeypatch, name):
    head = _fit(HEADS[name](), data)
    before = _state(head)
    X, y, g, X_val, y_val, g_val = data
    letters = np.array(["no", "yes"])[y]  # new class names: must not stick
    module, function, call = _interruptions()[name]
    _interrupt_on(monkeypatch, module, function, call)
    with pytest.raises(KeyboardInterrupt):
        _fit(head, data, y=letters, y_val=np.array(["no", "yes"])[y_val])
    monkeypatch.undo()
    assert _state(head) == before
    assert set(head.predict(X_val)) <= set(y)  # the old head, the old labels
    _fit(head, data)  # and it fits again
    assert _state(head).keys() == before.keys()


def test_a_failed_embedder_leaves_no_half_loaded_backbone(monkeypatch):
    import torch

    from skhsfm.embedding import BackboneEmbedder, _embedder

    class Mean(torch.nn.Module):
        def forward(self, x):
            return x.mean(dim=(2, 3))

    embedder = BackboneEmbedder(Mean(), device="cpu")
    params = embedder.get_params()
    with pytest.raises(ValueError):
        embedder.set_params(batch_size=0).fit()
    embedder.set_params(batch_size=64)
    assert embedder.get_params() == params
    _interrupt_on(monkeypatch, _embedder, "load_backbone")
    images = np.zeros((2, 8, 8, 3), dtype=np.uint8)
    with pytest.raises(KeyboardInterrupt):
        embedder.transform(images)
    assert getattr(embedder, "_runtime", None) is None
    assert getattr(embedder, "_dim_memo", None) is None
    monkeypatch.undo()
    assert embedder.transform(images).shape == (2, 3)


# ------------------------------------------- 6. labels that never compare


def _metric_calls():
    from skhsfm import metrics

    groups = np.array([0, 0, 1, 1, 0, 1])
    return {
        "worst_group_accuracy": lambda t, p: metrics.worst_group_accuracy(
            t, p, groups=groups
        ),
        "worst_class_accuracy": metrics.worst_class_accuracy,
        "mean_accuracy": metrics.mean_accuracy,
        "group_weighted_accuracy": lambda t, p: metrics.group_weighted_accuracy(
            t, p, groups=groups, reference_groups=groups
        ),
        "group_accuracy_report": lambda t, p: metrics.group_accuracy_report(
            t, p, groups=groups
        ),
    }


def _label_pairs():
    ints = np.array([0, 1, 0, 1, 1, 0])
    strs = ints.astype(str)
    return {
        "object str vs int": (strs.astype(object), ints),
        "int vs object str": (ints, strs.astype(object)),
        "Categorical str vs int": (pd.Categorical(strs), ints),
        "StringDtype vs int": (pd.array(strs, dtype="string"), ints),
        "Series object vs float": (pd.Series(strs, dtype=object), ints.astype(float)),
        "bytes vs str": (strs.astype(bytes), strs),
        "object bytes vs object str": (
            strs.astype(bytes).astype(object),
            strs.astype(object),
        ),
        "bool vs str": (ints.astype(bool), np.array(["True", "False"] * 3)),
        "str vs bool": (np.array(["True", "False"] * 3, dtype=object), ints > 0),
    }


@pytest.mark.parametrize("metric", list(_metric_calls()))
@pytest.mark.parametrize("pair", list(_label_pairs()))
def test_metrics_reject_labels_that_never_compare_equal(metric, pair):
    y_true, y_pred = _label_pairs()[pair]
    with pytest.raises(ValueError, match="never compare equal"):
        _metric_calls()[metric](y_true, y_pred)


@pytest.mark.parametrize("metric", list(_metric_calls()))
def test_metrics_accept_the_same_kind_in_any_container(metric):
    ints = np.array([0, 1, 0, 1, 1, 0])
    strs = ints.astype(str)
    call = _metric_calls()[metric]
    expected = call(ints, ints)
    for y_true, y_pred in [
        (strs.astype(object), strs),
        (pd.Categorical(strs), strs),
        (pd.array(strs, dtype="string"), pd.Series(strs)),
        (pd.Categorical(ints), ints),
        (ints.astype(bool), ints),
        (ints.astype(float), ints.astype(object)),
    ]:
        assert repr(call(y_true, y_pred)) == repr(expected)


def test_labels_mixing_kinds_are_rejected():
    from skhsfm.metrics import worst_class_accuracy

    with pytest.raises(ValueError, match="mixes labels of kinds"):
        worst_class_accuracy(np.array([0, "1"], dtype=object), [0, 1])


def test_scorers_reject_labels_that_never_compare_equal():
    import sklearn

    from skhsfm.metrics import make_worst_group_scorer

    X, y, _, g = make_spurious_embeddings(120, 4, split="val", random_state=0)
    head = ERMHeadClassifier().fit(X, y)
    scorer = make_worst_group_scorer()
    with sklearn.config_context(enable_metadata_routing=True):
        score = scorer(head, X, y, groups=g)
        with pytest.raises(ValueError, match="never compare equal"):
            scorer(head, X, pd.Series(y.astype(str), dtype=object), groups=g)
    assert 0 <= score <= 1


@pytest.mark.parametrize("name", ["dfr", "afr", "hsfm"])
@pytest.mark.parametrize(
    "convert",
    [
        lambda y: y.astype(str).astype(object),
        lambda y: pd.Categorical(y.astype(str)),
        lambda y: pd.array(y.astype(str), dtype="string"),
        lambda y: y.astype(str).astype(bytes),
    ],
)
def test_fit_rejects_y_val_of_another_kind_than_y(data, name, convert):
    y_val = data[4]
    with pytest.raises(ValueError, match="y_val holds .* never compare equal"):
        _fit(HEADS[name](), data, y_val=convert(y_val))


@pytest.mark.parametrize("name", list(HEADS))
@pytest.mark.parametrize("missing", [None, float("nan"), "pd.NA"])
def test_fit_names_missing_labels(data, name, missing):
    missing = pd.NA if missing == "pd.NA" else missing
    y = data[1].astype(object)
    y[7] = missing
    with pytest.raises(
        ValueError, match=r"^y contains None or NaN at position\(s\) \[7\]"
    ):
        _fit(HEADS[name](), data, y=y)


def _group_entry_points(data):
    from skhsfm import metrics
    from skhsfm.model_selection import GroupStratifiedKFold

    X, y, g, X_val, y_val, g_val = data

    def with_missing(values, value):
        values = np.asarray(values).astype(object)
        values[3] = value
        return values

    return {
        "fit groups": lambda v: DFRClassifier(n_models=1).fit(X, y, with_missing(g, v)),
        "fit groups_val": lambda v: HSFMClassifier(n_epochs=1).fit(
            X, y, g, X_val=X_val, y_val=y_val, groups_val=with_missing(g_val, v)
        ),
        "metric groups": lambda v: metrics.worst_group_accuracy(
            y, y, groups=with_missing(g, v)
        ),
        "reference_groups": lambda v: metrics.group_weighted_accuracy(
            y, y, groups=g, reference_groups=with_missing(g, v)
        ),
        "splitter groups": lambda v: list(
            GroupStratifiedKFold(2).split(X, y, with_missing(g, v))
        ),
        "make_groups": lambda v: metrics.make_groups(y, with_missing(g, v)),
    }


@pytest.mark.parametrize(
    "entry",
    [
        "fit groups",
        "fit groups_val",
        "metric groups",
        "reference_groups",
        "splitter groups",
        "make_groups",
    ],
)
@pytest.mark.parametrize("missing", [None, float("nan"), "pd.NA"])
def test_every_entry_point_names_missing_group_labels(data, entry, missing):
    missing = pd.NA if missing == "pd.NA" else missing
    with pytest.raises(
        ValueError, match=r"contains None or NaN at position\(s\) \[3\]"
    ):
        _group_entry_points(data)[entry](missing)


# ----------------------------------------------------- 7. torch and devices


@pytest.mark.parametrize("device", ["meta", "cuda:99"])
def test_devices_that_cannot_hold_data_are_refused(data, device):
    import torch
    from sklearn.utils import Bunch

    from skhsfm.datasets import train_dominoes_backbone
    from skhsfm.embedding import BackboneEmbedder

    if device.startswith("cuda") and not torch.cuda.is_available():
        message = "CUDA is not available"
    else:
        message = "cannot hold data"
    for name in ("afr", "hsfm"):
        head = HEADS[name]().set_params(device=device)
        with pytest.raises(ValueError, match=f"device='{device}'.*{message}"):
            _fit(head, data)
        assert [k for k in vars(head) if k.endswith("_")] == []
    embedder = BackboneEmbedder(torch.nn.Flatten(), device=device)
    with pytest.raises(ValueError, match=message):
        embedder.transform(np.zeros((1, 4, 4, 3), dtype=np.uint8))
    with pytest.raises(ValueError, match=message):
        train_dominoes_backbone(
            Bunch(images=np.zeros((4, 8, 8, 3), np.uint8), target=np.arange(4) % 2),
            device=device,
        )


def test_read_only_arrays_become_private_tensors():
    from skhsfm._utils.torch import to_tensor

    for dtype in (np.float32, np.float64):
        array = np.arange(6, dtype=dtype)
        array.flags.writeable = False
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            tensor = to_tensor(array, "cpu")
        tensor += 1  # must not write through to the read-only array
        assert array[0] == 0 and tensor[0] == 1


def _python(code, timeout=240):
    env = dict(
        os.environ,
        PYTHONPATH=os.getcwd() + os.pathsep + os.environ.get("PYTHONPATH", ""),
    )
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        cwd=os.getcwd(),
    )


def test_hsfm_on_dataframes_warns_nothing():
    """torch warns once per process about non-writable arrays, so in a fresh one."""
    result = _python(
        """
        import warnings
        import pandas as pd
        from skhsfm import HSFMClassifier
        from skhsfm.datasets import make_spurious_embeddings
        warnings.simplefilter("error")
        X, y, _, g = make_spurious_embeddings(120, 4, random_state=0)
        df = pd.DataFrame(X, columns=[f"f{i}" for i in range(4)])
        HSFMClassifier(n_epochs=1, device="cpu").fit(df, y, g, X_val=df, y_val=y)
        print("fitted")
        """
    )
    assert result.returncode == 0, result.stderr
    assert "fitted" in result.stdout and "not writable" not in result.stderr


def test_a_half_imported_torch_says_to_restart():
    result = _python(
        """
        import sys
        import numpy as np

        class Interrupt:  # Ctrl-C while torch imports its submodules
            def find_spec(self, name, path=None, target=None):
                if name == "torch.nn":
                    sys.meta_path.remove(self)
                    raise KeyboardInterrupt
                return None

        from skhsfm import HSFMClassifier
        X = np.random.RandomState(0).normal(size=(40, 3)); y = np.arange(40) % 2
        sys.meta_path.insert(0, Interrupt())
        try:
            HSFMClassifier(n_epochs=1).fit(X, y)
        except KeyboardInterrupt:
            print("interrupted", flush=True)
        for attempt in range(2):
            try:
                HSFMClassifier(n_epochs=1).fit(X, y)
            except ImportError as exc:
                print("ImportError:", exc, flush=True)
        """
    )
    lines = result.stdout.splitlines()
    assert lines[0] == "interrupted", result.stderr
    assert len(lines) == 3, result.stdout + result.stderr
    for line in lines[1:]:
        assert line.startswith("ImportError: torch is only partly imported")
        assert "Restart the Python interpreter" in line


def test_import_fully_detects_a_half_imported_package(tmp_path, monkeypatch):
    from skhsfm._utils.imports import HalfImportedError, import_fully

    package = tmp_path / "halfpkg"
    package.mkdir()
    (package / "sub.py").write_text("VALUE = 1\n")
    (package / "__init__.py").write_text(
        "from halfpkg import sub\n"
        "import os\n"
        "if os.environ.get('HALFPKG_INTERRUPT'):\n"
        "    raise KeyboardInterrupt\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv("HALFPKG_INTERRUPT", "1")
    try:
        with pytest.raises(KeyboardInterrupt):
            import_fully("halfpkg")
        monkeypatch.delenv("HALFPKG_INTERRUPT")
        assert "halfpkg" not in sys.modules and "halfpkg.sub" in sys.modules
        with pytest.raises(HalfImportedError, match="Restart the Python"):
            import_fully("halfpkg")
        del sys.modules["halfpkg.sub"]  # what a restart gives
        assert import_fully("halfpkg").sub.VALUE == 1
        with pytest.raises(ImportError, match="install it"):
            import_fully("no_such_package_xyz", "install it")
    finally:
        for name in ("halfpkg", "halfpkg.sub"):
            sys.modules.pop(name, None)


def test_every_lazy_torch_import_goes_through_the_guard():
    """``import torch`` appears only in the guard itself and in modules that are
    imported after it ran (_meta, loaded from fit after skhsfm._utils.torch)."""
    import ast

    import skhsfm

    root = os.path.dirname(skhsfm.__file__)
    allowed = {
        "_imports.py",  # the guard
        "_meta.py",  # imported by HSFM's fit after skhsfm._utils.torch
        os.path.join("embedding", "_keys.py"),  # owned by the cache rework
    }
    offenders = []
    for folder, _, files in os.walk(root):
        for file in files:
            if not file.endswith(".py"):
                continue
            path = os.path.join(folder, file)
            rel = os.path.relpath(path, root)
            with open(path, encoding="utf-8") as handle:
                tree = ast.parse(handle.read())
            for node in ast.walk(tree):
                names = []
                if isinstance(node, ast.Import):
                    names = [a.name for a in node.names]
                elif isinstance(node, ast.ImportFrom) and node.level == 0:
                    names = [node.module or ""]
                if any(n == "torch" or n.startswith("torch.") for n in names):
                    if rel not in allowed:
                        offenders.append(f"{rel}:{node.lineno}")
    assert offenders == []
