"""The seed architecture in realnvp and in four peer libraries, measured side by side.

    python benchmarks/peers.py --out benchmarks/results [--steps 2000] [--seed 0]

Every library gets the same standardised two-moons data (make_moons(30000,
noise=0.05), 80 % for training), the same seed, the same minibatch order,
the same training loop (Adam at 1e-4 with PyTorch's fused kernel, batch 256)
and the same process settings (``realnvp.runtime.configure_cpu``). Measured:
training samples/s at batch 256, ``log_prob`` and sampling samples/s at batch
10,000 (no gradients; medians of timings taken in rounds round-robin over
the libraries, several calls per library in each, before any training), the
test NLL (nats per point, standardised coordinates) after the same number of steps, each speed as a multiple of the
fastest peer's, and the share of this machine's float32 and bfloat16
matrix-multiply peak (measured in the same run by ``gemm_peak.py``) that each
path reaches. Writes
``peers.json`` and ``peers.md`` into ``--out`` and the table into
``benchmarks/README.md``. A benchmark, not a test: nothing here asserts speed.

Each peer is built with its own coupling layer, as close to the reference as
its API allows (noted in the table): two couplings, 4 x 256 ReLU networks.
realnvp runs three ways: float32; ``mixed_precision`` (the s and t networks in
bfloat16, everything else in float32); and that with ``torch.compile`` on the
training step.
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import re
import statistics
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn

from gemm_peak import measure as measure_gemm_peak
from realnvp.architecture import build_flow
from realnvp.datasets import sample_moons
from realnvp.files import write_text_atomically
from realnvp.flow import standard_normal_log_prob
from realnvp.nets import MLP
from realnvp.presets import PRESETS
from realnvp.runtime import configure_cpu
from realnvp.stacked_mlp import StackedMLP

WIDTH, DEPTH, BATCH, EVAL_BATCH = 256, 4, 256, 10_000


@dataclass
class Candidate:
    """One library's model: its parameters, ``log_prob (n, 2) -> (n,)`` and a
    sampler; ``compiled`` runs the training step through ``torch.compile``."""

    name: str
    note: str
    module: nn.Module
    log_prob: Callable[[Tensor], Tensor]
    sample: Callable[[int], Tensor]
    compiled: bool = False
    peer: bool = True


def _mlp(n_in: int, n_out: int, tanh: bool = False) -> nn.Module:
    net = MLP(n_in, n_out, WIDTH, DEPTH, glorot_init=True)
    return nn.Sequential(net, nn.Tanh()) if tanh else net


def _ours(mixed_precision: bool, compiled: bool, name: str, note: str) -> Candidate:
    spec = PRESETS["seed"].spec
    flow = build_flow(replace(spec, standardize=False, mixed_precision=mixed_precision))
    return Candidate(name, note, flow, flow.log_prob, flow.sample, compiled=compiled, peer=False)


def ours() -> Candidate:
    return _ours(False, False, "realnvp", "float32; masked couplings, separate s (tanh) and t networks")


def ours_mixed() -> Candidate:
    return _ours(True, False, "realnvp bf16", "the same, s and t networks in bfloat16 (mixed_precision)")


def ours_mixed_compiled() -> Candidate:
    return _ours(True, True, "realnvp bf16 compiled", "the same, training step through torch.compile "
                 "(log_prob and sample stay eager: faster here than compiled)")


def nflows() -> Candidate:
    from nflows.distributions import StandardNormal
    from nflows.flows import Flow as NFlow
    from nflows.transforms import AffineCouplingTransform, CompositeTransform

    class ShiftThenScale(nn.Module):
        """nflows reads ``[shift, unconstrained scale]`` from one output."""

        def __init__(self, n_in: int, n_out: int) -> None:
            super().__init__()
            self.t, self.s = _mlp(n_in, n_out // 2), _mlp(n_in, n_out // 2, tanh=True)

        def forward(self, x: Tensor, context: Tensor | None = None) -> Tensor:
            return torch.cat([self.t(x), self.s(x)], dim=1)

    layers = [AffineCouplingTransform(torch.tensor(mask), ShiftThenScale) for mask in ([1, 0], [0, 1])]
    flow = NFlow(CompositeTransform(layers), StandardNormal([2]))
    return Candidate("nflows", "AffineCouplingTransform (sigmoid scale), separate s and t networks",
                     flow, flow.log_prob, lambda n: flow.sample(n))


def normflows() -> Candidate:
    import normflows as nf

    flows = [nf.flows.MaskedAffineFlow(torch.tensor(mask, dtype=torch.float32), _mlp(2, 2), _mlp(2, 2, tanh=True))
             for mask in ([0.0, 1.0], [1.0, 0.0])]
    model = nf.NormalizingFlow(nf.distributions.DiagGaussian(2, trainable=False), flows)
    return Candidate("normflows", "MaskedAffineFlow, separate s (tanh) and t networks", model,
                     model.log_prob, lambda n: model.sample(n)[0])


def zuko() -> Candidate:
    import zuko as zk

    flow = zk.flows.RealNVP(2, transforms=2, hidden_features=[WIDTH] * DEPTH)
    return Candidate("zuko", "flows.RealNVP (one network for s and t)", flow,
                     lambda x: flow().log_prob(x), lambda n: flow().sample((n,)))


def freia() -> Candidate:
    import FrEIA.framework as ff
    import FrEIA.modules as fm

    inn = ff.SequenceINN(2)
    inn.append(fm.RNVPCouplingBlock, subnet_constructor=_mlp, clamp=1.0)

    def log_prob(x: Tensor) -> Tensor:
        z, log_jac = inn(x)
        return standard_normal_log_prob(z) + log_jac

    def sample(n: int) -> Tensor:
        return inn(torch.randn(n, 2), rev=True)[0]

    return Candidate("FrEIA", "RNVPCouplingBlock (both couplings, 4 networks, atan clamp)", inn, log_prob, sample)


#: In the order of the runs: what torch.compile leaves behind in the process
#: (its worker pool, the allocator's state) slows the eager libraries run after
#: it, so the compiled candidate goes last.
BUILDERS: dict[str, Callable[[], Candidate]] = {
    "nflows": nflows, "normflows": normflows, "zuko": zuko, "FrEIA": freia,
    "realnvp": ours, "realnvp-bf16": ours_mixed, "realnvp-bf16-compiled": ours_mixed_compiled,
}


def linear_weights(module: nn.Module) -> int:
    """Weights of every dense layer (a 2-D ``weight``, whatever the library's
    class, or the kernels of realnvp's stacked networks): each is one
    multiply-add per sample in a forward pass."""
    dense = sum(m.weight.numel() for m in module.modules()
                if isinstance(getattr(m, "weight", None), Tensor) and m.weight.dim() == 2)
    return dense + sum(w.numel() for m in module.modules() if isinstance(m, StackedMLP) for w in m.kernels())


def peak_fractions(row: dict, weights: int, peak: dict[str, dict[str, float]]) -> dict[str, float]:
    """Share of the float32 and bfloat16 GEMM peaks each path reaches: a forward
    pass costs ``2 x weights`` FLOPs per sample, training (forward and
    backward) about three times that."""
    flops = {"train": 6 * weights * row["train_samples_per_s"],
             "log_prob": 2 * weights * row["log_prob_samples_per_s"],
             "sample": 2 * weights * row["sample_samples_per_s"]}
    return {f"{path}_fraction_of_{dtype}_peak": rate / (peak[dtype]["peak"] * 1e9)
            for path, rate in flops.items() for dtype in ("float32", "bfloat16")}


def speedups(rows: list[dict], peers: set[str]) -> None:
    """Each row's samples/s as a multiple of the fastest peer's on the same path,
    and its test NLL minus realnvp's float32 run's."""
    reference = next(r for r in rows if r["library"] == "realnvp")["test_nll_standardized"] \
        if any(r["library"] == "realnvp" for r in rows) else math.nan
    for path in ("train", "log_prob", "sample"):
        fastest = max(r[f"{path}_samples_per_s"] for r in rows if r["library"] in peers)
        for r in rows:
            r[f"{path}_vs_fastest_peer"] = r[f"{path}_samples_per_s"] / fastest
    for r in rows:
        r["nll_minus_realnvp_float32"] = r["test_nll_standardized"] - reference


def train_and_test(candidate: Candidate, train: Tensor, test: Tensor, steps: int, seed: int) -> dict:
    """Train with Adam at 1e-4, batch 256, in a seeded order; samples/s after a
    short warm-up, and the test NLL after ``steps`` steps."""
    optimizer = torch.optim.Adam(candidate.module.parameters(), lr=1e-4, fused=True)
    generator = torch.Generator().manual_seed(seed)

    def loss_of(batch: Tensor) -> Tensor:
        return -candidate.log_prob(batch).mean()

    loss_of = torch.compile(loss_of) if candidate.compiled else loss_of
    order = torch.cat([torch.randperm(len(train), generator=generator) for _ in range(steps * BATCH // len(train) + 1)])
    warmup = min(50 if candidate.compiled else 20, steps // 10)  # compiling happens in the warm-up
    candidate.module.train()
    for step in range(steps):
        if step == warmup:
            start = time.perf_counter()
        loss = loss_of(train[order[step * BATCH:(step + 1) * BATCH]])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    train_rate = (steps - warmup) * BATCH / (time.perf_counter() - start)
    candidate.module.eval()
    with torch.no_grad():
        test_nll = -float(torch.cat([candidate.log_prob(block) for block in test.split(EVAL_BATCH)]).mean())
    return {
        "library": candidate.name, "note": candidate.note,
        "parameters": sum(p.numel() for p in candidate.module.parameters()),
        "train_samples_per_s": train_rate, "steps": steps, "test_nll_standardized": test_nll,
    }


#: Timed calls per library and path in each round, after one untimed call:
#: each library then runs in its own steady state (caches, allocator), not in
#: the state the previous library left.
CALLS_PER_ROUND = 3


@torch.no_grad()
def evaluation_throughput(candidates: list[Candidate], block: Tensor, rounds: int) -> dict[str, dict[str, float]]:
    """``log_prob`` and sampling samples/s at batch ``len(block)``, each the median
    of ``rounds x CALLS_PER_ROUND`` timings, the rounds taken round-robin over
    the libraries, so that none gains from running first or last."""
    timings: dict[str, dict[str, list[float]]] = {c.name: {"log_prob": [], "sample": []} for c in candidates}
    for _ in range(rounds):
        for candidate in candidates:
            for kind, call in (("log_prob", lambda: candidate.log_prob(block)),
                               ("sample", lambda: candidate.sample(len(block)))):
                call()
                for _ in range(CALLS_PER_ROUND):
                    start = time.perf_counter()
                    call()
                    timings[candidate.name][kind].append(time.perf_counter() - start)
    return {name: {f"{kind}_samples_per_s": len(block) / statistics.median(values) for kind, values in kinds.items()}
            for name, kinds in timings.items()}


def machine() -> str:
    try:
        model = re.search(r"Model name:\s*(.+)", subprocess.run(["lscpu"], capture_output=True, text=True).stdout)
        cpu = model.group(1).strip() if model else platform.processor()
    except OSError:
        cpu = platform.processor()
    return f"{cpu}; {torch.get_num_threads()} threads; torch {torch.__version__}; Python {platform.python_version()}"


def table(rows: list[dict], description: str, command: str) -> str:
    steps = rows[0]["steps"]
    lines = [
        f"Machine: {description}.", f"Command: `{command}`.", "",
        "| library | parameters | train samples/s (batch 256) | × fastest peer | log_prob samples/s (batch 10k) "
        "| × fastest peer | sample samples/s (batch 10k) | × fastest peer "
        f"| test NLL after {steps} steps | − realnvp float32 "
        "| % of fp32 / bf16 peak: training | log_prob | sample | layer used |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        def share(path: str) -> str:
            return (f"{100 * r[f'{path}_fraction_of_float32_peak']:.0f} / "
                    f"{100 * r[f'{path}_fraction_of_bfloat16_peak']:.0f}")
        lines.append(
            f"| {r['library']} | {r['parameters']:,} "
            f"| {r['train_samples_per_s']:,.0f} | {r['train_vs_fastest_peer']:.2f} "
            f"| {r['log_prob_samples_per_s']:,.0f} | {r['log_prob_vs_fastest_peer']:.2f} "
            f"| {r['sample_samples_per_s']:,.0f} | {r['sample_vs_fastest_peer']:.2f} "
            f"| {r['test_nll_standardized']:.4f} | {r['nll_minus_realnvp_float32']:+.4f} "
            f"| {share('train')} | {share('log_prob')} | {share('sample')} | {r['note']} |"
        )
    lines += ["", "NLL in nats per point, standardised coordinates, on 20,000 fresh test points. "
              "× fastest peer: samples/s over the fastest of nflows, normflows, zuko and FrEIA on that path. "
              "Share of peak: FLOPs per sample (2 per dense weight forward, 6 for training) times samples/s, "
              "over the float32 and the bfloat16 GEMM peak measured in the same run (`gemm_peak.py`)."]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeats", type=int, default=15, help="round-robin rounds of the evaluation timings")
    parser.add_argument("--libraries", nargs="+", default=list(BUILDERS), choices=list(BUILDERS))
    args = parser.parse_args()

    settings = configure_cpu()
    data = torch.as_tensor(sample_moons(30_000, 0.05, args.seed), dtype=torch.float32)
    train = data[:24_000]
    mean, std = train.mean(0), train.std(0)
    test = (torch.as_tensor(sample_moons(20_000, 0.05, 999_999), dtype=torch.float32) - mean) / std
    train = (train - mean) / std
    candidates = []
    for name in sorted(args.libraries, key=list(BUILDERS).index):
        torch.manual_seed(args.seed)
        candidates.append(BUILDERS[name]())
    # evaluation speed does not depend on the weights' values: time it first,
    # before any training or compiling has changed the process
    throughput = evaluation_throughput(candidates, test[:EVAL_BATCH], args.repeats)
    rows = [train_and_test(candidate, train, test, args.steps, args.seed) for candidate in candidates]
    peak = measure_gemm_peak()
    for row, candidate in zip(rows, candidates):
        row.update(throughput[row["library"]])
        row.update(peak_fractions(row, linear_weights(candidate.module), peak))
    speedups(rows, {c.name for c in candidates if c.peer})
    for row in rows:
        print(json.dumps(row), flush=True)
    description = machine() + (f"; GEMM peak {peak['float32']['peak']:.0f} GFLOP/s float32, "
                               f"{peak['bfloat16']['peak']:.0f} bfloat16; "
                               f"flush subnormals {settings['flush_denormal']}, heap top pad {settings['heap_top_pad']}")
    command = f"python benchmarks/peers.py --steps {args.steps} --seed {args.seed}"
    write_text_atomically(args.out / "peers.json", json.dumps(
        {"machine": description, "command": command, "gemm_gflop_per_s": peak, "rows": rows}, indent=2) + "\n")
    markdown = table(rows, description, command)
    write_text_atomically(args.out / "peers.md", markdown)
    readme = Path(__file__).with_name("README.md")
    begin, end = "<!-- peers:begin -->", "<!-- peers:end -->"
    text = readme.read_text() if readme.exists() else f"{begin}\n{end}\n"
    text = re.sub(f"{begin}.*?{end}", lambda _: f"{begin}\n{markdown}{end}", text, flags=re.S)
    write_text_atomically(readme, text)


if __name__ == "__main__":
    np.seterr(all="ignore")
    main()
