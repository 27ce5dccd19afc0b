"""Plastic/CueReward-v0: trial structure, rewards, target frequency, seeding, native vector env, rendering, errors."""

from __future__ import annotations

import itertools

import gymnasium as gym
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import envs  # noqa: F401  (registers the ids)
from envs.cue_reward import CueRewardEnv, CueRewardVectorEnv

CUE_SIZE = 20
GO = CUE_SIZE  # index of the go bit; then bias, t/T, previous reward, previous action one-hot (2)
BIAS, TIME, PREV_REWARD, PREV_ACTION = GO + 1, GO + 2, GO + 3, GO + 4


def play(env: CueRewardEnv, seed: int, actions=None):
    """Play one episode; return the observations (T + 1, D), rewards (T,), infos (T + 1), the cues, truncations."""
    obs, info = env.reset(seed=seed)
    cues = info["cues"]
    observations, rewards, infos, truncations = [obs], [], [info], []
    rng = np.random.default_rng(seed)
    for t in range(env.episode_length):
        action = int(rng.integers(2)) if actions is None else actions(t, infos[-1])
        obs, reward, terminated, truncated, info = env.step(action)
        assert terminated is False
        observations.append(obs)
        rewards.append(reward)
        infos.append(info)
        truncations.append(truncated)
    return np.array(observations), np.array(rewards), infos, cues, truncations


def shown_cue(obs: np.ndarray, cues: np.ndarray) -> int:
    """Index of the cue whose bits the observation shows, -1 when the cue bits are all 0."""
    bits = obs[:CUE_SIZE]
    if not bits.any():
        return -1
    (matches,) = np.flatnonzero((cues == bits).all(axis=1))
    return int(matches)


def split_trials(infos: list[dict]) -> list[list[int]]:
    """Steps (0..T-1) grouped by trial, from the trial_start flags."""
    trials: list[list[int]] = []
    for t, info in enumerate(infos[:-1]):
        if info["trial_start"]:
            trials.append([])
        trials[-1].append(t)
    return trials


def test_spaces_and_episode_length():
    env = CueRewardEnv()
    assert env.observation_space.shape == (26,) and env.observation_space.dtype == np.float32
    assert env.action_space == gym.spaces.Discrete(2)
    observations, _, infos, _, truncations = play(env, seed=0)
    assert truncations == [False] * 119 + [True]
    assert all(env.observation_space.contains(o) for o in observations)
    np.testing.assert_array_equal(observations[:, BIAS], 1.0)
    np.testing.assert_allclose(observations[:, TIME], np.arange(121) / 120, rtol=1e-6)
    with pytest.raises(RuntimeError, match="reset"):
        env.step(0)


@pytest.mark.parametrize("seed", range(5))
def test_trial_structure_seen_in_the_observations(seed):
    env = CueRewardEnv()
    observations, _, infos, cues, _ = play(env, seed)
    assert len(np.unique(cues, axis=0)) == 4 and set(np.unique(cues)) == {-1.0, 1.0}
    trials = split_trials(infos)
    assert trials[0][0] == 0 and sum(map(len, trials)) == 120
    for number, steps in enumerate(trials):
        length = infos[steps[0]]["trial_length"]
        assert 5 <= length <= 8
        complete = len(steps) == length
        assert complete or number == len(trials) - 1, "only the last trial may be cut by the episode end"
        shown = [shown_cue(observations[t], cues) for t in steps]
        go = [observations[t, GO] for t in steps]
        assert [infos[t]["cue"] for t in steps] == shown
        assert [infos[t]["go"] for t in steps] == [g == 1.0 for g in go]
        assert [infos[t]["step_in_trial"] for t in steps] == list(range(len(steps)))
        assert {infos[t]["trial"] for t in steps} == {number}
        if not complete:
            continue
        # blank | L - 3 cue-zone steps holding exactly 2 distinct cues | go | blank
        assert shown[0] == -1 and shown[-2] == -1 and shown[-1] == -1
        zone = [c for c in shown[1:-2] if c >= 0]
        assert len(zone) == 2 and zone[0] != zone[1]
        assert go == [0.0] * (length - 2) + [1.0, 0.0]
        target = infos[steps[0]]["target"]
        assert infos[steps[0]]["target_shown"] == (target in zone)
    final = infos[-1]
    assert (final["trial"], final["cue"], final["go"], final["trial_length"]) == (-1, -1, False, 0)


