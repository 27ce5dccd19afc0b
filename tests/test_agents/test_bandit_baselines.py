"""Reference policies of the reversal bandit: ordering against random, change detection, oracle, regret."""

from __future__ import annotations

import math

import gymnasium as gym
import numpy as np
import pytest

import envs  # noqa: F401  (registers the ids)
from agents.bandit_baselines import (
    UCB1,
    ChangeDetectingThompson,
    OraclePolicy,
    RandomPolicy,
    ThompsonSampling,
    run_bandit_policy,
)


def margin(a, b) -> float:
    """Difference of mean episode rewards in units of its standard error."""
    se = math.sqrt(a.rewards.var(ddof=1) / len(a.rewards) + b.rewards.var(ddof=1) / len(b.rewards))
    return (a.rewards.mean() - b.rewards.mean()) / se


def test_thompson_and_ucb_clearly_beat_random():
    results = {
        name: run_bandit_policy(policy, 400, num_envs=200, seed=0)
        for name, policy in [("random", RandomPolicy()), ("thompson", ThompsonSampling()), ("ucb", UCB1())]
    }
    random = results["random"]
    assert abs(random.rewards.mean() - 50.0) < 1.5  # n/2 with arms p and 1 - p
    for name in ("thompson", "ucb"):
        assert results[name].rewards.mean() > random.rewards.mean() + 4.0, name
        assert margin(results[name], random) > 5.0, name
        assert results[name].regret.mean() < random.regret.mean() - 4.0, name


def test_change_detection_beats_plain_thompson_with_many_reversals():
    kwargs = dict(num_envs=300, seed=1, hazard_rate=0.1, p_choices=(0.1, 0.9))
    plain = run_bandit_policy(ThompsonSampling(), 600, **kwargs)
    detecting = run_bandit_policy(ChangeDetectingThompson(), 600, **kwargs)
    discounted = run_bandit_policy(ThompsonSampling(discount=0.8), 600, **kwargs)
    for better in (detecting, discounted):
        assert better.rewards.mean() > plain.rewards.mean() + 3.0
        assert margin(better, plain) > 4.0


def test_oracle_has_zero_regret_and_regret_accounts_for_the_lost_reward():
    oracle = run_bandit_policy(OraclePolicy(), 500, num_envs=250, seed=2, hazard_rate=0.05)
    random = run_bandit_policy(RandomPolicy(), 500, num_envs=250, seed=2, hazard_rate=0.05)
    np.testing.assert_array_equal(oracle.regret, 0.0)
    # Same seed, same episodes: expected reward of any policy = sum_t max_a p_t[a] - expected regret.
    gap = oracle.rewards.mean() - (random.rewards.mean() + random.regret.mean())
    assert abs(gap) < 3 * math.sqrt(oracle.rewards.var() / 500 + random.rewards.var() / 500)
    # Random pulls under arms p and 1 - p, p uniform: regret E|2p - 1| / 2 = 1/4 per pull.
    assert abs(random.regret.mean() - 25.0) < 2.0
    assert oracle.rewards.mean() > run_bandit_policy(UCB1(), 500, num_envs=250, seed=2, hazard_rate=0.05).rewards.mean()


def test_policies_act_in_lock_step_and_run_counts_episodes():
    rng = np.random.default_rng(0)
    info = {"arm_probabilities": rng.random((7, 3))}
    for policy in (RandomPolicy(), ThompsonSampling(), ThompsonSampling(0.9), UCB1(), ChangeDetectingThompson(),
                   OraclePolicy()):
        policy.reset(7, 3, rng)
        for _ in range(5):
            actions = policy.act(info)
            assert actions.shape == (7,) and np.issubdtype(actions.dtype, np.integer)
            assert np.all((actions >= 0) & (actions < 3))
            policy.update(actions, rng.integers(0, 2, size=7).astype(float))
    result = run_bandit_policy(RandomPolicy(), 250, num_envs=100, seed=0, episode_length=10)
    assert result.rewards.shape == (250,) and result.regret.shape == (250,)
    assert set(result.summary()) == {"episodes", "reward_mean", "reward_ci95", "regret_mean", "regret_ci95"}
    env = gym.make_vec("Plastic/ReversalBandit-v0", num_envs=20, vectorization_mode="vector_entry_point", n_arms=3)
    assert run_bandit_policy(UCB1(), 40, env, seed=0).rewards.shape == (40,)


def test_ucb_pulls_every_arm_first_and_change_detector_restarts():
    ucb = UCB1()
    ucb.reset(4, 3, np.random.default_rng(0))
    seen = []
    for _ in range(3):
        actions = ucb.act({})
        seen.append(actions)
        ucb.update(actions, np.ones(4))
    np.testing.assert_array_equal(np.sort(np.array(seen), axis=0), np.tile([[0], [1], [2]], (1, 4)))
    detector = ChangeDetectingThompson(threshold=2.0, drift=0.1)
    detector.reset(2, 2, np.random.default_rng(0))
    for _ in range(20):  # arm 0 pays in both episodes...
        detector.update(np.array([0, 0]), np.array([1.0, 1.0]))
    assert detector.alarms.sum() == 0 and np.all(detector.successes[:, 0] == 20)
    for _ in range(4):  # ...then stops paying in episode 1 only: an alarm there within a few pulls
        detector.update(np.array([0, 0]), np.array([1.0, 0.0]))
    np.testing.assert_array_equal(detector.alarms, [0, 1])
    assert detector.successes[1].sum() < 4 and detector.successes[0, 0] == 24


@pytest.mark.parametrize(
    "make", [lambda: ThompsonSampling(discount=0.0), lambda: ThompsonSampling(prior=(0.0, 1.0)), lambda: UCB1(c=-1),
             lambda: ChangeDetectingThompson(threshold=0.0)],
)
def test_bad_settings_are_refused(make):
    with pytest.raises(ValueError):
        make()
    with pytest.raises(ValueError, match="n_episodes"):
        run_bandit_policy(RandomPolicy(), 0)
