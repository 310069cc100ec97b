"""The shared harness: every bijector inverts exactly and reports the true log|det J|."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch
from torch.autograd.functional import jacobian

from realnvp.bijectors import (
    ActNorm,
    Bijector,
    Compose,
    ElementwiseAffine,
    FactorOut,
    Inverse,
    Logit,
    MaskedAffineCoupling,
    Permutation,
    SplineCoupling,
    SplitAffineCoupling,
    Squeeze,
    checkerboard_mask,
)
from realnvp.nets import ConvResNet, SharedConditioner, mlp_conditioner, mlp_parameter_conditioner


def _randomize(bijector: Bijector) -> Bijector:
    """Move every parameter off its (often identity) initial value."""
    generator = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for p in bijector.parameters():
            p.add_(0.5 * torch.randn(p.shape, generator=generator))
    return bijector


def _initialized_actnorm(dim: int, spatial: tuple[int, ...] = ()) -> ActNorm:
    layer = ActNorm(dim, len(spatial))
    layer.initialize(torch.randn(64, dim, *spatial) * 3 + 1)
    return layer


def _conv_conditioner(channels_in: int, channels_out: int) -> SharedConditioner:
    return SharedConditioner(ConvResNet(channels_in, 2 * channels_out, width=8, blocks=1, zero_init=False))


def _checkerboard(parity: int) -> MaskedAffineCoupling:
    return MaskedAffineCoupling(checkerboard_mask((2, 4, 4), parity), _conv_conditioner(2, 2),
                                scale_bound=2.0, learn_bound=True)


def _multiscale() -> Bijector:
    """A small RealNVP scale: checkerboard couplings, squeeze, channel coupling, factor out half."""
    inner = Compose([SplitAffineCoupling(4, _conv_conditioner(2, 2), spatial_dims=2, learn_bound=True),
                     _checkerboard_on((4, 2, 2))])
    return Compose([_checkerboard(0), _checkerboard(1), Squeeze(2), FactorOut(4, inner), Inverse(Squeeze(2))])


def _checkerboard_on(shape: tuple[int, int, int]) -> MaskedAffineCoupling:
    return MaskedAffineCoupling(checkerboard_mask(shape), _conv_conditioner(shape[0], shape[0]))


IMAGE = (2, 4, 4)
#: Bijectors on images, with the shape of one example and, where the domain is
#: not all of R^n, a sampler of valid inputs.
IMAGE_BIJECTORS: dict[str, tuple[Callable[[], Bijector], tuple[int, ...], Callable[..., torch.Tensor]]] = {
    "squeeze": (lambda: Squeeze(2), IMAGE, torch.randn),
    "checkerboard_coupling": (lambda: _checkerboard(1), IMAGE, torch.randn),
    "channel_coupling": (lambda: SplitAffineCoupling(4, _conv_conditioner(2, 2), spatial_dims=2, learn_bound=True),
                         (4, 2, 2), torch.randn),
    "actnorm_image": (lambda: _initialized_actnorm(2, (4, 4)), IMAGE, torch.randn),
    "logit": (lambda: Logit(0.05), IMAGE, lambda *shape, dtype: torch.rand(*shape, dtype=dtype)),
    "multiscale": (_multiscale, IMAGE, torch.randn),
}

BIJECTORS: dict[str, Callable[[], Bijector]] = {
    "elementwise_affine": lambda: ElementwiseAffine(torch.tensor([1.0, -2.0, 0.5]), torch.tensor([3.0, 0.5, 2.0])),
    "masked_coupling": lambda: MaskedAffineCoupling(torch.tensor([0.0, 1.0, 0.0]), mlp_conditioner(3, 3, 16, 2, separate=True)),
    "masked_coupling_learned_bound": lambda: MaskedAffineCoupling(
        torch.tensor([1.0, 0.0, 1.0]), mlp_conditioner(3, 3, 16, 2), scale_bound=2.0, learn_bound=True),
    "masked_coupling_unbounded": lambda: MaskedAffineCoupling(torch.tensor([1.0, 0.0, 0.0]), mlp_conditioner(3, 3, 16, 1), scale_bound=None),
    "split_coupling": lambda: SplitAffineCoupling(3, mlp_conditioner(1, 2, 16, 2)),
    "split_coupling_separate": lambda: SplitAffineCoupling(3, mlp_conditioner(2, 1, 16, 2, separate=True), split=2),
    "masked_coupling_bfloat16_conditioner": lambda: MaskedAffineCoupling(
        torch.tensor([0.0, 1.0, 0.0]), mlp_conditioner(3, 3, 32, 3, separate=True, compute_dtype=torch.bfloat16)),
    "split_coupling_bfloat16_conditioner": lambda: SplitAffineCoupling(
        3, mlp_conditioner(1, 2, 32, 3, compute_dtype=torch.bfloat16), learn_bound=True),
    # small conditioners: random weights of a large one make bins so flat that
    # float32 cannot invert them to 1e-4 (as would a trained spline that flat)
    "spline_coupling": lambda: SplineCoupling(
        3, mlp_parameter_conditioner(1, 2 * (3 * 6 - 1), 8, 1, zero_init=False), bins=6, bound=1.5),
    "reverse_permutation": lambda: Permutation.reverse(3),
    "random_permutation": lambda: Permutation.random(3, torch.Generator().manual_seed(0)),
    "actnorm": lambda: _initialized_actnorm(3),
    "compose": lambda: Compose([
        _initialized_actnorm(3),
        SplitAffineCoupling(3, mlp_conditioner(1, 2, 16, 2)),
        Permutation.reverse(3),
        MaskedAffineCoupling(torch.tensor([0.0, 1.0, 1.0]), mlp_conditioner(3, 3, 16, 2)),
    ]),
}

DTYPES = [torch.float32, torch.float64]
TOLERANCE = {torch.float32: 1e-4, torch.float64: 1e-10}


CASES = {name: (factory, (3,), torch.randn) for name, factory in BIJECTORS.items()} | IMAGE_BIJECTORS


class Case:
    """A bijector under test, the shape of one example and a sampler of valid inputs."""

    def __init__(self, name: str) -> None:
        factory, self.shape, self.sampler = CASES[name]
        torch.manual_seed(0)
        self.bijector = _randomize(factory()).eval()

    def inputs(self, n: int, dtype: torch.dtype) -> torch.Tensor:
        return self.sampler(n, *self.shape, dtype=dtype)


@pytest.fixture(params=sorted(CASES), name="case")
def _case(request: pytest.FixtureRequest) -> Case:
    return Case(request.param)


@pytest.mark.parametrize("dtype", DTYPES)
def test_round_trip(case: Case, dtype: torch.dtype) -> None:
    bijector = case.bijector.to(dtype)
    x = case.inputs(32, dtype)
    z, _ = bijector(x)
    x_back, _ = bijector.inverse(z)
    assert z.dtype == dtype and x_back.dtype == dtype
    torch.testing.assert_close(x_back, x, atol=TOLERANCE[dtype], rtol=TOLERANCE[dtype])


def _assert_log_det_is_autograd(
    transform: Callable[[torch.Tensor], tuple[torch.Tensor, torch.Tensor]], points: torch.Tensor
) -> None:
    """``transform``'s log|det| at each point equals slogdet of its autograd Jacobian."""
    _, logdet = transform(points)
    tolerance = TOLERANCE[points.dtype]
    size = points[0].numel()
    for point, reported in zip(points, logdet):
        jac = jacobian(lambda row: transform(row.unsqueeze(0))[0].squeeze(0), point).reshape(size, size)
        torch.testing.assert_close(reported, torch.linalg.slogdet(jac).logabsdet, atol=tolerance * 10, rtol=tolerance)


