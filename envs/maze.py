"""The Backpropamine maze (Miconi et al. 2019): find the invisible reward cell, then come back to it after each
teleport.

A size x size grid (13 by default, odd) has walls on its border and on every cell whose row and column are both
even, except the centre. Each episode one free cell other than the centre hides a reward. The agent starts at
the centre and sees only its 3x3 neighbourhood (1 = wall, row-major), one input that is always 0, and the meta-RL
inputs of ``envs.meta_rl``: bias, t/T, previous reward and previous action one-hot: 9 + 1 + 3 + 4 = 17 inputs.
The always-0 input sits where the authors' 2019 code left one unused (their 17 inputs), so that input sizes and
parameter counts match the paper's. Actions: 0 up, 1 down, 2 left, 3 right.
Walking into a wall leaves the agent in place with reward -wall_penalty; stepping onto the reward cell gives
+reward_value and teleports the agent to a random free cell (never the reward cell). Episodes are truncated
after episode_length steps. ``MazeEnv(size=9, episode_length=250, wall_penalty=0.1)`` is the 2018 variant.

Everything random in an episode (the reward cell and one teleport destination per step) is drawn at reset from
the env's own generator; step() draws nothing. ``MazeVectorEnv`` keeps one generator per sub-env, loops over
sub-envs only at reset, steps all B episodes with array operations, and yields exactly the episodes of B
``MazeEnv``s seeded seed, seed+1, ... (as SyncVectorEnv does).
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from gymnasium.utils import seeding
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space

from envs import maze_render
from envs.checks import check_action, check_actions, check_float, check_int, check_render_mode, check_sizes
from envs.meta_rl import meta_features

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
        self.coords = np.stack(np.divmod(np.arange(size * size), size), axis=1)  # (S*S, 2) (row, col)
        # The 3x3 neighbourhood of every cell, row-major (only free cells are ever looked up).
        padded = np.pad(self.walls, 1, constant_values=True).astype(np.float32)
        self.views = np.stack(
            [padded[1 + dr : 1 + dr + size, 1 + dc : 1 + dc + size].ravel() for dr in (-1, 0, 1) for dc in (-1, 0, 1)],
            axis=1,
        )  # (S*S, 9)


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


class MazeEnv(gym.Env[np.ndarray, np.int64]):
    """One maze episode at a time. See the module docstring for the task.

    info: "agent_pos" and "reward_pos" as (row, col) int64 arrays, "reward_hit" (the reward was collected this
    step, and "agent_pos" is then the teleport destination).
    """

    metadata = {"render_modes": ["human", "rgb_array", "ansi"], "render_fps": RENDER_FPS}

    def __init__(
        self,
        size: int = 13,
        episode_length: int = 200,
        wall_penalty: float = 0.0,
        reward_value: float = 10.0,
        render_mode: str | None = None,
    ) -> None:
        self.config = MazeConfig(size, episode_length, wall_penalty, reward_value)
        self.layout = MazeLayout(size)
        self.render_mode = check_render_mode(render_mode, self.metadata["render_modes"])
        self.observation_space = maze_observation_space(self.config)
        self.action_space = spaces.Discrete(N_ACTIONS)
        self._bump_reward = 0.0 - self.config.wall_penalty
        self._teleports: np.ndarray | None = None  # None until the first reset
        self._window: maze_render.PygameWindow | None = None

    @property
    def episode_length(self) -> int:
        return self.config.episode_length

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[np.ndarray, dict]:
        super().reset(seed=seed)
        if options:
            raise ValueError(f"MazeEnv.reset takes no options, got {options!r}")
        self._reward_cell, self._teleports = draw_episode(self.np_random, self.layout, self.config.episode_length)
        self._pos = self.layout.centre
        self._t = 0
        self._last_reward = 0.0
        self._last_action = -1
        self._return = 0.0
        self._bumped = False
        self._hit = False
        if self.render_mode == "human":
            self.render()
        return self._observation(), self._info()

    def step(self, action: object) -> tuple[np.ndarray, float, bool, bool, dict]:
        action = check_action(action, N_ACTIONS)
        if self._teleports is None:
            raise RuntimeError("call reset() before step()")
        if self._t >= self.config.episode_length:
            raise RuntimeError(f"the episode was truncated after {self._t} steps: call reset()")
        target = self._pos + int(self.layout.moves[action])
        self._bumped = bool(self.layout.walls_flat[target])
        self._hit = False
        reward = 0.0
        if self._bumped:
            reward = self._bump_reward
        else:
            self._pos = target
            if target == self._reward_cell:
                self._hit = True
                reward = self.config.reward_value
                self._pos = int(self._teleports[self._t])
        self._t += 1
        self._last_reward = reward
        self._last_action = action
        self._return += reward
        if self.render_mode == "human":
            self.render()
        truncated = self._t >= self.config.episode_length
        return self._observation(), reward, False, truncated, self._info()

    def _observation(self) -> np.ndarray:
        obs = np.zeros(OBS_SIZE, dtype=np.float32)
        obs[:N_VIEW] = self.layout.views[self._pos]
        obs[META:] = meta_features(self._t, self.config.episode_length, self._last_reward, self._last_action, N_ACTIONS)
        return obs

    def _info(self) -> dict[str, Any]:
        return {
            "agent_pos": self.layout.coords[self._pos].copy(),
            "reward_pos": self.layout.coords[self._reward_cell].copy(),
            "reward_hit": self._hit,
        }

    def render(self) -> np.ndarray | str | None:
        if self.render_mode is None:
            gym.logger.warn("render() called without a render_mode: pass render_mode= to gym.make")
            return None
        if self._teleports is None:
            raise RuntimeError("call reset() before render()")
        agent = self.layout.coords[self._pos]
        reward_cell = self.layout.coords[self._reward_cell]
        status = _status(self._t, self.config.episode_length, self._last_reward, self._return, self._bumped, self._hit)
        if self.render_mode == "ansi":
            return maze_render.maze_ansi(self.layout.walls, agent, reward_cell, status)
        surface = maze_render.maze_surface(
            self.layout.walls, agent, reward_cell, status=status, legend=maze_render.ENV_LEGEND,
            wall_bump=self._bumped, reward_hit=self._hit,
        )
        if self.render_mode == "rgb_array":
            return maze_render.surface_to_rgb(surface)
        if self._window is None:
            self._window = maze_render.PygameWindow("Plastic/Maze", self.metadata["render_fps"])
        self._window.show(surface)
        return None

    def close(self) -> None:
        if self._window is not None:
            self._window.close()
            self._window = None


class MazeVectorEnv(VectorEnv):
    """B maze episodes stepped together with array operations; same episodes as B ``MazeEnv``s.

    ``reset(seed=s)`` seeds sub-env i with s + i (a list gives one seed per sub-env, None keeps the streams);
    ``options={"reset_mask": mask}`` resets only some sub-envs, as in SyncVectorEnv. Autoreset is NEXT_STEP:
    the step after a truncation resets that sub-env and returns its first observation with reward 0.
    Infos are dicts of arrays with "_key" masks: "agent_pos" and "reward_pos" (B, 2), "reward_hit" (B,).
    """

    metadata = {
        "render_modes": ["rgb_array", "ansi"],
        "render_fps": RENDER_FPS,
        "autoreset_mode": AutoresetMode.NEXT_STEP,
    }

    def __init__(
        self,
        num_envs: int = 1,
        size: int = 13,
        episode_length: int = 200,
        wall_penalty: float = 0.0,
        reward_value: float = 10.0,
        render_mode: str | None = None,
    ) -> None:
        check_int("num_envs", num_envs, minimum=1)
        self.num_envs = int(num_envs)
        self.config = MazeConfig(size, episode_length, wall_penalty, reward_value)
        check_sizes(self.num_envs, self.config.episode_length, 8)  # the (B, T) teleport table
        self.layout = MazeLayout(size)
        self.render_mode = check_render_mode(render_mode, self.metadata["render_modes"])
        self.single_observation_space = maze_observation_space(self.config)
        self.single_action_space = spaces.Discrete(N_ACTIONS)
        self.observation_space = batch_space(self.single_observation_space, self.num_envs)
        self.action_space = batch_space(self.single_action_space, self.num_envs)
        self._bump_reward = 0.0 - self.config.wall_penalty

        B, T = self.num_envs, self.config.episode_length
        self._rngs: list[np.random.Generator | None] = [None] * B
        self._rows = np.arange(B)
        self._pos = np.full(B, self.layout.centre, dtype=np.int64)
        self._reward_cell = np.zeros(B, dtype=np.int64)
        self._teleports = np.zeros((B, T), dtype=np.int64)
        self._t = np.zeros(B, dtype=np.int64)
        self._last_reward = np.zeros(B, dtype=np.float64)
        self._last_action = np.full(B, -1, dtype=np.int64)
        self._return = np.zeros(B, dtype=np.float64)
        self._bumped = np.zeros(B, dtype=bool)
        self._hit = np.zeros(B, dtype=bool)
        self._autoreset = np.zeros(B, dtype=bool)
        self._started = False

    @property
    def episode_length(self) -> int:
        return self.config.episode_length

    @property
    def np_random(self) -> tuple[np.random.Generator, ...]:  # type: ignore[override]
        """One generator per sub-env (what ``env.np_random`` is for each of B single envs), like SyncVectorEnv."""
        self._rngs = [rng if rng is not None else seeding.np_random()[0] for rng in self._rngs]
        return tuple(self._rngs)

    def reset(
        self, *, seed: int | list[int | None] | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        seeds = self._seed_list(seed)
        options = dict(options or {})
        mask = self._reset_mask(options.pop("reset_mask", None))
        if options:
            raise ValueError(f"MazeVectorEnv.reset takes only the option 'reset_mask', got {sorted(options)}")
        idx = np.flatnonzero(mask)
        for i in idx:
            if seeds[i] is not None or self._rngs[i] is None:
                self._rngs[i] = seeding.np_random(seeds[i])[0]
        self._reset_envs(idx)
        self._started = True
        return self._observations(), self._infos(mask)

    def _seed_list(self, seed: int | list[int | None] | None) -> list[int | None]:
        if seed is None:
            return [None] * self.num_envs
        if isinstance(seed, numbers.Integral) and not isinstance(seed, bool):
            return [int(seed) + i for i in range(self.num_envs)]
        seeds = list(seed)
        if len(seeds) != self.num_envs:
            raise ValueError(f"seed must be an int, None or a list of {self.num_envs} seeds, got {len(seeds)} seeds")
        return seeds

    def _reset_mask(self, mask: object) -> np.ndarray:
        if mask is None:
            return np.ones(self.num_envs, dtype=bool)
        if not isinstance(mask, np.ndarray) or mask.dtype != np.bool_ or mask.shape != (self.num_envs,):
            raise ValueError(f"options['reset_mask'] must be a bool array of shape ({self.num_envs},), got {mask!r}")
        if not mask.any():
            raise ValueError("options['reset_mask'] must select at least one sub-env")
        return mask

    def _reset_envs(self, idx: np.ndarray) -> None:
        """New episodes for the sub-envs ``idx``: the only place where random numbers are drawn."""
        T = self.config.episode_length
        for i in idx:
            self._reward_cell[i], self._teleports[i] = draw_episode(self._rngs[i], self.layout, T)
        self._pos[idx] = self.layout.centre
        self._t[idx] = 0
        self._last_reward[idx] = 0.0
        self._last_action[idx] = -1
        self._return[idx] = 0.0
        self._bumped[idx] = False
        self._hit[idx] = False
        self._autoreset[idx] = False

    def step(self, actions: object) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict[str, np.ndarray]]:
        actions = check_actions(actions, N_ACTIONS, self.num_envs)
        if not self._started:
            raise RuntimeError("call reset() before step()")
        # All sub-envs take the step; those that truncated last step are then reset (NEXT_STEP autoreset), which
        # discards their step. Their t is T, hence the clip when looking up the teleport destination.
        resetting = self._autoreset.copy()
        target = self._pos + self.layout.moves[actions]
        bumped = self.layout.walls_flat[target]
        moved = np.where(bumped, self._pos, target)
        hit = moved == self._reward_cell  # never with bumped: the agent is never on the reward cell
        step_index = np.minimum(self._t, self.config.episode_length - 1)
        self._pos = np.where(hit, self._teleports[self._rows, step_index], moved)
        self._last_reward = np.where(bumped, self._bump_reward, np.where(hit, self.config.reward_value, 0.0))
        self._last_action = actions
        self._bumped = bumped
        self._hit = hit
        self._return += self._last_reward
        self._t += 1
        if resetting.any():
            self._reset_envs(np.flatnonzero(resetting))
        truncated = self._t >= self.config.episode_length
        self._autoreset = truncated.copy()
        terminated = np.zeros(self.num_envs, dtype=bool)
        return self._observations(), self._last_reward.copy(), terminated, truncated, self._infos()

    def _observations(self) -> np.ndarray:
        obs = np.zeros((self.num_envs, OBS_SIZE), dtype=np.float32)
        obs[:, :N_VIEW] = self.layout.views[self._pos]
        obs[:, META:] = meta_features(
            self._t, self.config.episode_length, self._last_reward, self._last_action, N_ACTIONS
        )
        return obs

    def _infos(self, mask: np.ndarray | None = None) -> dict[str, np.ndarray]:
        """Infos of all sub-envs, or (after a masked reset) of the masked ones only, zero elsewhere."""
        infos = {
            "agent_pos": self.layout.coords[self._pos],
            "reward_pos": self.layout.coords[self._reward_cell],
            "reward_hit": self._hit.copy(),
        }
        if mask is None:
            mask = np.ones(self.num_envs, dtype=bool)
        elif not mask.all():
            for value in infos.values():
                value[~mask] = 0
        for key in list(infos):
            infos[f"_{key}"] = mask.copy()
        return infos

    def render(self) -> tuple[np.ndarray, ...] | tuple[str, ...] | None:
        """One frame (rgb_array) or text (ansi) per sub-env, as SyncVectorEnv.render gives."""
        if self.render_mode is None:
            gym.logger.warn("render() called without a render_mode: pass render_mode= to gym.make_vec")
            return None
        if not self._started:
            raise RuntimeError("call reset() before render()")
        frames = []
        for i in range(self.num_envs):
            agent = self.layout.coords[self._pos[i]]
            reward_cell = self.layout.coords[self._reward_cell[i]]
            status = _status(
                int(self._t[i]),
                self.config.episode_length,
                float(self._last_reward[i]),
                float(self._return[i]),
                bool(self._bumped[i]),
                bool(self._hit[i]),
            )
            if self.render_mode == "ansi":
                frames.append(maze_render.maze_ansi(self.layout.walls, agent, reward_cell, status))
            else:
                frames.append(
                    maze_render.maze_frame(
                        self.layout.walls,
                        agent,
                        reward_cell,
                        status=status,
                        legend=maze_render.ENV_LEGEND,
                        wall_bump=bool(self._bumped[i]),
                        reward_hit=bool(self._hit[i]),
                    )
                )
        return tuple(frames)
