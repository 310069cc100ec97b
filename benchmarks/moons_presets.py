"""Train the two-moons presets over several seeds and write the README's results table.

    python benchmarks/moons_presets.py --out benchmarks/results \
        --runs seed:l2=0 seed:l2=0.01 default --seeds 0 1 2

Each run is the same job as ``realnvp train`` (its model, metrics and figures
go to ``runs/results/<run>-seed<k>``). Writes ``moons_presets.json`` and
``moons_presets.md`` into ``--out``: test NLL in nats per point (standardised
and raw coordinates), KL(data || model) with its standard error, training
seconds and parameters, as mean +- standard deviation over the seeds.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
from pathlib import Path

import torch

from realnvp.files import write_text_atomically
from realnvp.runtime import configure_cpu
from realnvp.presets import get_preset
from realnvp.jobs import moons_job, run_job


def _parse_run(text: str) -> tuple[str, dict[str, float]]:
    name, _, rest = text.partition(":")
    overrides = {key: float(value) for key, value in (item.split("=") for item in rest.split(",") if item)}
    if "epochs" in overrides:
        overrides["epochs"] = int(overrides["epochs"])
    return name, overrides


def _mean_sd(values: list[float], digits: int) -> str:
    if len(values) == 1:
        return f"{values[0]:.{digits}f}"
    return f"{statistics.mean(values):.{digits}f} ± {statistics.stdev(values):.{digits}f}"


def main() -> None:
    configure_cpu()  # before any parallel work, as the realnvp command does
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", nargs="+", default=["seed:l2=0", "seed:l2=0.01", "default"])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    parser.add_argument("--runs-dir", type=Path, default=Path("runs/results"))
    parser.add_argument("--threads", type=int, help="CPU threads for PyTorch (default: all cores)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    results_path = args.out / "moons_presets.json"
    results = json.loads(results_path.read_text()) if results_path.exists() else {}
    for run in args.runs:
        name, overrides = _parse_run(run)
        preset = get_preset(name, **overrides)
        for seed in args.seeds:
            label = run.replace(":", "_").replace("=", "").replace(",", "_")
            metrics = run_job(moons_job(preset, seed), args.runs_dir / f"{label}-seed{seed}", progress=False)
            metrics.pop("history")
            results.setdefault(run, {})[str(seed)] = metrics
            print(f"{run} seed {seed}: NLL {metrics['test_nll']['standardized']['mean']:.4f} (standardised), "
                  f"KL {metrics['kl']['mean']:.4f}, {metrics['training_seconds']:.0f} s", flush=True)
            write_text_atomically(results_path, json.dumps(results, indent=2) + "\n")

    lines = [
        f"Machine: {platform.processor() or platform.machine()}, torch {torch.__version__}.",
        "",
        "| run | threads | seeds | test NLL, standardised | test NLL, raw | KL(data‖model) | training s | epochs | parameters |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for run, by_seed in results.items():
        rows = list(by_seed.values())
        lines.append(
            f"| `{run}` | {rows[0]['machine']['threads']} | {len(rows)} "
            f"| {_mean_sd([r['test_nll']['standardized']['mean'] for r in rows], 3)} "
            f"| {_mean_sd([r['test_nll']['raw']['mean'] for r in rows], 3)} "
            f"| {_mean_sd([r['kl']['mean'] for r in rows], 4)} "
            f"| {_mean_sd([r['training_seconds'] for r in rows], 0)} "
            f"| {_mean_sd([float(r['epochs_run']) for r in rows], 0)} "
            f"| {rows[0]['parameters']:,} |"
        )
    lines += ["", "Nats per point on 20,000 fresh test points; ± is the standard deviation over seeds. "
              "KL = test NLL (raw) − H, H the true density's entropy on the same points "
              f"({statistics.mean(r['entropy']['mean'] for by in results.values() for r in by.values()):.4f} nats)."]
    write_text_atomically(args.out / "moons_presets.md", "\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
