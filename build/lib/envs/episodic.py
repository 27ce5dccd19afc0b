"""One code path for every env here, single and vector: B fixed-length episodes stepped in lock-step.

A task supplies an :class:`EpisodeBatch` subclass (meta-RL tasks: :class:`MetaRLBatch`, which adds the
previous-reward and previous-action inputs and discrete actions; supervised tasks: one generic batch in
``envs.supervised.base``) with

- ``draw_episode(rng)``: ALL the randomness of one episode, drawn at reset (step() draws nothing);
- ``load_tables(i, episode)``: write one drawn episode into row i of the batch's (B, T + 1, ...) tables (row T
  is padding, so that the final observation can be read like any other);
- ``observe()``, ``play(actions)`` and ``step_infos()``: array operations over all B rows at once.

An env module declares its single env with three class attributes (its config, its batch, its metadata) and its
vector env with one (``env_class``): the keyword arguments are the config's, written once, and both envs'
signatures are made from them.

:class:`EpisodicEnv` is a batch of one and :class:`EpisodicVectorEnv` keeps one generator per sub-env, loops over
sub-envs only at reset and steps all B episodes together, so that both produce exactly the same episodes.
Autoreset follows ``SyncVectorEnv``'s NEXT_STEP mode; infos are dicts of arrays with ``"_key"`` masks built with the
dtypes SyncVectorEnv would give (python bool/int/float scalars -> bool/int64/float64 arrays).
"""

from __future__ import annotations

import abc
import dataclasses
import inspect
from collections.abc import Sequence
from typing import Any, ClassVar

import gymnasium as gym
import numpy as np
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space

from envs.checks import check_action, check_actions, check_int, check_options, check_render_mode, check_sizes
from envs.meta_rl import MetaInputs
from envs.seeding import SubEnvStreams


class EpisodeBatch(abc.ABC):
    """B fixed-length episodes of one task in lock-step; the common state is the step t, shape (B,).

    The per-episode tables are (B, T + 1, ...): row T is padding, so that an env already at t = T (about to be
    autoreset) can be stepped with the others harmlessly and then overwritten by ``load``.
    """

    def __init__(self, num_envs: int, episode_length: int, bytes_per_step: int = 16) -> None:
        check_sizes(num_envs, episode_length, bytes_per_step)  # before anything is allocated
        self.num_envs = num_envs
        self.episode_length = episode_length
        self.rows = np.arange(num_envs)
        self.t = np.zeros(num_envs, dtype=np.int64)
        self._ones = np.ones(num_envs, dtype=np.int64)  # t += 1 without a python scalar (cheaper at small B)

    # --- what a task defines -------------------------------------------------------------------------------------
    @abc.abstractmethod
    def draw_episode(self, rng: np.random.Generator) -> Any:
        """All the randomness of one episode (depends only on the task settings, not on the batch state)."""

    @abc.abstractmethod
    def load_tables(self, index: int, episode: Any) -> None:
        """Write the tables of ``episode`` into row ``index``."""

    @abc.abstractmethod
    def observation_space(self) -> gym.spaces.Box:
        """The single-episode observation space (exact bounds)."""

    @abc.abstractmethod
    def action_space(self) -> gym.spaces.Space:
        """The single-episode action space."""

    @abc.abstractmethod
    def check_actions(self, actions: object) -> np.ndarray:
        """``actions`` of all B episodes as an array (B, ...), or raise naming what is wrong (before any change).
        Meta-RL batches keep it (the previous action): a fresh array."""

    @abc.abstractmethod
    def check_action(self, action: object) -> np.ndarray:
        """One episode's ``action`` as a batch of one (1, ...), or raise."""

    @abc.abstractmethod
    def observe(self) -> np.ndarray:
        """Observations (B, D) float32 at the current steps (a fresh array)."""

    @abc.abstractmethod
    def play(self, actions: np.ndarray) -> np.ndarray:
        """Rewards (B,) float64 of ``actions`` (checked) at the current steps, a fresh array (the batch may keep
        it). Draws nothing; may move task state that the next observation shows (the maze's agent), never t
        (``step`` moves it)."""

    @abc.abstractmethod
    def step_infos(self) -> dict[str, np.ndarray]:
        """Infos returned by a step: fresh arrays (B, ...) (handed to the caller without a copy)."""

    def reset_infos(self) -> dict[str, np.ndarray]:
        """Infos returned by a reset, arrays (B, ...): by default those of a step (when they describe the step of
        the observation returned, they are the same after a reset)."""
        return self.step_infos()

    def episode_info(self, episode: Any) -> dict[str, Any]:
        """Extra info about a freshly drawn episode, added to the reset info."""
        return {}

    def render_rgb(self, index: int) -> np.ndarray:
        """Frame (H, W, 3) uint8 of episode ``index`` so far (tasks with the rgb_array render mode)."""
        raise NotImplementedError

    def render_ansi(self, index: int) -> str:
        """Text view of episode ``index`` so far (tasks with the ansi render mode)."""
        raise NotImplementedError

    # --- shared mechanics ----------------------------------------------------------------------------------------
    def load(self, index: int, episode: Any) -> None:
        """Start ``episode`` in row ``index``."""
        self.load_tables(index, episode)
        self.t[index] = 0

    def step(self, actions: np.ndarray) -> np.ndarray:
        """Play ``actions`` (B, ...) (checked) in every episode and move on one step; return the rewards (B,)."""
        rewards = self.play(actions)
        self.record(actions, rewards)
        self.t += self._ones
        return rewards

    def record(self, actions: np.ndarray, rewards: np.ndarray) -> None:
        """Keep what the step at the current t played (``step`` calls it before moving t on); nothing by default."""
        return

    def keep_history(self) -> None:
        """From now on, keep what every step played for ``render_rgb`` / ``render_ansi`` (the envs call it when they
        have a render mode; without one, the steps skip the bookkeeping). Nothing by default."""
        return


