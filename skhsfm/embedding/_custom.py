"""The user-module "loader": a ``torch.nn.Module`` or callable used as it is."""

import numpy as np

from skhsfm.embedding._loading import LoadedBackbone

__all__ = ["pil_to_float_tensor", "prepare_custom"]


def pil_to_float_tensor(image):
    """RGB PIL image -> float32 CHW tensor in [0, 1] (torchvision's ``ToTensor``)."""
    from skhsfm._utils.torch import torch

    array = np.asarray(image, dtype=np.uint8)
    return torch.from_numpy(array.copy()).permute(2, 0, 1).float().div_(255.0)


def prepare_custom(backbone, device):
    """Use a user's ``nn.Module`` (moved to ``device``, eval mode) or callable.

    A module is changed in place, as the embedder's docstring says. The output
    size is unknown until the module runs (``dim=None``).
    """
    from skhsfm._utils.torch import torch

    if isinstance(backbone, torch.nn.Module):
        backbone.eval().to(device)
    return LoadedBackbone(
        library="custom",
        model=backbone,
        forward=backbone,
        preprocess=pil_to_float_tensor,
    )
