"""From integer pixels to the unit cube and back, and bits per dimension.

A flow is a density on continuous values, pixels are integers ``0..L-1``. Uniform
dequantisation puts each pixel anywhere in its bin, ``x = (k + u) / L`` with
``u ~ U(0, 1)``, and for any continuous density ``p`` on ``[0, 1]^D``

    -log P(k) <= E_u[ -log p((k + u) / L) ] + D log L,

the ``D log L`` being the change of scale from bins of width 1 to width 1/L.
So the discrete negative log-likelihood, in bits per dimension, is bounded by

    bits/dim = ( -log p(x) + D log L ) / (D log 2),

estimated with one draw of ``u`` per image. A model uniform on the unit cube
(``log p = 0``) gets exactly ``log2 L`` bits per dimension.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor


def dequantize(pixels: Tensor, levels: int, generator: torch.Generator | None = None,
               dtype: torch.dtype = torch.float32) -> Tensor:
    """``(k + u) / L``, ``u ~ U(0, 1)`` elementwise: integer pixels to ``[0, 1)``."""
    noise = torch.rand(pixels.shape, generator=generator, dtype=dtype).to(pixels.device)
    return (pixels.to(dtype) + noise) / levels


def bin_centres(pixels: Tensor, levels: int, dtype: torch.dtype = torch.float32) -> Tensor:
    """``(k + 1/2) / L``: each pixel at the centre of its bin, for exact encoding."""
    return (pixels.to(dtype) + 0.5) / levels


def quantize(x: Tensor, levels: int) -> Tensor:
    """Back to integer pixels: the bin ``floor(x L)`` that ``x`` falls in, clamped to ``0..L-1``."""
    return torch.floor(x * levels).clamp(0, levels - 1).to(torch.int64)


def bits_per_dim(log_prob: Tensor, dims: int, levels: int) -> Tensor:
    """Bits per dimension of each image from its log-density on the unit cube (nats)."""
    return (-log_prob + dims * math.log(levels)) / (dims * math.log(2))
