"""Image data: scikit-learn's digits, a folder of PNG/JPEG files, or a ``.npy`` array.

Images are integer pixel arrays ``(N, C, H, W)`` with values ``0..levels-1``.
Every problem raises :class:`~realnvp.tabular.DataFileError` naming the file
and what was expected.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from realnvp.files import write_atomically
from realnvp.tabular import DataFileError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
DIGITS_TEST = 297  # the last 297 of a fixed shuffle of the 1,797 digits: one sixth
DIGITS_SPLIT_SEED = 0


@dataclass(frozen=True)
class ImageSet:
    """``pixels (N, C, H, W)`` int64 in ``0..levels-1``, where each came from and,
    when known, its class label ``(N,)``."""

    pixels: np.ndarray
    levels: int
    names: list[str]
    labels: np.ndarray | None = None


def load_digits_images() -> tuple[ImageSet, ImageSet]:
    """scikit-learn's 1,797 handwritten digits (8x8, 17 grey levels) as a fixed
    train/test split, 1,500 and 297 images."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    pixels = digits.images.astype(np.int64)[:, None]
    order = np.random.default_rng(DIGITS_SPLIT_SEED).permutation(len(pixels))
    names = [f"digit{i:04d}-{digits.target[i]}" for i in range(len(pixels))]
    train, test = order[:-DIGITS_TEST], order[-DIGITS_TEST:]
    return (ImageSet(pixels[train], 17, [names[i] for i in train], digits.target[train]),
            ImageSet(pixels[test], 17, [names[i] for i in test], digits.target[test]))


def _fit(image: Image.Image, size: int | None) -> Image.Image:
    """Centre-crop to a square and resize to ``size x size`` (when given)."""
    if size is None:
        return image
    side = min(image.size)
    left, top = (image.width - side) // 2, (image.height - side) // 2
    return image.crop((left, top, left + side, top + side)).resize((size, size), Image.Resampling.LANCZOS)


def read_image(path: str | os.PathLike[str], size: int | None = None, mode: str | None = None) -> np.ndarray:
    """One PNG or JPEG as ``(C, H, W)`` int64 0..255; grey (``L``) or colour (``RGB``).

    ``mode`` forces a mode; otherwise grey stays grey and anything else becomes RGB.
    """
    path = Path(path)
    if not path.is_file():
        raise DataFileError(f"{path}: file not found")
    try:
        with Image.open(path) as opened:
            image = opened.convert(mode or ("L" if opened.mode in ("L", "1", "I;16", "I") else "RGB"))
    except (UnidentifiedImageError, OSError) as error:
        raise DataFileError(f"{path}: not a readable PNG or JPEG image ({error})") from None
    array = np.asarray(_fit(image, size), dtype=np.int64)
    return array[None] if array.ndim == 2 else array.transpose(2, 0, 1)


def read_images(paths: list[Path], size: int | None = None, mode: str | None = None) -> ImageSet:
    """Several images that must agree in mode and (after ``size``) in size."""
    if not paths:
        raise DataFileError("no images given")
    arrays = []
    for path in paths:
        array = read_image(path, size, mode)
        if arrays and array.shape != arrays[0].shape:
            expected = "x".join(map(str, arrays[0].shape[1:]))
            channels = "grey" if arrays[0].shape[0] == 1 else "colour"
            found = f"{'grey' if array.shape[0] == 1 else 'colour'} {array.shape[2]}x{array.shape[1]}"
            raise DataFileError(f"{path}: {found}, expected {channels} {expected} like {paths[0]} "
                                f"(mixed modes or sizes; pass --image-size to resize)")
        arrays.append(array)
    return ImageSet(np.stack(arrays), 256, [p.stem for p in paths])


def read_image_folder(folder: str | os.PathLike[str], size: int | None = None) -> ImageSet:
    """Every PNG/JPEG directly in ``folder``, in name order."""
    folder = Path(folder)
    paths = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if not paths:
        raise DataFileError(f"{folder}: no .png, .jpg or .jpeg files")
    return read_images(paths, size)


def read_image_array(path: str | os.PathLike[str]) -> ImageSet:
    """A ``.npy`` of uint8 images shaped ``(N, H, W)`` or ``(N, H, W, C)``, C in 1, 3."""
    path = Path(path)
    try:
        array = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError) as error:
        raise DataFileError(f"{path}: not a readable NumPy file without pickles ({error})") from None
    if array.dtype != np.uint8:
        raise DataFileError(f"{path}: images must be uint8, found {array.dtype}")
    if array.ndim == 3:
        array = array[..., None]
    if array.ndim != 4 or array.shape[-1] not in (1, 3) or len(array) == 0:
        raise DataFileError(f"{path}: expected images shaped (N, H, W) or (N, H, W, C) with C 1 or 3, "
                            f"found {array.shape}")
    return ImageSet(array.transpose(0, 3, 1, 2).astype(np.int64), 256, [f"{path.stem}{i:05d}" for i in range(len(array))])


def to_bytes(pixels: np.ndarray, levels: int) -> np.ndarray:
    """Pixels in ``0..levels-1`` to 0..255 (the identity for 256 levels)."""
    return np.rint(pixels * (255 / (levels - 1))).astype(np.uint8)


def from_bytes(values: np.ndarray, levels: int) -> np.ndarray:
    """0..255 back to ``0..levels-1``; inverts :func:`to_bytes` exactly."""
    return np.rint(values * ((levels - 1) / 255)).astype(np.int64)


def write_png(path: str | os.PathLike[str], pixels: np.ndarray, levels: int) -> None:
    """Write one image ``(C, H, W)`` as a grey or RGB PNG, atomically."""
    data = to_bytes(pixels, levels)
    image = Image.fromarray(data[0] if data.shape[0] == 1 else data.transpose(1, 2, 0))
    write_atomically(path, lambda tmp: image.save(tmp, format="PNG"))


def write_grid(path: str | os.PathLike[str], rows: list[np.ndarray], levels: int, scale: int = 4,
               gap: int = 1) -> None:
    """Images ``(N, C, H, W)`` per row (rows may be shorter), tiled into one PNG
    with a white gap, each pixel shown as a ``scale x scale`` block."""
    blocks = [to_bytes(row, levels) for row in rows]
    n = max(len(b) for b in blocks)
    c, h, w = blocks[0].shape[1:]
    canvas = np.full((c, len(blocks) * (h + gap) + gap, n * (w + gap) + gap), 255, dtype=np.uint8)
    for i, block in enumerate(blocks):
        for j, image in enumerate(block):
            top, left = gap + i * (h + gap), gap + j * (w + gap)
            canvas[:, top:top + h, left:left + w] = image
    canvas = canvas.repeat(scale, axis=1).repeat(scale, axis=2)
    picture = Image.fromarray(canvas[0] if c == 1 else canvas.transpose(1, 2, 0))
    write_atomically(path, lambda tmp: picture.save(tmp, format="PNG"))
