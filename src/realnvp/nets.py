"""Conditioner networks: they read the pass-through part of a coupling and
return the raw log-scale and the shift for the transformed part."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from realnvp.stacked_mlp import StackedMLP


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


class ResidualBlock(nn.Module):
    """``x + conv(relu(norm(conv(relu(norm(x))))))``, 3x3 convolutions, shape-preserving."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.GroupNorm(1, channels), nn.ReLU(), nn.Conv2d(channels, channels, 3, padding=1),
            nn.GroupNorm(1, channels), nn.ReLU(), nn.Conv2d(channels, channels, 3, padding=1),
        )

    def forward(self, x: Tensor) -> Tensor:
        return x + self.body(x)


class ConvResNet(nn.Sequential):
    """A convolutional residual network ``(batch, in, H, W) -> (batch, out, H, W)``,
    the conditioner of image couplings.

    Args:
        in_channels, out_channels: channels in and out.
        width: channels of the hidden layers.
        blocks: number of :class:`ResidualBlock`.
        zero_init: zero the last convolution, so the coupling starts at the identity.
    """

    def __init__(self, in_channels: int, out_channels: int, width: int, blocks: int, zero_init: bool = True) -> None:
        last = nn.Conv2d(width, out_channels, 3, padding=1)
        if zero_init:
            nn.init.zeros_(last.weight)
            nn.init.zeros_(last.bias)
        super().__init__(
            nn.Conv2d(in_channels, width, 3, padding=1),
            *[ResidualBlock(width) for _ in range(blocks)],
            nn.GroupNorm(1, width), nn.ReLU(), last,
        )


class Conditioner(nn.Module):
    """Maps ``(x_a, context)`` to the parameters of a coupling's transform:
    ``(raw_s, t)`` for an affine coupling, one tensor for a spline coupling.

    ``x_a: (batch, in_features)`` or ``(batch, channels, H, W)``; ``context:
    (batch, context_features)`` or ``None``. The context is concatenated to
    ``x_a`` on dimension 1 before the networks, repeated over every pixel of
    an image.
    """

    def network_input(self, x_a: Tensor, context: Tensor | None) -> Tensor:
        if context is None:
            return x_a
        spatial = x_a.shape[2:]
        context = context.reshape(*context.shape, *(1,) * len(spatial)).expand(*context.shape, *spatial)
        return torch.cat([x_a, context], dim=1)

    def forward(self, x_a: Tensor, context: Tensor | None = None) -> Tensor | tuple[Tensor, Tensor]:
        raise NotImplementedError


class SharedConditioner(Conditioner):
    """One network whose output ``(batch, 2k, ...)`` is halved into ``s`` and ``t``."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, x_a: Tensor, context: Tensor | None = None) -> tuple[Tensor, Tensor]:
        raw_s, t = self.net(self.network_input(x_a, context)).chunk(2, dim=1)
        return raw_s, t


class StackedConditioner(Conditioner):
    """MLP conditioner: separate ``s`` and ``t`` networks (as in the reference),
    stacked so that both run as one batched matrix multiply per layer, or one
    network whose output is halved into ``s`` and ``t``."""

    def __init__(self, networks: StackedMLP) -> None:
        super().__init__()
        if networks.networks not in (1, 2):
            raise ValueError(f"a conditioner stacks 1 or 2 networks, got {networks.networks}")
        self.networks = networks

    def forward(self, x_a: Tensor, context: Tensor | None = None) -> tuple[Tensor, Tensor]:
        out = self.networks(self.network_input(x_a, context))
        if len(out) == 2:
            return out[0], out[1]
        raw_s, t = out[0].chunk(2, dim=1)
        return raw_s, t


class ParameterConditioner(Conditioner):
    """One MLP from ``(x_a, context)`` to all the parameters of a transform,
    ``(batch, n_params)`` (the bins of a spline coupling, say)."""

    def __init__(self, network: StackedMLP) -> None:
        super().__init__()
        if network.networks != 1:
            raise ValueError(f"a parameter conditioner has one network, got {network.networks}")
        self.networks = network

    def forward(self, x_a: Tensor, context: Tensor | None = None) -> Tensor:
        return self.networks(self.network_input(x_a, context))[0]


def mlp_parameter_conditioner(
    in_features: int,
    parameters: int,
    width: int,
    depth: int,
    context_features: int = 0,
    zero_init: bool = True,
    compute_dtype: torch.dtype | None = None,
) -> ParameterConditioner:
    """An MLP from ``(batch, in_features)`` (plus context) to ``(batch, parameters)``;
    zero-initialised last layer by default, so the transform starts at the identity."""
    mlp = MLP(in_features + context_features, parameters, width, depth, zero_init)
    return ParameterConditioner(StackedMLP([mlp], compute_dtype))


def mlp_conditioner(
    in_features: int,
    out_features: int,
    width: int,
    depth: int,
    separate: bool = False,
    context_features: int = 0,
    zero_init: bool = False,
    glorot_init: bool = False,
    compute_dtype: torch.dtype | None = None,
) -> StackedConditioner:
    """An MLP conditioner from ``(batch, in_features)`` (plus context) to two
    ``(batch, out_features)``: separate ``s`` and ``t`` networks, or one shared;
    ``compute_dtype=torch.bfloat16`` computes the networks in bfloat16."""
    n_in = in_features + context_features
    if separate:
        mlps = [MLP(n_in, out_features, width, depth, zero_init, glorot_init) for _ in range(2)]
    else:
        mlps = [MLP(n_in, 2 * out_features, width, depth, zero_init, glorot_init)]
    return StackedConditioner(StackedMLP(mlps, compute_dtype))
