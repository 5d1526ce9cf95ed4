"""Small torch helpers shared by the package: devices, generators, array <-> tensor.

torch is imported here at module level, through
:func:`skhsfm._utils.imports.import_torch` (which refuses a half-imported torch);
import this module only from code that really needs torch (``fit`` paths, the
embedder), never from ``predict`` paths. Lazy call sites write
``from skhsfm._utils.torch import torch``.
"""

import contextlib
import warnings

import numpy as np

from skhsfm._utils.imports import import_torch

torch = import_torch()

__all__ = [
    "SMALL_WORK",
    "make_generator",
    "one_thread_if_small",
    "resolve_device",
    "to_numpy",
    "to_tensor",
    "torch",
]

_DEVICE_HINT = "use 'auto', 'cpu', 'cuda' or 'cuda:N'"
# Devices that held and returned a value once in this process (see _check_usable).
_USABLE = set()


def _check_usable(dev, device):
    """Put one value on ``dev`` and read it back, once per device and process.

    Catches the devices torch names but that cannot hold data here ("meta",
    which stores shapes only; a backend this build lacks; a GPU index beyond
    the machine's) before a fit fails deep inside with torch's own error.
    """
    key = str(dev)
    if key in _USABLE:
        return
    try:
        torch.zeros(1, device=dev).cpu()
    except Exception as exc:  # NotImplementedError, RuntimeError, AssertionError...
        reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        what = (
            "the 'meta' device holds shapes only, no values"
            if dev.type == "meta"
            else reason
        )
        raise ValueError(
            f"device={device!r} cannot hold data ({what}); {_DEVICE_HINT}."
        ) from exc
    _USABLE.add(key)


def resolve_device(device):
    """Turn a user ``device`` string into a ``torch.device`` that can hold data.

    Parameters
    ----------
    device : str or torch.device
        ``"auto"`` picks ``"cuda"`` when available, else ``"cpu"``. Any other
        string torch understands (``"cpu"``, ``"cuda"``, ``"cuda:1"``, ``"mps"``)
        is passed through after checking that the backend is available and can
        hold a value (``"meta"`` and missing GPUs are refused).

    Returns
    -------
    torch.device
    """
    if isinstance(device, torch.device):
        _check_usable(device, str(device))
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
            f"device={device!r} is not a device torch understands; {_DEVICE_HINT}."
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
    _check_usable(dev, device)
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
    """A tensor on ``device`` (float32 by default) that may be changed freely.

    Read-only arrays (a DataFrame's values under pandas copy-on-write, a
    memmap opened with ``mmap_mode="r"``) are accepted without torch's "NumPy
    array is not writable" warning: when the conversion copies anyway (another
    dtype or device) nothing more is done, and a tensor that would share the
    read-only memory is copied.
    """
    dtype = torch.float32 if dtype is None else dtype
    array = np.ascontiguousarray(array)
    if array.flags.writeable:
        return torch.as_tensor(array, dtype=dtype, device=device)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*NumPy array is not writable")
        tensor = torch.as_tensor(array, dtype=dtype, device=device)
    if (
        tensor.device.type == "cpu"
        and array.size
        and (tensor.data_ptr() == array.__array_interface__["data"][0])
    ):
        tensor = tensor.clone()  # it shares the read-only memory
    return tensor


def to_numpy(tensor):
    """Detach a tensor and return it as a numpy array on the CPU."""
    return tensor.detach().cpu().numpy()


#: Multiply-adds per matrix product below which a CPU loop of torch operations
#: runs on one thread (:func:`one_thread_if_small`).
SMALL_WORK = 2**25


@contextlib.contextmanager
def one_thread_if_small(work, device):
    """Run the block on one torch thread when its operations are small.

    A loop of thousands of small operations (AFR's 500 full-batch steps on a
    few hundred rows) gains nothing from torch's threads and loses much when
    the machine is busy: each operation waits for every thread at a barrier,
    and one thread taken off its core by another process stalls them all. On
    2 busy cores AFR's benchmark fit took 64-104 s on two threads and 2.6-6.6 s
    on one (issue 24). ``work`` is the multiply-adds of the block's largest
    matrix product; below :data:`SMALL_WORK` on the CPU, the number of threads
    is set to 1 and restored afterwards (torch's setting is per process: the
    other threads of the process see it too while the block runs).
    """
    device = torch.device(device)
    threads = torch.get_num_threads()
    if device.type != "cpu" or work >= SMALL_WORK or threads == 1:
        yield
        return
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)