def test_rewards_for_right_and_wrong_answers_and_reward_inputs():
    env = CueRewardEnv()
    for answer_right in (True, False):

        def policy(t, info, right=answer_right):
            if info["go"]:
                return int(info["target_shown"]) if right else 1 - int(info["target_shown"])
            return t % 2  # any action off the go step earns 0

        observations, rewards, infos, _, _ = play(env, seed=3, actions=policy)
        go = np.array([info["go"] for info in infos[:-1]])
        assert go.sum() >= 14
        np.testing.assert_array_equal(rewards[go], 1.0 if answer_right else -1.0)
        np.testing.assert_array_equal(rewards[~go], 0.0)
        # The reward and the action of step t are inputs at step t + 1.
        np.testing.assert_array_equal(observations[1:, PREV_REWARD], rewards)
        np.testing.assert_array_equal(observations[0, PREV_ACTION:], [0.0, 0.0])
        actions = np.array([policy(t, infos[t]) for t in range(120)])
        np.testing.assert_array_equal(observations[1:, PREV_ACTION:], np.eye(2)[actions])


def test_target_shown_in_about_half_the_trials_and_pairs_are_uniform():
    """Over ~3600 complete trials: target shown 50% +- 2.5% (about 3 standard errors); each of the 6 pairs 1/6."""
    env = CueRewardVectorEnv(num_envs=200)
    obs, info = env.reset(seed=11)
    zone_cues: list[list[list[int]]] = [[[]] for _ in range(200)]
    shown_flags, pairs = [], []
    for _ in range(120):
        for i in np.flatnonzero(info["trial_start"]):
            zone_cues[i].append([])
        for i in np.flatnonzero(info["cue"] >= 0):
            zone_cues[i][-1].append(int(info["cue"][i]))
        go = np.flatnonzero(info["go"])
        for i in go:
            cues = zone_cues[i][-1]
            shown_flags.append(bool(info["target_shown"][i]))
            assert shown_flags[-1] == (info["target"][i] in cues)
            target = info["target"][i]
            pairs.append(tuple(sorted(-1 if c == target else c - (c > target) for c in cues)))
        obs, _, _, _, info = env.step(np.zeros(200, dtype=np.int64))
    assert len(shown_flags) > 3000
    assert abs(np.mean(shown_flags) - 0.5) < 0.025
    # Cues relabelled across episodes (target -1, non-targets 0..2): 3 pairs with the target, 3 without.
    counts = np.array([pairs.count(p) for p in set(pairs)])
    assert len(counts) == 6 and np.all(np.abs(counts / len(pairs) - 1 / 6) < 0.025)


def test_target_probability_and_other_sizes():
    env = CueRewardVectorEnv(num_envs=50, n_cues=6, cue_size=3, cues_per_trial=3, trial_length=(6, 6),
                             target_probability=0.2, episode_length=60)
    assert env.single_observation_space.shape == (3 + 1 + 5,)
    flags = []
    _, info = env.reset(seed=0)
    assert len(np.unique(info["cues"][0], axis=0)) == 6
    for _ in range(60):
        assert np.all(info["trial_length"][info["trial"] >= 0] == 6)
        flags.extend(info["target_shown"][info["go"]])
        _, _, _, _, info = env.step(np.ones(50, dtype=np.int64))
    assert len(flags) == 500 and abs(np.mean(flags) - 0.2) < 0.06


