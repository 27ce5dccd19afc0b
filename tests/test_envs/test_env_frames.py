"""Readable pictures: plastic-plot refuses mixed envs and names the env kwargs in its title; the rgb_array frames of
the RL envs carry text labels (cue-reward, bandit) and a legend (maze); every declared render mode renders."""

from __future__ import annotations

import json
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
from PIL import Image

from agents import curves
from agents.cli import plot, train
from envs import maze_render
from envs.bandit import ReversalBanditEnv, ReversalBanditVectorEnv
from envs.cue_reward import CueRewardEnv, CueRewardVectorEnv
from envs.maze import _status

# ---------------------------------------------------------------------------------------------------------------
# plastic-plot


def fake_run(path: Path, env_id: str, env_kwargs: dict, core: str = "rnn", rows: int = 6) -> Path:
    """A run directory as train / compare_sb3 write it: config.json and metrics.csv."""
    path.mkdir(parents=True)
    config = {"env_id": env_id, "core": core, "episodes": 4 * rows, "seed": 0, "env_kwargs": env_kwargs}
    (path / "config.json").write_text(json.dumps(config))
    lines = ["iteration,episodes,reward_mean,wall_time"]
    lines += [f"{i + 1},{4 * (i + 1)},{0.5 * i},{0.1 * (i + 1)}" for i in range(rows)]
    (path / "metrics.csv").write_text("\n".join(lines) + "\n")
    return path


def png_title(path: Path) -> str:
    with Image.open(path) as image:
        return image.text["Title"]


def test_plot_title_names_the_env_and_its_kwargs(tmp_path, capsys):
    runs = [fake_run(tmp_path / f"maze-{s}", "Plastic/Maze-v0", {"size": 9, "episode_length": 100}) for s in "ab"]
    png = tmp_path / "maze.png"
    assert plot.main([*map(str, runs), "--out", str(png)]) == 0
    assert png.is_file() and png_title(png) == "Plastic/Maze-v0 {size: 9, episode_length: 100}"
    assert plot.main([*map(str, runs), "--title", "mine", "--out", str(png)]) == 0
    assert png_title(png) == "mine"
    bare = fake_run(tmp_path / "bare", "Plastic/Maze-v0", {})
    assert plot.main([str(bare), "--out", str(png)]) == 0
    assert png_title(png) == "Plastic/Maze-v0 (default kwargs)"


