"""Small torch helpers shared by the package: devices, generators, array <-> tensor.

torch is imported here at module level; import this module only from code that
really needs torch (``fit`` paths, the embedder), never from ``predict`` paths.
"""

import numpy as np

try:
    import torch
except ImportError as exc:  # pragma: no cover - exercised only without torch
    raise ImportError(
        "skhsfm needs PyTorch for fitting and embedding; install it with "
        "`pip install torch` (see https://pytorch.org for GPU builds). "
        "Fitted classifiers predict without torch."
    ) from exc

__all__ = ["resolve_device", "make_generator", "to_tensor", "to_numpy"]


def resolve_device(device):
    """Turn a user ``device`` string into a ``torch.device``.

    Parameters
    ----------
    device : str or torch.device
        ``"auto"`` picks ``"cuda"`` when available, else ``"cpu"``. Any other
        string torch understands (``"cpu"``, ``"cuda"``, ``"cuda:1"``, ``"mps"``)
        is passed through after checking that the backend is available.

    Returns
    -------
    torch.device
    """
    if isinstance(device, torch.device):
        return device
    if not isinstance(device, str):
        raise TypeError(
            f"device must be a string such as 'auto', 'cpu' or 'cuda'; got {device!r}."
        )
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, ValueError) as exc:
        raise ValueError(
            f"device={device!r} is not a device torch understands; use 'auto', "
            "'cpu', 'cuda' or 'cuda:N'."
        ) from exc
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(
            f"device={device!r} was requested but CUDA is not available in this "
            "torch build or machine; use device='cpu' or device='auto'."
        )
    if dev.type == "mps" and not torch.backends.mps.is_available():
        raise ValueError(
            f"device={device!r} was requested but MPS is not available; use "
            "device='cpu' or device='auto'."
        )
    return dev


def make_generator(random_state, device="cpu"):
    """A local ``torch.Generator`` seeded from a numpy ``RandomState``.

    The global torch seed is never touched.
    """
    seed = int(random_state.randint(0, 2**31 - 1))
    gen = torch.Generator(device=device)
    gen.manual_seed(seed)
    return gen


def to_tensor(array, device, dtype=None):
    """Copy a numpy array to a tensor on ``device`` (float32 by default)."""
    dtype = torch.float32 if dtype is None else dtype
    return torch.as_tensor(np.ascontiguousarray(array), dtype=dtype, device=device)


def to_numpy(tensor):
    """Detach a tensor and return it as a numpy array on the CPU."""
    return tensor.detach().cpu().numpy()
