"""Plastic/ReversalBandit-v0: reward frequencies, reversals, hazard rate, draws, seeding, vector env, rendering."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import envs  # noqa: F401  (registers the ids)
from envs.bandit import ReversalBanditEnv, ReversalBanditVectorEnv

BIAS, TIME, PREV_REWARD, PREV_ACTION = 0, 1, 2, 3


def run_vector(env: ReversalBanditVectorEnv, seed: int, policy):
    """One batch of episodes. Returns probabilities (T, B, k) of each pull, actions (T, B), rewards (T, B),
    reversal flags (T, B) and the reset info."""
    _, info = env.reset(seed=seed)
    first_info = info
    probs, actions, rewards, flags = [], [], [], []
    for t in range(env.episode_length):
        action = policy(t, info)
        probs.append(info["arm_probabilities"])
        flags.append(info["reversal"])
        _, reward, terminated, truncated, info = env.step(action)
        assert not terminated.any() and truncated.all() == (t == env.episode_length - 1)
        actions.append(action)
        rewards.append(reward)
    return np.array(probs), np.array(actions), np.array(rewards), np.array(flags), first_info


def test_spaces_and_observation_inputs():
    env = ReversalBanditEnv()
    assert env.observation_space.shape == (5,) and env.observation_space.dtype == np.float32
    assert env.action_space == gym.spaces.Discrete(2)
    obs, info = env.reset(seed=0)
    np.testing.assert_array_equal(obs, [1.0, 0.0, 0.0, 0.0, 0.0])
    for t in range(100):
        action = t % 2
        obs, reward, terminated, truncated, info = env.step(action)
        assert reward in (0.0, 1.0) and terminated is False and truncated == (t == 99)
        np.testing.assert_allclose(obs, [1.0, (t + 1) / 100, reward] + list(np.eye(2)[action]), rtol=1e-6)
    with pytest.raises(RuntimeError, match="reset"):
        env.step(0)


def test_reward_frequencies_match_the_probabilities():
    """Fixed arms (0.2, 0.7), no reversal: 200 episodes x 50 pulls per arm, 3 sd of a mean is < 0.01."""
    env = ReversalBanditVectorEnv(num_envs=200, probabilities=(0.2, 0.7), shuffle_arms=False, hazard_rate=0.0)
    _, actions, rewards, flags, _ = run_vector(env, 0, lambda t, info: np.full(200, t % 2))
    assert not flags.any()
    assert abs(rewards[actions == 0].mean() - 0.2) < 0.012
    assert abs(rewards[actions == 1].mean() - 0.7) < 0.012


def test_rewards_follow_the_changing_probabilities():
    """Random pulls under random probabilities and reversals: reward - p averages 0, also after reversals."""
    env = ReversalBanditVectorEnv(num_envs=200, n_arms=3, hazard_rate=0.05)
    rng = np.random.default_rng(1)
    probs, actions, rewards, _, _ = run_vector(env, 1, lambda t, info: rng.integers(0, 3, size=200))
    chosen = np.take_along_axis(probs, actions[..., None], axis=2)[..., 0]
    assert set(np.unique(rewards)) == {0.0, 1.0}
    assert abs((rewards - chosen).mean()) < 0.01  # 20000 pulls, sd of the mean ~0.0033
    high, low = chosen > 0.8, chosen < 0.2
    assert rewards[high].mean() > 0.85 and rewards[low].mean() < 0.15


def test_default_episode_has_one_reversal_that_swaps_the_arms():
    env = ReversalBanditVectorEnv(num_envs=300)
    probs, _, _, flags, info = run_vector(env, 2, lambda t, info: np.zeros(300, dtype=np.int64))
    np.testing.assert_array_equal(flags.T, info["reversal_mask"])
    assert np.all(flags.sum(axis=0) == 1)
    steps = np.argmax(flags, axis=0)
    assert steps.min() >= 25 and steps.max() <= 75 and np.ptp(steps) > 35  # uniform in [T/4, 3T/4]
    np.testing.assert_allclose(probs.sum(axis=2), 1.0)  # p and 1 - p
    rows = np.arange(300)
    before, after = probs[steps - 1, rows], probs[steps, rows]
    np.testing.assert_array_equal(after, before[:, ::-1])  # the arms swap
    # Constant between reversals.
    t = np.arange(100)[:, None]
    np.testing.assert_array_equal(probs, np.where((t < steps)[..., None], probs[0][None], probs[-1][None]))
    assert 0.4 < np.mean(probs[0, :, 0]) < 0.6 and np.std(probs[0, :, 0]) > 0.25  # p uniform in [0, 1]


def test_reversal_with_more_arms_moves_the_best_arm():
    env = ReversalBanditVectorEnv(num_envs=100, n_arms=4, hazard_rate=0.1)
    probs, _, _, flags, _ = run_vector(env, 3, lambda t, info: np.zeros(100, dtype=np.int64))
    t, b = np.nonzero(flags)
    assert len(t) > 500
    before, after = probs[t - 1, b], probs[t, b]
    np.testing.assert_array_equal(np.sort(before, axis=1), np.sort(after, axis=1))  # same values, permuted
    assert np.all(np.argmax(before, axis=1) != np.argmax(after, axis=1))
    assert np.all((before != after).sum(axis=1) == 2)  # exactly two arms swapped
    unchanged = ~flags[1:]
    np.testing.assert_array_equal(probs[1:][unchanged], probs[:-1][unchanged])


@pytest.mark.parametrize("hazard_rate, expected", [(None, 1.0), (0.0, 0.0), (0.05, 4.95), (0.2, 19.8)])
def test_hazard_rate_sets_the_number_of_reversals(hazard_rate, expected):
    env = ReversalBanditEnv(hazard_rate=hazard_rate)
    counts = [env.reset(seed=s)[1]["reversal_mask"].sum() for s in range(400)]
    assert abs(np.mean(counts) - expected) < 0.1 + 0.1 * expected
    assert all(not env.reset(seed=s)[1]["reversal_mask"][0] for s in range(20))


def test_probability_draws():
    choices = ReversalBanditEnv(p_choices=(0.1, 0.9))
    firsts = [tuple(np.round(choices.reset(seed=s)[1]["arm_probabilities"], 9)) for s in range(100)]
    assert set(firsts) == {(0.1, 0.9), (0.9, 0.1)}
    fixed = ReversalBanditEnv(n_arms=3, probabilities=(0.2, 0.5, 0.8), hazard_rate=0.0)
    orders = {tuple(fixed.reset(seed=s)[1]["arm_probabilities"]) for s in range(100)}
    assert len(orders) == 6 and all(sorted(o) == [0.2, 0.5, 0.8] for o in orders)
    unshuffled = ReversalBanditEnv(n_arms=3, probabilities=(0.2, 0.5, 0.8), shuffle_arms=False)
    assert tuple(unshuffled.reset(seed=0)[1]["arm_probabilities"]) == (0.2, 0.5, 0.8)
    independent = ReversalBanditEnv(n_arms=3)
    assert not np.isclose(independent.reset(seed=0)[1]["arm_probabilities"].sum(), 1.0)


def test_reset_seed_reproducibility():
    env = ReversalBanditEnv(hazard_rate=0.1)

    def episode(seed):
        _, info = env.reset(seed=seed)
        return [info["reversal_mask"]] + [env.step(t % 2)[:2] for t in range(100)]

    a, b, c = episode(9), episode(9), episode(10)
    assert all(np.array_equal(x[0], y[0]) and x[1] == y[1] for x, y in zip(a[1:], b[1:], strict=True))
    np.testing.assert_array_equal(a[0], b[0])
    assert [x[1] for x in a[1:]] != [x[1] for x in c[1:]]


def test_native_vector_env_equals_single_envs_with_autoreset():
    B, T, seed = 5, 13, 21
    kwargs = dict(n_arms=3, hazard_rate=0.2, episode_length=T)
    vec = ReversalBanditVectorEnv(num_envs=B, **kwargs)
    singles = [ReversalBanditEnv(**kwargs) for _ in range(B)]
    obs, info = vec.reset(seed=seed)
    for i, env in enumerate(singles):
        single_obs, single_info = env.reset(seed=seed + i)
        np.testing.assert_array_equal(obs[i], single_obs)
        np.testing.assert_array_equal(info["reversal_mask"][i], single_info["reversal_mask"])
    rng = np.random.default_rng(0)
    for step in range(3 * T + 4):
        actions = rng.integers(0, 3, size=B)
        obs, rewards, _, truncated, info = vec.step(actions)
        restarted = step % (T + 1) == T
        assert ("reversal_mask" in info) == restarted
        for i, env in enumerate(singles):
            if restarted:
                (single_obs, single_info), single_reward, single_trunc = env.reset(), 0.0, False
            else:
                single_obs, single_reward, _, single_trunc, single_info = env.step(int(actions[i]))
            np.testing.assert_array_equal(obs[i], single_obs)
            assert rewards[i] == single_reward and truncated[i] == single_trunc
            for key, value in single_info.items():
                np.testing.assert_array_equal(info[key][i], value)


@pytest.mark.parametrize(
    "kwargs, name",
    [
        (dict(probabilities=(0.5, 1.2)), "probabilities"),
        (dict(probabilities=(-0.1, 0.5)), "probabilities"),
        (dict(probabilities=(float("nan"), 0.5)), "probabilities"),
        (dict(probabilities=(0.5, 0.5, 0.5)), "probabilities"),
        (dict(probabilities=("a", 0.5)), "probabilities"),
        (dict(p_choices=(0.1, 1.5)), "p_choices"),
        (dict(p_choices=()), "p_choices"),
        (dict(probabilities=(0.1, 0.9), p_choices=(0.1,)), "p_choices"),
        (dict(n_arms=1), "n_arms"),
        (dict(n_arms=2.5), "n_arms"),
        (dict(episode_length=0), "episode_length"),
        (dict(hazard_rate=1.5), "hazard_rate"),
        (dict(hazard_rate=float("nan")), "hazard_rate"),
        (dict(shuffle_arms="yes"), "shuffle_arms"),
        (dict(n_cues=4), "n_cues"),
    ],
)
def test_invalid_keyword_arguments_are_refused(kwargs, name):
    with pytest.raises((ValueError, TypeError), match=name):
        gym.make("Plastic/ReversalBandit-v0", **kwargs)
    with pytest.raises((ValueError, TypeError), match=name):
        ReversalBanditVectorEnv(num_envs=2, **kwargs)


@pytest.mark.parametrize("bad", [2, -1, 1.5, float("nan"), "0", None, False, np.array([[0]])])
def test_invalid_actions_raise_and_change_nothing(bad):
    env, fresh = ReversalBanditEnv(), ReversalBanditEnv()
    env.reset(seed=4)
    fresh.reset(seed=4)
    with pytest.raises((ValueError, TypeError)):
        env.step(bad)
    for action in (0, 1, 1):
        (obs, reward, *_), (fresh_obs, fresh_reward, *_) = env.step(action), fresh.step(action)
        np.testing.assert_array_equal(obs, fresh_obs)
        assert reward == fresh_reward
    vec = ReversalBanditVectorEnv(num_envs=2)
    vec.reset(seed=0)
    for bad_actions in ([0, 2], [0], [0.0, np.nan], [True, False]):
        with pytest.raises((ValueError, TypeError)):
            vec.step(np.array(bad_actions))
    assert vec.step(np.array([0, 1]))[0][0, TIME] == pytest.approx(0.01)


def test_render_rgb_array_and_ansi():
    env = ReversalBanditEnv(render_mode="rgb_array", hazard_rate=0.1)
    env.reset(seed=0)
    first = env.render()
    assert first.dtype == np.uint8 and first.ndim == 3 and first.shape[2] == 3
    for t in range(60):
        env.step(t % 2)
    later = env.render()
    assert later.shape == first.shape and not np.array_equal(first, later)
    colours = {tuple(c) for c in later.reshape(-1, 3)}
    assert {(60, 200, 90), (220, 60, 60), (250, 200, 40)} <= colours  # rewarded, unrewarded pulls, a reversal

    text_env = ReversalBanditEnv(render_mode="ansi", probabilities=(0.25, 0.75), shuffle_arms=False)
    text_env.reset(seed=0)
    _, reward, *_ = text_env.step(1)
    text = text_env.render()
    assert "arm 0: p=0.25" in text and "arm 1: p=0.75 (best)" in text
    assert f"last pull, reward {reward:.0f}" in text and "pull 1/100" in text

    vec = ReversalBanditVectorEnv(num_envs=3, render_mode="ansi")
    vec.reset(seed=0)
    assert len(vec.render()) == 3
    assert set(ReversalBanditEnv.metadata["render_modes"]) == {"ansi", "rgb_array", "human"}
    assert set(ReversalBanditVectorEnv.metadata["render_modes"]) == {"ansi", "rgb_array"}


@settings(max_examples=60, deadline=None)
@given(
    seed=st.integers(0, 2**31 - 1),
    n_arms=st.integers(2, 5),
    hazard_rate=st.one_of(st.none(), st.floats(0.0, 1.0)),
    data=st.data(),
)
def test_random_seeds_and_actions_keep_invariants(seed, n_arms, hazard_rate, data):
    env = ReversalBanditEnv(n_arms=n_arms, hazard_rate=hazard_rate, episode_length=30)
    actions = data.draw(st.lists(st.integers(0, n_arms - 1), min_size=30, max_size=30))
    obs, info = env.reset(seed=seed)
    for action in actions:
        assert env.observation_space.contains(obs)
        probs = info["arm_probabilities"]
        assert probs.shape == (n_arms,) and np.all((probs >= 0) & (probs <= 1))
        obs, reward, _, truncated, info = env.step(action)
        assert reward in (0.0, 1.0)
        assert reward == 1.0 or probs[action] < 1.0
        assert reward == 0.0 or probs[action] > 0.0
    assert truncated and env.observation_space.contains(obs)
