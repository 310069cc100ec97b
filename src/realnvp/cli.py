"""The ``realnvp`` command line: a thin layer over the library.

Every command prints a short summary, or with ``--json`` one JSON object, on
standard output (``evaluate`` always prints JSON); ``--quiet`` prints nothing
but errors and hides the progress bar.

Exit codes: 0 success; 2 bad usage, or a bad input file or model (the message
names the file, the row and column where it applies, and what was expected;
nothing is written); 3 training stopped on a NaN or infinite loss (the last
good model is still written).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from realnvp.checkpoint import load_checkpoint
from realnvp.evaluation import Estimate, log_prob_numpy
from realnvp.figures import plot_conditional_samples, plot_marginals, plot_pairs, plot_reference_figure
from realnvp.architecture import spec_from_dict
from realnvp.images.architecture import ImageFlowSpec
from realnvp.images.commands import (
    decode_to_pngs,
    encode_images,
    evaluate_images,
    interpolate,
    read_codes,
    sample_grid,
)
from realnvp.images.job import image_job, run_image_job
from realnvp.jobs import Job, file_job, moons_job, run_job
from realnvp.presets import PRESETS, get_preset
from realnvp.runtime import configure_cpu
from realnvp.serialization import ModelFileError, load, read_config
from realnvp.tabular import DataFileError, read_table, write_points, write_points_array

EXIT_BAD_INPUT = 2
EXIT_DIVERGED = 3
LOG_DENSITY = "log_density"


def _report(args: argparse.Namespace, result: dict[str, Any], summary: str) -> None:
    if args.json:
        print(json.dumps(result, indent=2))
    elif not args.quiet:
        print(summary)


def _device(name: str) -> torch.device:
    """``auto``: the GPU of this process (``LOCAL_RANK`` under torchrun) when there is one."""
    if name == "cpu" or (name == "auto" and not torch.cuda.is_available()):
        return torch.device("cpu")
    if not torch.cuda.is_available():
        raise DataFileError("--device cuda: no CUDA device is available")
    return torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))


def _train(args: argparse.Namespace) -> int:
    if args.threads:
        torch.set_num_threads(args.threads)
    device = _device(args.device)
    distributed = int(os.environ.get("WORLD_SIZE", "1")) > 1
    if distributed:
        if device.type == "cuda":
            torch.cuda.set_device(device)
        torch.distributed.init_process_group("nccl" if device.type == "cuda" else "gloo")
    try:
        return _train_in_process(args, device)
    finally:
        if distributed:
            torch.distributed.destroy_process_group()


def _is_image_data(data: str) -> bool:
    """``digits``, a folder, or a ``.npy`` of images (3 or 4 dimensions) rather than a table."""
    path = Path(data)
    if data == "digits" or path.is_dir():
        return True
    if path.suffix.lower() == ".npy" and path.is_file():
        try:
            return np.load(path, mmap_mode="r", allow_pickle=False).ndim >= 3
        except (ValueError, OSError):
            return False
    return False


def _new_job(args: argparse.Namespace) -> Job:
    overrides = {"epochs": args.epochs, "l2": args.l2, "compile": args.compile or None}
    if args.data == "moons":
        job = moons_job(get_preset(args.preset), args.seed, args.conditional, **overrides)
    elif _is_image_data(args.data):
        if args.mixed_precision:
            raise DataFileError(f"{args.data}: --mixed-precision is for tabular flows (MLP conditioners), "
                                f"not image flows")
        return image_job(args.data, args.seed, args.image_size, args.conditional, **overrides)
    elif args.conditional:
        raise DataFileError(f"{args.data}: --conditional needs labelled data: --data moons or --data digits")
    else:
        job = file_job(args.data, args.columns, args.array, args.seed, **overrides)
    return replace(job, spec=replace(job.spec, mixed_precision=True)) if args.mixed_precision else job


def _train_in_process(args: argparse.Namespace, device: torch.device) -> int:
    resume = None
    if args.resume is not None:
        resume, job_document = load_checkpoint(args.resume)
        job, out = Job.from_dict(job_document), args.resume
    else:
        job, out = _new_job(args), args.out
    image = job.data.kind in ("digits", "images")
    runner = run_image_job if image else run_job
    metrics = runner(job, out, progress=not args.quiet, resume=resume, device=device)
    if torch.distributed.is_initialized() and torch.distributed.get_rank() != 0:
        return 0
    if image:
        result = {key: metrics[key] for key in ("test_bits_per_dim", "baseline_independent_pixels_bits_per_dim",
                                                "reconstruction_exact", "training_seconds", "parameters",
                                                "epochs_run", "stopped_reason")}
        summary = (f"image: test {metrics['test_bits_per_dim']['mean']:.4f} ± "
                   f"{metrics['test_bits_per_dim']['stderr']:.4f} bits/dim (independent pixels: "
                   f"{metrics['baseline_independent_pixels_bits_per_dim']:.4f}); pixel-exact reconstruction: "
                   f"{metrics['reconstruction_exact']}; {metrics['epochs_run']} epochs, "
                   f"{metrics['training_seconds']:.1f} s, {metrics['parameters']:,} parameters; wrote {out}")
        return _finish_training(args, metrics, result, summary)
    nll = metrics["test_nll"]
    result = {
        "out": str(out), "preset": job.preset, "test_nll_raw": nll["raw"]["mean"],
        "test_nll_standardized": nll["standardized"]["mean"], "training_seconds": metrics["training_seconds"],
        "parameters": metrics["parameters"], "epochs_run": metrics["epochs_run"],
        "stopped_reason": metrics["stopped_reason"],
    }
    summary = (f"{job.preset}: test NLL {result['test_nll_raw']:.4f} nats/point (data coordinates), "
               f"{result['test_nll_standardized']:.4f} (standardised)")
    if "kl" in metrics:
        result.update(kl=metrics["kl"]["mean"], kl_stderr=metrics["kl"]["stderr"])
        summary += f"; KL to the true density {result['kl']:.4f} ± {result['kl_stderr']:.4f} nats"
    summary += (f"; {result['epochs_run']} epochs, {result['training_seconds']:.1f} s, "
                f"{result['parameters']:,} parameters; wrote {out}")
    return _finish_training(args, metrics, result, summary)


def _finish_training(args: argparse.Namespace, metrics: dict[str, Any], result: dict[str, Any], summary: str) -> int:
    _report(args, result, summary)
    if metrics["diverged"]:
        print(f"realnvp train: {metrics['stopped_reason']}", file=sys.stderr)
        return EXIT_DIVERGED
    return 0


class Model:
    """A loaded flow with what the command line needs to know about it."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.flow = load(args.model).to(_device(args.device))
        if getattr(args, "float64", False):
            self.flow = self.flow.double()
        config = read_config(args.model)
        self.spec = spec_from_dict(config["architecture"])
        self.image = isinstance(self.spec, ImageFlowSpec)
        dim = self.flow.event_shape[0]
        self.columns: list[str] = config["extra"].get("columns") or [f"x{i + 1}" for i in range(dim)]
        self.path = args.model
        self.conditions: int = config["architecture"].get("context_features", 0)
        self.condition: int | None = getattr(args, "condition", None)
        if self.condition is not None and not 0 <= self.condition < self.conditions:
            allowed = f"0..{self.conditions - 1}" if self.conditions else "none (the model is not conditional)"
            raise ModelFileError(f"{args.model}: --condition {self.condition} is out of range; allowed: {allowed}")

    def tensor(self, values: np.ndarray) -> torch.Tensor:
        """``values`` on the model's device and dtype."""
        return self.flow.as_input(values)

    def context(self, n: int) -> torch.Tensor | None:
        """The one-hot ``--condition`` for ``n`` rows; ``None`` for an unconditional model."""
        if not self.conditions:
            return None
        if self.condition is None:
            raise ModelFileError(f"{self.path}: a conditional model; pass --condition 0..{self.conditions - 1}")
        return self.tensor(np.eye(self.conditions)[np.full(n, self.condition)])

    def context_numpy(self, n: int) -> np.ndarray | None:
        context = self.context(n)
        return None if context is None else context.double().cpu().numpy()