def test_reset_seed_reproducibility():
    env = CueRewardEnv()
    a, b, c = play(env, seed=5), play(env, seed=5), play(env, seed=6)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[3], b[3])
    assert not np.array_equal(a[0], c[0])
    # reset() without a seed continues the stream: a new episode, not a replay.
    env.reset(seed=5)
    assert not np.array_equal(env.reset()[1]["cues"], a[3])


def test_native_vector_env_equals_single_envs_with_autoreset():
    B, T, seed = 4, 23, 40
    vec = CueRewardVectorEnv(num_envs=B, episode_length=T)
    singles = [CueRewardEnv(episode_length=T) for _ in range(B)]
    obs, info = vec.reset(seed=seed)
    for i, env in enumerate(singles):
        single_obs, single_info = env.reset(seed=seed + i)
        np.testing.assert_array_equal(obs[i], single_obs)
        np.testing.assert_array_equal(info["cues"][i], single_info["cues"])
    rng = np.random.default_rng(0)
    for step in range(2 * T + 5):
        actions = rng.integers(0, 2, size=B)
        obs, rewards, terminated, truncated, info = vec.step(actions)
        assert not terminated.any()
        restarted = step % (T + 1) == T  # NEXT_STEP autoreset: the step after truncation resets
        assert truncated.all() == (step % (T + 1) == T - 1) and (truncated.any() == truncated.all())
        assert ("cues" in info) == restarted
        for i, env in enumerate(singles):
            if restarted:
                single_obs, single_info = env.reset()
                single_reward = 0.0
            else:
                single_obs, single_reward, _, _, single_info = env.step(int(actions[i]))
            np.testing.assert_array_equal(obs[i], single_obs)
            assert rewards[i] == single_reward
            for key, value in single_info.items():
                np.testing.assert_array_equal(info[key][i], value)
                assert info[f"_{key}"][i]


def test_vector_reset_mask_and_action_checks():
    vec = CueRewardVectorEnv(num_envs=3)
    with pytest.raises(ValueError, match="first reset"):
        vec.reset(seed=1, options={"reset_mask": np.array([False, True, False])})
    with pytest.raises(RuntimeError, match="reset"):
        vec.step(np.zeros(3, dtype=np.int64))
    vec.reset(seed=1)
    vec.step(np.array([0, 1, 0]))
    obs, info = vec.reset(seed=7, options={"reset_mask": np.array([False, True, False])})
    np.testing.assert_array_equal(info["_cues"], [False, True, False])
    np.testing.assert_array_equal(obs[1], CueRewardEnv().reset(seed=8)[0])  # sub-env 1 is seeded 7 + 1
    assert obs[0, TIME] == pytest.approx(1 / 120) and obs[1, TIME] == 0.0
    for bad in ([0, 1], [0, 1, 2], [0.5, 0, 0], [np.nan, 0, 0], ["a", "b", "c"], [[0, 1, 0]]):
        with pytest.raises((ValueError, TypeError)):
            vec.step(np.array(bad))
    assert vec.step(np.array([0, 0, 0]))[0][0, TIME] == pytest.approx(2 / 120)  # nothing moved on errors


@pytest.mark.parametrize("bad", [2, -1, 0.5, float("nan"), "1", None, True, np.array([0, 1])])
def test_invalid_actions_raise_and_change_nothing(bad):
    env, fresh = CueRewardEnv(), CueRewardEnv()
    env.reset(seed=2)
    fresh.reset(seed=2)
    with pytest.raises((ValueError, TypeError)):
        env.step(bad)
    for action in (1, 0, 1):
        np.testing.assert_array_equal(env.step(action)[0], fresh.step(action)[0])


