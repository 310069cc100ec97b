"""The command line end to end, on a tiny training budget."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import realnvp
from realnvp.datasets import MoonsDensity
from realnvp.cli import EXIT_BAD_INPUT, main
from realnvp.tabular import read_points


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("run")
    assert main(["train", "--preset", "default", "--epochs", "1", "--seed", "3", "--out", str(out), "--quiet"]) == 0
    return out


def test_train_writes_model_metrics_and_figures(model_dir: Path) -> None:
    names = {p.name for p in model_dir.iterdir()}
    assert {"model.json", "metrics.json", "reference.png", "density.png", "curves.png"} <= names
    metrics = json.loads((model_dir / "metrics.json").read_text())
    assert metrics["epochs_run"] == 1 and metrics["seed"] == 3
    nll = metrics["test_nll"]
    log_std = realnvp.load(model_dir).standardizer.log_scale.sum().item()
    assert nll["standardized"]["mean"] - nll["raw"]["mean"] == pytest.approx(-log_std, abs=1e-4)
    assert metrics["kl"]["mean"] == pytest.approx(nll["raw"]["mean"] - metrics["entropy"]["mean"], abs=1e-6)
    assert metrics["kl"]["mean"] > 0 and metrics["kl"]["stderr"] > 0
    assert metrics["parameters"] == sum(p.numel() for p in realnvp.load(model_dir).parameters())
    assert len(metrics["history"]) == 1 and "val_nll" in metrics["history"][0]


@pytest.mark.parametrize("name", ["samples.csv", "samples.npy"])
def test_sample_writes_n_points(model_dir: Path, tmp_path: Path, name: str) -> None:
    out = tmp_path / name
    assert main(["sample", "--model", str(model_dir), "-n", "123", "--temperature", "0.8", "-o", str(out), "--quiet"]) == 0
    points = read_points(out)
    assert points.shape == (123, 2) and np.isfinite(points).all()


def test_evaluate_prints_json_nll(model_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = tmp_path / "points.csv"
    data.write_text("x,y\n0,0.5\n1,0\n-1,0.2\n")
    assert main(["evaluate", "--model", str(model_dir), "--data", str(data)]) == 0
    report = json.loads(capsys.readouterr().out)
    expected = -realnvp.load(model_dir).log_prob(torch.tensor([[0, 0.5], [1, 0], [-1, 0.2]])).mean().item()
    assert report["points"] == 3 and report["nll"] == pytest.approx(expected, rel=1e-5)
    assert "nats" in report["units"]


def test_evaluate_rejects_wrong_dimension(model_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = tmp_path / "three.csv"
    data.write_text("1,2,3\n4,5,6\n")
    assert main(["evaluate", "--model", str(model_dir), "--data", str(data)]) == EXIT_BAD_INPUT
    assert "3 columns, the model expects 2" in capsys.readouterr().err


def test_bad_model_and_bad_data_exit_2_without_output(tmp_path: Path) -> None:
    out = tmp_path / "s.csv"
    result = subprocess.run(
        [sys.executable, "-m", "realnvp.cli", "sample", "--model", str(tmp_path / "none"), "-o", str(out)],
        capture_output=True, text=True, check=False,
    )
    assert result.returncode == EXIT_BAD_INPUT
    assert "model.json: not found" in result.stderr
    assert not out.exists()


def test_bad_arguments_are_refused(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as error:
        main(["sample", "--model", "x", "-n", "0", "-o", "y.csv"])
    assert error.value.code == 2
    assert "positive integer" in capsys.readouterr().err


def test_conditional_moons_sample_the_chosen_moon(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "cond"
    assert main(["train", "--conditional", "--epochs", "3", "--out", str(out), "--quiet"]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["data"]["conditional"] and (out / "conditions.png").exists()
    assert metrics["kl"]["mean"] < 0.5  # conditional KL(p(x|moon) || q(x|moon)), nats
    truth = MoonsDensity(0.05)
    for moon in (0, 1):
        samples = tmp_path / f"moon{moon}.npy"
        assert main(["sample", "--model", str(out), "-n", "500", "--condition", str(moon), "-o", str(samples),
                     "--quiet"]) == 0
        x = np.load(samples)
        own = truth.log_prob(x, np.full(len(x), moon))
        other = truth.log_prob(x, np.full(len(x), 1 - moon))
        assert np.mean(own > other) > 0.95
    assert main(["sample", "--model", str(out), "-n", "5", "-o", str(tmp_path / "x.csv")]) == EXIT_BAD_INPUT
    assert "pass --condition 0..1" in capsys.readouterr().err
    assert main(["sample", "--model", str(out), "-n", "5", "--condition", "2", "-o", str(tmp_path / "x.csv")]) == 2
    assert not (tmp_path / "x.csv").exists()


def test_the_command_flushes_subnormals_before_anything_else() -> None:
    script = ("import torch; from realnvp.cli import main; main(['evaluate', '--model', 'nowhere', '--data', 'x.csv']); "
              "print(float(torch.tensor([1e-40]) * 1.0))")
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert result.stdout.strip().splitlines()[-1] == "0.0"
