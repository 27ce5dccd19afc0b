"""This CPU's roofs and where the native plastic kernels stand against them (``plastic-benchmark-core --roofline``).

Roofs, measured on one thread by microbenchmarks built into the kernels' library (``csrc/roofline.cpp``, the same
compiler flags): the float32 peak of a multiply then an add (what the kernels run: ``-ffp-contract=off`` keeps
them apart) and of a fused multiply-add (AVX2 FMA), and the bandwidth of a copy (memcpy, read + write bytes)
whose two buffers fill half of the L1d and L2, four times the L2 for the L3 (sizes from ``/sys``) and twice the
L3 for DRAM.

Kernels, per rule, at B x N (alpha per connection, float32, one thread): ``forward_step`` (h(t) and the trace
update, traces updated in place, as the tape does between checkpoints), ``update_step`` (the trace update alone,
what backward recomputes from a checkpoint) and ``backward_sequence`` (the whole BPTT of a ``steps``-long tape),
each timed by this thread's CPU time (``time.thread_time``: other processes on a shared machine do not count;
caches still are shared). Their floating-point operations and bytes are counted per trace entry (b, j, i) from
the expressions of ``csrc/kernels.cpp`` (``FLOPS`` and ``ARRAYS`` below: multiplies and adds, the clip's compares
not counted; each (N, N) array a sweep loads or stores counts its itemsize, w and alpha included: every batch
element of the backward reads them again, the forward once per 4 elements). Bytes are what the kernel's loads and
stores move, not only what reaches memory: a fraction of bandwidth above 100% means that part of them came from a
nearer level than the one the working set is charged to. The relevant bandwidth roof is that of the smallest level
holding the kernel's working set (``working_set``); the attainable rate is min(peak, intensity x that bandwidth)
(the roofline model), and "of roof" is the achieved FLOP/s over it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import torch

from plastic_core import make_core, native
from plastic_core.fused import PlasticTape

__all__ = ["KERNELS", "RULES", "KernelRow", "Roofs", "cache_sizes", "count", "format_roofs", "format_rows",
           "measure_kernels", "measure_roofs", "working_set"]

LEVELS = ("L1", "L2", "L3", "DRAM")
DEFAULT_CACHES = {"L1": 32 << 10, "L2": 1 << 20, "L3": 16 << 20}  # where /sys says nothing
KERNELS = ("forward step", "trace update", "backward sequence")
# (label, core, core kwargs): every rule the native kernels run, with alpha per connection
RULES = (("decay", "plastic", {"rule": "decay"}), ("oja", "plastic", {"rule": "oja"}),
         ("hebb", "plastic", {"rule": "hebb", "clip": 1.0}), ("modulated", "modulated", {"clip": 1.0}),
         ("retroactive", "retroactive", {"clip": 1.0}))

# Floating-point operations per trace entry (b, j, i), counted from csrc/kernels.cpp:
# "product": (w + alpha H) h_i(t-1) summed (4); "update": the rule's unclipped update (update_row; the retroactive
# rule's two traces: H + M E and (1 - eta) E + eta h_j h_i); "backward": one step of backward_elem (the reductions
# sweep and adjoint_row; its recomputed update counted in it, as written) without the recomputation of traces.
FLOPS = {
    "decay": {"product": 4, "update": 4, "backward": 2 * 4 + 17},
    "oja": {"product": 4, "update": 4, "backward": 2 * 4 + 17},
    "hebb": {"product": 4, "update": 3, "backward": 2 * 3 + 17},
    "modulated": {"product": 4, "update": 2, "backward": 19},
    "retroactive": {"product": 4, "update": 6, "backward": 26},
}
TILE = 4  # batch elements per sweep of forward_step (TILE in csrc/kernels.cpp): one load of w and alpha serves them
# (N, N) arrays loaded or stored per trace entry: the product loads Hebb, and w and alpha once per TILE elements; the
# update loads the trace(s) and stores them; a backward step loads Hebb, dL/dHebb (and E, dL/dE) in its reductions,
# then again with w, alpha and dL/dalpha, storing the adjoints and dL/dalpha.
PRODUCT = 1 + 2 / TILE
ARRAYS = {
    "decay": {"product": PRODUCT, "update": 2, "backward": 9},
    "oja": {"product": PRODUCT, "update": 2, "backward": 9},
    "hebb": {"product": PRODUCT, "update": 2, "backward": 9},
    "modulated": {"product": PRODUCT, "update": 2, "backward": 9},
    "retroactive": {"product": PRODUCT, "update": 4, "backward": 14},
}


@dataclass
class Roofs:
    """float32 FLOP/s of one core (multiply then add; fused multiply-add, None without FMA), and copy bytes/s
    and the capacity in bytes of each level (``LEVELS``)."""

    mul_add: float
    fma: float | None
    bandwidth: dict[str, float]
    capacity: dict[str, int]


@dataclass
class KernelRow:
    rule: str
    kernel: str
    batch: int
    hidden: int
    seconds: float  # per call (forward step, trace update) or per backward sequence
    flops: float  # per call
    bytes: float  # per call
    level: str  # where the working set fits
    gflops: float
    gbytes: float
    of_peak: float  # achieved FLOP/s / the mul+add peak
    of_bandwidth: float  # achieved bytes/s / the level's copy bandwidth
    of_roof: float  # achieved FLOP/s / min(peak, intensity x bandwidth)
    bound: str  # "compute" or the level whose bandwidth bounds the roof


# -- roofs ------------------------------------------------------------------------------------------------------
def cache_sizes(root: Path = Path("/sys/devices/system/cpu/cpu0/cache")) -> dict[str, int]:
    """Bytes of the L1 data, L2 and L3 caches of the first CPU (``DEFAULT_CACHES`` for what /sys does not say)."""
    sizes = dict(DEFAULT_CACHES)
    for index in sorted(root.glob("index*")):
        try:
            level = int((index / "level").read_text())
            kind = (index / "type").read_text().strip()
            text = (index / "size").read_text().strip().upper()
        except (OSError, ValueError):
            continue
        if kind == "Instruction" or not text or level not in (1, 2, 3):
            continue
        scale = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}.get(text[-1], 1)
        sizes[f"L{level}"] = int(text.rstrip("KMG")) * scale
    return sizes


def _timed(fn, seconds: float) -> float:
    """Thread CPU seconds of one ``fn()`` call, best of 3 (after one untimed call)."""
    fn()
    best = float("inf")
    for _ in range(3):
        start = time.thread_time()
        fn()
        best = min(best, time.thread_time() - start)
    return max(best, 1e-9)


def _ops():
    ops = native.load(torch.float32)
    if ops is None:
        raise RuntimeError("the roofline needs the native kernels (a C++ compiler; PLASTIC_CORE_NATIVE not 0)")
    return ops


def measure_roofs(seconds: float = 0.05, levels: dict[str, int] | None = None) -> Roofs:
    """This thread's roofs; each measurement runs about ``seconds`` (best of 3). ``levels``: bytes of the two copy
    buffers together per level (default: half of the L1 and L2, four times the L2 within the L3 (a core's share of
    a large shared L3 is less than all of it), twice the L3 for DRAM)."""
    ops = _ops()
    capacity = cache_sizes()
    capacity["DRAM"] = 0
    if levels is None:
        levels = {"L1": capacity["L1"] // 2, "L2": capacity["L2"] // 2,
                  "L3": min(4 * capacity["L2"], capacity["L3"] // 2), "DRAM": 2 * capacity["L3"]}
    peaks = {}
    for fused in (False, True):
        repeats = 1 << 16
        while True:  # calibrate: at least `seconds` a call
            start = time.thread_time()
            flops = ops.peak_flops(repeats, fused)
            if flops == 0 or time.thread_time() - start >= seconds / 4:
                break
            repeats *= 4
        peaks[fused] = flops / _timed(lambda r=repeats, f=fused: ops.peak_flops(r, f), seconds) if flops else None
    bandwidth = {}
    for level, total in levels.items():
        numel = max(total // 8, 64)  # two float32 buffers
        src, dst = torch.ones(numel), torch.empty(numel)
        repeats = max(1, int(seconds * 20e9 / (8 * numel)))  # ~seconds at 20 GB/s
        bandwidth[level] = 2 * 4 * numel * repeats / _timed(lambda s=src, d=dst, r=repeats: ops.copy_bytes(s, d, r),
                                                            seconds)
    return Roofs(peaks[False], peaks[True], bandwidth, capacity)


# -- kernels ----------------------------------------------------------------------------------------------------
def count(rule: str, kernel: str, batch: int, hidden: int, steps: int = 1, recomputed: int = 0,
          itemsize: int = 4) -> tuple[float, float]:
    """(FLOPs, bytes) of one call: a forward step or trace update, or a backward sequence of ``steps`` steps that
    recomputes ``recomputed`` trace updates."""
    entries = batch * hidden * hidden
    f, a = FLOPS[rule], ARRAYS[rule]
    if kernel == "forward step":
        return entries * (f["product"] + f["update"]), entries * itemsize * (a["product"] + a["update"])
    if kernel == "trace update":
        return entries * f["update"], entries * itemsize * a["update"]
    if kernel == "backward sequence":
        return (entries * (steps * f["backward"] + recomputed * f["update"]),
                entries * itemsize * (steps * a["backward"] + recomputed * a["update"]))
    raise ValueError(f"unknown kernel {kernel!r}; expected one of {KERNELS}")


def working_set(rule: str, kernel: str, batch: int, hidden: int, segment: int = 1, itemsize: int = 4) -> int:
    """Bytes a kernel sweeps again and again: a step's traces of the whole batch (and w, alpha); backward works on
    one batch element at a time: its traces and adjoints, w, alpha, dL/dalpha and its recomputed segment."""
    traces = 2 if rule == "retroactive" else 1
    matrix = hidden * hidden * itemsize
    if kernel == "backward sequence":
        return matrix * (2 * traces + 3 + traces * max(segment - 1, 0))
    return matrix * (batch * traces + 2)


def level_of(size: int, capacity: dict[str, int]) -> str:
    """The smallest level holding ``size`` bytes."""
    return next((level for level in LEVELS[:-1] if size <= capacity[level]), "DRAM")


def _row(rule: str, kernel: str, batch: int, hidden: int, seconds: float, flops: float, nbytes: float, size: int,
         roofs: Roofs) -> KernelRow:
    level = level_of(size, roofs.capacity)
    bandwidth = roofs.bandwidth[level]
    gflops, gbytes = flops / seconds, nbytes / seconds
    memory_roof = flops / nbytes * bandwidth
    roof = min(roofs.mul_add, memory_roof)
    return KernelRow(rule, kernel, batch, hidden, seconds, flops, nbytes, level, gflops / 1e9, gbytes / 1e9,
                     gflops / roofs.mul_add, gbytes / bandwidth, gflops / roof,
                     "compute" if roofs.mul_add <= memory_roof else level)


def measure_kernels(roofs: Roofs, configs: tuple[tuple[int, int], ...] = ((30, 100), (256, 256)), steps: int = 16,
                    rules: tuple[str, ...] | None = None, seconds: float = 0.05) -> list[KernelRow]:
    """One row per (B, N), rule and kernel (``KERNELS``), on one thread."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        rows = []
        for batch, hidden in configs:
            for label, core_name, kwargs in RULES:
                if rules is None or label in rules:
                    rows += _measure_rule(label, core_name, kwargs, batch, hidden, steps, roofs, seconds)
        return rows
    finally:
        torch.set_num_threads(threads)


