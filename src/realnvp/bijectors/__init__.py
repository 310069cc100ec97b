"""Invertible layers. ``forward`` maps data to latent, ``inverse`` latent to
data; both return ``(output, log|det J|)`` of their own Jacobian."""

from realnvp.bijectors.actnorm import ActNorm
from realnvp.bijectors.base import Bijector, Compose, Inverse, sum_except_batch
from realnvp.bijectors.coupling import AffineCoupling, MaskedAffineCoupling, SplitAffineCoupling, checkerboard_mask
from realnvp.bijectors.elementwise import ElementwiseAffine
from realnvp.bijectors.logit import Logit
from realnvp.bijectors.multiscale import FactorOut
from realnvp.bijectors.permutation import Permutation
from realnvp.bijectors.reshape import Squeeze
from realnvp.bijectors.spline import SplineCoupling, rational_quadratic_spline

__all__ = [
    "ActNorm",
    "AffineCoupling",
    "Bijector",
    "Compose",
    "ElementwiseAffine",
    "FactorOut",
    "Inverse",
    "Logit",
    "MaskedAffineCoupling",
    "Permutation",
    "SplineCoupling",
    "SplitAffineCoupling",
    "Squeeze",
    "checkerboard_mask",
    "rational_quadratic_spline",
    "sum_except_batch",
]
