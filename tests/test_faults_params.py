"""Fault injection: the scale of ``X``, combinations of parameters and
grid-valued parameters, for every head (issue 23, classes 1-3).

- Every head gives the same predictions for ``X`` and ``c * X``
  (``c`` from 1e-12 to 1e12, float32 or float64), and refuses all-zero ``X``.
- Parameter combinations are checked by ``fit`` before any work, naming the
  parameters: ``init_intercept`` without ``init_coef``, ``max_samples`` that
  cannot hold every class.
- Grid-valued parameters are checked entry by entry, naming the parameter and
  the entry, never with numpy's "could not convert string to float".
"""

import warnings

import numpy as np
import pytest

import skhsfm._base
from skhsfm import HSFMClassifier
from skhsfm.baselines import (
    AFRClassifier,
    DFRClassifier,
    DPEClassifier,
    ERMHeadClassifier,
)
from skhsfm.datasets import make_spurious_embeddings

HEADS = {
    "erm": lambda **kw: ERMHeadClassifier(**kw),
    "dfr": lambda **kw: DFRClassifier(n_models=3, random_state=0, **kw),
    "afr": lambda **kw: AFRClassifier(n_epochs=30, device="cpu", random_state=0, **kw),
    "hsfm": lambda **kw: HSFMClassifier(n_epochs=3, device="cpu", random_state=0, **kw),
}
#: Heads with ``max_samples`` (a logistic regression fit on drawn rows).
DRAWING = ("erm", "afr", "hsfm")
#: Heads that start from an initial head (``init_coef``, ``init_intercept``).
INITIALIZED = ("afr", "hsfm")


@pytest.fixture(scope="module")
def data():
    X, y, _, g = make_spurious_embeddings(300, 8, split="train", random_state=0)
    X_val, y_val, _, g_val = make_spurious_embeddings(
        120, 8, split="val", random_state=1
    )
    X_test, _, _, _ = make_spurious_embeddings(200, 8, split="test", random_state=2)
    return X, y, g, X_val, y_val, g_val, X_test


def _fit(head, X, data, X_val=None):
    _, y, g, X_val0, y_val, g_val, _ = data
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return head.fit(
            X,
            y,
            g,
            X_val=X_val0 if X_val is None else X_val,
            y_val=y_val,
            groups_val=g_val,
        )


@pytest.fixture(scope="module")
def reference(data):
    """Each head fitted on the data as they are."""
    X, X_val = data[0], data[3]
    return {name: _fit(make(), X, data, X_val) for name, make in HEADS.items()}


# ------------------------------------------------------------------ 1. scale


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("factor", [1e-12, 1e-6, 1e6, 1e12])
@pytest.mark.parametrize("name", list(HEADS))
def test_every_head_predicts_the_same_at_any_scale(
    data, reference, name, factor, dtype
):
    X, X_val, X_test = data[0], data[3], data[6]
    ref = reference[name]
    head = _fit(
        HEADS[name](),
        (X * factor).astype(dtype),
        data,
        (X_val * factor).astype(dtype),
    )
    pred = head.predict((X_test * factor).astype(dtype))
    expected = ref.predict(X_test)
    # the same fit up to rounding: the same labels but for rows on the boundary
    assert np.mean(pred == expected) >= 0.99
    assert len(np.unique(pred)) == 2  # not collapsed onto one class
    coef = head.coef_ * factor  # back in the units of X
    np.testing.assert_allclose(
        coef, ref.coef_, rtol=1e-3, atol=1e-3 * np.abs(ref.coef_).max()
    )


