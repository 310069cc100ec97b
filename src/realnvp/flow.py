"""The normalizing flow: a standard normal base and a bijector.

With ``f`` the bijector (data to latent), the change of variables gives

    log p(x) = log N(f(x); 0, I) + log|det df/dx|.

A standardisation of the data, when present, is the first layer of ``f``, so
``log_prob`` is a density in the data's own coordinates.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import Tensor, nn

from realnvp.bijectors import Bijector, ElementwiseAffine, sum_except_batch


def standard_normal_log_prob(z: Tensor) -> Tensor:
    """``log N(z; 0, I)`` for ``z (batch, *event_shape)``, shaped ``(batch,)``."""
    return sum_except_batch(-0.5 * (z * z + math.log(2 * math.pi)))


class Flow(nn.Module):
    """A density ``p(x)`` defined by a bijector onto a standard normal latent.

    Args:
        transform: the learnable bijector ``(batch, *event_shape) -> same``.
        event_shape: shape of one example, ``(dim,)`` or ``(C, H, W)``.
        standardizer: optional fixed first layer, usually the training data's
            standardisation; its log-determinant is part of ``log_prob``.

    Example:
        >>> from realnvp.bijectors import Compose
        >>> flow = Flow(Compose([]), (2,))
        >>> flow.log_prob(torch.zeros(1, 2))
        tensor([-1.8379])
    """

    def __init__(
        self,
        transform: Bijector,
        event_shape: tuple[int, ...],
        standardizer: ElementwiseAffine | None = None,
    ) -> None:
        super().__init__()
        self.transform = transform
        self.standardizer = standardizer
        self.event_shape = tuple(event_shape)
        # Follows .to(device/dtype) so samples are drawn where the model lives.
        self.register_buffer("_reference", torch.zeros(()), persistent=False)

    @property
    def dtype(self) -> torch.dtype:
        """The floating-point type the model computes in."""
        return self._reference.dtype

    def as_input(self, values: Tensor | np.ndarray) -> Tensor:
        """``values`` as a tensor on the model's device and in its dtype."""
        return torch.as_tensor(values).to(device=self._reference.device, dtype=self._reference.dtype)

    def to_latent(self, x: Tensor, context: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """``x (batch, *event_shape) -> (z, log|det dz/dx|)``, standardisation included."""
        logdet = x.new_zeros(x.shape[0])
        if self.standardizer is not None:
            x, logdet = self.standardizer(x)
        z, transform_logdet = self.transform(x, context)
        return z, logdet + transform_logdet

    def to_data(self, z: Tensor, context: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """``z (batch, *event_shape) -> (x, log|det dx/dz|)``, standardisation included."""
        x, logdet = self.transform.inverse(z, context)
        if self.standardizer is not None:
            x, standardizer_logdet = self.standardizer.inverse(x)
            logdet = logdet + standardizer_logdet
        return x, logdet

    def log_prob(self, x: Tensor, context: Tensor | None = None) -> Tensor:
        """``log p(x)`` in nats, data coordinates: ``x (batch, *event_shape) -> (batch,)``."""
        z, logdet = self.to_latent(x, context)
        return standard_normal_log_prob(z) + logdet

    def forward(self, x: Tensor, context: Tensor | None = None) -> Tensor:
        """Same as :meth:`log_prob`, so wrappers such as DDP see the training objective."""
        return self.log_prob(x, context)

    def standardized_log_prob(self, x: Tensor, context: Tensor | None = None) -> Tensor:
        """``log p(u)`` of the standardised point ``u``: ``log p(x)`` minus the
        standardisation's log-determinant, ``(batch,)``."""
        log_prob = self.log_prob(x, context)
        if self.standardizer is None:
            return log_prob
        return log_prob - self.standardizer.log_abs_det().to(log_prob.dtype)

    def encode(self, x: Tensor, context: Tensor | None = None) -> Tensor:
        """``z = f(x)``: data ``(batch, *event_shape)`` to latent, same shape."""
        return self.to_latent(x, context)[0]

    def decode(self, z: Tensor, context: Tensor | None = None) -> Tensor:
        """``x = g(z) = f^-1(z)``: latent ``(batch, *event_shape)`` to data."""
        return self.to_data(z, context)[0]

    def sample_latent(self, n: int, temperature: float = 1.0, generator: torch.Generator | None = None) -> Tensor:
        """``n`` base draws ``T z``, ``z ~ N(0, I)``, on the model's device and dtype."""
        if temperature < 0:
            raise ValueError(f"temperature must be >= 0, got {temperature}")
        ref = self._reference
        # Drawn where the generator lives, so a seed gives the same draws on every device.
        device = ref.device if generator is None else generator.device
        z = torch.randn((n, *self.event_shape), generator=generator, device=device, dtype=ref.dtype)
        return z.to(ref.device) * temperature

    def sample(
        self,
        n: int,
        temperature: float = 1.0,
        context: Tensor | None = None,
        generator: torch.Generator | None = None,
    ) -> Tensor:
        """``n`` draws ``x = g(T z)``, ``z ~ N(0, I)``, shaped ``(n, *event_shape)``.

        ``temperature`` ``T`` scales the latent: below 1 the samples gather in
        the densest regions.
        """
        return self.decode(self.sample_latent(n, temperature, generator), context)

    def sample_and_log_prob(
        self,
        n: int,
        temperature: float = 1.0,
        context: Tensor | None = None,
        generator: torch.Generator | None = None,
    ) -> tuple[Tensor, Tensor]:
        """Samples ``(n, *event_shape)`` and their model log-density ``(n,)``,
        in one pass: ``log p(x) = log N(z) - log|det dx/dz|``."""
        z = self.sample_latent(n, temperature, generator)
        x, logdet = self.to_data(z, context)
        return x, standard_normal_log_prob(z) - logdet
