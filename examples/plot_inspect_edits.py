"""
What do HSFM's learned feature edits mean?
==========================================

Inspect them on the dominoes benchmark.

Builds the offline dominoes images (:func:`skhsfm.datasets.make_dominoes`: a
photo crop on top is the spurious attribute, a digit below is the class), trains
the small ERM CNN on the training split, embeds the three splits and fits
:class:`skhsfm.HSFMClassifier` with the validation embeddings as hard pool. Then:

- prints the edit statistics (norm, relative norm, cosine with the class-mean
  difference and with the attribute direction of the validation embeddings);
- retrieves the nearest *test* embeddings of every initial and edited support
  embedding and prints how often the neighbours' majority attribute (photo) and
  class (digit rule) change after editing, next to a control: random edits
  of the same norms;
- writes the figures ``training_curves.png``, ``projection.png`` and
  ``retrieval.png`` into ``--out``.

Each analysis of :mod:`skhsfm.inspection` returns a result object that prints
as a table and draws its figure with ``.plot()``.

The CLIP prompt view (:func:`skhsfm.inspection.prompt_scores`) needs CLIP image
embeddings and weights, which this offline example does not have; with a CLIP
``BackboneEmbedder`` it is::

    scores = prompt_scores(clf, ["a photo of a china", "a photo of a flower"],
                           embedder=embedder)
    print(scores); scores.plot(path="prompts.png")

Runs in about a minute or two on a CPU, most of it training the CNN.

Usage::

    python examples/plot_inspect_edits.py [--out inspect_out/] [--seed 0] [--epochs 10]
        [--n-neighbors 5] [--metric cosine] [--cache-dir DIR]
"""

# sphinx_gallery_thumbnail_path = "_thumbnails/plot_inspect_edits.png"

import argparse
import os
import time

import numpy as np
from sklearn.utils import Bunch

from skhsfm import HSFMClassifier
from skhsfm.datasets import make_dominoes, train_dominoes_backbone
from skhsfm.inspection import (
    edit_projection,
    edit_retrieval,
    edit_statistics,
    mean_difference_direction,
    training_curves,
)
from skhsfm.metrics import worst_group_accuracy


def random_edits_control(clf, seed):
    """The fitted support set with random isotropic edits of the same norms."""
    rng = np.random.RandomState(seed)
    edits = clf.support_edited_ - clf.support_init_
    noise = rng.standard_normal(edits.shape)
    noise *= (np.linalg.norm(edits, axis=1) / np.linalg.norm(noise, axis=1))[:, None]
    return Bunch(
        support_init_=clf.support_init_,
        support_edited_=clf.support_init_ + noise,
        support_labels_=clf.support_labels_,
        classes_=clf.classes_,
    )


def embed(data, args):
    """Train the ERM CNN on the training images and embed the three splits."""
    path = None
    if args.cache_dir:
        os.makedirs(args.cache_dir, exist_ok=True)
        name = f"inspect_dominoes_seed{args.seed}_e{args.epochs}.npz"
        path = os.path.join(args.cache_dir, name)
        if os.path.exists(path):
            with np.load(path) as stored:
                return stored["train"], stored["val"], stored["test"]
    tic = time.perf_counter()
    backbone = train_dominoes_backbone(
        data.train, n_epochs=args.epochs, random_state=args.seed, device="cpu"
    )
    splits = [backbone.embed(data[s].images) for s in ("train", "val", "test")]
    print(f"backbone trained and images embedded in {time.perf_counter() - tic:.0f}s")
    if path is not None:
        np.savez(path, train=splits[0], val=splits[1], test=splits[2])
    return splits


