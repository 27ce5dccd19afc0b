"""The Backpropamine maze (Miconi et al. 2019): find the invisible reward cell, then come back to it after each
teleport.

## Description
A ``size`` x ``size`` grid (13 by default, odd) has walls on its border and on every cell whose row and column
are both even, except the centre. Each episode one free cell other than the centre hides a reward. The agent
starts at the centre and sees only its 3x3 neighbourhood; stepping onto the reward cell pays and teleports the
agent to a random free cell, so that a good agent learns the cell's place within the episode and goes back.
Everything random in an episode (the reward cell, one teleport destination per step) is drawn at reset.

## Observation
``Box(17,)`` float32:

| index | input | range |
|---|---|---|
| 0-8 | the 3x3 neighbourhood, row-major, 1 = wall (index 4 is the agent's own cell, always 0) | {0, 1} |
| 9 | always 0: where the authors' 2019 code left one unused input, so that sizes and parameter counts match | 0 |
| 10 | bias | 1 |
| 11 | t / episode_length | [0, 1] |
| 12 | previous reward | [-wall_penalty, reward_value] |
| 13-16 | previous action one-hot (all 0 at t = 0) | {0, 1} |

Info: "agent_pos" and "reward_pos" (row, col) int64, "reward_hit" (the reward was collected this step; "agent_pos"
is then the teleport destination).

## Actions
``Discrete(4)``: 0 up, 1 down, 2 left, 3 right.

## Rewards
-``wall_penalty`` for walking into a wall (the agent stays in place), +``reward_value`` for stepping onto the
reward cell (then teleported to a random free cell, never the reward cell), 0 otherwise.

## Episode end
Truncated after ``episode_length`` steps; never terminated.

## Arguments
``size`` (13; odd, 5..1001), ``episode_length`` (200), ``wall_penalty`` (0.0), ``reward_value`` (10.0).
``size=9, episode_length=250, wall_penalty=0.1`` is the 2018 (Differentiable plasticity) variant.

## Registered ids
``Plastic/Maze-v0``: ``gym.make`` gives :class:`MazeEnv` (render modes human, rgb_array, ansi);
``gym.make_vec(..., vectorization_mode="vector_entry_point")`` gives :class:`MazeVectorEnv` (rgb_array, ansi),
the same episodes as ``SyncVectorEnv`` over B ``MazeEnv``s seeded seed, seed + 1, ...

## Source paper
Miconi, Rawal, Clune, Stanley, "Backpropamine: training self-modifying neural networks with differentiable
neuromodulated plasticity", ICLR 2019 (section 4.2); the 9x9 variant is from Miconi, Clune, Stanley,
"Differentiable plasticity: training plastic neural networks with backpropagation", ICML 2018.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from gymnasium import spaces

from envs import maze_render
from envs.checks import check_float, check_int, check_sizes
from envs.episodic import EpisodicEnv, EpisodicVectorEnv, MetaRLBatch

ACTION_NAMES = ("up", "down", "left", "right")
ACTION_DELTAS = np.array([[-1, 0], [1, 0], [0, -1], [0, 1]], dtype=np.int64)  # (row, col) per action
N_ACTIONS = len(ACTION_NAMES)
N_VIEW = 9  # the 3x3 neighbourhood
META = N_VIEW + 1  # index of the first meta-RL input (bias); index N_VIEW is the unused input, always 0
OBS_SIZE = META + 3 + N_ACTIONS
RENDER_FPS = 8
MAX_SIZE = 1001


@dataclass(frozen=True)
class MazeConfig:
    """The keyword arguments of both maze envs, checked at construction."""

    size: int = 13
    episode_length: int = 200
    wall_penalty: float = 0.0
    reward_value: float = 10.0

    def __post_init__(self) -> None:
        check_int("size", self.size, minimum=5)
        if self.size > MAX_SIZE:
            raise ValueError(f"size must be at most {MAX_SIZE} (its lookup tables grow as size^2), got {self.size}")
        if self.size % 2 == 0:
            raise ValueError(f"size must be odd (walls sit on the cells with even row and column), got {self.size}")
        check_int("episode_length", self.episode_length, minimum=1)
        check_sizes(1, self.episode_length, 8)
        object.__setattr__(self, "wall_penalty", check_float("wall_penalty", self.wall_penalty, low=0.0))
        object.__setattr__(self, "reward_value", check_float("reward_value", self.reward_value, low=0.0,
                                                             low_open=True))


def maze_walls(size: int) -> np.ndarray:
    """(size, size) bool, True on walls: the border and every cell with even row and column, except the centre."""
    index = np.arange(size)
    even = index % 2 == 0
    walls = np.outer(even, even)
    walls[[0, -1], :] = True
    walls[:, [0, -1]] = True
    walls[size // 2, size // 2] = False
    return walls


class MazeLayout:
    """The fixed maze of one size and the lookup tables that stepping uses; cells are flat indices row*size+col."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.walls = maze_walls(size)  # (S, S) bool
        self.walls_flat = self.walls.ravel()  # (S*S,)
        self.centre = (size // 2) * size + size // 2
        self.free_cells = np.flatnonzero(~self.walls_flat)  # sorted flat indices of the free cells
        self.reward_candidates = self.free_cells[self.free_cells != self.centre]
        self.moves = ACTION_DELTAS @ np.array([size, 1])  # flat index offset of each action
        # One move per (cell, action), flat index cell * 4 + action: where it leads (the same cell into a wall) and
        # whether it bumps into a wall; one more entry, index 4 * S * S, is "no move yet" (no bump).
        cells = np.arange(size * size)
        targets = np.clip(cells[:, None] + self.moves[None, :], 0, size * size - 1)  # (only free cells are looked up)
        bumps = self.walls_flat[targets]
        self.next_cell = np.where(bumps, cells[:, None], targets).ravel()  # (4 S*S,)
        self.bumps = np.append(bumps.ravel(), False)  # (4 S*S + 1,)
        self.no_move = 4 * size * size
        self.coords = np.stack(np.divmod(np.arange(size * size), size), axis=1)  # (S*S, 2) (row, col)
        # The 3x3 neighbourhood of every cell, row-major (only free cells are ever looked up).
        # The task inputs of every cell: its 3x3 neighbourhood, row-major, and the always-0 input (only free cells
        # are ever looked up).
        padded = np.pad(self.walls, 1, constant_values=True).astype(np.float32)
        neighbourhood = [padded[1 + dr : 1 + dr + size, 1 + dc : 1 + dc + size].ravel() for dr in (-1, 0, 1)
                         for dc in (-1, 0, 1)]
        self.views = np.stack([*neighbourhood, np.zeros(size * size, dtype=np.float32)], axis=1)  # (S*S, 10)


def draw_episode(rng: np.random.Generator, layout: MazeLayout, episode_length: int) -> tuple[int, np.ndarray]:
    """The reward cell and the teleport destination of each step t (used if the reward is hit at step t).

    Returns (reward_cell, teleports): a flat cell index other than the centre, and (episode_length,) flat
    indices of free cells other than the reward cell.
    """
    reward_cell = int(layout.reward_candidates[rng.integers(len(layout.reward_candidates))])
    skip = np.searchsorted(layout.free_cells, reward_cell)  # the reward cell's position among free cells
    k = rng.integers(len(layout.free_cells) - 1, size=episode_length)
    return reward_cell, layout.free_cells[k + (k >= skip)]


def maze_observation_space(config: MazeConfig) -> spaces.Box:
    """Box(17,) float32: view, unused 0, bias 1, t/T, previous reward in [-wall_penalty, reward_value], one-hot.

    Every bound is exact except for the constant inputs (the agent's own cell in the view and the unused input,
    always 0; the bias, always 1), which get [0, 1]: Gymnasium's env checker warns on every gym.make when a low
    equals its high.
    """
    low = np.zeros(OBS_SIZE, dtype=np.float32)
    high = np.ones(OBS_SIZE, dtype=np.float32)
    low[META + 2] = min(0.0 - config.wall_penalty, 0.0)
    high[META + 2] = config.reward_value
    return spaces.Box(low, high, dtype=np.float32)


def _status(t: int, episode_length: int, last_reward: float, episode_return: float, bumped: bool, hit: bool) -> str:
    note = "  reward! teleported" if hit else ("  wall" if bumped else "")
    return f"t {t}/{episode_length}  last reward {last_reward:+g}  return {episode_return:g}{note}"


class MazeBatch(MetaRLBatch):
    """B maze episodes in lock-step. State (B,): the agent's cell, the reward cell, whether the last step bumped
    into a wall or hit the reward; table: the teleport destination of every step, (B, T + 1) (row T: the centre,
    padding)."""

    n_actions = N_ACTIONS

    def __init__(self, config: MazeConfig, num_envs: int) -> None:
        super().__init__(num_envs, config.episode_length, bytes_per_step=24)
        self.config = config
        self.layout = MazeLayout(config.size)
        centre = self.layout.centre
        self.pos = np.full(num_envs, centre, dtype=np.int64)
        self.reward_cell = np.zeros(num_envs, dtype=np.int64)
        self.teleports = np.full((num_envs, config.episode_length + 1), centre, dtype=np.int64)
        self.last_move = np.full(num_envs, self.layout.no_move, dtype=np.int64)  # cell * 4 + action, see MazeLayout
        self.hit = np.zeros(num_envs, dtype=np.bool_)
        self._n_actions = np.full(num_envs, N_ACTIONS, dtype=np.int64)  # (an array operand is cheaper at small B)
        # the reward of every move but onto the reward cell: -wall_penalty into a wall (0.0, not -0.0, without one)
        self._move_rewards = np.where(self.layout.bumps[:-1], 0.0 - config.wall_penalty, 0.0)

    def draw_episode(self, rng: np.random.Generator) -> dict[str, np.ndarray]:
        reward_cell, teleports = draw_episode(rng, self.layout, self.episode_length)
        return {"reward_cell": np.int64(reward_cell), "teleports": teleports}

    def load_tables(self, index: int, episode: dict[str, np.ndarray]) -> None:
        # hit is handed out in infos without a copy: replaced here, never changed in place
        self.reward_cell[index] = episode["reward_cell"]
        self.teleports[index, : self.episode_length] = episode["teleports"]
        self.pos[index] = self.layout.centre
        self.last_move[index] = self.layout.no_move
        self.hit = self.hit.copy()
        self.hit[index] = False

    @property
    def bumped(self) -> np.ndarray:
        """(B,) bool: the last step walked into a wall."""
        return self.layout.bumps[self.last_move]

    def observation_space(self) -> spaces.Box:
        return maze_observation_space(self.config)

    def write_task_inputs(self, out: np.ndarray) -> None:
        self.layout.views.take(self.pos, axis=0, out=out)

    def play(self, actions: np.ndarray) -> np.ndarray:
        move = self.pos * self._n_actions + actions
        pos, rewards = self.layout.next_cell[move], self._move_rewards[move]
        hit = pos == self.reward_cell  # never after a bump: the agent is never on the reward cell
        if np.count_nonzero(hit):  # reward collected: paid, and the agent teleported (cheaper than hit.any())
            rewards[hit] = self.config.reward_value
            pos[hit] = self.teleports[self.rows[hit], self.t[hit]]
        self.pos, self.last_move, self.hit = pos, move, hit
        return rewards

    def step_infos(self) -> dict[str, np.ndarray]:
        coords = self.layout.coords  # (take: a cheaper row lookup than fancy indexing at small B)
        return {"agent_pos": coords.take(self.pos, axis=0), "reward_pos": coords.take(self.reward_cell, axis=0),
                "reward_hit": self.hit}

    def episode_info(self, episode: dict[str, np.ndarray]) -> dict[str, Any]:
        return {}

    def _status(self, index: int) -> str:
        t = int(self.t[index])
        episode_return = float(self.rewards_seen[index, :t].sum())
        return _status(t, self.episode_length, float(self.prev_reward[index]), episode_return, bool(self.bumped[index]),
                       bool(self.hit[index]))

    def render_rgb(self, index: int) -> np.ndarray:
        coords = self.layout.coords
        return maze_render.maze_frame(
            self.layout.walls, coords[self.pos[index]], coords[self.reward_cell[index]], status=self._status(index),
            legend=maze_render.ENV_LEGEND, wall_bump=bool(self.bumped[index]), reward_hit=bool(self.hit[index]),
        )

    def render_ansi(self, index: int) -> str:
        coords = self.layout.coords
        return maze_render.maze_ansi(self.layout.walls, coords[self.pos[index]], coords[self.reward_cell[index]],
                                     self._status(index))


class MazeEnv(EpisodicEnv):
    """One maze episode at a time (see the module docstring); ``layout`` holds the walls and lookup tables."""

    config_class = MazeConfig
    batch_class = MazeBatch
    metadata = {
        "render_modes": ["human", "rgb_array", "ansi"], "render_fps": RENDER_FPS,
        "paper": "Miconi et al. 2019, Backpropamine (ICLR); 9x9: Miconi et al. 2018, Differentiable plasticity (ICML)",
        "tags": ["meta-rl", "navigation", "partial-observability", "backpropamine2019", "miconi2018"],
    }

    @property
    def layout(self) -> MazeLayout:
        return self._batch.layout


class MazeVectorEnv(EpisodicVectorEnv):
    """B maze episodes stepped with array operations; the same episodes as B ``MazeEnv``s in SyncVectorEnv."""

    env_class = MazeEnv

    @property
    def layout(self) -> MazeLayout:
        return self._batch.layout