@pytest.mark.filterwarnings("ignore:.*render_mode")
@pytest.mark.parametrize(
    "kwargs, name",
    [
        (dict(n_cues=1), "n_cues"),
        (dict(n_cues=2), "n_cues"),  # 2 per trial need 2 non-targets
        (dict(n_cues=3.0), "n_cues"),
        (dict(cue_size=0), "cue_size"),
        (dict(n_cues=5, cue_size=2), "n_cues"),  # only 4 distinct 2-bit cues
        (dict(episode_length=0), "episode_length"),
        (dict(cues_per_trial=0), "cues_per_trial"),
        (dict(trial_length=(4, 8)), "trial_length"),
        (dict(trial_length=(6, 5)), "trial_length"),
        (dict(trial_length=5), "trial_length"),
        (dict(target_probability=1.5), "target_probability"),
        (dict(render_mode="video"), "render_mode"),
        (dict(n_arms=2), "n_arms"),
    ],
)
def test_invalid_keyword_arguments_are_refused(kwargs, name):
    with pytest.raises((ValueError, TypeError), match=name):
        gym.make("Plastic/CueReward-v0", **kwargs)
    with pytest.raises((ValueError, TypeError), match=name):
        CueRewardVectorEnv(num_envs=2, **kwargs)


def test_smallest_valid_settings():
    env = CueRewardEnv(n_cues=2, cue_size=1, cues_per_trial=1, trial_length=(4, 4), episode_length=9)
    observations, rewards, infos, cues, _ = play(env, seed=0)
    assert sorted(cues[:, 0]) == [-1.0, 1.0]
    assert [i["go"] for i in infos[:-1]] == [False, False, True, False] * 2 + [False]


def test_render_rgb_array_and_ansi():
    env = CueRewardEnv(render_mode="rgb_array")
    env.reset(seed=0)
    first = env.render()
    assert first.dtype == np.uint8 and first.ndim == 3 and first.shape[2] == 3
    for t in range(30):
        env.step(t % 2)
    later = env.render()
    assert later.shape == first.shape and not np.array_equal(first, later)
    assert len(np.unique(later.reshape(-1, 3), axis=0)) >= 6  # bits, blanks, go, actions, rewards, target

    text_env = CueRewardEnv(render_mode="ansi")
    _, info = text_env.reset(seed=0)
    while not info["go"]:
        _, _, _, _, info = text_env.step(0)
    text_env.step(1)
    text = text_env.render()
    assert isinstance(text, str)
    assert f"target C{info['target']}" in text and "GO->1" in text and "C0" in text

    vec = CueRewardVectorEnv(num_envs=2, render_mode="rgb_array")
    vec.reset(seed=0)
    frames = vec.render()
    assert len(frames) == 2 and frames[0].shape == first.shape
    assert CueRewardEnv().metadata["render_fps"] > 0
    assert set(CueRewardEnv.metadata["render_modes"]) == {"ansi", "rgb_array", "human"}
    assert set(CueRewardVectorEnv.metadata["render_modes"]) == {"ansi", "rgb_array"}
    assert CueRewardVectorEnv.metadata["autoreset_mode"] == gym.vector.AutoresetMode.NEXT_STEP


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), actions=st.lists(st.integers(0, 1), min_size=40, max_size=40))
def test_random_seeds_and_actions_keep_invariants(seed, actions):
    env = CueRewardEnv(episode_length=40)
    obs, info = env.reset(seed=seed)
    for action in actions:
        go = info["go"]
        assert env.observation_space.contains(obs)
        obs, reward, _, truncated, info = env.step(action)
        assert reward in ((-1.0, 1.0) if go else (0.0,))
    assert truncated and env.observation_space.contains(obs)


def test_gym_make_ids_and_kwargs():
    env = gym.make("Plastic/CueReward-v0", n_cues=5, cue_size=8)
    assert env.observation_space.shape == (8 + 1 + 5,)
    vec = gym.make_vec("Plastic/CueReward-v0", num_envs=3, vectorization_mode="vector_entry_point", cue_size=8)
    assert isinstance(vec, CueRewardVectorEnv) and vec.observation_space.shape == (3, 14)
    assert list(itertools.islice(iter(vec.np_random), 3))  # one generator per sub-env
