"""
From images to a group-robust classifier with BackboneEmbedder
==============================================================

BackboneEmbedder and HSFMClassifier in one Pipeline, from image files.

Draws a small image folder with a spurious correlation (squares mostly on blue
backgrounds, circles mostly on green), embeds the files with a frozen backbone,
fits HSFMClassifier on the embeddings, reports worst-group accuracy, pickles the
fitted pipeline (the backbone is not in the pickle) and reloads it.

By default the backbone is CLIP ViT-B/32 (open_clip, weights downloaded once). On a
machine without network access and without cached weights the example says so
and falls back to a randomly initialised ResNet-18, so it always runs; pass
``--weights /path/to/open_clip_model.safetensors`` to use local CLIP weights.

Run::

    python examples/embed_images.py
"""

# sphinx_gallery_thumbnail_path = "_thumbnails/embed_images.png"

import argparse
import os
import pickle
import tempfile
import time

import numpy as np
from sklearn.pipeline import Pipeline

from skhsfm import HSFMClassifier, worst_group_accuracy
from skhsfm.embedding import BackboneEmbedder

BACKGROUNDS = {0: (40, 90, 200), 1: (60, 160, 60)}  # blue "water", green "land"


def draw_images(folder, n_images, majority, rng):
    """Write PNGs: class = shape (0 square, 1 circle), attribute = background."""
    from PIL import Image, ImageDraw

    labels = rng.randint(0, 2, size=n_images)
    agree = rng.uniform(size=n_images) < majority
    attributes = np.where(agree, labels, 1 - labels)
    paths = []
    for i, (label, attribute) in enumerate(zip(labels, attributes)):
        image = Image.new("RGB", (96, 96), BACKGROUNDS[attribute])
        draw = ImageDraw.Draw(image)
        x, y = rng.randint(10, 40, size=2)
        size = rng.randint(30, 50)
        box = (x, y, x + size, y + size)
        color = tuple(int(c) for c in rng.randint(150, 256, size=3))
        (draw.rectangle if label == 0 else draw.ellipse)(box, fill=color)
        path = os.path.join(folder, f"img{i:04d}.png")
        image.save(path)
        paths.append(path)
    groups = 2 * labels + attributes
    return paths, labels, groups


def make_embedder(weights, cache):
    """CLIP when its weights are available, else a random ResNet-18."""
    clip = BackboneEmbedder(memory=cache, normalize=True)
    if weights:
        clip.set_params(pretrained=weights)
    try:
        clip.get_feature_names_out()  # loads the backbone
        return clip, "CLIP ViT-B/32"
    except RuntimeError as exc:
        print(f"CLIP weights unavailable:\n  {exc}\nFalling back to ResNet-18.\n")
    print(
        "Note: random weights give meaningless features; the accuracies below only "
        "show the mechanics. Pass --weights or run where CLIP can be downloaded.\n"
    )
    resnet = BackboneEmbedder(
        "torchvision", model_name="resnet18", pretrained=None, memory=cache
    )
    return resnet, "ResNet-18 (random weights)"


def main(argv=None):
    parser = argparse.ArgumentParser(
        description="From images to a group-robust classifier with BackboneEmbedder"
    )
    parser.add_argument("--n-train", type=int, default=200)
    parser.add_argument("--n-test", type=int, default=100)
    parser.add_argument("--weights", default=None, help="local CLIP weights file")
    args = parser.parse_args(argv)

    rng = np.random.RandomState(0)
    with tempfile.TemporaryDirectory() as folder:
        os.makedirs(os.path.join(folder, "train"))
        os.makedirs(os.path.join(folder, "test"))
        X_train, y_train, g_train = draw_images(
            os.path.join(folder, "train"), args.n_train, 0.9, rng
        )
        X_test, y_test, g_test = draw_images(
            os.path.join(folder, "test"), args.n_test, 0.5, rng
        )
        embedder, name = make_embedder(args.weights, os.path.join(folder, "cache"))
        pipe = Pipeline([("embed", embedder), ("clf", HSFMClassifier(random_state=0))])
        start = time.perf_counter()
        pipe.fit(X_train, y_train, clf__groups=g_train)  # file paths in
        print(
            f"{name}: fit on {len(X_train)} images in "
            f"{time.perf_counter() - start:.1f} s"
        )

        pred = pipe.predict(X_test)
        print(f"test accuracy        {np.mean(pred == y_test):.3f}")
        worst = worst_group_accuracy(y_test, pred, groups=g_test)
        print(f"worst-group accuracy {worst:.3f}")

        blob = pickle.dumps(pipe)
        print(f"pickled pipeline: {len(blob) / 1024:.1f} KiB (backbone not included)")
        restored = pickle.loads(blob)
        start = time.perf_counter()
        assert np.array_equal(restored.predict(X_test), pred)
        print(
            f"reloaded; first predict (backbone reload or cache) "
            f"{time.perf_counter() - start:.1f} s"
        )

        if name.startswith("CLIP"):
            prompts = ["a photo of a square", "a photo of a circle"]
            text = embedder.encode_text(prompts)
            image_emb = embedder.transform(X_test)
            zero_shot = np.argmax(image_emb @ text.T, axis=1)
            print(f"zero-shot CLIP accuracy {np.mean(zero_shot == y_test):.3f}")


if __name__ == "__main__":
    main()
