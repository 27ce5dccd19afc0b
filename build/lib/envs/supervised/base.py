"""The supervised tasks on the env engine (``envs.episodic``): a task draws whole episodes, one batch steps them.

"Degenerate one-step" environments (TASKS.md section 3): each env step is one timestep of a supervised episode.
The observation is that step's input, the action is the network's output (a Box of ``output_dim`` floats), the
reward is minus that step's loss (0 on steps without loss: ``-loss * mask``), and ``info["target"]``,
``info["loss_mask"]`` and ``info["loss"]`` are about the step just scored. Episodes have a fixed length and end
by truncation; the observation returned with the truncation is all zeros (there is no next input).

A task (:class:`SupervisedTask`) takes and checks the keyword arguments and draws one episode from a numpy
``Generator``: ``inputs`` (T, obs_dim), ``targets`` (T, output_dim), ``mask`` (T,). :class:`SupervisedBatch` puts
B of them on the engine, so that the single env (a batch of one) and the native vector env share one step, one
seeding and one autoreset with the RL envs, and give the same episodes as ``SyncVectorEnv``. The vector env's
``sample_episodes`` returns whole batched episodes (T, B, ...) for a trainer that unrolls a network without
stepping.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import NamedTuple

import numpy as np
from gymnasium import spaces

from envs.checks import MAX_EPISODE_LENGTH, check_int, check_outputs
from envs.episodic import EpisodeBatch, EpisodicEnv, EpisodicVectorEnv
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


def _scored_loss(outputs: np.ndarray, targets: np.ndarray, mask: np.ndarray, kind: str) -> np.ndarray:
    """``step_loss * mask`` computed only where the mask is set (elsewhere 0, even for a huge output whose loss
    is infinite: inf x 0 would be NaN)."""
    loss = np.zeros(mask.shape, dtype=np.float64)
    scored = mask != 0
    if scored.any():
        loss[scored] = step_loss(outputs[scored], targets[scored], kind) * mask[scored]
    return loss


class SupervisedBatch(EpisodeBatch):
    """B episodes of a supervised task on the env engine (``envs.episodic``). Tables (B, T + 1, ...): inputs,
    targets, mask; row T is the all-zero observation returned with the truncation.

    An action is the network's output (B, output_dim); its reward is minus the step's loss, and the step infos
    are about the step just scored (the reset info has none).
    """

    def __init__(self, task: SupervisedTask, num_envs: int) -> None:
        # float32 inputs, targets and mask per step, checked before they are allocated
        super().__init__(num_envs, task.episode_length, bytes_per_step=4 * (task.obs_dim + task.output_dim + 1))
        self.task = task
        T = task.episode_length
        self.inputs = np.zeros((num_envs, T + 1, task.obs_dim), dtype=np.float32)
        self.targets = np.zeros((num_envs, T + 1, task.output_dim), dtype=np.float32)
        self.mask = np.zeros((num_envs, T + 1), dtype=np.float32)
        self._scored: dict[str, np.ndarray] = {}

    def draw_episode(self, rng: np.random.Generator) -> Episode:
        return self.task.draw(rng)

    def load_tables(self, index: int, episode: Episode) -> None:
        T = self.episode_length
        self.inputs[index, :T], self.targets[index, :T], self.mask[index, :T] = episode

    def observation_space(self) -> spaces.Box:
        task = self.task
        return spaces.Box(task.obs_low, task.obs_high, shape=(task.obs_dim,), dtype=np.float32)

    def action_space(self) -> spaces.Box:
        return spaces.Box(-np.inf, np.inf, shape=(self.task.output_dim,), dtype=np.float32)

    def check_actions(self, actions: object) -> np.ndarray:
        return check_outputs(actions, (self.num_envs, self.task.output_dim))

    def check_action(self, action: object) -> np.ndarray:
        return check_outputs(action, (self.task.output_dim,))[None]

    def observe(self) -> np.ndarray:
        return self.inputs[self.rows, self.t]

    def play(self, actions: np.ndarray) -> np.ndarray:
        target, mask = self.targets[self.rows, self.t], self.mask[self.rows, self.t]
        loss = _scored_loss(actions, target, mask, self.task.loss)
        self._scored = {"target": target, "loss_mask": mask.astype(np.float64), "loss": loss}
        return 0.0 - loss  # 0.0 - x: no -0.0 rewards

    def step_infos(self) -> dict[str, np.ndarray]:
        return self._scored

    def reset_infos(self) -> dict[str, np.ndarray]:
        return {}


class _TaskProperties:
    """What both env kinds expose about their task (what a supervised trainer needs)."""

    config: SupervisedTask

    @property
    def task(self) -> SupervisedTask:
        """The task (this env's config: its keyword arguments, checked, and how it draws episodes)."""
        return self.config

    @property
    def loss(self) -> str:
        """``"squared_error"`` or ``"cross_entropy"`` (see envs.supervised.losses)."""
        return self.config.loss

    @property
    def obs_dim(self) -> int:
        return self.config.obs_dim

    @property
    def output_dim(self) -> int:
        return self.config.output_dim


class SupervisedEnv(_TaskProperties, EpisodicEnv):
    """Steps through one episode of its task at a time (a batch of one of :class:`SupervisedBatch`).

    A task's env sets ``config_class`` (its :class:`SupervisedTask`, which takes and checks the keyword
    arguments) and ``metadata`` (no render modes; the paper and tags).
    """

    batch_class = SupervisedBatch


class SupervisedVectorEnv(_TaskProperties, EpisodicVectorEnv):
    """B sub-envs of one task, stepped as arrays; same episodes as B single envs seeded s + i (NEXT_STEP autoreset,
    as ``SyncVectorEnv``: the step after a truncation returns the new first inputs, reward 0, and info entries
    masked out, ``info["_target"]`` False). Declared with ``env_class = <its SupervisedEnv>``.
    """

    def sample_episodes(self, seed: int | Sequence[int | None] | None = None) -> dict[str, np.ndarray]:
        """Draw one whole episode per sub-env, batched: the trainer's fast path (no stepping).

        Returns float32 arrays ``inputs`` (T, B, obs_dim), ``targets`` (T, B, output_dim) and ``mask`` (T, B).
        The episodes come from the sub-envs' own generators: ``sample_episodes(seed=s)`` gives the episodes that
        ``reset(seed=s)`` gives, and successive calls continue the streams as successive autoresets would. The
        episodes being stepped (if any) are left alone.
        """
        self._streams.reseed(seed)
        episode = self.config.draw_batch(self._streams.generators())
        return {"inputs": episode.inputs, "targets": episode.targets, "mask": episode.mask}
