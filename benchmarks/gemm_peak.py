"""This machine's matrix-multiply peak, the yardstick for the flows' throughput.

    python benchmarks/gemm_peak.py --out benchmarks/results

Times matrix products in float32 and bfloat16 at a large square size and at
the shapes of the seed architecture's layers (width 256, batch 256 and
10,000, one network and two side by side), and writes FLOP/s (``2 m k n``
per product, median of the repeats) and the best of them, the peak, to
``gemm_peak.json``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import torch

from realnvp.files import write_text_atomically


#: (batch of matrices, m, k, n): a large square product, the flows' layers at
#: batch 10,000 and at batch 256, and the batched product of two networks.
SHAPES = {
    "4096^3": (1, 4096, 4096, 4096),
    "10000x256x256": (1, 10_000, 256, 256),
    "256^3": (1, 256, 256, 256),
    "2x256^3 (bmm)": (2, 256, 256, 256),
}


def gemm_flops_per_second(dtype: torch.dtype, shape: tuple[int, int, int, int], seconds: float = 1.0) -> float:
    """Median FLOP/s of ``(m, k) @ (k, n)`` products (``batch`` of them at once) in ``dtype``."""
    batch, m, k, n = shape
    a = torch.randn(batch, m, k).to(dtype)
    b = torch.randn(batch, k, n).to(dtype)
    torch.bmm(a, b)
    times: list[float] = []
    deadline = time.perf_counter() + seconds
    while len(times) < 5 or time.perf_counter() < deadline:
        start = time.perf_counter()
        torch.bmm(a, b)
        times.append(time.perf_counter() - start)
    return 2 * batch * m * k * n / statistics.median(times)


def measure() -> dict[str, dict[str, float]]:
    """GFLOP/s for float32 and bfloat16 at each of :data:`SHAPES`, and their
    maximum, ``"peak"``."""
    report = {}
    for dtype in (torch.float32, torch.bfloat16):
        rates = {name: gemm_flops_per_second(dtype, shape) / 1e9 for name, shape in SHAPES.items()}
        report[str(dtype).removeprefix("torch.")] = {**rates, "peak": max(rates.values())}
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    args = parser.parse_args()
    report = {"gflop_per_s": measure(), "threads": torch.get_num_threads(), "torch": torch.__version__}
    print(json.dumps(report, indent=2))
    write_text_atomically(args.out / "gemm_peak.json", json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