def main(argv=None):
    parser = argparse.ArgumentParser(
        description="What do HSFM's learned feature edits mean?"
    )
    parser.add_argument("--out", default="inspect_out/")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--epochs", type=int, default=10, help="CNN training epochs")
    parser.add_argument("--preset", default=None, help="HSFM preset (default: none)")
    parser.add_argument("--n-neighbors", type=int, default=5)
    parser.add_argument("--metric", choices=["cosine", "euclidean"], default="cosine")
    parser.add_argument(
        "--cache-dir", default=None, help="reuse the embeddings stored here"
    )
    args = parser.parse_args(argv)
    os.makedirs(args.out, exist_ok=True)

    data = make_dominoes(random_state=args.seed)
    train, val, test = data.train, data.val, data.test
    X, X_val, X_test = embed(data, args)

    tic = time.perf_counter()
    # --preset dominoes gives the paper's setting (far larger edits: outer_lr 1.0)
    clf = HSFMClassifier(args.preset, random_state=args.seed)
    clf.fit(
        X,
        train.target,
        train.group,
        X_val=X_val,
        y_val=val.target,
        groups_val=val.group,
    )
    initial = ((X_test @ clf.init_coef_.T + clf.init_intercept_).ravel() > 0).astype(
        int
    )
    wga_initial = worst_group_accuracy(test.target, initial, groups=test.group)
    wga_hsfm = worst_group_accuracy(test.target, clf.predict(X_test), groups=test.group)
    print(
        f"HSFM fit in {time.perf_counter() - tic:.1f}s, selected epoch "
        f"{clf.best_epoch_}/{clf.n_iter_}; test worst-group accuracy: initial head "
        f"{wga_initial:.3f}, HSFM {wga_hsfm:.3f}"
    )
    names = dict(class_names=data.target_names, attribute_names=data.attribute_names)
    print(f"classes: {data.target_names}; attribute (photo): {data.attribute_names}\n")
    support_attribute = train.attribute[clf.support_indices_]

    # 1. statistics. Directions from the validation split, where the photo is
    # balanced within each class, so the class and photo directions do not mix.
    direction = mean_difference_direction(X_val, val.attribute)
    class_direction = mean_difference_direction(X_val, val.target)
    cos = direction @ class_direction
    cos /= np.linalg.norm(direction) * np.linalg.norm(class_direction)
    print(
        "attribute direction: mean(flower) - mean(china) of the validation "
        f"embeddings; its cosine with the class-mean difference: {cos:.3f}"
    )
    stats = edit_statistics(clf, attribute_direction=direction, X=X_val, y=val.target)
    print(stats, "\n")
    towards_other = stats.attribute_cosine * np.where(support_attribute == 0, 1, -1)
    for c in clf.classes_:
        for a in (0, 1):
            mask = (clf.support_labels_ == c) & (support_attribute == a)
            if mask.any():
                print(
                    f"  support {data.target_names[c]:>8} | "
                    f"{data.attribute_names[a]:<6} n={mask.sum():2d}: mean edit norm "
                    f"{stats.edit_norm[mask].mean():8.2f}, mean cosine with the "
                    "direction towards the other photo "
                    f"{towards_other[mask].mean():+.3f}"
                )
    print()

    # 2. retrieval in the test split, against random edits of the same norms
    kw = dict(
        gallery_y=test.target,
        gallery_attribute=test.attribute,
        n_neighbors=args.n_neighbors,
        metric=args.metric,
        support_attribute=support_attribute,
    )
    retrieval = edit_retrieval(clf, X_test, **kw)
    control = edit_retrieval(random_edits_control(clf, args.seed), X_test, **kw)
    print(retrieval, "\n")
    print(
        f"measured: attribute-change fraction {retrieval.attribute_change_fraction:.3f}"
        f", class-change fraction {retrieval.class_change_fraction:.3f}\n"
        "control (random edits, same norms): attribute-change fraction "
        f"{control.attribute_change_fraction:.3f}, class-change fraction "
        f"{control.class_change_fraction:.3f}\n"
        "support examples whose own photo is the neighbours' majority: before "
        f"editing {np.mean(retrieval.attribute_before == support_attribute):.3f}, "
        f"after {np.mean(retrieval.attribute_after == support_attribute):.3f}\n"
    )

    # 3. figures
    paths = {
        name: os.path.join(args.out, f"{name}.png")
        for name in ("training_curves", "projection", "retrieval")
    }
    curves = training_curves(clf)
    print(curves, "\n")
    curves.plot(path=paths["training_curves"])
    projection = edit_projection(
        clf,
        X_val,
        y=val.target,
        attribute=val.attribute,
        support_attribute=support_attribute,
    )
    projection.plot(path=paths["projection"], **names)
    retrieval.plot(
        train.images[clf.support_indices_],
        test.images,
        n_examples=8,
        n_shown=2,
        path=paths["retrieval"],
        **names,
    )
    for path in paths.values():
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