class MetaRLBatch(EpisodeBatch):
    """Episodes of a meta-RL task: discrete actions, and the inputs of ``envs.meta_rl`` after the task's own.

    Adds, all (B,): the previous reward and action; and, once ``keep_history()`` was called (by envs with a render
    mode), the history of every step for rendering: actions (-1 = not taken yet) and rewards, (B, T + 1). A task
    defines ``n_actions``, ``write_task_inputs`` and the rest of
    :class:`EpisodeBatch` but the actions and the observation.
    """

    n_actions: int

    def __init__(self, num_envs: int, episode_length: int, bytes_per_step: int = 16) -> None:
        super().__init__(num_envs, episode_length, bytes_per_step)
        self.prev_reward = np.zeros(num_envs, dtype=np.float64)
        self.prev_action = np.full(num_envs, -1, dtype=np.int64)
        self.actions: np.ndarray | None = None  # the history, (B, T + 1), kept from keep_history() on
        self.rewards_seen: np.ndarray | None = None
        self._obs: np.ndarray | None = None  # (B, D) float32, made by the first observe()

    @abc.abstractmethod
    def write_task_inputs(self, out: np.ndarray) -> None:
        """Write the task part of the observation at the current steps into ``out`` (B, D_task) float32 (a view
        of the observation buffer; not called for tasks without task inputs, D_task = 0)."""

    def action_space(self) -> gym.spaces.Discrete:
        return gym.spaces.Discrete(self.n_actions)

    def check_actions(self, actions: object) -> np.ndarray:
        return check_actions(actions, self.n_actions, self.num_envs)

    def check_action(self, action: object) -> np.ndarray:
        return np.array([check_action(action, self.n_actions)], dtype=np.int64)

    def load(self, index: int, episode: Any) -> None:
        super().load(index, episode)
        self.prev_reward[index] = 0.0
        self.prev_action[index] = -1
        if self.actions is not None:
            self.actions[index] = -1
            self.rewards_seen[index] = 0.0

    def keep_history(self) -> None:
        if self.actions is None:
            self.actions = np.full((self.num_envs, self.episode_length + 1), -1, dtype=np.int64)
            self.rewards_seen = np.zeros((self.num_envs, self.episode_length + 1), dtype=np.float64)

    def observe(self) -> np.ndarray:
        """Task inputs, then bias, t/T, previous reward, previous action one-hot: (B, D) float32.

        Written into one buffer kept across steps (a few small writes per step, whatever B is), returned as a copy.
        """
        if self._obs is None:
            self._obs = np.zeros((self.num_envs, self.observation_space().shape[0]), dtype=np.float32)
            task_size = self._obs.shape[1] - (3 + self.n_actions)
            self._obs_task = self._obs[:, :task_size]
            self._meta = MetaInputs(self.episode_length, self.n_actions, self._obs[:, task_size:])
        self._meta.write(self.t, self.prev_reward, self.prev_action)
        if self._obs_task.shape[1]:
            self.write_task_inputs(self._obs_task)
        return self._obs.copy()

    def record(self, actions: np.ndarray, rewards: np.ndarray) -> None:
        if self.actions is not None:
            self.actions[self.rows, self.t] = actions
            self.rewards_seen[self.rows, self.t] = rewards
        self.prev_reward, self.prev_action = rewards, actions  # both fresh arrays, ours (see play, check_actions)


