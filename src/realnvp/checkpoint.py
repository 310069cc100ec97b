"""Training checkpoints: a :class:`~realnvp.training.TrainingState` as the bundle
``checkpoint`` (safetensors + JSON, written atomically, checked on load).

Tensor names in the safetensors file: ``model.<name>``, ``best.<name>``,
``optimizer.<param index>.<name>`` and ``generator``; everything else (epoch,
history, optimiser hyperparameters, scheduler position, the job that was
running) is JSON.
"""

from __future__ import annotations

import math
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch

from realnvp.serialization import ModelFileError, read_bundle, read_document, write_bundle
from realnvp.training import TrainingState, TrainResult

CHECKPOINT = "checkpoint"


def _prefixed(prefix: str, tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {f"{prefix}.{name}": value for name, value in tensors.items()}


def _unprefixed(prefix: str, tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    start = len(prefix) + 1
    return {name[start:]: value for name, value in tensors.items() if name.startswith(prefix + ".")}


def save_checkpoint(directory: str | Path, state: TrainingState, job: dict[str, Any]) -> Path:
    """Write ``state`` and the ``job`` description (JSON) into ``directory``."""
    tensors = {**_prefixed("model", state.model), **_prefixed("best", state.best_model),
               "generator": state.generator.clone()}
    moments: dict[str, list[str]] = {}
    for index, values in state.optimizer["state"].items():
        for key, value in values.items():
            tensors[f"optimizer.{index}.{key}"] = value.clone() if value.dim() else value.reshape(1).clone()
            moments.setdefault(str(index), []).append(key)
    result = asdict(state.result)
    result["best_val_nll"] = None if math.isinf(result["best_val_nll"]) else result["best_val_nll"]
    document = {
        "epoch": state.epoch,
        "since_best": state.since_best,
        "result": result,
        "optimizer_param_groups": state.optimizer["param_groups"],
        "optimizer_moments": moments,
        "scheduler": state.scheduler,
        "job": job,
    }
    return write_bundle(directory, CHECKPOINT, tensors, document)


def read_job(directory: str | Path) -> dict[str, Any]:
    """The job stored with the checkpoint in ``directory``."""
    return read_document(directory, CHECKPOINT)["job"]


def load_checkpoint(directory: str | Path) -> tuple[TrainingState, dict[str, Any]]:
    """The :class:`TrainingState` and the job saved in ``directory``."""
    document, tensors = read_bundle(directory, CHECKPOINT)
    try:
        optimizer_state: dict[int, dict[str, torch.Tensor]] = {}
        for index, keys in document["optimizer_moments"].items():
            optimizer_state[int(index)] = {}
            for key in keys:
                value = tensors[f"optimizer.{index}.{key}"]
                optimizer_state[int(index)][key] = value.reshape(()) if key == "step" else value
        result = dict(document["result"])
        if result["best_val_nll"] is None:
            result["best_val_nll"] = math.inf
        state = TrainingState(
            epoch=int(document["epoch"]),
            result=TrainResult(**result),
            since_best=int(document["since_best"]),
            model=_unprefixed("model", tensors),
            best_model=_unprefixed("best", tensors),
            optimizer={"state": optimizer_state, "param_groups": document["optimizer_param_groups"]},
            scheduler=document["scheduler"],
            generator=tensors["generator"],
        )
    except (KeyError, TypeError, ValueError) as error:
        raise ModelFileError(f"{Path(directory) / (CHECKPOINT + '.json')}: incomplete checkpoint ({error})") from None
    return state, document["job"]
