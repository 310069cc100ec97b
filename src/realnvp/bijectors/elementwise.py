"""Fixed elementwise affine maps, such as the standardisation of the data."""

from __future__ import annotations

import torch
from torch import Tensor

from realnvp.bijectors.base import Bijector


class ElementwiseAffine(Bijector):
    """``z = (x - shift) / scale``, coordinate by coordinate, with fixed parameters.

    The Jacobian is diagonal, so ``log|det dz/dx| = -sum_i log scale_i``, the
    same for every point. A standardisation is this map with the training
    data's mean and standard deviation.

    Worked example: ``z1 = (x1 - 1) / 3``, ``z2 = x2 / 2`` shrinks areas by
    ``|det dz/dx| = 1/6``, so by the change of variables
    ``p_x(x) = p_z(z) |det dz/dx| = p_z(z) / 6``.

        >>> f = ElementwiseAffine(torch.tensor([1.0, 0.0]), torch.tensor([3.0, 2.0]))
        >>> z, logdet = f(torch.tensor([[4.0, 2.0]]))
        >>> [round(v, 6) for v in z[0].tolist()], round(logdet.exp().item(), 6)
        ([1.0, 1.0], 0.166667)

    Args:
        shift: ``event_shape`` (or broadcastable to it).
        scale: positive, same shape as ``shift``.
    """

    def __init__(self, shift: Tensor, scale: Tensor) -> None:
        super().__init__()
        if shift.shape != scale.shape:
            raise ValueError(f"shift {tuple(shift.shape)} and scale {tuple(scale.shape)} differ in shape")
        if not bool((scale > 0).all()):
            raise ValueError("every scale must be positive")
        self.register_buffer("shift", shift.clone())
        self.register_buffer("log_scale", scale.log())

    @classmethod
    def standardizing(cls, data: Tensor, min_std: float = 1e-12) -> ElementwiseAffine:
        """The standardisation of ``data (n, *event_shape)``: zero mean, unit variance."""
        std = data.std(dim=0).clamp_min(min_std)
        return cls(data.mean(dim=0), std)

    def log_abs_det(self) -> Tensor:
        """The constant ``log|det dz/dx| = -sum log scale``, a scalar."""
        return -self.log_scale.sum()

    def forward(self, x: Tensor, context: Tensor | None = None) -> tuple[Tensor, Tensor]:
        z = (x - self.shift) * torch.exp(-self.log_scale)
        return z, self.log_abs_det().to(x.dtype).expand(x.shape[0])

    def inverse(self, z: Tensor, context: Tensor | None = None) -> tuple[Tensor, Tensor]:
        x = z * torch.exp(self.log_scale) + self.shift
        return x, (-self.log_abs_det()).to(z.dtype).expand(z.shape[0])