def _config_parameters(config_class: type) -> list[inspect.Parameter]:
    """The keyword arguments of a task: the fields of its config dataclass, or its class's constructor's."""
    if dataclasses.is_dataclass(config_class):
        kw = inspect.Parameter.POSITIONAL_OR_KEYWORD
        return [inspect.Parameter(f.name, kw, default=f.default, annotation=f.type)
                for f in dataclasses.fields(config_class)]
    return [p for p in inspect.signature(config_class).parameters.values()
            if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]


def _env_signature(config_class: type, vector: bool) -> inspect.Signature:
    """``(num_envs=1, <the config's fields>, render_mode=None)``: what users see in help() and their editor."""
    kw = inspect.Parameter.POSITIONAL_OR_KEYWORD
    params = [inspect.Parameter("num_envs", kw, default=1, annotation=int)] if vector else []
    params += [p.replace(kind=kw) for p in _config_parameters(config_class)]
    params.append(inspect.Parameter("render_mode", kw, default=None, annotation="str | None"))
    return inspect.Signature(params)


def _config(config_class: type, args: tuple, kwargs: dict[str, Any], owner: str) -> Any:
    """The task config from an env's arguments (positional in the config's field order, or by name)."""
    names = [p.name for p in _config_parameters(config_class)]
    if len(args) > len(names):
        raise TypeError(f"{owner} takes at most {len(names)} positional arguments ({', '.join(names)}), got "
                        f"{len(args)}")
    for name, value in zip(names, args, strict=False):
        if name in kwargs:
            raise TypeError(f"{owner} got multiple values for argument {name!r}")
        kwargs[name] = value
    unknown = sorted(set(kwargs) - set(names))
    if unknown:
        raise TypeError(f"{owner} got unknown keyword arguments {unknown}; it takes {names} and render_mode")
    return config_class(**kwargs)


def _single_info(infos: dict[str, np.ndarray], index: int) -> dict[str, Any]:
    """Row ``index`` of batched infos (fresh arrays): python scalars for per-episode scalars, arrays otherwise."""
    return {key: (value[index].item() if value.ndim == 1 else value[index]) for key, value in infos.items()}


