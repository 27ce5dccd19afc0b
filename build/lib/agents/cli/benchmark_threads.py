"""Threads on a loaded machine: a plain user loop over ``core.unroll`` + backward at torch's default thread count
against ``torch.set_num_threads(1)``, with busy processes beside it.

    python -m agents.cli.benchmark_threads                     # plastic core, x (200, 30, 17), N=100, 1 busy process
    python -m agents.cli.benchmark_threads --busy 0 --repeats 5
    python -m agents.cli.benchmark_threads --env OMP_WAIT_POLICY=active --threads default,1,2

Each measurement runs in its own subprocess (fresh thread pools), with ``--busy`` processes spinning
(``while True: pass``) beside it for its whole duration; settings are interleaved and repeated ``--repeats``
times, and the table gives the min/median/max seconds of one iteration (forward + backward) and the ratio of
each setting's median to the median at 1 thread.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time


def worker(args: argparse.Namespace) -> int:
    """One measurement in this process: print the seconds of one iteration (the median of ``--iters``) as JSON."""
    import torch

    from plastic_core import make_core, native

    if args.worker != "default":
        torch.set_num_threads(int(args.worker))
    torch.manual_seed(0)
    core = make_core(args.core, input_size=args.input, hidden_size=args.hidden)
    x = torch.randn(args.steps, args.batch, args.input)
    times = []
    for i in range(args.warmup + args.iters):
        start = time.perf_counter()
        state = core.initial_state(args.batch)
        hs, _ = core.unroll(x, state)
        hs.pow(2).mean().backward()
        if i >= args.warmup:
            times.append(time.perf_counter() - start)
    backend = "native" if native.load(x.dtype) is not None else "eager"
    print(json.dumps({"seconds": statistics.median(times), "torch_threads": torch.get_num_threads(),
                      "backend": backend, "kernel_threads": native.threads(),
                      "step_threads": native.step_threads(native.threads())}))
    return 0


def measure(setting: str, args: argparse.Namespace, env: dict[str, str]) -> dict:
    command = [sys.executable, "-m", "agents.cli.benchmark_threads", "--worker", setting, "--core", args.core,
               "--input", str(args.input), "--hidden", str(args.hidden), "--batch", str(args.batch),
               "--steps", str(args.steps), "--iters", str(args.iters), "--warmup", str(args.warmup)]
    busy = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(args.busy)]
    try:
        proc = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
    finally:
        for p in busy:
            p.kill()
            p.wait()
    if proc.returncode != 0:
        raise RuntimeError(f"worker {setting!r} failed ({proc.returncode}): {proc.stderr.strip()[-2000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--core", default="plastic")
    parser.add_argument("--input", type=int, default=17)
    parser.add_argument("--hidden", type=int, default=100)
    parser.add_argument("--batch", type=int, default=30)
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--iters", type=int, default=10, help="timed iterations per measurement (median kept)")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3, help="measurements per setting (min/median/max)")
    parser.add_argument("--busy", type=int, default=1, help="busy processes running beside each measurement")
    parser.add_argument("--threads", default="default,1",
                        help="comma-separated settings: 'default' (torch's own) or a torch.set_num_threads count")
    parser.add_argument("--env", action="append", default=[], metavar="KEY=VALUE",
                        help="extra environment for the measured processes (repeatable)")
    parser.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.worker is not None:
        return worker(args)
    env = dict(os.environ)
    for item in args.env:
        key, sep, value = item.partition("=")
        if not sep:
            raise SystemExit(f"--env needs KEY=VALUE, got {item!r}")
        env[key] = value
    settings = [s.strip() for s in args.threads.split(",") if s.strip()]
    results: dict[str, list[dict]] = {s: [] for s in settings}
    load_before = os.getloadavg()[0]
    for _ in range(args.repeats):
        for setting in settings:  # interleaved, so that a drift in the machine's load hits every setting alike
            results[setting].append(measure(setting, args, env))
    base = statistics.median(r["seconds"] for r in results["1"]) if "1" in results else None
    print(f"{args.core}: x ({args.steps}, {args.batch}, {args.input}), hidden {args.hidden}, unroll + backward; "
          f"{args.busy} busy process(es); {args.repeats} x median of {args.iters} iterations; "
          f"os.cpu_count() {os.cpu_count()}; 1-min load average {load_before:.2f} before, "
          f"{os.getloadavg()[0]:.2f} after" + (f"; env {' '.join(args.env)}" if args.env else ""))
    print("| threads | torch threads | backend | kernel threads (backward / per step, last) | min s | median s | max s "
          "| median / 1 thread |")
    print("|---|---|---|---|---|---|---|---|")
    for setting, runs in results.items():
        secs = sorted(r["seconds"] for r in runs)
        ratio = f"{statistics.median(secs) / base:.2f}" if base else "-"
        steps = ",".join(str(r["step_threads"]) for r in runs)
        print(f"| {setting} | {runs[0]['torch_threads']} | {runs[0]['backend']} | {runs[0]['kernel_threads']} / "
              f"{steps} | {secs[0]:.4f} | "
              f"{statistics.median(secs):.4f} | {secs[-1]:.4f} | {ratio} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
