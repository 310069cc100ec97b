"""The exact two-moons density: our ruler for KL(data || model)."""

from __future__ import annotations

import numpy as np
import pytest

from realnvp.datasets import MoonsDensity, sample_moons


def test_true_density_integrates_to_one() -> None:
    truth = MoonsDensity(0.05)
    xs = np.linspace(-1.5, 2.5, 250)
    ys = np.linspace(-1.0, 1.5, 160)
    grid = np.stack(np.meshgrid(xs, ys), axis=-1).reshape(-1, 2)
    mass = np.exp(truth.log_prob(grid)).sum() * (xs[1] - xs[0]) * (ys[1] - ys[0])
    assert mass == pytest.approx(1.0, abs=2e-3)


def test_entropy_of_noise_005_is_about_029_nats() -> None:
    entropy, stderr = MoonsDensity(0.05).entropy(n=20_000)
    assert stderr < 0.01
    assert 0.26 < entropy < 0.32


def test_true_density_beats_a_misplaced_copy_on_make_moons_data() -> None:
    """Data from make_moons is more likely under the true density than under
    the same density shifted by one noise width (a check of the geometry)."""
    x = sample_moons(5000, 0.05, seed=1)
    truth = MoonsDensity(0.05)
    assert truth.log_prob(x).mean() > truth.log_prob(x + np.array([0.0, 0.05])).mean() + 0.2
    assert truth.log_prob(x).mean() > truth.log_prob(x + np.array([0.05, 0.0])).mean() + 0.2


def test_quadrature_is_converged() -> None:
    x = sample_moons(500, 0.05, seed=2)
    np.testing.assert_allclose(MoonsDensity(0.05).log_prob(x),
                               MoonsDensity(0.05, nodes=16000).log_prob(x), atol=5e-4, rtol=0)
