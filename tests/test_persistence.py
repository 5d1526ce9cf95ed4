"""Deploying fitted heads: skops files, the version stamp, ``to_sklearn`` and
ONNX export, compact fitted state."""

import functools
import pickle
import struct
import subprocess
import sys
import textwrap
import warnings

import joblib
import numpy as np
import pytest
from sklearn.exceptions import NotFittedError
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler

import skhsfm
from skhsfm import (
    AFRClassifier,
    DFRClassifier,
    ERMHeadClassifier,
    HSFMClassifier,
    InconsistentVersionWarning,
    LinearHead,
)
from skhsfm.datasets import make_spurious_embeddings

HEADS = {
    "erm": lambda: ERMHeadClassifier(),
    "dfr": lambda: DFRClassifier(Cs=(1.0,), n_models=3, random_state=0),
    "afr": lambda: AFRClassifier(
        gamma=2.0, reg_lambda=0.0, n_epochs=20, device="cpu", random_state=0
    ),
    "hsfm": lambda: HSFMClassifier(
        n_epochs=2,
        support_size=4,
        hard_size=8,
        inner_steps=3,
        outer_steps=2,
        device="cpu",
        random_state=0,
    ),
}
CASES = [(name, k) for name in HEADS for k in (2, 3)]
CASE_IDS = [f"{name}-{k}classes" for name, k in CASES]
VERSION_KEY = "_skhsfm_version"


def make_data(n_classes, dtype=np.float64):
    """Balanced groups; three classes get string labels."""
    X, y, _, g = make_spurious_embeddings(
        40 * n_classes, 6, n_classes=n_classes, split="val", random_state=0
    )
    if n_classes == 3:
        y = np.array(["ant", "bee", "cat"])[y]
    return X.astype(dtype), y, g


@functools.lru_cache(maxsize=None)
def fitted(name, n_classes):
    """One fitted head per (head, number of classes), shared by the tests
    (which must not modify it)."""
    X, y, g = make_data(n_classes)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return HEADS[name]().fit(X, y, g)


def class_path(estimator):
    """How skops names the type of ``estimator`` in ``get_untrusted_types``."""
    return f"{type(estimator).__module__}.{type(estimator).__qualname__}"


# ------------------------------------------------------------------ to_sklearn


@pytest.mark.parametrize("name, n_classes", CASES, ids=CASE_IDS)
def test_to_sklearn_predicts_identically(name, n_classes):
    head = fitted(name, n_classes)
    X = make_data(n_classes)[0]
    model = head.to_sklearn()
    assert type(model) is LogisticRegression
    np.testing.assert_array_equal(model.classes_, head.classes_)
    assert model.n_features_in_ == head.n_features_in_ == X.shape[1]
    np.testing.assert_array_equal(model.predict(X), head.predict(X))
    np.testing.assert_array_equal(model.decision_function(X), head.decision_function(X))
    np.testing.assert_allclose(
        model.predict_proba(X), head.predict_proba(X), rtol=1e-12, atol=1e-15
    )
    np.testing.assert_allclose(
        model.predict_log_proba(X), head.predict_log_proba(X), rtol=1e-10, atol=1e-12
    )
    assert model.score(X, head.predict(X)) == 1.0
    # float32 embeddings, as deployed
    X32 = X.astype(np.float32)
    np.testing.assert_array_equal(model.predict(X32), head.predict(X32))
    # a copy: changing the exported model leaves the head alone
    model.coef_[:] = 0
    assert np.any(head.coef_ != 0)


@pytest.mark.parametrize("name", HEADS)
def test_to_sklearn_needs_a_fitted_head(name):
    with pytest.raises(NotFittedError, match="not fitted"):
        HEADS[name]().to_sklearn()


def test_to_sklearn_keeps_feature_names():
    pd = pytest.importorskip("pandas")
    X, y, g = make_data(2)
    frame = pd.DataFrame(X, columns=[f"e{i}" for i in range(X.shape[1])])
    head = ERMHeadClassifier().fit(frame, y)
    model = head.to_sklearn()
    np.testing.assert_array_equal(model.feature_names_in_, head.feature_names_in_)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no "X has feature names" warning
        np.testing.assert_array_equal(model.predict(frame), head.predict(frame))
    assert not hasattr(fitted("erm", 2).to_sklearn(), "feature_names_in_")


