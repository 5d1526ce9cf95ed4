"""Throughput of BackboneEmbedder.transform against a hand-written torch loop.

Both sides embed the same uint8 images (numpy, N x H x W x 3) with the same model
(a randomly initialised torchvision classifier with its last layer removed), the
same batch size and the same preprocessing object (torchvision's ImageNet
transform: resize 256, center-crop 224, normalise, applied to each image as a PIL
image), under ``torch.inference_mode``. The runs alternate, in an order rotated
each repeat, so that machine load drifts affect all; medians are printed.

Run::

    OMP_NUM_THREADS=1 python benchmarks/bench_embedding.py --threads 1

Target: transform within 5% of the hand loop (ratio >= 0.95).
"""

import argparse
import statistics
import time

import numpy as np


def hand_loop(model, preprocess, images, batch_size, device):
    """What a user would write by hand: PIL -> preprocess -> stack -> model."""
    import torch
    from PIL import Image

    outputs = []
    with torch.inference_mode():
        for start in range(0, len(images), batch_size):
            chunk = images[start : start + batch_size]
            batch = torch.stack([preprocess(Image.fromarray(img)) for img in chunk])
            outputs.append(model(batch.to(device)).float().cpu().numpy())
    return np.concatenate(outputs)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--model",
        default="resnet18",
        help="a torchvision classifier name, or 'pool' (global average pooling "
        "only, with resnet18's preprocessing) to expose the per-image overhead",
    )
    parser.add_argument("--n-images", type=int, default=256)
    parser.add_argument("--size", type=int, default=224, help="input image side")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=None, help="torch threads")
    parser.add_argument("--device", default="cpu")
    parser.add_argument(
        "--precision", default="fp32", choices=["fp32", "amp"], help="embedder only"
    )
    parser.add_argument(
        "--num-workers",
        type=int,
        default=None,
        help="also time transform with this many decoding threads",
    )
    args = parser.parse_args(argv)

    import torch

    from skhsfm.embedding import BackboneEmbedder

    if args.threads:
        torch.set_num_threads(args.threads)
    rng = np.random.RandomState(0)
    images = rng.randint(0, 256, size=(args.n_images, args.size, args.size, 3))
    images = images.astype(np.uint8)

    if args.model == "pool":
        from torchvision.models import ResNet18_Weights

        backbone = dict(
            backbone=torch.nn.Sequential(
                torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten()
            ),
            preprocess=ResNet18_Weights.DEFAULT.transforms(),
        )
    else:
        backbone = dict(backbone="torchvision", model_name=args.model, pretrained=None)
    embedder = BackboneEmbedder(
        **backbone,
        batch_size=args.batch_size,
        device=args.device,
        precision=args.precision,
        show_progress_bar=False,
    )
    start = time.perf_counter()
    reference = embedder.transform(images[:2])  # loads the model
    print(f"model load + first batch: {time.perf_counter() - start:.2f} s")
    loaded = embedder._runtime[1]  # the very same module and transform
    model, device = loaded.model, embedder._device()
    preprocess = embedder.preprocess or loaded.preprocess

    hand = hand_loop(model, preprocess, images[:2], args.batch_size, device)
    np.testing.assert_allclose(reference, hand, rtol=1e-4, atol=1e-4)

    contenders = {
        "transform": lambda: embedder.transform(images),
        "hand loop": lambda: hand_loop(
            model, preprocess, images, args.batch_size, device
        ),
    }
    if args.num_workers:
        threaded = embedder.__class__(**embedder.get_params())
        threaded.set_params(num_workers=args.num_workers)
        threaded._runtime = embedder._runtime  # share the loaded model
        contenders[f"transform num_workers={args.num_workers}"] = lambda: (
            threaded.transform(images)
        )

    times = {name: [] for name in contenders}
    for name, run in contenders.items():  # warm-up
        run()
    names = list(contenders)
    for repeat in range(args.repeats):
        shift = repeat % len(names)  # rotate the order: no one always goes first
        for name in names[shift:] + names[:shift]:
            start = time.perf_counter()
            contenders[name]()
            times[name].append(time.perf_counter() - start)

    print(
        f"{args.model}, {args.n_images} images {args.size}x{args.size} uint8, "
        f"batch {args.batch_size}, device {device}, torch threads "
        f"{torch.get_num_threads()}, {args.repeats} repeats (medians):"
    )
    base = statistics.median(times["hand loop"])
    for name, values in times.items():
        median = statistics.median(values)
        print(
            f"  {name:<28s} {median:7.3f} s  {args.n_images / median:8.1f} img/s  "
            f"throughput vs hand loop {base / median:.3f}  "
            f"(min {min(values):.3f} s, max {max(values):.3f} s)"
        )


if __name__ == "__main__":
    main()
