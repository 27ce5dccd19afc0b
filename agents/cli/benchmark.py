"""End-to-end A2C training throughput and peak memory of every core on the maze, against the memory-bandwidth floor.

    plastic bench trainer                                   # B=30,N=100 and B=256,N=256, every core, CPU
    plastic bench trainer --configs 30x100 --cores retroactive --iterations 5 --threads 1
    plastic bench trainer --device cuda --json runs/benchmark.json

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
exhausting the machine. The measurement is ``agents.benchmarks.trainer.measure_trainer``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
from pathlib import Path

import torch

from agents.benchmarks.isolated import run_isolated
from agents.benchmarks.trainer import CORES, ENV_ID, FLOOR_PASSES, IMPLS, PLASTIC_CORES, default_impls
from agents.cli.benchmark_core import parse_config


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
    args = parser.parse_args(argv)
    if args.iterations <= 0 or args.warmup < 0:
        parser.error("--iterations must be positive and --warmup non-negative")

    cores = [name.strip() for name in args.cores.split(",") if name.strip()]
    unknown = sorted(set(cores) - set(CORES))
    if unknown:
        parser.error(f"unknown cores {unknown}; expected some of {', '.join(CORES)}")
    impls = None if args.impls is None else [name.strip() for name in args.impls.split(",") if name.strip()]
    if impls is not None and set(impls) - set(IMPLS):
        parser.error(f"--impls takes {', '.join(IMPLS)}")
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
                result = run_isolated("agents.benchmarks.trainer:measure_trainer", {
                    "core": core, "batch": batch, "hidden": hidden, "impl": impl, "device": args.device,
                    "threads": args.threads, "warmup": args.warmup, "iterations": args.iterations,
                }, memory_limit_gib=args.memory_limit)
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
