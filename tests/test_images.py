"""Images: bits per dimension done right, pixel-exact round trips, data errors, the commands."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import realnvp
from realnvp.bijectors import Compose, Logit
from realnvp.cli import EXIT_BAD_INPUT, main
from realnvp.flow import Flow, standard_normal_log_prob
from realnvp.images.architecture import ImageFlowSpec, build_image_flow
from realnvp.images.data import load_digits_images, read_image_folder, write_png
from realnvp.images.job import image_bits, independent_pixel_bits, reconstruct
from realnvp.images.quantization import bits_per_dim, dequantize

SMALL = ImageFlowSpec(hidden=8, blocks=1, couplings=2, final_couplings=2)


def _perturbed(spec: ImageFlowSpec) -> Flow:
    torch.manual_seed(0)
    flow = build_image_flow(spec)
    with torch.no_grad():
        for p in flow.parameters():
            p.add_(0.05 * torch.randn(p.shape))
    return flow.eval()


def test_a_uniform_density_on_the_unit_cube_gives_log2_levels_bits() -> None:
    """The identity flow on uniformly dequantised data: log p = 0 on [0, 1]^D."""
    bits = bits_per_dim(torch.zeros(5, dtype=torch.float64), dims=64, levels=17)
    torch.testing.assert_close(bits, torch.full((5,), math.log2(17), dtype=torch.float64))


def test_bits_per_dim_of_a_closed_form_density() -> None:
    """Logit then N(0, I): p(x) = prod N(logit x) / (x (1 - x)) on the unit cube."""
    flow = Flow(Compose([Logit(0.0)]), (1, 2, 2)).double()
    pixels = torch.tensor([[[[0, 5], [16, 8]]], [[[3, 3], [12, 1]]]])
    x = dequantize(pixels, 17, torch.Generator().manual_seed(0), torch.float64)
    logit = torch.log(x) - torch.log1p(-x)
    log_p = standard_normal_log_prob(logit) - torch.log(x * (1 - x)).flatten(1).sum(1)
    expected = (-log_p + 4 * math.log(17)) / (4 * math.log(2))
    torch.testing.assert_close(bits_per_dim(flow.log_prob(x), 4, 17), expected)


def test_digits_split_is_fixed() -> None:
    train, test = load_digits_images()
    assert train.pixels.shape == (1500, 1, 8, 8) and test.pixels.shape == (297, 1, 8, 8)
    assert train.levels == 17 and int(train.pixels.max()) == 16
    assert load_digits_images()[1].names == test.names


def test_every_digit_comes_back_pixel_exact() -> None:
    train, test = load_digits_images()
    flow = _perturbed(SMALL)
    pixels = np.concatenate([train.pixels, test.pixels])
    assert np.array_equal(reconstruct(flow, pixels, 17), pixels)


def test_image_flow_saves_and_loads(tmp_path: Path) -> None:
    flow = _perturbed(SMALL)
    realnvp.save(flow, SMALL, tmp_path)
    loaded = realnvp.load(tmp_path)
    _, test = load_digits_images()
    np.testing.assert_array_equal(image_bits(loaded, test), image_bits(flow, test))


def test_independent_pixel_baseline_is_between_zero_and_log2_levels() -> None:
    train, test = load_digits_images()
    bits = independent_pixel_bits(train, test)
    assert 1.0 < bits < math.log2(17)


@pytest.fixture(scope="module")
def png_model(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("pngs")
    pictures = folder / "pictures"
    _, test = load_digits_images()
    for i, image in enumerate(test.pixels[:40]):
        write_png(pictures / f"d{i:02d}.png", image, 17)
    out = folder / "model"
    assert main(["train", "--data", str(pictures), "--epochs", "1", "--out", str(out), "--quiet"]) == 0
    return pictures, out


def test_train_on_a_folder_writes_metrics_and_figures(png_model: tuple[Path, Path]) -> None:
    _, out = png_model
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["data"]["levels"] == 256 and metrics["data"]["shape"] == [1, 8, 8]
    assert metrics["reconstruction_exact"] and metrics["test_bits_per_dim"]["mean"] > 0
    assert {"samples.png", "reconstructions.png", "curves.png", "model.json"} <= {p.name for p in out.iterdir()}


def test_pngs_come_back_identical(png_model: tuple[Path, Path], tmp_path: Path) -> None:
    pictures, out = png_model
    inputs = sorted(pictures.iterdir())[:6]
    codes = tmp_path / "codes.npy"
    assert main(["encode", "--model", str(out), *map(str, inputs), "-o", str(codes), "--quiet"]) == 0
    assert np.load(codes).shape == (6, 1, 8, 8)
    assert main(["decode", "--model", str(out), str(codes), "-o", str(tmp_path / "back"), "--quiet"]) == 0
    for i, original in enumerate(inputs):
        assert np.array_equal(np.asarray(Image.open(original)), np.asarray(Image.open(tmp_path / "back" / f"{i:04d}.png")))


def test_sample_grid_and_interpolation(png_model: tuple[Path, Path], tmp_path: Path) -> None:
    pictures, out = png_model
    grid = tmp_path / "grid.png"
    assert main(["sample", "--model", str(out), "-n", "6", "--temperatures", "0.5,1.0", "-o", str(grid),
                 "--quiet"]) == 0
    assert Image.open(grid).size == (4 * (6 * 9 + 1), 4 * (2 * 9 + 1))
    square = tmp_path / "square.png"
    assert main(["sample", "--model", str(out), "-n", "64", "--temperature", "0.7", "-o", str(square), "--quiet"]) == 0
    assert Image.open(square).size == (4 * (8 * 9 + 1), 4 * (8 * 9 + 1))
    strip = tmp_path / "strip.png"
    first, last = sorted(pictures.iterdir())[:2]
    assert main(["interpolate", "--model", str(out), str(first), str(last), "--steps", "5", "-o", str(strip),
                 "--quiet"]) == 0
    assert Image.open(strip).size == (4 * (5 * 9 + 1), 4 * 10)


def test_bad_images_are_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "mixed"
    write_png(folder / "a.png", np.zeros((1, 8, 8), dtype=np.int64), 256)
    write_png(folder / "b.png", np.zeros((1, 6, 6), dtype=np.int64), 256)
    with pytest.raises(Exception, match="b.png: grey 6x6, expected grey 8x8"):
        read_image_folder(folder)
    assert read_image_folder(folder, size=4).pixels.shape == (2, 1, 4, 4)
    (folder / "b.png").unlink()
    (folder / "c.png").write_bytes(b"not a picture")
    code = main(["train", "--data", str(folder), "--out", str(tmp_path / "out"), "--quiet"])
    assert code == EXIT_BAD_INPUT and "c.png: not a readable PNG or JPEG image" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()
    np.save(tmp_path / "floats.npy", np.zeros((5, 8, 8), dtype=np.float32))
    assert main(["train", "--data", str(tmp_path / "floats.npy"), "--out", str(tmp_path / "o2"), "--quiet"]) == 2
    assert "images must be uint8" in capsys.readouterr().err


def test_too_few_images(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    np.save(tmp_path / "few.npy", np.zeros((4, 8, 8), dtype=np.uint8))
    assert main(["train", "--data", str(tmp_path / "few.npy"), "--out", str(tmp_path / "o"), "--quiet"]) == 2
    assert "4 images, too few to train" in capsys.readouterr().err


def test_conditional_digits(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "cond"
    assert main(["train", "--data", "digits", "--conditional", "--epochs", "1", "--out", str(out), "--quiet"]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["data"]["conditional"] and metrics["architecture"]["context_features"] == 10
    assert metrics["reconstruction_exact"]
    grids = {}
    for digit in (3, 7):
        grids[digit] = tmp_path / f"d{digit}.npy"
        assert main(["sample", "--model", str(out), "-n", "4", "--condition", str(digit), "-o", str(grids[digit]),
                     "--quiet"]) == 0
    assert np.load(grids[3]).shape == (4, 1, 8, 8) and not np.array_equal(np.load(grids[3]), np.load(grids[7]))
    assert main(["evaluate", "--model", str(out), "--data", "digits"]) == 0  # labels come with the digits
    report = json.loads(capsys.readouterr().out)
    assert report["bits_per_dim"] == pytest.approx(metrics["test_bits_per_dim"]["mean"], rel=1e-9)
    assert main(["sample", "--model", str(out), "-n", "4", "-o", str(tmp_path / "x.png")]) == EXIT_BAD_INPUT
    assert "pass --condition 0..9" in capsys.readouterr().err
