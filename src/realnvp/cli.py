"""The ``realnvp`` command line: a thin layer over the library.

Exit codes: 0 success; 2 bad usage or a bad input file or model (the message
names the file and what was wrong); 3 training stopped on a NaN or infinite
loss (the last good model is still written).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from realnvp.evaluation import Estimate, log_prob_numpy
from realnvp.presets import PRESETS, get_preset
from realnvp.serialization import ModelFileError, load
from realnvp.tabular import DataFileError, read_points, write_points
from realnvp.two_moons import train_two_moons

EXIT_BAD_INPUT = 2
EXIT_DIVERGED = 3


def _train(args: argparse.Namespace) -> int:
    preset = get_preset(args.preset, epochs=args.epochs, l2=args.l2)
    if args.threads:
        torch.set_num_threads(args.threads)
    metrics = train_two_moons(preset, args.seed, args.out, progress=not args.quiet)
    summary = {
        "out": str(args.out),
        "preset": preset.name,
        "test_nll_raw": metrics["test_nll"]["raw"]["mean"],
        "test_nll_standardized": metrics["test_nll"]["standardized"]["mean"],
        "kl": metrics["kl"]["mean"],
        "kl_stderr": metrics["kl"]["stderr"],
        "training_seconds": metrics["training_seconds"],
        "parameters": metrics["parameters"],
        "stopped_reason": metrics["stopped_reason"],
    }
    if not args.quiet:
        print(
            f"{preset.name}: test NLL {summary['test_nll_raw']:.4f} nats/point (data coordinates), "
            f"{summary['test_nll_standardized']:.4f} (standardised); "
            f"KL to the true density {summary['kl']:.4f} +- {summary['kl_stderr']:.4f} nats; "
            f"{summary['training_seconds']:.1f} s, {summary['parameters']:,} parameters; wrote {args.out}"
        )
    if metrics["diverged"]:
        print(f"realnvp train: {metrics['stopped_reason']}", file=sys.stderr)
        return EXIT_DIVERGED
    return 0


def _sample(args: argparse.Namespace) -> int:
    flow = load(args.model)
    generator = torch.Generator().manual_seed(args.seed)
    with torch.no_grad():
        samples = flow.sample(args.n, temperature=args.temperature, generator=generator)
    write_points(args.output, samples.double().numpy(), header=[f"x{i + 1}" for i in range(samples.shape[1])])
    if not args.quiet:
        print(f"wrote {args.n} samples at temperature {args.temperature} to {args.output}", file=sys.stderr)
    return 0


def _evaluate(args: argparse.Namespace) -> int:
    flow = load(args.model)
    x = read_points(args.data)
    if x.shape[1] != flow.event_shape[0]:
        raise DataFileError(f"{args.data}: {x.shape[1]} columns, the model expects {flow.event_shape[0]}")
    log_p = log_prob_numpy(flow, x)
    nll = Estimate.of(-log_p) if len(x) > 1 else Estimate(float(-log_p[0]), float("nan"))
    report = {"data": str(args.data), "points": len(x), "nll": nll.mean, "nll_stderr": nll.stderr,
              "units": "nats per point, data coordinates"}
    print(json.dumps(report, indent=2))
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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="realnvp", description="RealNVP normalizing flows.")
    commands = parser.add_subparsers(dest="command", required=True)

    train = commands.add_parser("train", help="train on two moons; write model, metrics and figures")
    train.add_argument("--preset", choices=sorted(PRESETS), default="default")
    train.add_argument("--epochs", type=_positive_int, help="override the preset's number of epochs")
    train.add_argument("--l2", type=_non_negative_float, help="Keras-style L2 on the weights (seed preset: 0.01; 0 = what the reference really trained)")
    train.add_argument("--seed", type=int, default=0)
    train.add_argument("--out", type=Path, default=Path("runs/moons"))
    train.add_argument("--threads", type=_positive_int, help="CPU threads for PyTorch")
    train.add_argument("--quiet", action="store_true", help="no progress bar or summary")
    train.set_defaults(run=_train)

    sample = commands.add_parser("sample", help="draw samples from a saved model")
    sample.add_argument("--model", type=Path, required=True)
    sample.add_argument("-n", type=_positive_int, default=1000)
    sample.add_argument("--temperature", type=_non_negative_float, default=1.0)
    sample.add_argument("--seed", type=int, default=0)
    sample.add_argument("-o", "--output", type=Path, required=True, help=".csv or .npy")
    sample.add_argument("--quiet", action="store_true")
    sample.set_defaults(run=_sample)

    evaluate = commands.add_parser("evaluate", help="mean NLL of the points in a file (JSON)")
    evaluate.add_argument("--model", type=Path, required=True)
    evaluate.add_argument("--data", type=Path, required=True, help=".csv, .npy or .npz")
    evaluate.set_defaults(run=_evaluate)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.run(args))
    except (DataFileError, ModelFileError) as error:
        print(f"realnvp {args.command}: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT


if __name__ == "__main__":
    sys.exit(main())