def _measure_rule(label: str, core_name: str, kwargs: dict, batch: int, hidden: int, steps: int, roofs: Roofs,
                  seconds: float) -> list[KernelRow]:
    torch.manual_seed(0)
    core = make_core(core_name, 4, hidden, **kwargs)
    with torch.no_grad():  # a trained core's scale, so that traces and clips are busy
        core.alpha.uniform_(-0.1, 0.1)
    tape = PlasticTape(core, core.initial_state(batch), backend="native")
    drives = torch.randn(steps, batch, hidden)
    for d in drives:
        tape.step_drive(d)
    rec = tape.rec
    hs = torch.stack(tape.hs)
    m0s = torch.stack(tape.m0s) if rec.rule.modulated else None
    hebb, elig = (t.clone() for t in tape.cur) if rec.rule.eligibility else (tape.cur[0].clone(), None)
    h, hp = hs[-1], hs[-2]
    m0 = None if m0s is None else m0s[-1]
    eligible = rec.rule.eligibility

    def repeated(fn):  # fn, called often enough to take about `seconds`; and how often
        fn()
        start = time.thread_time()
        fn()
        calls = max(1, int(seconds / max(time.thread_time() - start, 1e-7)))
        return (lambda: [fn() for _ in range(calls)]), calls

    # forward and update in place (the tape's working buffer between checkpoints)
    forward, forward_calls = repeated(lambda: rec.advance(drives[-1], hp, hebb, elig, hebb, elig))
    update, update_calls = repeated(lambda: rec.update(h, hp, m0, hebb, elig, hebb, elig))
    segments = tape.segments()
    recomputed = sum(max(t1 - t0 - 1, 0) for t0, t1 in segments)  # backward_kernel recomputes all but the first

    def backward() -> None:
        g = torch.randn_like(hs)
        rec.backward_sequence(tape, hs, m0s, None, None, g, torch.zeros_like(h), torch.zeros_like(hebb),
                              torch.zeros_like(hebb) if eligible else None, hs.new_zeros(steps, batch, 1),
                              rec.new_grads(hs))

    rows = []
    for kernel, fn, per in (("forward step", forward, forward_calls), ("trace update", update, update_calls),
                            ("backward sequence", backward, 1)):
        elapsed = _timed(fn, seconds) / per
        flops, nbytes = count(label, kernel, batch, hidden, steps, recomputed)
        longest = max(t1 - t0 for t0, t1 in segments)
        size = working_set(label, kernel, batch, hidden, longest)
        rows.append(_row(label, kernel, batch, hidden, elapsed, flops, nbytes, size, roofs))
    return rows