@pytest.mark.parametrize(
    ("second", "named"),
    [
        (("Plastic/ReversalBandit-v0", {"episode_length": 10}), ("Plastic/ReversalBandit-v0 {episode_length: 10}",)),
        (("Plastic/Maze-v0", {"size": 7}), ("Plastic/Maze-v0 {size: 7}",)),
        (("Plastic/Maze-v0", {"size": 9, "wall_penalty": 0.1}), ("Plastic/Maze-v0 {size: 9, wall_penalty: 0.1}",)),
    ],
    ids=["env-id", "kwarg-value", "extra-kwarg"],
)
def test_plot_refuses_runs_of_different_envs_or_kwargs(tmp_path, capsys, second, named):
    first = fake_run(tmp_path / "first", "Plastic/Maze-v0", {"size": 9})
    same = fake_run(tmp_path / "same", "Plastic/Maze-v0", {"size": 9}, core="modulated")
    other = fake_run(tmp_path / "other", *second)
    png = tmp_path / "mixed.png"
    assert plot.main([str(first), str(same), str(other), "--out", str(png)]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and err.startswith("plot.py: error:")
    assert "Plastic/Maze-v0 {size: 9}" in err and all(name in err for name in named)
    assert str(first) in err and str(other) in err and str(same) not in err
    assert not png.exists()


def test_plot_counts_kwargs_equal_to_the_defaults_as_left_out(tmp_path):
    explicit = fake_run(tmp_path / "explicit", "Plastic/Maze-v0", {"size": 13, "episode_length": 50})
    implicit = fake_run(tmp_path / "implicit", "Plastic/Maze-v0", {"episode_length": 50})
    listed = fake_run(tmp_path / "listed", "Plastic/CueReward-v0", {"trial_length": [5, 8]})  # a tuple default
    png = tmp_path / "same.png"
    assert plot.main([str(explicit), str(implicit), "--out", str(png)]) == 0
    assert png_title(png) == "Plastic/Maze-v0 {size: 13, episode_length: 50}"  # the first run, as written
    assert plot.main([str(listed), str(fake_run(tmp_path / "cue", "Plastic/CueReward-v0", {})), "--out",
                      str(png)]) == 0
    assert curves.env_kwarg_defaults("Plastic/Nope-v0") == {}  # unknown envs: the kwargs are compared as written


def test_plot_of_a_real_training_run_and_an_sb3_style_run(tmp_path, capsys):
    run = tmp_path / "bandit-rnn"
    assert train.main(["--env", "Plastic/ReversalBandit-v0", "--core", "rnn", "--hidden", "4", "--episodes", "8",
                       "--batch", "4", "--env-kwargs", '{"episode_length": 10}', "--no-progress", "--no-tensorboard",
                       "--out", str(run)]) == 0
    sb3 = fake_run(tmp_path / "bandit-sb3", "Plastic/ReversalBandit-v0", {"episode_length": 10}, core="sb3-a2c")
    png = tmp_path / "bandit.png"
    assert plot.main([str(run), str(sb3), "--out", str(png)]) == 0
    out = capsys.readouterr().out
    assert "rnn" in out and "sb3-a2c" in out
    assert png_title(png) == "Plastic/ReversalBandit-v0 {episode_length: 10}"
    longer = fake_run(tmp_path / "bandit-long", "Plastic/ReversalBandit-v0", {"episode_length": 20}, core="sb3-a2c")
    assert plot.main([str(run), str(longer), "--out", str(tmp_path / "no.png")]) == 2
    err = capsys.readouterr().err
    assert "{episode_length: 10}" in err and "{episode_length: 20}" in err and str(longer) in err


# ---------------------------------------------------------------------------------------------------------------
# Labelled frames of the cue-reward and bandit envs


@pytest.fixture
def recorded_text(monkeypatch):
    """The strings drawn with maze_render.draw_text (the text helper every labelled frame uses)."""
    texts: list[str] = []
    draw_text = maze_render.draw_text

    def record(surface, text, *args, **kwargs):
        texts.append(text)
        return draw_text(surface, text, *args, **kwargs)

    monkeypatch.setattr(maze_render, "draw_text", record)
    return texts


def frame_without_text(env, monkeypatch) -> np.ndarray:
    """The env's frame of its current state with every text label left out."""
    with monkeypatch.context() as patch:
        patch.setattr(maze_render, "draw_text", lambda surface, text, position, *a, **k: maze_render.pygame.Rect(
            position, (0, 0)))
        return env.render()


def text_rows(labelled: np.ndarray, bare: np.ndarray) -> np.ndarray:
    """Row indices where the two frames differ."""
    return np.flatnonzero((labelled != bare).any(axis=(1, 2)))


def play_cue_reward_until_answered(env: CueRewardEnv, answer: int = 1) -> dict:
    _, info = env.reset(seed=3)
    while not info["go"]:
        _, _, _, _, info = env.step(0)
    go_info = info
    env.step(answer)
    return go_info


def test_cue_reward_frame_labels_trial_cues_go_answer_and_reward(recorded_text, monkeypatch):
    env = CueRewardEnv(render_mode="rgb_array")
    go_info = play_cue_reward_until_answered(env, answer=1)
    recorded_text.clear()
    frame = env.render()
    texts = "\n".join(recorded_text)
    target, trial = go_info["target"], go_info["trial"]
    step = int(env.unwrapped._batch.t[0]) - 1  # the go step just answered
    reward = 1 if go_info["target_shown"] else -1
    assert f"target C{target}" in texts and f"trial {trial}" in texts
    assert f'last go: step {step} (trial {trial}), answered 1 "target shown", reward {reward:+d}' in texts
    shown = [int(c) for c in env.unwrapped._batch.tables["cue"][0, step - go_info["step_in_trial"]: step + 1] if c >= 0]
    assert shown and f"cues shown {', '.join(f'C{c}' for c in shown)}" in texts
    for name in ("cue bits", "cue", "go", "answer", "reward", "trial", "C0", "C3"):
        assert name in recorded_text  # row labels and cue names

    bare = frame_without_text(env, monkeypatch)
    assert bare.shape == frame.shape and not np.array_equal(bare, frame)
    rows = text_rows(frame, bare)
    assert rows.min() < 30 and rows.max() > frame.shape[0] - 60  # the header and the lines under the picture
    text_colour = np.array([225, 225, 235])
    assert (np.abs(frame[:24].astype(int) - text_colour).sum(-1) < 40).sum() > 50  # bright header glyphs
    assert not (np.abs(bare[:24].astype(int) - text_colour).sum(-1) < 40).any()


def test_bandit_frame_labels_probabilities_reversals_pull_and_reward(recorded_text, monkeypatch):
    env = ReversalBanditEnv(render_mode="rgb_array", probabilities=(0.2, 0.8), shuffle_arms=False)
    _, info = env.reset(seed=0)
    reversal_step = int(np.flatnonzero(info["reversal_mask"])[0])
    for _ in range(reversal_step + 2):
        _, reward, *_ = env.step(0)
    recorded_text.clear()
    frame = env.render()
    texts = "\n".join(recorded_text)
    assert f"pull {reversal_step + 2}/100" in texts
    assert "arm 0  p = 0.80 (best)" in texts and "arm 1  p = 0.20" in texts  # after the reversal
    assert f"pulls {reversal_step + 2}" in texts
    assert f"<- last pull: reward {reward:.0f}" in texts
    assert f"reversal (the best arm changes) at step {reversal_step}" in texts
    assert str(reversal_step) in recorded_text  # the tick label under the timeline
    assert "0.80" in recorded_text and "0.20" in recorded_text  # the bar values
    assert {"arm 0", "arm 1", "pulled, reward 1", "pulled, reward 0", "reversal"} <= set(recorded_text)

    bare = frame_without_text(env, monkeypatch)
    assert bare.shape == frame.shape
    rows = text_rows(frame, bare)
    assert rows.min() < 24 and rows.max() > frame.shape[0] - 30


def test_labels_follow_the_state_and_frames_keep_their_shape():
    for env in (CueRewardEnv(render_mode="rgb_array", episode_length=40),
                ReversalBanditEnv(render_mode="rgb_array", n_arms=3, episode_length=12, hazard_rate=0.3)):
        env.reset(seed=1)
        frames = [env.render()]
        truncated = False
        while not truncated:
            truncated = env.step(1)[3]
            frames.append(env.render())
        assert len({f.shape for f in frames}) == 1 and all(f.dtype == np.uint8 for f in frames)
        header = [f[:24].tobytes() for f in frames]
        assert len(set(header)) == len(frames)  # "step t/T" / "pull t/T" changes every step
        env.reset(seed=2)
        assert env.render().shape == frames[0].shape  # the shape depends on the settings only


# ---------------------------------------------------------------------------------------------------------------
# Maze legend


def near(frame: np.ndarray, colour: tuple[int, int, int], tol: int = 10) -> int:
    return int((np.abs(frame.astype(int) - np.array(colour)).sum(-1) <= tol).sum())


def test_maze_frame_has_a_legend_under_the_status_line():
    env = gym.make("Plastic/Maze-v0", render_mode="rgb_array")
    _, info = env.reset(seed=0)
    frame = env.render()
    walls, side = env.unwrapped.layout.walls, 13 * maze_render.CELL_PX
    bare = maze_render.maze_frame(walls, info["agent_pos"], info["reward_pos"], status=_status(0, 200, 0.0, 0.0,
                                                                                               False, False))
    legend = frame[side + maze_render.STATUS_PX:]
    assert legend.shape[0] == maze_render.frame_size(13, legend=maze_render.ENV_LEGEND)[1] - side - 24 > 20
    np.testing.assert_array_equal(frame[:side], bare[:side])  # the maze itself is unchanged
    for colour in (maze_render.AGENT_COLOUR, maze_render.REWARD_COLOUR, maze_render.REWARD_HIT_COLOUR,
                   maze_render.BUMP_COLOUR):
        assert near(legend, colour) > 5, colour  # an icon per symbol
    assert near(legend, maze_render.TEXT_COLOUR, tol=60) > 200  # the explanations


def test_maze_legend_items_and_errors():
    assert maze_render.legend_keys(True) == maze_render.ENV_LEGEND
    assert maze_render.legend_keys(True, path=True, hits=True)[-2:] == ("path", "hits")
    assert maze_render.legend_keys(False) == ()
    with pytest.raises(ValueError, match="unknown legend items"):
        maze_render.maze_frame(np.zeros((5, 5), bool), None, None, legend=("teleport",))
    walls = np.zeros((5, 5), bool)
    walls[0] = True
    small = maze_render.maze_frame(walls, (2, 2), (3, 3), status="s", cell_px=12, legend=True, path=[(2, 2)],
                                   hits=[(3, 3)])
    width, height = maze_render.frame_size(5, 12, True, maze_render.legend_keys(True, True, True))
    assert small.shape == (height, width, 3) and width > 5 * 12  # the legend widens a small maze's frame
    assert tuple(small[6, 6]) == maze_render.WALL_COLOUR and tuple(small[2 * 12 + 6, 2 * 12 + 6]) == \
        maze_render.AGENT_COLOUR  # the maze stays at the top left
    plain = maze_render.maze_frame(walls, (2, 2), (3, 3), status="s", cell_px=12)
    assert plain.shape == (5 * 12 + maze_render.STATUS_PX, 5 * 12, 3)  # no legend unless asked


def test_vector_envs_render_the_same_labelled_frames():
    for single, vector in ((CueRewardEnv(render_mode="rgb_array"), CueRewardVectorEnv(2, render_mode="rgb_array")),
                           (ReversalBanditEnv(render_mode="rgb_array"),
                            ReversalBanditVectorEnv(2, render_mode="rgb_array"))):
        single.reset(seed=5)
        vector.reset(seed=5)
        single.step(1)
        vector.step(np.array([1, 0]))
        frames = vector.render()
        np.testing.assert_array_equal(frames[0], single.render())
        assert frames[1].shape == frames[0].shape and not np.array_equal(frames[0], frames[1])
