"""Saving and loading: safetensors for tensors, JSON for everything else.

A saved object is a *bundle* in a directory: ``<stem>.json`` and the tensor file
it names, ``<stem>-<sha256 prefix>.safetensors``. The JSON is written last and
atomically, so it is the commit point: a crash at any moment leaves the
previous JSON pointing at its own, still present, tensor file. The JSON records
the tensors' SHA-256, so a truncated or altered file is refused. Nothing is
ever unpickled.

Models are the bundle ``model`` (the architecture and the weights); training
checkpoints are the bundle ``checkpoint`` (see :mod:`realnvp.checkpoint`).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from realnvp.architecture import Spec, build, spec_from_dict
from realnvp.files import file_sha256, write_atomically, write_text_atomically
from realnvp.flow import Flow

FORMAT_VERSION = 1
MODEL = "model"
CONFIG_NAME = f"{MODEL}.json"


class ModelFileError(ValueError):
    """A model or checkpoint that cannot be loaded; the message names the file."""


def write_bundle(directory: str | Path, stem: str, tensors: dict[str, torch.Tensor], document: dict[str, Any]) -> Path:
    """Write ``tensors`` and the JSON ``document`` as the bundle ``stem``; returns the JSON path."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    flat = {name: t.detach().cpu().contiguous() for name, t in tensors.items()}
    staging = directory / f".{stem}.staging.safetensors"
    write_atomically(staging, lambda tmp: save_file(flat, str(tmp)))
    sha = file_sha256(staging)
    tensor_file = directory / f"{stem}-{sha[:16]}.safetensors"
    staging.replace(tensor_file)
    document = {
        "format": f"realnvp-{stem}", "format_version": FORMAT_VERSION,
        **document, "tensors": tensor_file.name, "tensors_sha256": sha,
    }
    json_path = directory / f"{stem}.json"
    write_text_atomically(json_path, json.dumps(document, indent=2) + "\n")
    for stale in directory.glob(f"{stem}-*.safetensors"):
        if stale != tensor_file:
            stale.unlink(missing_ok=True)
    return json_path


def read_document(directory: str | Path, stem: str) -> dict[str, Any]:
    """Read and check the JSON of the bundle ``stem``."""
    path = Path(directory) / f"{stem}.json"
    if not path.is_file():
        raise ModelFileError(f"{path}: not found; a {stem} directory holds {stem}.json and its tensors")
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ModelFileError(f"{path}: not valid JSON ({error})") from None
    expected = f"realnvp-{stem}"
    if not isinstance(document, dict) or document.get("format") != expected:
        raise ModelFileError(f"{path}: not a realnvp {stem} (expected \"format\": \"{expected}\")")
    if document.get("format_version") != FORMAT_VERSION:
        raise ModelFileError(
            f"{path}: format version {document.get('format_version')!r}, this realnvp reads {FORMAT_VERSION}"
        )
    return document


def read_bundle(directory: str | Path, stem: str) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """The JSON document and the checked tensors of the bundle ``stem``."""
    directory = Path(directory)
    document = read_document(directory, stem)
    tensor_file = directory / str(document.get("tensors", ""))
    if not tensor_file.is_file():
        raise ModelFileError(f"{tensor_file}: tensor file named in {directory / f'{stem}.json'} not found")
    if file_sha256(tensor_file) != document.get("tensors_sha256"):
        raise ModelFileError(f"{tensor_file}: checksum differs from {stem}.json; the file is truncated or altered")
    try:
        return document, load_file(str(tensor_file))
    except (SafetensorError, OSError) as error:
        raise ModelFileError(f"{tensor_file}: not a readable safetensors file ({error})") from None


def save(flow: Flow, spec: Spec, directory: str | Path, extra: dict[str, Any] | None = None) -> Path:
    """Save ``flow`` (built from ``spec``) into ``directory``; returns the JSON path.

    ``extra`` is stored under ``"extra"`` in the JSON (training settings, say).
    """
    state = flow.state_dict()
    dtype = str(next(iter(state.values())).dtype).removeprefix("torch.")
    document = {"architecture": spec.to_dict(), "dtype": dtype, "extra": extra or {}}
    return write_bundle(directory, MODEL, state, document)


def read_config(directory: str | Path) -> dict[str, Any]:
    """The checked ``model.json`` of a model directory."""
    return read_document(directory, MODEL)


def flow_from_state(spec: Spec, state: dict[str, torch.Tensor], source: str) -> Flow:
    """Build ``spec`` and load ``state`` into it; ``source`` names the file for errors."""
    flow = build(spec)
    try:
        flow.load_state_dict(state)
    except RuntimeError as error:
        raise ModelFileError(f"{source}: weights do not match the architecture: {error}") from None
    return flow


def load_with_spec(directory: str | Path) -> tuple[Flow, Spec]:
    """Like :func:`load`, also returning the architecture."""
    document, tensors = read_bundle(directory, MODEL)
    try:
        spec = spec_from_dict(document["architecture"])
    except (KeyError, TypeError, ValueError) as error:
        raise ModelFileError(f"{Path(directory) / CONFIG_NAME}: bad architecture ({error})") from None
    flow = flow_from_state(spec, tensors, str(Path(directory) / document["tensors"]))
    dtype = getattr(torch, str(document.get("dtype", "float32")), torch.float32)
    return flow.to(dtype).eval(), spec


def load(directory: str | Path) -> Flow:
    """Load the flow saved in ``directory``, in evaluation mode.

        >>> import realnvp
        >>> flow = realnvp.load("runs/moons")  # doctest: +SKIP
        >>> flow.log_prob(x), flow.encode(x), flow.decode(z), flow.sample(100)  # doctest: +SKIP
    """
    return load_with_spec(directory)[0]
