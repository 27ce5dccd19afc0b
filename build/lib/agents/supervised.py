"""Supervised meta-training of plastic networks on the supervised tasks (TASKS.md section 3), read top to bottom.

One iteration = one gradient step on B whole episodes:

1. draw B episodes with the native vector env's ``sample_episodes`` (seeded from ``(seed, iteration)``, so a
   resumed run sees the same data): inputs (T, B, obs), targets (T, B, out), loss mask (T, B);
2. unroll the model over the whole episode, ``outputs = model(inputs)`` (T, B, out); the plastic state starts
   from zero and changes at every step;
3. loss = mean over the scored steps of the env's per-step loss (``torch_step_loss``, the env's reward is minus
   it), backpropagated through the whole episode into the weights, plasticity coefficients and rates;
4. gradient-norm clipping, one Adam step, then ``model.after_update()`` (e.g. the alpha >= 0 projection).

Runs use the run directories of :mod:`agents.run` (config.json, metrics.csv, TensorBoard, atomic checkpoints,
resume), exactly as the A2C trainer. :func:`evaluate` scores a model on fresh episodes with frozen weights (the
plastic state still changes within each episode).
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import gymnasium as gym
import numpy as np
import torch
from torch import Tensor, nn

import envs  # noqa: F401  (registers the Plastic/... ids)
from agents.a2c import reset_seed
from agents.checks import check_device
from agents.evaluation import mean_confidence_interval
from agents.provenance import record_session
from agents.run import RunDir, TorchTrainer, load_weights, train_loop
from agents.run_config import RunConfig
from agents.supervised_models import SupervisedModel, build_model, default_model
from envs.supervised.base import SupervisedVectorEnv
from envs.supervised.losses import torch_step_loss
from envs.supervised.pattern_completion import PatternCompletionTask
from envs.supervised.pattern_memory import PatternMemoryTask

# Per-env training defaults. The 2016 ones are calibrated to learn within a minute on one CPU core; the others are
# small-scale starting points (the papers trained for days), see scripts/reproduce_supervised.py.
SUPERVISED_DEFAULTS: dict[str, dict[str, Any]] = {
    "Plastic/PatternCompletion-v0": dict(batch=32, lr=0.03, clip=10.0),
    "Plastic/OneShotAssociation-v0": dict(batch=32, lr=0.1, clip=10.0),
    "Plastic/ReversalAssociation-v0": dict(batch=32, lr=0.1, clip=10.0),
    "Plastic/PatternMemory-v0": dict(batch=8, lr=1e-3, clip=10.0),  # 3e-3: 1000-bit error stalls near 2%
    "Plastic/ImageReconstruction-v0": dict(batch=4, lr=1e-4, clip=10.0),
    "Plastic/OmniglotOneShot-v0": dict(batch=16, lr=1e-3, clip=10.0),
    "Plastic/ContinualSine-v0": dict(batch=16, lr=3e-3, clip=10.0),  # 1e-3: every learner ~2x slower
    "Plastic/ContinualOmniglot-v0": dict(batch=8, lr=1e-3, clip=10.0),
}
FALLBACK_DEFAULTS: dict[str, Any] = dict(batch=16, lr=1e-3, clip=10.0)

# Fields that may differ between a checkpoint and the settings of ``--resume`` (they do not change the metrics).
RESUMABLE_FIELDS = ("episodes", "device", "checkpoint_every")

# Which env keyword argument ``SupervisedConfig.data`` (the --data option) sets.
DATA_KWARG = {
    "Plastic/OmniglotOneShot-v0": "data_dir",
    "Plastic/ContinualOmniglot-v0": "data_dir",
    "Plastic/ImageReconstruction-v0": "images",
}


@dataclass
class SupervisedConfig(RunConfig):
    """Everything that defines a supervised run (written to config.json and checked on resume)."""

    ALGO: ClassVar[str] = "supervised"

    env_id: str
    model: str
    episodes: int
    seed: int = 0
    batch: int = 32
    lr: float = 1e-3
    clip: float = 10.0
    env_kwargs: dict[str, Any] = field(default_factory=dict)
    model_kwargs: dict[str, Any] = field(default_factory=dict)
    data: str | None = None  # Omniglot folder/zip, or natural images / CIFAR-10 copy (see DATA_KWARG)
    checkpoint_every: int = 50  # iterations (one iteration = one batch of ``batch`` episodes)
    device: str = "cpu"

    def __post_init__(self) -> None:
        self.check_common(dict_fields=("env_kwargs", "model_kwargs"))
        if self.data is not None:
            if not isinstance(self.data, str):
                raise TypeError(f"data must be a path string or None, got {type(self.data).__name__}")
            if self.env_id not in DATA_KWARG:
                raise ValueError(
                    f"--data is used only by {', '.join(DATA_KWARG)}; {self.env_id} draws its own data"
                )

    def resolved_env_kwargs(self) -> dict[str, Any]:
        """``env_kwargs`` with ``data`` filled in as the env's data argument."""
        kwargs = dict(self.env_kwargs)
        if self.data is not None:
            kwargs[DATA_KWARG[self.env_id]] = self.data
        return kwargs