# -- tables -----------------------------------------------------------------------------------------------------
def format_roofs(roofs: Roofs) -> str:
    """The roofs as a Markdown table."""
    lines = ["| roof | one core |", "| --- | ---: |",
             f"| float32 multiply + add (the kernels' instructions) | {roofs.mul_add / 1e9:.1f} GFLOP/s |"]
    if roofs.fma is not None:
        lines.append(f"| float32 FMA (AVX2) | {roofs.fma / 1e9:.1f} GFLOP/s |")
    for level in LEVELS:
        size = f", {roofs.capacity[level] >> 10:,} KiB" if roofs.capacity.get(level) else ""
        lines.append(f"| copy bandwidth {level}{size} | {roofs.bandwidth[level] / 1e9:.1f} GB/s |")
    return "\n".join(lines)


def format_rows(rows: list[KernelRow]) -> str:
    """The kernels' rows as a Markdown table."""
    lines = ["| rule | kernel | B x N | ms/call | GFLOP/s | of peak | GB/s | level | of bandwidth | bound | of roof |",
             "| --- | --- | --- | ---: | ---: | ---: | ---: | --- | ---: | --- | ---: |"]
    for r in rows:
        lines.append(f"| {r.rule} | {r.kernel} | {r.batch}x{r.hidden} | {1000 * r.seconds:.3f} | {r.gflops:.2f} | "
                     f"{100 * r.of_peak:.0f}% | {r.gbytes:.1f} | {r.level} | {100 * r.of_bandwidth:.0f}% | {r.bound} | "
                     f"{100 * r.of_roof:.0f}% |")
    return "\n".join(lines)
