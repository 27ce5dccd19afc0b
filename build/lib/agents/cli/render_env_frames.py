"""Write example frames of the RL envs as PNG files (for the README).

    python scripts/render_env_frames.py [--out-dir docs]

docs/maze.png: the Plastic/Maze-v0 rgb_array frame at the moment an agent that knows the reward cell collects
its second reward (the reward cell turns green, the agent has been teleported). docs/maze_path.png: the path of
that agent over its first 80 steps and its reward hits, drawn over the maze with ``envs.maze_render``. Both have
a legend under the status line.
docs/<name>.png for every other RL env that renders rgb_array, at the end of an episode of random actions.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import re
import sys
from collections import deque
from pathlib import Path

os.environ.setdefault("SDL_VIDEODRIVER", "dummy")

import gymnasium as gym  # noqa: E402
import imageio.v3 as iio  # noqa: E402
import numpy as np  # noqa: E402

import envs  # noqa: E402
from envs import maze_render  # noqa: E402
from envs.maze import ACTION_DELTAS  # noqa: E402


def oracle_action(walls: np.ndarray, start: np.ndarray, goal: np.ndarray) -> int:
    """First action of a shortest path from ``start`` to ``goal`` (breadth-first search from the goal)."""
    goal_cell = (int(goal[0]), int(goal[1]))
    distance = {goal_cell: 0}
    queue = deque([goal_cell])
    while queue:
        r, c = queue.popleft()
        for dr, dc in ACTION_DELTAS:
            cell = (r + int(dr), c + int(dc))
            if not walls[cell] and cell not in distance:
                distance[cell] = distance[(r, c)] + 1
                queue.append(cell)
    moves = [(int(start[0] + dr), int(start[1] + dc)) for dr, dc in ACTION_DELTAS]
    return min(range(len(moves)), key=lambda a: distance.get(moves[a], np.inf))


def maze_frames(out_dir: Path, seed: int) -> list[Path]:
    env = gym.make("Plastic/Maze-v0", render_mode="rgb_array")
    walls = env.unwrapped.layout.walls
    _, info = env.reset(seed=seed)
    path, hits, hit_frame = [tuple(info["agent_pos"])], [], None
    for _ in range(80):
        start = info["agent_pos"]
        _, _, _, _, info = env.step(oracle_action(walls, start, info["reward_pos"]))
        if info["reward_hit"]:
            hits.append(tuple(info["reward_pos"]))
            path.append(tuple(info["reward_pos"]))  # the walk ends on the reward cell, then the teleport
            if len(hits) == 2:
                hit_frame = env.render()
        path.append(tuple(info["agent_pos"]))
    frame_path = out_dir / "maze.png"
    iio.imwrite(frame_path, hit_frame if hit_frame is not None else env.render())
    overlay_path = out_dir / "maze_path.png"
    status = f"first 80 steps of an agent that knows the reward cell: {len(hits)} rewards"
    iio.imwrite(
        overlay_path,
        maze_render.maze_frame(walls, path[-1], info["reward_pos"], status=status, path=path, hits=hits,
                               legend=("agent", "reward", "path", "hits")),
    )
    return [frame_path, overlay_path]


def other_frames(out_dir: Path, seed: int) -> list[Path]:
    written = []
    for env_id in envs.RL_ENV_IDS:
        if env_id == "Plastic/Maze-v0" or not importlib.util.find_spec(gym.spec(env_id).entry_point.split(":")[0]):
            continue
        env = gym.make(env_id)
        if "rgb_array" not in env.metadata.get("render_modes", []):
            continue
        env = gym.make(env_id, render_mode="rgb_array")
        env.reset(seed=seed)
        env.action_space.seed(seed)
        truncated = False
        while not truncated:  # a whole episode: these frames show the episode so far
            truncated = env.step(env.action_space.sample())[3]
        name = re.sub(r"(?<!^)(?=[A-Z])", "_", env_id.split("/")[1].split("-")[0]).lower()  # CueReward -> cue_reward
        path = out_dir / f"{name}.png"
        iio.imwrite(path, env.render())
        written.append(path)
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out-dir", type=Path, default=Path("docs"))
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    args.out_dir.mkdir(parents=True, exist_ok=True)
    for path in maze_frames(args.out_dir, args.seed) + other_frames(args.out_dir, args.seed):
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