def make_supervised_config(env_id: str, model: str | None, episodes: int, **overrides: Any) -> SupervisedConfig:
    """A :class:`SupervisedConfig` with the env's defaults, overridden by every keyword that is not ``None``.

    ``model=None`` takes the task's default model (the plastic network of the paper).
    """
    settings = dict(SUPERVISED_DEFAULTS.get(env_id, FALLBACK_DEFAULTS))
    settings.update({k: v for k, v in overrides.items() if v is not None})
    if model is None:
        env = make_supervised_env(env_id, 1, settings.get("env_kwargs"), settings.get("data"))
        model = default_model(env.task)
        env.close()
    return SupervisedConfig(env_id=env_id, model=model, episodes=episodes, **settings)


# -- environment ------------------------------------------------------------------------------------------------
def make_supervised_env(env_id: str, num_envs: int, env_kwargs: dict[str, Any] | None = None,
                        data: str | None = None) -> SupervisedVectorEnv:
    """The native vector env of a supervised ``env_id`` (with ``data`` as its data path), or a clear error."""
    kwargs = dict(env_kwargs or {})
    if data is not None:
        if env_id not in DATA_KWARG:
            raise ValueError(f"--data is used only by {', '.join(DATA_KWARG)}; {env_id} draws its own data")
        kwargs[DATA_KWARG[env_id]] = data
    try:
        env = gym.make_vec(env_id, num_envs=num_envs, vectorization_mode="vector_entry_point", **kwargs)
    except gym.error.Error as error:
        supervised = ", ".join(envs.SUPERVISED_ENV_IDS)
        raise ValueError(f"unknown or unsupported env id {env_id!r} ({error}); supervised ids: {supervised}") from None
    except TypeError as error:
        raise ValueError(f"bad env kwargs {kwargs!r} for {env_id!r}: {error}") from None
    if not isinstance(env, SupervisedVectorEnv):
        env.close()
        raise ValueError(
            f"{env_id} is not a supervised env (no sample_episodes); train it with scripts/train.py (A2C). "
            f"Supervised ids: {', '.join(envs.SUPERVISED_ENV_IDS)}"
        )
    return env


def episode_tensors(batch: dict[str, np.ndarray], device: torch.device) -> tuple[Tensor, Tensor, Tensor]:
    return tuple(torch.from_numpy(batch[k]).to(device) for k in ("inputs", "targets", "mask"))  # type: ignore


# -- loss and scores ----------------------------------------------------------------------------------------------
def score_name(env: SupervisedVectorEnv) -> str | None:
    """The task score besides the loss: ``accuracy`` (classification), ``bit_error`` (+-1 patterns) or None."""
    if env.loss == "cross_entropy":
        return "accuracy"
    if isinstance(env.task, (PatternCompletionTask, PatternMemoryTask)):
        return "bit_error"
    return None