def _read_for(model: Model, args: argparse.Namespace, drop: str | None = None) -> np.ndarray:
    """The rows of ``--data``, checked against the model's dimension.

    ``drop`` names a column to ignore when the table has one column too many:
    found by its header in a CSV, or the last column of a NumPy array.
    """
    if args.data is None:
        raise DataFileError(f"{args.command}: --data FILE is required for a tabular model")
    table = read_table(args.data, args.columns, args.array)
    values = table.values
    dim = model.flow.event_shape[0]
    if drop is not None and values.shape[1] == dim + 1:
        headerless = table.columns == [str(i + 1) for i in range(dim + 1)]
        if drop in table.columns or headerless:
            values = np.delete(values, table.columns.index(drop) if drop in table.columns else dim, axis=1)
    if values.shape[1] != dim:
        raise DataFileError(f"{args.data}: {values.shape[1]} columns, the model expects {dim}")
    return values


def _sample(args: argparse.Namespace) -> int:
    model = Model(args)
    if model.image:
        temperatures = args.temperatures or [args.temperature]
        sample_grid(model.flow, model.spec, args.n, temperatures, args.seed, args.output, model.context(args.n))
        result = {"output": str(args.output), "n": args.n, "temperatures": temperatures, "seed": args.seed}
        _report(args, result, f"wrote {args.n} samples at temperatures {temperatures} to {args.output}")
        return 0
    generator = torch.Generator().manual_seed(args.seed)
    with torch.no_grad():
        samples = model.flow.sample(args.n, args.temperature, model.context(args.n), generator)
    write_points(args.output, samples.double().cpu().numpy(), header=model.columns)
    result = {"output": str(args.output), "n": args.n, "temperature": args.temperature, "seed": args.seed}
    _report(args, result, f"wrote {args.n} samples at temperature {args.temperature} to {args.output}")
    return 0


