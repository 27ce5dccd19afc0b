"""Issue 26, old vs new, interleaved: end-to-end A2C updates per second per core at the paper's maze settings, and
the 256x256 core benchmark rows.

    .venv/bin/python results/bench_issue26.py --old /work/old26            # old = a checkout of c42d79e

Part 1: per core (backpropamine2019-maze preset: rnn N=139, plastic 101, modulated 100, retroactive 100; B=30,
T=200, 1 thread), each repeat runs old then new (then the next repeat new then old, so neither always goes first),
each in a fresh subprocess with that checkout first on PYTHONPATH: ``--warmup`` untimed updates, then ``--updates``
timed ones (``A2CTrainer.train_iteration``: act, replay, loss, backward, Adam). Printed: updates/s by wall clock
min / median / max over ``--repeats``, the median by the process's CPU time (less sensitive to other load), and
the worker's peak resident memory (VmHWM).
Part 2: ``plastic-benchmark-core --configs 256x256 --threads 1`` of each checkout (forward+backward of a 256x256
unroll, every core but the LSTM, ``--steps`` steps), old and new alternating, ``--core-repeats`` times.
Each checkout's native kernels are built first (their cache keys differ: each build hashes its own source).
About 5 minutes on a quiet 2-core machine with the defaults.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

NEW = Path(__file__).resolve().parent.parent
CORES = ("rnn", "plastic", "modulated", "retroactive")

WORKER = r"""
import json, sys, time
import torch
torch.set_num_threads(1)
import agents.a2c as a2c, plastic_core
from agents.config import make_config
core, warmup, updates = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
config = make_config(None, core, preset="backpropamine2019-maze", iterations=warmup + updates, seed=0)
trainer = a2c.A2CTrainer(config)
for i in range(warmup):
    trainer.train_iteration(i)
wall, cpu = time.perf_counter(), time.process_time()
for i in range(updates):
    trainer.train_iteration(warmup + i)
wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
peak = next(int(line.split()[1]) / 1024 for line in open("/proc/self/status") if line.startswith("VmHWM:"))
print(json.dumps({"wall": updates / wall, "cpu": updates / cpu, "peak_mib": peak, "hidden": config.hidden,
                  "code": plastic_core.__file__}))
"""


def run(checkout: Path, args: list[str]) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(checkout))
    return subprocess.run([sys.executable, *args], cwd=checkout, env=env, capture_output=True, text=True, check=True)


def updates(checkout: Path, core: str, warmup: int, count: int) -> dict:
    result = json.loads(run(checkout, ["-c", WORKER, core, str(warmup), str(count)]).stdout.splitlines()[-1])
    if not result["code"].startswith(str(checkout)):
        raise RuntimeError(f"{checkout} ran the code of {result['code']}")
    return result


def core_rows(checkout: Path, steps: int) -> dict[str, str]:
    """core -> its 256x256 row of plastic-benchmark-core (steps/s, ms/step, peak MiB)."""
    out = run(checkout, ["-m", "agents.cli.benchmark_core", "--configs", "256x256", "--threads", "1", "--steps",
                         str(steps), "--repeats", "1", "--cores", "rnn,plastic,modulated,retroactive"]).stdout
    rows = {}
    for line in out.splitlines():
        cells = [c.strip() for c in line.strip("|").split("|")]
        if len(cells) == 9 and cells[1] == "core":
            rows[cells[0]] = {"steps_per_s": float(cells[5].replace(",", "")), "peak": cells[7]}
    return rows


def spread(values: list[float]) -> str:
    return f"{min(values):.2f} / {statistics.median(values):.2f} / {max(values):.2f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--old", type=Path, required=True, help="a checkout of the old commit (c42d79e)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--updates", type=int, default=20)
    parser.add_argument("--steps", type=int, default=50, help="unroll length of the 256x256 core rows")
    parser.add_argument("--core-repeats", type=int, default=2)
    args = parser.parse_args()
    versions = {"old": args.old.resolve(), "new": NEW}
    for checkout in versions.values():
        run(checkout, ["-m", "plastic_core.native"])  # build (or load) its kernels before timing

    results: dict[str, dict[str, list[dict]]] = {core: {"old": [], "new": []} for core in CORES}
    for repeat in range(args.repeats):
        order = ("old", "new") if repeat % 2 == 0 else ("new", "old")
        for core in CORES:
            for name in order:
                result = updates(versions[name], core, args.warmup, args.updates)
                results[core][name].append(result)
                print(f"repeat {repeat + 1} {core} {name}: {result['wall']:.2f} updates/s", file=sys.stderr,
                      flush=True)
    print(f"\nA2C updates/s at the backpropamine2019-maze settings (B=30, T=200, 1 thread), {args.updates} timed "
          f"updates after {args.warmup}, {args.repeats} repeats, load average now {os.getloadavg()[0]:.1f}\n")
    print("| core | N | old min / median / max | new min / median / max | new / old (median) | "
          "by CPU time: old / new median | peak MiB old / new |")
    print("| --- | ---: | --- | --- | ---: | --- | --- |")
    for core in CORES:
        old, new = results[core]["old"], results[core]["new"]
        ow, nw = [r["wall"] for r in old], [r["wall"] for r in new]
        oc, nc = statistics.median(r["cpu"] for r in old), statistics.median(r["cpu"] for r in new)
        print(f"| {core} | {new[0]['hidden']} | {spread(ow)} | {spread(nw)} | "
              f"{statistics.median(nw) / statistics.median(ow):.2f} | {oc:.2f} / {nc:.2f} | "
              f"{max(r['peak_mib'] for r in old):,.0f} / {max(r['peak_mib'] for r in new):,.0f} |", flush=True)

    rows: dict[str, list[dict]] = {"old": [], "new": []}
    for repeat in range(args.core_repeats):
        for name in (("old", "new") if repeat % 2 == 0 else ("new", "old")):
            rows[name].append(core_rows(versions[name], args.steps))
    print(f"\nplastic-benchmark-core --configs 256x256 --threads 1 --steps {args.steps}: forward+backward steps/s, "
          f"{args.core_repeats} repeats (min / max)\n")
    print("| core | old steps/s | new steps/s | new / old (best) | peak MiB old / new |")
    print("| --- | --- | --- | ---: | --- |")
    for core in CORES:
        o = [r[core]["steps_per_s"] for r in rows["old"]]
        n = [r[core]["steps_per_s"] for r in rows["new"]]
        print(f"| {core} | {min(o):,.1f} / {max(o):,.1f} | {min(n):,.1f} / {max(n):,.1f} | {max(n) / max(o):.2f} | "
              f"{rows['old'][-1][core]['peak']} / {rows['new'][-1][core]['peak']} |")


if __name__ == "__main__":
    main()
