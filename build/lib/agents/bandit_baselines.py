"""Reference policies for the reversal bandit, run on B episodes in lock-step (numpy arrays, no loop over B).

Every policy has the same three methods: ``reset(num_envs, n_arms, rng)`` at the start of a batch of episodes,
``act(info) -> actions (B,)`` and ``update(actions, rewards)`` after each pull. Only the oracle reads ``info``
(its "arm_probabilities", the true probabilities of the coming pull); the others learn from their rewards.

- :class:`RandomPolicy`: uniform pulls (earns the mean probability, n/2 per episode with 2 arms p and 1 - p).
- :class:`ThompsonSampling`: Beta(1, 1) priors, Beta posteriors; ``discount`` < 1 gives discounted Thompson
  sampling (old pulls fade: it follows reversals).
- :class:`UCB1`: mean + sqrt(c ln t / n_a) (Auer et al. 2002), each arm pulled once first.
- :class:`ChangeDetectingThompson`: Thompson sampling whose posteriors restart when a two-sided Page-Hinkley
  test on the pulled arm's rewards fires (a reversal changes every arm's value, so all arms restart).
- :class:`OraclePolicy`: always the best arm (regret 0 by construction; the reward ceiling).

:func:`run_bandit_policy` plays a policy on the native vector env for N episodes and returns reward and regret
per episode; regret is the pseudo-regret sum_t (max_a p_t[a] - p_t[a_t]) against the best arm at each step.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
from gymnasium.vector import VectorEnv


class BanditPolicy(Protocol):
    def reset(self, num_envs: int, n_arms: int, rng: np.random.Generator) -> None: ...

    def act(self, info: dict[str, Any]) -> np.ndarray: ...

    def update(self, actions: np.ndarray, rewards: np.ndarray) -> None: ...


def _one_hot(actions: np.ndarray, n_arms: int) -> np.ndarray:
    """(B,) int -> (B, k) float64."""
    out = np.zeros((actions.shape[0], n_arms))
    out[np.arange(actions.shape[0]), actions] = 1.0
    return out


class RandomPolicy:
    """Uniformly random pulls."""

    def reset(self, num_envs: int, n_arms: int, rng: np.random.Generator) -> None:
        self.num_envs, self.n_arms, self.rng = num_envs, n_arms, rng

    def act(self, info: dict[str, Any]) -> np.ndarray:
        return self.rng.integers(0, self.n_arms, size=self.num_envs)

    def update(self, actions: np.ndarray, rewards: np.ndarray) -> None:
        pass


class OraclePolicy:
    """Pulls the arm with the highest true probability (read from info["arm_probabilities"], (B, k))."""

    def reset(self, num_envs: int, n_arms: int, rng: np.random.Generator) -> None:
        pass

    def act(self, info: dict[str, Any]) -> np.ndarray:
        return np.argmax(info["arm_probabilities"], axis=1)

    def update(self, actions: np.ndarray, rewards: np.ndarray) -> None:
        pass


class ThompsonSampling:
    """Beta-Bernoulli Thompson sampling. Posterior per (episode, arm): Beta(prior_a + S, prior_b + F), where S and
    F count successes and failures, each multiplied by ``discount`` at every pull (1 = plain Thompson)."""

    def __init__(self, discount: float = 1.0, prior: tuple[float, float] = (1.0, 1.0)) -> None:
        if not 0.0 < discount <= 1.0:
            raise ValueError(f"discount must be in (0, 1], got {discount}")
        if min(prior) <= 0:
            raise ValueError(f"prior must be two positive Beta parameters, got {prior}")
        self.discount, self.prior = discount, prior

    def reset(self, num_envs: int, n_arms: int, rng: np.random.Generator) -> None:
        self.rng = rng
        self.successes = np.zeros((num_envs, n_arms))
        self.failures = np.zeros((num_envs, n_arms))

    def act(self, info: dict[str, Any]) -> np.ndarray:
        samples = self.rng.beta(self.prior[0] + self.successes, self.prior[1] + self.failures)
        return np.argmax(samples, axis=1)

    def update(self, actions: np.ndarray, rewards: np.ndarray) -> None:
        pulled = _one_hot(actions, self.successes.shape[1])
        if self.discount < 1.0:
            self.successes *= self.discount
            self.failures *= self.discount
        self.successes += pulled * rewards[:, None]
        self.failures += pulled * (1.0 - rewards[:, None])


class UCB1:
    """UCB1: pull each arm once, then argmax of mean + sqrt(c ln t / n_a) (c = 2 is Auer et al.'s bound)."""

    def __init__(self, c: float = 2.0) -> None:
        if c < 0:
            raise ValueError(f"c must be >= 0, got {c}")
        self.c = c

    def reset(self, num_envs: int, n_arms: int, rng: np.random.Generator) -> None:
        self.rng = rng
        self.counts = np.zeros((num_envs, n_arms))
        self.sums = np.zeros((num_envs, n_arms))
        self.t = 0

    def act(self, info: dict[str, Any]) -> np.ndarray:
        with np.errstate(divide="ignore", invalid="ignore"):
            means = self.sums / self.counts
            bonus = np.sqrt(self.c * math.log(max(self.t, 1)) / self.counts)
        scores = np.where(self.counts > 0, means + bonus, np.inf)
        scores = scores + 1e-9 * self.rng.random(scores.shape)  # random tie-breaking
        return np.argmax(scores, axis=1)

    def update(self, actions: np.ndarray, rewards: np.ndarray) -> None:
        pulled = _one_hot(actions, self.counts.shape[1])
        self.counts += pulled
        self.sums += pulled * rewards[:, None]
        self.t += 1


class ChangeDetectingThompson(ThompsonSampling):
    """Thompson sampling + a two-sided Page-Hinkley test on each arm's rewards since the last restart.

    For the pulled arm, with running mean m of its rewards x since the restart:
    g_up <- max(0, g_up + x - m - drift), g_down <- max(0, g_down + m - x - drift); g_up or g_down above
    ``threshold`` is an alarm, and that episode's posteriors and tests restart for every arm (a reversal changes
    them all). The defaults were picked on the 2-arm task with hazard rates 0 to 0.1 (thresholds 1.5 to 2.5 and
    drifts 0.05 to 0.15 are all within one reward point of each other).
    """

    def __init__(self, threshold: float = 2.0, drift: float = 0.1, prior: tuple[float, float] = (1.0, 1.0)) -> None:
        super().__init__(1.0, prior)
        if not threshold > 0 or not drift >= 0:
            raise ValueError(f"need threshold > 0 and drift >= 0, got threshold={threshold}, drift={drift}")
        self.threshold, self.drift = threshold, drift

    def reset(self, num_envs: int, n_arms: int, rng: np.random.Generator) -> None:
        super().reset(num_envs, n_arms, rng)
        self.counts = np.zeros((num_envs, n_arms))
        self.means = np.zeros((num_envs, n_arms))
        self.g_up = np.zeros((num_envs, n_arms))
        self.g_down = np.zeros((num_envs, n_arms))
        self.alarms = np.zeros(num_envs, dtype=np.int64)  # restarts per episode, for analysis

    def update(self, actions: np.ndarray, rewards: np.ndarray) -> None:
        super().update(actions, rewards)
        pulled = _one_hot(actions, self.counts.shape[1]).astype(bool)
        x = rewards[:, None]
        self.counts += pulled
        self.means = np.where(pulled, self.means + (x - self.means) / np.maximum(self.counts, 1), self.means)
        self.g_up = np.where(pulled, np.maximum(0.0, self.g_up + x - self.means - self.drift), self.g_up)
        self.g_down = np.where(pulled, np.maximum(0.0, self.g_down + self.means - x - self.drift), self.g_down)
        alarm = pulled & (np.maximum(self.g_up, self.g_down) > self.threshold)
        restart = alarm.any(axis=1)
        if restart.any():
            self.alarms += restart
            for table in (self.successes, self.failures, self.counts, self.means, self.g_up, self.g_down):
                table[restart] = 0.0


@dataclass
class BanditRunResult:
    """Per-episode totals of a policy run: rewards (N,) and pseudo-regret (N,)."""

    rewards: np.ndarray
    regret: np.ndarray

    def summary(self) -> dict[str, float]:
        """Means and 95% normal confidence half-widths."""
        n = len(self.rewards)
        return {
            "episodes": n,
            "reward_mean": float(self.rewards.mean()),
            "reward_ci95": float(1.96 * self.rewards.std(ddof=1) / math.sqrt(n)) if n > 1 else float("nan"),
            "regret_mean": float(self.regret.mean()),
            "regret_ci95": float(1.96 * self.regret.std(ddof=1) / math.sqrt(n)) if n > 1 else float("nan"),
        }


def run_bandit_policy(
    policy: BanditPolicy,
    n_episodes: int,
    env: VectorEnv | None = None,
    *,
    num_envs: int = 100,
    seed: int = 0,
    **env_kwargs: Any,
) -> BanditRunResult:
    """Play ``policy`` for ``n_episodes`` episodes on a reversal-bandit vector env, ``num_envs`` at a time.

    ``env`` defaults to ``ReversalBanditVectorEnv(num_envs, **env_kwargs)``; any vector env whose infos carry
    "arm_probabilities" (B, k) for the coming pull and whose episodes all truncate together works. The env is
    reset with ``seed`` once, then its streams continue; the policy's generator is seeded with ``seed`` too.
    """
    if n_episodes < 1:
        raise ValueError(f"n_episodes must be >= 1, got {n_episodes}")
    if env is None:
        from envs.bandit import ReversalBanditVectorEnv

        env = ReversalBanditVectorEnv(num_envs=num_envs, **env_kwargs)
    elif env_kwargs:
        raise ValueError(f"env keyword arguments {sorted(env_kwargs)} given with an env instance")
    num_envs, n_arms = env.num_envs, int(env.single_action_space.n)
    rows = np.arange(num_envs)
    rng = np.random.default_rng(seed)
    rewards, regrets = [], []
    for batch in range(math.ceil(n_episodes / num_envs)):
        _, info = env.reset(seed=seed if batch == 0 else None)
        policy.reset(num_envs, n_arms, rng)
        total, regret = np.zeros(num_envs), np.zeros(num_envs)
        truncated = np.zeros(num_envs, dtype=bool)
        while not truncated.any():
            actions = np.asarray(policy.act(info), dtype=np.int64)
            probs = info["arm_probabilities"]
            regret += probs.max(axis=1) - probs[rows, actions]
            _, reward, terminated, truncated, info = env.step(actions)
            if terminated.any() or truncated.any() != truncated.all():
                raise ValueError("run_bandit_policy needs episodes of one fixed length that end by truncation")
            total += reward
            policy.update(actions, reward)
        rewards.append(total)
        regrets.append(regret)
    return BanditRunResult(np.concatenate(rewards)[:n_episodes], np.concatenate(regrets)[:n_episodes])
