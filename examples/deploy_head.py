"""
Saving and deploying a fitted head: skops files, plain scikit-learn, ONNX
=========================================================================

Train on a workstation, predict elsewhere. A fitted head is a linear model, so
there are three ways to ship it:

1. **A skops file** (``pip install skhsfm[persist]``), the default to use.
   ``skops.io.load`` rebuilds only types you trust and never runs code from the
   file. A pickle (``pickle``, ``joblib``) is a small program: loading it calls
   whatever functions the file names, with arguments the file chooses, so a
   tampered or malicious ``.pkl``/``.joblib`` runs arbitrary code on the
   machine that loads it, before you can look at the model. Load pickles only
   from sources you would let run code on that machine.
2. **A plain scikit-learn model**: ``head.to_sklearn()`` is a fitted
   ``LogisticRegression`` with identical predictions, for a server that has
   scikit-learn but not skhsfm (or torch).
3. **ONNX** (``pip install skhsfm[onnx]``): ``skl2onnx.to_onnx`` of that
   ``LogisticRegression``, served by onnxruntime or any ONNX runtime.

Also shown: a whole ``Pipeline`` (scaler + head) in one skops file, and a
pipeline that starts at the images with ``BackboneEmbedder``: its settings are
saved, its backbone is not; the loaded pipeline loads the backbone on first
use (this part runs when torchvision is installed, with random weights so that
nothing is downloaded).

Run: ``python examples/deploy_head.py`` (about 15 s on a 2-core CPU; the files
go to a temporary folder that is removed at the end).
"""

# sphinx_gallery_thumbnail_path = "_thumbnails/deploy_head.png"

import os
import tempfile
import warnings

import numpy as np
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler

from skhsfm import BackboneEmbedder, HSFMClassifier
from skhsfm.datasets import make_spurious_embeddings


def kb(path):
    return f"{os.path.getsize(path) / 1e3:.1f} KB"


def skops_round_trip(estimator, path):
    """Save with skops, review the types the file needs, load trusting them."""
    import skops.io as sio

    sio.dump(estimator, path)
    # What the file would build beyond skops' default trusted types (numpy,
    # scipy, scikit-learn, builtins). Review this list before trusting it: for a
    # head it is only the head's own class.
    untrusted = sio.get_untrusted_types(file=path)
    print(f"  {os.path.basename(path)} ({kb(path)}); types to trust: {untrusted}")
    return sio.load(path, trusted=untrusted)


def onnx_round_trip(head, X, path):
    """Export through to_sklearn() and skl2onnx; predict with onnxruntime."""
    import onnxruntime as rt
    from skl2onnx import to_onnx

    onx = to_onnx(head.to_sklearn(), X[:1], options={"zipmap": False})
    with open(path, "wb") as file:
        file.write(onx.SerializeToString())
    session = rt.InferenceSession(path, providers=["CPUExecutionProvider"])
    labels, proba = session.run(None, {session.get_inputs()[0].name: X})
    print(f"  {os.path.basename(path)} ({kb(path)})")
    return labels, proba


def backbone_pipeline(folder):
    """Images -> BackboneEmbedder -> HSFM, saved and loaded with skops."""
    try:
        import torchvision  # noqa: F401
    except ImportError:
        print("\n(torchvision is not installed: skipping the image pipeline)")
        return
    rng = np.random.RandomState(0)
    images = rng.randint(0, 256, size=(24, 32, 32, 3), dtype=np.uint8)
    y = np.repeat([0, 1], 12)
    images[y == 1, :16] = 255  # class 1: a bright upper half
    # Random (seeded) weights keep the example offline; in practice pass
    # pretrained="DEFAULT" or a local weights file.
    embedder = BackboneEmbedder(
        "torchvision", model_name="resnet18", pretrained=None, device="cpu"
    )
    head = HSFMClassifier(n_epochs=5, support_size=4, random_state=0)
    pipe = Pipeline([("embed", embedder), ("clf", head)])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # tiny data
        pipe.fit(images, y)
    print("\nImage pipeline (BackboneEmbedder + HSFM):")
    loaded = skops_round_trip(pipe, os.path.join(folder, "image_pipeline.skops"))
    # The file holds the embedder's settings, not the backbone: the loaded
    # pipeline builds it again on first use. A weights file given as
    # pretrained= must exist at that path where the pipeline is loaded, or be
    # pointed elsewhere: loaded.set_params(embed__pretrained="/new/path.pth").
    same = np.array_equal(loaded.predict(images), pipe.predict(images))
    print(f"  same predictions after loading: {same}")


def main():
    X, y, _, g = make_spurious_embeddings(
        2000, 64, split="train", dtype=np.float32, random_state=0
    )
    X_val, y_val, _, g_val = make_spurious_embeddings(
        600, 64, split="val", dtype=np.float32, random_state=0
    )
    X_test = make_spurious_embeddings(
        500, 64, split="test", dtype=np.float32, random_state=0
    )[0]
    head = HSFMClassifier(n_epochs=20, random_state=0)
    head.fit(X, y, g, X_val=X_val, y_val=y_val, groups_val=g_val)
    pipe = make_pipeline(StandardScaler(), HSFMClassifier(n_epochs=20, random_state=0))
    pipe.fit(X, y, hsfmclassifier__groups=g)

    with tempfile.TemporaryDirectory(prefix="skhsfm_deploy_") as folder:
        deploy(head, pipe, X_test, folder)


def deploy(head, pipe, X_test, folder):
    try:
        import skops.io  # noqa: F401
    except ImportError:
        print("skops is not installed (pip install skhsfm[persist]): skipping files")
    else:
        print("skops files:")
        loaded = skops_round_trip(head, os.path.join(folder, "hsfm.skops"))
        same = np.array_equal(loaded.predict_proba(X_test), head.predict_proba(X_test))
        print(f"  same probabilities after loading: {same}")
        loaded = skops_round_trip(pipe, os.path.join(folder, "pipeline.skops"))
        same = np.array_equal(loaded.predict_proba(X_test), pipe.predict_proba(X_test))
        print(f"  same probabilities after loading: {same}")

    print("\nPlain scikit-learn:")
    model = head.to_sklearn()
    same = np.array_equal(model.predict(X_test), head.predict(X_test))
    gap = np.abs(model.predict_proba(X_test) - head.predict_proba(X_test)).max()
    print(f"  {model!r}: same labels {same}, largest probability gap {gap:.1e}")

    try:
        labels, proba = onnx_round_trip(head, X_test, os.path.join(folder, "h.onnx"))
    except ImportError:
        print("\nskl2onnx/onnxruntime are not installed (pip install skhsfm[onnx])")
    else:
        same = np.array_equal(labels, head.predict(X_test))
        gap = np.abs(proba - head.predict_proba(X_test)).max()
        print(f"  onnxruntime: same labels {same}, largest probability gap {gap:.1e}")

    backbone_pipeline(folder)


if __name__ == "__main__":
    main()
