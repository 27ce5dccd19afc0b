"""Presets: the papers' settings by name, and the trainer options they need (Σp², burn-in, Adam eps, paper init)."""

from __future__ import annotations

import json
import math

import pytest
import torch

from agents.a2c import A2CTrainer, a2c_loss
from agents.checkpoint import load_checkpoint
from agents.cli import train
from agents.config import A2CConfig, make_config
from agents.presets import PRESETS, get_preset, load_preset_file, preset_table
from agents.run import RunDir
from plastic_core import make_core

MAZE, CUE, BANDIT = "Plastic/Maze-v0", "Plastic/CueReward-v0", "Plastic/ReversalBandit-v0"


# -- the table --------------------------------------------------------------------------------------------------
def test_backpropamine_maze_preset_resolves_to_the_papers_values():
    expected = {"rnn": 139, "plastic": 101, "modulated": 100, "retroactive": 100}
    for core, hidden in expected.items():
        c = make_config(None, core, preset="backpropamine2019-maze", iterations=3)
        assert (c.env_id, c.hidden, c.batch, c.lr, c.adam_eps, c.clip, c.gamma) == (MAZE, hidden, 30, 1e-4, 1e-4, 4.0,
                                                                                     0.9)
        assert (c.value_coef, c.regulariser, c.regulariser_coef, c.burn_in) == (0.1, "concentration", 0.03, 100)
        assert c.env_kwargs == {"size": 13, "episode_length": 200, "wall_penalty": 0.0, "reward_value": 10.0}
        assert c.core_kwargs["init"] == "paper" and c.episodes == 90 and c.preset == "backpropamine2019-maze"
    plastic = make_config(None, "plastic", preset="backpropamine2019-maze", episodes=30).core_kwargs
    assert plastic == {"init": "paper", "rule": "hebb", "clip": 1.0, "eta_init": 0.01}
    retroactive = make_config(None, "retroactive", preset="backpropamine2019-maze", episodes=30)
    assert retroactive.core_kwargs["eta_init"] == 0.01
    assert get_preset("backpropamine2019-maze").iterations == 200_002


def test_backpropamine_cue_reward_and_2018_maze_presets():
    c = make_config(None, "retroactive", preset="backpropamine2019-cue-reward", episodes=30)
    assert (c.env_id, c.hidden, c.adam_eps, c.clip, c.regulariser, c.regulariser_coef) == (CUE, 200, 1e-6, 2.0,
                                                                                           "concentration", 0.1)
    assert c.env_kwargs["cues_per_trial"] == 2 and c.core_kwargs == {"init": "paper", "clip": 1.0, "eta_init": 0.1}
    m = make_config(None, "plastic", preset="miconi2018-maze", episodes=30)
    assert (m.env_kwargs["size"], m.env_kwargs["episode_length"], m.env_kwargs["wall_penalty"]) == (9, 250, 0.1)
    assert (m.hidden, m.core_kwargs, m.value_coef, m.regulariser_coef) == (200, {"rule": "oja"}, 0.03, 0.1)


def test_flags_override_a_preset_and_kwargs_merge_key_by_key():
    c = make_config(None, "plastic", preset="backpropamine2019-maze", episodes=30, lr=3e-4, hidden=None,
                    env_kwargs={"size": 9}, core_kwargs={"eta_init": 0.1})
    assert (c.lr, c.hidden, c.env_kwargs["size"], c.env_kwargs["episode_length"]) == (3e-4, 101, 9, 200)
    assert c.core_kwargs == {"init": "paper", "rule": "hebb", "clip": 1.0, "eta_init": 0.1}


def test_the_env_defaults_are_the_default_presets():
    maze = make_config(MAZE, "modulated", episodes=30)
    assert (maze.regulariser, maze.adam_eps, maze.burn_in, maze.preset) == ("entropy", 1e-8, 0, None)
    assert make_config(BANDIT, "rnn", episodes=30).hidden == 48


