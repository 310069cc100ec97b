"""Maximum-likelihood training: minibatch Adam on the mean negative log-likelihood.

The loss is the mean NLL in standardised coordinates (the reference's loss),
``-mean log p(u)`` with ``u`` the standardised data; it differs from the NLL in
data coordinates by the standardisation's constant log-determinant, so both
have the same gradients.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import torch
from torch import Tensor, nn
from tqdm.auto import tqdm

from realnvp.bijectors import ActNorm
from realnvp.flow import Flow
from realnvp.stacked_mlp import StackedMLP


@dataclass(frozen=True)
class TrainConfig:
    """How to train.

    Attributes:
        epochs: passes over the training data (an upper bound with early stopping).
        batch_size: examples per step; the last, smaller batch is kept.
        lr: Adam's learning rate (peak of the schedule).
        schedule: ``"constant"`` or ``"cosine"`` (decay to 0 over all steps).
        l2: Keras' ``l2(l2)`` on every Linear weight (not the biases):
            ``l2 * sum(w^2)`` is added to the loss. It drives weights towards
            zero (about 1e-33 after 300 epochs of the seed preset), where
            products become subnormal floats and the CPU slows several-fold:
            call :func:`realnvp.runtime.configure_cpu` at the start of the program,
            before any parallel work, so that every thread of PyTorch's pool
            inherits it (the ``realnvp`` command does; see benchmarks/denormals.py).
        grad_clip: clip the gradient's global norm to this; ``None`` for no clipping.
        patience: stop after this many epochs without a better validation NLL
            and restore the best weights; ``None`` trains every epoch and keeps
            the last weights.
        seed: seeds the order of the minibatches.
        compile: run the training step's forward and backward passes through
            ``torch.compile`` (one graph for the whole flow: fewer, fused
            kernels; worth it for deep flows of small layers). The first steps
            pay the compilation, a few seconds to a minute.
    """

    epochs: int = 300
    batch_size: int = 256
    lr: float = 1e-4
    schedule: Literal["constant", "cosine"] = "constant"
    l2: float = 0.0
    grad_clip: float | None = None
    patience: int | None = None
    seed: int = 0
    compile: bool = False

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class TrainResult:
    """What happened. NLLs are nats per example in standardised coordinates."""

    history: list[dict[str, float]] = field(default_factory=list)
    best_epoch: int = 0
    best_val_nll: float = math.inf
    seconds: float = 0.0
    steps: int = 0
    stopped_reason: str = "finished all epochs"
    diverged: bool = False


def _fused_adam_supported(module: nn.Module) -> bool:
    """Adam's fused kernel (one pass over all parameters instead of a dozen
    element-wise ops per tensor) takes floating-point tensors on the CPU or CUDA."""
    return all(p.dtype.is_floating_point and p.device.type in ("cpu", "cuda") for p in module.parameters())


def dense_kernels(module: nn.Module) -> list[Tensor]:
    """The weight matrices of every dense layer in ``module`` (``nn.Linear`` and
    :class:`StackedMLP`), not the biases."""
    weights = [m.weight for m in module.modules() if isinstance(m, nn.Linear)]
    return weights + [w for m in module.modules() if isinstance(m, StackedMLP) for w in m.kernels()]


def _sum_of_squares(weights: list[Tensor]) -> Tensor:
    return sum((w.square().sum() for w in weights), start=torch.zeros((), device=weights[0].device))


def l2_penalty(module: nn.Module) -> Tensor:
    """``sum(w^2)`` over :func:`dense_kernels` of ``module``: Keras' L2 without its factor."""
    return _sum_of_squares(dense_kernels(module))


@torch.no_grad()
def mean_nll(flow: Flow, x: Tensor, context: Tensor | None = None, batch_size: int = 8192,
             standardized: bool = True) -> float:
    """Mean negative log-likelihood of ``x (n, *event_shape)`` (given ``context
    (n, features)``) in nats per example."""
    was_training = flow.training
    flow.eval()
    total = 0.0
    for start in range(0, x.shape[0], batch_size):
        block = x[start:start + batch_size]
        block_context = None if context is None else context[start:start + batch_size]
        log_prob = (flow.standardized_log_prob(block, block_context) if standardized
                    else flow.log_prob(block, block_context))
        total += float(log_prob.sum())
    flow.train(was_training)
    return -total / x.shape[0]


