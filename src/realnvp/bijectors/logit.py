"""The logit transform of RealNVP's image preprocessing."""

from __future__ import annotations

import torch
from torch import Tensor
from torch.nn import functional as F

from realnvp.bijectors.base import Bijector, sum_except_batch


class Logit(Bijector):
    """``y = logit(alpha + (1 - 2 alpha) x)`` for ``x`` in ``(0, 1)``, elementwise.

    Maps dequantised pixels from the unit interval to the real line; ``alpha``
    keeps them away from the infinities at 0 and 1 (the paper uses 0.05). With
    ``p = alpha + (1 - 2 alpha) x``,

        log|det dy/dx| = sum( log(1 - 2 alpha) - log p - log(1 - p) ).
    """

    def __init__(self, alpha: float = 0.05) -> None:
        super().__init__()
        if not 0 <= alpha < 0.5:
            raise ValueError(f"alpha must lie in [0, 0.5), got {alpha}")
        self.alpha = alpha

    def forward(self, x: Tensor, context: Tensor | None = None) -> tuple[Tensor, Tensor]:
        p = self.alpha + (1 - 2 * self.alpha) * x
        y = torch.log(p) - torch.log1p(-p)
        logdet = sum_except_batch(torch.log1p(torch.full_like(p, -2 * self.alpha)) - torch.log(p) - torch.log1p(-p))
        return y, logdet

    def inverse(self, y: Tensor, context: Tensor | None = None) -> tuple[Tensor, Tensor]:
        p = torch.sigmoid(y)
        x = (p - self.alpha) / (1 - 2 * self.alpha)
        # log p + log(1 - p) = -softplus(-y) - softplus(y), stable for large |y|
        log_p_one_minus_p = -F.softplus(-y) - F.softplus(y)
        logdet = sum_except_batch(log_p_one_minus_p - torch.log1p(torch.full_like(y, -2 * self.alpha)))
        return x, logdet
