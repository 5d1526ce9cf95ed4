"""Batched forward passes: images through a loaded backbone, in input order.

Decoding and preprocessing of the next batch run in worker threads while the
backbone runs on the current one. torch is imported inside the functions.
"""

import contextlib
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from skhsfm.embedding._images import to_pil_rgb

__all__ = ["autocast", "embed_batches", "flatten_output", "l2_normalize"]


def autocast(device, precision):
    """``torch.autocast`` for ``precision="amp"`` (bfloat16 on CPUs), else a no-op."""
    from skhsfm._utils.torch import torch

    if precision != "amp":
        return contextlib.nullcontext()
    dtype = torch.bfloat16 if device.type == "cpu" else torch.float16
    return torch.autocast(device_type=device.type, dtype=dtype)


def l2_normalize(embeddings):
    norms = np.linalg.norm(embeddings, axis=1, keepdims=True)
    return (embeddings / np.maximum(norms, 1e-12)).astype(np.float32, copy=False)


def flatten_output(output, n_images):
    """Check a backbone's output and bring it to shape (n_images, d)."""
    from skhsfm._utils.torch import torch

    if isinstance(output, np.ndarray):
        output = torch.from_numpy(output)
    if not isinstance(output, torch.Tensor):
        raise TypeError(
            f"The backbone returned a {type(output).__name__}; it must return a "
            "tensor of shape (n_images, d). Wrap models that return tuples or dicts "
            "in a module that selects the embedding."
        )
    if output.ndim > 2 and all(size == 1 for size in output.shape[2:]):
        output = output.flatten(1)  # e.g. (n, C, 1, 1) after global pooling
    if output.ndim != 2 or output.shape[0] != n_images:
        raise ValueError(
            f"The backbone returned shape {tuple(output.shape)} for {n_images} "
            "images; expected (n_images, d). Add pooling to the module, e.g. "
            "torch.nn.Sequential(trunk, torch.nn.AdaptiveAvgPool2d(1), "
            "torch.nn.Flatten())."
        )
    return output


def _stack(tensors):
    from skhsfm._utils.torch import torch

    tensors = [
        t if isinstance(t, torch.Tensor) else torch.as_tensor(t) for t in tensors
    ]
    shapes = {tuple(t.shape) for t in tensors}
    if len(shapes) > 1:
        raise ValueError(
            f"Preprocessed images have different shapes {sorted(shapes)[:3]}; a batch "
            "needs one shape. Pass preprocess=<transform> that resizes (e.g. "
            "torchvision.transforms.Compose([Resize(224), CenterCrop(224), "
            "ToTensor()])), or give images of one size."
        )
    return torch.stack(tensors)


class _Prefetcher:
    """Decodes and preprocesses batches, in worker threads when there are any."""

    def __init__(self, images, preprocess, batch_size, num_workers):
        self.images = images
        self.preprocess = preprocess
        self.batch_size = batch_size
        self.pool = ThreadPoolExecutor(num_workers) if num_workers else None

    def _prepare(self, image):
        return self.preprocess(to_pil_rgb(image))

    def submit(self, start):
        chunk = self.images[start : start + self.batch_size]
        if self.pool is None:
            return chunk
        return [self.pool.submit(self._prepare, image) for image in chunk]

    def collect(self, pending):
        if self.pool is None:
            return _stack([self._prepare(image) for image in pending])
        return _stack([future.result() for future in pending])

    def close(self):
        if self.pool is not None:
            self.pool.shutdown(wait=True, cancel_futures=True)


def embed_batches(
    forward, preprocess, images, *, batch_size, device, precision, num_workers, bar
):
    """Run ``forward`` over ``images`` in batches; a float32 (n, d) array.

    Parameters
    ----------
    forward : callable
        Preprocessed batch ``(n, C, H, W)`` on ``device`` -> ``(n, d)`` tensor.
    preprocess : callable
        RGB PIL image -> ``(C, H, W)`` tensor.
    images : sequence
        Validated images (``_images.as_image_sequence``).
    batch_size, num_workers : int
    device : torch.device
    precision : {"fp32", "amp"}
    bar : tqdm-like
        Updated with the number of images done.
    """
    from skhsfm._utils.torch import torch

    n_images = len(images)
    prefetcher = _Prefetcher(images, preprocess, batch_size, num_workers)
    out = None
    try:
        pending = prefetcher.submit(0)
        for start in range(0, n_images, batch_size):
            batch = prefetcher.collect(pending)
            if start + batch_size < n_images:  # decode ahead while the model runs
                pending = prefetcher.submit(start + batch_size)
            if device.type == "cuda":
                batch = batch.pin_memory()
            batch = batch.to(device, non_blocking=True)
            with torch.inference_mode(), autocast(device, precision):
                output = forward(batch)
            output = flatten_output(output, len(batch)).float().cpu().numpy()
            if out is None:
                out = np.empty((n_images, output.shape[1]), dtype=np.float32)
            out[start : start + len(output)] = output
            bar.update(len(output))
    finally:
        prefetcher.close()
    return out
