"""Multi-scale factoring (Dinh et al., 2017, section 3.6)."""

from __future__ import annotations

import torch
from torch import Tensor

from realnvp.bijectors.base import Bijector


class FactorOut(Bijector):
    """Send the first ``keep`` channels straight to the latent and the rest
    through ``inner``: ``z = (x[:, :keep], inner(x[:, keep:]))``.

    Half of the dimensions leave the flow at each scale, so deeper scales work
    on fewer, coarser features; the latent keeps the data's shape
    ``(batch, C, H, W)``. ``log|det|`` is that of ``inner``.

    Args:
        keep: channels factored out at this scale.
        inner: the rest of the flow, on ``(batch, C - keep, H, W)``.
    """

    def __init__(self, keep: int, inner: Bijector) -> None:
        super().__init__()
        self.keep = keep
        self.inner = inner

    def forward(self, x: Tensor, context: Tensor | None = None) -> tuple[Tensor, Tensor]:
        z_rest, logdet = self.inner(x[:, self.keep :], context)
        return torch.cat([x[:, : self.keep], z_rest], dim=1), logdet

    def inverse(self, z: Tensor, context: Tensor | None = None) -> tuple[Tensor, Tensor]:
        x_rest, logdet = self.inner.inverse(z[:, self.keep :], context)
        return torch.cat([z[:, : self.keep], x_rest], dim=1), logdet
