"""Held-out likelihoods and the distance to the true density, with standard errors.

All numbers are nats per example. ``raw`` is the NLL in the data's own
coordinates; ``standardized`` is the NLL of the standardised points (the
reference's loss); they differ by the standardisation's log-determinant.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
import torch

from realnvp.datasets import MoonsDensity
from realnvp.flow import Flow


def one_hot(labels: np.ndarray, classes: int) -> np.ndarray:
    """``(n,)`` integer labels to ``(n, classes)`` float64 one-hot rows."""
    return np.eye(classes)[np.asarray(labels, dtype=int)]


@dataclass(frozen=True)
class Estimate:
    """A mean over examples and its standard error."""

    mean: float
    stderr: float

    @classmethod
    def of(cls, values: np.ndarray) -> Estimate:
        return cls(float(values.mean()), float(values.std(ddof=1) / math.sqrt(len(values))))


@torch.no_grad()
def log_prob_numpy(flow: Flow, x: np.ndarray, context: np.ndarray | None = None, batch_size: int = 8192,
                   standardized: bool = False) -> np.ndarray:
    """The model's ``log p(x)`` (or ``log p(x | context)``) in nats for
    ``x (n, dim)``, shaped ``(n,)``, in float64."""
    flow.eval()
    out = []
    for start in range(0, len(x), batch_size):
        block = flow.as_input(x[start:start + batch_size])
        block_context = None if context is None else flow.as_input(context[start:start + batch_size])
        log_p = (flow.standardized_log_prob(block, block_context) if standardized
                 else flow.log_prob(block, block_context))
        out.append(log_p.double().cpu())
    return torch.cat(out).numpy()


def nll_report(flow: Flow, x: np.ndarray, context: np.ndarray | None = None) -> dict[str, dict[str, float]]:
    """Test NLL of ``x (n, dim)`` in data (``raw``) and standardised coordinates."""
    return {
        "raw": asdict(Estimate.of(-log_prob_numpy(flow, x, context))),
        "standardized": asdict(Estimate.of(-log_prob_numpy(flow, x, context, standardized=True))),
    }


def kl_report(flow: Flow, x: np.ndarray, truth: MoonsDensity, moon: np.ndarray | None = None
              ) -> dict[str, dict[str, float]]:
    """``KL(data || model) = NLL - H`` on test points ``x`` drawn from ``truth``.

    Estimated per point as ``log p_true(x) - log p_model(x)``, whose mean is the
    KL divergence and whose spread gives its standard error; ``H`` is the true
    density's entropy on the same points. Raw coordinates, nats. Given each
    point's ``moon (n,)``, the conditional versions (the model is then
    conditioned on the one-hot moon).
    """
    true_log_p = truth.log_prob(x, moon)
    model_log_p = log_prob_numpy(flow, x, None if moon is None else one_hot(moon, 2))
    return {
        "kl": asdict(Estimate.of(true_log_p - model_log_p)),
        "entropy": asdict(Estimate.of(-true_log_p)),
    }