def _evaluate(args: argparse.Namespace) -> int:
    model = Model(args)
    if model.image:
        bits = evaluate_images(model.flow, model.spec, args.data, model.context)
        report = {"data": str(args.data), "bits_per_dim": bits.mean, "bits_per_dim_stderr": bits.stderr,
                  "units": "bits per dimension (uniform dequantisation, one draw per image)"}
        if not args.quiet:
            print(json.dumps(report, indent=2))
        return 0
    x = _read_for(model, args)
    log_p = log_prob_numpy(model.flow, x, model.context_numpy(len(x)))
    nll = Estimate.of(-log_p) if len(x) > 1 else Estimate(float(-log_p[0]), float("nan"))
    if args.per_row is not None:
        write_points(args.per_row, log_p[:, None], header=[LOG_DENSITY])
    report = {"data": str(args.data), "points": len(x), "nll": nll.mean, "nll_stderr": nll.stderr,
              "units": "nats per point, data coordinates",
              "per_row": None if args.per_row is None else str(args.per_row)}
    if not args.quiet:
        print(json.dumps(report, indent=2))
    return 0


def _encode(args: argparse.Namespace) -> int:
    model = Model(args)
    if model.image:
        if not args.images:
            raise DataFileError("encode: name the pictures to encode: realnvp encode --model DIR a.png b.png -o codes.npy")
        codes = encode_images(model.flow, model.spec, [Path(p) for p in args.images], model.context(len(args.images)))
        write_points_array(args.output, codes)
        _report(args, {"output": str(args.output), "images": len(codes)},
                f"encoded {len(codes)} images into {args.output}")
        return 0
    x = _read_for(model, args)
    context = model.context(len(x))
    with torch.no_grad():
        data = model.tensor(x)
        codes = model.flow.encode(data, context).double().cpu().numpy()
        header = [f"z{i + 1}" for i in range(codes.shape[1])]
        if args.log_density:
            log_p = model.flow.log_prob(data, context).double().cpu().numpy()
            codes = np.concatenate([codes, log_p[:, None]], axis=1)
            header.append(LOG_DENSITY)
    write_points(args.output, codes, header=header)
    _report(args, {"output": str(args.output), "rows": len(x)}, f"encoded {len(x)} rows into {args.output}")
    return 0


