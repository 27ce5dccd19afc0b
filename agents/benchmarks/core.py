"""Speed and peak memory of forward+backward through an unroll of a recurrent core (``plastic bench core``).

Peak memory: on CUDA ``torch.cuda.max_memory_allocated``; on CPU the growth of the process's peak resident set
(``ru_maxrss``) from just before the first unroll, which includes backward's temporaries and the allocator's
slack, so run each measurement in its own process (``isolated.run_isolated``). "saved for backward" is exact: the
distinct storages autograd keeps from one forward pass (for the plastic cores, one (B, N, N) trace per step and
per trace is the floor for backpropagation through time). Steps per second count time steps of the whole batch,
forward and backward together (loss: mean of h squared).
"""

from __future__ import annotations

import resource
import time
from collections.abc import Callable

import torch

from plastic_core import count_parameters, make_core
from plastic_core.reference import reference_unroll

CORES = ("rnn", "lstm", "plastic", "modulated", "retroactive")
REFERENCE_CORES = ("plastic", "modulated", "retroactive")  # the cores plastic_core.reference transcribes


def peak_memory_mib(device: torch.device) -> float:
    """Peak allocated CUDA memory, or this process's peak resident set on CPU (MiB)."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def saved_for_backward_mib(fn: Callable[[], object]) -> float:
    """MiB of the distinct storages that autograd keeps for backward while ``fn`` runs (allocator-independent)."""
    storages: dict[int, int] = {}

    def pack(tensor: torch.Tensor) -> torch.Tensor:
        storage = tensor.untyped_storage()
        storages[storage.data_ptr()] = storage.nbytes()
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        fn()
    return sum(storages.values()) / 2**20


def measure_core(core: str, batch: int, hidden: int, *, impl: str = "core", device: str = "cpu", steps: int = 200,
                 repeats: int = 3, input_size: int = 17, threads: int = 0) -> dict:
    """Time ``repeats`` forward+backward passes of a ``steps``-step unroll after one warm-up, in this process.

    ``impl``: ``"core"`` (the package's path) or ``"reference"`` (the plain per-step transcription);
    ``threads`` > 0 sets torch's thread count. Returns steps_per_s, peak_mb, saved_mb and params.
    """
    dev = torch.device(device)
    if threads > 0:
        torch.set_num_threads(threads)
    torch.manual_seed(0)
    module = make_core(core, input_size, hidden).to(dev)
    xs = torch.randn(steps, batch, input_size, device=dev)
    unroll = (lambda x, s: reference_unroll(module, x, s)) if impl == "reference" else module.unroll

    def fwd_bwd() -> None:
        module.zero_grad(set_to_none=True)
        hs, _ = unroll(xs, module.initial_state(batch))
        hs.square().mean().backward()

    if dev.type == "cuda":
        torch.cuda.synchronize(dev)
        torch.cuda.reset_peak_memory_stats(dev)
    base = 0.0 if dev.type == "cuda" else peak_memory_mib(dev)
    fwd_bwd()  # warm-up: allocator, kernels
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)
    start = time.perf_counter()
    for _ in range(repeats):
        fwd_bwd()
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)
    elapsed = time.perf_counter() - start
    return {
        "steps_per_s": steps * repeats / elapsed,
        "peak_mb": peak_memory_mib(dev) - base,
        "saved_mb": saved_for_backward_mib(lambda: unroll(xs, module.initial_state(batch))),
        "params": count_parameters(module),
    }
