"""
Model selection and lazy fits on a Dask cluster
===============================================

Three things run on a local cluster of two single-threaded workers (swap in
``Client("tcp://scheduler:8786")`` for a real one):

1. ``GridSearchCV`` of ``HSFMClassifier`` by worst-group accuracy, its fits
   spread over the workers by ``joblib.parallel_backend("dask")``. Metadata
   routing sends ``groups`` to the estimator, the splitter and the scorer, as
   on one machine, and the results equal a local (loky) run's.
2. The same search submitted by hand as one task. A worker runs it with its own
   scikit-learn configuration, where metadata routing is off (every fold's
   worst-group scorer then fails); wrapping the call in
   ``skhsfm.distributed.with_config`` carries the routing setting.
3. A fit on a lazy dask array: the head reads only the rows it needs (a
   bounded sample for the initial head, the support set, the hard pool), and
   predictions on a dask array stay lazy.

Runs in about a minute on two CPU cores. Needs ``pip install
'skhsfm[distributed]'``.
"""

# sphinx_gallery_thumbnail_path = "_thumbnails/dask_search.png"

import time

import dask.array as da
import joblib
import numpy as np
import sklearn
from dask.distributed import Client, LocalCluster
from sklearn.model_selection import GridSearchCV

from skhsfm import HSFMClassifier, worst_group_accuracy
from skhsfm.datasets import make_spurious_embeddings
from skhsfm.distributed import with_config
from skhsfm.metrics import worst_group_scorer
from skhsfm.model_selection import GroupStratifiedKFold

FAST = dict(n_epochs=20, device="cpu", random_state=0)


def search():
    return GridSearchCV(
        HSFMClassifier(**FAST),
        {"inner_lr": [1e-3, 1e-2], "outer_lr": [0.1, 1.0]},
        scoring={"wga": worst_group_scorer, "acc": "accuracy"},
        refit="wga",
        cv=GroupStratifiedKFold(n_splits=3, shuffle=True, random_state=0),
        n_jobs=-1,
    )


def main():
    start = time.perf_counter()
    X, y, _, g = make_spurious_embeddings(
        1200, 32, spurious_correlation=0.9, split="train", random_state=0
    )
    X_val, y_val, _, g_val = make_spurious_embeddings(
        400, 32, split="val", random_state=0
    )
    X_test, y_test, _, g_test = make_spurious_embeddings(
        1000, 32, split="test", random_state=0
    )
    with (
        LocalCluster(
            n_workers=2, threads_per_worker=1, dashboard_address=None
        ) as cluster,
        Client(cluster) as client,
    ):
        print(f"cluster: {len(client.scheduler_info()['workers'])} workers")

        # 1. a search whose fits run on the workers
        with sklearn.config_context(enable_metadata_routing=True):
            with joblib.parallel_backend("dask"):
                on_dask = search().fit(X, y, groups=g)
            local = search().fit(X, y, groups=g)  # loky, for comparison
        same = np.array_equal(
            on_dask.cv_results_["mean_test_wga"], local.cv_results_["mean_test_wga"]
        )
        print(
            f"1. best {on_dask.best_params_}, cv worst-group "
            f"{on_dask.best_score_:.3f}; equal to the local search: {same}"
        )

        # 2. the whole search as one task. The worker would run it with its
        #    own configuration (routing off: the worst-group scorer then gets
        #    no groups and every fold fails); with_config carries it along.
        with sklearn.config_context(enable_metadata_routing=True):
            task = with_config(search().set_params(n_jobs=1).fit)
            result = client.submit(task, X, y, groups=g).result()
        print(f"2. submitted as one task: best {result.best_params_}")

        # 3. lazy embeddings (here from memory; in practice zarr, HDF5 or
        #    embed_dask), kept on the workers
        X_lazy = da.from_array(X, chunks=(200, 32)).persist()
        X_val_lazy = da.from_array(X_val, chunks=(200, 32))
        clf = HSFMClassifier(max_samples=600, **FAST)
        clf.fit(X_lazy, y, g, X_val=X_val_lazy, y_val=y_val, groups_val=g_val)
        pred = clf.predict(da.from_array(X_test, chunks=(250, 32)))
        wga = worst_group_accuracy(y_test, pred.compute(), groups=g_test)
        print(
            f"3. lazy fit: initial head on 600 sampled rows; predict gives a "
            f"lazy {type(pred).__module__}.{type(pred).__name__}; test "
            f"worst-group accuracy {wga:.3f}"
        )
    print(f"done in {time.perf_counter() - start:.1f} s")


if __name__ == "__main__":
    main()
