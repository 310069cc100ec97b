"""What the command line does with an image model: encode pictures to codes,
decode codes to pictures (pixel-exact), sample grids, interpolations and
bits per dimension of a folder."""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from realnvp.evaluation import Estimate
from realnvp.flow import Flow
from realnvp.images.architecture import ImageFlowSpec
from realnvp.images.data import (
    ImageSet,
    from_bytes,
    read_image_array,
    read_image_folder,
    read_images,
    write_grid,
    write_png,
)
from realnvp.images.job import image_bits, label_context, sample_pixels
from realnvp.images.quantization import bin_centres, quantize
from realnvp.tabular import DataFileError, write_points_array


def read_model_images(spec: ImageFlowSpec, paths: list[Path]) -> ImageSet:
    """PNG/JPEG files as the model's pixel levels; refuses another shape."""
    images = read_images(paths, mode="L" if spec.channels == 1 else "RGB")
    found = images.pixels.shape[1:]
    if found != spec.event_shape:
        raise DataFileError(f"{paths[0]}: images of {found[2]}x{found[1]}, the model expects "
                            f"{spec.width}x{spec.height}")
    return ImageSet(from_bytes(images.pixels, spec.levels), spec.levels, images.names)


def read_model_image_data(spec: ImageFlowSpec, data: str | os.PathLike[str]) -> ImageSet:
    """A folder or ``.npy`` of images (digits for ``"digits"``) in the model's levels."""
    if str(data) == "digits":
        from realnvp.images.data import load_digits_images

        return load_digits_images()[1]
    path = Path(data)
    images = read_image_folder(path) if path.is_dir() else read_image_array(path)
    if images.pixels.shape[1:] != spec.event_shape:
        raise DataFileError(f"{path}: images shaped {images.pixels.shape[1:]}, the model expects {spec.event_shape}")
    return ImageSet(from_bytes(images.pixels.astype(np.uint8), spec.levels), spec.levels, images.names)


@torch.no_grad()
def encode_images(flow: Flow, spec: ImageFlowSpec, paths: list[Path], context: torch.Tensor | None = None
                  ) -> np.ndarray:
    """Codes ``(N, C, H, W)`` of the pictures, each pixel taken at its bin's centre."""
    images = read_model_images(spec, paths)
    x = flow.as_input(bin_centres(torch.as_tensor(images.pixels), spec.levels, flow.dtype))
    return flow.encode(x, context).double().cpu().numpy()


def read_codes(spec: ImageFlowSpec, path: str | os.PathLike[str]) -> np.ndarray:
    """A ``.npy`` of codes shaped ``(N, C, H, W)`` for the model."""
    path = Path(path)
    try:
        codes = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError) as error:
        raise DataFileError(f"{path}: not a readable NumPy file without pickles ({error})") from None
    if codes.ndim != 4 or codes.shape[1:] != spec.event_shape or codes.dtype.kind != "f":
        raise DataFileError(f"{path}: expected float codes shaped (N, {', '.join(map(str, spec.event_shape))}), "
                            f"found {codes.dtype} {codes.shape}")
    if not np.isfinite(codes).all():
        raise DataFileError(f"{path}: codes must be finite")
    return codes


@torch.no_grad()
def decode_to_pngs(flow: Flow, spec: ImageFlowSpec, codes: np.ndarray, folder: Path,
                   context: torch.Tensor | None = None) -> list[Path]:
    """Decode codes and write ``0000.png``, ``0001.png``, ... into ``folder``."""
    pixels = quantize(flow.decode(flow.as_input(codes), context), spec.levels).cpu().numpy()
    folder.mkdir(parents=True, exist_ok=True)
    paths = [folder / f"{i:04d}.png" for i in range(len(pixels))]
    for path, image in zip(paths, pixels):
        write_png(path, image, spec.levels)
    return paths


def sample_grid(flow: Flow, spec: ImageFlowSpec, n: int, temperatures: list[float], seed: int,
                output: Path, context: torch.Tensor | None = None) -> None:
    """``n`` samples per temperature: in a PNG, one row per temperature (or, for a
    single temperature, a square-ish grid), or all in a ``.npy`` of pixel levels
    ``(temperatures * n, C, H, W)``."""
    rows = [sample_pixels(flow, n, t, spec.levels, seed, context) for t in temperatures]
    if len(rows) == 1:
        columns = math.ceil(math.sqrt(n))
        rows = [rows[0][start:start + columns] for start in range(0, n, columns)]
    if output.suffix.lower() == ".npy":
        write_points_array(output, np.concatenate(rows).astype(np.uint8))
    elif output.suffix.lower() == ".png":
        write_grid(output, rows, spec.levels)
    else:
        raise DataFileError(f"{output}: unknown extension, expected .png (a grid) or .npy (pixel levels)")


@torch.no_grad()
def interpolate(flow: Flow, spec: ImageFlowSpec, first: Path, last: Path, steps: int, output: Path,
                context: torch.Tensor | None = None) -> None:
    """Decode ``steps`` points on the straight line between the codes of two pictures
    (``context``: ``(steps, features)`` for a conditional model)."""
    ends = None if context is None else context[:1].expand(2, -1)
    codes = flow.as_input(encode_images(flow, spec, [first, last], ends))
    weights = torch.linspace(0, 1, steps, dtype=codes.dtype, device=codes.device).reshape(-1, 1, 1, 1)
    path = (1 - weights) * codes[0] + weights * codes[1]
    write_grid(output, [quantize(flow.decode(path, context), spec.levels).cpu().numpy()], spec.levels)


def evaluate_images(flow: Flow, spec: ImageFlowSpec, data: str,
                    context: Callable[[int], torch.Tensor | None]) -> Estimate:
    """Mean bits per dimension (and its standard error) of a folder or ``.npy`` of
    images; a conditional model reads the digits' own labels, or ``context(n)``."""
    images = read_model_image_data(spec, data)
    if spec.context_features and images.labels is not None:
        rows = label_context(images, spec.context_features)
    else:
        rows = context(len(images.pixels))
    return Estimate.of(image_bits(flow, images, rows))
