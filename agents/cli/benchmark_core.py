"""Speed and peak memory of forward+backward through an unroll of every recurrent core; prints a Markdown table.

    plastic bench core                        # B=30,N=100 and B=256,N=256, 200 steps, CPU
    plastic bench core --device cuda --repeats 5
    plastic bench core --configs 30x100 --cores plastic,retroactive --reference --threads 1
    plastic bench core --roofline             # this CPU's roofs and every native kernel against them

Each (core, config) runs in its own subprocess, so that peak memory is that run's alone: on CUDA
``torch.cuda.max_memory_allocated``; on CPU the growth of the process's peak resident set (``ru_maxrss``) from
just before the first unroll, which includes backward's temporaries and the allocator's slack. "saved for
backward" is exact: the distinct storages autograd keeps from one forward pass (for the plastic cores, one
(B, N, N) trace per step and per trace is the floor for backpropagation through time). "steps/s" counts
time steps of the whole batch per second, forward and backward together (loss: mean of h squared).
The measurement is ``agents.benchmarks.core.measure_core``.

``--roofline`` measures this CPU's float32 peak and cache/DRAM copy bandwidths on one thread, then each native
kernel (forward step, trace update, backward sequence; every rule) at ``--configs`` against them
(``plastic_core.roofline``: what is counted and how); ``--steps`` is then the backward's tape length (default 16).
"""

from __future__ import annotations

import argparse
import sys

import torch

from agents.benchmarks.core import CORES, REFERENCE_CORES
from agents.benchmarks.isolated import run_isolated
from plastic_core import make_core, roofline


def parse_config(text: str) -> tuple[int, int]:
    """argparse type: '30x100' -> (batch 30, hidden 100)."""
    try:
        batch, hidden = (int(part) for part in text.lower().split("x"))
    except ValueError as err:
        raise argparse.ArgumentTypeError(f"config must look like BATCHxHIDDEN (e.g. 30x100), got {text!r}") from err
    if batch <= 0 or hidden <= 0:
        raise argparse.ArgumentTypeError(f"config sizes must be positive, got {text!r}")
    return batch, hidden


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cpu", help="torch device: cpu, cuda, cuda:1 ... (default cpu)")
    parser.add_argument("--steps", type=int, default=None,
                        help="unroll length T (default 200; with --roofline the backward's tape, default 16)")
    parser.add_argument("--repeats", type=int, default=3, help="timed forward+backward passes after a warm-up")
    parser.add_argument("--cores", default=",".join(CORES), help="comma-separated core names")
    parser.add_argument("--configs", type=parse_config, nargs="+", default=[(30, 100), (256, 256)],
                        metavar="BxN", help="batch x hidden sizes (default 30x100 256x256)")
    parser.add_argument("--input-size", type=int, default=17, help="input features (default 17, the maze)")
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    parser.add_argument("--reference", action="store_true",
                        help="also time the plain transcription (plastic_core.reference) of the plastic cores")
    parser.add_argument("--roofline", action="store_true",
                        help="this CPU's roofs and every native kernel's share of them (one thread), not the unrolls")
    args = parser.parse_args(argv)
    if args.steps is None:
        args.steps = 16 if args.roofline else 200
    for flag in ("steps", "repeats", "input_size"):
        if getattr(args, flag) <= 0:
            parser.error(f"--{flag.replace('_', '-')} must be positive")

    if args.roofline:
        roofs = roofline.measure_roofs()
        print(f"this CPU, one thread (CPU time of this thread), float32\n\n{roofline.format_roofs(roofs)}\n")
        rows = roofline.measure_kernels(roofs, tuple(args.configs), args.steps)
        print(f"native kernels, alpha per connection, backward over {args.steps} steps\n\n{roofline.format_rows(rows)}")
        return

    cores = [name.strip() for name in args.cores.split(",") if name.strip()]
    for name in cores:
        make_core(name, 1, 1)  # unknown names fail here, before any timing
    runs = [(name, "core") for name in cores]
    if args.reference:
        runs += [(name, "reference") for name in cores if name in REFERENCE_CORES]

    device = torch.device(args.device)
    where = torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU, {args.threads or 'default'} threads"
    print(f"forward+backward over a {args.steps}-step unroll, input {args.input_size}, {where}, "
          f"{args.repeats} timed repeats\n")
    print("| core | impl | B | N | params | steps/s | ms/step | peak memory (MiB) | saved for backward (MiB) |")
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for batch, hidden in args.configs:
        for name, impl in runs:
            result = run_isolated("agents.benchmarks.core:measure_core", {
                "core": name, "batch": batch, "hidden": hidden, "impl": impl, "device": args.device,
                "steps": args.steps, "repeats": args.repeats, "input_size": args.input_size, "threads": args.threads})
            if isinstance(result, str):
                print(f"| {name} | {impl} | {batch} | {hidden} | | {result} | | | |", flush=True)
                continue
            rate = result["steps_per_s"]
            print(f"| {name} | {impl} | {batch} | {hidden} | {result['params']:,} | {rate:,.1f} | "
                  f"{1000 / rate:.2f} | {result['peak_mb']:,.0f} | {result['saved_mb']:,.0f} |", flush=True)


if __name__ == "__main__":
    sys.exit(main())
