"""plastic inspect (agents.inspection): recording episodes, the task's events, the event-triggered average."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from agents.a2c import ActorCritic, load_agent
from agents.cli import inspect_run as inspect_cli
from agents.cli import train
from agents.inspection import CUE_REWARD, MAZE, event_triggered_average, record_episodes
from plastic_core import make_core

SMALL = {MAZE: {"size": 7, "episode_length": 40}, CUE_REWARD: {"episode_length": 40}}


def small_agent(core: str, obs: int, actions: int, **kwargs) -> ActorCritic:
    torch.manual_seed(0)
    return ActorCritic(make_core(core, obs, 12, **kwargs), actions)


def test_cue_reward_events_line_up_with_the_rewards():
    model = small_agent("modulated", 26, 2)
    rec = record_episodes(model, CUE_REWARD, SMALL[CUE_REWARD], episodes=6, seed=1)
    T, B = rec.rewards.shape
    assert (T, B) == (40, 6) and rec.modulation.shape == (40, 6, 1) and rec.eligibility_norm is None
    ev = rec.events
    # rewards come only from the answers at go steps: the events read the info of the observation each step acts on
    np.testing.assert_array_equal(rec.rewards != 0, ev["go"])
    np.testing.assert_array_equal(ev["rewarded go"], ev["go"] & (rec.rewards == 1))
    assert ev["rewarded go"].any() and ev["punished go"].any()
    cues = ev["target cue"] | ev["other cue"]
    assert not (ev["target cue"] & ev["other cue"]).any() and not (ev["go"] & cues).any()
    # every trial that shows the target shows it once: target cues = trials with target_shown
    assert 0 < ev["target cue"].sum() < ev["other cue"].sum()
    # the traces start empty and build up within the episode
    assert rec.hebb_abs[0].max() < rec.hebb_abs[-1].min()


def test_maze_events_are_the_reward_hits_and_the_eligibility_trace_is_kept():
    model = small_agent("retroactive", 17, 4, modulation="fanout")
    rec = record_episodes(model, MAZE, SMALL[MAZE], episodes=8, seed=0)
    assert rec.modulation.shape == (40, 8, 12) and rec.eligibility_norm.shape == (40, 8)
    np.testing.assert_array_equal(rec.events["reward hit"], rec.rewards == 10.0)
    assert rec.events["reward hit"].sum() >= 1 and rec.final_hebb.shape == (8, 12, 12)
    np.testing.assert_allclose(rec.modulation_mean, rec.modulation.mean(axis=2))


def test_event_triggered_average_equals_a_hand_computation():
    model = small_agent("modulated", 26, 2, modulation="fanout")
    rec = record_episodes(model, CUE_REWARD, SMALL[CUE_REWARD], episodes=10, seed=3)
    m, hits = rec.modulation_mean, rec.events["rewarded go"]
    before, after = 3, 4
    by_hand = []
    for b in range(hits.shape[1]):
        for t in range(hits.shape[0]):
            if hits[t, b] and t - before >= 0 and t + after < hits.shape[0]:
                by_hand.append([m[t + k, b] for k in range(-before, after + 1)])
    average = event_triggered_average(m, hits, before, after)
    assert average["count"] == len(by_hand) > 0
    np.testing.assert_allclose(average["mean"], np.mean(by_hand, axis=0), rtol=1e-6)  # float32 sums
    np.testing.assert_allclose(average["std"], np.std(by_hand, axis=0), rtol=1e-5)
    np.testing.assert_array_equal(average["lags"], np.arange(-3, 5))
    assert event_triggered_average(m, np.zeros_like(hits), before, after)["count"] == 0


@pytest.mark.parametrize("env_id", [MAZE, CUE_REWARD])
def test_inspect_a_tiny_trained_run(tmp_path, env_id, capsys):
    run = tmp_path / "run"
    assert train.main(["--env", env_id, "--env-kwargs", json.dumps(SMALL[env_id]), "--core", "retroactive",
                       "--hidden", "8", "--batch", "4", "--episodes", "16", "--seed", "0", "--out", str(run),
                       "--no-progress", "--no-tensorboard"]) == 0
    assert inspect_cli.main([str(run), "--episodes", "20", "--after", "6"]) == 0
    out = run / "inspect"
    for name in ("timeline.png", "event_average.png", "parameters.png"):
        assert (out / name).stat().st_size > 5_000
    summary = json.loads((out / "inspection.json").read_text())
    model, _ = load_agent(run)
    assert summary["eta"] == pytest.approx(model.core.eta.item()) and len(summary["event_average"]["lags"]) == 12
    assert "wrote" in capsys.readouterr().out


def test_inspect_refuses_a_core_without_traces(tmp_path, capsys):
    run = tmp_path / "rnn"
    assert train.main(["--env", MAZE, "--env-kwargs", json.dumps(SMALL[MAZE]), "--core", "rnn", "--hidden", "8",
                       "--batch", "4", "--episodes", "4", "--out", str(run), "--no-progress", "--no-tensorboard"]) == 0
    assert inspect_cli.main([str(run)]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "has no Hebbian trace" in err
    assert inspect_cli.main([str(tmp_path / "missing")]) == 2
