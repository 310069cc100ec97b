"""Activation normalisation (Kingma and Dhariwal, "Glow", 2018)."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from realnvp.bijectors.base import Bijector


class ActNorm(Bijector):
    """Per-feature affine map ``z = (x - loc) * exp(-log_scale)`` with learned
    parameters, initialised from the first batch it sees so that ``z`` has zero
    mean and unit variance there.

    Features are on dimension 1: ``x (batch, features)`` or
    ``(batch, features, *spatial)``. The log-determinant is
    ``-sum(log_scale) * prod(spatial)``. Whether the data-dependent
    initialisation has happened is a buffer, so it is saved and restored with
    the weights: a loaded model is never re-initialised.

    Args:
        features: size of dimension 1.
        spatial_dims: number of dimensions after it (2 for images).
    """

    def __init__(self, features: int, spatial_dims: int = 0) -> None:
        super().__init__()
        shape = (features,) + (1,) * spatial_dims
        self.loc = nn.Parameter(torch.zeros(shape))
        self.log_scale = nn.Parameter(torch.zeros(shape))
        self.register_buffer("initialized", torch.tensor(False))

    @torch.no_grad()
    def initialize(self, x: Tensor) -> None:
        """Set ``loc`` and ``log_scale`` to the per-feature mean and log-std of ``x``."""
        reduce = [d for d in range(x.dim()) if d != 1]
        self.loc.copy_(x.mean(dim=reduce).reshape(self.loc.shape))
        std = x.std(dim=reduce).clamp_min(1e-6) if x.shape[0] > 1 else torch.ones_like(self.loc)
        self.log_scale.copy_(std.log().reshape(self.log_scale.shape))
        self.initialized.fill_(True)

    def _log_abs_det(self, x: Tensor) -> Tensor:
        positions = x[0, 0].numel()
        return (-self.log_scale.sum() * positions).expand(x.shape[0])

    def forward(self, x: Tensor, context: Tensor | None = None) -> tuple[Tensor, Tensor]:
        if self.training and not bool(self.initialized):
            self.initialize(x)
        return (x - self.loc) * torch.exp(-self.log_scale), self._log_abs_det(x)

    def inverse(self, z: Tensor, context: Tensor | None = None) -> tuple[Tensor, Tensor]:
        return z * torch.exp(self.log_scale) + self.loc, -self._log_abs_det(z)
