"""The API contract shared by the three meta-RL envs (``envs.RL_ENV_IDS``), tested on each of them.

1. Randomness: everything random in an episode is drawn at ``reset()`` from the env's own generator
   (``self.np_random``), e.g. the maze's reward cell and a pre-drawn sequence of T teleport destinations;
   ``step()`` draws nothing. So the native vector env keeps one generator per sub-env, loops over sub-envs only
   at reset, steps all B episodes with numpy array operations, and produces exactly the episodes of B single envs.
2. Vector env (``gym.make_vec(id, num_envs=B, vectorization_mode="vector_entry_point")``): ``reset(seed=s)``
   seeds sub-env i with s + i, as SyncVectorEnv does; a list gives one seed per sub-env; ``reset(seed=None)``
   keeps the streams. Autoreset is NEXT_STEP (``metadata["autoreset_mode"]`` is
   ``gymnasium.vector.AutoresetMode.NEXT_STEP``), exactly as SyncVectorEnv: the step after a truncation
   returns the new episode's first observation, reward 0 and the reset info. All episodes have the same fixed
   length, so they truncate together. Infos are dicts of arrays with the "_key" masks, with the dtypes that
   SyncVectorEnv would give. ``single_observation_space``, ``single_action_space``, ``observation_space`` and
   ``action_space`` are set.
3. Episodes end by truncation at the episode length; ``terminated`` is always False.
4. Observations are 1-D float32 Boxes whose bounds are exact (the tightest interval of every input), except
   that constant inputs (e.g. the bias) get [0, 1], because Gymnasium warns on every ``gym.make`` when a low
   equals its high; ``gym.make`` and both env checkers must not warn. Actions are ``Discrete(n)``.
5. Invalid actions (out of range, wrong type, NaN, a wrong shape for the vector env) raise ValueError or
   TypeError through ``envs.meta_rl.check_action`` / ``check_actions`` before any state changes; ``step()``
   before ``reset()`` raises RuntimeError.
6. Invalid keyword arguments are refused at construction with a message naming the argument; an unknown one
   raises TypeError naming it.
7. ``metadata`` declares ``render_modes`` and ``render_fps``; every declared mode but "human" works.

Ids whose module is not written yet are skipped; once the module exists its tests run.
"""

from __future__ import annotations

import functools
import importlib.util
import math
import subprocess
import sys
import warnings

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.vector import AutoresetMode
from gymnasium.vector.utils import batch_space
from hypothesis import given, settings
from hypothesis import strategies as st

import envs

RL_ENV_IDS = envs.RL_ENV_IDS


def _module(env_id: str) -> str:
    return gym.spec(env_id).entry_point.split(":")[0]


def _available(env_id: str) -> bool:
    return importlib.util.find_spec(_module(env_id)) is not None


def require(env_id: str) -> None:
    if not _available(env_id):
        pytest.skip(f"{_module(env_id)} is not written yet")


def make(env_id: str, **kwargs) -> gym.Env:
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # contract 4: no checker warnings
        return gym.make(env_id, **kwargs)


def make_native(env_id: str, num_envs: int, **kwargs) -> gym.vector.VectorEnv:
    return gym.make_vec(env_id, num_envs=num_envs, vectorization_mode="vector_entry_point", **kwargs)


def make_sync(env_id: str, num_envs: int, **kwargs) -> gym.vector.VectorEnv:
    return gym.make_vec(env_id, num_envs=num_envs, vectorization_mode="sync", **kwargs)


def assert_infos_equal(got: dict, expected: dict, where: str) -> None:
    assert got.keys() == expected.keys(), where
    for key, value in expected.items():
        if isinstance(value, dict):
            assert_infos_equal(got[key], value, f"{where} {key}")
            continue
        assert got[key].dtype == value.dtype, f"{where}: info {key!r} dtype {got[key].dtype} != {value.dtype}"
        np.testing.assert_array_equal(got[key], value, err_msg=f"{where}: info {key!r}")


def assert_steps_equal(got: tuple, expected: tuple, where: str) -> None:
    for name, a, b in zip(("obs", "reward", "terminated", "truncated"), got[:4], expected[:4], strict=True):
        assert a.dtype == b.dtype, f"{where}: {name} dtype {a.dtype} != {b.dtype}"
        np.testing.assert_array_equal(a, b, err_msg=f"{where}: {name}")
    assert_infos_equal(got[4], expected[4], where)


def render_modes(env_id: str) -> list[str]:
    return make(env_id).metadata["render_modes"]


@functools.lru_cache
def episode_length(env_id: str) -> int:
    """Steps until truncation, measured by playing action 0."""
    env = make(env_id)
    env.reset(seed=0)
    for t in range(1, 100_000):
        if env.step(0)[3]:
            return t
    raise AssertionError("no truncation")


# ---------------------------------------------------------------------------------------------------------------
# Checkers, registration, spaces


