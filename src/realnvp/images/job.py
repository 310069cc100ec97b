"""Training a multi-scale RealNVP on images, end to end: data, dequantised
training, bits per dimension on held-out images against an independent-pixel
baseline, sample grids and reconstructions."""

from __future__ import annotations

import json
import math
import os
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from realnvp.checkpoint import save_checkpoint
from realnvp.evaluation import Estimate, one_hot
from realnvp.figures import plot_curves
from realnvp.files import write_text_atomically
from realnvp.flow import Flow
from realnvp.images.architecture import ImageFlowSpec, build_image_flow
from realnvp.images.data import ImageSet, load_digits_images, read_image_array, read_image_folder, write_grid
from realnvp.images.quantization import bin_centres, bits_per_dim, dequantize, quantize
from realnvp.files import file_sha256
from realnvp.jobs import DataSource, Job, training_metrics
from realnvp.presets import image_preset
from realnvp.serialization import save
from realnvp.tabular import DataFileError
from realnvp.training import TrainingState, fit, process_group

MIN_IMAGES = 10
DIGIT_CLASSES = 10
TEMPERATURES = (0.5, 0.7, 0.85, 1.0)
EVAL_SEED = 1234  # the dequantisation noise of validation and test images


def image_job(data: str, seed: int, image_size: int | None = None, conditional: bool = False,
              **overrides: Any) -> Job:
    """Train the ``image`` preset on ``data``: ``"digits"``, a folder of images or a
    ``.npy``; ``conditional`` learns ``p(image | label)`` (digits: the digit)."""
    if conditional and data != "digits":
        raise DataFileError(f"{data}: --conditional needs labelled images; today that is --data digits")
    source = DataSource("digits", conditional=conditional) if data == "digits" else DataSource(
        "images", str(Path(data).resolve()), image_size=image_size,
        sha256=None if Path(data).is_dir() else file_sha256(data))
    train, _, _ = load_image_splits(source, seed)
    _, channels, height, width = train.pixels.shape
    spec, config = image_preset(channels, height, width, train.levels)
    if conditional:
        spec = replace(spec, context_features=DIGIT_CLASSES)
    changes = {k: v for k, v in overrides.items() if v is not None}
    return Job("image", spec, replace(config, seed=seed, **changes), seed, source, 0.1, 0.1)


def _subset(images: ImageSet, index: np.ndarray) -> ImageSet:
    labels = None if images.labels is None else images.labels[index]
    return ImageSet(images.pixels[index], images.levels, [images.names[i] for i in index], labels)


def label_context(images: ImageSet, classes: int) -> torch.Tensor | None:
    """One-hot labels ``(N, classes)`` of a conditional model, ``None`` for an unconditional one."""
    return None if not classes else torch.as_tensor(one_hot(images.labels, classes), dtype=torch.float32)


