"""End-to-end A2C training throughput and peak memory of every core on the maze, against the memory-bandwidth floor.

    python scripts/benchmark.py                                   # B=30,N=100 and B=256,N=256, every core, CPU
    python scripts/benchmark.py --configs 30x100 --cores retroactive --iterations 5 --threads 1
    python scripts/benchmark.py --device cuda --json runs/benchmark.json

One row per (core, batch x hidden, implementation); each runs in its own subprocess (so that its peak resident
memory is its own) and times whole A2C iterations of ``agents.a2c.A2CTrainer`` on Plastic/Maze-v0 (200-step
episodes, B of them in lock-step on the native vector env): acting, forward, backward and the Adam update.

Implementations:

* ``trainer``: ``A2CTrainer.train_iteration`` as it is: act, then replay. The episode is played without autograd
  through ``plastic_core.fused.record`` (plastic cores: in-place trace updates, fused kernels), then
  ``tape.replay()`` gives the same hs with one autograd node whose backward recomputes traces from checkpoints
  (``ReplayTape`` otherwise: the LSTM acts without autograd, then one ``core.unroll``; the rnn keeps its per-step
  graph).
* ``stepwise``: the same trainer with ``core.fused = False``: one autograd step of the optimised core per env step
  (the trainer before the fused path).
* ``reference``: the trainer with the core's step replaced by the plain per-step transcription of its
  equations (``plastic_core.reference``): the straightforward PyTorch baseline.

Floor (plastic cores): the trace traffic of a step of BPTT that streams every step's trace and adjoint through
memory, 5 passes over each (B, N, N) trace (forward: read and write; backward: read the trace, read and write its
adjoint), divided by the memory bandwidth of a large tensor copy measured in the same process (before and after the
run; the larger); "of floor" = floor time / measured time per batch step. The native backward keeps each batch
element's traces and adjoints in cache (only the forward's 2 passes reach memory), so the share may pass 100%.
Peak memory: the subprocess's peak resident set during training (VmHWM).
``--memory-limit`` caps each subprocess's address space, so a configuration that does not fit fails instead of
exhausting the machine.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

import torch

import agents.a2c as a2c
from agents.cli.benchmark_core import parse_config
from agents.config import make_config
from plastic_core.base import State
from plastic_core.fused import PlasticTape
from plastic_core.plastic_rnn import HebbianRNN
from plastic_core.reference import reference_unroll

ENV_ID = "Plastic/Maze-v0"
CORES = ("rnn", "lstm", "plastic", "modulated", "retroactive")
PLASTIC_CORES = ("plastic", "modulated", "retroactive")
FLOOR_PASSES = 5  # per trace and step: forward read + write, backward read, adjoint read + write


def reference_step(core: HebbianRNN):
    """A ``core.step`` replacement running the plain transcription one step at a time (with autograd)."""

    def step(x: torch.Tensor, state: State) -> tuple[torch.Tensor, State]:
        hs, state = reference_unroll(core, x.unsqueeze(0), state)
        return hs[0], state

    return step


# -- measurement (in the worker subprocess) ----------------------------------------------------------------------
def copy_bandwidth(device: torch.device, mib: int = 512, repeats: int = 5) -> float:
    """Bytes per second of a large tensor copy (read + write), best of ``repeats``."""
    src = torch.ones(mib * 2**18, device=device)
    dst = torch.empty_like(src)
    best = float("inf")
    for _ in range(repeats + 1):
        sync(device)
        start = time.perf_counter()
        dst.copy_(src)
        sync(device)
        best = min(best, time.perf_counter() - start)
    return 2 * src.numel() * src.element_size() / best


def reset_peak_rss() -> None:
    """Start the process's peak resident set (VmHWM) afresh where Linux allows it (after the bandwidth test)."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        pass


