"""Fixtures shared by several test modules."""

import json
import os

import pytest

#: Name and config of a tiny random-weight CLIP registered with open_clip at test
#: time (nothing is downloaded).
TINY_CLIP = "skhsfm-test-tiny-vit"
TINY_CLIP_CFG = {
    "embed_dim": 32,
    "vision_cfg": {"image_size": 32, "layers": 2, "width": 64, "patch_size": 8},
    # vocab_size stays at CLIP's 49408: the bundled tokenizer emits those ids.
    "text_cfg": {
        "context_length": 16,
        "vocab_size": 49408,
        "width": 32,
        "heads": 2,
        "layers": 1,
    },
}


@pytest.fixture(scope="session")
def tiny_clip(tmp_path_factory):
    """Register the tiny ViT CLIP config with open_clip; return its model name."""
    open_clip = pytest.importorskip("open_clip")
    folder = tmp_path_factory.mktemp("open_clip_cfg")
    path = folder / f"{TINY_CLIP}.json"
    path.write_text(json.dumps(TINY_CLIP_CFG))
    open_clip.add_model_config(path)
    return TINY_CLIP


# ------------------------------------------------------------- distributed
# One Dask LocalCluster and one Ray instance for the whole session (2 workers x
# 1 thread, 2 CPUs), started on first use by tests marked ``distributed``.
# Their worker processes import this checkout (and the test helpers).

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TESTS = os.path.join(ROOT, "tests")


def _worker_pythonpath():
    paths = [ROOT, TESTS] + [
        p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p
    ]
    return os.pathsep.join(dict.fromkeys(paths))


@pytest.fixture(scope="session")
def dask_cluster():
    """A ``LocalCluster(n_workers=2, threads_per_worker=1)`` for the session."""
    pytest.importorskip("dask.distributed")
    from dask.distributed import LocalCluster

    previous = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = _worker_pythonpath()  # inherited by the workers
    try:
        cluster = LocalCluster(
            n_workers=2,
            threads_per_worker=1,
            processes=True,
            dashboard_address=None,
            worker_dashboard_address=None,
        )
    finally:
        if previous is None:
            os.environ.pop("PYTHONPATH", None)
        else:
            os.environ["PYTHONPATH"] = previous
    yield cluster
    cluster.close()


@pytest.fixture
def dask_client(dask_cluster):
    """A client of the session cluster, the default scheduler during the test."""
    from dask.distributed import Client

    with Client(dask_cluster) as client:
        yield client


@pytest.fixture(scope="session")
def ray_session():
    """``ray.init(num_cpus=2)`` for the session; workers import this checkout."""
    ray = pytest.importorskip("ray")
    pytest.importorskip("ray.data")
    ray.init(
        num_cpus=2,
        include_dashboard=False,
        log_to_driver=False,
        configure_logging=False,
        runtime_env={"env_vars": {"PYTHONPATH": _worker_pythonpath()}},
    )
    ray.data.DataContext.get_current().enable_progress_bars = False
    yield ray
    ray.shutdown()


# -------------------------------------------------------------------- data


def correlated_splits(n_train, n_val, n_test):
    """``{"train"|"val"|"test": (X, y, groups)}``: a 95%-correlated training
    split and balanced validation and test splits of one problem (16
    features, 2 classes, 4 groups, seed 0), for modules that fit on all
    three."""
    from skhsfm.datasets import make_spurious_embeddings

    out = {}
    for split, n in (("train", n_train), ("val", n_val), ("test", n_test)):
        X, y, _, g = make_spurious_embeddings(
            n, 16, spurious_correlation=0.95, split=split, random_state=0
        )
        out[split] = X, y, g
    return out


def _read_only(*arrays):
    for array in arrays:
        array.setflags(write=False)  # shared by tests: none may change it
    return arrays


@pytest.fixture(scope="session")
def grouped_data():
    """``(X, y, groups, X_val, y_val, groups_val)``: 240 training rows whose
    spurious attribute follows the class for 90% of each class, and 120
    balanced held-out rows of the same problem; 8 features, 2 classes, 4
    groups. Read-only."""
    from skhsfm.datasets import make_spurious_embeddings

    X, y, _, g = make_spurious_embeddings(240, 8, random_state=0)
    Xv, yv, _, gv = make_spurious_embeddings(120, 8, split="val", random_state=0)
    return _read_only(X, y, g, Xv, yv, gv)
