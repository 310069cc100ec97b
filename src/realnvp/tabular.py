"""Reading and writing tables of points: CSV (header optional), ``.npy``, ``.npz``.

Every problem raises :class:`DataFileError` with a message that names the
file, the row and column (1-based, as a spreadsheet or ``cut`` counts them;
rows count the header line too) and what was expected.
"""

from __future__ import annotations

import csv
import math
import os
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from realnvp.files import write_atomically


class DataFileError(ValueError):
    """A data file that cannot be used; the message says where and why."""


@dataclass(frozen=True)
class Table:
    """Finite float64 ``values (rows, columns)`` and the columns' names."""

    values: np.ndarray
    columns: list[str]
    path: Path


def _is_number(cell: str) -> bool:
    try:
        float(cell)
    except ValueError:
        return False
    return True


def _has_header(rows: list[list[str]]) -> bool:
    """A first row is a header where it holds text above a number, or holds only text."""
    first = rows[0]
    if len(rows) == 1 or not any(_is_number(cell) for cell in first):
        return not all(_is_number(cell) for cell in first)
    second = rows[1]
    return any(not _is_number(a) and _is_number(b) for a, b in zip(first, second))


def _column(position: int, names: list[str]) -> str:
    """``column 3 (pressure)``, or ``column 3`` where the file has no header."""
    name = names[position]
    return f"column {position + 1}" if name == str(position + 1) else f"column {position + 1} ({name})"


def _select(path: Path, names: list[str], columns: Sequence[str] | None) -> list[int]:
    """0-based positions of the requested columns, given by header name or 1-based index."""
    if not columns:
        return list(range(len(names)))
    positions = []
    for column in columns:
        if column in names:
            positions.append(names.index(column))
        elif column.isdigit() and 1 <= int(column) <= len(names):
            positions.append(int(column) - 1)
        else:
            raise DataFileError(
                f"{path}: no column {column!r}; the file has {len(names)} columns: {', '.join(names)} "
                f"(ask by name or by 1-based index)"
            )
    return positions


def _read_csv(path: Path, columns: Sequence[str] | None) -> Table:
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as error:
        raise DataFileError(f"{path}: not a UTF-8 text file ({error.reason} at byte {error.start})") from None
    lines = text.splitlines()
    numbered = [(i + 1, line) for i, line in enumerate(lines) if line.strip()]
    if not numbered:
        raise DataFileError(f"{path}: empty file, expected rows of numbers")
    sample = "\n".join(line for _, line in numbered[:20])
    try:
        delimiter = csv.Sniffer().sniff(sample, delimiters=",;\t ").delimiter
    except csv.Error:
        delimiter = ","
    rows = [[cell.strip() for cell in row] for row in csv.reader([line for _, line in numbered], delimiter=delimiter)]
    header = _has_header(rows)
    width = len(rows[0])
    names = rows[0] if header else [str(i + 1) for i in range(width)]
    body = list(zip([n for n, _ in numbered], rows))[1 if header else 0:]
    if not body:
        raise DataFileError(f"{path}: a header but no rows of numbers")
    positions = _select(path, names, columns)
    values = np.empty((len(body), len(positions)), dtype=np.float64)
    for i, (line_no, row) in enumerate(body):
        if len(row) != width:
            raise DataFileError(f"{path}: row {line_no} has {len(row)} columns, expected {width} like row {numbered[0][0]}")
        for j, position in enumerate(positions):
            cell = row[position]
            try:
                values[i, j] = float(cell)
            except ValueError:
                raise DataFileError(
                    f"{path}: row {line_no}, {_column(position, names)}: {cell!r} is not a number"
                ) from None
            if not math.isfinite(values[i, j]):
                raise DataFileError(
                    f"{path}: row {line_no}, {_column(position, names)} is {cell}, "
                    f"expected a finite number"
                )
    return Table(values, [names[p] for p in positions], path)


def _read_numpy(path: Path, columns: Sequence[str] | None, array: str | None) -> Table:
    try:
        loaded = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as error:
        raise DataFileError(f"{path}: not a readable NumPy file without pickles ({error})") from None
    if isinstance(loaded, np.lib.npyio.NpzFile):
        with loaded:
            names = list(loaded.keys())
            if array is None and len(names) != 1:
                raise DataFileError(f"{path}: holds arrays {names}; name one with --array")
            name = names[0] if array is None else array
            if name not in names:
                raise DataFileError(f"{path}: no array {name!r}; it holds {names}")
            try:
                loaded = loaded[name]
            except ValueError as error:
                raise DataFileError(f"{path}: array {name!r} is not readable without pickles ({error})") from None
    if loaded.dtype.kind not in "biuf":
        raise DataFileError(f"{path}: array of {loaded.dtype}, expected numbers")
    values = loaded.astype(np.float64)
    if values.ndim == 1:
        values = values[:, None]
    if values.ndim != 2:
        raise DataFileError(f"{path}: expected a table (rows, columns), found shape {values.shape}")
    names = [str(i + 1) for i in range(values.shape[1])]
    positions = _select(path, names, columns)
    values = values[:, positions]
    bad = np.argwhere(~np.isfinite(values))
    if bad.size:
        row, col = bad[0]
        raise DataFileError(
            f"{path}: row {row + 1}, column {positions[col] + 1} is {values[row, col]}, expected a finite number"
        )
    return Table(values, [names[p] for p in positions], path)


def read_table(
    path: str | os.PathLike[str], columns: Sequence[str] | None = None, array: str | None = None
) -> Table:
    """Read a table of finite numbers from a CSV, ``.npy`` or ``.npz`` file.

    Args:
        path: the file; ``.npy``/``.npz`` by extension, anything else is CSV
            (delimiter ``,``, ``;``, tab or space, detected; header detected).
        columns: header names or 1-based indices to keep, in that order.
        array: which array of an ``.npz`` holding several.
    """
    path = Path(path)
    if not path.is_file():
        raise DataFileError(f"{path}: file not found")
    if path.suffix.lower() in (".npy", ".npz"):
        table = _read_numpy(path, columns, array)
    else:
        table = _read_csv(path, columns)
    if table.values.shape[0] == 0:
        raise DataFileError(f"{path}: no rows")
    return table


def read_points(path: str | os.PathLike[str], columns: Sequence[str] | None = None) -> np.ndarray:
    """The ``(rows, columns)`` float64 values of :func:`read_table`."""
    return read_table(path, columns).values


def write_points(path: str | os.PathLike[str], values: np.ndarray, header: list[str] | None = None) -> None:
    """Write ``(n, dim)`` points atomically: ``.npy`` by extension, otherwise CSV
    (``.csv`` or ``.txt``) with full float64 precision."""
    path = Path(path)
    values = np.asarray(values)
    suffix = path.suffix.lower()
    if suffix not in (".csv", ".txt", ".npy"):
        raise DataFileError(f"{path}: unknown extension, expected .csv or .npy")
    if suffix == ".npy":
        write_points_array(path, values)
        return

    def write_csv(tmp: Path) -> None:
        with open(tmp, "w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            if header is not None:
                writer.writerow(header)
            writer.writerows([[repr(float(v)) for v in row] for row in values])

    write_atomically(path, write_csv)


def write_points_array(path: str | os.PathLike[str], values: np.ndarray) -> None:
    """Write an array of any shape to a ``.npy`` file atomically."""
    path = Path(path)
    if path.suffix.lower() != ".npy":
        raise DataFileError(f"{path}: unknown extension, expected .npy")

    def write_npy(tmp: Path) -> None:
        with open(tmp, "wb") as handle:
            np.save(handle, np.asarray(values))

    write_atomically(path, write_npy)
