"""skhsfm on Dask and Ray: sharded embedding and model selection.

Runs on one machine: a session ``LocalCluster(n_workers=2,
threads_per_worker=1)`` and ``ray.init(num_cpus=2)`` (tests/conftest.py),
whose worker processes import this checkout. Skipped when dask or ray are not
installed.
"""

import os

import numpy as np
import pytest
import sklearn
from sklearn.model_selection import GridSearchCV

from skhsfm import HSFMClassifier
from skhsfm.distributed import embed_dask, embed_ray, with_config
from skhsfm.embedding import BackboneEmbedder
from skhsfm.metrics import make_groups, worst_group_scorer
from skhsfm.model_selection import GroupStratifiedKFold

pytestmark = pytest.mark.distributed

torch = pytest.importorskip("torch")
Image = pytest.importorskip("PIL.Image")
_workers = pytest.importorskip("_workers")  # tests/_workers.py


def _images(n=24, size=16, seed=0):
    rng = np.random.RandomState(seed)
    return rng.randint(0, 256, size=(n, size, size, 3)).astype(np.uint8)


@pytest.fixture(scope="module")
def image_files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("images")
    paths = []
    for i, array in enumerate(_images()):
        path = folder / f"img{i:02d}.png"
        Image.fromarray(array).save(path)
        paths.append(str(path))
    return paths


def _embedder(tmp_path, seed, **params):
    log = tmp_path / f"loads-{seed}.log"
    net = _workers.LoggedNet(log, seed=seed)
    return BackboneEmbedder(net, device="cpu", **params), str(log)


# ------------------------------------------------------------------ Dask


def _skhsfm_file():
    import skhsfm

    return skhsfm.__file__


def test_workers_import_this_checkout(dask_client, ray_session):
    here = _skhsfm_file()
    assert set(dask_client.run(_skhsfm_file).values()) == {here}
    assert ray_session.get(ray_session.remote(_skhsfm_file).remote()) == here


def test_embed_dask_equals_transform_with_one_load_per_worker(
    dask_client, image_files, tmp_path
):
    da = pytest.importorskip("dask.array")
    embedder, log = _embedder(tmp_path, seed=1, batch_size=4)
    pids = set(dask_client.run(os.getpid).values())
    lazy = embed_dask(embedder, image_files, chunk_size=4)  # 6 tasks
    assert isinstance(lazy, da.Array)
    assert lazy.shape == (24, 4) and lazy.dtype == np.float32
    out = lazy.compute()
    expected = BackboneEmbedder(
        _workers.LoggedNet(tmp_path / "local.log", seed=1), device="cpu", batch_size=4
    ).transform(image_files)
    # one chunk per batch of the local transform: the same computation
    np.testing.assert_array_equal(out, expected)
    loads = _workers.loads_per_process(log)
    assert set(loads) <= {str(p) for p in pids}  # loaded only in the workers
    assert set(loads.values()) == {1}  # once per worker, not once per task
    # a second computation reuses the loaded model
    np.testing.assert_array_equal(lazy.compute(), expected)
    assert _workers.loads_per_process(log) == loads


def test_embed_dask_inputs(dask_client, image_files, tmp_path):
    db = pytest.importorskip("dask.bag")
    da = pytest.importorskip("dask.array")
    embedder, _ = _embedder(tmp_path, seed=2, batch_size=5)
    expected = embed_dask(embedder, image_files, chunk_size=5).compute()
    bag = db.from_sequence(image_files, npartitions=3)
    np.testing.assert_allclose(
        embed_dask(embedder, bag).compute(), expected, rtol=1e-5, atol=1e-6
    )
    paths = da.from_array(np.array(image_files, dtype=object), chunks=7)
    np.testing.assert_allclose(
        embed_dask(embedder, paths).compute(), expected, rtol=1e-5, atol=1e-6
    )
    stack = _images()
    from_stack = embed_dask(embedder, stack, chunk_size=5).compute()
    np.testing.assert_allclose(from_stack, expected, rtol=1e-5, atol=1e-6)
    dask_stack = da.from_array(stack, chunks=(10, 8, 16, 3))
    np.testing.assert_allclose(
        embed_dask(embedder, dask_stack).compute(), from_stack, rtol=1e-5, atol=1e-6
    )


def test_embed_dask_shards_fill_one_cache(dask_client, image_files, tmp_path):
    embedder, log = _embedder(tmp_path, seed=3, memory=tmp_path / "cache")
    sharded = embed_dask(embedder, image_files, chunk_size=6).compute()
    # the full list in this process is served by the workers' entries
    full = embedder.transform(image_files)
    np.testing.assert_array_equal(full, sharded)
    assert str(os.getpid()) not in _workers.loads_per_process(log)


