"""The multi-scale RealNVP of Dinh, Sohl-Dickstein and Bengio (2017), for small images.

At each scale: checkerboard couplings (alternating parity), a squeeze, channel-wise
couplings (alternating halves), then half of the channels are factored out to
the latent and the rest go on to the next scale; an unsqueeze at the end of the
scale gives the latent the image's shape. The last scale has only
checkerboard couplings. Every coupling is preceded by an ActNorm, and its
log-scale is ``s = bound * tanh(raw)`` with a learned bound. The first layer is
the logit transform of the dequantised pixels in ``[0, 1)``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any, Literal

from realnvp.bijectors import (
    ActNorm,
    Bijector,
    Compose,
    FactorOut,
    Inverse,
    Logit,
    MaskedAffineCoupling,
    Permutation,
    SplitAffineCoupling,
    Squeeze,
    checkerboard_mask,
)
from realnvp.flow import Flow
from realnvp.nets import ConvResNet, SharedConditioner


@dataclass(frozen=True)
class ImageFlowSpec:
    """Architecture of a multi-scale RealNVP on ``(batch, channels, height, width)`` images.

    Attributes:
        channels, height, width: the image shape.
        levels: pixel levels (17 for scikit-learn's digits, 256 for 8-bit images).
        scales: number of scales; each but the last halves height and width.
        couplings: couplings of each kind per scale.
        final_couplings: checkerboard couplings of the last scale.
        hidden: channels of the residual conditioner networks.
        blocks: residual blocks per conditioner.
        scale_bound: starting value of the learned bound on the log-scale.
        alpha: the logit transform's margin.
        context_features: size of a context vector (a one-hot label, say) every
            coupling is conditioned on, for ``p(image | context)``; 0 for none.
    """

    channels: int = 1
    height: int = 8
    width: int = 8
    levels: int = 17
    scales: int = 2
    couplings: int = 3
    final_couplings: int = 4
    hidden: int = 32
    blocks: int = 2
    scale_bound: float = 2.0
    alpha: float = 0.05
    context_features: int = 0
    kind: Literal["image"] = "image"

    @property
    def event_shape(self) -> tuple[int, int, int]:
        return (self.channels, self.height, self.width)

    @property
    def dims(self) -> int:
        return self.channels * self.height * self.width

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> ImageFlowSpec:
        unknown = sorted(set(values) - {f.name for f in fields(cls)})
        if unknown:
            raise ValueError(f"unknown image architecture field(s): {', '.join(unknown)}")
        return cls(**values)


def _checkerboard_couplings(spec: ImageFlowSpec, shape: tuple[int, int, int], count: int) -> list[Bijector]:
    layers: list[Bijector] = []
    for k in range(count):
        conditioner = SharedConditioner(
            ConvResNet(shape[0] + spec.context_features, 2 * shape[0], spec.hidden, spec.blocks))
        layers += [ActNorm(shape[0], spatial_dims=2),
                   MaskedAffineCoupling(checkerboard_mask(shape, parity=k % 2), conditioner,
                                        spec.scale_bound, learn_bound=True)]
    return layers


def _channel_couplings(spec: ImageFlowSpec, channels: int, count: int) -> list[Bijector]:
    layers: list[Bijector] = []
    half = channels // 2
    for k in range(count):
        if k > 0:
            layers.append(Permutation.reverse(channels))
        conditioner = SharedConditioner(
            ConvResNet(half + spec.context_features, 2 * (channels - half), spec.hidden, spec.blocks))
        layers += [ActNorm(channels, spatial_dims=2),
                   SplitAffineCoupling(channels, conditioner, half, spec.scale_bound, learn_bound=True,
                                       spatial_dims=2)]
    return layers


def _scale(spec: ImageFlowSpec, shape: tuple[int, int, int], scale: int) -> Bijector:
    channels, height, width = shape
    last = scale == spec.scales - 1 or height % 2 or width % 2 or height < 4
    if last:
        return Compose(_checkerboard_couplings(spec, shape, spec.final_couplings))
    squeezed = (4 * channels, height // 2, width // 2)
    keep = squeezed[0] // 2
    inner = _scale(spec, (squeezed[0] - keep, squeezed[1], squeezed[2]), scale + 1)
    return Compose([
        *_checkerboard_couplings(spec, shape, spec.couplings),
        Squeeze(2),
        *_channel_couplings(spec, squeezed[0], spec.couplings),
        FactorOut(keep, inner),
        Inverse(Squeeze(2)),  # back to (C, H, W), so the latent has the image's shape
    ])


def build_image_flow(spec: ImageFlowSpec) -> Flow:
    """The flow of ``spec``; its input is dequantised pixels in ``[0, 1)``, shaped
    ``(batch, channels, height, width)``, and so is its latent."""
    return Flow(Compose([Logit(spec.alpha), _scale(spec, spec.event_shape, 0)]), spec.event_shape)
