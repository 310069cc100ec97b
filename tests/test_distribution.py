"""A flow as a torch.distributions.Distribution, by torch's own conventions."""

from __future__ import annotations

import torch
from torch.distributions import Distribution

from realnvp.distribution import FlowDistribution
from realnvp.flow import Flow


def test_shapes_follow_torch_conventions(small_flow: Flow) -> None:
    d = FlowDistribution(small_flow)
    assert d.batch_shape == torch.Size() and d.event_shape == torch.Size([2])
    x = d.sample((4, 3))
    assert x.shape == (4, 3, 2) and d.log_prob(x).shape == (4, 3)
    assert d.sample().shape == (2,)


def test_log_prob_matches_the_flow(small_flow: Flow, moons: torch.Tensor) -> None:
    d = FlowDistribution(small_flow)
    with torch.no_grad():
        torch.testing.assert_close(d.log_prob(moons[:10]), small_flow.log_prob(moons[:10]))


def test_rsample_carries_gradients_and_sample_does_not(small_flow: Flow) -> None:
    d = FlowDistribution(small_flow)
    x = d.rsample((16,))
    assert x.requires_grad
    x.square().sum().backward()
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in small_flow.parameters())
    assert not d.sample((16,)).requires_grad


def test_sample_and_log_prob_agree(small_flow: Flow) -> None:
    d = FlowDistribution(small_flow.double())
    x, log_p = d.sample_and_log_prob((50,))
    torch.testing.assert_close(log_p, d.log_prob(x))


def test_context_gives_the_batch_shape(small_flow: Flow) -> None:
    from realnvp.architecture import FlowSpec, build_flow

    flow = build_flow(FlowSpec(dim=2, couplings=2, coupling="split", width=8, depth=1, context_features=3))
    context = torch.randn(5, 3)
    d = FlowDistribution(flow, context)
    assert d.batch_shape == (5,)
    x = d.sample((7,))
    assert x.shape == (7, 5, 2) and d.log_prob(x).shape == (7, 5)
    with torch.no_grad():
        torch.testing.assert_close(d.log_prob(x)[2], flow.log_prob(x[2], context))


def test_no_global_state_is_changed(small_flow: Flow) -> None:
    before = Distribution._validate_args
    FlowDistribution(small_flow, validate_args=True).log_prob(torch.zeros(3, 2))
    FlowDistribution(small_flow, validate_args=False)
    assert Distribution._validate_args == before
