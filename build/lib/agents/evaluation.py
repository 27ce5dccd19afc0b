"""Evaluating agents with frozen weights (the plastic state still changes within each episode), and baselines."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch

from agents.a2c import EVAL_STREAM, ActorCritic, make_vector_env, play_episodes, reset_seed

# EVAL_STREAM (1, from agents.a2c): evaluation episodes are drawn apart from the training ones (stream 0); the
# periodic evaluations of A2CTrainer.evaluate (--eval-every) use the same stream


def evaluate_agent(
    model: ActorCritic, env_id: str, episodes: int, env_kwargs: dict[str, Any] | None = None, seed: int = 0,
    batch: int = 30, greedy: bool = False,
) -> np.ndarray:
    """Total reward of each of ``episodes`` episodes (episodes,), played ``batch`` at a time without learning.

    Actions are sampled from the policy (``greedy``: its most likely action) with a generator seeded by ``seed``.
    """
    generator = torch.Generator().manual_seed(seed)
    was_training = model.training
    model.eval()
    totals = []
    try:
        with torch.no_grad(), _VectorEnvs(env_id, env_kwargs) as vector_envs:
            for index, size in enumerate(_batch_sizes(episodes, batch)):
                env = vector_envs.get(size)
                rollout = play_episodes(model, env, reset_seed(seed, index, EVAL_STREAM), generator, greedy)
                totals.append(rollout.totals)
    finally:
        model.train(was_training)
    return np.concatenate(totals)


def evaluate_random(
    env_id: str, episodes: int, env_kwargs: dict[str, Any] | None = None, seed: int = 0, batch: int = 30,
) -> np.ndarray:
    """Total reward (episodes,) of the uniformly random policy on the same episodes as :func:`evaluate_agent`."""
    generator = torch.Generator().manual_seed(seed)
    totals = []
    with _VectorEnvs(env_id, env_kwargs) as vector_envs:
        for index, size in enumerate(_batch_sizes(episodes, batch)):
            env = vector_envs.get(size)
            totals.append(play_random_episodes(env, reset_seed(seed, index, EVAL_STREAM), generator).sum(0))
    return np.concatenate(totals)


def play_random_episodes(env, seed: int, generator: torch.Generator) -> np.ndarray:
    """Rewards (T, B) of one batch of episodes under uniformly random actions."""
    env.reset(seed=seed)
    n_actions = int(env.single_action_space.n)
    rewards = []
    while True:
        actions = torch.randint(n_actions, (env.num_envs,), generator=generator).numpy()
        _, reward, terminated, truncated, _ = env.step(actions)
        rewards.append(np.asarray(reward, dtype=np.float64))
        if np.any(terminated | truncated):
            return np.stack(rewards)


def mean_confidence_interval(values: np.ndarray, level: float = 0.95) -> tuple[float, float, float]:
    """Mean of ``values`` and the (lo, hi) bounds of its Student-t confidence interval."""
    from scipy import stats

    values = np.asarray(values, dtype=np.float64)
    if values.size == 0:
        raise ValueError("no values to average")
    mean = float(values.mean())
    if values.size < 2 or values.std() == 0:
        return mean, mean, mean
    half = float(stats.t.ppf(0.5 + level / 2, values.size - 1) * values.std(ddof=1) / math.sqrt(values.size))
    return mean, mean - half, mean + half


class _VectorEnvs:
    """One vector env per batch size (at most two: the full batches and the rest), closed on exit."""

    def __init__(self, env_id: str, env_kwargs: dict[str, Any] | None) -> None:
        self.env_id, self.env_kwargs, self.envs = env_id, env_kwargs, {}

    def get(self, size: int):
        if size not in self.envs:
            self.envs[size] = make_vector_env(self.env_id, size, self.env_kwargs)
        return self.envs[size]

    def __enter__(self) -> _VectorEnvs:
        return self

    def __exit__(self, *exc) -> None:
        for env in self.envs.values():
            env.close()


def _batch_sizes(episodes: int, batch: int) -> list[int]:
    if episodes <= 0 or batch <= 0:
        raise ValueError(f"episodes and batch must be positive, got {episodes} and {batch}")
    full, rest = divmod(episodes, batch)
    return [batch] * full + ([rest] if rest else [])
