"""Fixed permutations of the feature dimension."""

from __future__ import annotations

import torch
from torch import Tensor

from realnvp.bijectors.base import Bijector


class Permutation(Bijector):
    """``z[:, i] = x[:, perm[i]]``; a permutation matrix has ``|det| = 1``.

    Args:
        perm: a permutation of ``0..dim-1``, shape ``(dim,)``.
    """

    def __init__(self, perm: Tensor) -> None:
        super().__init__()
        perm = perm.long()
        if not torch.equal(perm.sort().values, torch.arange(perm.numel())):
            raise ValueError(f"not a permutation of 0..{perm.numel() - 1}: {perm.tolist()}")
        self.register_buffer("perm", perm)
        self.register_buffer("inverse_perm", perm.argsort())

    @classmethod
    def reverse(cls, dim: int) -> Permutation:
        """Reverse the order of the ``dim`` features."""
        return cls(torch.arange(dim - 1, -1, -1))

    @classmethod
    def random(cls, dim: int, generator: torch.Generator | None = None) -> Permutation:
        """A uniformly random permutation of ``dim`` features."""
        return cls(torch.randperm(dim, generator=generator))

    def forward(self, x: Tensor, context: Tensor | None = None) -> tuple[Tensor, Tensor]:
        return x[:, self.perm], x.new_zeros(x.shape[0])

    def inverse(self, z: Tensor, context: Tensor | None = None) -> tuple[Tensor, Tensor]:
        return z[:, self.inverse_perm], z.new_zeros(z.shape[0])
