"""The contract every registered ``Plastic/`` env keeps (``envs.ENV_IDS``: meta-RL and supervised), tested on each.

1. Both env checkers pass: Gymnasium's (with every declared render mode) and Stable-Baselines3's. ``gym.make`` and
   the checkers do not warn, except that a supervised env's action (a network output) is an unbounded Box, which
   both checkers advise against: SB3's space recommendations are skipped for those (``warn=False``), its API checks
   run.
2. Randomness: everything random in an episode is drawn at ``reset()`` from the env's own generator; ``step()``
   draws nothing. A seeded reset reproduces an episode exactly.
3. Vector env (``gym.make_vec(id, num_envs=B, vectorization_mode="vector_entry_point")``) = ``SyncVectorEnv`` over
   single envs, bit for bit (observations, rewards, ends, infos and their dtypes and masks): ``reset(seed=s)``
   seeds sub-env i with s + i, a list gives one seed per sub-env, ``reset(seed=None)`` keeps the streams,
   NEXT_STEP autoreset (the step after a truncation returns the new first observation, reward 0 and the reset
   info). All episodes have one fixed length, so they truncate together; ``terminated`` is always False.
4. Spaces: observations are 1-D float32 Boxes with finite bounds (RL envs: exact, except constant inputs, which
   get [0, 1]); actions are ``Discrete(n)`` (RL) or a float32 Box of the output size (supervised).
5. Bad input is refused before any state changes: invalid actions (out of range, wrong type or shape, NaN) raise
   ValueError or TypeError; ``step()`` before ``reset()`` raises RuntimeError; unknown keyword arguments raise
   TypeError naming them, a bad render mode or ``num_envs`` ValueError.
6. ``metadata`` declares ``render_modes`` (every one renders, "human" in a headless window), the source ``paper``
   and ``tags``; the vector env has the same, without "human", and NEXT_STEP autoreset. ``envs.tasks(tag)``
   lists the ids by tag.
7. The env's module docstring has the sections Description, Observation (with an index table), Actions, Rewards,
   Episode end, Arguments, Registered ids (naming the id) and Source paper.
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import math
import subprocess
import sys
import warnings
from collections.abc import Iterator

import gymnasium as gym
import numpy as np
import pytest
from cases.supervised import SMALL
from gymnasium.vector import AutoresetMode
from gymnasium.vector.utils import batch_space
from hypothesis import given, settings
from hypothesis import strategies as st

import envs

ENV_IDS = envs.ENV_IDS
RL_ENV_IDS = envs.RL_ENV_IDS
KWARGS = {env_id: SMALL.get(env_id, {}) for env_id in ENV_IDS}  # small supervised tasks; RL envs at defaults
# What the checkers say about an unbounded Box action (a supervised env's network output), and only that.
UNBOUNDED_ACTION_WARNINGS = (r".*Box action space m..imum value is .*infinity", r".*symmetric and normalized")
SECTIONS = ("Description", "Observation", "Actions", "Rewards", "Episode end", "Arguments", "Registered ids",
            "Source paper")


def supervised(env_id: str) -> bool:
    return env_id in envs.SUPERVISED_ENV_IDS


def make(env_id: str, **kwargs) -> gym.Env:
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # contract 1: gym.make does not warn
        return gym.make(env_id, **{**KWARGS[env_id], **kwargs})


def make_native(env_id: str, num_envs: int, **kwargs) -> gym.vector.VectorEnv:
    return gym.make_vec(env_id, num_envs=num_envs, vectorization_mode="vector_entry_point",
                        **{**KWARGS[env_id], **kwargs})


def make_sync(env_id: str, num_envs: int, **kwargs) -> gym.vector.VectorEnv:
    return gym.make_vec(env_id, num_envs=num_envs, vectorization_mode="sync", **{**KWARGS[env_id], **kwargs})


def actions_of(space: gym.Space, rng: np.random.Generator, size: int | None = None) -> np.ndarray | int:
    """Random valid actions of a single-env ``space``: one (size None) or ``size`` of them, stacked."""
    if isinstance(space, gym.spaces.Discrete):
        return int(rng.integers(space.n)) if size is None else rng.integers(space.n, size=size)
    shape = space.shape if size is None else (size, *space.shape)
    return rng.normal(size=shape).astype(np.float32)


@contextlib.contextmanager
def warnings_are_errors_but_unbounded_actions() -> Iterator[None]:
    """Every warning is an error, except the unbounded-action advice (only supervised envs have such actions)."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for message in UNBOUNDED_ACTION_WARNINGS:
            warnings.filterwarnings("ignore", message=message)
        yield


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


