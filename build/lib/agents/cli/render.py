"""Play one maze episode with a trained agent (or a random policy) and write it as a GIF / MP4, or show it live.

    python scripts/render_maze.py runs/maze-retro --out maze.gif
    python scripts/render_maze.py runs/maze-retro --human
    python scripts/render_maze.py --random --env-kwargs '{"size": 9}' --out random.gif

Each frame shows the maze, the (hidden) reward cell, the agent's path so far (light = early, dark = late; teleports
are not joined) and every cell where a reward was collected, ringed with its count. MP4 goes through
imageio-ffmpeg (a dependency), its frames' edges extended to multiples of 16 for H.264.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import numpy as np

MAZE_ID = "Plastic/Maze-v0"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("run", nargs="?", help="run directory of an agent trained on Plastic/Maze-v0")
    p.add_argument("--random", action="store_true", help="play the uniformly random policy (no run needed)")
    p.add_argument("--env-kwargs", type=json.loads, default=None, help="maze kwargs as JSON (with --random)")
    p.add_argument("--out", help="output file: .gif or .mp4")
    p.add_argument("--human", action="store_true", help="show the episode in a window instead")
    p.add_argument("--seed", type=int, default=0, help="seed of the episode and of the action sampling")
    p.add_argument("--greedy", action="store_true", help="take the most likely action instead of sampling")
    p.add_argument("--fps", type=float, default=8.0, help="frames per second (default 8)")
    p.add_argument("--cell-px", type=int, default=24, help="pixels per maze cell (default 24)")
    p.add_argument("--trail", type=int, default=0, help="draw only the last N steps of the path (default all)")
    args = p.parse_args(argv)
    if (args.run is None) == (not args.random):
        p.error("give either a run directory or --random")
    if args.run is not None and args.env_kwargs is not None:
        p.error("--env-kwargs is for --random; a run plays on its own maze")
    if (args.out is None) == (not args.human):
        p.error("give either --out FILE (.gif/.mp4) or --human")
    if args.out is not None and Path(args.out).suffix.lower() not in (".gif", ".mp4"):
        p.error(f"--out must end in .gif or .mp4, got {args.out!r}")
    return args


def play_maze_episode(model, env, seed: int, greedy: bool = False) -> dict[str, np.ndarray]:
    """One episode on a 1-env maze vector env: agent cells (T+1, 2), reward cell, rewards (T,), hit flags (T,).

    ``model`` None plays the random policy. Weights are frozen; the plastic state runs as in training.
    """
    import torch

    from agents.a2c import choose_actions

    generator = torch.Generator().manual_seed(seed)
    obs, info = env.reset(seed=seed)
    cells, rewards, hits = [info["agent_pos"][0].copy()], [], []
    n_actions = int(env.single_action_space.n)
    state = model.initial_state(1) if model is not None else None
    with torch.no_grad():
        while True:
            if model is None:
                action = torch.randint(n_actions, (1,), generator=generator)
            else:
                logits, _, state = model(torch.as_tensor(obs, dtype=torch.float32), state)
                action = choose_actions(logits, generator, greedy)
            obs, reward, terminated, truncated, info = env.step(action.numpy())
            cells.append(info["agent_pos"][0].copy())
            rewards.append(float(reward[0]))
            hits.append(bool(info["reward_hit"][0]))
            if terminated[0] or truncated[0]:
                break
    return {"cells": np.array(cells), "reward_cell": info["reward_pos"][0].copy(), "rewards": np.array(rewards),
            "hits": np.array(hits)}


def episode_frames(walls: np.ndarray, episode: dict[str, np.ndarray], cell_px: int, trail: int = 0):
    """Yield one (H, W, 3) uint8 frame per time step (the start, then after each action)."""
    from envs import maze_render

    cells, reward_cell, rewards, hits = episode["cells"], episode["reward_cell"], episode["rewards"], episode["hits"]
    # The path goes through the reward cell on each hit, then jumps (teleport) to the next cell.
    path: list[np.ndarray] = [cells[0]]
    hit_cells: list[np.ndarray] = []
    T = len(rewards)
    for t in range(T + 1):
        if t > 0:
            if hits[t - 1]:
                path.append(reward_cell)
                hit_cells.append(reward_cell)
            path.append(cells[t])
        shown = path[-(trail + 1):] if trail > 0 else path
        bump = t > 0 and not hits[t - 1] and np.array_equal(cells[t], cells[t - 1])
        status = f"t {t}/{T}  return {rewards[:t].sum():g}  hits {len(hit_cells)}"
        yield maze_render.maze_frame(
            walls, cells[t], reward_cell, status=status, cell_px=cell_px, path=np.array(shown), hits=hit_cells,
            wall_bump=bool(bump), reward_hit=bool(t > 0 and hits[t - 1]),
        )


def write_video(path: str, frames: list[np.ndarray], fps: float) -> None:
    import imageio.v3 as iio

    if path.lower().endswith(".gif"):
        iio.imwrite(path, np.stack(frames), duration=1000.0 / fps, loop=0)
        return
    video = np.stack(frames)
    # H.264 wants sides divisible by 16 (imageio would rescale the frames): extend the edges instead
    pad = [(0, 0), (0, -video.shape[1] % 16), (0, -video.shape[2] % 16), (0, 0)]
    try:
        iio.imwrite(path, np.pad(video, pad, mode="edge"), fps=fps)
    except Exception as error:  # no MP4 backend: imageio raises ImportError / ValueError / OSError
        raise RuntimeError(
            f"cannot write {path} ({error}); MP4 needs imageio-ffmpeg (a dependency of this package) or av. "
            "Write a .gif instead."
        ) from None


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")
    import torch

    from agents.a2c import load_agent, make_vector_env
    from agents.checks import one_line
    from envs import maze_render
    from envs.maze import maze_walls

    torch.set_num_threads(1)
    try:
        model, env_kwargs = None, dict(args.env_kwargs or {})
        if args.run is not None:
            model, config = load_agent(args.run)
            if config.env_id != MAZE_ID:
                raise ValueError(f"{args.run} was trained on {config.env_id}, not {MAZE_ID}")
            env_kwargs = dict(config.env_kwargs)
            model.eval()
        env = make_vector_env(MAZE_ID, 1, env_kwargs)
        try:
            episode = play_maze_episode(model, env, args.seed, args.greedy)
            size = env.unwrapped.config.size if hasattr(env.unwrapped, "config") else env_kwargs.get("size", 13)
        finally:
            env.close()
        frames = episode_frames(maze_walls(size), episode, args.cell_px, args.trail)
        if args.human:
            window = maze_render.PygameWindow(f"{MAZE_ID} {args.run or 'random policy'}", args.fps)
            try:
                for frame in frames:
                    window.show(maze_render.pygame.surfarray.make_surface(frame.transpose(1, 0, 2)))
            finally:
                window.close()
        else:
            frames = list(frames)
            write_video(args.out, frames, args.fps)
    except (ValueError, TypeError, RuntimeError, OSError) as error:
        print(f"plastic-render: error: {one_line(error)}", file=sys.stderr)
        return 2
    total, found = episode["rewards"].sum(), int(episode["hits"].sum())
    where = f"wrote {args.out} ({len(frames)} frames)" if args.out else "shown"
    print(f"{where}: return {total:g}, {found} rewards found in {len(episode['rewards'])} steps")
    return 0


if __name__ == "__main__":
    sys.exit(main())
