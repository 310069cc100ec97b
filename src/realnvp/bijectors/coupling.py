"""Affine coupling layers (Dinh, Sohl-Dickstein and Bengio, 2017).

The coordinates are split into a conditioning part ``x_a``, passed through
unchanged, and a transformed part ``x_b``:

    z_a = x_a
    z_b = x_b * exp(s(x_a)) + t(x_a)

The Jacobian is triangular with ``exp(s)`` on its diagonal, so
``log|det dz/dx| = sum s(x_a)``, and the inverse
``x_b = (z_b - t(z_a)) * exp(-s(z_a))`` needs no inversion of the networks:
they see the same ``x_a = z_a`` in both directions, which keeps the layer
exactly invertible however ``s`` and ``t`` are computed.

The log-scale is bounded, ``s = bound * tanh(raw_s)``, so no input can make
``exp(s)`` overflow; ``bound`` is fixed or learned per coordinate.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from realnvp.bijectors.base import Bijector, sum_except_batch
from realnvp.nets import Conditioner


class AffineCoupling(Bijector):
    """The affine update shared by every coupling; subclasses say how to split.

    Args:
        conditioner: maps ``(x_a, context)`` to ``(raw_s, t)``, both shaped
            like the transformed part.
        bound_shape: shape of the scale bound (the transformed part's shape
            without the batch, or broadcastable to it).
        scale_bound: ``bound`` in ``s = bound * tanh(raw_s)``; ``None`` leaves
            ``s = raw_s`` unbounded.
        learn_bound: learn ``bound`` per coordinate, starting at ``scale_bound``.
    """

    def __init__(
        self,
        conditioner: Conditioner,
        bound_shape: tuple[int, ...],
        scale_bound: float | None = 1.0,
        learn_bound: bool = False,
    ) -> None:
        super().__init__()
        self.conditioner = conditioner
        if scale_bound is None:
            if learn_bound:
                raise ValueError("learn_bound needs a scale_bound to start from")
            self.bound = None
        else:
            bound = torch.full(bound_shape, float(scale_bound))
            if learn_bound:
                self.bound = nn.Parameter(bound)
            else:
                self.register_buffer("bound", bound)

    def split(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """``x -> (x_a, x_b)``: the conditioning and the transformed parts."""
        raise NotImplementedError

    def merge(self, x_a: Tensor, y_b: Tensor) -> Tensor:
        """Put the conditioning part and the updated transformed part back together."""
        raise NotImplementedError

    def select(self, values: Tensor) -> Tensor:
        """Keep the conditioner's output on the transformed coordinates only."""
        return values

    def scale_shift(self, x_a: Tensor, context: Tensor | None) -> tuple[Tensor, Tensor]:
        """The bounded log-scale ``s`` and the shift ``t`` for the transformed part."""
        raw_s, t = self.conditioner(x_a, context)
        s = raw_s if self.bound is None else self.bound * torch.tanh(raw_s)
        return self.select(s), self.select(t)

    def forward(self, x: Tensor, context: Tensor | None = None) -> tuple[Tensor, Tensor]:
        x_a, x_b = self.split(x)
        s, t = self.scale_shift(x_a, context)
        return self.merge(x_a, x_b * torch.exp(s) + t), sum_except_batch(s)

    def inverse(self, z: Tensor, context: Tensor | None = None) -> tuple[Tensor, Tensor]:
        z_a, z_b = self.split(z)
        s, t = self.scale_shift(z_a, context)
        return self.merge(z_a, (z_b - t) * torch.exp(-s)), -sum_except_batch(s)


def checkerboard_mask(shape: tuple[int, int, int], parity: int = 0) -> Tensor:
    """A ``(C, H, W)`` mask of 1 where ``(row + column + parity)`` is even: the
    checkerboard of RealNVP, the same in every channel."""
    channels, height, width = shape
    rows = torch.arange(height).unsqueeze(1)
    columns = torch.arange(width).unsqueeze(0)
    board = ((rows + columns + parity) % 2 == 0).float()
    return board.expand(channels, height, width).clone()


class MaskedAffineCoupling(AffineCoupling):
    """Coupling with a binary mask, as in the reference: ``1`` marks ``x_a``.

    ``x_a = x * mask`` feeds the conditioner, whose outputs are zeroed where
    ``mask == 1``, so ``z = x_a + (1 - mask) * (x * exp(s) + t)``. The mask is
    shaped like one example: ``(dim,)``, or ``(C, H, W)`` for a checkerboard.

        >>> from realnvp.nets import mlp_conditioner
        >>> layer = MaskedAffineCoupling(torch.tensor([0.0, 1.0]), mlp_conditioner(2, 2, 8, 2))
        >>> z, logdet = layer(torch.randn(5, 2))
        >>> z.shape, logdet.shape
        (torch.Size([5, 2]), torch.Size([5]))
    """

    def __init__(
        self,
        mask: Tensor,
        conditioner: Conditioner,
        scale_bound: float | None = 1.0,
        learn_bound: bool = False,
    ) -> None:
        if not bool(((mask == 0) | (mask == 1)).all()):
            raise ValueError("mask must hold only 0 and 1")
        super().__init__(conditioner, tuple(mask.shape), scale_bound, learn_bound)
        self.register_buffer("mask", mask.clone())

    def split(self, x: Tensor) -> tuple[Tensor, Tensor]:
        return x * self.mask, x

    def merge(self, x_a: Tensor, y_b: Tensor) -> Tensor:
        return x_a + (1 - self.mask) * y_b

    def select(self, values: Tensor) -> Tensor:
        return values * (1 - self.mask)


class SplitAffineCoupling(AffineCoupling):
    """Coupling on halves of dimension 1: the first ``split`` features (or
    channels) pass through.

    Works for any ``dim >= 2`` and wastes no work on masked coordinates; put a
    permutation between two of these so every coordinate gets transformed. On
    images ``(batch, C, H, W)`` with ``spatial_dims=2`` it is the channel-wise
    coupling of RealNVP.

    Args:
        dim: size of dimension 1 of ``x (batch, dim, *spatial)``.
        conditioner: maps ``(batch, split, *spatial)`` to two ``(batch, dim - split, *spatial)``.
        split: size of ``x_a``; ``dim // 2`` by default.
        spatial_dims: number of dimensions after dimension 1.
    """

    def __init__(
        self,
        dim: int,
        conditioner: Conditioner,
        split: int | None = None,
        scale_bound: float | None = 1.0,
        learn_bound: bool = False,
        spatial_dims: int = 0,
    ) -> None:
        split = dim // 2 if split is None else split
        if not 0 < split < dim:
            raise ValueError(f"split must lie in 1..{dim - 1}, got {split}")
        super().__init__(conditioner, (dim - split,) + (1,) * spatial_dims, scale_bound, learn_bound)
        self.split_size = split

    def split(self, x: Tensor) -> tuple[Tensor, Tensor]:
        return x[:, : self.split_size], x[:, self.split_size :]

    def merge(self, x_a: Tensor, y_b: Tensor) -> Tensor:
        return torch.cat([x_a, y_b], dim=1)
