"""End-to-end A2C training throughput and peak memory of a core on the maze, against the memory-bandwidth floor
(``plastic bench trainer``).

``measure_trainer`` times whole iterations of ``agents.a2c.A2CTrainer`` on Plastic/Maze-v0 (200-step episodes,
B of them in lock-step on the native vector env): acting, forward, backward and the Adam update. Implementations:

* ``trainer``: ``A2CTrainer.train_iteration`` as it is: act, then replay (``plastic_core.fused``).
* ``stepwise``: the same trainer with ``core.fused = False``: one autograd step of the optimised core per env step.
* ``reference``: the trainer with the core's step replaced by the plain per-step transcription of its equations
  (``plastic_core.reference``): the straightforward PyTorch baseline.

Floor (plastic cores): the trace traffic of a step of BPTT that streams every step's trace and adjoint through
memory, ``FLOOR_PASSES`` passes over each (B, N, N) trace, divided by the bandwidth of a large tensor copy
measured in the same process (before and after the run; the larger). Peak memory is the process's peak resident
set during training (VmHWM), so run each measurement in its own process (``isolated.run_isolated``).
"""

from __future__ import annotations

import resource
import time
from collections.abc import Callable
from pathlib import Path

import torch

import agents.a2c as a2c
from agents.config import make_config
from plastic_core.base import State
from plastic_core.fused import PlasticTape
from plastic_core.plastic_rnn import HebbianRNN
from plastic_core.reference import reference_unroll

ENV_ID = "Plastic/Maze-v0"
CORES = ("rnn", "lstm", "plastic", "modulated", "retroactive")
PLASTIC_CORES = ("plastic", "modulated", "retroactive")
IMPLS = ("trainer", "stepwise", "reference")
FLOOR_PASSES = 5  # per trace and step: forward read + write, backward read, adjoint read + write


def reference_step(core: HebbianRNN) -> Callable[[torch.Tensor, State], tuple[torch.Tensor, State]]:
    """A ``core.step`` replacement running the plain transcription one step at a time (with autograd)."""

    def step(x: torch.Tensor, state: State) -> tuple[torch.Tensor, State]:
        hs, state = reference_unroll(core, x.unsqueeze(0), state)
        return hs[0], state

    return step


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


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


def trace_count(core: str) -> int:
    """(B, N, N) traces a core keeps per step: the Hebbian trace, and the eligibility trace of ``retroactive``."""
    return {"plastic": 1, "modulated": 1, "retroactive": 2}.get(core, 0)


def default_impls(core: str, batch: int, hidden: int) -> list[str]:
    """Which implementations a default run measures for one core and size."""
    if core not in PLASTIC_CORES:
        return ["trainer"]
    small = batch * hidden * hidden <= 30 * 100 * 100
    # the per-step graph of a plastic core keeps one (B, N, N) tensor per op and step: tens of GiB at 256x256
    return ["reference", "stepwise", "trainer"] if small else ["trainer"]


def measure_trainer(core: str, batch: int, hidden: int, impl: str = "trainer", *, device: str = "cpu",
                    threads: int = 0, warmup: int = 1, iterations: int = 3) -> dict:
    """Env steps per second, ms per batch step, peak memory and share of the floor of ``iterations`` timed A2C
    iterations after ``warmup`` untimed ones, in this process (``threads`` > 0 sets torch's thread count)."""
    if impl not in IMPLS:
        raise ValueError(f"unknown implementation {impl!r}; expected one of {', '.join(IMPLS)}")
    dev = torch.device(device)
    if threads > 0:
        torch.set_num_threads(threads)
    bandwidth = copy_bandwidth(dev)  # before and after the run (the larger: the conservative floor)
    reset_peak_rss()
    config = make_config(ENV_ID, core, episodes=batch * (warmup + iterations), hidden=hidden, batch=batch, seed=0,
                         device=device)
    trainer = a2c.A2CTrainer(config)
    if impl == "stepwise":
        trainer.model.core.fused = False  # the per-step autograd graph of the optimised step
    elif impl == "reference":
        trainer.model.core.step = reference_step(trainer.model.core)
    if dev.type == "cuda":
        torch.cuda.reset_peak_memory_stats(dev)
    rows = [trainer.train_iteration(i) for i in range(warmup)]
    sync(dev)
    start = time.perf_counter()
    rows += [trainer.train_iteration(warmup + i) for i in range(iterations)]
    sync(dev)
    elapsed = time.perf_counter() - start
    steps = sum(int(row["episode_length"]) for row in rows[warmup:])  # time steps of the whole batch
    peak_rss = peak_rss_mib()
    bandwidth = max(bandwidth, copy_bandwidth(dev))
    result = {
        "core": core, "impl": impl, "batch": batch, "hidden": hidden, "threads": torch.get_num_threads(),
        "env_steps_per_s": batch * steps / elapsed, "ms_per_step": 1000 * elapsed / steps,
        "peak_rss_mib": peak_rss,
        "bandwidth_gb_s": bandwidth / 1e9, "first_loss": rows[0]["loss"], "first_reward": rows[0]["reward_mean"],
        "backend": PlasticTape(trainer.model.core, trainer.model.initial_state(1)).backend
        if isinstance(trainer.model.core, HebbianRNN) else None,
    }
    if dev.type == "cuda":
        result["peak_cuda_mib"] = torch.cuda.max_memory_allocated(dev) / 2**20
    traces = trace_count(core)
    if traces:
        itemsize = torch.empty((), dtype=torch.get_default_dtype()).element_size()
        floor_bytes = FLOOR_PASSES * traces * batch * hidden * hidden * itemsize
        result["floor_ms_per_step"] = 1000 * floor_bytes / bandwidth
        result["of_floor"] = result["floor_ms_per_step"] / result["ms_per_step"]
    return result