def episode_scores(outputs: Tensor, targets: Tensor, mask: Tensor, loss_kind: str, score: str | None
                   ) -> dict[str, Tensor]:
    """Per-episode loss (B,) = mean over scored steps of the step loss, and the task score (B,) if any.

    ``accuracy``: fraction of scored steps whose largest logit is the target class. ``bit_error``: fraction of
    the output bits of scored steps whose sign differs from the target's.
    """
    steps = mask.sum(0).clamp(min=1.0)
    result = {"loss": (torch_step_loss(outputs, targets, loss_kind) * mask).sum(0) / steps}
    if score == "accuracy":
        correct = (outputs.argmax(-1) == targets.argmax(-1)).to(outputs.dtype)
        result["accuracy"] = (correct * mask).sum(0) / steps
    elif score == "bit_error":
        wrong = (torch.sign(outputs) != torch.sign(targets)).to(outputs.dtype).mean(-1)
        result["bit_error"] = (wrong * mask).sum(0) / steps
    return result


# -- the trainer ------------------------------------------------------------------------------------------------
class SupervisedTrainer(TorchTrainer):
    """Owns the env, model and optimizer of one supervised run (see :mod:`agents.run` for the protocol)."""

    def __init__(self, config: SupervisedConfig) -> None:
        self.config = config
        self.device = torch.device(config.device)
        self.env = make_supervised_env(config.env_id, config.batch, config.env_kwargs, config.data)
        self.score = score_name(self.env)
        torch.manual_seed(config.seed)
        self.model: SupervisedModel = build_model(config.model, self.env.task, **config.model_kwargs).to(self.device)
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=config.lr)
        self.episodes_per_iteration = config.batch

    def train_iteration(self, iteration: int) -> dict[str, float]:
        cfg = self.config
        batch = self.env.sample_episodes(seed=reset_seed(cfg.seed, iteration))
        inputs, targets, mask = episode_tensors(batch, self.device)
        outputs = self.model(inputs)
        step_losses = torch_step_loss(outputs, targets, self.env.loss)  # (T, B)
        loss = (step_losses * mask).sum() / mask.sum()
        grad_norm = self.update(loss, cfg.clip)
        self.model.after_update()
        with torch.no_grad():
            scores = episode_scores(outputs.detach(), targets, mask, self.env.loss, self.score)
            rewards = -(step_losses.detach() * mask).sum(0)  # what the env's rewards add up to per episode
        stats = {"loss": loss.item(), "reward_mean": rewards.mean().item()}
        if self.score is not None:
            stats[self.score] = scores[self.score].mean().item()
        stats["grad_norm"] = grad_norm.item()
        return stats



def train_supervised(
    config: SupervisedConfig, out: str | Path, resume: bool = False, progress: bool | None = None,
    tensorboard: bool = True, trainer: SupervisedTrainer | None = None,
) -> list[dict[str, float]]:
    """Train ``config`` in run directory ``out`` (new, or continued with ``resume``); returns the logged rows.

    Pass ``trainer`` to keep the trained model afterwards (it must have been built from ``config``).
    """
    owned = trainer is None
    trainer = SupervisedTrainer(config) if trainer is None else trainer  # bad env/model errors before any write
    try:
        run = RunDir.open(out, config.to_dict(), RESUMABLE_FIELDS, resume)
        record_session(run.path, trainer.model, config.device, resume, run.resumed_from)  # run.json; never raises
        return train_loop(run, trainer, config.iterations, config.checkpoint_every, resume=resume,
                          progress=progress, reward_key="loss", tensorboard=tensorboard)
    finally:
        if owned:
            trainer.close()