@pytest.mark.parametrize(
    "coef, intercept, classes",
    [
        ([[1.0, -2.0]], [0.5], None),
        ([[1.0, -2.0], [0.5, 1.0]], [0.0, 0.3], ["no", "yes"]),  # two-row form
        ([[1.0, 0.0], [0.0, 1.0], [-1.0, -1.0]], [0.1, 0.0, -0.1], [3, 5, 7]),
    ],
    ids=["binary", "binary-two-rows", "three-classes"],
)
def test_linear_head_to_sklearn(coef, intercept, classes):
    head = LinearHead(coef, intercept, classes)
    model = head.to_sklearn()
    X = np.random.RandomState(0).normal(size=(50, 2))
    np.testing.assert_array_equal(model.classes_, head.classes)
    assert model.n_features_in_ == 2
    np.testing.assert_array_equal(model.predict(X), head.predict(X))
    np.testing.assert_allclose(model.predict_proba(X), head.predict_proba(X))
    if len(coef) != 2:
        np.testing.assert_array_equal(
            model.decision_function(X), head.decision_function(X)
        )


# ----------------------------------------------------------------------- skops


@pytest.mark.parametrize("name, n_classes", CASES, ids=CASE_IDS)
def test_skops_round_trip(name, n_classes, tmp_path):
    sio = pytest.importorskip("skops.io")
    head = fitted(name, n_classes)
    path = tmp_path / "head.skops"
    sio.dump(head, path)
    # only the head's own class needs trusting: its state is numpy and builtins
    assert sio.get_untrusted_types(file=path) == [class_path(head)]
    with pytest.raises(sio.exceptions.UntrustedTypesFoundException):
        sio.load(path)
    with warnings.catch_warnings():
        warnings.simplefilter("error", InconsistentVersionWarning)
        loaded = sio.load(path, trusted=[class_path(head)])
    assert type(loaded) is type(head)
    assert repr(loaded.get_params()) == repr(head.get_params())
    X = make_data(n_classes)[0]
    np.testing.assert_array_equal(loaded.predict(X), head.predict(X))
    np.testing.assert_array_equal(loaded.predict_proba(X), head.predict_proba(X))
    assert sorted(vars(loaded)) == sorted(vars(head))
    for key, value in vars(head).items():
        if isinstance(value, np.ndarray):
            np.testing.assert_array_equal(getattr(loaded, key), value, err_msg=key)


def test_skops_round_trip_of_a_pipeline(tmp_path):
    sio = pytest.importorskip("skops.io")
    X, y, g = make_data(3)
    pipe = make_pipeline(StandardScaler(), HEADS["hsfm"]())
    pipe.fit(X, y, hsfmclassifier__groups=g)
    path = tmp_path / "pipe.skops"
    sio.dump(pipe, path)
    # scikit-learn's own Pipeline and StandardScaler are trusted by default
    assert sio.get_untrusted_types(file=path) == [class_path(pipe[-1])]
    loaded = sio.load(path, trusted=[class_path(pipe[-1])])
    np.testing.assert_array_equal(loaded.predict_proba(X), pipe.predict_proba(X))
    np.testing.assert_array_equal(loaded.predict(X), pipe.predict(X))


