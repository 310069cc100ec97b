"""A flow as a ``torch.distributions.Distribution``.

Nothing global is changed: argument validation follows the ``validate_args``
given here, or torch's own default.
"""

from __future__ import annotations

import torch
from torch import Tensor
from torch.distributions import Distribution, constraints

from realnvp.flow import Flow, standard_normal_log_prob


class FlowDistribution(Distribution):
    """``p(x)`` (or ``p(x | context)``) of a :class:`~realnvp.flow.Flow`.

    ``event_shape`` is the flow's; ``batch_shape`` is ``context.shape[:-1]``
    (``()`` without a context). Samples are shaped
    ``sample_shape + batch_shape + event_shape``; ``rsample`` lets gradients
    reach the flow's parameters through the samples.

        >>> from realnvp import FlowSpec, build_flow
        >>> d = FlowDistribution(build_flow(FlowSpec(dim=2, coupling="split", width=8, depth=1)))
        >>> x = d.rsample((5, 3))
        >>> x.shape, d.log_prob(x).shape
        (torch.Size([5, 3, 2]), torch.Size([5, 3]))
    """

    arg_constraints: dict[str, constraints.Constraint] = {}
    has_rsample = True

    def __init__(self, flow: Flow, context: Tensor | None = None, validate_args: bool | None = None) -> None:
        self.flow = flow
        self.context = context
        batch_shape = torch.Size() if context is None else context.shape[:-1]
        super().__init__(batch_shape, torch.Size(flow.event_shape), validate_args=validate_args)

    @property
    def support(self) -> constraints.Constraint:
        return constraints.independent(constraints.real, len(self.event_shape))

    def _flat_context(self, leading: torch.Size) -> Tensor | None:
        """The context broadcast to ``leading + batch_shape`` and flattened to ``(n, features)``."""
        if self.context is None:
            return None
        return self.context.expand(*leading, *self.context.shape).reshape(-1, self.context.shape[-1])

    def log_prob(self, value: Tensor) -> Tensor:
        """``log p(value)`` in nats, shaped ``value.shape[:-len(event_shape)]``."""
        if self._validate_args:
            self._validate_sample(value)
        leading = value.shape[: value.dim() - len(self.event_shape)]
        extra = leading[: len(leading) - len(self.batch_shape)]
        flat = value.reshape(-1, *self.event_shape)
        return self.flow.log_prob(flat, self._flat_context(extra)).reshape(leading)

    def rsample_and_log_prob(self, sample_shape: torch.Size = torch.Size()) -> tuple[Tensor, Tensor]:
        """Reparameterised samples and their log-density, in one pass through ``g``."""
        shape = torch.Size(sample_shape) + self.batch_shape
        n = shape.numel()
        z = self.flow.sample_latent(n)
        x, logdet = self.flow.to_data(z, self._flat_context(torch.Size(sample_shape)))
        return x.reshape(*shape, *self.event_shape), (standard_normal_log_prob(z) - logdet).reshape(shape)

    def rsample(self, sample_shape: torch.Size = torch.Size()) -> Tensor:
        return self.rsample_and_log_prob(sample_shape)[0]

    def sample_and_log_prob(self, sample_shape: torch.Size = torch.Size()) -> tuple[Tensor, Tensor]:
        with torch.no_grad():
            return self.rsample_and_log_prob(sample_shape)

    def sample(self, sample_shape: torch.Size = torch.Size()) -> Tensor:
        with torch.no_grad():
            return self.rsample(sample_shape)