def _learning_rate_scheduler(
    optimizer: torch.optim.Optimizer, config: TrainConfig, total_steps: int
) -> torch.optim.lr_scheduler.LRScheduler | None:
    if config.schedule == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=max(total_steps, 1))
    if config.schedule != "constant":
        raise ValueError(f"schedule must be 'constant' or 'cosine', got {config.schedule!r}")
    return None


@dataclass
class TrainingState:
    """Everything needed to continue a run bit for bit, taken after an epoch.

    Tensors are held in ``model``, ``best_model``, ``optimizer`` (a
    ``state_dict``) and ``generator`` (the minibatch order's random state).
    """

    epoch: int
    result: TrainResult
    since_best: int
    model: dict[str, Tensor]
    best_model: dict[str, Tensor]
    optimizer: dict[str, Any]
    scheduler: dict[str, Any] | None
    generator: Tensor


def fit(
    flow: Flow,
    train: Tensor,
    val: Tensor | None,
    config: TrainConfig,
    progress: bool = True,
    checkpoint: Callable[[TrainingState], None] | None = None,
    resume: TrainingState | None = None,
    train_context: Tensor | None = None,
    val_context: Tensor | None = None,
    preprocess: Callable[[Tensor, torch.Generator], Tensor] | None = None,
) -> TrainResult:
    """Train ``flow`` in place on ``train (n, *event_shape)`` by maximum likelihood.

    Validates on ``val`` after each epoch (early stopping needs it). If the loss
    turns NaN or infinite, training stops and the weights of the last finished
    epoch are restored; ``result.diverged`` says so.

    ``progress`` shows a progress bar (epoch, running NLL, time left) when
    standard error is a terminal. After every epoch ``checkpoint(state)``
    receives a :class:`TrainingState` (copies, safe to keep); passing it back as
    ``resume`` (with the same data and configuration) continues exactly where it
    was taken: on the CPU the end result is bit-identical to an uninterrupted run.

    Inside a ``torch.distributed`` group the model is wrapped in
    DistributedDataParallel and each process trains on its share of every
    global minibatch.

    For a conditional flow, ``train_context (n, features)`` and ``val_context``
    hold each row's context. ``preprocess(batch, generator)``, when given, turns
    each training batch into the flow's input (the dequantisation of pixels, say),
    drawing its randomness from the generator whose state the checkpoints keep.
    """
    if config.patience is not None and val is None:
        raise ValueError("early stopping (patience) needs validation data")
    param = next(flow.parameters())
    train = train.to(device=param.device, dtype=param.dtype if preprocess is None else train.dtype)
    val = None if val is None else val.to(device=param.device, dtype=param.dtype)
    if train_context is not None:
        train_context = train_context.to(device=param.device, dtype=param.dtype)
    if val_context is not None:
        val_context = val_context.to(device=param.device, dtype=param.dtype)
    n = train.shape[0]
    steps_per_epoch = math.ceil(n / config.batch_size)
    optimizer = torch.optim.Adam(flow.parameters(), lr=config.lr, fused=_fused_adam_supported(flow))
    scheduler = _learning_rate_scheduler(optimizer, config, steps_per_epoch * config.epochs)
    generator = torch.Generator().manual_seed(config.seed)
    result, since_best, first_epoch = TrainResult(), 0, 1
    if resume is not None:
        flow.load_state_dict(resume.model)
        optimizer.load_state_dict(resume.optimizer)
        if scheduler is not None and resume.scheduler is not None:
            scheduler.load_state_dict(resume.scheduler)
        generator.set_state(resume.generator)
        result, since_best, first_epoch = copy.deepcopy(resume.result), resume.since_best, resume.epoch + 1
    best_state = copy.deepcopy(resume.best_model if resume is not None else flow.state_dict())
    last_good_state = copy.deepcopy(flow.state_dict())
    bar = tqdm(total=steps_per_epoch * config.epochs, initial=steps_per_epoch * (first_epoch - 1),
               disable=None if progress else True, unit="step", dynamic_ncols=True, leave=False)
    start = time.perf_counter() - result.seconds
    flow.train()
    if preprocess is None:
        def preprocess(batch: Tensor, generator: torch.Generator) -> Tensor:
            return batch
    if resume is None:
        first = preprocess(train[: config.batch_size], torch.Generator().manual_seed(config.seed)).to(param.dtype)
        _initialize_actnorms(flow, first, None if train_context is None else train_context[: config.batch_size])
    rank, world = process_group()
    objective: nn.Module = flow
    if world > 1:
        objective = nn.parallel.DistributedDataParallel(flow)
    if config.compile:
        objective = torch.compile(objective)
    standardizer_logdet = flow.standardizer.log_abs_det().to(param.dtype) if flow.standardizer is not None else 0.0
    kernels = dense_kernels(flow) if config.l2 else []  # found once, not at every step
    for epoch in range(first_epoch, config.epochs + 1):
        if since_best_exhausted(config, since_best) or result.diverged:
            break
        bar.set_description(f"epoch {epoch}/{config.epochs}")
        order = torch.randperm(n, generator=generator).to(train.device)
        running = 0.0
        for step, index in enumerate(order.split(config.batch_size), start=1):
            global_size = len(index)
            # Every process preprocesses the whole global batch, so that all draw the same
            # random numbers, then keeps its own share.
            batch = preprocess(train[index], generator).to(param.dtype)
            share = torch.arange(global_size, device=batch.device).tensor_split(world)[rank]
            batch = batch[share]
            context = None if train_context is None else train_context[index][share]
            # objective(x) is log p(x). DDP averages the gradients over the processes, so each
            # weighs its sum by world / global_size: the result is the global batch's mean.
            nll = standardizer_logdet - objective(batch, context).sum() * (world / global_size)
            loss = nll + config.l2 * _sum_of_squares(kernels) if config.l2 else nll
            if not torch.isfinite(loss):
                flow.load_state_dict(last_good_state)
                result.diverged = True
                result.stopped_reason = (
                    f"loss became {float(loss.detach())} at epoch {epoch}, step {step}; "
                    f"kept the weights of epoch {epoch - 1}"
                )
                break
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if config.grad_clip is not None:
                nn.utils.clip_grad_norm_(flow.parameters(), config.grad_clip)
            optimizer.step()
            if scheduler is not None:
                scheduler.step()
            result.steps += 1
            running += float(nll.detach())
            bar.update()
            if step % 20 == 0:
                bar.set_postfix(nll=f"{running / step:.4f}")
        if result.diverged:
            break
        record = {"epoch": epoch, "train_nll": _mean_over_processes(running, world) / steps_per_epoch}
        if val is not None:
            record["val_nll"] = mean_nll(flow, val, val_context)
            if record["val_nll"] < result.best_val_nll:
                result.best_val_nll, result.best_epoch, since_best = record["val_nll"], epoch, 0
                best_state = copy.deepcopy(flow.state_dict())
            else:
                since_best += 1
        result.seconds = time.perf_counter() - start
        record["seconds"] = result.seconds
        result.history.append(record)
        last_good_state = copy.deepcopy(flow.state_dict())
        bar.set_postfix(nll=f"{record['train_nll']:.4f}", val=f"{record.get('val_nll', math.nan):.4f}")
        if since_best_exhausted(config, since_best):
            result.stopped_reason = f"early stop: no better validation NLL for {config.patience} epochs"
        if checkpoint is not None:
            checkpoint(TrainingState(
                epoch=epoch, result=copy.deepcopy(result), since_best=since_best,
                model=last_good_state, best_model=best_state,
                optimizer=copy.deepcopy(optimizer.state_dict()),
                scheduler=None if scheduler is None else scheduler.state_dict(),
                generator=generator.get_state(),
            ))
    bar.close()
    if config.patience is not None and not result.diverged and result.best_epoch:
        flow.load_state_dict(best_state)
    flow.eval()
    result.seconds = time.perf_counter() - start
    return result


def process_group() -> tuple[int, int]:
    """``(rank, world size)`` of the running ``torch.distributed`` group, ``(0, 1)`` without one."""
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_rank(), torch.distributed.get_world_size()
    return 0, 1


def _mean_over_processes(value: float, world: int) -> float:
    if world == 1:
        return value
    total = torch.tensor([value], dtype=torch.float64)
    torch.distributed.all_reduce(total)
    return float(total) / world


@torch.no_grad()
def _initialize_actnorms(flow: Flow, x: Tensor, context: Tensor | None) -> None:
    """Run the data-dependent initialisation of every ActNorm on ``x``, the same
    rows in every process, before any process trains on its own share."""
    if any(isinstance(m, ActNorm) and not bool(m.initialized) for m in flow.modules()):
        flow.log_prob(x, context)


def since_best_exhausted(config: TrainConfig, since_best: int) -> bool:
    """Whether early stopping's patience has run out."""
    return config.patience is not None and since_best >= config.patience