def load_supervised_model(run_dir: str | Path, device: str | torch.device = "cpu"
                          ) -> tuple[SupervisedModel, SupervisedConfig]:
    """The trained model of a supervised run directory (weights of its last checkpoint) and its config."""
    check_device(str(device))
    run_config = RunDir.read_config(run_dir)
    if run_config.get("algo") != "supervised":
        raise ValueError(f"{run_dir} holds a {run_config.get('algo', 'a2c')!r} run, not a supervised run")
    config = SupervisedConfig.from_dict(run_config)
    payload = RunDir(run_dir, config.to_dict(), RESUMABLE_FIELDS).load_checkpoint(map_location=device)
    if payload is None:
        raise ValueError(f"{run_dir} has no checkpoint yet; train it first (or wait for its first checkpoint)")
    env = make_supervised_env(config.env_id, 1, config.env_kwargs, config.data)
    model = build_model(config.model, env.task, **config.model_kwargs).to(device)
    env.close()
    load_weights(model, payload, Path(run_dir))
    return model, config


# -- evaluation ---------------------------------------------------------------------------------------------------
EVAL_STREAM = 1  # evaluation episodes are drawn apart from the training ones (stream 0), as in agents.evaluation


def evaluate(
    trainer_or_model: SupervisedTrainer | SupervisedModel, n_episodes: int = 500, split: str = "test", *,
    config: SupervisedConfig | None = None, seed: int = 0, batch: int | None = None,
) -> dict[str, float]:
    """Mean per-episode loss (and accuracy or bit error) over ``n_episodes`` fresh episodes, frozen weights.

    The model runs under ``torch.no_grad`` (its plastic state still changes within each episode). ``split``
    ("train" or "test") picks the classes / images of the envs that have a held-out split (Omniglot, natural
    images); the synthetic tasks draw new random episodes either way. A bare model needs the run's ``config``.
    Returns ``{"episodes", "loss", "loss_lo", "loss_hi"}`` plus the same for the score (95% t-intervals over
    episodes).
    """
    if isinstance(trainer_or_model, SupervisedTrainer):
        model, config = trainer_or_model.model, trainer_or_model.config
    elif isinstance(trainer_or_model, nn.Module):
        if config is None:
            raise ValueError("evaluate(model, ...) needs the run's config= (env id and kwargs)")
        model = trainer_or_model
    else:
        raise TypeError(f"expected a SupervisedTrainer or a model, got {type(trainer_or_model).__name__}")
    if isinstance(n_episodes, bool) or not isinstance(n_episodes, int) or n_episodes <= 0:
        raise ValueError(f"n_episodes must be a positive integer, got {n_episodes!r}")
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    env_kwargs = dict(config.env_kwargs)
    registered = gym.spec(config.env_id)
    config_class = gym.envs.registration.load_env_creator(registered.vector_entry_point).config_class
    if "split" in inspect.signature(config_class.__init__).parameters:
        env_kwargs["split"] = split
    batch = batch or config.batch
    device = next(model.parameters()).device
    per_episode: dict[str, list[np.ndarray]] = {}
    env = make_supervised_env(config.env_id, batch, env_kwargs, config.data)
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            for index, start in enumerate(range(0, n_episodes, batch)):
                size = min(batch, n_episodes - start)  # a last partial batch keeps the first `size` episodes
                episodes = env.sample_episodes(seed=reset_seed(seed, index, EVAL_STREAM))
                inputs, targets, mask = (t[:, :size] for t in episode_tensors(episodes, device))
                scores = episode_scores(model(inputs), targets, mask, env.loss, score_name(env))
                for key, value in scores.items():
                    per_episode.setdefault(key, []).append(value.double().cpu().numpy())
    finally:
        model.train(was_training)
        env.close()
    result: dict[str, float] = {"episodes": n_episodes}
    for key, chunks in per_episode.items():
        result[key], result[f"{key}_lo"], result[f"{key}_hi"] = mean_confidence_interval(np.concatenate(chunks))
    return result
