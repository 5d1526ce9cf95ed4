"""Lazy inputs (dask arrays, numpy memmaps): read only where rows are needed.

Every head fits a lazy ``X`` (and ``X_val``) exactly as the same data in
memory with the same ``max_samples``; predictions on a dask array stay lazy;
a lazy fit's extra peak memory stays far below the size of ``X`` (measured in
a subprocess).
"""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from skhsfm import HSFMClassifier
from skhsfm._utils.lazy import LazyRows, iter_row_blocks, read_rows
from skhsfm.baselines import AFRClassifier, DFRClassifier, ERMHeadClassifier

da = pytest.importorskip("dask.array")
dask = pytest.importorskip("dask")

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

FAST_HSFM = dict(n_epochs=3, support_size=8, hard_size=16, inner_steps=3, outer_steps=2)


def _data(n, d=8, corr=0.9, seed=0, dtype=np.float32):
    rng = np.random.RandomState(seed)
    y = rng.randint(0, 2, n)
    a = np.where(rng.rand(n) < corr, y, 1 - y)
    X = rng.normal(size=(n, d))
    X[:, 0] += 2 * y - 1
    X[:, 1] += 2.0 * (2 * a - 1)
    return X.astype(dtype), y, 2 * y + a


@pytest.fixture(scope="module")
def problem():
    return _data(1500, seed=0), _data(400, corr=0.5, seed=1)


def _heads(max_samples):
    return {
        "hsfm": HSFMClassifier(
            max_samples=max_samples, device="cpu", random_state=0, **FAST_HSFM
        ),
        "dfr": DFRClassifier(n_models=3, random_state=0),
        "afr": AFRClassifier(
            gamma=(1.0, 4.0),
            reg_lambda=(0.0, 0.1),
            n_epochs=20,
            max_samples=max_samples,
            device="cpu",
            random_state=0,
        ),
        "erm": ERMHeadClassifier(max_samples=max_samples, random_state=0),
    }


def _fitted_state(head):
    keys = ("coef_", "intercept_", "init_coef_", "support_init_", "scale_")
    return {k: np.asarray(getattr(head, k)) for k in keys if hasattr(head, k)}


@pytest.mark.parametrize("held_out", ["X_val", "holdout"])
@pytest.mark.parametrize("max_samples", [None, 700])
@pytest.mark.parametrize("name", ["hsfm", "dfr", "afr", "erm"])
def test_lazy_fit_equals_in_memory_fit(problem, name, max_samples, held_out):
    (X, y, g), (Xv, yv, gv) = problem
    lazy_X = da.from_array(X, chunks=(256, 8))
    if held_out == "X_val":
        kwargs = dict(X_val=Xv, y_val=yv, groups_val=gv)
        lazy_kwargs = dict(kwargs, X_val=da.from_array(Xv, chunks=(100, 4)))
    else:
        kwargs = lazy_kwargs = {}
    eager = _heads(max_samples)[name].fit(X, y, g, **kwargs)
    lazy = _heads(max_samples)[name].fit(lazy_X, y, g, **lazy_kwargs)
    expected, got = _fitted_state(eager), _fitted_state(lazy)
    assert expected.keys() == got.keys()
    for key in expected:
        np.testing.assert_array_equal(got[key], expected[key], err_msg=key)
    assert lazy.n_features_in_ == 8


def test_memmap_fits_like_memory(problem, tmp_path):
    (X, y, g), (Xv, yv, gv) = problem
    path = tmp_path / "X.dat"
    mm = np.memmap(path, dtype=np.float32, mode="w+", shape=X.shape)
    mm[:] = X
    mm.flush()
    mm = np.memmap(path, dtype=np.float32, mode="r", shape=X.shape)
    for name in ("hsfm", "dfr", "erm"):
        eager = _heads(600)[name].fit(X, y, g, X_val=Xv, y_val=yv, groups_val=gv)
        lazy = _heads(600)[name].fit(mm, y, g, X_val=Xv, y_val=yv, groups_val=gv)
        np.testing.assert_array_equal(lazy.coef_, eager.coef_)


def test_auto_sample_reads_a_bounded_share_of_lazy_X(problem, monkeypatch):
    from skhsfm._utils import lazy as _lazy

    (X, y, g), (Xv, yv, gv) = problem
    monkeypatch.setattr(_lazy, "LAZY_SAMPLE_BYTES", 300 * 8 * 4)
    monkeypatch.setattr(_lazy, "MIN_AUTO_SAMPLE", 300)
    lazy = da.from_array(X, chunks=(256, 8))
    erm = ERMHeadClassifier(random_state=0).fit(lazy, y)  # "auto": 300 rows
    same = ERMHeadClassifier(max_samples=300, random_state=0).fit(X, y)
    np.testing.assert_array_equal(erm.coef_, same.coef_)
    every = ERMHeadClassifier().fit(X, y)  # in memory, "auto" is every row
    np.testing.assert_array_equal(
        every.coef_, ERMHeadClassifier(max_samples=None).fit(X, y).coef_
    )


