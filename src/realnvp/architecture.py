"""A JSON-serialisable description of a tabular RealNVP and its builder.

A saved model is this description plus the weights, so loading rebuilds the
exact module tree and never unpickles code.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any, Literal

import torch

from realnvp.bijectors import (
    ActNorm,
    Bijector,
    Compose,
    ElementwiseAffine,
    MaskedAffineCoupling,
    Permutation,
    SplineCoupling,
    SplitAffineCoupling,
)
from realnvp.flow import Flow
from realnvp.images.architecture import ImageFlowSpec, build_image_flow
from realnvp.nets import mlp_conditioner, mlp_parameter_conditioner


@dataclass(frozen=True)
class FlowSpec:
    """Architecture of a RealNVP on ``(batch, dim)`` data.

    Attributes:
        dim: number of features.
        couplings: number of affine coupling layers.
        coupling: ``"masked"`` (binary masks alternating, ``1`` marking the
            pass-through coordinates; from data to latent the first is
            ``[1,0,1,...]``, as in the reference, which lists its masks
            ``[0,1], [1,0]`` in the latent-to-data order), ``"split"``
            (halves, with a permutation between couplings) or ``"spline"``
            (halves, a rational-quadratic spline per transformed feature).
        width, depth: hidden layers of each conditioner MLP.
        separate_networks: separate ``s`` and ``t`` networks (reference) or one
            network with both outputs.
        scale_bound, learn_bound: ``s = bound * tanh(raw_s)`` (affine couplings).
        bins, tail_bound: pieces of each spline and the interval
            ``[-tail_bound, tail_bound]`` it acts on (spline couplings).
        zero_init: start every coupling at the identity.
        glorot_init: Keras' initialisation, for the reference.
        actnorm: an ActNorm layer before every coupling.
        permutation: ``"reverse"`` or ``"random"`` between split couplings.
        standardize: a standardisation of the training data as first layer.
        mixed_precision: the conditioner networks compute in bfloat16 (the
            affine update, log-determinants and base density stay in the flow's
            dtype, so the flow stays exactly invertible); several times faster
            on CPUs with bfloat16 units, results within ~1e-2 of float32.
        context_features: size of a context vector every coupling is
            conditioned on, for conditional flows ``p(x | context)``; 0 for none.
        seed: seeds random permutations.
        kind: ``"tabular"``; image flows are :class:`ImageFlowSpec`.
    """

    dim: int = 2
    couplings: int = 2
    coupling: Literal["masked", "split", "spline"] = "masked"
    width: int = 256
    depth: int = 4
    separate_networks: bool = True
    scale_bound: float | None = 1.0
    learn_bound: bool = False
    bins: int = 8
    tail_bound: float = 4.0
    zero_init: bool = False
    glorot_init: bool = False
    actnorm: bool = False
    permutation: Literal["reverse", "random"] = "reverse"
    standardize: bool = True
    mixed_precision: bool = False
    context_features: int = 0
    seed: int = 0
    kind: Literal["tabular"] = "tabular"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> FlowSpec:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"unknown architecture field(s): {', '.join(unknown)}")
        return cls(**values)


def _half_coupling(spec: FlowSpec, compute_dtype: torch.dtype | None) -> Bijector:
    """A coupling whose first ``dim // 2`` features pass through: affine or spline."""
    split = spec.dim // 2
    if spec.coupling == "spline":
        conditioner = mlp_parameter_conditioner(
            split, (spec.dim - split) * (3 * spec.bins - 1), spec.width, spec.depth,
            spec.context_features, spec.zero_init, compute_dtype,
        )
        return SplineCoupling(spec.dim, conditioner, split, spec.bins, spec.tail_bound)
    conditioner = mlp_conditioner(
        split, spec.dim - split, spec.width, spec.depth,
        spec.separate_networks, spec.context_features, spec.zero_init, spec.glorot_init, compute_dtype,
    )
    return SplitAffineCoupling(spec.dim, conditioner, split, spec.scale_bound, spec.learn_bound)


def _coupling_layers(spec: FlowSpec) -> list[Bijector]:
    generator = torch.Generator().manual_seed(spec.seed)
    layers: list[Bijector] = []
    compute_dtype = torch.bfloat16 if spec.mixed_precision else None
    for k in range(spec.couplings):
        if spec.actnorm:
            layers.append(ActNorm(spec.dim))
        if spec.coupling == "masked":
            mask = ((torch.arange(spec.dim) + k + 1) % 2).float()
            conditioner = mlp_conditioner(
                spec.dim, spec.dim, spec.width, spec.depth,
                spec.separate_networks, spec.context_features, spec.zero_init, spec.glorot_init, compute_dtype,
            )
            layers.append(MaskedAffineCoupling(mask, conditioner, spec.scale_bound, spec.learn_bound))
        else:
            if k > 0:
                permute = Permutation.random(spec.dim, generator) if spec.permutation == "random" \
                    else Permutation.reverse(spec.dim)
                layers.append(permute)
            layers.append(_half_coupling(spec, compute_dtype))
    return layers


def build_flow(spec: FlowSpec, data: torch.Tensor | None = None) -> Flow:
    """Build the flow of ``spec``; ``data (n, dim)`` sets the standardisation.

    Without ``data`` the standardisation is the identity, to be overwritten by
    loading saved weights.
    """
    if spec.coupling not in ("masked", "split", "spline"):
        raise ValueError(f"coupling must be 'masked', 'split' or 'spline', got {spec.coupling!r}")
    if spec.dim < 2:
        raise ValueError(f"affine couplings need dim >= 2, got {spec.dim}")
    standardizer = None
    if spec.standardize:
        standardizer = (
            ElementwiseAffine.standardizing(data)
            if data is not None
            else ElementwiseAffine(torch.zeros(spec.dim), torch.ones(spec.dim))
        )
    return Flow(Compose(_coupling_layers(spec)), (spec.dim,), standardizer)


Spec = FlowSpec | ImageFlowSpec


def spec_from_dict(values: dict[str, Any]) -> Spec:
    """The architecture saved as ``values``: tabular or image, by its ``kind``."""
    if values.get("kind", "tabular") == "image":
        return ImageFlowSpec.from_dict(values)
    return FlowSpec.from_dict(values)


def build(spec: Spec, data: torch.Tensor | None = None) -> Flow:
    """Build either kind of flow; ``data`` sets a tabular flow's standardisation."""
    if isinstance(spec, ImageFlowSpec):
        return build_image_flow(spec)
    return build_flow(spec, data)
