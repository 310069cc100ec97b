"""Rational-quadratic spline couplings (Durkan, Bekasov, Murray and Papamakarios,
"Neural Spline Flows", 2019).

Inside ``[-bound, bound]`` each transformed coordinate goes through a
monotonic piecewise rational-quadratic function with ``bins`` pieces whose
knots ``(x_k, y_k)`` and derivatives ``d_k`` at the knots come from the
conditioner; outside it is the identity, and the derivative is 1 at both ends
so the two join smoothly. In bin ``k``, with ``xi = (x - x_k) / w_k`` in
``[0, 1]``, bin width ``w_k``, height ``h_k`` and slope ``s_k = h_k / w_k``::

    y = y_k + h_k (s_k xi^2 + d_k xi (1 - xi)) / (s_k + (d_k + d_{k+1} - 2 s_k) xi (1 - xi))

    dy/dx = s_k^2 (d_{k+1} xi^2 + 2 s_k xi (1 - xi) + d_k (1 - xi)^2)
            / (s_k + (d_k + d_{k+1} - 2 s_k) xi (1 - xi))^2

The inverse solves a quadratic in ``xi`` in closed form, so both directions
are exact and cheap.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

from realnvp.bijectors.base import Bijector, sum_except_batch
from realnvp.nets import Conditioner

MIN_BIN_WIDTH = 1e-3
MIN_BIN_HEIGHT = 1e-3
MIN_DERIVATIVE = 1e-3
#: softplus(SOFTPLUS_ONE) = 1: a conditioner that outputs zeros gives the identity
SOFTPLUS_ONE = math.log(math.e - 1)


def _knots(raw: Tensor, bound: float, minimum: float) -> tuple[Tensor, Tensor]:
    """Bin sizes ``(..., K)`` from unnormalised ``raw`` (each at least
    ``minimum`` of the interval) and the knot positions ``(..., K + 1)``, from
    exactly ``-bound`` to exactly ``bound``."""
    bins = raw.shape[-1]
    fractions = minimum + (1 - minimum * bins) * torch.softmax(raw, dim=-1)
    interior = torch.cumsum(fractions[..., :-1], dim=-1) * (2 * bound) - bound
    knots = F.pad(F.pad(interior, (1, 0), value=-bound), (0, 1), value=bound)
    return knots[..., 1:] - knots[..., :-1], knots


def _gather(values: Tensor, index: Tensor) -> Tensor:
    return values.gather(-1, index.unsqueeze(-1)).squeeze(-1)


def rational_quadratic_spline(
    x: Tensor, raw_widths: Tensor, raw_heights: Tensor, raw_derivatives: Tensor,
    bound: float, inverse: bool = False,
) -> tuple[Tensor, Tensor]:
    """The spline (or its inverse) applied element-wise, with ``log|dy/dx|``
    (or ``log|dx/dy|``) element-wise.

    Args:
        x: ``(...)`` values.
        raw_widths, raw_heights: ``(..., K)`` unnormalised bin widths and heights.
        raw_derivatives: ``(..., K - 1)`` unconstrained derivatives at the
            interior knots (a shifted ``softplus`` makes them positive, 1 at
            ``raw = 0``; 1 at both ends). All raw inputs 0 give the identity.
        bound: the spline acts on ``[-bound, bound]``, the identity outside.
        inverse: apply the inverse function.
    """
    inside = (x >= -bound) & (x <= bound)
    widths, x_knots = _knots(raw_widths, bound, MIN_BIN_WIDTH)
    heights, y_knots = _knots(raw_heights, bound, MIN_BIN_HEIGHT)
    ones = torch.ones_like(raw_derivatives[..., :1])
    interior = MIN_DERIVATIVE + (1 - MIN_DERIVATIVE) * F.softplus(raw_derivatives + SOFTPLUS_ONE)
    derivatives = torch.cat([ones, interior, ones], dim=-1)

    knots = y_knots if inverse else x_knots
    clamped = x.clamp(-bound, bound)
    # the bin holding each value: the number of interior knots at or below it
    index = (clamped.unsqueeze(-1) >= knots[..., 1:-1]).sum(dim=-1)
    x_k, y_k = _gather(x_knots, index), _gather(y_knots, index)
    w_k, h_k = _gather(widths, index), _gather(heights, index)
    d_k, d_k1 = _gather(derivatives, index), _gather(derivatives, index + 1)
    slope = h_k / w_k
    curvature = d_k + d_k1 - 2 * slope

    if inverse:
        dy = clamped - y_k
        a = h_k * (slope - d_k) + dy * curvature
        b = h_k * d_k - dy * curvature
        c = -slope * dy
        discriminant = (b.square() - 4 * a * c).clamp(min=0)
        xi = (2 * c) / (-b - torch.sqrt(discriminant))
    else:
        xi = (clamped - x_k) / w_k
    xi_one_minus_xi = xi * (1 - xi)
    denominator = slope + curvature * xi_one_minus_xi
    out = xi * w_k + x_k if inverse else y_k + h_k * (slope * xi.square() + d_k * xi_one_minus_xi) / denominator
    numerator = slope.square() * (d_k1 * xi.square() + 2 * slope * xi_one_minus_xi + d_k * (1 - xi).square())
    log_derivative = torch.log(numerator) - 2 * torch.log(denominator)
    if inverse:
        log_derivative = -log_derivative
    return torch.where(inside, out, x), torch.where(inside, log_derivative, torch.zeros_like(log_derivative))


class SplineCoupling(Bijector):
    """Coupling on halves of dimension 1 with a rational-quadratic spline per
    transformed coordinate: the first ``split`` features pass through and set,
    through the conditioner, the spline of each of the others.

    Args:
        dim: features of ``x (batch, dim)``.
        conditioner: maps ``(batch, split)`` (plus context) to one tensor
            ``(batch, (dim - split) * (3 * bins - 1))``.
        split: size of the pass-through part; ``dim // 2`` by default.
        bins: pieces of each spline.
        bound: the splines act on ``[-bound, bound]``; the identity outside.

        >>> from realnvp.nets import mlp_parameter_conditioner
        >>> layer = SplineCoupling(2, mlp_parameter_conditioner(1, 3 * 8 - 1, 16, 2), bins=8)
        >>> x = torch.randn(4, 2)
        >>> z, logdet = layer(x)
        >>> bool(torch.allclose(layer.inverse(z)[0], x, atol=1e-5))
        True
    """

    def __init__(self, dim: int, conditioner: Conditioner, split: int | None = None, bins: int = 8,
                 bound: float = 4.0) -> None:
        super().__init__()
        split = dim // 2 if split is None else split
        if not 0 < split < dim:
            raise ValueError(f"split must lie in 1..{dim - 1}, got {split}")
        if bins < 2:
            raise ValueError(f"a spline needs at least 2 bins, got {bins}")
        self.split_size, self.bins, self.bound = split, bins, float(bound)
        self.conditioner = conditioner

    def _transform(self, x: Tensor, context: Tensor | None, inverse: bool) -> tuple[Tensor, Tensor]:
        x_a, x_b = x[:, : self.split_size], x[:, self.split_size :]
        params = self.conditioner(x_a, context).reshape(*x_b.shape, 3 * self.bins - 1)
        widths, heights, derivatives = params.split([self.bins, self.bins, self.bins - 1], dim=-1)
        y_b, log_derivative = rational_quadratic_spline(x_b, widths, heights, derivatives, self.bound, inverse)
        return torch.cat([x_a, y_b], dim=1), sum_except_batch(log_derivative)

    def forward(self, x: Tensor, context: Tensor | None = None) -> tuple[Tensor, Tensor]:
        return self._transform(x, context, inverse=False)

    def inverse(self, z: Tensor, context: Tensor | None = None) -> tuple[Tensor, Tensor]:
        return self._transform(z, context, inverse=True)
