"""The main job: train a preset on two moons, then write the model, the
metrics and the figures into one directory."""

from __future__ import annotations

import json
import os
import platform
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch

from realnvp.architecture import build_flow
from realnvp.datasets import MoonsDensity, sample_moons
from realnvp.evaluation import kl_report, nll_report
from realnvp.figures import plot_curves, plot_density, plot_reference_figure
from realnvp.files import write_text_atomically
from realnvp.presets import Preset
from realnvp.serialization import save
from realnvp.training import fit

TEST_POINTS = 20_000
TEST_SEED = 999_999  # one fixed test set, shared by every run and seed


def count_parameters(module: torch.nn.Module) -> int:
    """Number of trainable scalars."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad)


def train_two_moons(preset: Preset, seed: int, out: str | os.PathLike[str], progress: bool = True) -> dict[str, Any]:
    """Train ``preset`` on ``make_moons`` with ``seed`` and write into ``out``:
    the model, ``metrics.json``, ``reference.png``, ``density.png`` and
    ``curves.png``. Returns the metrics (nats per point; see ``units``).
    """
    out = Path(out)
    torch.manual_seed(seed)
    data = torch.as_tensor(sample_moons(preset.points, preset.noise, seed), dtype=torch.float32)
    n_train = int(round(len(data) * (1 - preset.val_fraction)))
    train, val = data[:n_train], data[n_train:]
    spec = preset.spec
    flow = build_flow(spec, train)
    config = replace(preset.train, seed=seed)
    result = fit(flow, train, val, config, progress=progress)

    truth = MoonsDensity(preset.noise)
    test = sample_moons(TEST_POINTS, preset.noise, TEST_SEED)
    metrics: dict[str, Any] = {
        "units": "nats per point; 'raw' in the data's own coordinates, 'standardized' after the "
                 "flow's standardisation (the reference's loss); history NLLs are standardized",
        "preset": preset.name,
        "seed": seed,
        "data": {"generator": "sklearn.datasets.make_moons", "points": preset.points, "noise": preset.noise,
                 "train": n_train, "validation": len(val), "test": TEST_POINTS, "test_seed": TEST_SEED},
        "train_config": config.to_dict(),
        "architecture": spec.to_dict(),
        "parameters": count_parameters(flow),
        "training_seconds": result.seconds,
        "steps": result.steps,
        "epochs_run": len(result.history),
        "best_epoch": result.best_epoch,
        "stopped_reason": result.stopped_reason,
        "diverged": result.diverged,
        "test_nll": nll_report(flow, test),
        **kl_report(flow, test, truth),
        "machine": {"platform": platform.platform(), "processor": platform.processor(),
                    "torch": torch.__version__, "threads": torch.get_num_threads()},
        "history": result.history,
    }
    save(flow, spec, out, extra={"preset": preset.name, "seed": seed, "train_config": config.to_dict()})
    write_text_atomically(out / "metrics.json", json.dumps(metrics, indent=2) + "\n")
    plot_reference_figure(flow, test[:5000], out / "reference.png", seed=seed)
    plot_density(flow, out / "density.png", truth)
    plot_curves(result.history, out / "curves.png")
    return metrics