def _dicts_equal(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)


@functools.lru_cache
def episode_length(env_id: str) -> int:
    """Steps until truncation, measured by playing."""
    env = make(env_id)
    env.reset(seed=0)
    rng = np.random.default_rng(0)
    for t in range(1, 100_000):
        if env.step(actions_of(env.action_space, rng))[3]:
            return t
    raise AssertionError("no truncation")


# ---------------------------------------------------------------------------------------------------------------
# Checkers, registration, spaces, metadata, docstrings


def test_every_registered_plastic_id_is_tested():
    registered = {env_id for env_id in gym.registry if env_id.startswith("Plastic/")}
    assert registered == set(ENV_IDS) == set(RL_ENV_IDS) | set(envs.SUPERVISED_ENV_IDS)


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_gymnasium_env_checker_passes(env_id):
    from gymnasium.utils.env_checker import check_env

    modes = make(env_id).metadata["render_modes"]
    for render_mode in [None, *(mode for mode in modes if mode != "human")]:
        env = make(env_id, render_mode=render_mode)
        with warnings_are_errors_but_unbounded_actions():
            check_env(env.unwrapped, skip_render_check=False)


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_stable_baselines3_env_checker_passes(env_id):
    from stable_baselines3.common.env_checker import check_env

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        # SB3 wants finite action bounds, which a network output does not have: its space advice is skipped there.
        check_env(make(env_id).unwrapped, warn=not supervised(env_id))


def test_module_prefixed_ids_work_without_importing_envs():
    script = f"""
import sys
import gymnasium as gym
assert "envs" not in sys.modules
for env_id, kwargs in {KWARGS!r}.items():
    env = gym.make("envs:" + env_id, **kwargs)
    obs, _ = env.reset(seed=0)
    assert obs in env.observation_space
    env.step(env.action_space.sample())
    vec = gym.make_vec("envs:" + env_id, num_envs=2, vectorization_mode="vector_entry_point", **kwargs)
    assert type(vec).__name__.endswith("VectorEnv") and "Sync" not in type(vec).__name__, type(vec)
    vec.reset(seed=0)
    vec.step(vec.action_space.sample())
print("ok", len({KWARGS!r}))
"""
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"ok {len(ENV_IDS)}"


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_spaces_and_metadata(env_id):
    env = make(env_id)
    space = env.observation_space
    assert isinstance(space, gym.spaces.Box) and space.dtype == np.float32 and space.shape and len(space.shape) == 1
    assert np.all(np.isfinite(space.low)) and np.all(np.isfinite(space.high)) and np.all(space.low < space.high)
    if supervised(env_id):
        assert isinstance(env.action_space, gym.spaces.Box) and env.action_space.dtype == np.float32
        assert env.action_space.shape == (env.unwrapped.output_dim,)
    else:
        assert isinstance(env.action_space, gym.spaces.Discrete) and env.action_space.n >= 2
        assert {"rgb_array", "ansi", "human"} <= set(env.metadata["render_modes"]) and env.metadata["render_fps"] > 0
    metadata = env.metadata
    assert isinstance(metadata["paper"], str) and len(metadata["paper"]) > 20 and any(
        year in metadata["paper"] for year in ("2016", "2018", "2019", "2020"))
    assert metadata["tags"] and all(isinstance(tag, str) and tag for tag in metadata["tags"])
    assert ("supervised" in metadata["tags"]) == supervised(env_id) != ("meta-rl" in metadata["tags"])

    vec = make_native(env_id, 4)
    assert vec.num_envs == 4
    assert vec.single_observation_space == space
    assert vec.single_action_space == env.action_space
    assert vec.observation_space == batch_space(space, 4)
    assert vec.action_space == batch_space(env.action_space, 4)
    assert vec.metadata["autoreset_mode"] is AutoresetMode.NEXT_STEP
    assert vec.metadata["render_modes"] == [mode for mode in metadata["render_modes"] if mode != "human"]
    assert (vec.metadata["paper"], vec.metadata["tags"]) == (metadata["paper"], metadata["tags"])


