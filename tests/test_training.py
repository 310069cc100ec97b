"""Maximum-likelihood training: it learns, stops safely, and is reproducible."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from realnvp.architecture import FlowSpec, build_flow
from realnvp.training import TrainConfig, fit, l2_penalty, mean_nll

SPEC = FlowSpec(dim=2, couplings=6, coupling="split", width=32, depth=2, separate_networks=False,
                scale_bound=2.0, learn_bound=True, zero_init=True)
STANDARD_NORMAL_NLL = 2.8379  # log(2 pi e): the NLL of standardised data under N(0, I), roughly


def _train(moons: torch.Tensor, **changes: object) -> tuple[object, object]:
    torch.manual_seed(0)
    flow = build_flow(SPEC, moons[:1600])
    config = TrainConfig(**{"epochs": 8, "batch_size": 64, "lr": 3e-3, **changes})
    return flow, fit(flow, moons[:1600], moons[1600:], config, progress=False)


def test_short_training_lowers_the_validation_nll_below_a_bound(moons: torch.Tensor) -> None:
    flow, result = _train(moons)
    assert result.history[0]["val_nll"] < STANDARD_NORMAL_NLL
    assert result.best_val_nll < 1.8
    assert not result.diverged and result.steps == 8 * 25


def test_runs_with_the_same_seed_are_identical(moons: torch.Tensor) -> None:
    first, _ = _train(moons, epochs=2)
    second, _ = _train(moons, epochs=2)
    for (name, a), b in zip(first.state_dict().items(), second.state_dict().values()):
        assert torch.equal(a, b), name


def test_early_stopping_restores_the_best_weights(moons: torch.Tensor) -> None:
    flow, result = _train(moons, epochs=30, lr=3e-2, patience=2)
    assert result.stopped_reason.startswith("early stop")
    assert len(result.history) == result.best_epoch + 2
    assert mean_nll(flow, moons[1600:]) == pytest.approx(result.best_val_nll, abs=1e-5)


def test_non_finite_loss_stops_and_keeps_the_last_good_weights(moons: torch.Tensor) -> None:
    torch.manual_seed(0)
    train = moons[:1600].clone()
    flow = build_flow(SPEC, train)
    before = {k: v.clone() for k, v in flow.state_dict().items()}
    train[100, 0] = float("nan")
    result = fit(flow, train, moons[1600:], TrainConfig(epochs=3, batch_size=128), progress=False)
    assert result.diverged
    assert "loss became nan at epoch 1" in result.stopped_reason
    for name, value in flow.state_dict().items():
        assert torch.equal(value, before[name]), name


def test_l2_penalty_is_keras_l2_on_weights_only() -> None:
    net = nn.Sequential(nn.Linear(2, 3), nn.ReLU(), nn.Linear(3, 1))
    expected = net[0].weight.square().sum() + net[2].weight.square().sum()
    torch.testing.assert_close(l2_penalty(net), expected)


def test_l2_reaches_the_gradient(moons: torch.Tensor) -> None:
    plain, _ = _train(moons, epochs=2)
    decayed, _ = _train(moons, epochs=2, l2=1.0)
    with torch.no_grad():
        assert float(l2_penalty(decayed)) < 0.8 * float(l2_penalty(plain))


def test_early_stopping_needs_validation_data(moons: torch.Tensor) -> None:
    flow = build_flow(SPEC, moons)
    with pytest.raises(ValueError, match="validation"):
        fit(flow, moons, None, TrainConfig(epochs=1, patience=3), progress=False)
