"""Base-weight matmuls: oneDNN over prepacked weights on CPU float32, `F.linear` elsewhere."""

from __future__ import annotations

import torch
import torch.nn.functional as F


_MIN_PACKED = 1 << 16  # below this many weights oneDNN's fixed cost per call outweighs its speed


def prepack(weight: torch.Tensor) -> torch.Tensor | None:
    """oneDNN's prepacked copy of a CPU float32 weight [out, in], or None where `F.linear` is better.

    On CPU, oneDNN's matmul over a prepacked weight runs decode-sized matmuls 1.5-6x faster than
    the BLAS behind `F.linear` (same sums in another order: results differ by float rounding).
    """
    if (weight.device.type != "cpu" or weight.dtype != torch.float32 or weight.numel() < _MIN_PACKED
            or not torch.backends.mkldnn.is_available()):
        return None
    try:
        return torch.ops.mkldnn._reorder_linear_weight(weight.contiguous(), 16)
    except (AttributeError, RuntimeError):  # a torch build without these oneDNN ops
        return None


def base_linear(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None,
                packed: torch.Tensor | None) -> torch.Tensor:
    if packed is None:
        return F.linear(x, weight, bias)
    return torch.ops.mkldnn._linear_pointwise(x, packed, bias, "none", [], "")
