"""Batched advantage actor-critic (A2C) on any recurrent or plastic core, read top to bottom (CleanRL style).

One iteration = B episodes played in lock-step on a native vector env, then one gradient step:

1. reset the B episodes (seeded from ``(seed, iteration)``) and the core's recurrent/plastic state;
2. unroll the whole episode: one core step and one env step per time step for the whole batch, actions sampled
   from the policy head with a ``torch.Generator`` (its state is checkpointed);
3. returns R_t = r_t + gamma R_{t+1} (full episode; or n-step, bootstrapped on the detached value);
4. loss = policy loss + value_coef * value loss + the policy regulariser (``- coef * entropy``, or the
   Backpropamine code's ``+ coef * sum_a p(a)^2``), averaged over time and batch, backpropagated through the whole
   episode (the plastic traces carry gradient across time steps);
5. gradient-norm clipping and one Adam step (none during the first ``burn_in`` iterations).

Besides the loss parts, each iteration logs the plastic state of the batch (plastic cores only; see
:func:`plasticity_stats`) and, every ``eval_every`` iterations, ``eval_reward``: the mean total reward of one batch
of fresh evaluation episodes played with the weights frozen (their own env, reset seeds and action generator, so
the training metrics are the same with or without it).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

import envs  # noqa: F401  (registers the Plastic/... ids)
from agents.checks import build_core, check_device
from agents.config import RESUMABLE_FIELDS, A2CConfig
from agents.provenance import record_session
from agents.run import RunDir, TorchTrainer, load_weights, train_loop
from plastic_core import ModulatedRNN, RecurrentCore, State
from plastic_core.fused import TracePool, record

MAX_EPISODE_STEPS = 100_000  # guard against an env that never ends its episodes
EVAL_STREAM = 1  # evaluation episodes are drawn apart from the training ones (stream 0 of reset_seed)


# -- environment ------------------------------------------------------------------------------------------------
def make_vector_env(env_id: str, num_envs: int, env_kwargs: dict[str, Any] | None = None) -> gym.vector.VectorEnv:
    """``gym.make_vec`` (the env's native vector class when it has one), with clear errors for bad ids/kwargs."""
    try:
        env = gym.make_vec(env_id, num_envs=num_envs, **(env_kwargs or {}))
    except gym.error.Error as error:
        plastic = sorted(k for k in gym.registry if k.startswith("Plastic/"))
        raise ValueError(f"unknown env id {env_id!r} ({error}); registered ids include {', '.join(plastic)}") from None
    except TypeError as error:
        raise ValueError(f"bad env kwargs {env_kwargs!r} for {env_id!r}: {error}") from None
    check_env(env)
    return env


def check_env(env: gym.vector.VectorEnv) -> tuple[int, int]:
    """(observation size, number of actions) of a vector env A2C can train on, or a clear ``ValueError``."""
    name = env.spec.id if env.spec is not None else type(env).__name__
    action_space, obs_space = env.single_action_space, env.single_observation_space
    if not isinstance(action_space, gym.spaces.Discrete):
        raise ValueError(
            f"incompatible env {name}: A2C here needs discrete actions (gymnasium.spaces.Discrete), "
            f"got {action_space}"
        )
    if not isinstance(obs_space, gym.spaces.Box) or len(obs_space.shape) != 1:
        raise ValueError(f"incompatible env {name}: observations must be a flat Box vector, got {obs_space}")
    return int(obs_space.shape[0]), int(action_space.n)


def reset_seed(seed: int, iteration: int, stream: int = 0) -> int:
    """The env reset seed of ``iteration``: a hash of (seed, iteration), so a resumed run replays the same episodes.

    Vector envs seed sub-env i with ``reset_seed + i``; hashing keeps those windows apart across iterations.
    ``stream`` separates evaluation episodes (1) from training ones (0).
    """
    return int(np.random.SeedSequence([seed, iteration, stream]).generate_state(1, dtype=np.uint32)[0] >> 1)


# -- the agent --------------------------------------------------------------------------------------------------
class ActorCritic(nn.Module):
    """Policy and value linear heads on top of a recurrent core: obs (B, obs) -> logits (B, A), value (B,)."""

    def __init__(self, core: RecurrentCore, n_actions: int) -> None:
        super().__init__()
        self.core = core
        self.policy = nn.Linear(core.hidden_size, n_actions)
        self.value = nn.Linear(core.hidden_size, 1)

    def initial_state(self, batch_size: int, device: torch.device | str | None = None) -> State:
        return self.core.initial_state(batch_size, device=device)

    def forward(self, obs: Tensor, state: State) -> tuple[Tensor, Tensor, State]:
        h, state = self.core(obs, state)
        return self.policy(h), self.value(h).squeeze(-1), state


def build_agent(config: A2CConfig, obs_size: int, n_actions: int) -> ActorCritic:
    """The agent of ``config`` (weights drawn from the global torch RNG: seed it first)."""
    return ActorCritic(build_core(config.core, obs_size, config.hidden, config.core_kwargs), n_actions)


@dataclass
class Rollout:
    """B episodes of T steps: hs (T, B, H) and logits (T, B, A) carry gradient; actions (T, B); rewards (T, B).

    ``totals`` (B,) float64: each episode's total reward, summed in double precision from the env's rewards.
    ``state``: the core's state after the last step (the final plastic traces), on the graph like ``hs``.
    """

    hs: Tensor
    logits: Tensor
    actions: Tensor
    rewards: Tensor
    totals: np.ndarray
    state: State | None = None


def play_episodes(
    model: ActorCritic, env: gym.vector.VectorEnv, seed: int, generator: torch.Generator, greedy: bool = False,
    pool: TracePool | None = None,
) -> Rollout:
    """Play one batch of episodes (``env.num_envs`` of them, all of the same length) from a fresh reset.

    Under ``torch.no_grad`` this is evaluation with frozen weights: the plastic state still changes. ``pool``
    reuses the plastic traces' buffers from one call to the next.
    """
    device = next(model.parameters()).device
    obs, _ = env.reset(seed=seed)
    state = model.initial_state(env.num_envs, device=device)
    x = torch.as_tensor(obs, dtype=torch.float32, device=device)
    model.core.check_input(x, state)  # once; the tape steps unchecked
    # Act, then replay: the episode is played without autograd (plastic traces updated in place), and
    # tape.replay() puts the whole episode on the graph at once (one fused node for the plastic cores).
    tape = record(model.core, state, pool=pool)
    actions, rewards = [], []
    for _ in range(MAX_EPISODE_STEPS):
        with torch.no_grad():
            logits = model.policy(tape.step(x))
        action = choose_actions(logits, generator, greedy)
        obs, reward, terminated, truncated, _ = env.step(action.numpy())
        actions.append(action)
        rewards.append(reward)
        done = np.logical_or(terminated, truncated)
        if done.any():
            if not done.all():
                raise ValueError(
                    "episodes of a batch ended at different steps; this A2C needs fixed-length episodes that all "
                    "end together (the Plastic/ meta-RL envs truncate at a fixed length)"
                )
            break
        x = torch.as_tensor(obs, dtype=torch.float32, device=device)
    else:
        raise ValueError(f"episodes did not end within {MAX_EPISODE_STEPS} steps")
    hs, state = tape.replay()  # on the graph when grad is enabled; plain tensors under no_grad (evaluation)
    rewards = np.stack(rewards).astype(np.float64)
    return Rollout(hs, model.policy(hs), torch.stack(actions).to(device),
                   torch.from_numpy(rewards.astype(np.float32)).to(device), rewards.sum(0), state)


def choose_actions(logits: Tensor, generator: torch.Generator, greedy: bool = False) -> Tensor:
    """Actions (B,) on the CPU, sampled from softmax(logits) (B, A) by inverse CDF (cheaper than multinomial)."""
    probs = torch.softmax(logits.float(), dim=-1).cpu()
    if greedy:
        return probs.argmax(-1)
    u = torch.rand(probs.shape[0], 1, generator=generator)
    return (probs.cumsum(-1) < u).sum(-1).clamp_(max=probs.shape[-1] - 1)


def plasticity_stats(core: RecurrentCore, hs: Tensor, state: State) -> dict[str, float]:
    """The plastic state of one batch of episodes (empty for cores without a Hebbian trace: rnn, lstm).

    ``hebb_abs``: mean |Hebb| over the batch's final traces (end of the episodes, all B x N x N entries);
    ``modulation_abs`` (modulated and retroactive cores): mean |M(t)| over every step and episode of the batch
    (M_j(t) per neuron for fan-out modulation), recomputed from ``hs`` (T, B, N); ``eta``: the plasticity rate
    (cores that have one); ``alpha_abs``: mean |alpha| over its entries. eta and alpha are the values the episodes
    were played with (read before the update).
    """
    stats: dict[str, float] = {}
    if "hebb" not in state:
        return stats
    with torch.no_grad():
        stats["hebb_abs"] = state["hebb"].abs().mean().item()
        if isinstance(core, ModulatedRNN):
            stats["modulation_abs"] = core.modulation(hs).abs().mean().item()
        eta = getattr(core, "eta", None)
        if isinstance(eta, Tensor):
            stats["eta"] = eta.float().mean().item()
        alpha = getattr(core, "alpha", None)
        if isinstance(alpha, Tensor):
            stats["alpha_abs"] = alpha.abs().mean().item()
    return stats


# -- the A2C loss -----------------------------------------------------------------------------------------------
def discounted_returns(rewards: Tensor, gamma: float, values: Tensor | None = None, n_step: int = 0) -> Tensor:
    """Returns (T, B) of rewards (T, B). The episode ends after step T-1 (no bootstrap there).

    ``n_step == 0``: full-episode returns R_t = sum_k gamma^k r_{t+k}.
    ``n_step == n``: R_t = sum_{k<n} gamma^k r_{t+k} + gamma^n V_{t+n} (when t+n < T), with ``values`` detached.
    """
    T = rewards.shape[0]
    # full[t] = sum_{k>=t} gamma^(k-t) r_k as one (T, T) upper-triangular matmul
    steps = torch.arange(T, device=rewards.device, dtype=rewards.dtype)
    lag = steps[None, :] - steps[:, None]
    discount = torch.where(lag >= 0, torch.as_tensor(gamma, dtype=rewards.dtype).pow(lag.clamp(min=0)), 0.0)
    full = discount @ rewards
    if n_step == 0 or n_step >= T:
        return full
    if values is None:
        raise ValueError("n-step returns need the values to bootstrap on")
    # sum_{k<n} gamma^k r_{t+k} = full[t] - gamma^n full[t+n];  then + gamma^n V_{t+n}
    tail = torch.zeros_like(full)
    tail[: T - n_step] = values.detach()[n_step:] - full[n_step:]
    return full + gamma**n_step * tail


def a2c_loss(
    logits: Tensor, actions: Tensor, values: Tensor, rewards: Tensor, gamma: float, value_coef: float,
    regulariser_coef: float, n_step: int = 0, regulariser: str = "entropy",
) -> tuple[Tensor, dict[str, Tensor]]:
    """A2C loss of one batch of episodes: logits (T, B, A), actions (T, B), values (T, B), rewards (T, B).

    ``regulariser="entropy"`` subtracts ``regulariser_coef * entropy``; ``"concentration"`` adds
    ``regulariser_coef * sum_a p(a)^2`` (the Backpropamine code's penalty: it too pushes towards a uniform policy,
    with about half the entropy bonus's gradient near a uniform policy over 4 actions). Returns the scalar loss and
    its parts (policy, value, entropy, concentration: all means over time and batch).
    """
    returns = discounted_returns(rewards, gamma, values, n_step)
    advantages = returns - values
    log_probs = F.log_softmax(logits, dim=-1)
    taken = log_probs.gather(-1, actions.unsqueeze(-1)).squeeze(-1)
    policy_loss = -(taken * advantages.detach()).mean()
    value_loss = advantages.pow(2).mean()
    probs = log_probs.exp()
    entropy = -(probs * log_probs).sum(-1).mean()
    concentration = probs.pow(2).sum(-1).mean()
    if regulariser == "entropy":
        penalty = -regulariser_coef * entropy
    elif regulariser == "concentration":
        penalty = regulariser_coef * concentration
    else:
        raise ValueError(f"regulariser must be 'entropy' or 'concentration', got {regulariser!r}")
    loss = policy_loss + value_coef * value_loss + penalty
    return loss, {"policy_loss": policy_loss, "value_loss": value_loss, "entropy": entropy,
                  "concentration": concentration}


# -- the trainer ------------------------------------------------------------------------------------------------
class A2CTrainer(TorchTrainer):
    """Owns the env, agent, optimizer and sampling generator of one A2C run (see :mod:`agents.run`)."""

    def __init__(self, config: A2CConfig) -> None:
        self.config = config
        self.device = torch.device(config.device)
        self.env = make_vector_env(config.env_id, config.batch, config.env_kwargs)
        obs_size, n_actions = check_env(self.env)
        torch.manual_seed(config.seed)
        self.model = build_agent(config, obs_size, n_actions).to(self.device)
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=config.lr, eps=config.adam_eps)
        self.generator = torch.Generator().manual_seed(config.seed)
        self.episodes_per_iteration = config.batch
        self.trace_pool = TracePool()
        self.eval_env: gym.vector.VectorEnv | None = None  # made at the first evaluation

    def train_iteration(self, iteration: int) -> dict[str, float]:
        cfg = self.config
        rollout = play_episodes(self.model, self.env, reset_seed(cfg.seed, iteration), self.generator,
                                 pool=self.trace_pool)
        plastic = plasticity_stats(self.model.core, rollout.hs, rollout.state or {})
        values = self.model.value(rollout.hs).squeeze(-1)
        loss, parts = a2c_loss(rollout.logits, rollout.actions, values, rollout.rewards, cfg.gamma,
                               cfg.value_coef, cfg.regulariser_coef, cfg.n_step, cfg.regulariser)
        grad_norm = self.update(loss, cfg.clip, step=iteration >= cfg.burn_in)
        stats = {
            "reward_mean": float(rollout.totals.mean()),
            "reward_std": float(rollout.totals.std(ddof=1)) if rollout.totals.size > 1 else 0.0,
            "episode_length": rollout.rewards.shape[0],
            "loss": loss.item(),
            **{name: value.item() for name, value in parts.items()},
            "grad_norm": grad_norm.item(),
            **plastic,
        }
        if cfg.eval_every:  # NaN (a blank cell in metrics.csv) on the iterations without an evaluation
            due = (iteration + 1) % cfg.eval_every == 0
            stats["eval_reward"] = self.evaluate(iteration + 1) if due else math.nan
        return stats

    def evaluate(self, iteration: int) -> float:
        """Mean total reward of one batch of ``batch`` fresh episodes played with frozen weights after
        ``iteration`` updates (the plastic state still changes). They have their own vector env, reset seeds
        (stream ``EVAL_STREAM`` of ``(seed, iteration)``) and action generator, so that training draws exactly what
        it draws without evaluations."""
        cfg = self.config
        if self.eval_env is None:
            self.eval_env = make_vector_env(cfg.env_id, cfg.batch, cfg.env_kwargs)
        seed = reset_seed(cfg.seed, iteration, EVAL_STREAM)
        generator = torch.Generator().manual_seed(seed)
        was_training = self.model.training
        self.model.eval()
        try:
            with torch.no_grad():
                rollout = play_episodes(self.model, self.eval_env, seed, generator)
        finally:
            self.model.train(was_training)
        return float(rollout.totals.mean())

    def close(self) -> None:
        super().close()
        if self.eval_env is not None:
            self.eval_env.close()



