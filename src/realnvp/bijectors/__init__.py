"""Invertible layers. ``forward`` maps data to latent, ``inverse`` latent to
data; both return ``(output, log|det J|)`` of their own Jacobian."""

from realnvp.bijectors.actnorm import ActNorm
from realnvp.bijectors.base import Bijector, Compose, sum_except_batch
from realnvp.bijectors.coupling import AffineCoupling, MaskedAffineCoupling, SplitAffineCoupling
from realnvp.bijectors.elementwise import ElementwiseAffine
from realnvp.bijectors.permutation import Permutation

__all__ = [
    "ActNorm",
    "AffineCoupling",
    "Bijector",
    "Compose",
    "ElementwiseAffine",
    "MaskedAffineCoupling",
    "Permutation",
    "SplitAffineCoupling",
    "sum_except_batch",
]
