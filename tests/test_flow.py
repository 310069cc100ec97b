"""The flow: change of variables, sampling, encode/decode, devices and dtypes."""

from __future__ import annotations

import math

import pytest
import torch

from realnvp.architecture import FlowSpec, build_flow
from realnvp.bijectors import Compose, ElementwiseAffine
from realnvp.flow import Flow, standard_normal_log_prob


def test_density_integrates_to_one_on_a_grid(small_flow: Flow) -> None:
    flow = small_flow.double()
    # the perturbed flow has heavy tails: samples reach |x| ~ 60
    xs = ys = torch.linspace(-60.0, 60.0, 2000, dtype=torch.float64)
    grid = torch.stack(torch.meshgrid(xs, ys, indexing="xy"), dim=-1).reshape(-1, 2)
    with torch.no_grad():
        density = flow.log_prob(grid).exp()
    cell = (xs[1] - xs[0]) * (ys[1] - ys[0])
    assert float(density.sum() * cell) == pytest.approx(1.0, abs=5e-3)


def test_log_prob_is_change_of_variables_through_one_sixth_map() -> None:
    """x -> z = ((x1 - 1)/3, x2/2): log p(x) = log N(z) + log(1/6)."""
    flow = Flow(Compose([ElementwiseAffine(torch.tensor([1.0, 0.0]), torch.tensor([3.0, 2.0]))]), (2,))
    x = torch.tensor([[4.0, 2.0]])
    expected = standard_normal_log_prob(torch.tensor([[1.0, 1.0]])) - math.log(6)
    torch.testing.assert_close(flow.log_prob(x), expected)


def test_standardizer_log_det_is_counted(moons: torch.Tensor) -> None:
    flow = build_flow(FlowSpec(dim=2, couplings=2, coupling="split", width=8, depth=1), moons)
    log_det = flow.standardizer.log_abs_det()
    with torch.no_grad():
        torch.testing.assert_close(flow.standardized_log_prob(moons), flow.log_prob(moons) - log_det)
    expected = -moons.std(0).log().sum()
    torch.testing.assert_close(log_det, expected)


def test_encode_decode_round_trip(small_flow: Flow, moons: torch.Tensor) -> None:
    with torch.no_grad():
        torch.testing.assert_close(small_flow.decode(small_flow.encode(moons)), moons, atol=1e-5, rtol=1e-5)


def test_sample_and_log_prob_agree_with_log_prob(small_flow: Flow) -> None:
    flow = small_flow.double()
    with torch.no_grad():
        x, log_p = flow.sample_and_log_prob(500, generator=torch.Generator().manual_seed(0))
        torch.testing.assert_close(log_p, flow.log_prob(x))
    assert x.dtype == torch.float64 and x.shape == (500, 2)


def test_sample_is_reproducible_and_temperature_zero_is_the_mode_of_the_latent(small_flow: Flow) -> None:
    with torch.no_grad():
        a = small_flow.sample(10, generator=torch.Generator().manual_seed(5))
        b = small_flow.sample(10, generator=torch.Generator().manual_seed(5))
        cold = small_flow.sample(3, temperature=0.0)
        torch.testing.assert_close(a, b)
        torch.testing.assert_close(cold, small_flow.decode(torch.zeros(3, 2)))


def test_lower_temperature_concentrates_samples(small_flow: Flow) -> None:
    with torch.no_grad():
        hot = small_flow.encode(small_flow.sample(4000, temperature=1.0, generator=torch.Generator().manual_seed(0)))
        cold = small_flow.encode(small_flow.sample(4000, temperature=0.5, generator=torch.Generator().manual_seed(0)))
    assert float(cold.std()) == pytest.approx(0.5 * float(hot.std()), rel=1e-3)


def test_negative_temperature_is_refused(small_flow: Flow) -> None:
    with pytest.raises(ValueError, match="temperature"):
        small_flow.sample(2, temperature=-1.0)


def test_float64_end_to_end(small_flow: Flow, moons: torch.Tensor) -> None:
    flow = small_flow.double()
    x = moons.double()
    with torch.no_grad():
        assert flow.log_prob(x).dtype == torch.float64
        assert flow.sample(4).dtype == torch.float64
        torch.testing.assert_close(flow.decode(flow.encode(x)), x, atol=1e-12, rtol=1e-12)


def test_gradients_reach_every_parameter(small_flow: Flow, moons: torch.Tensor) -> None:
    small_flow.train()
    small_flow.log_prob(moons[:64]).mean().backward()
    missing = [name for name, p in small_flow.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
    assert missing == []