def load_image_splits(source: DataSource, seed: int) -> tuple[ImageSet, ImageSet, ImageSet]:
    """Training, validation and test images: digits' fixed test split, or a seeded
    shuffle of the user's images (10 % validation, 10 % test)."""
    if source.kind == "digits":
        train, test = load_digits_images()
        n_val = len(train.pixels) // 10
        order = np.random.default_rng(seed).permutation(len(train.pixels))
        return _subset(train, order[n_val:]), _subset(train, order[:n_val]), test
    path = Path(source.path)
    if source.sha256 is not None and file_sha256(path) != source.sha256:
        raise DataFileError(f"{path}: the file changed since this run started; cannot resume on other data")
    images = read_image_folder(path, source.image_size) if path.is_dir() else read_image_array(path)
    n = len(images.pixels)
    if n < MIN_IMAGES:
        raise DataFileError(f"{path}: {n} images, too few to train: need at least {MIN_IMAGES}")
    order = np.random.default_rng(seed).permutation(n)
    n_held = max(1, n // 10)
    return (_subset(images, order[2 * n_held:]), _subset(images, order[:n_held]),
            _subset(images, order[n_held:2 * n_held]))


def independent_pixel_bits(train: ImageSet, test: ImageSet) -> float:
    """The baseline: each pixel an independent categorical over the levels,
    fitted by counting (add-one smoothing); exact discrete bits per dimension."""
    levels = train.levels
    flat_train = train.pixels.reshape(len(train.pixels), -1)
    counts = np.stack([np.bincount(column, minlength=levels) for column in flat_train.T]) + 1.0
    probabilities = counts / counts.sum(axis=1, keepdims=True)
    flat_test = test.pixels.reshape(len(test.pixels), -1)
    chosen = probabilities[np.arange(flat_test.shape[1]), flat_test]
    return float(-np.log2(chosen).mean())


@torch.no_grad()
def image_bits(flow: Flow, images: ImageSet, context: torch.Tensor | None = None, seed: int = EVAL_SEED,
               batch: int = 512) -> np.ndarray:
    """Bits per dimension of each image (given its ``context`` row), with one
    seeded dequantisation draw each."""
    flow.eval()
    generator = torch.Generator().manual_seed(seed)
    dims = int(np.prod(images.pixels.shape[1:]))
    out = []
    for start in range(0, len(images.pixels), batch):
        pixels = torch.as_tensor(images.pixels[start:start + batch])
        x = flow.as_input(dequantize(pixels, images.levels, generator, flow.dtype))
        block_context = None if context is None else flow.as_input(context[start:start + batch])
        out.append(bits_per_dim(flow.log_prob(x, block_context), dims, images.levels).double().cpu())
    return torch.cat(out).numpy()


@torch.no_grad()
def reconstruct(flow: Flow, pixels: np.ndarray, levels: int, context: torch.Tensor | None = None) -> np.ndarray:
    """Encode at the bin centres, decode, and round back to pixel levels."""
    x = flow.as_input(bin_centres(torch.as_tensor(pixels), levels, flow.dtype))
    context = None if context is None else flow.as_input(context)
    return quantize(flow.decode(flow.encode(x, context), context), levels).cpu().numpy()


@torch.no_grad()
def sample_pixels(flow: Flow, n: int, temperature: float, levels: int, seed: int,
                  context: torch.Tensor | None = None) -> np.ndarray:
    """``n`` generated images ``(n, C, H, W)`` at ``temperature`` (given ``context
    (n, features)``), as pixel levels."""
    generator = torch.Generator().manual_seed(seed)
    context = None if context is None else flow.as_input(context)
    return quantize(flow.sample(n, temperature, context, generator), levels).cpu().numpy()


def run_image_job(job: Job, out: str | os.PathLike[str], progress: bool = True,
                  resume: TrainingState | None = None, device: str | torch.device = "cpu") -> dict[str, Any]:
    """Train, evaluate and write the model, ``metrics.json`` and the figures into ``out``."""
    out = Path(out)
    spec: ImageFlowSpec = job.spec
    train, val, test = load_image_splits(job.data, job.seed)
    torch.manual_seed(job.seed)
    flow = build_image_flow(spec).to(device)
    levels, dims = spec.levels, spec.dims
    main_process = process_group()[0] == 0
    job_document = job.to_dict()

    def checkpoint(state: TrainingState) -> None:
        if main_process:
            save_checkpoint(out, state, job_document)

    classes = spec.context_features
    val_x = dequantize(torch.as_tensor(val.pixels), levels, torch.Generator().manual_seed(EVAL_SEED))
    result = fit(flow, torch.as_tensor(train.pixels), val_x, job.train, progress=progress and main_process,
                 checkpoint=checkpoint, resume=resume,
                 train_context=label_context(train, classes), val_context=label_context(val, classes),
                 preprocess=lambda batch, generator: dequantize(batch, levels, generator))
    test_context = label_context(test, classes)
    test_bits = Estimate.of(image_bits(flow, test, test_context))
    metrics: dict[str, Any] = {
        "units": "bits per dimension on held-out images (uniform dequantisation, one draw per image); "
                 "history NLLs are nats per image on the unit cube",
        "data": {**asdict(job.data), "shape": list(spec.event_shape), "levels": levels,
                 "train": len(train.pixels), "validation": len(val.pixels), "test": len(test.pixels)},
        "test_bits_per_dim": asdict(test_bits),
        "baseline_independent_pixels_bits_per_dim": independent_pixel_bits(train, test),
        "reconstruction_exact": bool((reconstruct(flow, test.pixels, levels, test_context) == test.pixels).all()),
        **training_metrics(job, flow, result, device),
    }
    if not main_process:
        return metrics
    save(flow, spec, out, extra={"preset": job.preset, "seed": job.seed, "train_config": job.train.to_dict()})
    write_text_atomically(out / "metrics.json", json.dumps(metrics, indent=2) + "\n")
    # Conditional: each row the digits 0..9 in order; otherwise ten unconditional samples.
    grid_context = torch.eye(classes) if classes else None
    write_grid(out / "samples.png", [sample_pixels(flow, 10, t, levels, job.seed, grid_context)
                                     for t in TEMPERATURES], levels)
    first = None if test_context is None else test_context[:10]
    write_grid(out / "reconstructions.png", [test.pixels[:10], reconstruct(flow, test.pixels[:10], levels, first)],
               levels)
    plot_curves(result.history, out / "curves.png", unit="bits per dimension",
                convert=lambda nats: (nats + dims * math.log(levels)) / (dims * math.log(2)))
    return metrics
