"""Threads on a loaded machine: a plain user loop over ``core.unroll`` + backward at a given thread setting, with
busy processes beside it (``plastic bench threads``)."""

from __future__ import annotations

import statistics
import subprocess
import sys
import time
from collections.abc import Mapping

from agents.benchmarks.isolated import run_isolated


def time_unroll(setting: str = "default", core: str = "plastic", input_size: int = 17, hidden: int = 100,
                batch: int = 30, steps: int = 200, iters: int = 10, warmup: int = 2) -> dict:
    """Seconds of one iteration (``core.unroll`` + backward; the median of ``iters`` after ``warmup``) in this
    process, at ``setting`` threads ("default": torch's own count), and the thread counts the kernels used."""
    import torch

    from plastic_core import make_core, native

    if setting != "default":
        torch.set_num_threads(int(setting))
    torch.manual_seed(0)
    module = make_core(core, input_size=input_size, hidden_size=hidden)
    x = torch.randn(steps, batch, input_size)
    times = []
    for i in range(warmup + iters):
        start = time.perf_counter()
        hs, _ = module.unroll(x, module.initial_state(batch))
        hs.pow(2).mean().backward()
        if i >= warmup:
            times.append(time.perf_counter() - start)
    backend = "native" if native.load(x.dtype) is not None else "eager"
    return {"seconds": statistics.median(times), "torch_threads": torch.get_num_threads(), "backend": backend,
            "kernel_threads": native.threads(), "step_threads": native.step_threads(native.threads())}


def time_unroll_beside_busy(busy: int, env: Mapping[str, str] | None = None, **kwargs) -> dict:
    """``time_unroll(**kwargs)`` in a fresh process (fresh thread pools) while ``busy`` processes spin beside it;
    a RuntimeError if it fails."""
    spinners = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(busy)]
    try:
        result = run_isolated(f"{__name__}:time_unroll", kwargs, env=env)
    finally:
        for spinner in spinners:
            spinner.kill()
            spinner.wait()
    if isinstance(result, str):
        raise RuntimeError(f"the measurement at {kwargs.get('setting', 'default')!r} threads {result}")
    return result
