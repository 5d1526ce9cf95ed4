"""
Quickstart: HSFM on spurious-correlation embeddings
===================================================

A training split where a spurious attribute agrees with the class 95% of the
time, a group-balanced validation split (the hard pool) and a group-balanced
test split, from :func:`~skhsfm.datasets.make_spurious_embeddings`. We fit
:class:`~skhsfm.HSFMClassifier`, compare its per-group test accuracy with the
ERM head it starts from, and look at its training curves and at the support
embeddings it edited.

Run: ``python examples/plot_quickstart.py`` (a few seconds on a laptop CPU);
it saves its three figures in ``skhsfm_out/examples/`` and prints their paths.
"""

import sys
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

from skhsfm import HSFMClassifier, group_accuracy_report
from skhsfm.datasets import make_spurious_embeddings
from skhsfm.inspection import edit_projection, training_curves

# %%
# Data
# ----
# Each split gives embeddings, classes, the spurious attribute and groups
# (class x attribute). In training, groups where the attribute disagrees with
# the class are rare.

splits = {
    split: make_spurious_embeddings(
        n, 64, spurious_correlation=0.95, split=split, random_state=0
    )
    for split, n in (("train", 2000), ("val", 600), ("test", 2000))
}
X, y, a, g = splits["train"]
X_val, y_val, a_val, g_val = splits["val"]
X_test, y_test, _, g_test = splits["test"]
print("training group sizes:", np.bincount(g))

# %%
# Fit
# ---
# ``X`` is the support pool, ``X_val`` the hard pool that HSFM draws its hard
# set from and selects its epoch on.

clf = HSFMClassifier(random_state=0)
clf.fit(X, y, g, X_val=X_val, y_val=y_val, groups_val=g_val)
print(f"selected epoch {clf.best_epoch_} of {clf.n_iter_}")

# %%
# Per-group accuracy on the test split
# ------------------------------------
# The initial (ERM) head leans on the attribute, so the rare groups suffer;
# HSFM lifts the worst group.

initial = X_test @ clf.init_coef_.T + clf.init_intercept_
initial_pred = clf.classes_[(initial.ravel() > 0).astype(int)]
reports = {
    "initial ERM head": group_accuracy_report(y_test, initial_pred, groups=g_test),
    "HSFM": group_accuracy_report(y_test, clf.predict(X_test), groups=g_test),
}
for name, report in reports.items():
    print(f"{name}:\n{report}\n")

fig, ax = plt.subplots(figsize=(6, 3.2), layout="constrained")
positions = np.arange(len(reports["HSFM"].labels))
width = 0.38
for i, (name, report) in enumerate(reports.items()):
    ax.bar(positions + (i - 0.5) * width, report.accuracies, width, label=name)
ax.set_xticks(positions, [f"group {k}" for k in reports["HSFM"].labels])
ax.set_ylabel("test accuracy")
ax.set_ylim(0, 1)
ax.legend(loc="lower right")
ax.set_title("Per-group test accuracy")

# %%
# Training curves
# ---------------
# Hard-set loss and hard-pool accuracies per epoch; the selected epoch is
# marked.

curves = training_curves(clf)
print(curves)
curves_figure = curves.plot()

# %%
# The edits
# ---------
# The support set on the two main axes of the data: filled markers are the
# initial support embeddings, hollow ones their edited versions.

projection = edit_projection(
    clf, X_val, y=y_val, attribute=a_val, support_attribute=a[clf.support_indices_]
)
projection_figure = projection.plot()
edits = np.linalg.norm(clf.support_edited_ - clf.support_init_, axis=1)
print(f"mean support edit norm: {edits.mean():.3f}")

# %%
# Saving the figures
# ------------------
# Run from a terminal, the script saves its figures as PNG files and says
# where (the documentation shows them above instead).

if "sphinx_gallery" not in sys.modules:
    out = Path("skhsfm_out", "examples")
    out.mkdir(parents=True, exist_ok=True)
    figures = {"groups": fig, "curves": curves_figure, "edits": projection_figure}
    for name, figure in figures.items():
        figure.savefig(out / f"quickstart_{name}.png", dpi=100)
        print(f"saved {out / f'quickstart_{name}.png'}")