def test_tasks_are_listed_by_tag():
    assert set(envs.tasks()) == set(ENV_IDS)
    assert set(envs.tasks("meta-rl")) == set(RL_ENV_IDS)
    assert set(envs.tasks("supervised")) == set(envs.SUPERVISED_ENV_IDS)
    assert set(envs.tasks("omniglot")) == {"Plastic/OmniglotOneShot-v0", "Plastic/ContinualOmniglot-v0"}
    assert envs.tasks("no-such-tag") == {}
    assert envs.tasks("miconi2018")["Plastic/Maze-v0"]["paper"] == make("Plastic/Maze-v0").metadata["paper"]


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_module_docstring_has_every_section(env_id):
    module = importlib.import_module(gym.spec(env_id).entry_point.split(":")[0])
    doc = module.__doc__
    positions = [doc.find(f"\n## {name}\n") for name in SECTIONS]
    assert all(p >= 0 for p in positions), [name for name, p in zip(SECTIONS, positions, strict=True) if p < 0]
    assert positions == sorted(positions), "sections out of order"
    observation = doc[positions[1]: positions[2]]
    assert "| index |" in observation and observation.count("\n|") >= 3, "the Observation section needs its table"
    assert env_id in doc[positions[6]: positions[7]]


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_every_declared_render_mode_renders(env_id):
    modes = make(env_id).metadata["render_modes"]
    if not modes:  # supervised envs draw nothing and say so
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # gym.make warns about the unknown mode before the env refuses it
            with pytest.raises(ValueError, match="render_mode"):
                gym.make(env_id, render_mode="rgb_array", **KWARGS[env_id])
        return
    from envs import maze_render

    shown = make(env_id, render_mode="rgb_array")
    shown.reset(seed=0)
    height, width, _ = shown.render().shape  # the human window shows the rgb frame
    for mode in modes:
        env = make(env_id, render_mode=mode)
        if mode == "human":
            env.unwrapped.metadata = {**env.unwrapped.metadata, "render_fps": 1000}  # no waiting between frames
        env.reset(seed=1)
        first = env.render()
        env.step(1)
        out = env.render()
        if mode == "rgb_array":
            assert isinstance(out, np.ndarray) and out.dtype == np.uint8 and out.ndim == 3 and out.shape[2] == 3
            assert out.shape == first.shape and not np.array_equal(out, first)  # the step shows
            assert out.shape[0] > 100 and out.shape[1] > 400  # room for the labels
            assert len(np.unique(out.reshape(-1, 3), axis=0)) > 20  # a picture with antialiased text, not a blank
        elif mode == "ansi":
            assert isinstance(out, str) and out.strip() and out != first
        else:  # human: drawn in a (headless) window
            assert out is None
            window = maze_render.pygame.display.get_surface()
            assert window is not None and window.get_size() == (width, height)
        env.close()
    vec = make_native(env_id, 2, render_mode="rgb_array")
    vec.reset(seed=1)
    assert all(frame.shape == (height, width, 3) for frame in vec.render())