@pytest.mark.parametrize("factor", [1e-300, 1e300])
@pytest.mark.parametrize("name", ["erm", "dfr", "afr"])
def test_float64_heads_work_at_the_ends_of_float64(data, reference, name, factor):
    # sums of squares over/underflow there: the statistics must be taken in
    # another unit, without touching the caller's arrays
    X, X_val, X_test = data[0] * factor, data[3] * factor, data[6] * factor
    copies = X.copy(), X_val.copy()
    head = _fit(HEADS[name](), X, data, X_val)
    np.testing.assert_array_equal(X, copies[0])
    np.testing.assert_array_equal(X_val, copies[1])
    expected = reference[name].predict(data[6])
    assert np.mean(head.predict(X_test) == expected) >= 0.99


@pytest.mark.parametrize("factor", [1e-300, 1e300])
def test_hsfm_refuses_what_float32_cannot_hold(data, factor):
    X, X_val = data[0] * factor, data[3] * factor
    with pytest.raises(ValueError, match="trains in float32.*Multiply X"):
        _fit(HEADS["hsfm"](), X, data, X_val)


def test_subnormal_embeddings_are_refused(data):
    X = data[0] * 1e-310
    with pytest.raises(ValueError, match="X has entries of size .* too extreme"):
        _fit(HEADS["erm"](), X, data)


@pytest.mark.parametrize("name", list(HEADS))
def test_all_zero_embeddings_are_refused(data, name):
    X, X_val = data[0], data[3]
    with pytest.raises(ValueError, match="all zeros"):
        _fit(HEADS[name](), np.zeros_like(X), data, np.zeros_like(X_val))


def _dpe():
    return DPEClassifier(n_members=2, n_epochs=3, device="cpu", random_state=0)


@pytest.mark.parametrize(
    "factor, dtype",
    [
        (1e-12, np.float64),
        (1e12, np.float64),
        (1e-12, np.float32),
        # the row norm under/overflowed float64 there (and the 1e-12 norm
        # floor zeroed every row below it) before rows were taken over their
        # largest entry
        (1e-300, np.float64),
        (1e300, np.float64),
    ],
)
def test_dpe_predicts_the_same_at_any_scale(data, factor, dtype):
    # DPE's heads see unit rows: no coef_ to fold a scale into, the same fit
    X, X_val, X_test = data[0], data[3], data[6]
    ref = _fit(_dpe(), X, data, X_val)

    def scaled(A):
        return (A * factor).astype(dtype)

    head = _fit(_dpe(), scaled(X), data, scaled(X_val))
    assert np.mean(head.predict(scaled(X_test)) == ref.predict(X_test)) >= 0.99
    np.testing.assert_allclose(head.prototypes_, ref.prototypes_, atol=1e-4)


def test_dpe_refuses_all_zero_embeddings(data):
    X, X_val = data[0], data[3]
    with pytest.raises(ValueError, match="X_val is all zeros"):
        _fit(_dpe(), np.zeros_like(X), data, np.zeros_like(X_val))


@pytest.mark.parametrize("name", DRAWING)
def test_rescale_false_fits_x_as_given(data, reference, name):
    X = data[0]
    head = _fit(HEADS[name](rescale=False), X, data)
    assert head.scale_ == 1.0
    assert reference[name].scale_ == pytest.approx(np.sqrt(X.size / np.sum(X**2)))


# ------------------------------------------------------- 2. combinations


@pytest.mark.parametrize("name", INITIALIZED)
def test_init_intercept_without_init_coef_is_an_error(data, name):
    head = HEADS[name](init_intercept=[0.5])
    with pytest.raises(ValueError, match="init_intercept was given without init_coef"):
        _fit(head, data[0], data)


@pytest.mark.parametrize("name", DRAWING)
@pytest.mark.parametrize("max_samples", [0, 1])
def test_max_samples_below_two_classes_is_refused(data, name, max_samples):
    with pytest.raises(ValueError, match=r"max_samples.*range \[2, inf\)"):
        _fit(HEADS[name](max_samples=max_samples), data[0], data)


