"""Named recipes: an architecture, a training configuration and the data size.

* ``seed``: the Keras / TensorFlow Probability two-moons RealNVP, exactly: two
  masked couplings ([0,1] then [1,0]) with separate s and t networks of
  4 x (Linear 256 + ReLU) + Linear 2, tanh on s, Glorot initialisation;
  794,632 parameters; Adam 1e-4, batch 256, 300 epochs, L2 0.01 on the weights.
* ``default``: the best two-moons RealNVP we measured within 2 minutes of
  training on 2 CPU cores (see the README's results table).
* ``fast``: two moons to KL <= 0.01 nats in under 30 s on 2 CPU cores, with
  rational-quadratic spline couplings (benchmarks/moons_presets.py).
* ``tabular``: for a user's table, sized by its dimension and number of rows
  (:func:`tabular_preset`).
* ``image``: a multi-scale RealNVP for small images (:func:`image_preset`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

from realnvp.architecture import FlowSpec
from realnvp.images.architecture import ImageFlowSpec
from realnvp.training import TrainConfig


@dataclass(frozen=True)
class Preset:
    """A named recipe for two moons."""

    name: str
    spec: FlowSpec
    train: TrainConfig
    points: int = 30_000
    noise: float = 0.05
    val_fraction: float = 0.2


PRESETS: dict[str, Preset] = {
    "seed": Preset(
        "seed",
        FlowSpec(dim=2, couplings=2, coupling="masked", width=256, depth=4, separate_networks=True,
                 scale_bound=1.0, glorot_init=True),
        TrainConfig(epochs=300, batch_size=256, lr=1e-4, l2=0.01),
    ),
    "default": Preset(
        "default",
        FlowSpec(dim=2, couplings=12, coupling="split", width=96, depth=2, separate_networks=False,
                 scale_bound=3.0, learn_bound=True, zero_init=True, permutation="reverse"),
        TrainConfig(epochs=80, batch_size=512, lr=2e-3, schedule="cosine", grad_clip=5.0, patience=20),
    ),
    "fast": Preset(
        "fast",
        FlowSpec(dim=2, couplings=5, coupling="spline", width=64, depth=2, separate_networks=False,
                 bins=8, tail_bound=4.0, zero_init=True, permutation="reverse"),
        TrainConfig(epochs=40, batch_size=512, lr=3e-3, schedule="cosine", grad_clip=5.0, patience=20),
    ),
}


def get_preset(name: str, **overrides: object) -> Preset:
    """The preset ``name`` with training fields replaced by ``overrides`` (those not ``None``)."""
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}; choose one of {', '.join(PRESETS)}")
    preset = PRESETS[name]
    changes = {key: value for key, value in overrides.items() if value is not None}
    return replace(preset, train=replace(preset.train, **changes)) if changes else preset


def tabular_preset(dim: int, rows: int) -> Preset:
    """A RealNVP for ``rows`` training rows of ``dim >= 2`` columns.

    Split couplings with random permutations between them (a reversal for
    ``dim == 2``), zero-initialised so training starts at the standardised
    Gaussian; networks wider for more columns and narrower for little data;
    about 6,000 Adam steps on a cosine schedule, with early stopping.
    """
    if dim < 2:
        raise ValueError(
            f"RealNVP needs at least 2 columns, got {dim}: a coupling layer transforms some "
            f"columns conditioned on the others, and one column has no other to condition on"
        )
    width = max(64, min(256, 16 * dim)) if rows >= 2000 else 64
    batch = max(32, min(512, rows // 20))
    steps_per_epoch = math.ceil(rows / batch)
    epochs = max(30, min(500, math.ceil(6000 / steps_per_epoch)))
    return Preset(
        "tabular",
        FlowSpec(dim=dim, couplings=10 if dim <= 8 else 12, coupling="split", width=width, depth=2,
                 separate_networks=False, scale_bound=3.0, learn_bound=True, zero_init=True,
                 permutation="reverse" if dim == 2 else "random"),
        TrainConfig(epochs=epochs, batch_size=batch, lr=1e-3, schedule="cosine", grad_clip=5.0,
                    patience=max(10, epochs // 5)),
        points=rows,
        val_fraction=0.1,
    )


def image_preset(channels: int, height: int, width: int, levels: int) -> tuple[ImageFlowSpec, TrainConfig]:
    """A multi-scale RealNVP for ``(channels, height, width)`` images with
    ``levels`` pixel levels: two scales for 8x8, three from 16x16; wider
    networks for larger images; Adam with a cosine schedule and early stopping."""
    large = min(height, width) >= 16
    spec = ImageFlowSpec(channels=channels, height=height, width=width, levels=levels,
                         scales=3 if large else 2, hidden=64 if large else 32)
    return spec, TrainConfig(epochs=60, batch_size=64, lr=1e-3, schedule="cosine", grad_clip=10.0, patience=15)
