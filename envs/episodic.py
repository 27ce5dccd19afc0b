"""One code path for a single env and its native vector env: B fixed-length episodes stepped in lock-step.

A task supplies an :class:`EpisodeBatch` subclass with

- ``draw_episode(rng)``: ALL the randomness of one episode, drawn at reset into a dict of arrays (step() draws
  nothing), padded to ``episode_length + 1`` steps so that the final observation can be read like any other;
- ``load(i, episode)``: write one drawn episode into row i of the batch arrays;
- ``observe()``, ``rewards(actions)`` and ``step_infos()``: array operations over all B rows at once.

:class:`EpisodicEnv` is a batch of one and :class:`EpisodicVectorEnv` keeps one generator per sub-env, loops over
sub-envs only at reset and steps all B episodes together, so that both produce exactly the same episodes.
Autoreset follows ``SyncVectorEnv``'s NEXT_STEP mode; infos are dicts of arrays with ``"_key"`` masks built with the
dtypes SyncVectorEnv would give (python bool/int/float scalars -> bool/int64/float64 arrays).
"""

from __future__ import annotations

import abc
import numbers
from collections.abc import Sequence
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium.utils import seeding
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space

from envs.meta_rl import check_action, check_actions, meta_features

RENDER_MODES = ["ansi", "rgb_array"]
MAX_EPISODE_LENGTH = 100_000  # steps (the A2C trainer gives up on episodes longer than this anyway)
MAX_NUM_ENVS = 100_000
MAX_TABLE_BYTES = 8 * 2**30  # the episodes' (B, T + 1, ...) tables, checked before they are allocated


def check_sizes(num_envs: int, episode_length: int, bytes_per_step: int) -> None:
    """``ValueError`` (with the numbers) when B episodes of T steps are too many or too large to allocate."""
    if num_envs > MAX_NUM_ENVS:
        raise ValueError(f"num_envs must be at most {MAX_NUM_ENVS}, got {num_envs}")
    if episode_length > MAX_EPISODE_LENGTH:
        raise ValueError(f"episode_length must be at most {MAX_EPISODE_LENGTH}, got {episode_length}")
    need = num_envs * (episode_length + 1) * bytes_per_step
    if need > MAX_TABLE_BYTES:
        raise ValueError(
            f"{num_envs} episodes of {episode_length} steps need about {need / 2**30:.1f} GiB of episode tables, more "
            f"than the {MAX_TABLE_BYTES / 2**30:.0f} GiB allowed; lower num_envs (--batch) or episode_length"
        )