def test_predictions_on_dask_stay_lazy(problem):
    (X, y, g), (Xv, yv, gv) = problem
    lazy = da.from_array(Xv, chunks=(100, 4))
    three = np.r_[y[:1000], np.full(500, 2)]
    heads = [
        ERMHeadClassifier().fit(X, y),
        ERMHeadClassifier().fit(X, three),  # three classes
        HSFMClassifier(device="cpu", random_state=0, **FAST_HSFM).fit(X, y, g),
    ]
    for head in heads:
        for method in (
            "decision_function",
            "predict",
            "predict_proba",
            "predict_log_proba",
        ):
            out = getattr(head, method)(lazy)
            assert isinstance(out, da.Array), method
            np.testing.assert_allclose(
                out.compute(), getattr(head, method)(Xv), rtol=1e-12, err_msg=method
            )
    with pytest.raises(ValueError, match="has 3 features, but"):
        heads[0].predict(lazy[:, :3])


def test_lazy_errors(problem):
    (X, y, g), (Xv, yv, gv) = problem
    bad = X.copy()
    bad[1234, 3] = np.nan
    with pytest.raises(ValueError, match="X contains NaN or inf"):
        ERMHeadClassifier(max_samples=None).fit(da.from_array(bad, chunks=256), y)
    with pytest.raises(ValueError, match="X_val does not match X"):
        DFRClassifier(n_models=2).fit(
            X, y, g, X_val=da.from_array(Xv[:, :5]), y_val=yv, groups_val=gv
        )
    unknown = da.from_array(X, chunks=(256, 8))
    unknown = unknown[unknown[:, 0] > -100]  # unknown chunk sizes
    with pytest.raises(ValueError, match="compute_chunk_sizes"):
        ERMHeadClassifier().fit(unknown, y)
    with pytest.raises(ValueError, match="y has 10 entries but X has 1500 rows"):
        ERMHeadClassifier().fit(da.from_array(X), y[:10])


def test_read_rows_one_pass_for_several_requests():
    rng = np.random.RandomState(0)
    X = rng.normal(size=(1000, 5))
    lazy = LazyRows(da.from_array(X, chunks=(97, 5)))
    index = np.arange(3, 990, 3)
    pool = lazy[index]
    rows = [np.array([5, 1, 5, 300]), None, np.zeros(0, dtype=int)]
    got = read_rows([(pool, r) for r in rows] + [(X, np.array([2, 0]))])
    np.testing.assert_array_equal(got[0], X[index][[5, 1, 5, 300]])
    np.testing.assert_array_equal(got[1], X[index])
    assert got[2].shape == (0, 5)
    np.testing.assert_array_equal(got[3], X[[2, 0]])
    # streamed blocks are the blocks of the same rows in memory
    blocks = list(iter_row_blocks(pool, 50))
    expected = list(iter_row_blocks(X[index], 50))
    assert [b.shape for b in blocks] == [b.shape for b in expected]
    for b, e in zip(blocks, expected):
        np.testing.assert_array_equal(b, e)


_MEMORY_CHILD = r"""
import json, resource, sys
import numpy as np
import dask, dask.array as da
from dask import delayed
import torch
from skhsfm import HSFMClassifier
from skhsfm.baselines import DFRClassifier

n, d, head = json.loads(sys.argv[1])
dask.config.set(scheduler="synchronous")
rng = np.random.RandomState(0)
y = rng.randint(0, 2, n)
groups = 2 * y + np.where(rng.rand(n) < 0.9, y, 1 - y)

def block(start, stop):
    x = np.random.default_rng(start).standard_normal((stop - start, d),
                                                     dtype=np.float32)
    x[:, 0] += 2 * y[start:stop] - 1
    return x

chunk = 4096
X = da.concatenate([
    da.from_delayed(delayed(block)(s, min(s + chunk, n)),
                    shape=(min(s + chunk, n) - s, d), dtype=np.float32)
    for s in range(0, n, chunk)])
yv = rng.randint(0, 2, 1000)
gv = 2 * yv + rng.randint(0, 2, 1000)
Xv = np.random.default_rng(1).standard_normal((1000, d), dtype=np.float32)
# torch's and dask's one-time start-up before the baseline
torch.ones(8, 8) @ torch.ones(8, 8)
da.ones((4, 4), chunks=2)[[0, 3]].compute()
if head == "hsfm":
    est = HSFMClassifier(n_epochs=2, max_samples=8000, device="cpu", random_state=0)
else:
    est = DFRClassifier(n_models=2, Cs=(1.0,), random_state=0)
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
est.fit(X, y, groups, X_val=Xv, y_val=yv, groups_val=gv)
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"extra": after - before, "size": n * d * 4 / 2**20}))
"""


@pytest.mark.parametrize("head", ["hsfm", "dfr"])
def test_lazy_fit_extra_memory_is_bounded(head):
    """A 256 MiB lazy X: the fit reads a sample (HSFM) or streams it (DFR)."""
    env = dict(os.environ, PYTHONPATH=ROOT, OMP_NUM_THREADS="1")
    out = subprocess.run(
        [sys.executable, "-c", _MEMORY_CHILD, json.dumps([131072, 512, head])],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["size"] == 256
    # the whole X would be 256 MiB (512 MiB as float64); what the fit holds
    # is its sample or a few 8 MiB chunks, the hard pool and the head's work
    assert result["extra"] < 96, result