@pytest.mark.parametrize("env_id", RL_ENV_IDS)
def test_gymnasium_env_checker_passes_without_warnings(env_id):
    from gymnasium.utils.env_checker import check_env

    require(env_id)
    for render_mode in [None, *(mode for mode in render_modes(env_id) if mode != "human")]:
        env = make(env_id, render_mode=render_mode)
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            check_env(env.unwrapped, skip_render_check=False)


@pytest.mark.parametrize("env_id", RL_ENV_IDS)
def test_stable_baselines3_env_checker_passes_without_warnings(env_id):
    from stable_baselines3.common.env_checker import check_env

    require(env_id)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        check_env(make(env_id).unwrapped, warn=True)


def test_module_prefixed_ids_work_without_importing_envs():
    ids = [env_id for env_id in RL_ENV_IDS if _available(env_id)]
    script = f"""
import sys
import gymnasium as gym
assert "envs" not in sys.modules
for env_id in {ids!r}:
    env = gym.make("envs:" + env_id)
    obs, _ = env.reset(seed=0)
    assert obs in env.observation_space
    env.step(env.action_space.sample())
    vec = gym.make_vec("envs:" + env_id, num_envs=2, vectorization_mode="vector_entry_point")
    assert type(vec).__name__.endswith("VectorEnv") and "Sync" not in type(vec).__name__, type(vec)
    vec.reset(seed=0)
    vec.step(vec.action_space.sample())
print("ok", len({ids!r}))
"""
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"ok {len(ids)}"


@pytest.mark.parametrize("env_id", RL_ENV_IDS)
def test_spaces_and_metadata(env_id):
    require(env_id)
    env = make(env_id)
    space = env.observation_space
    assert isinstance(space, gym.spaces.Box) and space.dtype == np.float32 and space.shape and len(space.shape) == 1
    assert np.all(np.isfinite(space.low)) and np.all(np.isfinite(space.high)) and np.all(space.low < space.high)
    assert isinstance(env.action_space, gym.spaces.Discrete) and env.action_space.n >= 2
    assert {"render_modes", "render_fps"} <= env.metadata.keys()

    vec = make_native(env_id, 4)
    assert vec.num_envs == 4
    assert vec.single_observation_space == space
    assert vec.single_action_space == env.action_space
    assert vec.observation_space == batch_space(space, 4)
    assert vec.action_space == batch_space(env.action_space, 4)
    assert vec.metadata["autoreset_mode"] is AutoresetMode.NEXT_STEP
    assert {"render_modes", "render_fps"} <= vec.metadata.keys()


@pytest.mark.parametrize("env_id", RL_ENV_IDS)
def test_every_render_mode_but_human_works(env_id):
    require(env_id)
    for mode in render_modes(env_id):
        if mode == "human":
            continue
        env = make(env_id, render_mode=mode)
        env.reset(seed=1)
        first = env.render()
        env.step(1)
        second = env.render()
        if mode == "rgb_array":
            assert first.dtype == np.uint8 and first.ndim == 3 and first.shape[2] == 3
            assert second.shape == first.shape
        elif mode == "ansi":
            assert isinstance(first, str) and first.strip() and isinstance(second, str) and second.strip()


# ---------------------------------------------------------------------------------------------------------------
# Native vector env == SyncVectorEnv


@pytest.mark.parametrize("env_id", RL_ENV_IDS)
def test_native_vector_env_gives_the_episodes_of_sync_vector_env(env_id):
    require(env_id)
    num_envs, T = 3, episode_length(env_id)
    native, sync = make_native(env_id, num_envs), make_sync(env_id, num_envs)
    n_actions = native.single_action_space.n
    rng = np.random.default_rng(7)

    def play(steps: int, where: str) -> list[int]:
        truncation_steps = []
        for k in range(steps):
            actions = rng.integers(n_actions, size=num_envs)
            got, expected = native.step(actions), sync.step(actions)
            assert_steps_equal(got, expected, f"{where}, step {k}")
            assert not got[2].any()
            if got[3].any():
                assert got[3].all(), "fixed-length episodes truncate together"
                truncation_steps.append(k)
        return truncation_steps

    got, expected = native.reset(seed=123), sync.reset(seed=123)
    assert_infos_equal(got[1], expected[1], "reset(seed=123)")
    np.testing.assert_array_equal(got[0], expected[0])
    # Two full episodes with the NEXT_STEP autoreset step between them, and one step into the third.
    assert play(2 * T + 2, "seed 123") == [T - 1, 2 * T]
    # reset(seed=None) keeps the streams going; a list seeds each sub-env.
    for seed in (None, [5, None, 9]):
        got, expected = native.reset(seed=seed), sync.reset(seed=seed)
        np.testing.assert_array_equal(got[0], expected[0])
        assert_infos_equal(got[1], expected[1], f"reset(seed={seed})")
        play(T // 2, f"after reset(seed={seed})")


@pytest.mark.parametrize("env_id", RL_ENV_IDS)
def test_seeded_resets_reproduce_episodes(env_id):
    require(env_id)
    env = make(env_id)
    actions = np.random.default_rng(0).integers(env.action_space.n, size=episode_length(env_id))

    def episode(seed: int) -> list:
        obs, info = env.reset(seed=seed)
        out = [obs, info]
        for a in actions:
            out.extend(env.step(a))
        return out

    def same(a: list, b: list) -> bool:
        return all(
            np.array_equal(x, y) if not isinstance(x, dict) else _dicts_equal(x, y) for x, y in zip(a, b, strict=True)
        )

    first = episode(42)
    assert same(first, episode(42))
    assert not all(same(first, episode(seed)) for seed in range(5))


def _dicts_equal(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)


# ---------------------------------------------------------------------------------------------------------------
# Invariants under random play


@pytest.mark.parametrize("env_id", RL_ENV_IDS)
@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), actions=st.lists(st.integers(0, 1_000), min_size=1, max_size=40))
def test_random_play_keeps_observations_in_the_space(env_id, seed, actions):
    require(env_id)
    env = make(env_id)
    n = env.action_space.n
    obs, _ = env.reset(seed=seed)
    assert env.observation_space.contains(obs)
    T = episode_length(env_id)
    t = 0
    while True:
        obs, reward, terminated, truncated, _ = env.step(actions[t % len(actions)] % n)
        t += 1
        assert env.observation_space.contains(obs), (t, obs)
        assert isinstance(reward, float) and math.isfinite(reward)
        assert not terminated
        if truncated:
            break
        assert t < T
    assert t == T


