"""The fast paths compute what the plain ones do: bfloat16 conditioners, the
fused large-batch path, one graph for torch.compile, compiled training, and
the fast preset."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
import torch

import realnvp
from realnvp.architecture import FlowSpec, build_flow
from realnvp.cli import main
from realnvp.presets import PRESETS
from realnvp.stacked_mlp import FUSED_LINEAR_MIN_ROWS
from realnvp.training import TrainConfig, fit, mean_nll

SPECS = {name: PRESETS[name].spec for name in ("seed", "default", "fast")}


def _flow(name: str, mixed_precision: bool = False) -> realnvp.Flow:
    torch.manual_seed(0)
    flow = build_flow(replace(SPECS[name], mixed_precision=mixed_precision), torch.randn(500, 2))
    with torch.no_grad():  # off the identity of zero-initialised presets
        for p in flow.parameters():
            p.add_(0.02 * torch.randn_like(p))
    return flow.eval()


@pytest.mark.parametrize("name", sorted(SPECS))
def test_bfloat16_conditioners_give_the_same_log_prob_within_tolerance(name: str) -> None:
    exact, mixed = _flow(name), _flow(name, mixed_precision=True)
    x = torch.randn(3000, 2)
    with torch.no_grad():
        difference = (mixed.log_prob(x) - exact.log_prob(x)).abs()
    # bfloat16 keeps 8 bits: ~3e-3 nats on average, more in the tails of deep flows
    assert float(difference.mean()) < 0.01 and float(difference.quantile(0.99)) < 0.05
    assert float(difference.max()) < 0.5


@pytest.mark.parametrize("name", sorted(SPECS))
@pytest.mark.parametrize("mixed_precision", [False, True])
def test_round_trip_on_both_paths(name: str, mixed_precision: bool) -> None:
    """Each coupling inverts exactly whatever its conditioner computes; across
    layers, float32 recovers each layer's input to ~1e-7, and a bfloat16
    conditioner can round that input the other way: rare points then come back
    to ~1e-3 rather than ~1e-6."""
    flow = _flow(name, mixed_precision)
    for rows in (FUSED_LINEAR_MIN_ROWS - 1, FUSED_LINEAR_MIN_ROWS):
        x = torch.randn(rows, 2)
        with torch.no_grad():
            error = (flow.decode(flow.encode(x)) - x).abs().max(dim=1).values
        assert float(error.median()) < 1e-5
        assert float(error.max()) < (5e-3 if mixed_precision else 1e-4)


@pytest.mark.parametrize("name", sorted(SPECS))
def test_fused_large_batch_path_matches_the_batched_path(name: str) -> None:
    flow = _flow(name)
    x = torch.randn(FUSED_LINEAR_MIN_ROWS, 2)
    with torch.no_grad():
        fused = flow.log_prob(x)
        batched = torch.cat([flow.log_prob(block) for block in x.split(FUSED_LINEAR_MIN_ROWS // 2)])
    torch.testing.assert_close(fused, batched, atol=1e-4, rtol=1e-5)


def test_gradients_through_the_fused_path_match_the_batched_path() -> None:
    flow = _flow("seed")
    x = torch.randn(FUSED_LINEAR_MIN_ROWS, 2)
    flow.log_prob(x).sum().backward()
    fused = [p.grad.clone() for p in flow.parameters()]
    flow.zero_grad()
    for block in x.split(FUSED_LINEAR_MIN_ROWS // 2):
        flow.log_prob(block).sum().backward()
    for g_fused, p in zip(fused, flow.parameters()):
        torch.testing.assert_close(g_fused, p.grad, atol=1e-3, rtol=1e-4)


@pytest.mark.parametrize("name", sorted(SPECS))
@pytest.mark.parametrize("mixed_precision", [False, True])
def test_torch_compile_sees_one_graph_without_breaks(name: str, mixed_precision: bool) -> None:
    flow = _flow(name, mixed_precision)
    for rows in (256, FUSED_LINEAR_MIN_ROWS):
        torch._dynamo.reset()
        explanation = torch._dynamo.explain(flow.log_prob)(torch.randn(rows, 2))
        assert explanation.graph_break_count == 0, explanation.break_reasons
        assert explanation.graph_count == 1
    torch._dynamo.reset()
    assert torch._dynamo.explain(lambda n: flow.sample(n))(64).graph_break_count == 0
    torch._dynamo.reset()


def test_compiled_training_matches_eager_training(moons: torch.Tensor) -> None:
    spec = FlowSpec(dim=2, couplings=2, coupling="split", width=16, depth=2, separate_networks=False, zero_init=True)
    config = TrainConfig(epochs=2, batch_size=200, lr=1e-3, seed=0)
    results = []
    for compile_step in (False, True):
        torch.manual_seed(0)
        flow = build_flow(spec, moons)
        fit(flow, moons, None, replace(config, compile=compile_step))
        results.append((flow, mean_nll(flow, moons)))
    torch._dynamo.reset()
    (eager, eager_nll), (compiled, compiled_nll) = results
    assert compiled_nll == pytest.approx(eager_nll, abs=1e-3)
    for p_eager, p_compiled in zip(eager.parameters(), compiled.parameters()):
        torch.testing.assert_close(p_compiled, p_eager, atol=1e-3, rtol=1e-3)


def test_fast_preset_and_mixed_precision_from_the_command_line(tmp_path: Path) -> None:
    out = tmp_path / "fast"
    assert main(["train", "--preset", "fast", "--epochs", "2", "--mixed-precision", "--quiet", "--out", str(out)]) == 0
    config = json.loads((out / "model.json").read_text())
    assert config["architecture"]["coupling"] == "spline" and config["architecture"]["mixed_precision"] is True
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["kl"]["mean"] < 1.0
    flow = realnvp.load(out)
    x = torch.randn(1000, 2)
    with torch.no_grad():
        error = (flow.decode(flow.encode(x)) - x).abs().max(dim=1).values
    assert float(error.median()) < 1e-5 and float(error.max()) < 5e-3  # see test_round_trip_on_both_paths


def test_mixed_precision_is_refused_for_image_flows(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["train", "--data", "digits", "--mixed-precision", "--quiet", "--out", str(tmp_path / "x")]) == 2
    assert "--mixed-precision is for tabular flows" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()