@pytest.mark.parametrize("dtype", DTYPES)
def test_log_det_matches_autograd_jacobian(case: Case, dtype: torch.dtype) -> None:
    _assert_log_det_is_autograd(case.bijector.to(dtype), case.inputs(4, dtype))


@pytest.mark.parametrize("dtype", DTYPES)
def test_inverse_log_det_matches_autograd_jacobian(case: Case, dtype: torch.dtype) -> None:
    bijector = case.bijector.to(dtype)
    _assert_log_det_is_autograd(bijector.inverse, bijector(case.inputs(4, dtype))[0].detach())


@pytest.mark.parametrize("dtype", DTYPES)
def test_forward_and_inverse_log_dets_cancel(case: Case, dtype: torch.dtype) -> None:
    bijector = case.bijector.to(dtype)
    x = case.inputs(32, dtype)
    z, forward_logdet = bijector(x)
    _, inverse_logdet = bijector.inverse(z)
    torch.testing.assert_close(forward_logdet + inverse_logdet, torch.zeros_like(forward_logdet),
                               atol=TOLERANCE[dtype] * 10, rtol=0)


def test_worked_example_one_sixth() -> None:
    """z1 = (x1 - 1)/3, z2 = x2/2 has |det dz/dx| = 1/6 everywhere."""
    f = ElementwiseAffine(torch.tensor([1.0, 0.0]), torch.tensor([3.0, 2.0]))
    z, logdet = f(torch.tensor([[4.0, 2.0], [1.0, 0.0]]))
    torch.testing.assert_close(z, torch.tensor([[1.0, 1.0], [0.0, 0.0]]))
    torch.testing.assert_close(logdet.exp(), torch.full((2,), 1 / 6))