def peak_rss_mib() -> float:
    """Peak resident memory of this process: VmHWM (resettable) where available, else ru_maxrss."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def trace_count(core_name: str) -> int:
    return {"plastic": 1, "modulated": 1, "retroactive": 2}.get(core_name, 0)


def measure(core: str, batch: int, hidden: int, impl: str, args: argparse.Namespace) -> dict:
    device = torch.device(args.device)
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    bandwidth = copy_bandwidth(device)  # before and after the run (the larger: the conservative floor)
    reset_peak_rss()
    config = make_config(ENV_ID, core, episodes=batch * (args.warmup + args.iterations), hidden=hidden, batch=batch,
                         seed=0, device=args.device)
    trainer = a2c.A2CTrainer(config)
    if impl == "stepwise":
        trainer.model.core.fused = False  # the per-step autograd graph of the optimised step
    elif impl == "reference":
        trainer.model.core.step = reference_step(trainer.model.core)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    rows = [trainer.train_iteration(i) for i in range(args.warmup)]
    sync(device)
    start = time.perf_counter()
    rows += [trainer.train_iteration(args.warmup + i) for i in range(args.iterations)]
    sync(device)
    elapsed = time.perf_counter() - start
    steps = sum(int(row["episode_length"]) for row in rows[args.warmup:])  # time steps of the whole batch
    peak_rss = peak_rss_mib()
    bandwidth = max(bandwidth, copy_bandwidth(device))
    result = {
        "core": core, "impl": impl, "batch": batch, "hidden": hidden, "threads": torch.get_num_threads(),
        "env_steps_per_s": batch * steps / elapsed, "ms_per_step": 1000 * elapsed / steps,
        "peak_rss_mib": peak_rss,
        "bandwidth_gb_s": bandwidth / 1e9, "first_loss": rows[0]["loss"], "first_reward": rows[0]["reward_mean"],
        "backend": PlasticTape(trainer.model.core, trainer.model.initial_state(1)).backend
        if isinstance(trainer.model.core, HebbianRNN) else None,
    }
    if device.type == "cuda":
        result["peak_cuda_mib"] = torch.cuda.max_memory_allocated(device) / 2**20
    traces = trace_count(core)
    if traces:
        itemsize = torch.empty((), dtype=torch.get_default_dtype()).element_size()
        floor_bytes = FLOOR_PASSES * traces * batch * hidden * hidden * itemsize
        result["floor_ms_per_step"] = 1000 * floor_bytes / bandwidth
        result["of_floor"] = result["floor_ms_per_step"] / result["ms_per_step"]
    return result


# -- driver --------------------------------------------------------------------------------------------------------
def default_impls(core: str, batch: int, hidden: int) -> list[str]:
    """Which implementations a default run measures for one core and size."""
    if core not in PLASTIC_CORES:
        return ["trainer"]
    small = batch * hidden * hidden <= 30 * 100 * 100
    # the per-step graph of a plastic core keeps one (B, N, N) tensor per op and step: tens of GiB at 256x256
    return ["reference", "stepwise", "trainer"] if small else ["trainer"]


def run_isolated(core: str, batch: int, hidden: int, impl: str, args: argparse.Namespace) -> dict | str:
    command = [sys.executable, __file__, "--worker", core, f"{batch}x{hidden}", impl, "--device", args.device,
               "--iterations", str(args.iterations), "--warmup", str(args.warmup), "--threads", str(args.threads)]

    def limit_memory() -> None:
        if args.memory_limit > 0:
            cap = int(args.memory_limit * 2**30)
            resource.setrlimit(resource.RLIMIT_AS, (cap, cap))

    proc = subprocess.run(command, capture_output=True, text=True, preexec_fn=limit_memory)
    if proc.returncode != 0:
        if proc.returncode < 0:
            return f"killed (signal {-proc.returncode})"
        text = proc.stderr.strip()
        if "memory" in text.lower() and ("alloc" in text.lower() or "MemoryError" in text):
            return f"out of memory (> {args.memory_limit:g} GiB)"
        lines = text.splitlines() or [f"exit code {proc.returncode}"]
        return f"failed: {lines[-1][:100]}"
    return json.loads(proc.stdout.strip().splitlines()[-1])


def format_row(result: dict) -> str:
    floor = f"{result['floor_ms_per_step']:.1f}" if "floor_ms_per_step" in result else ""
    share = f"{100 * result['of_floor']:.0f}%" if "of_floor" in result else ""
    peak = result.get("peak_cuda_mib", result["peak_rss_mib"])
    return (f"| {result['core']} | {result['impl']} | {result['batch']} | {result['hidden']} | "
            f"{result['env_steps_per_s']:,.0f} | {result['ms_per_step']:.2f} | {peak:,.0f} | {floor} | {share} |")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--configs", type=parse_config, nargs="+", default=[(30, 100), (256, 256)], metavar="BxN",
                        help="batch x hidden sizes (default 30x100 256x256)")
    parser.add_argument("--cores", default=",".join(CORES), help="comma-separated core names (default: all five)")
    parser.add_argument("--impls", default=None,
                        help="comma-separated trainer,stepwise,reference (default: reference and stepwise only where "
                             "they fit, i.e. plastic cores at the small size)")
    parser.add_argument("--iterations", type=int, default=3, help="timed A2C iterations per row (default 3)")
    parser.add_argument("--warmup", type=int, default=1, help="untimed iterations first (default 1)")
    parser.add_argument("--device", default="cpu", help="torch device (default cpu)")
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    parser.add_argument("--memory-limit", type=float, default=20.0,
                        help="address-space cap per row in GiB (0: none; default 20)")
    parser.add_argument("--json", type=Path, default=None, help="also write the results to this JSON file")
    parser.add_argument("--worker", nargs=3, metavar=("CORE", "BxN", "IMPL"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.iterations <= 0 or args.warmup < 0:
        parser.error("--iterations must be positive and --warmup non-negative")

    if args.worker:
        core, size, impl = args.worker
        print(json.dumps(measure(core, *parse_config(size), impl, args)))
        return

    cores = [name.strip() for name in args.cores.split(",") if name.strip()]
    unknown = sorted(set(cores) - set(CORES))
    if unknown:
        parser.error(f"unknown cores {unknown}; expected some of {', '.join(CORES)}")
    impls = None if args.impls is None else [name.strip() for name in args.impls.split(",") if name.strip()]
    if impls is not None and set(impls) - {"trainer", "stepwise", "reference"}:
        parser.error("--impls takes trainer, stepwise and/or reference")
    where = (torch.cuda.get_device_name(args.device) if args.device.startswith("cuda")
             else f"{platform.processor() or platform.machine()}, {args.threads or torch.get_num_threads()} threads")
    load = f", load average {os.getloadavg()[0]:.1f}" if hasattr(os, "getloadavg") else ""
    print(f"A2C on {ENV_ID} (200-step episodes), {args.iterations} timed iterations after {args.warmup} warm-up, "
          f"{where}{load}\n")
    print("| core | impl | B | N | env steps/s | ms/step | peak memory (MiB) | floor ms/step | of floor |")
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    results = []
    for batch, hidden in args.configs:
        for core in cores:
            for impl in impls or default_impls(core, batch, hidden):
                if impl == "reference" and core not in PLASTIC_CORES:
                    continue
                result = run_isolated(core, batch, hidden, impl, args)
                if isinstance(result, str):
                    print(f"| {core} | {impl} | {batch} | {hidden} | {result} | | | | |", flush=True)
                    results.append({"core": core, "impl": impl, "batch": batch, "hidden": hidden, "error": result})
                    continue
                print(format_row(result), flush=True)
                results.append(result)
    bandwidths = [r["bandwidth_gb_s"] for r in results if "bandwidth_gb_s" in r]
    if bandwidths:
        print(f"\ncopy bandwidth measured per row: {min(bandwidths):.1f} to {max(bandwidths):.1f} GB/s; floor = "
              f"{FLOOR_PASSES} passes over each (B, N, N) trace per step / that bandwidth")
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    sys.exit(main())