class EpisodicEnv(gym.Env):
    """A single episode of an :class:`EpisodeBatch` task (a batch of one). Episodes end by truncation.

    A task's env declares ``config_class`` (its frozen dataclass of keyword arguments, or any class taking them,
    checked at construction), ``batch_class`` (built as ``batch_class(config, num_envs)``) and ``metadata``
    (render modes and fps, the source paper and tags). Its signature is made from the config. A "human" render
    mode, where the metadata lists it, shows the rgb frame in a pygame window at every reset and step.
    """

    config_class: ClassVar[type]
    batch_class: ClassVar[type[EpisodeBatch]]
    metadata: ClassVar[dict[str, Any]] = {"render_modes": []}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "config_class" in cls.__dict__:
            cls.__signature__ = _env_signature(cls.config_class, vector=False)

    def __init__(self, *args: Any, render_mode: str | None = None, **kwargs: Any) -> None:
        self.config = _config(self.config_class, args, kwargs, type(self).__name__)
        self.render_mode = check_render_mode(render_mode, self.metadata["render_modes"])
        self._batch = self.batch_class(self.config, 1)
        if self.render_mode is not None:
            self._batch.keep_history()
        self.observation_space = self._batch.observation_space()
        self.action_space = self._batch.action_space()
        self._episode: Any = None
        self._window: Any = None

    @property
    def episode_length(self) -> int:
        return self._batch.episode_length

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[np.ndarray, dict]:
        check_options(options, (), type(self).__name__)
        super().reset(seed=seed)
        self._episode = self._batch.draw_episode(self.np_random)
        self._batch.load(0, self._episode)
        info = _single_info(self._batch.reset_infos(), 0)
        info.update(self._batch.episode_info(self._episode))
        if self.render_mode == "human":
            self.render()
        return self._batch.observe()[0], info

    def step(self, action: object) -> tuple[np.ndarray, float, bool, bool, dict]:
        if self._episode is None:
            raise RuntimeError("call reset() before step()")
        batch = self._batch
        if batch.t[0] >= batch.episode_length:
            raise RuntimeError(f"the episode is over (truncated after {batch.episode_length} steps): call reset()")
        reward = float(batch.step(batch.check_action(action))[0])
        truncated = bool(batch.t[0] >= batch.episode_length)
        if self.render_mode == "human":
            self.render()
        return batch.observe()[0], reward, False, truncated, _single_info(batch.step_infos(), 0)

    def render(self) -> np.ndarray | str | None:
        if self.render_mode is None:
            gym.logger.warn("render() called without a render_mode: pass render_mode= to gym.make")
            return None
        if self._episode is None:
            raise RuntimeError("call reset() before render()")
        if self.render_mode == "ansi":
            return self._batch.render_ansi(0)
        frame = self._batch.render_rgb(0)
        if self.render_mode == "rgb_array":
            return frame
        from envs import maze_render  # pygame, only when a window is asked for

        if self._window is None:
            self._window = maze_render.PygameWindow(self.spec.id if self.spec else type(self).__name__,
                                                    self.metadata["render_fps"])
        self._window.show(maze_render.rgb_to_surface(frame))
        return None

    def close(self) -> None:
        if self._window is not None:
            self._window.close()
            self._window = None


