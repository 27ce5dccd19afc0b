"""The user scripts end to end on tiny runs: train, evaluate, render_maze, plot, compare_sb3."""

from __future__ import annotations

import json
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import pytest

from agents import curves as curve_lib
from agents.cli import compare_sb3, evaluate, plot, reproduce_rl, train
from agents.cli import render as render_maze
from agents.logger import read_metrics

ROOT = Path(__file__).resolve().parents[2]
MAZE_KWARGS = '{"size": 7, "episode_length": 15}'




def train_tiny_maze(out: Path, seed: int = 0, core: str = "modulated") -> None:
    assert train.main(["--env", "Plastic/Maze-v0", "--core", core, "--hidden", "8", "--episodes", "24", "--batch",
                       "4", "--seed", str(seed), "--env-kwargs", MAZE_KWARGS, "--lr", "1e-3", "--no-progress",
                       "--out", str(out)]) == 0


@pytest.fixture(scope="module")
def maze_runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("runs")
    runs = [root / f"maze-{core}-{seed}" for core in ("rnn", "modulated") for seed in (0, 1)]
    for run in runs:
        core, seed = run.name.split("-")[1:]
        train_tiny_maze(run, int(seed), core)
    return runs


def test_train_writes_a_complete_run(maze_runs, capsys):
    run = maze_runs[0]
    assert {p.name for p in run.iterdir()} >= {"config.json", "metrics.csv", "tb", "checkpoint.pt", "run.lock"}
    assert any((run / "tb").iterdir())
    assert len(read_metrics(run)) == 6
    config = json.loads((run / "config.json").read_text())
    assert config["env_kwargs"] == {"size": 7, "episode_length": 15} and config["hidden"] == 8
    assert config["gamma"] == 0.9 and config["regulariser_coef"] == 0.03  # maze defaults fill what was not given


def test_train_cli_errors(tmp_path, capsys):
    out = tmp_path / "run"
    assert train.main(["--env", "Plastic/Nope-v0", "--core", "rnn", "--episodes", "4", "--out", str(out)]) == 2
    assert "unknown env id 'Plastic/Nope-v0'" in capsys.readouterr().err
    assert train.main(["--env", "Plastic/Maze-v0", "--core", "gru", "--episodes", "4", "--out", str(out)]) == 2
    assert "unknown core 'gru'" in capsys.readouterr().err
    assert train.main(["--env", "Pendulum-v1", "--core", "rnn", "--episodes", "4", "--out", str(out)]) == 2
    assert "discrete actions" in capsys.readouterr().err
    assert train.main(["--env", "Plastic/Maze-v0", "--episodes", "4", "--out", str(out)]) == 2
    assert "needs --core" in capsys.readouterr().err
    assert not out.exists()
    with pytest.raises(SystemExit):
        train.main(["--env", "Plastic/Maze-v0", "--core", "rnn", "--episodes", "4", "--env-kwargs", "{size: 9",
                    "--out", str(out)])
    assert "not valid JSON" in capsys.readouterr().err


