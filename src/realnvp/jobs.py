"""Training jobs: the data, the preset and the seed, run end to end.

A job trains a flow and writes into one directory the model, ``metrics.json``
and figures, with a checkpoint after every epoch so that ``realnvp train
--resume DIR`` can continue a run that was killed. The job itself is stored in
the checkpoint as JSON, so resuming needs nothing but the directory.
"""

from __future__ import annotations

import json
import os
import platform
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch

from realnvp.architecture import Spec, build_flow, spec_from_dict
from realnvp.checkpoint import save_checkpoint
from realnvp.datasets import MoonsDensity, sample_labelled_moons
from realnvp.evaluation import kl_report, nll_report, one_hot
from realnvp.figures import (
    plot_conditional_samples,
    plot_curves,
    plot_density,
    plot_marginals,
    plot_pairs,
    plot_reference_figure,
)
from realnvp.files import file_sha256, write_text_atomically
from realnvp.flow import Flow
from realnvp.presets import Preset, tabular_preset
from realnvp.serialization import save
from realnvp.tabular import DataFileError, read_table
from realnvp.training import TrainConfig, TrainingState, TrainResult, fit, process_group

MOONS_TEST_POINTS = 20_000
MOONS_TEST_SEED = 999_999  # one fixed test set, shared by every run and seed
MIN_ROWS = 20
MOONS = 2  # the number of moons, and so of conditions for a conditional moons flow


@dataclass(frozen=True)
class DataSource:
    """Where the training data come from: two moons, a user's table, scikit-learn's
    digits, or a user's images (a folder or a ``.npy``; ``image_size`` resizes)."""

    kind: Literal["moons", "file", "digits", "images"] = "moons"
    path: str | None = None
    columns: list[str] | None = None
    array: str | None = None
    points: int = 30_000
    noise: float = 0.05
    conditional: bool = False
    image_size: int | None = None
    sha256: str | None = None


@dataclass(frozen=True)
class Job:
    """A training run: everything needed to repeat it or resume it."""

    preset: str
    spec: Spec
    train: TrainConfig
    seed: int
    data: DataSource
    val_fraction: float
    test_fraction: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "spec": self.spec.to_dict(), "train": self.train.to_dict()}

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> Job:
        return cls(**{**values, "spec": spec_from_dict(values["spec"]), "train": TrainConfig(**values["train"]),
                      "data": DataSource(**values["data"])})


@dataclass
class Splits:
    """Training, validation and test rows ``(n, dim)``, the columns' names and,
    for conditional flows, each row's context ``(n, features)`` and label."""

    train: np.ndarray
    val: np.ndarray
    test: np.ndarray
    columns: list[str] = field(default_factory=list)
    train_context: np.ndarray | None = None
    val_context: np.ndarray | None = None
    test_context: np.ndarray | None = None
    test_labels: np.ndarray | None = None


def moons_job(preset: Preset, seed: int, conditional: bool = False, **overrides: Any) -> Job:
    """Train ``preset`` on ``make_moons``; ``overrides`` replace training fields.

    ``conditional`` learns ``p(x | moon)``, the moon given as a one-hot context.
    """
    changes = {k: v for k, v in overrides.items() if v is not None}
    spec = replace(preset.spec, context_features=MOONS if conditional else 0)
    return Job(preset.name, spec, replace(preset.train, seed=seed, **changes), seed,
               DataSource("moons", points=preset.points, noise=preset.noise, conditional=conditional),
               preset.val_fraction)


def file_job(path: str | os.PathLike[str], columns: list[str] | None, array: str | None, seed: int,
             **overrides: Any) -> Job:
    """Train the ``tabular`` preset, sized to the file, on a user's table."""
    table = read_table(path, columns, array)
    rows, dim = table.values.shape
    if rows < MIN_ROWS:
        raise DataFileError(f"{path}: {rows} rows, too few to train: need at least {MIN_ROWS} "
                            f"(80 % to train on, 10 % to validate, 10 % to test)")
    if dim < 2:
        raise DataFileError(f"{path}: only 1 column ({table.columns[0]}); "
                            f"RealNVP needs at least 2: a coupling layer transforms some columns "
                            f"conditioned on the others")
    preset = tabular_preset(dim, int(rows * 0.8))
    changes = {k: v for k, v in overrides.items() if v is not None}
    source = DataSource("file", str(Path(path).resolve()), columns, array, sha256=file_sha256(path))
    return Job(preset.name, preset.spec, replace(preset.train, seed=seed, **changes), seed, source, 0.1, 0.1)