class EpisodicVectorEnv(VectorEnv):
    """B episodes of an :class:`EpisodeBatch` task stepped with array operations; same episodes as SyncVectorEnv.

    Declared by its single env: ``env_class = <the EpisodicEnv>`` gives the config, the batch, the signature
    (``num_envs`` first) and the metadata (the single env's, without "human", with NEXT_STEP autoreset).
    Sub-env i has its own generator, seeded with ``seed + i`` by ``reset(seed=seed)``; ``reset(seed=None)`` keeps
    the streams; ``options={"reset_mask": mask}`` resets only some sub-envs. NEXT_STEP autoreset: the step after
    an episode's truncation resets it (its action is ignored, reward 0, the info is the reset info).
    """

    env_class: ClassVar[type[EpisodicEnv]]
    config_class: ClassVar[type]
    batch_class: ClassVar[type[EpisodeBatch]]
    metadata: ClassVar[dict[str, Any]] = {"render_modes": [], "autoreset_mode": AutoresetMode.NEXT_STEP}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "env_class" in cls.__dict__:
            single = cls.env_class
            cls.config_class, cls.batch_class = single.config_class, single.batch_class
            modes = [mode for mode in single.metadata["render_modes"] if mode != "human"]
            cls.metadata = {**single.metadata, "render_modes": modes, "autoreset_mode": AutoresetMode.NEXT_STEP}
            cls.__signature__ = _env_signature(cls.config_class, vector=True)

    def __init__(self, num_envs: int = 1, *args: Any, render_mode: str | None = None, **kwargs: Any) -> None:
        num_envs = check_int("num_envs", num_envs, 1)
        self.config = _config(self.config_class, args, kwargs, type(self).__name__)
        self.render_mode = check_render_mode(render_mode, self.metadata["render_modes"])
        self._batch = self.batch_class(self.config, num_envs)
        if self.render_mode is not None:
            self._batch.keep_history()
        self.num_envs = num_envs
        self.single_observation_space = self._batch.observation_space()
        self.observation_space = batch_space(self.single_observation_space, self.num_envs)
        self.single_action_space = self._batch.action_space()
        self.action_space = batch_space(self.single_action_space, self.num_envs)
        self._streams = SubEnvStreams(num_envs)
        self._autoreset = np.zeros(self.num_envs, dtype=np.bool_)
        self._started = False

    @property
    def episode_length(self) -> int:
        return self._batch.episode_length

    @property
    def np_random(self) -> tuple[np.random.Generator, ...]:  # type: ignore[override]
        """One generator per sub-env, like ``SyncVectorEnv.np_random``."""
        return self._streams.generators()

    @property
    def np_random_seed(self) -> tuple[int | None, ...]:  # type: ignore[override]
        self._streams.generators()
        return tuple(self._streams.seeds)

    def _reset_envs(self, indices: np.ndarray, infos: dict[str, Any]) -> None:
        """Draw and load a new episode for each sub-env in ``indices`` (the only loop over sub-envs)."""
        for i in indices:
            episode = self._batch.draw_episode(self._streams.rngs[i])
            self._batch.load(int(i), episode)
            for key, value in self._batch.episode_info(episode).items():
                _add_to_vector_info(infos, key, value, int(i), self.num_envs)

    def reset(
        self, *, seed: int | Sequence[int | None] | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        options = check_options(options, ("reset_mask",), type(self).__name__)
        mask = np.ones(self.num_envs, dtype=np.bool_)
        if "reset_mask" in options:
            mask = options["reset_mask"]
            if not isinstance(mask, np.ndarray) or mask.shape != (self.num_envs,) or mask.dtype != np.bool_:
                raise ValueError(f"options['reset_mask'] must be a bool array of shape ({self.num_envs},), got "
                                 f"{mask!r}")
            if not mask.any():
                raise ValueError("options['reset_mask'] must select at least one sub-env")
            if not self._started and not mask.all():
                raise ValueError("the first reset() must reset every sub-env (no partial options['reset_mask'])")
        self._streams.reseed(seed, mask)
        infos: dict[str, Any] = {}
        indices = np.flatnonzero(mask)
        self._reset_envs(indices, infos)
        self._autoreset[indices] = False
        self._started = True
        for key, value in self._batch.reset_infos().items():
            _add_masked(infos, key, value, mask)
        return self._batch.observe(), infos

    def step(self, actions: object) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        if not self._started:
            raise RuntimeError("call reset() before step()")
        actions = self._batch.check_actions(actions)
        # Every row is stepped (rows waiting for autoreset sit at t = T on padding); those rows are then reloaded
        # and report their reset info.
        rewards = self._batch.step(actions)
        infos: dict[str, Any] = {}
        restarting = np.flatnonzero(self._autoreset)
        if restarting.size:
            self._reset_envs(restarting, infos)
            rewards[restarting] = 0.0
        truncations = self._batch.t >= self.episode_length
        self._autoreset = truncations.copy()
        self._add_step_infos(infos, restarting)
        return self._batch.observe(), rewards.copy(), np.zeros(self.num_envs, dtype=np.bool_), truncations, infos

    def _add_step_infos(self, infos: dict[str, Any], restarting: np.ndarray) -> None:
        """The step infos of every sub-env but those in ``restarting``, which report their reset info instead
        (SyncVectorEnv's NEXT_STEP rule)."""
        step_infos = self._batch.step_infos()
        if not restarting.size:  # the common case: every sub-env reports its step
            for key, value in step_infos.items():
                infos[key], infos[f"_{key}"] = value, np.ones(self.num_envs, dtype=np.bool_)
            return
        stepped = np.ones(self.num_envs, dtype=np.bool_)
        stepped[restarting] = False
        reset_infos = self._batch.reset_infos()
        for key in step_infos | reset_infos:
            if key in step_infos and key in reset_infos:
                value, mask = step_infos[key].copy(), np.ones(self.num_envs, dtype=np.bool_)
                value[restarting] = reset_infos[key][restarting]
            elif key in step_infos:
                value, mask = step_infos[key], stepped
            else:
                value, mask = reset_infos[key], ~stepped
            _add_masked(infos, key, value, mask)

    def render(self) -> tuple[np.ndarray | str, ...] | None:
        if self.render_mode is None:
            gym.logger.warn("render() called without a render_mode: pass render_mode= to gym.make_vec")
            return None
        if not self._started:
            raise RuntimeError("call reset() before render()")
        draw = self._batch.render_rgb if self.render_mode == "rgb_array" else self._batch.render_ansi
        return tuple(draw(i) for i in range(self.num_envs))


def _add_masked(infos: dict[str, Any], key: str, values: np.ndarray, mask: np.ndarray) -> None:
    """Batched info ``values`` (B, ...) kept only where ``mask``; zeros elsewhere, and no key where no sub-env
    reports it, as SyncVectorEnv would give."""
    if not mask.any():
        return
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
