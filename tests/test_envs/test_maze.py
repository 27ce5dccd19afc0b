"""Plastic/Maze-v0: layout, dynamics, observations, the 2018 variant, rendering and argument checks."""

from __future__ import annotations

import math
from collections import deque

import gymnasium as gym
import numpy as np
import pygame
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import envs  # noqa: F401 (registers the ids)
from envs import maze_render
from envs.maze import ACTION_DELTAS, MazeEnv, MazeLayout, MazeVectorEnv, draw_episode

UP, DOWN, LEFT, RIGHT = range(4)


def expected_walls(size: int) -> np.ndarray:
    """The rule of TASKS.md, cell by cell: border, and both coordinates even, except the centre."""
    walls = np.zeros((size, size), dtype=bool)
    for r in range(size):
        for c in range(size):
            border = r in (0, size - 1) or c in (0, size - 1)
            walls[r, c] = (border or (r % 2 == 0 and c % 2 == 0)) and (r, c) != (size // 2, size // 2)
    return walls


def shortest_path_actions(walls: np.ndarray, start, goal) -> list[int]:
    """Breadth-first search: the actions that walk from ``start`` to ``goal``."""
    start, goal = tuple(int(x) for x in start), tuple(int(x) for x in goal)
    previous = {start: None}
    queue = deque([start])
    while queue:
        cell = queue.popleft()
        if cell == goal:
            break
        for action, (dr, dc) in enumerate(ACTION_DELTAS):
            nxt = (cell[0] + int(dr), cell[1] + int(dc))
            if not walls[nxt] and nxt not in previous:
                previous[nxt] = (cell, action)
                queue.append(nxt)
    actions = []
    cell = goal
    while previous[cell] is not None:
        cell, action = previous[cell]
        actions.append(action)
    return actions[::-1]


def reset_with_reward_away_from(env: MazeEnv, cells: set[tuple[int, int]]) -> tuple[np.ndarray, dict]:
    """Reset with the first seed whose reward cell is not in ``cells`` (so that a planned walk gets no reward)."""
    seed = 0
    while True:
        obs, info = env.reset(seed=seed)
        if tuple(info["reward_pos"]) not in cells:
            return obs, info
        seed += 1


# ---------------------------------------------------------------------------------------------------------------
# Layout and start


@pytest.mark.parametrize("size", [5, 7, 9, 13, 15])
def test_walls_follow_the_rule_and_agent_starts_at_the_free_centre(size):
    env = MazeEnv(size=size)
    np.testing.assert_array_equal(env.layout.walls, expected_walls(size))
    obs, info = env.reset(seed=0)
    assert tuple(info["agent_pos"]) == (size // 2, size // 2)
    assert not env.layout.walls[size // 2, size // 2]


def test_reward_cell_is_a_random_free_cell_other_than_the_centre():
    env = MazeEnv()
    centre = (6, 6)
    cells = [tuple(env.reset(seed=seed)[1]["reward_pos"]) for seed in range(300)]
    walls = expected_walls(13)
    assert all(not walls[cell] and cell != centre for cell in cells)
    n_candidates = int((~walls).sum()) - 1  # 96
    assert len(set(cells)) > 0.8 * n_candidates  # 300 uniform draws hit ~95 of 96 cells


def test_teleport_destinations_cover_every_free_cell_but_the_reward_cell():
    layout = MazeLayout(9)
    rng = np.random.default_rng(0)
    for _ in range(5):
        reward_cell, teleports = draw_episode(rng, layout, 3000)
        assert teleports.shape == (3000,)
        expected = set(layout.free_cells.tolist()) - {reward_cell}
        assert set(teleports.tolist()) == expected  # 3000 draws over 40 cells: all seen, the reward cell never


def test_first_observations_at_known_positions():
    env = MazeEnv()
    obs, _ = reset_with_reward_away_from(env, {(5, 6), (5, 5)})
    #  view (all free around the centre), unused 0, bias 1, t/T 0, previous reward 0, no previous action
    np.testing.assert_array_equal(obs, np.array([0] * 9 + [0, 1, 0, 0, 0, 0, 0, 0], dtype=np.float32))
    obs, reward, terminated, truncated, info = env.step(UP)  # to (5, 6): the wall (4, 6) is straight above
    assert tuple(info["agent_pos"]) == (5, 6) and reward == 0.0 and not terminated and not truncated
    expected = [0, 1, 0, 0, 0, 0, 0, 0, 0] + [0, 1, 1 / 200, 0, 1, 0, 0, 0]  # view, unused, bias, t/T, reward, up
    np.testing.assert_array_equal(obs, np.array(expected, dtype=np.float32))
    obs, *_ = env.step(LEFT)  # to (5, 5): walls at (4, 4), (4, 6), (6, 4); (6, 6) is the free centre
    np.testing.assert_array_equal(obs[:9], [1, 0, 1, 0, 0, 0, 1, 0, 0])
    np.testing.assert_array_equal(obs[13:], [0, 0, 1, 0])


def test_walking_into_a_wall_costs_the_wall_penalty_and_does_not_move():
    for wall_penalty in (0.0, 0.25):
        env = MazeEnv(wall_penalty=wall_penalty)
        reset_with_reward_away_from(env, {(5, 6)})
        env.step(UP)
        obs, reward, _, _, info = env.step(UP)  # (4, 6) is a wall
        assert tuple(info["agent_pos"]) == (5, 6)
        assert reward == -wall_penalty and obs[12] == np.float32(-wall_penalty)
        np.testing.assert_array_equal(obs[13:], [1, 0, 0, 0])
        assert env.observation_space.contains(obs)


def test_reaching_the_reward_cell_pays_and_teleports():
    env = MazeEnv(reward_value=5.0)
    _, info = env.reset(seed=11)
    reward_pos = tuple(info["reward_pos"])
    walls = expected_walls(13)
    hits, destinations, episode_return, t = 0, [], 0.0, 0
    while t < env.episode_length:
        plan = shortest_path_actions(walls, info["agent_pos"], reward_pos)
        for k, action in enumerate(plan):
            obs, reward, _, truncated, info = env.step(action)
            t += 1
            episode_return += reward
            arrived = k == len(plan) - 1
            assert info["reward_hit"] == arrived and reward == (5.0 if arrived else 0.0)
            assert tuple(info["reward_pos"]) == reward_pos
            if truncated:
                break
        if info["reward_hit"]:
            hits += 1
            destination = tuple(info["agent_pos"])
            assert destination != reward_pos and not walls[destination]
            assert obs[12] == 5.0  # the reward is seen as input on the next step
            destinations.append(destination)
    assert truncated and t == 200
    assert hits >= 10 and episode_return == 5.0 * hits
    assert len(set(destinations)) > hits // 2  # teleports land on random cells


@settings(max_examples=60, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    size=st.sampled_from([5, 7, 9, 13]),
    wall_penalty=st.sampled_from([0.0, 0.1]),
    actions=st.lists(st.integers(0, 3), min_size=1, max_size=30),
)
def test_random_play_obeys_the_maze_rules(seed, size, wall_penalty, actions):
    env = MazeEnv(size=size, episode_length=60, wall_penalty=wall_penalty)
    walls = expected_walls(size)
    obs, info = env.reset(seed=seed)
    reward_pos = tuple(info["reward_pos"])
    pos = tuple(info["agent_pos"])
    for t in range(60):
        action = actions[t % len(actions)]
        target = (pos[0] + int(ACTION_DELTAS[action][0]), pos[1] + int(ACTION_DELTAS[action][1]))
        obs, reward, terminated, truncated, info = env.step(action)
        new_pos = tuple(info["agent_pos"])
        assert not walls[new_pos], "agent inside a wall"
        assert tuple(info["reward_pos"]) == reward_pos
        if walls[target]:
            assert new_pos == pos and reward == -wall_penalty and not info["reward_hit"]
        elif target == reward_pos:
            assert reward == 10.0 and info["reward_hit"] and new_pos != reward_pos
        else:
            assert new_pos == target and reward == 0.0 and not info["reward_hit"]
        r, c = new_pos
        np.testing.assert_array_equal(obs[:9], walls[r - 1 : r + 2, c - 1 : c + 2].ravel())
        assert obs[9] == 0 and obs[10] == 1 and math.isclose(obs[11], (t + 1) / 60, rel_tol=1e-6)
        assert env.observation_space.contains(obs)
        assert not terminated and truncated == (t == 59)
        pos = new_pos


def test_2018_variant_is_one_call_away():
    env = gym.make("Plastic/Maze-v0", size=9, episode_length=250, wall_penalty=0.1)
    obs, info = env.reset(seed=0)
    assert obs.shape == (17,) and tuple(info["agent_pos"]) == (4, 4)
    np.testing.assert_array_equal(env.unwrapped.layout.walls, expected_walls(9))
    assert env.observation_space.low[12] == np.float32(-0.1)
    steps = 0
    truncated = False
    while not truncated:
        _, _, _, truncated, _ = env.step(steps % 4)
        steps += 1
    assert steps == 250


def test_stepping_after_truncation_or_with_options_is_refused():
    env = MazeEnv(episode_length=3)
    with pytest.raises(ValueError, match="options"):
        env.reset(seed=0, options={"reward_cell": (1, 1)})
    env.reset(seed=0)
    for _ in range(3):
        env.step(LEFT)
    with pytest.raises(RuntimeError, match="reset"):
        env.step(LEFT)


# ---------------------------------------------------------------------------------------------------------------
# Vector env specifics (the generic equality with SyncVectorEnv is in test_rl_env_api.py)


def test_partial_reset_with_reset_mask_matches_sync_vector_env():
    native = gym.make_vec("Plastic/Maze-v0", num_envs=4, vectorization_mode="vector_entry_point", episode_length=20)
    sync = gym.make_vec("Plastic/Maze-v0", num_envs=4, vectorization_mode="sync", episode_length=20)
    native.reset(seed=0)
    sync.reset(seed=0)
    rng = np.random.default_rng(1)
    for k in range(45):
        if k in (7, 30):
            mask = np.array([True, False, k == 30, False])
            got = native.reset(seed=100 + k, options={"reset_mask": mask})
            expected = sync.reset(seed=100 + k, options={"reset_mask": mask})
        else:
            actions = rng.integers(4, size=4)
            got, expected = native.step(actions), sync.step(actions)
            for a, b in zip(got[1:4], expected[1:4], strict=True):
                np.testing.assert_array_equal(a, b)
        np.testing.assert_array_equal(got[0], expected[0])
        for key, value in expected[-1].items():
            np.testing.assert_array_equal(got[-1][key], value, err_msg=f"step {k} {key}")


def test_vector_env_renders_one_frame_per_sub_env():
    vec = MazeVectorEnv(num_envs=2, render_mode="rgb_array")
    vec.reset(seed=0)
    frames = vec.render()
    single = MazeEnv(render_mode="rgb_array")
    single.reset(seed=1)
    assert len(frames) == 2
    np.testing.assert_array_equal(frames[1], single.render())
    text = MazeVectorEnv(num_envs=3, render_mode="ansi")
    text.reset(seed=0)
    assert len(text.render()) == 3 and all(isinstance(t, str) for t in text.render())


# ---------------------------------------------------------------------------------------------------------------
# Rendering


def pixel_at(frame: np.ndarray, cell, cell_px: int = maze_render.CELL_PX) -> tuple[int, ...]:
    """Colour at the centre of a cell."""
    r, c = int(cell[0]), int(cell[1])
    return tuple(frame[r * cell_px + cell_px // 2, c * cell_px + cell_px // 2])


def test_rgb_array_frame_shows_walls_agent_and_reward_cell_and_follows_the_agent():
    env = MazeEnv(render_mode="rgb_array")
    _, info = reset_with_reward_away_from(env, {(5, 6)})
    frame = env.render()
    assert frame.dtype == np.uint8 and frame.ndim == 3 and frame.shape[2] == 3
    legend_px = maze_render.frame_size(13, legend=maze_render.ENV_LEGEND)[1] - maze_render.frame_size(13)[1]
    assert legend_px > 0  # the legend under the status line
    assert frame.shape[:2] == (13 * maze_render.CELL_PX + maze_render.STATUS_PX + legend_px, 13 * maze_render.CELL_PX)
    assert pixel_at(frame, (0, 0)) == maze_render.WALL_COLOUR
    assert pixel_at(frame, (1, 1)) == maze_render.FREE_COLOUR
    assert pixel_at(frame, info["agent_pos"]) == maze_render.AGENT_COLOUR
    assert pixel_at(frame, info["reward_pos"]) == maze_render.REWARD_COLOUR
    np.testing.assert_array_equal(frame, env.render())  # same state, same frame
    env.step(UP)
    moved = env.render()
    assert pixel_at(moved, (5, 6)) == maze_render.AGENT_COLOUR and pixel_at(moved, (6, 6)) == maze_render.FREE_COLOUR
    env.step(UP)  # into the wall: a red ring around the agent
    bumped = env.render()
    assert not np.array_equal(bumped[: 13 * maze_render.CELL_PX], moved[: 13 * maze_render.CELL_PX])


def test_human_mode_draws_in_a_window_headless():
    env = MazeEnv(render_mode="human")
    env.metadata = {**env.metadata, "render_fps": 1000}  # no need to wait between frames here
    env.reset(seed=0)
    env.step(UP)
    assert env.render() is None
    window = pygame.display.get_surface()
    assert window is not None and window.get_size() == maze_render.frame_size(13, legend=maze_render.ENV_LEGEND)
    env.close()
    assert not pygame.display.get_init()


def test_ansi_shows_walls_agent_and_reward_cell():
    env = MazeEnv(render_mode="ansi")
    _, info = reset_with_reward_away_from(env, {(5, 6)})
    env.step(UP)
    status, *rows = env.render().splitlines()
    assert "t 1/200" in status
    grid = np.array([list(row) for row in rows])
    assert grid.shape == (13, 13)
    walls = expected_walls(13)
    assert (grid == "#").sum() == walls.sum() and np.all(grid[walls] == "#")
    assert grid[5, 6] == "A" and grid[tuple(info["reward_pos"])] == "R" and (grid == "A").sum() == 1


def test_draw_maze_overlays_a_path_and_reward_hits():
    walls = expected_walls(9)
    path = [(4, 4), (3, 4), (3, 3), (7, 7), (7, 6)]  # a teleport between (3, 3) and (7, 7)
    plain = maze_render.maze_frame(walls, agent=(7, 6), reward_cell=(3, 3))
    overlay = maze_render.maze_frame(walls, agent=(7, 6), reward_cell=(3, 3), path=path, hits=[(3, 3), (3, 3)])
    cell = maze_render.CELL_PX

    def between(a, b) -> tuple:
        y = (a[0] + b[0]) * cell // 2 + cell // 2
        x = (a[1] + b[1]) * cell // 2 + cell // 2
        return tuple(overlay[y, x]), tuple(plain[y, x])

    drawn, before = between((4, 4), (3, 4))
    assert drawn != before  # a path segment between adjacent cells
    drawn, before = between((3, 3), (7, 7))
    assert drawn == before  # the teleport is not joined
    assert tuple(overlay[3 * cell + 1, 3 * cell + cell // 2]) == maze_render.HIT_MARK_COLOUR  # ring at the top


# ---------------------------------------------------------------------------------------------------------------
# Arguments


BAD_KWARGS = [
    ("size", 12),
    ("size", 3),
    ("size", 13.0),
    ("size", True),
    ("episode_length", 0),
    ("episode_length", 2.5),
    ("wall_penalty", -0.1),
    ("wall_penalty", float("nan")),
    ("reward_value", 0.0),
    ("reward_value", float("inf")),
    ("reward_value", "10"),
    ("render_mode", "video"),
]


@pytest.mark.parametrize(("name", "value"), BAD_KWARGS)
def test_bad_keyword_arguments_are_refused_naming_them(name, value):
    with pytest.raises((ValueError, TypeError), match=name):
        MazeEnv(**{name: value})
    with pytest.raises((ValueError, TypeError), match=name):
        MazeVectorEnv(num_envs=2, **{name: value})


def test_even_size_message_says_odd():
    with pytest.raises(ValueError, match="size must be odd"):
        gym.make("Plastic/Maze-v0", size=10)
