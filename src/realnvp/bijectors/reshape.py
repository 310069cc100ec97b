"""Volume-preserving reshapes of images."""

from __future__ import annotations

from torch import Tensor

from realnvp.bijectors.base import Bijector


class Squeeze(Bijector):
    """Space to depth: ``(batch, C, H, W) -> (batch, C f^2, H/f, W/f)``.

    Each ``f x f`` block of pixels becomes ``f^2`` channels at one location,
    as in RealNVP's multi-scale architecture. A permutation of the
    coordinates, so ``log|det| = 0``.
    """

    def __init__(self, factor: int = 2) -> None:
        super().__init__()
        self.factor = factor

    def forward(self, x: Tensor, context: Tensor | None = None) -> tuple[Tensor, Tensor]:
        b, c, h, w = x.shape
        f = self.factor
        if h % f or w % f:
            raise ValueError(f"Squeeze({f}) needs height and width divisible by {f}, got {h}x{w}")
        z = x.reshape(b, c, h // f, f, w // f, f).permute(0, 1, 3, 5, 2, 4).reshape(b, c * f * f, h // f, w // f)
        return z, x.new_zeros(b)

    def inverse(self, z: Tensor, context: Tensor | None = None) -> tuple[Tensor, Tensor]:
        b, c, h, w = z.shape
        f = self.factor
        x = z.reshape(b, c // (f * f), f, f, h, w).permute(0, 1, 4, 2, 5, 3).reshape(b, c // (f * f), h * f, w * f)
        return x, z.new_zeros(b)
