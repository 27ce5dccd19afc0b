"""Speed and peak memory of forward+backward through an unroll of every recurrent core; prints a Markdown table.

    python scripts/benchmark_core.py                        # B=30,N=100 and B=256,N=256, 200 steps, CPU
    python scripts/benchmark_core.py --device cuda --repeats 5
    python scripts/benchmark_core.py --configs 30x100 --cores plastic,retroactive --reference --threads 1

Each (core, config) runs in its own subprocess, so that peak memory is that run's alone: on CUDA
``torch.cuda.max_memory_allocated``; on CPU the growth of the process's peak resident set (``ru_maxrss``) from
just before the first unroll, which includes backward's temporaries and the allocator's slack. "saved for
backward" is exact: the distinct storages autograd keeps from one forward pass (for the plastic cores, one
(B, N, N) trace per step and per trace is the floor for backpropagation through time). "steps/s" counts
time steps of the whole batch per second, forward and backward together (loss: mean of h squared).
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time

import torch

from plastic_core import count_parameters, make_core
from plastic_core.reference import reference_unroll

DEFAULT_CORES = ("rnn", "lstm", "plastic", "modulated", "retroactive")
REFERENCE_CORES = ("plastic", "modulated", "retroactive")


def parse_config(text: str) -> tuple[int, int]:
    """'30x100' -> (batch 30, hidden 100)."""
    try:
        batch, hidden = (int(part) for part in text.lower().split("x"))
    except ValueError as err:
        raise argparse.ArgumentTypeError(f"config must look like BATCHxHIDDEN (e.g. 30x100), got {text!r}") from err
    if batch <= 0 or hidden <= 0:
        raise argparse.ArgumentTypeError(f"config sizes must be positive, got {text!r}")
    return batch, hidden


def peak_memory_mb(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def saved_for_backward_mb(fn) -> float:
    """Bytes of the distinct storages that autograd keeps for backward while ``fn`` runs (allocator-independent)."""
    storages: dict[int, int] = {}

    def pack(tensor: torch.Tensor) -> torch.Tensor:
        storage = tensor.untyped_storage()
        storages[storage.data_ptr()] = storage.nbytes()
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        fn()
    return sum(storages.values()) / 2**20


def measure(core_name: str, batch: int, hidden: int, args: argparse.Namespace) -> dict:
    """One timed configuration, in this process: steps/s and peak memory of forward+backward."""
    device = torch.device(args.device)
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    core = make_core(core_name, args.input_size, hidden).to(device)
    xs = torch.randn(args.steps, batch, args.input_size, device=device)
    unroll = (lambda x, s: reference_unroll(core, x, s)) if args.impl == "reference" else core.unroll

    def fwd_bwd() -> None:
        core.zero_grad(set_to_none=True)
        hs, _ = unroll(xs, core.initial_state(batch))
        hs.square().mean().backward()

    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
    base = 0.0 if device.type == "cuda" else peak_memory_mb(device)
    fwd_bwd()  # warm-up: allocator, kernels
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    start = time.perf_counter()
    for _ in range(args.repeats):
        fwd_bwd()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elapsed = time.perf_counter() - start
    peak = peak_memory_mb(device) - base
    return {
        "steps_per_s": args.steps * args.repeats / elapsed,
        "peak_mb": peak,
        "saved_mb": saved_for_backward_mb(lambda: unroll(xs, core.initial_state(batch))),
        "params": count_parameters(core),
    }


def run_isolated(core_name: str, batch: int, hidden: int, args: argparse.Namespace) -> dict | str:
    """``measure`` in a fresh subprocess; returns its result, or why it failed."""
    command = [
        sys.executable, __file__, "--worker", core_name, f"{batch}x{hidden}", "--device", args.device,
        "--steps", str(args.steps), "--repeats", str(args.repeats), "--input-size", str(args.input_size),
        "--threads", str(args.threads), "--impl", args.impl,
    ]
    proc = subprocess.run(command, capture_output=True, text=True)
    if proc.returncode != 0:
        lines = (proc.stderr.strip().splitlines() or [f"exit code {proc.returncode}"])
        if proc.returncode < 0:
            return f"killed (signal {-proc.returncode}, out of memory?)"
        return f"failed: {lines[-1][:80]}"
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cpu", help="torch device: cpu, cuda, cuda:1 ... (default cpu)")
    parser.add_argument("--steps", type=int, default=200, help="unroll length T (default 200)")
    parser.add_argument("--repeats", type=int, default=3, help="timed forward+backward passes after a warm-up")
    parser.add_argument("--cores", default=",".join(DEFAULT_CORES), help="comma-separated core names")
    parser.add_argument("--configs", type=parse_config, nargs="+", default=[(30, 100), (256, 256)],
                        metavar="BxN", help="batch x hidden sizes (default 30x100 256x256)")
    parser.add_argument("--input-size", type=int, default=17, help="input features (default 17, the maze)")
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    parser.add_argument("--reference", action="store_true",
                        help="also time the plain transcription (plastic_core.reference) of the plastic cores")
    parser.add_argument("--impl", choices=("core", "reference"), default="core", help=argparse.SUPPRESS)
    parser.add_argument("--worker", nargs=2, metavar=("CORE", "BxN"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    for flag in ("steps", "repeats", "input_size"):
        if getattr(args, flag) <= 0:
            parser.error(f"--{flag.replace('_', '-')} must be positive")

    if args.worker:  # child process: one measurement, printed as JSON
        batch, hidden = parse_config(args.worker[1])
        print(json.dumps(measure(args.worker[0], batch, hidden, args)))
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
            args.impl = impl
            result = run_isolated(name, batch, hidden, args)
            if isinstance(result, str):
                print(f"| {name} | {impl} | {batch} | {hidden} | | {result} | | | |", flush=True)
                continue
            rate = result["steps_per_s"]
            print(f"| {name} | {impl} | {batch} | {hidden} | {result['params']:,} | {rate:,.1f} | "
                  f"{1000 / rate:.2f} | {result['peak_mb']:,.0f} | {result['saved_mb']:,.0f} |", flush=True)


if __name__ == "__main__":
    sys.exit(main())
