"""PNG figures of a two-dimensional flow; each file is written atomically.

Figures are built with matplotlib's object API, without pyplot, so nothing
here touches matplotlib's global state or needs a display.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from matplotlib.figure import Figure

from realnvp.datasets import MoonsDensity
from realnvp.evaluation import log_prob_numpy
from realnvp.files import write_atomically
from realnvp.flow import Flow


def _save(figure: Figure, path: str | os.PathLike[str]) -> Path:
    path = Path(path)
    write_atomically(path, lambda tmp: figure.savefig(tmp, format="png", dpi=110, bbox_inches="tight"))
    return path


@torch.no_grad()
def plot_reference_figure(flow: Flow, x: np.ndarray, path: str | os.PathLike[str], seed: int = 0) -> Path:
    """The reference's 2x2 figure: the data ``X``, its codes ``f(X)``, base
    samples ``Z`` and their images ``g(Z)``; ``x (n, 2)`` in data coordinates."""
    reference = next(flow.parameters())
    data = flow.as_input(x)
    codes = flow.encode(data).cpu().numpy()
    generator = torch.Generator(device=reference.device).manual_seed(seed)
    latent = torch.randn(len(x), 2, generator=generator, device=reference.device, dtype=reference.dtype)
    samples = flow.decode(latent).cpu().numpy()
    panels = [("Data space X", x, "C0"), ("f(X)", codes, "C0"),
              ("Latent space Z", latent.cpu().numpy(), "C1"), ("g(Z)", samples, "C1")]
    figure = Figure(figsize=(10, 9))
    axes = figure.subplots(2, 2)
    data_limits = (np.percentile(x, 0.1, axis=0), np.percentile(x, 99.9, axis=0))
    for ax, (title, points, colour) in zip(axes.flat, panels):
        ax.scatter(points[:, 0], points[:, 1], s=1, alpha=0.4, color=colour, rasterized=True)
        ax.set_title(title)
        if title in ("Data space X", "g(Z)"):
            pad = 0.15 * (data_limits[1] - data_limits[0])
            ax.set_xlim(data_limits[0][0] - pad[0], data_limits[1][0] + pad[0])
            ax.set_ylim(data_limits[0][1] - pad[1], data_limits[1][1] + pad[1])
        else:
            ax.set_xlim(-4, 4)
            ax.set_ylim(-4, 4)
    return _save(figure, path)


def plot_density(
    flow: Flow,
    path: str | os.PathLike[str],
    truth: MoonsDensity | None = None,
    extent: tuple[float, float, float, float] = (-1.5, 2.5, -1.0, 1.5),
    resolution: int = 300,
) -> Path:
    """The learned density ``p(x)`` as a heat map, beside the true one when given."""
    xs = np.linspace(extent[0], extent[1], resolution)
    ys = np.linspace(extent[2], extent[3], resolution)
    grid = np.stack(np.meshgrid(xs, ys), axis=-1).reshape(-1, 2)
    maps = [("Learned density", np.exp(log_prob_numpy(flow, grid)))]
    if truth is not None:
        maps.append((f"True density (make_moons, noise {truth.noise})", np.exp(truth.log_prob(grid))))
    figure = Figure(figsize=(6.5 * len(maps), 4.5))
    axes = figure.subplots(1, len(maps), squeeze=False)
    vmax = max(float(values.max()) for _, values in maps)
    for ax, (title, values) in zip(axes.flat, maps):
        image = ax.imshow(values.reshape(resolution, resolution), origin="lower", extent=extent,
                          cmap="magma", vmin=0, vmax=vmax, aspect="auto")
        ax.set_title(title)
    figure.colorbar(image, ax=axes.ravel().tolist(), label="p(x)")
    return _save(figure, path)


def plot_curves(history: list[dict[str, float]], path: str | os.PathLike[str],
                unit: str = "NLL, nats per point (standardised)",
                convert: Callable[[float], float] | None = None) -> Path:
    """Training and validation NLL by epoch; ``convert`` maps the recorded nats
    to the ``unit`` shown (bits per dimension, say)."""
    convert = convert or (lambda value: value)
    epochs = [record["epoch"] for record in history]
    figure = Figure(figsize=(7, 4.5))
    ax = figure.subplots()
    ax.plot(epochs, [convert(record["train_nll"]) for record in history], label="training (running mean)")
    if history and "val_nll" in history[0]:
        ax.plot(epochs, [convert(record["val_nll"]) for record in history], label="validation")
    ax.set_xlabel("epoch")
    ax.set_ylabel(unit)
    ax.legend()
    ax.grid(alpha=0.3)
    return _save(figure, path)


def plot_pairs(data: np.ndarray, samples: np.ndarray, columns: list[str], path: str | os.PathLike[str],
               max_columns: int = 8) -> Path:
    """Scatter matrix of the data (blue) against model samples (orange), both
    ``(n, dim)``; only the first ``max_columns`` columns when there are more."""
    dim = min(data.shape[1], max_columns)
    figure = Figure(figsize=(2.2 * dim, 2.2 * dim))
    axes = figure.subplots(dim, dim, squeeze=False)
    for i in range(dim):
        for j in range(dim):
            ax = axes[i, j]
            if i == j:
                ax.hist(data[:, i], bins=40, density=True, alpha=0.5, color="C0")
                ax.hist(samples[:, i], bins=40, density=True, alpha=0.5, color="C1")
            else:
                ax.scatter(data[:, j], data[:, i], s=1, alpha=0.3, color="C0", rasterized=True)
                ax.scatter(samples[:, j], samples[:, i], s=1, alpha=0.3, color="C1", rasterized=True)
            if i == dim - 1:
                ax.set_xlabel(columns[j])
            if j == 0:
                ax.set_ylabel(columns[i])
    figure.suptitle("data (blue) and samples (orange)")
    return _save(figure, path)


def plot_marginals(data: np.ndarray, samples: np.ndarray, columns: list[str], path: str | os.PathLike[str]) -> Path:
    """One histogram per column, data against model samples, both ``(n, dim)``."""
    dim = data.shape[1]
    ncols = min(dim, 4)
    nrows = -(-dim // ncols)
    figure = Figure(figsize=(3.2 * ncols, 2.6 * nrows))
    axes = figure.subplots(nrows, ncols, squeeze=False)
    for k, ax in enumerate(axes.flat):
        if k >= dim:
            ax.set_visible(False)
            continue
        ax.hist(data[:, k], bins=50, density=True, alpha=0.5, color="C0", label="data")
        ax.hist(samples[:, k], bins=50, density=True, alpha=0.5, color="C1", label="samples")
        ax.set_title(columns[k])
    axes.flat[0].legend()
    return _save(figure, path)


@torch.no_grad()
def plot_conditional_samples(flow: Flow, conditions: int, path: str | os.PathLike[str], n: int = 2000,
                             seed: int = 0) -> Path:
    """Samples of a conditional flow for each one-hot condition, one colour each."""
    reference = next(flow.parameters())
    figure = Figure(figsize=(6.5, 5))
    ax = figure.subplots()
    generator = torch.Generator(device=reference.device).manual_seed(seed)
    for condition in range(conditions):
        context = torch.zeros(n, conditions, device=reference.device, dtype=reference.dtype)
        context[:, condition] = 1
        samples = flow.sample(n, context=context, generator=generator).cpu().numpy()
        ax.scatter(samples[:, 0], samples[:, 1], s=1, alpha=0.4, color=f"C{condition}",
                   label=f"--condition {condition}", rasterized=True)
    ax.legend(markerscale=8)
    ax.set_title("samples given each condition")
    return _save(figure, path)
