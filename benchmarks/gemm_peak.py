"""This machine's matrix-multiply peak, the yardstick for the flows' throughput.

    python benchmarks/gemm_peak.py --out benchmarks/results

Times square matrix products in float32 and bfloat16 at a large size (the
peak) and at 256 (the seed architecture's layer width, batch 256), and writes
FLOP/s (``2 n^3`` per product, median of the repeats) to ``gemm_peak.json``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import torch

from realnvp.files import write_text_atomically


def gemm_flops_per_second(dtype: torch.dtype, size: int, repeats: int = 7) -> float:
    """Median FLOP/s of ``size x size`` by ``size x size`` products in ``dtype``."""
    a = torch.randn(size, size).to(dtype)
    b = torch.randn(size, size).to(dtype)
    a @ b
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        a @ b
        times.append(time.perf_counter() - start)
    return 2 * size**3 / statistics.median(times)


def measure(large: int = 4096) -> dict[str, dict[str, float]]:
    """GFLOP/s for float32 and bfloat16 at ``large`` and at 256."""
    return {
        str(dtype).removeprefix("torch."): {
            f"{large}": gemm_flops_per_second(dtype, large) / 1e9,
            "256": gemm_flops_per_second(dtype, 256, repeats=201) / 1e9,
        }
        for dtype in (torch.float32, torch.bfloat16)
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    args = parser.parse_args()
    report = {"gflop_per_s": measure(), "threads": torch.get_num_threads(), "torch": torch.__version__}
    print(json.dumps(report, indent=2))
    write_text_atomically(args.out / "gemm_peak.json", json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
