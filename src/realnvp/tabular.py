"""Reading and writing tables of points: CSV (header optional), ``.npy``, ``.npz``.

Every problem raises :class:`DataFileError` with a message that names the
file, the row and column (1-based, as a spreadsheet shows them) and what was
expected.
"""

from __future__ import annotations

import csv
import math
import os
import zipfile
from pathlib import Path

import numpy as np

from realnvp.files import write_atomically


class DataFileError(ValueError):
    """A data file that cannot be used; the message says where and why."""


def _parse_float(cell: str) -> float | None:
    try:
        return float(cell)
    except ValueError:
        return None


def _read_csv(path: Path) -> np.ndarray:
    text = path.read_text(encoding="utf-8-sig")
    lines = [line for line in text.splitlines() if line.strip()]
    if not lines:
        raise DataFileError(f"{path}: empty file, expected rows of numbers")
    try:
        dialect = csv.Sniffer().sniff(lines[0] if len(lines) == 1 else "\n".join(lines[:20]), delimiters=",;\t ")
        delimiter = dialect.delimiter
    except csv.Error:
        delimiter = ","
    rows = [[cell.strip() for cell in row] for row in csv.reader(lines, delimiter=delimiter)]
    first_is_header = any(_parse_float(cell) is None for cell in rows[0])
    start = 1 if first_is_header else 0
    body = rows[start:]
    if not body:
        raise DataFileError(f"{path}: a header but no rows of numbers")
    width = len(body[0])
    values = np.empty((len(body), width), dtype=np.float64)
    for i, row in enumerate(body):
        line_no = i + start + 1
        if len(row) != width:
            raise DataFileError(f"{path}: row {line_no} has {len(row)} columns, expected {width} like row {start + 1}")
        for j, cell in enumerate(row):
            value = _parse_float(cell)
            if value is None:
                raise DataFileError(f"{path}: row {line_no}, column {j + 1}: {cell!r} is not a number")
            values[i, j] = value
    return values


def _read_numpy(path: Path) -> np.ndarray:
    try:
        loaded = np.load(path, allow_pickle=False)
    except (ValueError, OSError, zipfile.BadZipFile) as error:
        raise DataFileError(f"{path}: not a readable NumPy file without pickles ({error})") from None
    if isinstance(loaded, np.lib.npyio.NpzFile):
        with loaded:
            names = list(loaded.keys())
            if len(names) != 1:
                raise DataFileError(f"{path}: expected one array in the .npz, found {names}")
            loaded = loaded[names[0]]
    if loaded.dtype.kind not in "biuf":
        raise DataFileError(f"{path}: array of {loaded.dtype}, expected numbers")
    return loaded.astype(np.float64)


def read_points(path: str | os.PathLike[str]) -> np.ndarray:
    """Read ``(n, dim)`` finite float64 points from a CSV, ``.npy`` or ``.npz`` file."""
    path = Path(path)
    if not path.is_file():
        raise DataFileError(f"{path}: file not found")
    values = _read_numpy(path) if path.suffix.lower() in (".npy", ".npz") else _read_csv(path)
    if values.ndim == 1:
        values = values[:, None]
    if values.ndim != 2 or values.shape[0] == 0:
        raise DataFileError(f"{path}: expected a table (rows, columns), found shape {values.shape}")
    bad = np.argwhere(~np.isfinite(values))
    if bad.size:
        row, col = bad[0]
        raise DataFileError(f"{path}: row {row + 1}, column {col + 1} is {values[row, col]}, expected a finite number")
    return values


def write_points(path: str | os.PathLike[str], values: np.ndarray, header: list[str] | None = None) -> None:
    """Write ``(n, dim)`` points atomically: ``.npy`` by extension, otherwise CSV."""
    path = Path(path)
    values = np.asarray(values)
    if path.suffix.lower() == ".npy":

        def write_npy(tmp: Path) -> None:
            with open(tmp, "wb") as handle:
                np.save(handle, values)

        write_atomically(path, write_npy)
        return
    if path.suffix.lower() not in (".csv", ".txt"):
        raise DataFileError(f"{path}: unknown extension, expected .csv or .npy")

    def write_csv(tmp: Path) -> None:
        with open(tmp, "w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            if header is not None:
                writer.writerow(header)
            writer.writerows([[repr(float(v)) if math.isfinite(v) else str(v) for v in row] for row in values])

    write_atomically(path, write_csv)