def test_files_load_and_predict_without_torch(tmp_path):
    """A skops file and a joblib file of every head and of a pipeline, loaded
    in a process where ``import torch`` fails."""
    pytest.importorskip("skops.io")
    import skops.io as sio

    expected, trusted = {}, set()
    models = {f"{name}{k}": fitted(name, k) for name, k in CASES}
    X3, y3, g3 = make_data(3)
    models["pipe3"] = make_pipeline(StandardScaler(), HEADS["afr"]()).fit(
        X3, y3, afrclassifier__groups=g3
    )
    for key, model in models.items():
        X = make_data(int(key[-1]))[0]
        np.save(tmp_path / f"{key}.npy", X)
        expected[key] = model.predict_proba(X)
        sio.dump(model, tmp_path / f"{key}.skops")
        joblib.dump(model, tmp_path / f"{key}.joblib")
        trusted.update(sio.get_untrusted_types(file=tmp_path / f"{key}.skops"))
    script = textwrap.dedent(
        f"""
        import sys, warnings

        class NoTorch:
            # a finder that makes "import torch" fail, as if torch were absent
            def find_spec(self, name, path=None, target=None):
                if name == "torch" or name.startswith("torch."):
                    raise ModuleNotFoundError(f"No module named {{name!r}}")

        sys.meta_path.insert(0, NoTorch())
        warnings.simplefilter("error")
        import joblib, numpy as np, skops.io as sio
        folder, trusted = {str(tmp_path)!r}, {sorted(trusted)!r}
        for key in {sorted(models)!r}:
            X = np.load(f"{{folder}}/{{key}}.npy")
            loaded = {{
                "skops": sio.load(f"{{folder}}/{{key}}.skops", trusted=trusted),
                "joblib": joblib.load(f"{{folder}}/{{key}}.joblib"),
            }}
            for how, model in loaded.items():
                np.save(f"{{folder}}/{{key}}-{{how}}.npy", model.predict_proba(X))
                model.predict(X)
        try:
            import torch  # noqa: F401
        except ModuleNotFoundError:
            print("ok")
        """
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"
    for key, proba in expected.items():
        for how in ("skops", "joblib"):
            loaded = np.load(tmp_path / f"{key}-{how}.npy")
            np.testing.assert_array_equal(loaded, proba, err_msg=f"{key} {how}")


def test_skops_round_trip_of_an_embedder_pipeline(tmp_path):
    """The embedder's settings persist, its model does not: the loaded pipeline
    reloads the backbone weights on first use."""
    sio = pytest.importorskip("skops.io")
    torch = pytest.importorskip("torch")
    torchvision = pytest.importorskip("torchvision")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        weights = tmp_path / "resnet18.pth"
        torch.save(torchvision.models.resnet18().state_dict(), weights)
    rng = np.random.RandomState(0)
    images = rng.randint(0, 256, size=(8, 32, 32, 3), dtype=np.uint8)
    y = np.repeat([0, 1], 4)
    embedder = skhsfm.BackboneEmbedder(
        "torchvision", model_name="resnet18", pretrained=str(weights), device="cpu"
    )
    # the pipeline as Pipeline.fit would leave it, with one pass of the backbone
    embeddings = embedder.fit(images).transform(images)
    pipe = Pipeline([("embed", embedder), ("clf", HEADS["erm"]().fit(embeddings, y))])
    expected = pipe[-1].predict_proba(embeddings)
    path = tmp_path / "pipe.skops"
    sio.dump(pipe, path)
    assert path.stat().st_size < weights.stat().st_size / 20  # no weights inside
    untrusted = sio.get_untrusted_types(file=path)
    assert sorted(untrusted) == sorted([class_path(embedder), class_path(pipe[-1])])
    loaded = sio.load(path, trusted=untrusted)
    assert loaded["embed"].get_params() == embedder.get_params()
    np.testing.assert_allclose(loaded.predict_proba(images), expected, atol=1e-6)


# --------------------------------------------------------------- version stamp


def test_fit_stamps_the_version():
    head = fitted("erm", 2)
    assert getattr(head, VERSION_KEY) == skhsfm.__version__
    assert isinstance(getattr(head, VERSION_KEY), str)
    assert issubclass(InconsistentVersionWarning, UserWarning)
    assert VERSION_KEY not in vars(ERMHeadClassifier())


def _other_version():
    """A version string of the installed one's length (so that it can be
    swapped into a pickle byte for byte)."""
    other = "9" * len(skhsfm.__version__)
    assert other != skhsfm.__version__
    return other


@pytest.mark.parametrize("name", HEADS)
def test_pickle_of_the_same_version_loads_silently(name):
    head = fitted(name, 2)
    with warnings.catch_warnings():
        warnings.simplefilter("error", InconsistentVersionWarning)
        loaded = pickle.loads(pickle.dumps(head))
    assert getattr(loaded, VERSION_KEY) == skhsfm.__version__


@pytest.mark.parametrize("name", HEADS)
def test_pickle_of_another_version_warns(name):
    data = pickle.dumps(fitted(name, 2))
    version = skhsfm.__version__.encode()
    assert data.count(version) == 1
    edited = data.replace(version, _other_version().encode())
    with pytest.warns(InconsistentVersionWarning) as record:
        loaded = pickle.loads(edited)
    warning = record[0].message
    assert warning.estimator_name == type(loaded).__name__
    assert warning.original_version == _other_version()
    assert warning.current_version == skhsfm.__version__
    assert f"fitted with skhsfm version {_other_version()}" in str(warning)
    # the stamp keeps telling the version the state comes from
    assert getattr(loaded, VERSION_KEY) == _other_version()


def test_joblib_file_of_another_version_warns(tmp_path):
    path = tmp_path / "head.joblib"
    joblib.dump(fitted("hsfm", 3), path)
    data = path.read_bytes()
    version = skhsfm.__version__.encode()
    assert data.count(version) == 1
    path.write_bytes(data.replace(version, _other_version().encode()))
    with pytest.warns(InconsistentVersionWarning, match="HSFMClassifier fitted"):
        joblib.load(path)


def test_skops_file_of_another_version_warns(tmp_path):
    sio = pytest.importorskip("skops.io")
    head = pickle.loads(pickle.dumps(fitted("dfr", 2)))
    setattr(head, VERSION_KEY, "0.0.1")
    path = tmp_path / "head.skops"
    sio.dump(head, path)
    with pytest.warns(InconsistentVersionWarning, match="version 0.0.1"):
        sio.load(path, trusted=[class_path(head)])


def test_state_without_a_stamp_warns_and_unfitted_state_does_not():
    state = fitted("afr", 2).__getstate__()
    del state[VERSION_KEY]
    with pytest.warns(InconsistentVersionWarning, match="unknown skhsfm version"):
        AFRClassifier().__setstate__(state)
    with warnings.catch_warnings():
        warnings.simplefilter("error", InconsistentVersionWarning)
        pickle.loads(pickle.dumps(AFRClassifier(gamma=3.0)))


def test_getstate_stamps_a_fitted_head_that_lacks_it():
    # e.g. a subclass whose fit does not go through BaseHead.fit
    head = pickle.loads(pickle.dumps(fitted("erm", 2)))
    delattr(head, VERSION_KEY)
    assert head.__getstate__()[VERSION_KEY] == skhsfm.__version__
    assert VERSION_KEY not in vars(head)  # the live object is left alone


# ------------------------------------------------------------ damaged files

DIGEST_KEY = "_skhsfm_digest"


def _flip_in(data, array, offset=3):
    """``data`` (bytes of a pickle or joblib file) with one bit flipped inside
    the stored bytes of ``array`` (its first copy: an HSFM that kept its
    initial head stores the same values as ``init_coef_`` too): a file that
    still unpickles."""
    needle = np.ascontiguousarray(array).tobytes()[:16]
    at = data.index(needle)
    damaged = bytearray(data)
    damaged[at + offset] ^= 0x01
    return bytes(damaged)


@pytest.mark.parametrize("name", HEADS)
def test_a_flipped_bit_in_a_pickle_is_an_error(name):
    head = fitted(name, 2)
    damaged = _flip_in(pickle.dumps(head), head.coef_)
    with pytest.raises(
        pickle.UnpicklingError, match=f"saved {type(head).__name__} is damaged"
    ):
        pickle.loads(damaged)


@pytest.mark.parametrize("name", HEADS)
def test_a_flipped_bit_in_a_joblib_file_is_an_error(name, tmp_path):
    head = fitted(name, 3)
    path = tmp_path / "head.joblib"
    joblib.dump(head, path)
    path.write_bytes(_flip_in(path.read_bytes(), head.intercept_))
    with pytest.raises(pickle.UnpicklingError, match="do not match the digest"):
        joblib.load(path)


def test_damage_outside_the_arrays_is_caught():
    head = fitted("hsfm", 2)
    data = pickle.dumps(head)

    # a scalar attribute: the selected epoch's score
    def binfloat(value):  # how pickle stores a float: opcode G, 8 bytes
        return b"G" + struct.pack(">d", value)

    score = binfloat(head.best_score_)
    at = data.index(score, data.index(b"best_score_"))  # the value after its name
    edited = data[:at] + binfloat(head.best_score_ / 2) + data[at + len(score) :]
    with pytest.raises(pickle.UnpicklingError, match="damaged"):
        pickle.loads(edited)
    # the name of an attribute
    assert data.count(b"best_epoch_") == 1
    with pytest.raises(pickle.UnpicklingError, match="damaged"):
        pickle.loads(data.replace(b"best_epoch_", b"best_epoch2"))


@pytest.mark.parametrize("name", HEADS)
def test_intact_files_load_silently_and_keep_no_digest(name, tmp_path):
    head = fitted(name, 3)
    path = tmp_path / "head.joblib"
    joblib.dump(head, path)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        loaded = joblib.load(path)
        again = pickle.loads(pickle.dumps(loaded))
    assert DIGEST_KEY not in vars(loaded) and DIGEST_KEY not in vars(again)
    np.testing.assert_array_equal(loaded.decision_function(make_data(3)[0]),
                                  head.decision_function(make_data(3)[0]))  # fmt: skip
    assert isinstance(head.__getstate__()[DIGEST_KEY], str)
    assert DIGEST_KEY not in HEADS[name]().__getstate__()  # unfitted: no digest


def test_files_without_a_digest_still_load():
    state = fitted("dfr", 2).__getstate__()
    del state[DIGEST_KEY]
    state[VERSION_KEY] = "0.0.9"  # as an older release wrote it: no digest
    with pytest.warns(InconsistentVersionWarning, match="version 0.0.9") as record:
        DFRClassifier().__setstate__(state)
    assert len(record) == 1
    state[VERSION_KEY] = skhsfm.__version__  # this version always writes one
    with pytest.warns(UserWarning, match="no digest of its contents"):
        DFRClassifier().__setstate__(state)


def test_an_edited_skops_file_is_refused(tmp_path):
    # the zip's CRC catches flipped bytes; an archive rewritten with other
    # values (valid CRC) is caught by the digest
    sio = pytest.importorskip("skops.io")
    import io
    import zipfile

    head = fitted("erm", 2)
    path, edited = tmp_path / "head.skops", tmp_path / "edited.skops"
    sio.dump(head, path)
    with zipfile.ZipFile(path) as src, zipfile.ZipFile(edited, "w") as dst:
        changed = 0
        for info in src.infolist():
            data = src.read(info)
            if info.filename.endswith(".npy"):
                array = np.load(io.BytesIO(data))
                if array.shape == head.coef_.shape and np.array_equal(
                    array, head.coef_
                ):
                    buffer = io.BytesIO()
                    np.save(buffer, array * 1.5)
                    data, changed = buffer.getvalue(), changed + 1
            dst.writestr(info, data)
    assert changed == 1
    with pytest.raises(pickle.UnpicklingError, match="damaged"):
        sio.load(edited, trusted=[class_path(head)])
    loaded = sio.load(path, trusted=[class_path(head)])  # the intact file
    np.testing.assert_array_equal(loaded.coef_, head.coef_)


# --------------------------------------------------------------- compact state


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_hsfm_support_arrays_keep_the_input_dtype(dtype):
    X, y, g = make_data(2, dtype=dtype)
    head = HEADS["hsfm"]().fit(X, y, g)
    assert head.support_init_.dtype == head.support_edited_.dtype == dtype
    assert head.coef_.dtype == np.float64


@pytest.mark.parametrize("name", ["hsfm", "afr"])
def test_histories_are_numpy_arrays(name):
    history = fitted(name, 2).history_
    assert all(isinstance(v, np.ndarray) for v in history.values())


def test_dfr_keeps_per_model_arrays_only_on_request():
    X, y, g = make_data(2)
    compact = DFRClassifier(n_models=4, random_state=0).fit(X, y, g)
    full = DFRClassifier(n_models=4, random_state=0, store_models=True).fit(X, y, g)
    np.testing.assert_array_equal(compact.coef_, full.coef_)
    np.testing.assert_array_equal(compact.intercept_, full.intercept_)
    assert full.coefs_.shape == (4, 1, 6) and full.intercepts_.shape == (4, 1)
    assert full.subsample_indices_.shape[0] == 4
    for name in ("coefs_", "intercepts_", "subsample_indices_"):
        assert not hasattr(compact, name)
        with pytest.raises(AttributeError, match="store_models=True"):
            getattr(compact, name)
    with pytest.raises(AttributeError, match="no attribute 'not_there_'"):
        compact.not_there_  # noqa: B018
    assert len(pickle.dumps(compact)) < len(pickle.dumps(full))
    # a refit without store_models drops the arrays of the earlier fit
    full.set_params(store_models=False).fit(X, y, g)
    assert not hasattr(full, "coefs_")


# ------------------------------------------------------------------------ ONNX


def _onnx_session(model, X):
    skl2onnx = pytest.importorskip("skl2onnx")
    rt = pytest.importorskip("onnxruntime")
    onx = skl2onnx.to_onnx(model, X[:1], options={"zipmap": False})
    return rt.InferenceSession(
        onx.SerializeToString(), providers=["CPUExecutionProvider"]
    )


@pytest.mark.parametrize("name, n_classes", CASES, ids=CASE_IDS)
def test_onnx_export_through_to_sklearn(name, n_classes):
    head = fitted(name, n_classes)
    X = make_data(n_classes, dtype=np.float32)[0]
    session = _onnx_session(head.to_sklearn(), X)
    labels, proba = session.run(None, {session.get_inputs()[0].name: X})
    np.testing.assert_array_equal(labels, head.predict(X))
    np.testing.assert_allclose(proba, head.predict_proba(X), rtol=0, atol=1e-5)


def test_onnx_file_is_small():
    skl2onnx = pytest.importorskip("skl2onnx")
    X = make_data(3, dtype=np.float32)[0]
    onx = skl2onnx.to_onnx(fitted("hsfm", 3).to_sklearn(), X[:1])
    assert len(onx.SerializeToString()) < 5_000  # a linear model
