"""The bijector contract shared by every invertible layer.

A bijector is an invertible map with a cheap Jacobian determinant. Direction is
fixed once, here, for the whole package:

* ``forward(x)`` maps **data to latent** (the flow's ``f``) and returns
  ``(z, log|det dz/dx|)``;
* ``inverse(z)`` maps **latent to data** (the flow's ``g = f^-1``) and returns
  ``(x, log|det dx/dz|)``.

So ``forward(x)[1] + inverse(forward(x)[0])[1] == 0``. Inputs are shaped
``(batch, *event_shape)``: ``(batch, dim)`` for tabular data or
``(batch, channels, height, width)`` for images. The log-determinant is always
shaped ``(batch,)``. An optional ``context`` tensor ``(batch, context_dim)``
conditions the layers that can use it and is ignored by the others.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from torch import Tensor, nn


def sum_except_batch(values: Tensor) -> Tensor:
    """Sum every dimension but the first: ``(batch, ...) -> (batch,)``."""
    return values.reshape(values.shape[0], -1).sum(dim=1)


class Bijector(nn.Module):
    """An invertible map ``f`` from data to latent with a tractable log|det|.

    Subclasses implement both directions; each returns the log absolute
    determinant of its own Jacobian, shaped ``(batch,)``.
    """

    def forward(self, x: Tensor, context: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """Data to latent: ``x (batch, ...) -> (z, log|det dz/dx|)``."""
        raise NotImplementedError

    def inverse(self, z: Tensor, context: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """Latent to data: ``z (batch, ...) -> (x, log|det dx/dz|)``."""
        raise NotImplementedError


class Compose(Bijector):
    """Bijectors applied in sequence, ``f = f_K o ... o f_1``.

    By the chain rule the log-determinants add:
    ``log|det df/dx| = sum_k log|det df_k/dh_{k-1}|``. The inverse runs the
    layers in reverse order.

    Example:
        >>> import torch
        >>> from realnvp.bijectors import ElementwiseAffine, Permutation
        >>> f = Compose([ElementwiseAffine(torch.zeros(2), torch.full((2,), 2.0)),
        ...              Permutation.reverse(2)])
        >>> z, logdet = f(torch.tensor([[2.0, 4.0]]))
        >>> z, logdet
        (tensor([[2., 1.]]), tensor([-1.3863]))
    """

    def __init__(self, bijectors: Iterable[Bijector]) -> None:
        super().__init__()
        self.layers = nn.ModuleList(bijectors)

    def __len__(self) -> int:
        return len(self.layers)

    def __iter__(self) -> Iterator[Bijector]:
        return iter(self.layers)  # type: ignore[arg-type]

    def __getitem__(self, index: int) -> Bijector:
        return self.layers[index]  # type: ignore[return-value]

    def forward(self, x: Tensor, context: Tensor | None = None) -> tuple[Tensor, Tensor]:
        total = x.new_zeros(x.shape[0])
        for layer in self.layers:
            x, logdet = layer(x, context)
            total = total + logdet
        return x, total

    def inverse(self, z: Tensor, context: Tensor | None = None) -> tuple[Tensor, Tensor]:
        total = z.new_zeros(z.shape[0])
        for layer in reversed(self.layers):
            z, logdet = layer.inverse(z, context)
            total = total + logdet
        return z, total


class Inverse(Bijector):
    """The inverse of a bijector: ``forward`` is its ``inverse`` and vice versa."""

    def __init__(self, bijector: Bijector) -> None:
        super().__init__()
        self.bijector = bijector

    def forward(self, x: Tensor, context: Tensor | None = None) -> tuple[Tensor, Tensor]:
        return self.bijector.inverse(x, context)

    def inverse(self, z: Tensor, context: Tensor | None = None) -> tuple[Tensor, Tensor]:
        return self.bijector(z, context)
