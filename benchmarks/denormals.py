"""Why the seed preset with L2 slowed down, and what flushing subnormals buys.

    python benchmarks/denormals.py --model runs/results/seed_l20.01-seed0 --out benchmarks/results

Continues training a model that was trained with the L2 penalty (batch 256,
Adam, the same loss) from its weights, once with ``torch.set_flush_denormal``
off and once on, and once from a fresh model; reports the steps per second
and, at the end of each, how many values among the weights, gradients and
Adam's moment estimates are subnormal (nonzero, below 1.18e-38 in float32).
Writes ``denormals.json``.
"""

from __future__ import annotations

import argparse
import copy
import json
import time
from pathlib import Path

import torch

from realnvp.architecture import build_flow
from realnvp.datasets import sample_moons
from realnvp.files import write_text_atomically
from realnvp.flow import Flow
from realnvp.serialization import load_with_spec
from realnvp.training import l2_penalty

SMALLEST_NORMAL = torch.finfo(torch.float32).tiny


def subnormals(tensors: list[torch.Tensor]) -> int:
    """Count the nonzero values below float32's smallest normal number."""
    return sum(int(((t != 0) & (t.abs() < SMALLEST_NORMAL)).sum()) for t in tensors)


def continue_training(flow: Flow, data: torch.Tensor, flush: bool, steps: int) -> dict[str, float]:
    """Train a copy of ``flow``; its speed and the subnormal values it ends with."""
    flow = copy.deepcopy(flow).train()
    optimizer = torch.optim.Adam(flow.parameters(), lr=1e-4)
    previous = torch.set_flush_denormal(flush)
    try:
        for step in range(steps + 5):
            if step == 5:
                start = time.perf_counter()
            batch = data[(step * 256) % (len(data) - 256):][:256]
            loss = -flow.standardized_log_prob(batch).mean() + 0.01 * l2_penalty(flow)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        rate = steps / (time.perf_counter() - start)
    finally:
        torch.set_flush_denormal(previous)
    params = list(flow.parameters())
    states = [v for state in optimizer.state.values() for v in state.values() if v.dim() > 0]
    return {
        "steps_per_s": rate,
        "subnormal_weights": subnormals([p.detach() for p in params]),
        "subnormal_gradients": subnormals([p.grad for p in params if p.grad is not None]),
        "subnormal_adam_moments": subnormals(states),
        "values_checked": sum(p.numel() for p in params) * 4,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, required=True)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    parser.add_argument("--steps", type=int, default=100)
    args = parser.parse_args()
    trained, spec = load_with_spec(args.model)
    data = torch.as_tensor(sample_moons(30_000, 0.05, 0), dtype=torch.float32)
    weights = torch.cat([p.detach().flatten() for p in trained.parameters()])
    torch.manual_seed(0)
    fresh = build_flow(spec, data)
    report = {
        "model": str(args.model),
        "steps": args.steps,
        "median_abs_weight_of_trained_model": float(weights.abs().median()),
        "trained_l2_model_flush_off": continue_training(trained, data, False, args.steps),
        "trained_l2_model_flush_on": continue_training(trained, data, True, args.steps),
        "fresh_model_flush_off": continue_training(fresh, data, False, args.steps),
    }
    print(json.dumps(report, indent=2))
    write_text_atomically(args.out / "denormals.json", json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
