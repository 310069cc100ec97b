"""Your own table through the machine: train, encode, decode, sample, evaluate, plot,
resume after a kill, and every bad input refused cleanly."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file
from scipy.stats import multivariate_normal

import realnvp
from realnvp.cli import EXIT_BAD_INPUT, main
from realnvp.tabular import read_table
from tests.conftest import kill_after_epoch


def correlated_gaussian(dim: int, rows: int, seed: int = 0) -> tuple[np.ndarray, multivariate_normal]:
    rng = np.random.default_rng(seed)
    a = rng.normal(size=(dim, dim)) / np.sqrt(dim)
    truth = multivariate_normal(mean=np.arange(dim, dtype=float), cov=a @ a.T + 0.1 * np.eye(dim))
    return truth.rvs(size=rows, random_state=rng), truth


def write_csv(path: Path, values: np.ndarray) -> Path:
    header = ",".join(f"c{i + 1}" for i in range(values.shape[1]))
    np.savetxt(path, values, delimiter=",", header=header, comments="")
    return path


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.fixture(scope="module")
def gaussian5(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, multivariate_normal]:
    folder = tmp_path_factory.mktemp("g5")
    values, truth = correlated_gaussian(5, 3000)
    data = write_csv(folder / "lab.csv", values)
    assert main(["train", "--data", str(data), "--out", str(folder / "model"), "--quiet"]) == 0
    return data, folder / "model", truth


def test_5d_gaussian_is_learned_close_to_its_true_density(gaussian5, tmp_path: Path) -> None:
    _, model, truth = gaussian5
    fresh = truth.rvs(size=20_000, random_state=np.random.default_rng(99))
    with torch.no_grad():
        model_log_p = realnvp.load(model).log_prob(torch.as_tensor(fresh, dtype=torch.float32)).double().numpy()
    kl = float(np.mean(truth.logpdf(fresh) - model_log_p))
    assert -0.02 < kl < 0.06  # nats, KL(truth || model) on 20,000 fresh points


def test_20d_gaussian_learns_the_correlations(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    values, truth = correlated_gaussian(20, 2000, seed=1)
    data = write_csv(tmp_path / "wide.csv", values)
    code, out, _ = run(capsys, "train", "--data", str(data), "--out", str(tmp_path / "m"), "--epochs", "25", "--json",
                       "--quiet")
    assert code == 0 and json.loads(out)["preset"] == "tabular"
    fresh = truth.rvs(size=5000, random_state=np.random.default_rng(5))
    code, out, _ = run(capsys, "evaluate", "--model", str(tmp_path / "m"), "--data",
                       str(write_csv(tmp_path / "fresh.csv", fresh)))
    nll = json.loads(out)["nll"]
    independent = -np.mean(sum(
        multivariate_normal(truth.mean[i], truth.cov[i, i]).logpdf(fresh[:, i]) for i in range(20)))
    true_nll = -np.mean(truth.logpdf(fresh))
    assert true_nll - 0.05 < nll < true_nll + 1.5
    assert nll < independent - 3  # the correlations are worth about 10 nats here


@pytest.mark.parametrize("suffix", [".csv", ".npy"])
def test_encode_decode_round_trip_and_log_density(gaussian5, tmp_path: Path, suffix: str,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    data, model, _ = gaussian5
    original = read_table(data).values
    if suffix == ".npy":
        np.save(tmp_path / "lab.npy", original)
        data = tmp_path / "lab.npy"
    codes, back = tmp_path / f"codes{suffix}", tmp_path / f"back{suffix}"
    assert run(capsys, "encode", "--model", str(model), "--data", str(data), "-o", str(codes), "--log-density")[0] == 0
    encoded = read_table(codes)
    assert encoded.values.shape == (3000, 6)
    if suffix == ".csv":
        assert encoded.columns == ["z1", "z2", "z3", "z4", "z5", "log_density"]
    assert abs(encoded.values[:, :5].std() - 1) < 0.1  # the codes look standard normal
    assert run(capsys, "decode", "--model", str(model), "--data", str(codes), "-o", str(back))[0] == 0
    decoded = read_table(back)
    relative = np.abs(decoded.values - original) / np.maximum(np.abs(original), 1.0)
    assert relative.max() < 1e-5
    if suffix == ".csv":
        assert decoded.columns == ["c1", "c2", "c3", "c4", "c5"]


def test_float64_round_trip_is_tighter(gaussian5, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data, model, _ = gaussian5
    codes, back = tmp_path / "codes.npy", tmp_path / "back.npy"
    run(capsys, "encode", "--model", str(model), "--data", str(data), "-o", str(codes), "--float64")
    run(capsys, "decode", "--model", str(model), "--data", str(codes), "-o", str(back), "--float64")
    np.testing.assert_allclose(np.load(back), read_table(data).values, rtol=1e-12, atol=1e-12)


def test_evaluate_per_row_and_sample(gaussian5, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data, model, _ = gaussian5
    code, out, _ = run(capsys, "evaluate", "--model", str(model), "--data", str(data), "--per-row",
                       str(tmp_path / "scores.csv"))
    report = json.loads(out)
    scores = read_table(tmp_path / "scores.csv")
    assert code == 0 and scores.columns == ["log_density"] and scores.values.shape == (3000, 1)
    assert report["nll"] == pytest.approx(-scores.values.mean(), rel=1e-6)
    code, out, _ = run(capsys, "sample", "--model", str(model), "-n", "50", "--seed", "4", "--temperature", "0.5",
                       "-o", str(tmp_path / "s.csv"), "--json")
    assert code == 0 and json.loads(out)["n"] == 50
    again = tmp_path / "t.csv"
    run(capsys, "sample", "--model", str(model), "-n", "50", "--seed", "4", "--temperature", "0.5", "-o", str(again))
    np.testing.assert_array_equal(read_table(again).values, read_table(tmp_path / "s.csv").values)


def test_plot_writes_pairs_and_marginals(gaussian5, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data, model, _ = gaussian5
    code, out, _ = run(capsys, "plot", "--model", str(model), "--data", str(data), "--out", str(tmp_path), "--json")
    assert code == 0
    assert sorted(Path(p).name for p in json.loads(out)["figures"]) == ["marginals.png", "pairs.png"]
    assert all((tmp_path / name).stat().st_size > 10_000 for name in ("pairs.png", "marginals.png"))


@pytest.mark.parametrize(
    ("content", "extra", "message"),
    [
        ("a,b\n" + "1,2\n" * 5, [], "5 rows, too few to train"),
        ("a\n" + "1\n" * 50, [], "only 1 column (a); RealNVP needs at least 2"),
        ("a,b\n" + "1,2\n" * 50, ["--columns", "a,q"], "no column 'q'"),
        ("a,b\n1,2\n3,x\n", [], "row 3, column 2 (b): 'x' is not a number"),
        ("", [], "empty file"),
    ],
)
def test_train_refuses_bad_data_and_writes_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                   content: str, extra: list[str], message: str) -> None:
    data = tmp_path / "bad.csv"
    data.write_text(content)
    code, _, err = run(capsys, "train", "--data", str(data), "--out", str(tmp_path / "out"), "--quiet", *extra)
    assert code == EXIT_BAD_INPUT and message in err and str(data) in err
    assert not (tmp_path / "out").exists()


def test_model_dimension_mismatch(gaussian5, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _, model, _ = gaussian5
    data = write_csv(tmp_path / "three.csv", np.zeros((4, 3)))
    for command in ("evaluate", "encode", "decode"):
        argv = [command, "--model", str(model), "--data", str(data)]
        if command != "evaluate":
            argv += ["-o", str(tmp_path / f"{command}.csv")]
        code, _, err = run(capsys, *argv)
        assert code == EXIT_BAD_INPUT and "3 columns, the model expects 5" in err
        assert not (tmp_path / f"{command}.csv").exists()


def _final_tensors(directory: Path) -> dict:
    config = json.loads((directory / "model.json").read_text())
    return load_file(str(directory / config["tensors"]))


def test_killed_and_resumed_run_is_bit_identical(tmp_path: Path) -> None:
    values, _ = correlated_gaussian(3, 4000, seed=2)
    data = write_csv(tmp_path / "d.csv", values)
    argv = ["train", "--data", str(data), "--epochs", "12", "--threads", "1", "--quiet"]
    env = {**os.environ, "PYTHONHASHSEED": "0"}
    command = [sys.executable, "-m", "realnvp.cli"]
    subprocess.run([*command, *argv, "--out", str(tmp_path / "whole")], check=True, env=env)

    killed = tmp_path / "killed"
    process = subprocess.Popen([*command, *argv, "--out", str(killed)], env=env, start_new_session=True)
    epoch = kill_after_epoch(process, killed, 4)
    assert 4 <= epoch < 12 and not (killed / "model.json").exists()

    subprocess.run([*command, "train", "--resume", str(killed), "--threads", "1", "--quiet"], check=True, env=env)
    whole, resumed = _final_tensors(tmp_path / "whole"), _final_tensors(killed)
    assert whole.keys() == resumed.keys()
    for name in whole:
        assert np.array_equal(whole[name].numpy(), resumed[name].numpy()), name
    history = [json.loads((d / "metrics.json").read_text())["history"] for d in (tmp_path / "whole", killed)]
    assert [h["val_nll"] for h in history[0]] == [h["val_nll"] for h in history[1]]


def test_resume_refuses_changed_data(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    values, _ = correlated_gaussian(2, 200)
    data = write_csv(tmp_path / "d.csv", values)
    assert run(capsys, "train", "--data", str(data), "--epochs", "2", "--out", str(tmp_path / "r"), "--quiet")[0] == 0
    write_csv(data, values * 2)
    code, _, err = run(capsys, "train", "--resume", str(tmp_path / "r"), "--quiet")
    assert code == EXIT_BAD_INPUT and "the file changed since this run started" in err