# ---------------------------------------------------------------------------------------------------------------
# Native vector env == SyncVectorEnv, determinism


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_native_vector_env_gives_the_episodes_of_sync_vector_env(env_id):
    num_envs, T = 3, episode_length(env_id)
    native, sync = make_native(env_id, num_envs), make_sync(env_id, num_envs)
    rng = np.random.default_rng(7)

    def play(steps: int, where: str) -> list[int]:
        truncation_steps = []
        for k in range(steps):
            actions = actions_of(native.single_action_space, rng, num_envs)
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
        play(max(T // 2, 1), f"after reset(seed={seed})")


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_seeded_resets_reproduce_episodes(env_id):
    env = make(env_id)
    rng = np.random.default_rng(0)
    actions = [actions_of(env.action_space, rng) for _ in range(episode_length(env_id))]

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


@pytest.mark.parametrize("env_id", ENV_IDS)
@settings(max_examples=10, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), action_seed=st.integers(0, 2**32 - 1))
def test_random_play_keeps_observations_in_the_space(env_id, seed, action_seed):
    env = make(env_id)
    rng = np.random.default_rng(action_seed)
    obs, _ = env.reset(seed=seed)
    assert env.observation_space.contains(obs)
    T = episode_length(env_id)
    t = 0
    while True:
        obs, reward, terminated, truncated, _ = env.step(actions_of(env.action_space, rng))
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


def bad_actions(space: gym.Space) -> list:
    """Single-env actions that ``space`` does not hold."""
    if isinstance(space, gym.spaces.Discrete):
        return [-1, 99, space.n, 1.5, float("nan"), float("inf"), "0", None, True, np.array([0, 1]), [0]]
    (size,) = space.shape
    nan = np.zeros(size, dtype=np.float32)
    nan[-1] = np.nan
    return [np.zeros(size + 1), np.zeros((1, size)), 0.0, nan, np.full(size, np.inf), np.array(["0"] * size),
            np.ones(size, dtype=bool), None]


def bad_batches(space: gym.Space, num_envs: int) -> list:
    """Vector-env actions (``num_envs`` = 3) that the batched ``space`` does not hold."""
    if isinstance(space, gym.spaces.Discrete):
        n = space.n
        return [np.array([0, 1]), np.array([0, 1, 0, 1]), np.array([[0, 1, 0]]), 0, np.array([0, n, 1]),
                np.array([0, -1, 1]), np.array([0.0, np.nan, 1.0]), np.array([0.5, 1, 1]), np.array(["0", "1", "0"]),
                np.array([True, False, True])]
    (size,) = space.shape
    nan = np.zeros((num_envs, size), dtype=np.float32)
    nan[1, 0] = np.nan
    return [np.zeros((num_envs - 1, size)), np.zeros((num_envs, size + 1)), np.zeros(num_envs), 0.0, nan,
            np.full((num_envs, size), "0"), np.zeros((num_envs, size), dtype=bool)]


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_invalid_actions_raise_before_changing_state(env_id):
    env, twin = make(env_id).unwrapped, make(env_id).unwrapped
    env.reset(seed=3)
    twin.reset(seed=3)
    for bad in bad_actions(env.action_space):
        with pytest.raises((ValueError, TypeError)):
            env.step(bad)
    action = actions_of(env.action_space, np.random.default_rng(1))
    got, expected = env.step(action), twin.step(action)
    np.testing.assert_array_equal(got[0], expected[0])
    assert got[1:4] == expected[1:4]
    assert _dicts_equal(got[4], expected[4])

    vec, vec_twin = make_native(env_id, 3), make_native(env_id, 3)
    vec.reset(seed=3)
    vec_twin.reset(seed=3)
    for bad in bad_batches(vec.single_action_space, 3):
        with pytest.raises((ValueError, TypeError)):
            vec.step(bad)
    actions = actions_of(vec.single_action_space, np.random.default_rng(2), 3)
    assert_steps_equal(vec.step(actions), vec_twin.step(actions), "vector env")


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_step_before_reset_raises(env_id):
    env = make(env_id).unwrapped
    with pytest.raises(RuntimeError, match="reset"):
        env.step(actions_of(env.action_space, np.random.default_rng(0)))
    vec = make_native(env_id, 2)
    with pytest.raises(RuntimeError, match="reset"):
        vec.step(actions_of(vec.single_action_space, np.random.default_rng(0), 2))


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_unknown_and_bad_keyword_arguments_are_refused(env_id):
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
# Stable-baselines3 trains on each RL env out of the box


@pytest.mark.parametrize("env_id", RL_ENV_IDS)
def test_sb3_a2c_trains_a_few_hundred_steps(env_id):
    from stable_baselines3 import A2C

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
