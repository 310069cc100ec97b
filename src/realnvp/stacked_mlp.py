"""Several MLPs of one shape on one input, computed as batched matrix multiplies.

The ``s`` and ``t`` networks of a coupling read the same input. Stacking their
weights, ``W_l: (k, fan_out, fan_in)``, turns each layer of the ``k`` networks
into one ``torch.bmm``, which the CPU spreads over its cores one network per
core, and a hand-written backward pass does only the matrix multiplies and
element-wise work the gradient needs (no input gradient where the input needs
none, the ReLU mask read from the saved activations, the bias gradients as
sums). From :data:`FUSED_LINEAR_MIN_ROWS` rows on (evaluation, sampling), each
network's layer is one oneDNN multiply with its bias and ReLU fused in, which
uses every core by itself. The networks can compute in bfloat16 while the
coupling's affine update, its log-determinant and the base density stay in
float32: mixed precision for the conditioner only, which the coupling
tolerates exactly (see :mod:`realnvp.bijectors.coupling`).

For ``x: (batch, n_in)`` and every network ``i``::

    h_0 = relu(x W_0[i]^T + b_0[i]),  h_l = relu(h_{l-1} W_l[i]^T + b_l[i]),
    out[i] = h_{L-1} W_L[i]^T + b_L[i]                     # (batch, n_out)
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn
from torch.autograd.function import FunctionCtx, once_differentiable


#: From this many rows on, each network's layer runs as one oneDNN matrix
#: multiply with the bias and ReLU fused into it, which spreads over the cores by
#: itself; below it a small multiply runs on one core, and one batched multiply
#: over the networks (one network per core) is faster.
FUSED_LINEAR_MIN_ROWS = 2048
#: In batched multiplies, a layer with fewer inputs or outputs than this stays
#: in float32: bfloat16 multiplies that thin run several times slower than
#: float32 ones at small batches (and cost next to nothing in float32).
THIN_LAYER = 16
#: read once: torch.compile cannot trace the query
_ONEDNN = torch.backends.mkldnn.is_available()


def _fused(x: Tensor) -> bool:
    """Whether ``x (batch, n_in)`` takes the oneDNN path of :func:`_forward`;
    never under ``torch.compile``, which fuses the batched path itself (and
    cannot lower the oneDNN operator on weights it has not packed)."""
    return (x.device.type == "cpu" and x.shape[0] >= FUSED_LINEAR_MIN_ROWS
            and x.dtype in (torch.float32, torch.bfloat16) and _ONEDNN and not torch.compiler.is_compiling())


def _cast(x: Tensor, compute_dtype: torch.dtype, params: Sequence[Tensor],
          fused: bool) -> tuple[list[Tensor], list[Tensor]]:
    """Each layer's weight and bias in the dtype it multiplies in: ``compute_dtype``,
    or ``x``'s for the thin layers of the batched path (``fused`` false). The
    bias goes with its product: adding a float32 bias to a bfloat16 product
    takes a slow mixed-dtype path (10x at batch 10,000)."""
    layers = len(params) // 2
    dtypes = [compute_dtype if fused or min(w.shape[1:]) >= THIN_LAYER else x.dtype for w in params[:layers]]
    return ([w.to(dtype) for w, dtype in zip(params[:layers], dtypes)],
            [b.to(dtype) for b, dtype in zip(params[layers:], dtypes)])


def _forward(x: Tensor, weights: list[Tensor], biases: list[Tensor], keep_inputs: bool,
             fused: bool) -> tuple[Tensor, list[Tensor]]:
    """The networks on ``x (batch, n_in)``, each layer in its weight's dtype:
    the output ``(k, batch, n_out)`` in ``x``'s dtype and, if ``keep_inputs``,
    each layer's input ``(k, batch, fan_in)`` for the backward pass.

    Small batches run all networks at once, one ``torch.bmm`` per layer; large
    ones (``fused``, from :func:`_fused`) one network at a time, each layer one
    oneDNN multiply with its bias and ReLU. Both compute the same thing.
    """
    # Activations are kept only when asked for: a dropped one frees its memory
    # for the next layer's, still in cache (12 % faster at batch 10,000).
    last = len(weights) - 1
    inputs: list[Tensor] = []
    if not fused:
        h = x.expand(weights[0].shape[0], *x.shape)
        for layer, (weight, bias) in enumerate(zip(weights, biases)):
            h = h.to(weight.dtype)
            if keep_inputs:
                inputs.append(h)
            h = torch.baddbmm(bias, h, weight.transpose(1, 2))
            if layer < last:
                h = h.relu_()
        return h.to(x.dtype), inputs
    outputs, per_network = [], []
    for i in range(weights[0].shape[0]):
        h, network_inputs = x, []
        for layer, (weight, bias) in enumerate(zip(weights, biases)):
            h = h.to(weight.dtype)
            if keep_inputs:
                network_inputs.append(h)
            h = torch.ops.mkldnn._linear_pointwise(h, weight[i], bias[i, 0], "relu" if layer < last else "none", [], "")
        outputs.append(h)
        per_network.append(network_inputs)
    if keep_inputs:
        inputs = [torch.stack(layer) for layer in zip(*per_network)]
    return torch.stack(outputs).to(x.dtype), inputs


class _StackedMLPFunction(torch.autograd.Function):
    """Forward and backward of :class:`StackedMLP`; ``params`` are the
    weights ``(k, fan_out, fan_in)`` of every layer, then the biases ``(k, 1, fan_out)``."""

    @staticmethod
    def forward(ctx: FunctionCtx, x: Tensor, compute_dtype: torch.dtype, *params: Tensor) -> Tensor:
        fused = _fused(x)
        weights, biases = _cast(x, compute_dtype, params, fused)
        out, inputs = _forward(x, weights, biases, keep_inputs=True, fused=fused)
        ctx.param_dtype, ctx.input_dtype = params[0].dtype, x.dtype
        ctx.save_for_backward(*inputs, *weights)
        return out

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
            bias_grads[layer] = grad.sum(dim=1, keepdim=True, dtype=ctx.param_dtype)
            grad = grad.to(layer_input.dtype)
            weight_grads[layer] = torch.bmm(grad.transpose(1, 2), layer_input).to(ctx.param_dtype)
            if layer == 0 and not ctx.needs_input_grad[0]:
                break
            grad = torch.bmm(grad, weight)
            if layer == 0:
                grad_x = grad.sum(dim=0, dtype=ctx.input_dtype)
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
        compute_dtype: the dtype the networks compute in (``torch.bfloat16``
            for mixed precision), the output coming back in the input's dtype;
            ``None`` computes in the input's dtype.

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

    def __init__(self, mlps: Sequence[nn.Sequential], compute_dtype: torch.dtype | None = None) -> None:
        super().__init__()
        linears = [[m for m in mlp if isinstance(m, nn.Linear)] for mlp in mlps]
        if any(len(layers) != len(linears[0]) for layers in linears):
            raise ValueError("stacked MLPs must have the same number of layers")
        self.weights = nn.ParameterList(
            nn.Parameter(torch.stack([net[layer].weight.detach() for net in linears]))
            for layer in range(len(linears[0]))
        )
        self.biases = nn.ParameterList(
            nn.Parameter(torch.stack([net[layer].bias.detach().unsqueeze(0) for net in linears]))
            for layer in range(len(linears[0]))
        )
        self.compute_dtype = compute_dtype

    @property
    def networks(self) -> int:
        """``k``, the number of stacked networks."""
        return self.weights[0].shape[0]

    def kernels(self) -> list[Tensor]:
        """The weight matrices (not the biases), e.g. for an L2 penalty."""
        return list(self.weights)

    def forward(self, x: Tensor) -> Tensor:
        """``x: (batch, n_in) -> (k, batch, n_out)``."""
        compute_dtype = x.dtype if self.compute_dtype is None else self.compute_dtype
        params = [*self.weights, *self.biases]
        if torch.is_grad_enabled() and (x.requires_grad or any(p.requires_grad for p in params)):
            return _StackedMLPFunction.apply(x, compute_dtype, *params)
        fused = _fused(x)
        return _forward(x, *_cast(x, compute_dtype, params, fused), keep_inputs=False, fused=fused)[0]
