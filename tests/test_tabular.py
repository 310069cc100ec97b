"""Reading users' tables: CSV with or without a header, .npy, .npz, and clear errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from realnvp.tabular import DataFileError, read_points, read_table, write_points


def test_csv_with_header(tmp_path: Path) -> None:
    path = tmp_path / "a.csv"
    path.write_text("x,y\n1,2\n3.5,-4e-1\n")
    np.testing.assert_array_equal(read_points(path), [[1, 2], [3.5, -0.4]])


def test_csv_without_header_and_semicolons(tmp_path: Path) -> None:
    path = tmp_path / "a.csv"
    path.write_text("1;2\n3;4\n5;6\n")
    np.testing.assert_array_equal(read_points(path), [[1, 2], [3, 4], [5, 6]])


def test_npy_and_npz(tmp_path: Path) -> None:
    values = np.arange(6.0).reshape(3, 2)
    np.save(tmp_path / "a.npy", values)
    np.savez(tmp_path / "b.npz", points=values)
    np.testing.assert_array_equal(read_points(tmp_path / "a.npy"), values)
    np.testing.assert_array_equal(read_points(tmp_path / "b.npz"), values)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("x,y\n1,2\n3,abc\n", "row 3, column 2 (y): 'abc' is not a number"),
        ("x,y\n1,2\n3,inf\n", "row 3, column 2 (y) is inf, expected a finite number"),
        ("1,2\n3\n", "row 2 has 1 columns, expected 2"),
        ("1,2\nnan,4\n", "row 2, column 1 is nan, expected a finite number"),
        ("", "empty file"),
        ("x,y\n", "a header but no rows"),
    ],
)
def test_csv_errors_name_row_and_column(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "bad.csv"
    path.write_text(text)
    with pytest.raises(DataFileError) as error:
        read_points(path)
    assert message in str(error.value) and str(path) in str(error.value)


def test_pickled_numpy_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "evil.npy"
    np.save(path, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(DataFileError, match="without pickles"):
        read_points(path)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(DataFileError, match="file not found"):
        read_points(tmp_path / "nope.csv")


@pytest.mark.parametrize("name", ["out.csv", "out.npy"])
def test_write_then_read_round_trip(tmp_path: Path, name: str) -> None:
    values = np.random.default_rng(0).normal(size=(50, 3))
    write_points(tmp_path / name, values, header=["a", "b", "c"])
    np.testing.assert_array_equal(read_points(tmp_path / name), values)
    assert [p.name for p in tmp_path.iterdir()] == [name]


def test_unknown_output_extension_writes_nothing(tmp_path: Path) -> None:
    with pytest.raises(DataFileError, match="unknown extension"):
        write_points(tmp_path / "out.xlsx", np.zeros((2, 2)))
    assert list(tmp_path.iterdir()) == []


def test_columns_by_name_and_index_leave_text_columns_alone(tmp_path: Path) -> None:
    path = tmp_path / "lab.csv"
    path.write_text("sample,temp,pressure\nA,20.5,1.0\nB,21.0,1.1\n")
    table = read_table(path, ["pressure", "2"])
    np.testing.assert_array_equal(table.values, [[1.0, 20.5], [1.1, 21.0]])
    assert table.columns == ["pressure", "temp"]
    with pytest.raises(DataFileError, match="row 2, column 1 \\(sample\\): 'A' is not a number"):
        read_table(path)


def test_headerless_file_with_a_text_column(tmp_path: Path) -> None:
    path = tmp_path / "raw.csv"
    path.write_text("A,1,2\nB,3,4\n")
    np.testing.assert_array_equal(read_points(path, ["2", "3"]), [[1, 2], [3, 4]])


def test_missing_column_lists_what_is_there(tmp_path: Path) -> None:
    path = tmp_path / "a.csv"
    path.write_text("x,y\n1,2\n")
    with pytest.raises(DataFileError, match="no column 'z'; the file has 2 columns: x, y"):
        read_table(path, ["z"])
    with pytest.raises(DataFileError, match="no column '3'"):
        read_table(path, ["3"])


def test_npz_with_several_arrays_needs_a_name(tmp_path: Path) -> None:
    path = tmp_path / "many.npz"
    np.savez(path, a=np.zeros((2, 2)), b=np.ones((3, 2)))
    with pytest.raises(DataFileError, match="name one with --array"):
        read_table(path)
    np.testing.assert_array_equal(read_table(path, array="b").values, np.ones((3, 2)))
    with pytest.raises(DataFileError, match="no array 'c'"):
        read_table(path, array="c")


def test_npy_non_finite_names_row_and_column(tmp_path: Path) -> None:
    values = np.zeros((4, 3))
    values[2, 1] = np.inf
    np.save(tmp_path / "a.npy", values)
    with pytest.raises(DataFileError, match="row 3, column 2 is inf"):
        read_points(tmp_path / "a.npy")