def test_embed_dask_errors(dask_client, tmp_path):
    embedder, _ = _embedder(tmp_path, seed=4)
    with pytest.raises(ValueError, match="chunk_size must be an int >= 1"):
        embed_dask(embedder, ["a.png"], chunk_size=0)
    with pytest.raises(ValueError, match="empty"):
        embed_dask(embedder, [])
    with pytest.raises(TypeError, match="BackboneEmbedder"):
        embed_dask("resnet18", ["a.png"])
    with pytest.raises(TypeError, match="collection of images"):
        embed_dask(embedder, "a.png")


# ------------------------------------------------------------------ Ray


def test_embed_ray_equals_transform_in_order_one_load_per_actor(
    ray_session, image_files, tmp_path
):
    embedder, log = _embedder(tmp_path, seed=5, batch_size=3)
    dataset = embed_ray(embedder, image_files, batch_size=3, num_actors=2)
    rows = dataset.take_all()
    assert [row["path"] for row in rows] == image_files  # input order
    out = np.stack([row["embedding"] for row in rows])
    expected = BackboneEmbedder(
        _workers.LoggedNet(tmp_path / "local.log", seed=5), device="cpu", batch_size=3
    ).transform(image_files)
    np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-6)
    loads = _workers.loads_per_process(log)
    assert 1 <= len(loads) <= 2 and set(loads.values()) == {1}  # one per actor
    assert str(os.getpid()) not in loads

    # an existing Dataset whose column holds image arrays (one actor)
    stack = _images()
    dataset = ray_session.data.from_items(
        [{"id": i, "picture": a} for i, a in enumerate(stack)], override_num_blocks=4
    )
    named = embed_ray(embedder, dataset, column="picture", num_actors=1).take_all()
    assert [row["id"] for row in named] == list(range(24))
    from_arrays = np.stack([row["embedding"] for row in named])
    direct = embedder.transform(stack)
    np.testing.assert_allclose(from_arrays, direct, rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="pass column="):
        embed_ray(embedder, dataset.add_column("x", lambda b: b["id"]))


# ------------------------------------------------------- model selection

FAST_HSFM = dict(
    n_epochs=2,
    support_size=8,
    hard_size=8,
    inner_steps=3,
    outer_steps=2,
    device="cpu",
    random_state=0,
)


def _search_data():
    rng = np.random.RandomState(0)
    n = 120
    y = rng.randint(0, 2, n)
    attribute = np.where(rng.rand(n) < 0.85, y, 1 - y)
    X = 0.6 * rng.randn(n, 6)
    X[:, 0] += 2 * y - 1
    X[:, 1] += 2.0 * (2 * attribute - 1)
    return X, y, make_groups(y, attribute)


def _search():
    return GridSearchCV(
        HSFMClassifier(**FAST_HSFM),
        {"inner_lr": [1e-3, 1e-2]},
        scoring={"wga": worst_group_scorer, "acc": "accuracy"},
        refit="wga",
        cv=GroupStratifiedKFold(n_splits=3, shuffle=True, random_state=0),
        n_jobs=2,
    )


def _comparable(results):
    return {k: v for k, v in results.items() if not k.endswith("_time")}


@pytest.fixture(scope="module")
def loky_results():
    X, y, groups = _search_data()
    with sklearn.config_context(enable_metadata_routing=True):
        return _comparable(_search().fit(X, y, groups=groups).cv_results_)


def _assert_same_results(results, expected):
    assert results.keys() == expected.keys()
    for key in expected:
        if key == "params":
            assert results[key] == expected[key]
        else:
            np.testing.assert_array_equal(np.asarray(results[key]), expected[key])


def test_dask_search_equals_loky(dask_client, loky_results):
    import joblib

    X, y, groups = _search_data()
    with sklearn.config_context(enable_metadata_routing=True):
        with joblib.parallel_backend("dask"):
            search = _search().fit(X, y, groups=groups)
    _assert_same_results(_comparable(search.cv_results_), loky_results)


def test_ray_search_equals_loky(ray_session, loky_results):
    import joblib
    from ray.util.joblib import register_ray

    register_ray()
    X, y, groups = _search_data()
    with sklearn.config_context(enable_metadata_routing=True):
        with joblib.parallel_backend("ray"):
            search = _search().fit(X, y, groups=groups)
    _assert_same_results(_comparable(search.cv_results_), loky_results)


def test_hand_submitted_search_needs_the_routing_config(dask_client, loky_results):
    X, y, groups = _search_data()
    search = _search().set_params(n_jobs=1)
    with sklearn.config_context(enable_metadata_routing=True):
        plain = dask_client.submit(search.fit, X, y, groups=groups)
        wrapped = dask_client.submit(with_config(search.fit), X, y, groups=groups)
    with pytest.raises(Exception, match="enable_metadata_routing"):
        plain.result()  # the worker runs with its own (default) configuration
    _assert_same_results(_comparable(wrapped.result().cv_results_), loky_results)