def check_int_arg(name: str, value: object, minimum: int) -> int:
    """Return ``value`` as an int, or raise naming the keyword argument ``name``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer, got {type(value).__name__} {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be at least {minimum}, got {value}")
    return int(value)


def check_probabilities_arg(name: str, values: object) -> np.ndarray:
    """Return ``values`` as a float64 array of probabilities, or raise naming the keyword argument ``name``."""
    try:
        arr = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise TypeError(f"{name} must be numbers in [0, 1], got {values!r}") from err
    if not np.all(np.isfinite(arr)) or np.any(arr < 0) or np.any(arr > 1):
        raise ValueError(f"{name} must be probabilities in [0, 1], got {values!r}")
    return arr


def check_render_mode(render_mode: str | None) -> str | None:
    if render_mode is not None and render_mode not in RENDER_MODES:
        raise ValueError(f"render_mode must be None or one of {RENDER_MODES}, got {render_mode!r}")
    return render_mode


class EpisodeBatch(abc.ABC):
    """B episodes of one task in lock-step. Common state, all shape (B,): the step t, previous reward and action.

    The per-episode tables are (B, T + 1, ...): row T is padding, so that an env already at t = T (about to be
    autoreset) can be stepped with the others harmlessly and then overwritten by ``load``.
    """

    n_actions: int
    reward_range: tuple[float, float]

    def __init__(self, num_envs: int, episode_length: int, bytes_per_step: int = 16) -> None:
        check_sizes(num_envs, episode_length, bytes_per_step)  # before anything is allocated
        self.num_envs = num_envs
        self.episode_length = episode_length
        self.rows = np.arange(num_envs)
        self.t = np.zeros(num_envs, dtype=np.int64)
        self.prev_reward = np.zeros(num_envs, dtype=np.float64)
        self.prev_action = np.full(num_envs, -1, dtype=np.int64)
        # History for rendering: actions (-1 = not taken yet) and rewards of every step, (B, T + 1).
        self.actions = np.full((num_envs, episode_length + 1), -1, dtype=np.int64)
        self.rewards_seen = np.zeros((num_envs, episode_length + 1), dtype=np.float64)

    # --- what a task defines -------------------------------------------------------------------------------------
    @abc.abstractmethod
    def draw_episode(self, rng: np.random.Generator) -> dict[str, np.ndarray]:
        """All the randomness of one episode (depends only on the task settings, not on the batch state)."""

    @abc.abstractmethod
    def load_tables(self, index: int, episode: dict[str, np.ndarray]) -> None:
        """Write the tables of ``episode`` into row ``index``."""

    @abc.abstractmethod
    def task_inputs(self) -> np.ndarray:
        """Task part of the observation at the current steps, (B, D_task) float32."""

    @abc.abstractmethod
    def rewards(self, actions: np.ndarray) -> np.ndarray:
        """Rewards (B,) float64 of ``actions`` (B,) at the current steps; changes no state."""

    @abc.abstractmethod
    def step_infos(self) -> dict[str, np.ndarray]:
        """Infos describing the current steps (the observation just returned): arrays (B, ...)."""

    @abc.abstractmethod
    def episode_info(self, episode: dict[str, np.ndarray]) -> dict[str, Any]:
        """Extra info about a freshly drawn episode, added to the reset info."""

    @abc.abstractmethod
    def observation_space(self) -> gym.spaces.Box:
        """The single-episode observation space (exact bounds)."""

    @abc.abstractmethod
    def render_rgb(self, index: int) -> np.ndarray:
        """Frame (H, W, 3) uint8 of episode ``index`` so far."""

    @abc.abstractmethod
    def render_ansi(self, index: int) -> str:
        """Text view of episode ``index`` so far."""

    # --- shared mechanics ----------------------------------------------------------------------------------------
    def load(self, index: int, episode: dict[str, np.ndarray]) -> None:
        self.load_tables(index, episode)
        self.t[index] = 0
        self.prev_reward[index] = 0.0
        self.prev_action[index] = -1
        self.actions[index] = -1
        self.rewards_seen[index] = 0.0

    def observe(self) -> np.ndarray:
        """Observations (B, D) float32: task inputs, then bias, t/T, previous reward, previous action one-hot."""
        meta = meta_features(self.t, self.episode_length, self.prev_reward, self.prev_action, self.n_actions)
        return np.concatenate([self.task_inputs(), meta], axis=1)

    def step(self, actions: np.ndarray) -> np.ndarray:
        """Play ``actions`` (B,) int64 (already checked) in every episode; return the rewards (B,) float64."""
        rewards = self.rewards(actions)
        self.actions[self.rows, self.t] = actions
        self.rewards_seen[self.rows, self.t] = rewards
        self.prev_reward = rewards.copy()
        self.prev_action = actions.copy()
        self.t += 1
        return rewards


def _single_info(infos: dict[str, np.ndarray], index: int) -> dict[str, Any]:
    """Row ``index`` of batched infos: python scalars for per-episode scalars, arrays otherwise."""
    return {key: (value[index].item() if value.ndim == 1 else value[index].copy()) for key, value in infos.items()}


class EpisodicEnv(gym.Env):
    """A single episode of an :class:`EpisodeBatch` task (a batch of one). Episodes end by truncation."""

    metadata = {"render_modes": RENDER_MODES, "render_fps": 4}

    def __init__(self, batch: EpisodeBatch, render_mode: str | None = None) -> None:
        self.render_mode = check_render_mode(render_mode)
        self._batch = batch
        self.observation_space = batch.observation_space()
        self.action_space = gym.spaces.Discrete(batch.n_actions)
        self._episode: dict[str, np.ndarray] | None = None

    @property
    def episode_length(self) -> int:
        return self._batch.episode_length

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[np.ndarray, dict]:
        super().reset(seed=seed)
        self._episode = self._batch.draw_episode(self.np_random)
        self._batch.load(0, self._episode)
        info = _single_info(self._batch.step_infos(), 0)
        info.update(self._batch.episode_info(self._episode))
        return self._batch.observe()[0], info

    def step(self, action: object) -> tuple[np.ndarray, float, bool, bool, dict]:
        if self._episode is None:
            raise RuntimeError("call reset() before step()")
        if self._batch.t[0] >= self.episode_length:
            raise RuntimeError("the episode is over (truncated): call reset() before stepping again")
        action = check_action(action, self._batch.n_actions)
        reward = float(self._batch.step(np.array([action], dtype=np.int64))[0])
        truncated = bool(self._batch.t[0] >= self.episode_length)
        return self._batch.observe()[0], reward, False, truncated, _single_info(self._batch.step_infos(), 0)

    def render(self) -> np.ndarray | str | None:
        if self.render_mode is None:
            gym.logger.warn("render() called without a render_mode; pass render_mode='rgb_array' or 'ansi'")
            return None
        if self._episode is None:
            raise RuntimeError("call reset() before render()")
        return self._batch.render_rgb(0) if self.render_mode == "rgb_array" else self._batch.render_ansi(0)


class EpisodicVectorEnv(VectorEnv):
    """B episodes of an :class:`EpisodeBatch` task stepped with array operations; same episodes as SyncVectorEnv.

    Sub-env i has its own generator, seeded with ``seed + i`` by ``reset(seed=seed)``; ``reset(seed=None)`` keeps
    the streams. NEXT_STEP autoreset: the step after an episode's truncation resets it (its action is ignored,
    reward 0, the info is the reset info).
    """

    metadata = {"render_modes": RENDER_MODES, "render_fps": 4, "autoreset_mode": AutoresetMode.NEXT_STEP}

    def __init__(self, batch: EpisodeBatch, render_mode: str | None = None) -> None:
        self.render_mode = check_render_mode(render_mode)
        self.num_envs = batch.num_envs
        self._batch = batch
        self.single_observation_space = batch.observation_space()
        self.observation_space = batch_space(self.single_observation_space, self.num_envs)
        self.single_action_space = gym.spaces.Discrete(batch.n_actions)
        self.action_space = batch_space(self.single_action_space, self.num_envs)
        self._rngs: list[np.random.Generator] | None = None
        self._seeds: list[int | None] = [None] * self.num_envs
        self._autoreset = np.zeros(self.num_envs, dtype=np.bool_)
        self._started = False

    @property
    def episode_length(self) -> int:
        return self._batch.episode_length

    @property
    def np_random(self) -> tuple[np.random.Generator, ...]:  # type: ignore[override]
        """One generator per sub-env, like ``SyncVectorEnv.np_random``."""
        if self._rngs is None:
            self._seed_streams([None] * self.num_envs, np.ones(self.num_envs, dtype=np.bool_))
        return tuple(self._rngs)

    @property
    def np_random_seed(self) -> tuple[int | None, ...]:  # type: ignore[override]
        self.np_random  # noqa: B018 (creates the streams if needed)
        return tuple(self._seeds)

    def _seed_streams(self, seeds: Sequence[int | None], mask: np.ndarray) -> None:
        if self._rngs is None:
            self._rngs = [None] * self.num_envs  # type: ignore[list-item]
        for i in np.flatnonzero(mask):
            if seeds[i] is not None or self._rngs[i] is None:
                self._rngs[i], self._seeds[i] = seeding.np_random(seeds[i])

    def _reset_envs(self, indices: np.ndarray, infos: dict[str, Any]) -> None:
        """Draw and load a new episode for each sub-env in ``indices`` (the only loop over sub-envs)."""
        for i in indices:
            episode = self._batch.draw_episode(self._rngs[i])
            self._batch.load(int(i), episode)
            for key, value in self._batch.episode_info(episode).items():
                _add_to_vector_info(infos, key, value, int(i), self.num_envs)

    def reset(
        self, *, seed: int | Sequence[int | None] | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        if seed is None:
            seeds: list[int | None] = [None] * self.num_envs
        elif isinstance(seed, numbers.Integral) and not isinstance(seed, bool):
            seeds = [int(seed) + i for i in range(self.num_envs)]
        else:
            seeds = list(seed)  # type: ignore[arg-type]
            if len(seeds) != self.num_envs:
                raise ValueError(f"seed: expected {self.num_envs} seeds, got {len(seeds)}")
        mask = np.ones(self.num_envs, dtype=np.bool_)
        if options is not None and "reset_mask" in options:
            mask = np.asarray(options["reset_mask"])
            if mask.shape != (self.num_envs,) or mask.dtype != np.bool_ or not mask.any():
                raise ValueError(f"options['reset_mask'] must be a bool array of shape ({self.num_envs},) with a True")
            if not self._started and not mask.all():
                raise ValueError("the first reset() must reset every sub-env (no partial options['reset_mask'])")
        self._seed_streams(seeds, mask)
        infos: dict[str, Any] = {}
        indices = np.flatnonzero(mask)
        self._reset_envs(indices, infos)
        self._autoreset[indices] = False
        self._started = True
        step_infos = self._batch.step_infos()
        for key, value in step_infos.items():
            _add_masked(infos, key, value, mask)
        return self._batch.observe(), infos

    def step(self, actions: object) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        if not self._started:
            raise RuntimeError("call reset() before step()")
        actions = check_actions(actions, self._batch.n_actions, self.num_envs)
        # Every row is stepped (rows waiting for autoreset sit at t = T on padding); those rows are then reloaded.
        rewards = self._batch.step(actions)
        infos: dict[str, Any] = {}
        restarting = np.flatnonzero(self._autoreset)
        if restarting.size:
            self._reset_envs(restarting, infos)
            rewards[restarting] = 0.0
        truncations = self._batch.t >= self.episode_length
        self._autoreset = truncations.copy()
        for key, value in self._batch.step_infos().items():
            infos[key], infos[f"_{key}"] = value, np.ones(self.num_envs, dtype=np.bool_)
        return self._batch.observe(), rewards, np.zeros(self.num_envs, dtype=np.bool_), truncations, infos

    def render(self) -> tuple[np.ndarray | str, ...] | None:
        if self.render_mode is None:
            gym.logger.warn("render() called without a render_mode; pass render_mode='rgb_array' or 'ansi'")
            return None
        if not self._started:
            raise RuntimeError("call reset() before render()")
        draw = self._batch.render_rgb if self.render_mode == "rgb_array" else self._batch.render_ansi
        return tuple(draw(i) for i in range(self.num_envs))


def _add_masked(infos: dict[str, Any], key: str, values: np.ndarray, mask: np.ndarray) -> None:
    """Batched info ``values`` (B, ...) kept only where ``mask``; zeros elsewhere, as SyncVectorEnv would give."""
    if mask.all():
        infos[key], infos[f"_{key}"] = values, mask.copy()
    else:
        kept = np.zeros_like(values)
        kept[mask] = values[mask]
        infos[key], infos[f"_{key}"] = kept, mask.copy()


def _add_to_vector_info(infos: dict[str, Any], key: str, value: Any, index: int, num_envs: int) -> None:
    """SyncVectorEnv's rule for one sub-env's info value (scalars -> (B,) arrays, arrays -> (B, ...) arrays)."""
    if key not in infos:
        if type(value) in (int, float, bool) or isinstance(value, np.number):
            infos[key] = np.zeros(num_envs, dtype=type(value))
        elif isinstance(value, np.ndarray):
            infos[key] = np.zeros((num_envs, *value.shape), dtype=value.dtype)
        else:
            infos[key] = np.full(num_envs, None, dtype=object)
        infos[f"_{key}"] = np.zeros(num_envs, dtype=np.bool_)
    infos[key][index] = value
    infos[f"_{key}"][index] = True
