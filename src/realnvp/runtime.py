"""Process-wide settings that make PyTorch's CPU arithmetic fast, applied by
the ``realnvp`` command at start-up and available to library users.

Both change the whole process, so the library never applies them on import:
call :func:`configure_cpu` first thing in a program, before any parallel
work (the ``realnvp`` command does).
"""

from __future__ import annotations

import ctypes
import ctypes.util

import torch

_M_TOP_PAD = -2  # glibc's mallopt parameter: bytes kept at the heap's top
HEAP_TOP_PAD = 256 << 20


def configure_cpu() -> dict[str, bool]:
    """Flush subnormal floats and keep freed heap memory for reuse.

    * Subnormal floats: an L2 penalty drives weights towards ~1e-33, where
      products become subnormal and x86 CPUs slow several-fold. The flag is per
      thread and PyTorch's pool threads inherit it only if they start after it
      is set, hence first thing (benchmarks/denormals.py).
    * Heap padding: evaluating a flow on 10,000 rows allocates and frees
      activations of several MB per layer; glibc grows and shrinks the heap for
      each, and every new page faults. Keeping 256 MB of padding at the heap's
      top (``mallopt(M_TOP_PAD)``, what ``MALLOC_TOP_PAD_`` sets) made
      ``log_prob`` 2.6x faster at batch 10,000 (benchmarks/stacked_mlp.py).

    Returns which of the two took effect (heap padding needs glibc).
    """
    flushed = bool(torch.set_flush_denormal(True))
    padded = False
    libc_name = ctypes.util.find_library("c")
    if libc_name is not None:
        try:
            mallopt = ctypes.CDLL(libc_name).mallopt
        except (OSError, AttributeError):
            mallopt = None
        if mallopt is not None:
            padded = bool(mallopt(_M_TOP_PAD, HEAP_TOP_PAD))
    return {"flush_denormal": flushed, "heap_top_pad": padded}
