"""Shared fixtures: small flows and data the tests make themselves."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
import torch

from realnvp.architecture import FlowSpec, build_flow
from realnvp.datasets import sample_moons
from realnvp.flow import Flow

SMALL_SPEC = FlowSpec(dim=2, couplings=4, coupling="split", width=16, depth=2, separate_networks=False,
                      scale_bound=2.0, learn_bound=True, actnorm=True)


@pytest.fixture
def moons() -> torch.Tensor:
    return torch.as_tensor(sample_moons(2000, 0.05, seed=3), dtype=torch.float32)


@pytest.fixture
def small_flow(moons: torch.Tensor) -> Flow:
    """A small untrained flow with every kind of layer moved off the identity."""
    torch.manual_seed(0)
    flow = build_flow(SMALL_SPEC, moons)
    flow.train()
    flow.log_prob(moons[:256])  # ActNorm's data-dependent initialisation
    generator = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for p in flow.parameters():
            p.add_(0.1 * torch.randn(p.shape, generator=generator))
    return flow.eval()


def kill_after_epoch(process: subprocess.Popen, out: Path, epoch: int, timeout: float = 240) -> int:
    """SIGKILL a training run (its whole process group) once its checkpoint in
    ``out`` reaches ``epoch``; returns the epoch of the checkpoint left behind."""
    checkpoint = out / "checkpoint.json"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if checkpoint.exists() and json.loads(checkpoint.read_text())["epoch"] >= epoch:
            break
        time.sleep(0.02)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    return json.loads(checkpoint.read_text())["epoch"]
