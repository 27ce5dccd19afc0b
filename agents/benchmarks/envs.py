"""Environment speed: transitions per second of the single env, SyncVectorEnv and the native vector env
(``plastic bench envs``).

Random actions (drawn before timing). Each measurement runs at least ``min_steps`` transitions (B per vector step)
and at least one full episode plus its autoreset, so that reset costs count.
"""

from __future__ import annotations

import importlib.util
import math
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
    """Steps of one episode of ``env_id`` with its default arguments."""
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


def env_rates(env_id: str, batch_sizes: list[int], min_steps: int, seed: int = 0) -> dict[str, float]:
    """Transitions per second keyed "single", "sync B=...", "native B=..."."""
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
    """1234567 -> '1.23M', 93000 -> '93k'."""
    for scale, suffix in ((1e6, "M"), (1e3, "k")):
        if rate >= scale:
            return f"{rate / scale:.3g}{suffix}"
    return f"{rate:.3g}"


def markdown_table(results: dict[str, dict[str, float]], batch_sizes: list[int]) -> str:
    """The rates of ``env_rates`` per env id as a Markdown table."""
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