def _decode(args: argparse.Namespace) -> int:
    model = Model(args)
    if model.image:
        source = args.codes or args.data
        if source is None:
            raise DataFileError("decode: name the codes: realnvp decode --model DIR codes.npy -o OUTDIR/")
        codes = read_codes(model.spec, source)
        written = decode_to_pngs(model.flow, model.spec, codes, args.output, model.context(len(codes)))
        _report(args, {"output": str(args.output), "images": [str(p) for p in written]},
                f"decoded {len(written)} images into {args.output}")
        return 0
    z = _read_for(model, args, drop=LOG_DENSITY)
    with torch.no_grad():
        x = model.flow.decode(model.tensor(z), model.context(len(z))).double().cpu().numpy()
    write_points(args.output, x, header=model.columns)
    _report(args, {"output": str(args.output), "rows": len(z)}, f"decoded {len(z)} rows into {args.output}")
    return 0


def _interpolate(args: argparse.Namespace) -> int:
    model = Model(args)
    if not model.image:
        raise ModelFileError(f"{args.model}: interpolate works on image models")
    interpolate(model.flow, model.spec, Path(args.first), Path(args.last), args.steps, args.output,
                model.context(args.steps))
    _report(args, {"output": str(args.output), "steps": args.steps},
            f"wrote {args.steps} images from {args.first} to {args.last} into {args.output}")
    return 0


def _plot(args: argparse.Namespace) -> int:
    model = Model(args)
    x = _read_for(model, args)
    out = args.out
    if model.conditions:
        written = [plot_conditional_samples(model.flow, model.conditions, out / "conditions.png", seed=args.seed)]
    elif x.shape[1] == 2:
        written = [plot_reference_figure(model.flow, x[:5000], out / "reference.png", seed=args.seed)]
    else:
        generator = torch.Generator().manual_seed(args.seed)
        n = min(len(x), 3000)
        with torch.no_grad():
            samples = model.flow.sample(n, generator=generator).double().cpu().numpy()
        written = [plot_pairs(x[:n], samples, model.columns, out / "pairs.png"),
                   plot_marginals(x, samples, model.columns, out / "marginals.png")]
    names = [str(p) for p in written]
    _report(args, {"figures": names}, "wrote " + ", ".join(names))
    return 0


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text}")
    return value


def _non_negative_float(text: str) -> float:
    value = float(text)
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"expected a number >= 0, got {text}")
    return value


def _temperature_list(text: str) -> list[float]:
    return [_non_negative_float(item) for item in text.split(",") if item.strip()]


def _column_list(text: str) -> list[str]:
    return [item.strip() for item in text.split(",") if item.strip()]


def _add_output_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    parser.add_argument("--quiet", action="store_true", help="print nothing but errors; no progress bar")


def _add_data(parser: argparse.ArgumentParser, help_text: str) -> None:
    parser.add_argument("--data", help=help_text)
    parser.add_argument("--columns", type=_column_list,
                        help="comma-separated header names or 1-based indices (default: all)")
    parser.add_argument("--array", help="which array of an .npz that holds several")


