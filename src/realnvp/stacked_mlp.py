"""Several MLPs of one shape on one input, computed as batched matrix multiplies.

The ``s`` and ``t`` networks of a coupling read the same input. Stacking their
weights, ``W_l: (k, fan_in, fan_out)``, turns each layer of the ``k`` networks
into one ``torch.bmm``, which the CPU spreads over its cores one network per
core, and a hand-written backward pass does only the matrix multiplies and
element-wise work the gradient needs (no input gradient where the input needs
none, the ReLU mask read from the saved activations, the bias gradients as
sums). The hidden layers (``width -> width``, nearly all the arithmetic) can
multiply in bfloat16 while the first and last layers and every
element-wise step stay in the input's dtype: mixed precision for the
conditioner only, which the coupling tolerates exactly (see
:mod:`realnvp.bijectors.coupling`).

For ``x: (batch, n_in)`` and every network ``i``::

    h_0 = relu(x W_0[i] + b_0[i]),  h_l = relu(h_{l-1} W_l[i] + b_l[i]),
    out[i] = h_{L-1} W_L[i] + b_L[i]                       # (batch, n_out)
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn
from torch.autograd.function import FunctionCtx, once_differentiable


def _layer_input_dtype(layer: int, layers: int, input_dtype: torch.dtype, hidden_dtype: torch.dtype) -> torch.dtype:
    """The dtype layer ``layer`` of ``layers`` multiplies in: ``hidden_dtype``
    for the width-to-width layers, the input's for the first and the last."""
    return hidden_dtype if 0 < layer < layers - 1 else input_dtype


class _StackedMLPFunction(torch.autograd.Function):
    """Forward and backward of :class:`StackedMLP`; ``params`` are the
    weights ``(k, fan_in, fan_out)`` of every layer, then the biases ``(k, 1, fan_out)``."""

    @staticmethod
    def forward(ctx: FunctionCtx, x: Tensor, hidden_dtype: torch.dtype, *params: Tensor) -> Tensor:
        layers = len(params) // 2
        weights, biases = params[:layers], params[layers:]
        h = x.expand(weights[0].shape[0], *x.shape)
        inputs, cast_weights = [], []
        for layer, (weight, bias) in enumerate(zip(weights, biases)):
            h = h.to(_layer_input_dtype(layer, layers, x.dtype, hidden_dtype))
            inputs.append(h)
            cast_weights.append(weight.to(h.dtype))
            h = torch.add(torch.bmm(h, cast_weights[-1]), bias)
            if layer < layers - 1:
                h = h.relu_()
        ctx.weight_dtype = weights[0].dtype
        ctx.save_for_backward(*inputs, *cast_weights)
        return h

    @staticmethod
    @once_differentiable
    def backward(ctx: FunctionCtx, grad: Tensor) -> tuple[Tensor | None, ...]:
        saved = ctx.saved_tensors
        layers = len(saved) // 2
        inputs, weights = saved[:layers], saved[layers:]
        weight_grads: list[Tensor | None] = [None] * layers
        bias_grads: list[Tensor | None] = [None] * layers
        grad_x = None
        for layer in reversed(range(layers)):
            weight, layer_input = weights[layer], inputs[layer]
            bias_grads[layer] = grad.sum(dim=1, keepdim=True, dtype=ctx.weight_dtype)
            grad = grad.to(layer_input.dtype)
            weight_grads[layer] = torch.bmm(layer_input.transpose(1, 2), grad).to(ctx.weight_dtype)
            if layer == 0 and not ctx.needs_input_grad[0]:
                break
            grad = torch.bmm(grad, weight.transpose(1, 2))
            if layer == 0:
                grad_x = grad.sum(dim=0, dtype=ctx.weight_dtype)
            else:
                # The layer's input is the previous layer's ReLU output: the
                # gradient passes where that output is positive.
                grad = torch.ops.aten.threshold_backward(grad, layer_input, 0)
        return (grad_x, None, *weight_grads, *bias_grads)


class StackedMLP(nn.Module):
    """``k`` MLPs of the same shape applied to the same input.

    ``(batch, n_in) -> (k, batch, n_out)``; network ``i`` is the MLP whose
    layers are ``weights[l][i]`` and ``biases[l][i]``. Build it from ``k``
    MLPs of one shape, such as :class:`~realnvp.nets.MLP` (their weights are
    copied, so the initialisation is theirs).

    Args:
        mlps: the networks to stack, each ``Linear, ReLU, ..., Linear``.
        hidden_dtype: dtype of the width-to-width matrix multiplies
            (``torch.bfloat16`` for mixed precision); ``None`` uses the input's.

        >>> from realnvp.nets import MLP
        >>> mlps = [MLP(2, 3, width=8, depth=2) for _ in range(2)]
        >>> stacked = StackedMLP(mlps)
        >>> x = torch.randn(5, 2)
        >>> out = stacked(x)
        >>> out.shape
        torch.Size([2, 5, 3])
        >>> bool(torch.allclose(out[1], mlps[1](x), atol=1e-6))
        True
    """

    def __init__(self, mlps: Sequence[nn.Sequential], hidden_dtype: torch.dtype | None = None) -> None:
        super().__init__()
        linears = [[m for m in mlp if isinstance(m, nn.Linear)] for mlp in mlps]
        if any(len(layers) != len(linears[0]) for layers in linears):
            raise ValueError("stacked MLPs must have the same number of layers")
        self.weights = nn.ParameterList(
            nn.Parameter(torch.stack([net[layer].weight.detach().t() for net in linears]).contiguous())
            for layer in range(len(linears[0]))
        )
        self.biases = nn.ParameterList(
            nn.Parameter(torch.stack([net[layer].bias.detach().unsqueeze(0) for net in linears]))
            for layer in range(len(linears[0]))
        )
        self.hidden_dtype = hidden_dtype

    @property
    def networks(self) -> int:
        """``k``, the number of stacked networks."""
        return self.weights[0].shape[0]

    def kernels(self) -> list[Tensor]:
        """The weight matrices (not the biases), e.g. for an L2 penalty."""
        return list(self.weights)

    def forward(self, x: Tensor) -> Tensor:
        """``x: (batch, n_in) -> (k, batch, n_out)``."""
        hidden_dtype = x.dtype if self.hidden_dtype is None else self.hidden_dtype
        return _StackedMLPFunction.apply(x, hidden_dtype, *self.weights, *self.biases)
