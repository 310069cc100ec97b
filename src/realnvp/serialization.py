"""Saving and loading models: safetensors weights plus a JSON description.

A model directory holds ``model.json`` and the weights file it names,
``weights-<sha256 prefix>.safetensors``. ``model.json`` is written last and
atomically, so it is the commit point: a crash at any moment leaves the
previous ``model.json`` pointing at its own, still present, weights. The JSON
records the weights' SHA-256, so a truncated or altered file is refused.
Nothing is ever unpickled.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from realnvp.architecture import FlowSpec, build_flow
from realnvp.files import write_atomically, write_text_atomically
from realnvp.flow import Flow

FORMAT = "realnvp-model"
FORMAT_VERSION = 1
CONFIG_NAME = "model.json"


class ModelFileError(ValueError):
    """A model directory that cannot be loaded; the message names the file."""


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def save(flow: Flow, spec: FlowSpec, directory: str | Path, extra: dict[str, Any] | None = None) -> Path:
    """Save ``flow`` (built from ``spec``) into ``directory``; returns the JSON path.

    ``extra`` is stored under ``"extra"`` in the JSON (training settings, say).
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    tensors = {name: t.detach().cpu().contiguous() for name, t in flow.state_dict().items()}
    staging = directory / ".weights.staging.safetensors"
    write_atomically(staging, lambda tmp: save_file(tensors, str(tmp)))
    sha = _sha256(staging)
    weights = directory / f"weights-{sha[:16]}.safetensors"
    staging.replace(weights)
    config = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "architecture": spec.to_dict(),
        "dtype": str(next(iter(tensors.values())).dtype).removeprefix("torch."),
        "weights": weights.name,
        "weights_sha256": sha,
        "extra": extra or {},
    }
    config_path = directory / CONFIG_NAME
    write_text_atomically(config_path, json.dumps(config, indent=2) + "\n")
    for stale in directory.glob("weights-*.safetensors"):
        if stale != weights:
            stale.unlink(missing_ok=True)
    return config_path


def read_config(directory: str | Path) -> dict[str, Any]:
    """Read and check ``model.json`` of a model directory."""
    path = Path(directory) / CONFIG_NAME
    if not path.is_file():
        raise ModelFileError(f"{path}: not found; a model directory holds {CONFIG_NAME} and its weights")
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ModelFileError(f"{path}: not valid JSON ({error})") from None
    if not isinstance(config, dict) or config.get("format") != FORMAT:
        raise ModelFileError(f"{path}: not a realnvp model (expected \"format\": \"{FORMAT}\")")
    if config.get("format_version") != FORMAT_VERSION:
        raise ModelFileError(
            f"{path}: format version {config.get('format_version')!r}, this realnvp reads {FORMAT_VERSION}"
        )
    return config


def load(directory: str | Path) -> Flow:
    """Load the flow saved in ``directory``, in evaluation mode.

        >>> import realnvp
        >>> flow = realnvp.load("runs/moons")  # doctest: +SKIP
        >>> flow.log_prob(x), flow.encode(x), flow.decode(z), flow.sample(100)  # doctest: +SKIP
    """
    flow, _ = load_with_spec(directory)
    return flow


def load_with_spec(directory: str | Path) -> tuple[Flow, FlowSpec]:
    """Like :func:`load`, also returning the architecture."""
    directory = Path(directory)
    config = read_config(directory)
    config_path = directory / CONFIG_NAME
    try:
        spec = FlowSpec.from_dict(config["architecture"])
        flow = build_flow(spec)
    except (KeyError, TypeError, ValueError) as error:
        raise ModelFileError(f"{config_path}: bad architecture ({error})") from None
    weights = directory / str(config.get("weights", ""))
    if not weights.is_file():
        raise ModelFileError(f"{weights}: weights file named in {config_path} not found")
    if _sha256(weights) != config.get("weights_sha256"):
        raise ModelFileError(f"{weights}: checksum differs from {config_path}; the file is truncated or altered")
    try:
        tensors = load_file(str(weights))
    except (SafetensorError, OSError) as error:
        raise ModelFileError(f"{weights}: not a readable safetensors file ({error})") from None
    try:
        flow.load_state_dict(tensors)
    except RuntimeError as error:
        raise ModelFileError(f"{weights}: weights do not match the architecture in {config_path}: {error}") from None
    dtype = getattr(torch, str(config.get("dtype", "float32")), torch.float32)
    return flow.to(dtype).eval(), spec