def test_evaluate_prints_mean_and_confidence_interval(maze_runs, capsys):
    assert evaluate.main([str(maze_runs[1]), "--episodes", "10", "--batch", "4", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["episodes"] == 10 and result["env_id"] == "Plastic/Maze-v0" and result["policy"] == "rnn core"
    lo, hi = result["ci95"]
    assert lo <= result["reward_mean"] <= hi
    assert evaluate.main([str(maze_runs[1]), "--episodes", "10", "--batch", "4", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == result  # seeded
    assert evaluate.main([str(maze_runs[1]), "--episodes", "6", "--random"]) == 0
    assert "random, 6 episodes of Plastic/Maze-v0: reward per episode" in capsys.readouterr().out
    assert evaluate.main([str(maze_runs[1].parent / "missing")]) == 2
    assert "no config.json" in capsys.readouterr().err


@pytest.mark.parametrize("policy", ["run", "random"])
def test_render_maze_writes_a_gif_with_path_and_hits(maze_runs, tmp_path, capsys, policy):
    gif = tmp_path / "episode.gif"
    args = [str(maze_runs[2])] if policy == "run" else ["--random", "--env-kwargs", MAZE_KWARGS]
    assert render_maze.main([*args, "--out", str(gif), "--cell-px", "12", "--seed", "2"]) == 0
    frames = iio.imread(gif)
    assert frames.shape[0] == 16 and frames.shape[-1] == 3  # the start and one frame per step
    assert frames.shape[1:3] == (7 * 12 + 24, 7 * 12)  # maze plus status bar
    assert len({frame.tobytes() for frame in frames}) > 1
    assert "wrote" in capsys.readouterr().out


def test_render_maze_writes_an_mp4(tmp_path, capsys):
    video = tmp_path / "episode.mp4"
    args = ["--random", "--env-kwargs", MAZE_KWARGS, "--out", str(video), "--cell-px", "12", "--seed", "2"]
    assert render_maze.main(args) == 0
    frames = iio.imread(video)
    assert frames.shape == (16, 112, 96, 3)  # 7 * 12 + 24 by 7 * 12, edges extended to multiples of 16
    assert len({frame.tobytes() for frame in frames}) > 1 and "wrote" in capsys.readouterr().out


def test_render_maze_path_and_hit_overlays():
    """The path and reward hits are drawn: frames with them differ from the bare maze."""
    from envs.maze import maze_walls

    walls = maze_walls(7)
    cells = np.array([[3, 3], [3, 4], [3, 5], [1, 1], [1, 1]])
    episode = {"cells": cells, "reward_cell": np.array([3, 5]), "rewards": np.array([0.0, 10.0, 0.0, 0.0]),
               "hits": np.array([False, True, False, False])}
    frames = list(render_maze.episode_frames(walls, episode, cell_px=12))
    assert len(frames) == 5
    last = frames[-1]
    from envs import maze_render

    bare = maze_render.maze_frame(walls, cells[-1], episode["reward_cell"], status="x", cell_px=12)
    maze_rows = slice(0, 7 * 12)
    cell = lambda r, c: (slice(r * 12, r * 12 + 12), slice(c * 12, c * 12 + 12))  # noqa: E731
    assert not np.array_equal(last[maze_rows][cell(3, 4)], bare[maze_rows][cell(3, 4)])  # path through (3, 4)
    hit_colour = np.array(maze_render.HIT_MARK_COLOUR)
    assert (np.abs(last[cell(3, 5)] - hit_colour).sum(-1) < 30).any()  # the hit ring on the reward cell
    assert not (np.abs(frames[1][cell(3, 5)] - hit_colour).sum(-1) < 30).any()  # not before the hit


def test_render_maze_refuses_other_envs_and_bad_outputs(tmp_path, capsys):
    bandit = tmp_path / "bandit"
    assert train.main(["--env", "Plastic/ReversalBandit-v0", "--core", "rnn", "--hidden", "4", "--episodes", "2",
                       "--batch", "2", "--env-kwargs", '{"episode_length": 5}', "--no-progress", "--no-tensorboard",
                       "--out", str(bandit)]) == 0
    assert render_maze.main([str(bandit), "--out", str(tmp_path / "x.gif")]) == 2
    assert "not Plastic/Maze-v0" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        render_maze.main(["--random", "--out", str(tmp_path / "x.png")])


def test_plot_groups_runs_by_core(maze_runs, tmp_path, capsys):
    png = tmp_path / "curves.png"
    assert plot.main([*map(str, maze_runs), "--out", str(png)]) == 0
    out = capsys.readouterr().out
    assert "modulated" in out and "rnn" in out and f"wrote {png}" in out
    image = iio.imread(png)
    assert image.ndim == 3 and image.shape[0] > 100
    by_seed = [*map(str, maze_runs), "--x", "wall_time", "--group", "seed", "--reach", "-1", "--out", str(png)]
    assert plot.main(by_seed) == 2
    assert "--reach needs --smooth" in capsys.readouterr().err
    assert plot.main([*by_seed, "--smooth", "2"]) == 0
    assert "reaches reward_mean >= -1 in 2/2 runs" in capsys.readouterr().out
    assert plot.main([str(maze_runs[0]), "--group", "colour", "--out", str(png)]) == 2
    assert "no field 'colour'" in capsys.readouterr().err


def test_plot_statistics():
    # three runs on shifted grids: the median and quartiles are taken on the x range all of them cover
    curves = [(np.arange(1, 11) * 10.0, np.full(10, v)) for v in (1.0, 2.0, 4.0)]
    curves.append((np.arange(1, 6) * 10.0, np.full(5, 3.0)))
    grid, q25, q50, q75 = curve_lib.aggregate(curves, smooth=1, points=5)
    assert grid[0] == 10 and grid[-1] == 50
    np.testing.assert_allclose(q50, 2.5)
    np.testing.assert_allclose(q25, 1.75)
    np.testing.assert_allclose(q75, 3.25)
    np.testing.assert_allclose(curve_lib.running_mean(np.array([1.0, 2.0, 3.0, 4.0]), 2), [1.0, 1.5, 2.5, 3.5])
    xs, ys = np.array([10.0, 20.0, 30.0, 40.0]), np.array([0.0, 4.0, 2.0, 6.0])
    assert curve_lib.first_reach(xs, ys, 2.0, smooth=2) == 20.0  # running means 0, 2, 3, 4
    assert curve_lib.first_reach(xs, ys, 3.5, smooth=2) == 40.0
    assert np.isnan(curve_lib.first_reach(xs, ys, 7.0, smooth=1))


@pytest.mark.slow
def test_compare_sb3_logs_the_same_metrics_format(maze_runs, tmp_path, capsys):
    out = tmp_path / "maze-sb3-a2c"
    assert compare_sb3.main(["--algo", "a2c", "--env", "Plastic/Maze-v0", "--env-kwargs", MAZE_KWARGS, "--episodes",
                         "40", "--n-envs", "4", "--batch", "8", "--no-progress", "--out", str(out)]) == 0
    rows = read_metrics(out)
    assert [r["episodes"] for r in rows] == [8, 16, 24, 32, 40]
    assert {"iteration", "episodes", "reward_mean", "wall_time"} <= set(rows[0])
    assert json.loads((out / "config.json").read_text())["core"] == "sb3-a2c"
    assert compare_sb3.main(["--algo", "a2c", "--env", "Plastic/Maze-v0", "--episodes", "4", "--out", str(out)]) == 2
    assert "already holds" in capsys.readouterr().err
    png = tmp_path / "mixed.png"
    assert plot.main([*map(str, maze_runs), str(out), "--x", "wall_time", "--out", str(png)]) == 0
    assert "sb3-a2c" in capsys.readouterr().out


def test_reproduce_rl_extends_finished_runs_when_episodes_grow(maze_runs):
    run = maze_runs[0]  # 24 episodes in batches of 4
    assert reproduce_rl.run_state(run) == "done"
    assert reproduce_rl.run_state(run, 24) == "done"
    assert reproduce_rl.run_state(run, 20) == "done"  # a smaller budget never shortens a run
    assert reproduce_rl.run_state(run, 28) == "partial"
    assert reproduce_rl.run_state(run.parent / "missing") == "new"
