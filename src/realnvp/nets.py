"""Conditioner networks: they read the pass-through part of a coupling and
return the raw log-scale and the shift for the transformed part."""

from __future__ import annotations

import torch
from torch import Tensor, nn


class MLP(nn.Sequential):
    """``depth`` hidden layers of ``Linear(width) + ReLU``, then ``Linear(out_features)``.

    Args:
        in_features, out_features: input ``(batch, in_features)`` to
            output ``(batch, out_features)``.
        width, depth: size and number of the hidden layers.
        zero_init: zero the last layer, so the network starts at 0 (an
            identity coupling); training is then stable from the first step.
        glorot_init: Keras' defaults (Glorot-uniform weights, zero biases)
            instead of PyTorch's, to reproduce Keras models faithfully.
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        width: int,
        depth: int,
        zero_init: bool = False,
        glorot_init: bool = False,
    ) -> None:
        sizes = [in_features] + [width] * depth
        layers: list[nn.Module] = []
        for fan_in, fan_out in zip(sizes[:-1], sizes[1:]):
            layers += [nn.Linear(fan_in, fan_out), nn.ReLU()]
        layers.append(nn.Linear(sizes[-1], out_features))
        super().__init__(*layers)
        linears = [m for m in self if isinstance(m, nn.Linear)]
        if glorot_init:
            for linear in linears:
                nn.init.xavier_uniform_(linear.weight)
                nn.init.zeros_(linear.bias)
        if zero_init:
            nn.init.zeros_(linears[-1].weight)
            nn.init.zeros_(linears[-1].bias)


class Conditioner(nn.Module):
    """Maps ``(x_a, context)`` to ``(raw_s, t)``.

    ``x_a: (batch, in_features)``; ``context: (batch, context_features)`` or
    ``None``; it is concatenated to ``x_a`` before the networks.
    """

    def network_input(self, x_a: Tensor, context: Tensor | None) -> Tensor:
        return x_a if context is None else torch.cat([x_a, context], dim=1)

    def forward(self, x_a: Tensor, context: Tensor | None = None) -> tuple[Tensor, Tensor]:
        raise NotImplementedError


class SeparateConditioner(Conditioner):
    """Two networks, one for ``s`` and one for ``t``, as in the reference."""

    def __init__(self, s_net: nn.Module, t_net: nn.Module) -> None:
        super().__init__()
        self.s_net = s_net
        self.t_net = t_net

    def forward(self, x_a: Tensor, context: Tensor | None = None) -> tuple[Tensor, Tensor]:
        h = self.network_input(x_a, context)
        return self.s_net(h), self.t_net(h)


class SharedConditioner(Conditioner):
    """One network whose output ``(batch, 2k, ...)`` is halved into ``s`` and ``t``."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, x_a: Tensor, context: Tensor | None = None) -> tuple[Tensor, Tensor]:
        raw_s, t = self.net(self.network_input(x_a, context)).chunk(2, dim=1)
        return raw_s, t


def mlp_conditioner(
    in_features: int,
    out_features: int,
    width: int,
    depth: int,
    separate: bool = False,
    context_features: int = 0,
    zero_init: bool = False,
    glorot_init: bool = False,
) -> Conditioner:
    """An MLP conditioner from ``(batch, in_features)`` (plus context) to two
    ``(batch, out_features)``: separate ``s`` and ``t`` networks, or one shared."""
    n_in = in_features + context_features
    if separate:
        return SeparateConditioner(
            MLP(n_in, out_features, width, depth, zero_init, glorot_init),
            MLP(n_in, out_features, width, depth, zero_init, glorot_init),
        )
    return SharedConditioner(MLP(n_in, 2 * out_features, width, depth, zero_init, glorot_init))
