"""Saved models: safetensors plus JSON, atomic, checked on load, never unpickled."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

import realnvp
from realnvp.flow import Flow
from realnvp.serialization import CONFIG_NAME, ModelFileError, load, read_config, save
from tests.conftest import SMALL_SPEC


def _weights(directory: Path) -> Path:
    return directory / read_config(directory)["tensors"]


def test_round_trip_gives_the_same_density_and_actnorm_state(small_flow: Flow, moons: torch.Tensor, tmp_path: Path) -> None:
    save(small_flow, SMALL_SPEC, tmp_path)
    loaded = realnvp.load(tmp_path)
    assert not loaded.training
    with torch.no_grad():
        torch.testing.assert_close(loaded.log_prob(moons), small_flow.log_prob(moons), rtol=0, atol=0)
    actnorms = [m for m in loaded.modules() if isinstance(m, realnvp.bijectors.ActNorm)]
    assert actnorms and all(bool(m.initialized) for m in actnorms)
    loaded.train()
    before = actnorms[0].loc.detach().clone()
    loaded.log_prob(moons * 5)  # a loaded ActNorm must not re-initialise
    torch.testing.assert_close(actnorms[0].loc.detach(), before)


def test_float64_model_loads_as_float64(small_flow: Flow, tmp_path: Path) -> None:
    save(small_flow.double(), SMALL_SPEC, tmp_path)
    assert load(tmp_path).sample(3).dtype == torch.float64


def test_files_are_json_and_safetensors_only(small_flow: Flow, tmp_path: Path) -> None:
    save(small_flow, SMALL_SPEC, tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([CONFIG_NAME, _weights(tmp_path).name])
    assert _weights(tmp_path).suffix == ".safetensors"
    config = json.loads((tmp_path / CONFIG_NAME).read_text())
    assert config["architecture"]["couplings"] == SMALL_SPEC.couplings


def test_saving_again_replaces_the_old_weights(small_flow: Flow, tmp_path: Path) -> None:
    save(small_flow, SMALL_SPEC, tmp_path)
    first = _weights(tmp_path)
    with torch.no_grad():
        next(small_flow.parameters()).add_(1.0)
    save(small_flow, SMALL_SPEC, tmp_path)
    assert _weights(tmp_path) != first and not first.exists()


def test_a_crash_while_saving_leaves_the_previous_model_loadable(
    small_flow: Flow, moons: torch.Tensor, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    save(small_flow, SMALL_SPEC, tmp_path)
    with torch.no_grad():
        expected = small_flow.log_prob(moons)
        next(small_flow.parameters()).add_(1.0)

    def crash(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt("killed while writing model.json")

    monkeypatch.setattr("realnvp.serialization.write_text_atomically", crash)
    with pytest.raises(KeyboardInterrupt):
        save(small_flow, SMALL_SPEC, tmp_path)
    with torch.no_grad():
        torch.testing.assert_close(load(tmp_path).log_prob(moons), expected)


def test_truncated_weights_are_refused(small_flow: Flow, tmp_path: Path) -> None:
    save(small_flow, SMALL_SPEC, tmp_path)
    weights = _weights(tmp_path)
    weights.write_bytes(weights.read_bytes()[:-100])
    with pytest.raises(ModelFileError, match="truncated or altered"):
        load(tmp_path)


def test_weights_that_do_not_fit_the_architecture_are_refused(small_flow: Flow, tmp_path: Path) -> None:
    save(small_flow, SMALL_SPEC, tmp_path)
    config = json.loads((tmp_path / CONFIG_NAME).read_text())
    config["architecture"]["width"] = 17
    (tmp_path / CONFIG_NAME).write_text(json.dumps(config))
    with pytest.raises(ModelFileError, match="do not match the architecture"):
        load(tmp_path)


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda c: c.update(format_version=99), "format version 99"),
        (lambda c: c.update(format="pickle"), "not a realnvp model"),
        (lambda c: c["architecture"].update(colour="red"), "unknown architecture field"),
        (lambda c: c.update(tensors="missing.safetensors"), "not found"),
    ],
)
def test_bad_configs_are_refused_with_the_file_named(small_flow: Flow, tmp_path: Path, edit, message: str) -> None:
    save(small_flow, SMALL_SPEC, tmp_path)
    config = json.loads((tmp_path / CONFIG_NAME).read_text())
    edit(config)
    (tmp_path / CONFIG_NAME).write_text(json.dumps(config))
    with pytest.raises(ModelFileError, match=message) as error:
        load(tmp_path)
    assert str(tmp_path) in str(error.value)


def test_missing_directory_and_broken_json(tmp_path: Path) -> None:
    with pytest.raises(ModelFileError, match="not found"):
        load(tmp_path / "nowhere")
    (tmp_path / CONFIG_NAME).write_text("{not json")
    with pytest.raises(ModelFileError, match="not valid JSON"):
        load(tmp_path)