def _model_command(commands: argparse._SubParsersAction, name: str, help_text: str, run: Callable[..., int],
                   data_help: str | None = None, output: bool = False) -> argparse.ArgumentParser:
    """A subcommand that works with a saved model: ``--model``, optionally
    ``--data`` and ``-o``, and the flags every such command shares."""
    parser = commands.add_parser(name, help=help_text)
    parser.add_argument("--model", type=Path, required=True, help="a directory written by 'realnvp train'")
    if data_help is not None:
        _add_data(parser, data_help)
    if output:
        parser.add_argument("-o", "--output", type=Path, required=True,
                            help=".csv or .npy; for image models a .png, a .npy or a folder")
    parser.add_argument("--float64", action="store_true", help="compute in float64")
    parser.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto",
                        help="auto: a GPU when there is one")
    parser.add_argument("--condition", type=int, metavar="K",
                        help="for a conditional model: the condition (moons: 0 upper, 1 lower; digits: the digit)")
    _add_output_flags(parser)
    parser.set_defaults(run=run)
    return parser


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="realnvp", description="RealNVP normalizing flows.")
    commands = parser.add_subparsers(dest="command", required=True)

    train = commands.add_parser("train", help="train a flow; write model, metrics and figures")
    train.add_argument("--data", default="moons", help="'moons' (default) or a CSV, .npy or .npz file")
    train.add_argument("--columns", type=_column_list, help="comma-separated header names or 1-based indices")
    train.add_argument("--array", help="which array of an .npz that holds several")
    train.add_argument("--image-size", type=_positive_int, metavar="N",
                       help="centre-crop and resize a folder's images to N x N")
    train.add_argument("--preset", choices=sorted(PRESETS), default="default", help="for --data moons")
    train.add_argument("--epochs", type=_positive_int, help="override the preset's number of epochs")
    train.add_argument("--l2", type=_non_negative_float,
                       help="Keras-style L2 on the weights (seed preset: 0.01; 0 = what the reference really trained)")
    train.add_argument("--conditional", action="store_true",
                       help="learn p(x | label), the label as a one-hot context: the moon (--data moons) "
                            "or the digit (--data digits)")
    train.add_argument("--mixed-precision", action="store_true",
                       help="conditioner networks in bfloat16 (the flow stays exact; fast on CPUs with AMX/AVX-512)")
    train.add_argument("--compile", action="store_true",
                       help="torch.compile the training step (pays a compilation of seconds up front)")
    train.add_argument("--seed", type=int, default=0)
    train.add_argument("--out", type=Path, default=Path("runs/moons"))
    train.add_argument("--resume", type=Path, metavar="DIR", help="continue the run whose checkpoint is in DIR")
    train.add_argument("--threads", type=_positive_int, help="CPU threads for PyTorch (per process)")
    train.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto",
                       help="auto: a GPU when there is one")
    _add_output_flags(train)
    train.set_defaults(run=_train)

    sample = _model_command(commands, "sample", "draw samples from a saved model", _sample, output=True)
    sample.add_argument("-n", type=_positive_int, default=1000)
    sample.add_argument("--temperature", type=_non_negative_float, default=1.0)
    sample.add_argument("--temperatures", type=_temperature_list, metavar="T1,T2,..",
                        help="image models: one row of the grid per temperature")
    sample.add_argument("--seed", type=int, default=0)

    evaluate = _model_command(commands, "evaluate", "mean NLL of the rows of a file (JSON)", _evaluate,
                              data_help="CSV, .npy or .npz")
    evaluate.add_argument("--per-row", type=Path, help="write each row's log-density (nats) to this .csv or .npy")

    encode = _model_command(commands, "encode", "data to latent codes, z = f(x)", _encode,
                            data_help="CSV, .npy or .npz", output=True)
    encode.add_argument("--log-density", action="store_true", help="add a log_density column (nats)")
    encode.add_argument("images", nargs="*", help="image models: the PNG/JPEG files to encode")

    decode = _model_command(commands, "decode", "latent codes back to data, x = g(z)", _decode, output=True,
                            data_help="codes from 'realnvp encode'; its log_density column (the last, in a "
                                      ".npy) is ignored")
    decode.add_argument("codes", nargs="?", help="image models: the codes .npy (-o is then a folder for PNGs)")

    between = _model_command(commands, "interpolate", "image models: the path between two pictures in latent space",
                             _interpolate, output=True)
    between.add_argument("first")
    between.add_argument("last")
    between.add_argument("--steps", type=_positive_int, default=10)

    plot = _model_command(commands, "plot", "figures of a model against data", _plot, data_help="CSV, .npy or .npz")
    plot.add_argument("--out", type=Path, default=Path("."), help="directory for the PNG files")
    plot.add_argument("--seed", type=int, default=0)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    configure_cpu()  # first, before PyTorch's thread pool starts
    args = build_parser().parse_args(argv)
    try:
        return int(args.run(args))
    except (DataFileError, ModelFileError) as error:
        print(f"realnvp {args.command}: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT


if __name__ == "__main__":
    sys.exit(main())
