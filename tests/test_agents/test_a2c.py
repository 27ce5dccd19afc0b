"""A2C: returns, advantages and loss on hand-made examples, sampling, config checks, bad input, and learning."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from agents.a2c import (
    A2CTrainer,
    a2c_loss,
    choose_actions,
    discounted_returns,
    make_vector_env,
    reset_seed,
    train,
)
from agents.config import A2CConfig, make_config
from agents.evaluation import evaluate_agent, evaluate_random, mean_confidence_interval
from agents.presets import DEFAULT_PRESETS

BANDIT = "Plastic/ReversalBandit-v0"
MAZE = "Plastic/Maze-v0"


# -- returns and loss ---------------------------------------------------------------------------------------------
def test_full_episode_returns_by_hand():
    # two episodes of 3 steps, gamma 0.5; returns computed backwards by hand
    rewards = torch.tensor([[1.0, 0.0], [0.0, 4.0], [2.0, -2.0]])
    expected = torch.tensor([
        [1 + 0.5 * (0 + 0.5 * 2), 0 + 0.5 * (4 + 0.5 * -2)],
        [0 + 0.5 * 2, 4 + 0.5 * -2],
        [2.0, -2.0],
    ])
    torch.testing.assert_close(discounted_returns(rewards, 0.5), expected)
    torch.testing.assert_close(discounted_returns(rewards, 1.0), torch.tensor([[3.0, 2.0], [2.0, 2.0], [2.0, -2.0]]))
    torch.testing.assert_close(discounted_returns(rewards, 0.0), rewards)


def test_n_step_returns_bootstrap_on_detached_values():
    rewards = torch.tensor([[1.0], [2.0], [3.0], [4.0]])
    values = torch.tensor([[10.0], [20.0], [30.0], [40.0]], requires_grad=True)
    g = 0.5
    one = discounted_returns(rewards, g, values, n_step=1)
    torch.testing.assert_close(one, torch.tensor([[1 + g * 20], [2 + g * 30], [3 + g * 40], [4.0]]))
    two = discounted_returns(rewards, g, values, n_step=2)
    expected = torch.tensor([[1 + g * 2 + g**2 * 30], [2 + g * 3 + g**2 * 40], [3 + g * 4], [4.0]])
    torch.testing.assert_close(two, expected)
    assert not two.requires_grad  # targets do not backpropagate into the value head
    # n >= T is the full-episode return
    torch.testing.assert_close(discounted_returns(rewards, g, values, n_step=4), discounted_returns(rewards, g))


def test_a2c_loss_pieces_by_hand():
    # 3 steps, 1 episode, 2 actions with equal logits: log pi = -ln 2, entropy ln 2
    logits = torch.zeros(3, 1, 2, requires_grad=True)
    actions = torch.tensor([[0], [1], [1]])
    values = torch.tensor([[0.5], [1.0], [1.0]], requires_grad=True)
    rewards = torch.tensor([[1.0], [0.0], [2.0]])
    # returns with gamma 0.5: [1.5, 1, 2] -> advantages [1, 0, 1]
    loss, parts = a2c_loss(logits, actions, values, rewards, gamma=0.5, value_coef=0.1, regulariser_coef=0.03)
    ln2 = math.log(2)
    assert parts["policy_loss"].item() == pytest.approx(2 * ln2 / 3)
    assert parts["value_loss"].item() == pytest.approx(2 / 3)
    assert parts["entropy"].item() == pytest.approx(ln2)
    assert loss.item() == pytest.approx(2 * ln2 / 3 + 0.1 * 2 / 3 - 0.03 * ln2)
    # the policy loss uses detached advantages: its gradient does not reach the values
    (grad_values,) = torch.autograd.grad(parts["policy_loss"], values, allow_unused=True)
    assert grad_values is None or torch.all(grad_values == 0)
    # the value gradient is value_coef * d/dV mean (R - V)^2 = -2 (R - V) / n * value_coef
    (grad_values,) = torch.autograd.grad(loss, values)
    torch.testing.assert_close(grad_values, -2 * torch.tensor([[1.0], [0.0], [1.0]]) / 3 * 0.1)
    # the policy gradient raises the log-probability of actions with positive advantage
    (grad_logits,) = torch.autograd.grad(parts["policy_loss"], logits)
    assert grad_logits[0, 0, 0] < 0 < grad_logits[0, 0, 1]  # step 0 took action 0 with advantage 1
    assert torch.all(grad_logits[1] == 0)  # zero advantage


def test_choose_actions_samples_the_policy():
    probs = torch.tensor([0.1, 0.2, 0.7])
    logits = probs.log().expand(20000, 3)
    actions = choose_actions(logits, torch.Generator().manual_seed(0))
    freq = torch.bincount(actions, minlength=3).float() / len(actions)
    torch.testing.assert_close(freq, probs, atol=0.015, rtol=0)
    assert torch.equal(choose_actions(logits[:5], torch.Generator(), greedy=True), torch.full((5,), 2))
    # extreme logits never give an out-of-range action
    extreme = torch.tensor([[0.0, -1e9], [-1e9, 0.0]]).repeat(500, 1)
    sampled = choose_actions(extreme, torch.Generator().manual_seed(1))
    assert torch.equal(sampled, torch.tensor([0, 1]).repeat(500))


def test_reset_seeds_depend_on_seed_iteration_and_stream():
    seeds = {reset_seed(s, i, k) for s in range(3) for i in range(50) for k in range(2)}
    assert len(seeds) == 300
    assert reset_seed(0, 7) == reset_seed(0, 7)


def test_mean_confidence_interval():
    mean, lo, hi = mean_confidence_interval(np.array([1.0, 2.0, 3.0, 4.0]))
    half = 3.182446305284263 * np.std([1, 2, 3, 4], ddof=1) / 2  # t(0.975, 3) * s / sqrt(4)
    assert (mean, lo, hi) == pytest.approx((2.5, 2.5 - half, 2.5 + half))


# -- config and bad input -----------------------------------------------------------------------------------------
def test_env_defaults_follow_the_papers():
    maze = make_config(MAZE, "retroactive", episodes=30)
    assert (maze.batch, maze.hidden, maze.gamma, maze.value_coef, maze.regulariser_coef, maze.lr, maze.clip) == (
        30, 100, 0.9, 0.1, 0.03, 1e-4, 4.0)
    cue = make_config("Plastic/CueReward-v0", "modulated", episodes=30)
    assert (cue.hidden, cue.regulariser_coef, cue.clip, cue.lr) == (200, 0.1, 2.0, 1e-4)
    assert make_config(MAZE, "rnn", episodes=30, lr=1e-3, hidden=None).lr == 1e-3
    assert set(DEFAULT_PRESETS) == {MAZE, "Plastic/CueReward-v0", BANDIT}
    assert make_config(MAZE, "rnn", episodes=61, batch=30).iterations == 3


@pytest.mark.parametrize("field,value", [
    ("episodes", 0), ("batch", -1), ("hidden", 2.5), ("gamma", 1.5), ("lr", 0.0), ("clip", -1.0),
    ("regulariser_coef", float("nan")), ("regulariser", "l2"), ("adam_eps", 0.0), ("burn_in", -1), ("n_step", -2),
    ("seed", -1), ("env_kwargs", "size=9"),
])
def test_config_rejects_bad_values(field, value):
    with pytest.raises((ValueError, TypeError), match=field):
        make_config(MAZE, "rnn", episodes=30, **{field: value})


def test_config_round_trips_and_rejects_unknown_fields():
    config = make_config(MAZE, "rnn", episodes=90, env_kwargs={"size": 9})
    assert A2CConfig.from_dict(config.to_dict()) == config
    with pytest.raises(ValueError, match="unknown fields"):
        A2CConfig.from_dict({**config.to_dict(), "learning_rate": 1.0})


def test_unknown_env_core_and_incompatible_env_are_refused(tmp_path):
    with pytest.raises(ValueError, match="unknown env id 'Plastic/Nope-v0'"):
        make_vector_env("Plastic/Nope-v0", 2)
    with pytest.raises(ValueError, match="incompatible env Pendulum-v1.*discrete"):
        make_vector_env("Pendulum-v1", 2)
    with pytest.raises(ValueError, match="bad env kwargs"):
        make_vector_env(MAZE, 2, {"colour": "red"})
    out = tmp_path / "run"
    with pytest.raises(ValueError, match="unknown core 'nope'"):
        train(make_config(MAZE, "nope", episodes=4, batch=2), out)
    with pytest.raises(ValueError, match="bad core kwargs"):
        train(make_config(MAZE, "rnn", episodes=4, batch=2, core_kwargs={"wings": 2}), out)
    assert not out.exists()  # nothing written for a run that cannot start


def test_variable_length_episodes_are_refused():
    trainer = A2CTrainer(make_config("CartPole-v1", "rnn", episodes=8, batch=8, hidden=8))
    with pytest.raises(ValueError, match="fixed-length episodes"):
        for iteration in range(20):  # some CartPole episodes end before the others
            trainer.train_iteration(iteration)


# -- one iteration ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("core", ["rnn", "lstm", "plastic", "modulated", "retroactive", "plastic_lstm"])
def test_iteration_backpropagates_through_the_episode(core):
    """Every parameter tensor gets gradient, the plastic ones included (they act only through the traces)."""
    config = make_config(MAZE, core, episodes=4, batch=4, hidden=12, env_kwargs={"size": 7, "episode_length": 12})
    trainer = A2CTrainer(config)
    before = {name: p.detach().clone() for name, p in trainer.model.named_parameters()}
    stats = trainer.train_iteration(0)
    assert stats["episode_length"] == 12
    for name, p in trainer.model.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, f"no gradient reached {name}"
        assert not torch.equal(p.detach(), before[name]), f"{name} was not updated"
    assert stats["grad_norm"] > 0 and math.isfinite(stats["loss"])


def test_evaluation_is_frozen_and_reproducible():
    config = make_config(BANDIT, "modulated", episodes=4, batch=4, hidden=8, env_kwargs={"episode_length": 10})
    trainer = A2CTrainer(config)
    weights = [p.detach().clone() for p in trainer.model.parameters()]
    first = evaluate_agent(trainer.model, BANDIT, 7, config.env_kwargs, seed=3, batch=4)
    again = evaluate_agent(trainer.model, BANDIT, 7, config.env_kwargs, seed=3, batch=4)
    assert first.shape == (7,) and np.array_equal(first, again)
    assert all(torch.equal(a, b) for a, b in zip(weights, trainer.model.parameters(), strict=True))
    assert all(p.grad is None for p in trainer.model.parameters())
    random = evaluate_random(BANDIT, 7, config.env_kwargs, seed=3, batch=4)
    assert random.shape == (7,) and np.all((random >= 0) & (random <= 10))


# -- learning -----------------------------------------------------------------------------------------------------
@pytest.mark.slow
def test_a2c_learns_the_reversal_bandit(tmp_path):
    """A small seeded run must clearly beat the random policy on held-out episodes (frozen weights)."""
    torch.set_num_threads(1)
    env_kwargs = {"p_choices": [0.1, 0.9], "episode_length": 50}
    # lr 3e-3: the rnn learns ~2.5x faster than at the default 1e-3 (which also suits the plastic cores)
    config = make_config(BANDIT, "rnn", episodes=30 * 500, hidden=32, env_kwargs=env_kwargs, seed=0, lr=3e-3)
    assert (config.regulariser_coef, config.batch) == (0.05, 30)  # the bandit defaults
    trainer = A2CTrainer(config)
    for iteration in range(config.iterations):
        trainer.train_iteration(iteration)
    learned = evaluate_agent(trainer.model, BANDIT, 300, env_kwargs, seed=1)
    random = evaluate_random(BANDIT, 300, env_kwargs, seed=1)
    # random earns 25 of 50; win-stay lose-shift about 41; a learned agent should be near the latter
    assert random.mean() == pytest.approx(25, abs=1.5)
    assert learned.mean() > random.mean() + 10, (learned.mean(), random.mean())
