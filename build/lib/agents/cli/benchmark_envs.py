"""Environment speed: transitions per second of the single env, SyncVectorEnv and the native vector env.

    python scripts/benchmark_envs.py                       # every RL env, B = 30 and 1024
    python scripts/benchmark_envs.py --envs Plastic/Maze-v0 --steps 50000 --batch-sizes 30 1024

Random actions (drawn before timing). Each measurement runs at least ``--steps`` transitions (B per vector step)
and at least one full episode plus its autoreset, so that reset costs count. Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import importlib.util
import math
import platform
import sys
import time
from collections.abc import Callable

import gymnasium as gym
import numpy as np

import envs


def available_rl_envs() -> list[str]:
    """The RL env ids whose module exists."""
    modules = {env_id: gym.spec(env_id).entry_point.split(":")[0] for env_id in envs.RL_ENV_IDS}
    return [env_id for env_id, module in modules.items() if importlib.util.find_spec(module)]


def episode_length(env_id: str) -> int:
    env = gym.make(env_id)
    env.reset(seed=0)
    t = 1
    while not env.step(0)[3]:
        t += 1
    return t


def time_single(env_id: str, n_steps: int, seed: int) -> float:
    """Transitions per second of one ``gym.make`` env, resetting at truncation."""
    env = gym.make(env_id)
    env.reset(seed=seed)
    actions = np.random.default_rng(seed).integers(env.action_space.n, size=n_steps).tolist()
    start = time.perf_counter()
    for action in actions:
        _, _, terminated, truncated, _ = env.step(action)
        if terminated or truncated:
            env.reset()
    return n_steps / (time.perf_counter() - start)


def time_vector(make: Callable[[], gym.vector.VectorEnv], n_calls: int, seed: int) -> float:
    """Transitions per second of a vector env over ``n_calls`` steps (autoreset included)."""
    vec = make()
    vec.reset(seed=seed)
    actions = np.random.default_rng(seed).integers(vec.single_action_space.n, size=(n_calls, vec.num_envs))
    start = time.perf_counter()
    for batch in actions:
        vec.step(batch)
    rate = n_calls * vec.num_envs / (time.perf_counter() - start)
    vec.close()
    return rate


def benchmark(env_id: str, batch_sizes: list[int], min_steps: int, seed: int = 0) -> dict[str, float]:
    """Rates keyed "single", "sync B=...", "native B=..."."""
    T = episode_length(env_id)
    rates = {"single": time_single(env_id, max(min_steps, T + 1), seed)}
    for B in batch_sizes:
        n_calls = max(math.ceil(min_steps / B), T + 1)
        for mode, label in (("sync", "sync"), ("vector_entry_point", "native")):
            rates[f"{label} B={B}"] = time_vector(
                lambda mode=mode, B=B: gym.make_vec(env_id, num_envs=B, vectorization_mode=mode), n_calls, seed
            )
    return rates


def human(rate: float) -> str:
    for scale, suffix in ((1e6, "M"), (1e3, "k")):
        if rate >= scale:
            return f"{rate / scale:.3g}{suffix}"
    return f"{rate:.3g}"


def markdown_table(results: dict[str, dict[str, float]], batch_sizes: list[int]) -> str:
    header = ["env", "single"]
    for B in batch_sizes:
        header += [f"Sync B={B}", f"native B={B}", f"native / Sync B={B}"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for env_id, rates in results.items():
        row = [f"`{env_id}`", human(rates["single"])]
        for B in batch_sizes:
            sync, native = rates[f"sync B={B}"], rates[f"native B={B}"]
            row += [human(sync), human(native), f"{native / sync:.0f}x"]
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--envs", nargs="+", default=None, help="env ids (default: every RL env)")
    parser.add_argument("--steps", type=int, default=200_000, help="minimum transitions per measurement")
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[30, 1024])
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    env_ids = args.envs or available_rl_envs()
    unknown = [env_id for env_id in env_ids if env_id not in gym.registry]
    if unknown:
        parser.error(f"unknown env ids {unknown}; registered: {list(envs.RL_ENV_IDS)}")
    if args.steps < 1 or any(B < 1 for B in args.batch_sizes):
        parser.error("--steps and --batch-sizes must be positive")

    results = {env_id: benchmark(env_id, args.batch_sizes, args.steps, args.seed) for env_id in env_ids}
    print(
        f"Transitions per second (random actions; {platform.processor() or platform.machine()}, "
        f"Python {platform.python_version()}, NumPy {np.__version__}, Gymnasium {gym.__version__}).\n"
    )
    print(markdown_table(results, args.batch_sizes))
    return 0


if __name__ == "__main__":
    sys.exit(main())