def load_splits(job: Job) -> Splits:
    """The job's data, split the same way every time it is asked."""
    source = job.data
    if source.kind == "moons":
        data, labels = sample_labelled_moons(source.points, source.noise, job.seed)
        n_train = int(round(len(data) * (1 - job.val_fraction)))
        test, test_labels = sample_labelled_moons(MOONS_TEST_POINTS, source.noise, MOONS_TEST_SEED)
        splits = Splits(data[:n_train], data[n_train:], test, ["x1", "x2"])
        if source.conditional:
            context = one_hot(labels, MOONS)
            splits.train_context, splits.val_context = context[:n_train], context[n_train:]
            splits.test_context, splits.test_labels = one_hot(test_labels, MOONS), test_labels
        return splits
    if source.sha256 is not None and file_sha256(source.path) != source.sha256:
        raise DataFileError(f"{source.path}: the file changed since this run started; cannot resume on other data")
    table = read_table(source.path, source.columns, source.array)
    order = np.random.default_rng(job.seed).permutation(len(table.values))
    n_val = max(1, int(round(len(order) * job.val_fraction)))
    n_test = max(1, int(round(len(order) * job.test_fraction)))
    values = table.values[order]
    return Splits(values[n_val + n_test:], values[:n_val], values[n_val:n_val + n_test], table.columns)


def _tensor(values: np.ndarray | None) -> torch.Tensor | None:
    return None if values is None else torch.as_tensor(values, dtype=torch.float32)


def count_parameters(module: torch.nn.Module) -> int:
    """Number of trainable scalars."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad)


def training_metrics(job: Job, flow: Flow, result: TrainResult, device: str | torch.device) -> dict[str, Any]:
    """What every job reports about its training: the recipe, the run and the machine."""
    return {
        "preset": job.preset,
        "seed": job.seed,
        "train_config": job.train.to_dict(),
        "architecture": job.spec.to_dict(),
        "parameters": count_parameters(flow),
        "training_seconds": result.seconds,
        "steps": result.steps,
        "epochs_run": len(result.history),
        "best_epoch": result.best_epoch,
        "stopped_reason": result.stopped_reason,
        "diverged": result.diverged,
        "machine": {"platform": platform.platform(), "processor": platform.processor(),
                    "torch": torch.__version__, "threads": torch.get_num_threads(), "device": str(device),
                    "processes": process_group()[1]},
        "history": result.history,
    }


def write_figures(flow: Flow, splits: Splits, job: Job, out: Path, history: list[dict[str, float]]) -> None:
    """The figures of a finished job: training curves, and pictures of the fit."""
    plot_curves(history, out / "curves.png")
    dim = splits.train.shape[1]
    if job.data.conditional:
        plot_conditional_samples(flow, MOONS, out / "conditions.png", seed=job.seed)
    elif job.data.kind == "moons":
        plot_reference_figure(flow, splits.test[:5000], out / "reference.png", seed=job.seed)
        plot_density(flow, out / "density.png", MoonsDensity(job.data.noise))
    elif dim == 2:
        plot_reference_figure(flow, np.concatenate([splits.train, splits.val])[:5000], out / "reference.png",
                              seed=job.seed)
    else:
        data = np.concatenate([splits.train, splits.val])[:3000]
        generator = torch.Generator().manual_seed(job.seed)
        with torch.no_grad():
            samples = flow.sample(len(data), generator=generator).double().cpu().numpy()
        plot_pairs(data, samples, splits.columns, out / "pairs.png")
        plot_marginals(data, samples, splits.columns, out / "marginals.png")


def run_job(job: Job, out: str | os.PathLike[str], progress: bool = True,
            resume: TrainingState | None = None, device: str | torch.device = "cpu") -> dict[str, Any]:
    """Train, evaluate and write everything into ``out``; returns the metrics.

    NLLs are nats per point, ``raw`` in the data's own coordinates and
    ``standardized`` after the flow's standardisation. Inside a
    ``torch.distributed`` group (``torchrun``) every process trains on its share
    of each minibatch and only rank 0 writes checkpoints, the model, the
    metrics and the figures.
    """
    out = Path(out)
    splits = load_splits(job)
    torch.manual_seed(job.seed)
    train = torch.as_tensor(splits.train, dtype=torch.float32)
    flow = build_flow(job.spec, train).to(device)
    job_document = job.to_dict()
    main_process = process_group()[0] == 0

    def checkpoint(state: TrainingState) -> None:
        if main_process:
            save_checkpoint(out, state, job_document)

    result = fit(flow, train, torch.as_tensor(splits.val, dtype=torch.float32), job.train,
                 progress=progress and main_process, checkpoint=checkpoint, resume=resume,
                 train_context=_tensor(splits.train_context), val_context=_tensor(splits.val_context))
    metrics: dict[str, Any] = {
        "units": "nats per point; 'raw' in the data's own coordinates, 'standardized' after the "
                 "flow's standardisation (the reference's loss); history NLLs are standardized",
        "data": {**asdict(job.data), "columns": splits.columns, "train": len(splits.train),
                 "validation": len(splits.val), "test": len(splits.test)},
        "test_nll": nll_report(flow, splits.test, splits.test_context),
        **training_metrics(job, flow, result, device),
    }
    if job.data.kind == "moons":
        metrics.update(kl_report(flow, splits.test, MoonsDensity(job.data.noise), splits.test_labels))
    if not main_process:
        return metrics
    save(flow, job.spec, out, extra={"preset": job.preset, "seed": job.seed, "columns": splits.columns,
                                     "conditional": job.data.conditional, "train_config": job.train.to_dict()})
    write_text_atomically(out / "metrics.json", json.dumps(metrics, indent=2) + "\n")
    write_figures(flow, splits, job, out, result.history)
    return metrics
