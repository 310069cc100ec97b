"""The stacked MLP computes what its networks compute, with exact gradients,
and in bfloat16 it stays close to float32."""

from __future__ import annotations

import pytest
import torch

from realnvp.nets import MLP, mlp_conditioner
from realnvp.stacked_mlp import StackedMLP
from realnvp.training import l2_penalty


def _networks(k: int, depth: int, dtype: torch.dtype = torch.float32) -> list[MLP]:
    torch.manual_seed(0)
    return [MLP(3, 2, width=16, depth=depth).to(dtype) for _ in range(k)]


@pytest.mark.parametrize("k", [1, 2, 3])
@pytest.mark.parametrize("depth", [1, 2, 4])
def test_outputs_and_gradients_match_the_separate_networks(k: int, depth: int) -> None:
    mlps = _networks(k, depth)
    stacked = StackedMLP(mlps)
    x = torch.randn(7, 3, requires_grad=True)
    out = stacked(x)
    expected = torch.stack([mlp(x) for mlp in mlps])
    torch.testing.assert_close(out, expected, atol=1e-5, rtol=1e-5)

    weights = torch.randn_like(out)
    grad_x, *grad_params = torch.autograd.grad((out * weights).sum(), [x, *stacked.parameters()])
    expected_grad_x = torch.autograd.grad((expected * weights).sum(), x, retain_graph=True)[0]
    torch.testing.assert_close(grad_x, expected_grad_x, atol=1e-5, rtol=1e-5)
    layers = len(stacked.weights)
    for i, mlp in enumerate(mlps):
        # an MLP's parameters come as weight (fan_out, fan_in), bias, weight, bias, ...
        per_layer = torch.autograd.grad((expected * weights).sum(), list(mlp.parameters()), retain_graph=True)
        for layer in range(layers):
            torch.testing.assert_close(grad_params[layer][i], per_layer[2 * layer], atol=1e-5, rtol=1e-5)
            torch.testing.assert_close(grad_params[layers + layer][i, 0], per_layer[2 * layer + 1], atol=1e-5, rtol=1e-5)


def test_gradcheck_in_float64() -> None:
    stacked = StackedMLP(_networks(2, 3, torch.float64))
    x = torch.randn(5, 3, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda x, *params: stacked(x), (x, *stacked.parameters()))


def test_no_input_gradient_is_computed_where_none_is_needed() -> None:
    stacked = StackedMLP(_networks(2, 2))
    stacked(torch.randn(4, 3)).sum().backward()
    assert all(p.grad is not None for p in stacked.parameters())


def test_bfloat16_networks_stay_close_to_float32() -> None:
    mlps = [MLP(3, 2, width=256, depth=4, glorot_init=True) for _ in range(2)]
    exact, mixed = StackedMLP(mlps), StackedMLP(mlps, compute_dtype=torch.bfloat16)
    x = torch.randn(512, 3)
    with torch.no_grad():
        out_exact, out_mixed = exact(x), mixed(x)
    assert out_mixed.dtype == torch.float32
    assert float((out_mixed - out_exact).norm() / out_exact.norm()) < 2e-2
    exact(x).square().sum().backward()
    mixed(x).square().sum().backward()
    for p_exact, p_mixed in zip(exact.parameters(), mixed.parameters()):
        assert p_mixed.grad.dtype == torch.float32
        assert float((p_mixed.grad - p_exact.grad).norm() / p_exact.grad.norm()) < 5e-2


def test_separate_conditioner_keeps_the_initialisation_of_two_networks() -> None:
    torch.manual_seed(3)
    s_net, t_net = MLP(2, 2, 8, 2, glorot_init=True), MLP(2, 2, 8, 2, glorot_init=True)
    torch.manual_seed(3)
    conditioner = mlp_conditioner(2, 2, 8, 2, separate=True, glorot_init=True)
    x = torch.randn(6, 2)
    raw_s, t = conditioner(x)
    torch.testing.assert_close(raw_s, s_net(x))
    torch.testing.assert_close(t, t_net(x))


def test_l2_penalty_counts_the_stacked_kernels_not_the_biases() -> None:
    mlps = _networks(2, 2)
    with torch.no_grad():
        expected = sum(float(m.weight.square().sum()) for mlp in mlps for m in mlp if isinstance(m, torch.nn.Linear))
        assert float(l2_penalty(StackedMLP(mlps))) == pytest.approx(expected, rel=1e-6)


def test_networks_of_different_depths_are_refused() -> None:
    with pytest.raises(ValueError, match="same number of layers"):
        StackedMLP([MLP(3, 2, 8, 1), MLP(3, 2, 8, 2)])