# ---------------------------------------------------------------------------------------------------------------
# Bad input


BAD_ACTIONS = [-1, 99, 1.5, float("nan"), float("inf"), "0", None, True, np.array([0, 1]), [0]]


@pytest.mark.parametrize("env_id", RL_ENV_IDS)
def test_invalid_actions_raise_before_changing_state(env_id):
    require(env_id)
    env, twin = make(env_id).unwrapped, make(env_id).unwrapped
    env.reset(seed=3)
    twin.reset(seed=3)
    for bad in [*BAD_ACTIONS, env.action_space.n]:
        with pytest.raises((ValueError, TypeError)):
            env.step(bad)
    got, expected = env.step(1), twin.step(1)
    np.testing.assert_array_equal(got[0], expected[0])
    assert got[1:4] == expected[1:4]
    assert _dicts_equal(got[4], expected[4])

    vec, vec_twin = make_native(env_id, 3), make_native(env_id, 3)
    vec.reset(seed=3)
    vec_twin.reset(seed=3)
    n = vec.single_action_space.n
    bad_batches = [
        np.array([0, 1]),
        np.array([0, 1, 0, 1]),
        np.array([[0, 1, 0]]),
        0,
        np.array([0, n, 1]),
        np.array([0, -1, 1]),
        np.array([0.0, np.nan, 1.0]),
        np.array([0.5, 1, 1]),
        np.array(["0", "1", "0"]),
        np.array([True, False, True]),
    ]
    for bad in bad_batches:
        with pytest.raises((ValueError, TypeError)):
            vec.step(bad)
    assert_steps_equal(vec.step(np.array([1, 0, 1])), vec_twin.step(np.array([1, 0, 1])), "vector env")


@pytest.mark.parametrize("env_id", RL_ENV_IDS)
def test_step_before_reset_raises(env_id):
    require(env_id)
    with pytest.raises(RuntimeError):
        make(env_id).unwrapped.step(0)
    with pytest.raises(RuntimeError):
        make_native(env_id, 2).step(np.zeros(2, dtype=np.int64))


@pytest.mark.parametrize("env_id", RL_ENV_IDS)
def test_unknown_and_bad_keyword_arguments_are_refused(env_id):
    require(env_id)
    with pytest.raises(TypeError, match="no_such_argument"):
        gym.make(env_id, no_such_argument=1)
    with pytest.raises(TypeError, match="no_such_argument"):
        make_native(env_id, 2, no_such_argument=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # gym.make warns about the unknown render mode before the env refuses it
        with pytest.raises(ValueError, match="render_mode"):
            gym.make(env_id, render_mode="hologram")
        with pytest.raises(ValueError, match="render_mode"):
            make_native(env_id, 2, render_mode="hologram")
    with pytest.raises((ValueError, TypeError), match="num_envs"):
        make_native(env_id, 0)


# ---------------------------------------------------------------------------------------------------------------
# Stable-baselines3 trains on each env out of the box


@pytest.mark.parametrize("env_id", RL_ENV_IDS)
def test_sb3_a2c_trains_a_few_hundred_steps(env_id):
    from stable_baselines3 import A2C

    require(env_id)
    env = make(env_id)
    model = A2C("MlpPolicy", env, n_steps=8, seed=0, device="cpu")
    before = [p.detach().clone() for p in model.policy.parameters()]
    model.learn(total_timesteps=320)
    assert model.num_timesteps == 320
    assert any(
        not np.array_equal(b.numpy(), p.detach().numpy())
        for b, p in zip(before, model.policy.parameters(), strict=True)
    )
    obs, _ = env.reset(seed=0)
    action, _ = model.predict(obs, deterministic=True)
    assert env.action_space.contains(int(action))
