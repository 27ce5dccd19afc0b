"""One base for every supervised task: a task draws whole episodes; two generic envs step through them.

"Degenerate one-step" environments (TASKS.md section 3): each env step is one timestep of a supervised episode.
The observation is that step's input, the action is the network's output (a Box of ``output_dim`` floats), the
reward is minus that step's loss (0 on steps without loss: ``-loss * mask``), and ``info["target"]`` and
``info["loss_mask"]`` give the target of the step just scored. Episodes have a fixed length and end by
truncation; the observation returned with the truncation is all zeros (there is no next input).

A task is a function of a numpy ``Generator`` that draws one episode: ``inputs`` (T, obs_dim), ``targets``
(T, output_dim), ``mask`` (T,). The native vector env seeds sub-env i with ``seed + i`` (like ``SyncVectorEnv``)
and so gives the same episodes as B single envs; its ``sample_episodes`` returns whole batched episodes
(T, B, ...) for a trainer that unrolls a network without stepping.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any, NamedTuple

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space

from envs.checks import MAX_EPISODE_LENGTH, check_int, check_options, check_outputs, check_render_mode, check_sizes
from envs.seeding import SubEnvStreams
from envs.supervised.losses import check_loss_kind, step_loss


class Episode(NamedTuple):
    """One episode (T, ...) or a batch of episodes (T, B, ...); all float32."""

    inputs: np.ndarray  # (T, obs_dim) or (T, B, obs_dim)
    targets: np.ndarray  # (T, output_dim) or (T, B, output_dim)
    mask: np.ndarray  # (T,) or (T, B): 1 where the step's loss counts


class SupervisedTask(ABC):
    """A supervised meta-learning task: fixed episode length, input and output sizes, and a loss kind.

    Subclasses validate their keyword arguments, call ``super().__init__`` with the sizes, and implement
    ``fill``. ``obs_low``/``obs_high`` bound every input (they make the observation space).
    """

    def __init__(
        self, *, episode_length: int, obs_dim: int, output_dim: int, loss: str, obs_low: float, obs_high: float
    ) -> None:
        check_loss_kind(loss)
        self.episode_length = check_int("episode_length", episode_length)
        if self.episode_length > MAX_EPISODE_LENGTH:
            raise ValueError(f"episode_length must be at most {MAX_EPISODE_LENGTH}, got {self.episode_length}")
        self.obs_dim = check_int("obs_dim", obs_dim)
        self.output_dim = check_int("output_dim", output_dim)
        self.loss = loss
        self.obs_low = float(obs_low)
        self.obs_high = float(obs_high)

    @abstractmethod
    def fill(self, rng: np.random.Generator, episode: Episode) -> None:
        """Draw one episode from ``rng`` into the all-zero arrays ``episode``: inputs (T, obs_dim),
        targets (T, output_dim), mask (T,) (possibly strided views into a batch)."""

    def draw(self, rng: np.random.Generator) -> Episode:
        """One episode from ``rng``: inputs (T, obs_dim), targets (T, output_dim), mask (T,)."""
        T = self.episode_length
        episode = Episode(
            np.zeros((T, self.obs_dim), dtype=np.float32),
            np.zeros((T, self.output_dim), dtype=np.float32),
            np.zeros(T, dtype=np.float32),
        )
        self.fill(rng, episode)
        return episode

    def draw_batch(self, rngs: Sequence[np.random.Generator]) -> Episode:
        """One episode per generator, batched as (T, B, ...): episode i is ``draw(rngs[i])``.

        Each sub-env owns its generator (for reproducibility and equality with single envs), so the draw loops
        over the batch, writing each episode in place; the per-episode work inside ``fill`` is vectorised.
        """
        T, B = self.episode_length, len(rngs)
        batch = Episode(
            np.zeros((T, B, self.obs_dim), dtype=np.float32),
            np.zeros((T, B, self.output_dim), dtype=np.float32),
            np.zeros((T, B), dtype=np.float32),
        )
        for i, rng in enumerate(rngs):
            self.fill(rng, Episode(batch.inputs[:, i], batch.targets[:, i], batch.mask[:, i]))
        return batch

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(T={self.episode_length}, obs_dim={self.obs_dim}, output_dim={self.output_dim}, "
            f"loss={self.loss!r})"
        )


class _TaskMixin:
    """What both env kinds expose about their task (what a supervised trainer needs)."""

    task: SupervisedTask

    @property
    def loss(self) -> str:
        """``"squared_error"`` or ``"cross_entropy"`` (see envs.supervised.losses)."""
        return self.task.loss

    @property
    def episode_length(self) -> int:
        return self.task.episode_length

    @property
    def obs_dim(self) -> int:
        return self.task.obs_dim

    @property
    def output_dim(self) -> int:
        return self.task.output_dim

    def _spaces(self) -> tuple[spaces.Box, spaces.Box]:
        task = self.task
        obs = spaces.Box(task.obs_low, task.obs_high, shape=(task.obs_dim,), dtype=np.float32)
        act = spaces.Box(-np.inf, np.inf, shape=(task.output_dim,), dtype=np.float32)
        return obs, act


def _scored_loss(outputs: np.ndarray, targets: np.ndarray, mask: np.ndarray, kind: str) -> np.ndarray:
    """``step_loss * mask`` computed only where the mask is set (elsewhere 0, even for a huge output whose loss
    is infinite: inf x 0 would be NaN)."""
    loss = np.zeros(mask.shape, dtype=np.float64)
    scored = mask != 0
    if scored.any():
        loss[scored] = step_loss(outputs[scored], targets[scored], kind) * mask[scored]
    return loss


# -- single env -----------------------------------------------------------------------------------------------
class SupervisedEnv(_TaskMixin, gym.Env[np.ndarray, np.ndarray]):
    """Steps through one episode of ``task_class`` at a time; keyword arguments go to the task.

    Subclasses only set ``task_class``. ``reset`` draws a new episode from the env's generator.
    """

    metadata: dict[str, Any] = {"render_modes": []}
    task_class: type[SupervisedTask]

    def __init__(self, render_mode: str | None = None, **task_kwargs: Any) -> None:
        self.render_mode = check_render_mode(render_mode, self.metadata["render_modes"])
        self.task = self.task_class(**task_kwargs)
        self.observation_space, self.action_space = self._spaces()
        self._episode: Episode | None = None
        self._t = 0

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[np.ndarray, dict]:
        check_options(options, (), type(self).__name__)
        super().reset(seed=seed)
        self._episode = self.task.draw(self.np_random)
        self._t = 0
        return self._episode.inputs[0].copy(), {}

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        if self._episode is None:
            raise RuntimeError("call reset() before step()")
        if self._t >= self.task.episode_length:
            raise RuntimeError("the episode is over (truncated): call reset()")
        output = check_outputs(action, (self.task.output_dim,))
        t = self._t
        target, mask = self._episode.targets[t], float(self._episode.mask[t])
        loss = float(step_loss(output, target, self.task.loss)) * mask if mask != 0 else 0.0
        self._t += 1
        truncated = self._t == self.task.episode_length
        obs = np.zeros(self.task.obs_dim, dtype=np.float32) if truncated else self._episode.inputs[self._t].copy()
        info = {"target": target.copy(), "loss_mask": mask, "loss": loss}
        return obs, 0.0 - loss, False, truncated, info  # 0.0 - x: no -0.0 rewards


# -- vector env -----------------------------------------------------------------------------------------------
class SupervisedVectorEnv(_TaskMixin, VectorEnv):
    """B synchronised sub-envs of one task, stepped as arrays; same episodes as B single envs seeded s+i.

    All episodes have the same length, so the sub-envs stay in step: after the step that truncates them all,
    the next ``step`` autoresets them all (NEXT_STEP, as ``SyncVectorEnv``): it returns the new first inputs,
    reward 0, no termination or truncation, and info entries masked out (``info["_target"]`` False).
    """

    metadata: dict[str, Any] = {"render_modes": [], "autoreset_mode": AutoresetMode.NEXT_STEP}
    task_class: type[SupervisedTask]

    def __init__(self, num_envs: int = 1, render_mode: str | None = None, **task_kwargs: Any) -> None:
        self.render_mode = check_render_mode(render_mode, self.metadata["render_modes"])
        self.num_envs = check_int("num_envs", num_envs)
        self.task = self.task_class(**task_kwargs)
        # a batch of whole episodes: float32 inputs, targets and mask per step, checked before it is allocated
        check_sizes(self.num_envs, self.task.episode_length, 4 * (self.task.obs_dim + self.task.output_dim + 1))
        self.single_observation_space, self.single_action_space = self._spaces()
        self.observation_space = batch_space(self.single_observation_space, self.num_envs)
        self.action_space = batch_space(self.single_action_space, self.num_envs)
        self._streams = SubEnvStreams(self.num_envs)
        self._episode: Episode | None = None
        self._t = 0

    # -- seeding and fast path ------------------------------------------------------------------------------
    def _seed(self, seed: int | Sequence[int | None] | None) -> tuple[np.random.Generator, ...]:
        """The sub-envs' generators after ``reset(seed=seed)``'s reseeding (``envs.seeding``)."""
        self._streams.reseed(seed)
        return self._streams.generators()

    def sample_episodes(self, seed: int | Sequence[int | None] | None = None) -> dict[str, np.ndarray]:
        """Draw one whole episode per sub-env, batched: the trainer's fast path (no stepping).

        Returns float32 arrays ``inputs`` (T, B, obs_dim), ``targets`` (T, B, output_dim) and ``mask`` (T, B).
        The episodes come from the sub-envs' own generators: ``sample_episodes(seed=s)`` gives the episodes that
        ``reset(seed=s)`` gives, and successive calls continue the streams as successive autoresets would. The
        episode being stepped (if any) is left alone.
        """
        episode = self.task.draw_batch(self._seed(seed))
        return {"inputs": episode.inputs, "targets": episode.targets, "mask": episode.mask}

    # -- gymnasium API --------------------------------------------------------------------------------------
    def reset(
        self, *, seed: int | Sequence[int | None] | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        check_options(options, (), type(self).__name__)
        self._episode = self.task.draw_batch(self._seed(seed))
        self._t = 0
        return self._episode.inputs[0].copy(), {}

    def step(
        self, actions: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        if self._episode is None:
            raise RuntimeError("call reset() before step()")
        B, T = self.num_envs, self.task.episode_length
        outputs = check_outputs(actions, (B, self.task.output_dim))
        no_end = np.zeros(B, dtype=np.bool_)
        if self._t >= T:  # NEXT_STEP autoreset of every sub-env
            obs, _ = self.reset()
            info = {
                "target": np.zeros((B, self.task.output_dim), dtype=np.float32),
                "loss_mask": np.zeros(B),
                "loss": np.zeros(B),
            }
            info.update({f"_{key}": no_end.copy() for key in list(info)})
            return obs, np.zeros(B), no_end, no_end.copy(), info
        t = self._t
        target, mask = self._episode.targets[t], self._episode.mask[t]
        loss = _scored_loss(outputs, target, mask, self.task.loss)
        self._t += 1
        ended = self._t == T
        truncated = np.full(B, ended)
        obs = np.zeros((B, self.task.obs_dim), dtype=np.float32) if ended else self._episode.inputs[self._t].copy()
        everywhere = np.ones(B, dtype=np.bool_)
        info = {
            "target": target.copy(), "_target": everywhere, "loss_mask": mask.astype(np.float64),
            "_loss_mask": everywhere.copy(),
            "loss": loss, "_loss": everywhere.copy(),
        }
        return obs, 0.0 - loss, no_end, truncated, info