def test_coupling_leaves_conditioning_part_unchanged() -> None:
    layer = _randomize(MaskedAffineCoupling(torch.tensor([0.0, 1.0]), mlp_conditioner(2, 2, 8, 2, separate=True)))
    x = torch.randn(16, 2)
    z, _ = layer(x)
    torch.testing.assert_close(z[:, 1], x[:, 1])
    assert not torch.allclose(z[:, 0], x[:, 0])


def test_scale_bound_limits_log_scale() -> None:
    layer = MaskedAffineCoupling(torch.tensor([0.0, 1.0]), mlp_conditioner(2, 2, 8, 2), scale_bound=0.5)
    with torch.no_grad():
        for p in layer.parameters():
            p.fill_(100.0)
    _, logdet = layer(torch.full((4, 2), 100.0))
    assert bool((logdet.abs() <= 0.5 + 1e-6).all())


def test_actnorm_initializes_from_first_batch_and_only_once() -> None:
    layer = ActNorm(2).train()
    x = torch.randn(500, 2) * torch.tensor([3.0, 0.2]) + torch.tensor([5.0, -1.0])
    z, _ = layer(x)
    torch.testing.assert_close(z.mean(0), torch.zeros(2), atol=1e-5, rtol=0)
    torch.testing.assert_close(z.std(0), torch.ones(2), atol=1e-5, rtol=0)
    before = layer.loc.detach().clone()
    layer(x * 10)
    torch.testing.assert_close(layer.loc.detach(), before)
    restored = ActNorm(2)
    restored.load_state_dict(layer.state_dict())
    assert bool(restored.initialized)


def test_permutation_rejects_non_permutation() -> None:
    with pytest.raises(ValueError, match="not a permutation"):
        Permutation(torch.tensor([0, 0, 1]))


def test_context_reaches_the_conditioner() -> None:
    layer = _randomize(SplitAffineCoupling(2, mlp_conditioner(1, 1, 8, 2, context_features=3)))
    x = torch.randn(5, 2)
    z1, _ = layer(x, torch.zeros(5, 3))
    z2, _ = layer(x, torch.ones(5, 3))
    assert not torch.allclose(z1, z2)
    x_back, _ = layer.inverse(z2, torch.ones(5, 3))
    torch.testing.assert_close(x_back, x)


def test_squeeze_moves_each_2x2_block_into_channels() -> None:
    x = torch.arange(16.0).reshape(1, 1, 4, 4)
    z, logdet = Squeeze(2)(x)
    assert z.shape == (1, 4, 2, 2) and float(logdet) == 0
    torch.testing.assert_close(z[0, :, 0, 0], torch.tensor([0.0, 1.0, 4.0, 5.0]))  # the top-left block


def test_checkerboard_mask_alternates() -> None:
    mask = checkerboard_mask((1, 2, 3))
    torch.testing.assert_close(mask[0], torch.tensor([[1.0, 0.0, 1.0], [0.0, 1.0, 0.0]]))
    torch.testing.assert_close(checkerboard_mask((1, 2, 3), parity=1), 1 - mask)


def test_logit_maps_the_unit_interval_onto_the_line() -> None:
    y, _ = Logit(0.05)(torch.tensor([[0.0, 0.5, 1.0]]))
    torch.testing.assert_close(y, torch.tensor([[-2.944439, 0.0, 2.944439]]))


def test_factor_out_passes_the_first_channels_through() -> None:
    layer = FactorOut(2, _checkerboard_on((2, 2, 2)))
    _randomize(layer)
    x = torch.randn(3, 4, 2, 2)
    z, _ = layer(x)
    torch.testing.assert_close(z[:, :2], x[:, :2])
    assert not torch.allclose(z[:, 2:], x[:, 2:])
