"""Data sets that code generates or that installed packages ship."""

from realnvp.datasets.moons import MoonsDensity, sample_labelled_moons, sample_moons

__all__ = ["MoonsDensity", "sample_labelled_moons", "sample_moons"]
