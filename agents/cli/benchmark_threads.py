"""Threads on a loaded machine: a plain user loop over ``core.unroll`` + backward at torch's default thread count
against ``torch.set_num_threads(1)``, with busy processes beside it.

    plastic bench threads                     # plastic core, x (200, 30, 17), N=100, 1 busy process
    plastic bench threads --busy 0 --repeats 5
    plastic bench threads --env OMP_WAIT_POLICY=active --threads default,1,2

Each measurement runs in its own subprocess (fresh thread pools), with ``--busy`` processes spinning
(``while True: pass``) beside it for its whole duration; settings are interleaved and repeated ``--repeats``
times, and the table gives the min/median/max seconds of one iteration (forward + backward) and the ratio of
each setting's median to the median at 1 thread. The measurement is ``agents.benchmarks.threads``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys

from agents.benchmarks.threads import time_unroll_beside_busy


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
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
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
            results[setting].append(time_unroll_beside_busy(
                args.busy, env, setting=setting, core=args.core, input_size=args.input, hidden=args.hidden,
                batch=args.batch, steps=args.steps, iters=args.iters, warmup=args.warmup))
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
