"""
Embed an image folder with Ray Data actors, then fit a group-robust head
========================================================================

Writes the dominoes images (digits over a photo that correlates with the class
in training; built from data scikit-learn ships) to PNG folders, embeds them
with ``skhsfm.distributed.embed_ray`` (a pool of two actors, each holding one
copy of the backbone; rows come back in input order), and fits
``HSFMClassifier`` on the embeddings.

The backbone is a randomly initialised ResNet-18, so that the example runs
offline; its features are random projections and the accuracy is not the
point. Pass ``--weights /path/to/resnet18.pth`` (a torchvision state_dict) for
pretrained features, or ``--address auto`` to use a running Ray cluster.

Runs in about a minute on two CPU cores. Needs ``pip install
'skhsfm[distributed]'``.
"""

# sphinx_gallery_thumbnail_path = "_thumbnails/ray_embedding.png"

import argparse
import logging
import os
import tempfile
import time

import numpy as np

from skhsfm import HSFMClassifier, worst_group_accuracy
from skhsfm.datasets import make_dominoes
from skhsfm.distributed import embed_ray
from skhsfm.embedding import BackboneEmbedder


def write_folder(folder, images):
    from PIL import Image

    os.makedirs(folder)
    paths = []
    for i, image in enumerate(images):
        path = os.path.join(folder, f"{i:05d}.png")
        Image.fromarray(image).save(path)
        paths.append(path)
    return paths


def main(argv=None):
    import ray

    parser = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    parser.add_argument("--weights", default=None, help="resnet18 state_dict file")
    parser.add_argument("--address", default=None, help="a Ray cluster (auto, ...)")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    if args.address:
        ray.init(address=args.address)
    else:
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    ray.data.DataContext.get_current().enable_progress_bars = False
    logging.getLogger("ray.data").setLevel(logging.WARNING)
    data = make_dominoes(600, 300, 300, random_state=0)
    embedder = BackboneEmbedder(
        "torchvision", model_name="resnet18", pretrained=args.weights, device="cpu"
    )
    embeddings = {}
    with tempfile.TemporaryDirectory() as root:
        for split in ("train", "val", "test"):
            paths = write_folder(os.path.join(root, split), data[split].images)
            dataset = embed_ray(embedder, paths, batch_size=50, num_actors=2)
            batches = list(dataset.iter_batches(batch_format="numpy", batch_size=None))
            order = np.concatenate([b["path"] for b in batches])
            assert list(order) == paths  # input order
            embeddings[split] = np.concatenate([b["embedding"] for b in batches])
            print(
                f"{split}: {embeddings[split].shape[0]} images -> "
                f"{embeddings[split].shape[1]}-d embeddings"
            )
    ray.shutdown()

    clf = HSFMClassifier(n_epochs=40, device="cpu", random_state=0)
    clf.fit(
        embeddings["train"],
        data.train.target,
        data.train.group,
        X_val=embeddings["val"],
        y_val=data.val.target,
        groups_val=data.val.group,
    )
    wga = worst_group_accuracy(
        data.test.target, clf.predict(embeddings["test"]), groups=data.test.group
    )
    print(f"HSFM test worst-group accuracy: {wga:.3f}")
    print(f"done in {time.perf_counter() - start:.1f} s")


if __name__ == "__main__":
    main()
