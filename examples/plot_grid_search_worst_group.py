"""
Tune HSFM by worst-group accuracy with GridSearchCV, with and without a validation set
======================================================================================

The pieces that make model selection group-aware in scikit-learn:

- :func:`~skhsfm.metrics.make_groups` turns classes and a spurious attribute
  into readable groups;
- metadata routing (``sklearn.set_config(enable_metadata_routing=True)``) sends
  ``groups`` from ``search.fit(X, y, groups=groups)`` to the estimator's fit,
  the splitter and the scorer, each getting the rows of its fold;
- :class:`~skhsfm.model_selection.GroupStratifiedKFold` keeps every group
  (even rare ones) in every fold;
- :data:`~skhsfm.metrics.worst_group_scorer` scores each fold by its worst
  group; ``refit="wga"`` picks the candidate with the best mean worst-group
  accuracy.

Two settings, the same search:

A. **Training data only.** Each fold's HSFM holds out ``validation_fraction``
   of its training rows (stratified by group): half of that hold-out gives the
   hard sets, the other half selects the epoch.

B. **A fixed, group-balanced validation set** (``X_val``), passed as
   one-element tuples so that cross-validation never slices it, and sent
   through the pipeline's earlier steps by ``transform_input=["X_val"]``, as it
   would be through a :class:`~skhsfm.BackboneEmbedder`.

Each setting is compared with plain logistic regression and with DFR given the
same data. The data are synthetic embeddings in which a spurious attribute
("background") agrees with the class for 90% of the training rows. HSFM runs
100 epochs instead of 200 here to keep the example short (about a minute on
two CPU cores), and the numbers printed are this one seed's. What they show,
and what the paired benchmarks over several seeds show too
(``benchmarks/bench_training_only.py``, ``benchmarks/tune_hsfm.py``): HSFM
lifts the worst group far above logistic regression in both settings; with a
validation set it is level with DFR; from training data alone it stays below
DFR, most of all when the training set is small, because each minority group
then has only a handful of held-out rows to serve as hard examples. When you
can spare group-labelled rows, give HSFM a validation set.

Run: ``python examples/plot_grid_search_worst_group.py``; it saves its figure
as ``skhsfm_out/examples/grid_search.png`` and prints the path.
"""

import sys
import time
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import sklearn
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from skhsfm import HSFMClassifier
from skhsfm.baselines import DFRClassifier
from skhsfm.datasets import make_spurious_embeddings
from skhsfm.metrics import make_groups, worst_group_accuracy, worst_group_scorer
from skhsfm.model_selection import GroupStratifiedKFold

start = time.perf_counter()
CLASS_NAMES = np.array(["landbird", "waterbird"])
BACKGROUND_NAMES = np.array(["land", "water"])


def load(split, n_samples):
    X, y, background, _ = make_spurious_embeddings(
        n_samples, 32, spurious_correlation=0.9, split=split, random_state=0
    )
    y = CLASS_NAMES[y]
    return X, y, make_groups(y, BACKGROUND_NAMES[background])


# %%
# Data and groups
# ---------------
# Training rows carry the spurious correlation; the validation and test sets
# are group-balanced.

X_train, y_train, g_train = load("train", 4000)
X_val, y_val, g_val = load("val", 400)
X_test, y_test, g_test = load("test", 2000)
names, counts = np.unique(g_train, return_counts=True)
print("training groups:", dict(zip(names.tolist(), counts.tolist())))

sklearn.set_config(enable_metadata_routing=True)


def search_for(head, grid, **pipeline_params):
    """A worst-group GridSearchCV over ``StandardScaler -> head``."""
    pipeline = Pipeline([("scale", StandardScaler()), ("clf", head)], **pipeline_params)
    return GridSearchCV(
        pipeline,
        grid,
        scoring={"wga": worst_group_scorer, "acc": "accuracy"},
        refit="wga",
        cv=GroupStratifiedKFold(n_splits=3, shuffle=True, random_state=0),
        n_jobs=2,
    )


