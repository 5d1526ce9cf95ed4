"""Quickstart: HSFM on synthetic spurious-correlation embeddings.

A training split where a spurious attribute agrees with the class 95% of the
time, a group-balanced validation split (the hard pool) and test split. Prints
the test per-group accuracy of the initial ERM head and of HSFM.

Run: ``python examples/quickstart.py`` (a few seconds on a laptop CPU).
"""

import numpy as np

from skhsfm import HSFMClassifier, group_accuracy_report
from skhsfm.datasets import make_spurious_embeddings


def main():
    splits = {
        split: make_spurious_embeddings(
            n, 64, spurious_correlation=0.95, split=split, random_state=0
        )
        for split, n in (("train", 2000), ("val", 600), ("test", 2000))
    }
    X, y, _, g = splits["train"]
    X_val, y_val, _, g_val = splits["val"]
    X_test, y_test, _, g_test = splits["test"]

    clf = HSFMClassifier(random_state=0)
    clf.fit(X, y, g, X_val=X_val, y_val=y_val, groups_val=g_val)

    initial = X_test @ clf.init_coef_.T + clf.init_intercept_
    initial_pred = clf.classes_[(initial.ravel() > 0).astype(int)]
    print("Initial (ERM) head on test:")
    print(group_accuracy_report(y_test, initial_pred, groups=g_test))
    print(f"\nHSFM on test (selected epoch {clf.best_epoch_} of {clf.n_iter_}):")
    print(group_accuracy_report(y_test, clf.predict(X_test), groups=g_test))
    edits = np.linalg.norm(clf.support_edited_ - clf.support_init_, axis=1)
    print(f"\nmean support edit norm: {edits.mean():.3f}")


if __name__ == "__main__":
    main()