def train(
    config: A2CConfig, out: str | Path, resume: bool = False, progress: bool | None = None, tensorboard: bool = True,
    on_row: Callable[[dict[str, float]], None] | None = None,
) -> list[dict[str, float]]:
    """Train ``config`` in run directory ``out`` (new, or continued with ``resume``); returns the logged rows.
    ``on_row`` is called with each metrics row as it is logged (plastic sweep --search reports them to Ray Tune)."""
    trainer = A2CTrainer(config)  # bad env/core errors before anything is written
    try:
        run = RunDir.open(out, config.to_dict(), RESUMABLE_FIELDS, resume)
        record_session(run.path, trainer.model, config.device, resume, run.resumed_from)  # run.json; never raises
        return train_loop(run, trainer, config.iterations, config.checkpoint_every, resume=resume,
                          progress=progress, tensorboard=tensorboard, on_row=on_row)
    finally:
        trainer.close()


def load_agent(run_dir: str | Path, device: str | torch.device = "cpu") -> tuple[ActorCritic, A2CConfig]:
    """The trained agent of a run directory (weights of its last checkpoint) and the run's config."""
    check_device(str(device))
    run_config = RunDir.read_config(run_dir)
    if run_config.get("algo", "a2c") != "a2c":
        raise ValueError(f"{run_dir} holds a {run_config['algo']!r} run, not an A2C run of this project")
    config = A2CConfig.from_dict(run_config)
    payload = RunDir(run_dir, config.to_dict(), RESUMABLE_FIELDS).load_checkpoint(map_location=device)
    if payload is None:
        raise ValueError(f"{run_dir} has no checkpoint yet; train it first (or wait for its first checkpoint)")
    env = make_vector_env(config.env_id, 1, config.env_kwargs)
    obs_size, n_actions = check_env(env)
    env.close()
    model = build_agent(config, obs_size, n_actions).to(device)
    load_weights(model, payload, Path(run_dir))
    return model, config