@pytest.mark.parametrize("call,match", [
    (lambda: make_config(None, "lstm", preset="backpropamine2019-maze", episodes=30), "defines the cores"),
    (lambda: make_config(None, "rnn", preset="nope", episodes=30), "unknown preset 'nope'"),
    (lambda: make_config(CUE, "rnn", preset="backpropamine2019-maze", episodes=30), "is for Plastic/Maze-v0"),
    (lambda: make_config(MAZE, "rnn", episodes=30, iterations=2), "not both"),
])
def test_bad_preset_use_is_refused(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_list_presets_names_every_preset_with_its_source(capsys):
    with pytest.raises(SystemExit) as exit_info:
        train.main(["--list-presets"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert out.strip() == preset_table()
    for preset in PRESETS.values():
        assert preset.name in out and preset.source in out


def test_preset_file_trains(tmp_path):
    path = tmp_path / "best.toml"
    path.write_text('name = "best"\nenv_id = "Plastic/ReversalBandit-v0"\n[settings]\nhidden = 6\nlr = 0.002\n'
                    'regulariser = "concentration"\nregulariser_coef = 0.2\n'
                    '[settings.env_kwargs]\nepisode_length = 5\n')
    assert load_preset_file(path).settings["hidden"] == 6
    out = tmp_path / "run"
    assert train.main(["--preset-file", str(path), "--core", "rnn", "--iterations", "2", "--batch", "4",
                       "--no-progress", "--out", str(out)]) == 0
    config = json.loads((out / "config.json").read_text())
    assert (config["preset"], config["hidden"], config["lr"], config["regulariser"], config["episodes"]) == (
        "best", 6, 0.002, "concentration", 8)


# -- what the presets need ----------------------------------------------------------------------------------------
def test_concentration_penalty_by_hand():
    logits = torch.tensor([[[0.0, math.log(3.0)]], [[0.0, 0.0]]], requires_grad=True)  # p = (1/4, 3/4), (1/2, 1/2)
    actions, values, rewards = torch.tensor([[0], [1]]), torch.zeros(2, 1), torch.zeros(2, 1)
    loss, parts = a2c_loss(logits, actions, values, rewards, gamma=0.9, value_coef=0.1, regulariser_coef=0.03,
                           regulariser="concentration")
    concentration = ((1 / 16 + 9 / 16) + (1 / 4 + 1 / 4)) / 2
    assert parts["concentration"].item() == pytest.approx(concentration)
    assert loss.item() == pytest.approx(0.03 * concentration)  # zero rewards and values: only the penalty is left
    # d/dlogit_1 of p0^2 + p1^2 at the first step: 2 p1 (p1 - sum p^2) = 2 * 3/4 * (3/4 - 10/16); mean over 2 steps
    (grad,) = torch.autograd.grad(loss, logits)
    assert grad[0, 0, 1].item() == pytest.approx(0.03 * 2 * 0.75 * (0.75 - 10 / 16) / 2)
    with pytest.raises(ValueError, match="regulariser must be"):
        a2c_loss(logits, actions, values, rewards, 0.9, 0.1, 0.03, regulariser="l1")


def test_burn_in_computes_the_loss_but_leaves_the_weights_and_optimizer_untouched():
    config = make_config(BANDIT, "modulated", episodes=4 * 3, batch=4, hidden=6, burn_in=2,
                         env_kwargs={"episode_length": 8})
    trainer = A2CTrainer(config)
    before = {k: v.clone() for k, v in trainer.model.state_dict().items()}
    for iteration in range(2):
        stats = trainer.train_iteration(iteration)
        assert math.isfinite(stats["loss"]) and stats["grad_norm"] > 0
    assert all(torch.equal(before[k], v) for k, v in trainer.model.state_dict().items())
    assert trainer.optimizer.state_dict()["state"] == {}
    trainer.train_iteration(2)
    assert not all(torch.equal(before[k], v) for k, v in trainer.model.state_dict().items())
    trainer.close()


def test_adam_eps_reaches_the_optimizer():
    trainer = A2CTrainer(make_config(BANDIT, "rnn", episodes=4, batch=4, hidden=4, adam_eps=1e-4))
    assert trainer.optimizer.param_groups[0]["eps"] == 1e-4
    trainer.close()


@pytest.mark.parametrize("core", ["rnn", "plastic", "modulated", "retroactive"])
def test_paper_init_starts_w_and_alpha_at_small_positive_values(core):
    torch.manual_seed(0)
    paper = make_core(core, input_size=5, hidden_size=50, init="paper")
    torch.manual_seed(0)
    default = make_core(core, input_size=5, hidden_size=50)
    names = ["w"] + (["alpha"] if core != "rnn" else [])
    for name in names:
        p, d = getattr(paper, name), getattr(default, name)
        assert p.min() >= 0 and p.max() < 0.01 and p.std() > 0.002  # 0.01 U[0, 1): std 0.0029
        assert d.min() < 0 and d.abs().max() <= 1 / math.sqrt(50)  # nn.RNN's U(±1/sqrt(N)), unchanged default
    torch.testing.assert_close(paper.w_in.weight, default.w_in.weight)  # input layer: torch's default either way
    with pytest.raises(ValueError, match="unknown init 'xavier'"):
        make_core(core, input_size=5, hidden_size=4, init="xavier")


def test_a_config_written_before_the_regulariser_option_resumes(tmp_path):
    out = tmp_path / "old"
    assert train.main(["--env", BANDIT, "--core", "rnn", "--hidden", "4", "--batch", "4", "--episodes", "8",
                       "--env-kwargs", '{"episode_length": 5}', "--entropy", "0.02", "--no-progress", "--out",
                       str(out)]) == 0
    config = json.loads((out / "config.json").read_text())
    assert (config["regulariser"], config["regulariser_coef"]) == ("entropy", 0.02)
    old = {k: v for k, v in config.items() if k not in ("regulariser", "regulariser_coef", "adam_eps", "burn_in",
                                                          "preset")}
    old["entropy_coef"] = 0.02  # the field as the previous version wrote it
    (out / "config.json").write_text(json.dumps(old))
    assert A2CConfig.from_dict(RunDir.read_config(out)).regulariser_coef == 0.02
    assert train.main(["--out", str(out), "--resume", "--episodes", "16", "--no-progress"]) == 0
    assert load_checkpoint(out / "checkpoint.pt")["iteration"] == 4


def test_the_paper_preset_run_of_the_issue(tmp_path):
    out = tmp_path / "RUN"
    assert train.main(["--preset", "backpropamine2019-maze", "--core", "plastic", "--iterations", "1", "--seed", "0",
                       "--no-progress", "--no-tensorboard", "--out", str(out)]) == 0
    config = json.loads((out / "config.json").read_text())
    assert (config["adam_eps"], config["regulariser"], config["burn_in"], config["hidden"]) == (
        1e-4, "concentration", 100, 101)
    assert config["core_kwargs"]["rule"] == "hebb" and config["episodes"] == 30
    weights = load_checkpoint(out / "checkpoint.pt")["trainer"]["model"]
    for name in ("core.w", "core.alpha"):  # inside the burn-in: still the paper's initial weights
        assert 0 <= weights[name].min() and weights[name].max() < 0.01
    assert train.main(["--out", str(out), "--resume", "--preset", "maze"]) == 2