@pytest.mark.parametrize("name", DRAWING)
def test_a_draw_that_misses_a_class_names_max_samples(name):
    # three classes, the third with 2 rows of 302: a draw of 5 rows misses it
    rng = np.random.RandomState(0)
    y = np.r_[np.zeros(150, int), np.ones(150, int), [2, 2]]
    X = rng.normal(size=(302, 4)) + y[:, None]
    X_val, y_val = rng.normal(size=(30, 4)), np.arange(30) % 3
    head = HEADS[name](max_samples=5)
    with pytest.raises(
        ValueError, match=r"max_samples=5 drew 5 of the 302 rows.*\[2\]"
    ):
        head.fit(X, y, X_val=X_val + y_val[:, None], y_val=y_val)


def _no_work(*args, **kwargs):
    raise AssertionError("fit started working before checking its parameters")


@pytest.mark.parametrize(
    "name, params, message",
    [
        ("afr", dict(reg_lambda=["a"]), r"reg_lambda\[0\] is 'a'"),
        ("afr", dict(gamma=[1.0, "x"]), r"gamma\[1\] is 'x'"),
        ("afr", dict(gamma=[1.0, np.nan]), r"gamma\[1\] is nan"),
        ("afr", dict(gamma=[]), "gamma must be a float >= 0"),
        ("afr", dict(reg_lambda=[0.1, -1]), r"reg_lambda\[1\] is -1"),
        ("afr", dict(reg_lambda=[[0.1], 0.2]), r"reg_lambda\[0\] is \[0.1\]"),
        ("dfr", dict(Cs=["0.1", "x"]), r"Cs\[0\] is '0.1' \(str\)"),
        ("dfr", dict(Cs=[1.0, None]), r"Cs\[1\] is None"),
        ("dfr", dict(Cs=[1.0, 0.0]), r"Cs must be a float > 0.*Cs\[1\] is 0.0"),
        ("dfr", dict(Cs=[True]), r"Cs\[0\] is True \(bool\)"),
        ("hsfm", dict(init_coef=[["a"] * 8]), "init_coef must hold only numbers"),
        ("afr", dict(init_coef=[[1.0] * 8], init_intercept=["b"]), "init_intercept"),
        ("hsfm", dict(init_coef=[[1.0] * 8, [1.0]]), "init_coef must be a rectangular"),
    ],
)
def test_bad_parameters_are_named_before_any_work(
    data, monkeypatch, name, params, message
):
    monkeypatch.setattr(skhsfm._base, "fit_pools", _no_work)
    with pytest.raises(ValueError, match=message) as info:
        _fit(HEADS[name](**params), data[0], data)
    assert "could not convert" not in str(info.value)
    assert isinstance(info.value, TypeError)  # InvalidParameterError is both


def test_numeric_grids_still_work(data):
    X = data[0]
    afr = _fit(HEADS["afr"](gamma=np.array([1, 2]), reg_lambda=0), X, data)
    assert afr.best_gamma_ in (1.0, 2.0) and afr.best_lambda_ == 0.0
    dfr = _fit(HEADS["dfr"](Cs=[np.float32(1.0), 2]), X, data)
    assert dfr.best_C_ in (1.0, 2.0)


@pytest.mark.parametrize("factor", [1e-300, 1e-12, 1e12, 1e300])
def test_self_predicts_the_same_at_any_scale(data, factor):
    # SELF's unit scaling took each feature's standard deviation in the units
    # of X: squares overflowed at 1e300, and at 1e-300 every feature fell
    # under the constant-feature threshold (63% of the predictions kept)
    from skhsfm.baselines import SELFClassifier

    def make():
        return SELFClassifier(
            n_selected=(10, 40), learning_rate=(1.0, 10.0), n_steps=50, random_state=0
        )

    X, X_val, X_test = data[0], data[3], data[6]
    ref = _fit(make(), X, data, X_val)
    head = _fit(make(), X * factor, data, X_val * factor)
    assert np.mean(head.predict(X_test * factor) == ref.predict(X_test)) >= 0.99
