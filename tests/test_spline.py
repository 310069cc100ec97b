"""Rational-quadratic splines: the identity at zero parameters and outside the
bound, monotonic and continuous, exactly invertible with a bfloat16 conditioner."""

from __future__ import annotations

import torch

from realnvp.bijectors import SplineCoupling, rational_quadratic_spline
from realnvp.nets import mlp_parameter_conditioner

BINS = 6


def _raw(n: int, scale: float, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    return (scale * torch.randn(n, BINS, generator=generator, dtype=torch.float64),
            scale * torch.randn(n, BINS, generator=generator, dtype=torch.float64),
            scale * torch.randn(n, BINS - 1, generator=generator, dtype=torch.float64))


def test_zero_parameters_give_the_identity() -> None:
    x = torch.linspace(-5, 5, 101, dtype=torch.float64)
    zeros = torch.zeros(101, BINS, dtype=torch.float64)
    y, log_derivative = rational_quadratic_spline(x, zeros, zeros, zeros[:, 1:], bound=3.0)
    torch.testing.assert_close(y, x)
    torch.testing.assert_close(log_derivative, torch.zeros_like(x))


def test_identity_outside_the_bound_and_monotonic_inside() -> None:
    x = torch.linspace(-4, 4, 2001, dtype=torch.float64)
    widths, heights, derivatives = (r[:1].expand(len(x), -1) for r in _raw(1, 1.0))
    y, log_derivative = rational_quadratic_spline(x, widths, heights, derivatives, bound=3.0)
    outside = x.abs() > 3.0
    torch.testing.assert_close(y[outside], x[outside])
    assert bool((y[1:] > y[:-1]).all())
    # continuous: no jump bigger than the steepest slope times the grid step allows
    assert float((y[1:] - y[:-1]).max()) <= float(log_derivative.exp().max()) * 0.004 * 1.01
    assert abs(float(y[x.abs() <= 3.0].min()) + 3.0) < 0.01 and abs(float(y[x.abs() <= 3.0].max()) - 3.0) < 0.01


def test_inverse_and_log_derivatives_match() -> None:
    x = 3.5 * torch.rand(500, dtype=torch.float64) * 2 - 3.5
    raw = _raw(500, 1.5)
    y, forward_log = rational_quadratic_spline(x, *raw, bound=3.0)
    x_back, inverse_log = rational_quadratic_spline(y, *raw, bound=3.0, inverse=True)
    torch.testing.assert_close(x_back, x, atol=1e-10, rtol=1e-10)
    torch.testing.assert_close(forward_log + inverse_log, torch.zeros_like(x), atol=1e-10, rtol=0)
    numerical = (rational_quadratic_spline(x + 1e-6, *raw, bound=3.0)[0]
                 - rational_quadratic_spline(x - 1e-6, *raw, bound=3.0)[0]) / 2e-6
    torch.testing.assert_close(forward_log.exp(), numerical, atol=1e-5, rtol=1e-5)


def test_bfloat16_conditioner_keeps_the_coupling_exactly_invertible() -> None:
    torch.manual_seed(0)
    layer = SplineCoupling(4, mlp_parameter_conditioner(2, 2 * (3 * BINS - 1), 64, 2, compute_dtype=torch.bfloat16),
                           bins=BINS, bound=3.0)
    with torch.no_grad():
        layer.conditioner.networks.weights[-1].normal_(0, 0.05)
    for rows in (300, 3000):  # the batched and the fused oneDNN path
        x = torch.randn(rows, 4)
        with torch.no_grad():
            z, logdet = layer(x)
            x_back, inverse_logdet = layer.inverse(z)
        torch.testing.assert_close(x_back, x, atol=2e-5, rtol=2e-5)
        torch.testing.assert_close(logdet + inverse_logdet, torch.zeros_like(logdet), atol=1e-5, rtol=0)
        assert float((z - x).abs().max()) > 1e-2  # not the identity


def test_context_reaches_the_spline() -> None:
    torch.manual_seed(0)
    layer = SplineCoupling(2, mlp_parameter_conditioner(1, 3 * BINS - 1, 16, 2, context_features=2, zero_init=False),
                           bins=BINS, bound=3.0)
    x = torch.randn(8, 2)
    with torch.no_grad():
        z_first, _ = layer(x, torch.tensor([[1.0, 0.0]]).expand(8, 2))
        z_second, _ = layer(x, torch.tensor([[0.0, 1.0]]).expand(8, 2))
        x_back, _ = layer.inverse(z_second, torch.tensor([[0.0, 1.0]]).expand(8, 2))
    assert float((z_first - z_second).abs().max()) > 1e-3
    torch.testing.assert_close(x_back, x, atol=1e-5, rtol=1e-5)