def test_wga(model):
    return worst_group_accuracy(y_test, model.predict(X_test), groups=g_test)


def report(search):
    results = search.cv_results_
    for params, wga, acc in zip(
        results["params"], results["mean_test_wga"], results["mean_test_acc"]
    ):
        print(f"  {params}: cv worst-group {wga:.3f}, accuracy {acc:.3f}")
    print(f"  best: {search.best_params_}")


hsfm = HSFMClassifier(n_epochs=100, random_state=0)
scores = {}

# %%
# A. Training data only
# ---------------------
# ``groups`` reach every fold's fit: HSFM balances its support set, its hard
# sets and its initial head over them, and selects its epoch by worst-group
# accuracy on held-out rows of the fold.

search_a = search_for(hsfm, {"clf__hard_size": [0.5, 1.0]})
search_a.fit(X_train, y_train, groups=g_train)
print("A. GridSearchCV on the training data only:")
report(search_a)
dfr_a = Pipeline(
    [("scale", StandardScaler()), ("clf", DFRClassifier(random_state=0))]
).fit(X_train, y_train, groups=g_train)
erm = Pipeline(
    [("scale", StandardScaler()), ("clf", LogisticRegression(max_iter=1000))]
).fit(X_train, y_train)
scores["A. training data only"] = {
    "logistic regression": test_wga(erm),
    "DFR": test_wga(dfr_a),
    "HSFM (searched)": test_wga(search_a),
}

# %%
# B. With a fixed, group-balanced validation set
# ----------------------------------------------
# The heads request ``X_val``, ``y_val`` and ``groups_val`` under metadata
# routing by default. The tuples keep the validation set whole in every fold;
# ``transform_input=["X_val"]`` scales it with each fold's fitted scaler (with
# a ``BackboneEmbedder`` first in the pipeline, it would embed the images).

val = dict(X_val=(X_val,), y_val=(y_val,), groups_val=(g_val,))
search_b = search_for(hsfm, {"clf__inner_lr": [0.01, 0.03]}, transform_input=["X_val"])
search_b.fit(X_train, y_train, groups=g_train, **val)
print("B. GridSearchCV with a fixed validation set:")
report(search_b)
dfr_b = Pipeline(
    [("scale", StandardScaler()), ("clf", DFRClassifier(random_state=0))],
    transform_input=["X_val"],
).fit(X_train, y_train, groups=g_train, **val)
scores["B. with a validation set"] = {
    "logistic regression": test_wga(erm),
    "DFR": test_wga(dfr_b),
    "HSFM (searched)": test_wga(search_b),
}

# %%
# Test worst-group accuracy
# -------------------------

for setting, row in scores.items():
    print(setting + ": " + ", ".join(f"{k} {v:.3f}" for k, v in row.items()))

methods = list(next(iter(scores.values())))
positions = np.arange(len(scores))
fig, ax = plt.subplots(figsize=(6, 3.4), layout="constrained")
for i, method in enumerate(methods):
    values = [row[method] for row in scores.values()]
    ax.bar(positions + (i - 1) * 0.27, values, 0.27, label=method)
ax.set_xticks(positions, list(scores))
ax.set_ylabel("test worst-group accuracy")
ax.set_ylim(0, 1)
ax.legend(loc="lower right", fontsize="small")
ax.set_title("One seed; see the benchmarks for paired intervals")
print(f"done in {time.perf_counter() - start:.1f} s")
if "sphinx_gallery" not in sys.modules:  # run from a terminal: save the figure
    Path("skhsfm_out", "examples").mkdir(parents=True, exist_ok=True)
    fig.savefig(Path("skhsfm_out", "examples", "grid_search.png"), dpi=100)
    print("saved skhsfm_out/examples/grid_search.png")

# sphinx-gallery runs every example in one process: leave the global
# configuration as it was found
sklearn.set_config(enable_metadata_routing=False)
