"""Why the seed preset slowed down with L2, and what fixes it.

    python benchmarks/denormals.py --model DIR --out benchmarks/results

``DIR`` holds a seed-preset model trained with L2 0.01 (its median |weight| is
about 1e-33: the penalty drives the networks towards zero). Continuing its
training, products of such weights with activations are subnormal floats,
which x86 CPUs compute on a slow microcode path. Each mode runs in a fresh
process with 2 threads and reports training steps per second over three
consecutive windows:

* ``off``: no flushing;
* ``late``: ``torch.set_flush_denormal(True)`` after PyTorch's thread pool
  exists: only the calling thread flushes (the flag is per thread);
* ``early``: the flag set before any parallel work, so the pool's threads
  inherit it (what the ``realnvp`` command does at start-up).

Writes ``denormals.json``.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

WINDOWS, STEPS = 3, 30


def child(model: str, mode: str) -> list[float]:
    """Steps per second in consecutive windows, in this process."""
    import torch

    if mode == "early":
        torch.set_flush_denormal(True)
    from realnvp.datasets import sample_moons
    from realnvp.serialization import load_with_spec
    from realnvp.training import l2_penalty

    torch.set_num_threads(2)
    flow, _ = load_with_spec(model)
    flow.train()
    data = torch.as_tensor(sample_moons(30_000, 0.05, 0), dtype=torch.float32)
    optimizer = torch.optim.Adam(flow.parameters(), lr=1e-4)
    if mode == "late":
        torch.set_flush_denormal(True)
    rates = []
    for window in range(WINDOWS):
        start = time.perf_counter()
        for step in range(STEPS):
            batch = data[((window * STEPS + step) * 256) % 29_000:][:256]
            loss = -flow.standardized_log_prob(batch).mean() + 0.01 * l2_penalty(flow)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        rates.append(STEPS / (time.perf_counter() - start))
    return rates


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    parser.add_argument("--child", choices=["off", "late", "early"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.model, args.child)))
        return
    import torch

    from realnvp.files import write_text_atomically

    median = float(torch.cat([t.flatten() for t in _weights(args.model)]).abs().median())
    report = {"model": args.model, "median_abs_weight": median, "threads": 2,
              "steps_per_s_by_window": {}, "windows": f"{WINDOWS} x {STEPS} steps, batch 256"}
    for mode in ("off", "late", "early"):
        output = subprocess.run([sys.executable, __file__, "--model", args.model, "--child", mode],
                                capture_output=True, text=True, check=True).stdout
        report["steps_per_s_by_window"][mode] = json.loads(output.strip().splitlines()[-1])
    print(json.dumps(report, indent=2))
    write_text_atomically(args.out / "denormals.json", json.dumps(report, indent=2) + "\n")


def _weights(model: str) -> list:
    from realnvp.serialization import load

    return [p.detach() for p in load(model).parameters()]


if __name__ == "__main__":
    main()
