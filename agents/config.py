"""The settings of an A2C run, with the per-env defaults of the papers (TASKS.md section 2).

A run is fully described by an :class:`A2CConfig`; it is written to ``config.json`` in the run directory and
checked again on ``--resume``, so that a checkpoint is never continued under other settings.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

from agents.run import RunConfig, check_integer, check_number

# Backpropamine (2019) settings; the bandit ones are ours (a small, fast problem: see ENV_DEFAULTS notes).
ENV_DEFAULTS: dict[str, dict[str, Any]] = {
    "Plastic/Maze-v0": dict(
        hidden=100, batch=30, gamma=0.9, value_coef=0.1, entropy_coef=0.03, lr=1e-4, clip=4.0,
    ),
    "Plastic/CueReward-v0": dict(
        hidden=200, batch=30, gamma=0.9, value_coef=0.1, entropy_coef=0.1, lr=1e-4, clip=2.0,
    ),
    # Not in the papers (ours): a small network (Wang et al. 2016 used 48 LSTM units). lr 1e-3 trains every core
    # (hidden 32, 90k episodes: all four reach 65-70 of ~75 reachable, results/bandit_lr1e-3.md); at 3e-3 the rnn
    # learns ~2.5x faster, but the plastic cores' gradients spike and their policies collapse onto one arm.
    "Plastic/ReversalBandit-v0": dict(
        hidden=48, batch=30, gamma=0.9, value_coef=0.1, entropy_coef=0.05, lr=1e-3, clip=4.0,
    ),
}
# Any other discrete-action env gets the maze settings.
FALLBACK_DEFAULTS: dict[str, Any] = ENV_DEFAULTS["Plastic/Maze-v0"]

# Fields that may differ between a checkpoint and the settings of ``--resume`` (they do not change the training
# metrics; ``eval_every`` only adds the ``eval_reward`` column, and config.json files older than it resume as 0).
RESUMABLE_FIELDS = ("episodes", "device", "checkpoint_every", "eval_every")


@dataclass
class A2CConfig(RunConfig):
    """Everything that defines an A2C run. ``None`` fields take the env's default in :func:`make_config`."""

    ALGO: ClassVar[str] = "a2c"

    env_id: str
    core: str
    episodes: int
    seed: int = 0
    hidden: int = 100
    batch: int = 30
    lr: float = 1e-4
    gamma: float = 0.9
    value_coef: float = 0.1
    entropy_coef: float = 0.03
    clip: float = 4.0
    n_step: int = 0  # 0: full-episode returns; n > 0: n-step returns bootstrapped on the value
    env_kwargs: dict[str, Any] = field(default_factory=dict)
    core_kwargs: dict[str, Any] = field(default_factory=dict)
    checkpoint_every: int = 50  # iterations (one iteration = one batch of ``batch`` episodes)
    device: str = "cpu"
    # every N iterations, the mean reward of one batch of fresh evaluation episodes with frozen weights
    # (``eval_reward`` in metrics.csv; its own episodes and generator, so training is unchanged); 0: never
    eval_every: int = 0

    def __post_init__(self) -> None:
        self.check_common(dict_fields=("env_kwargs", "core_kwargs"))
        check_integer("hidden", self.hidden, minimum=1)
        check_integer("eval_every", self.eval_every, minimum=0)
        if isinstance(self.n_step, bool) or not isinstance(self.n_step, int) or self.n_step < 0:
            raise ValueError(f"n_step must be 0 (full-episode returns) or a positive integer, got {self.n_step!r}")
        for name in ("value_coef", "entropy_coef"):
            check_number(name, getattr(self, name))
        if not 0.0 <= self.gamma <= 1.0:
            raise ValueError(f"gamma must be in [0, 1], got {self.gamma!r}")


def env_defaults(env_id: str) -> dict[str, Any]:
    """The training defaults for ``env_id`` (the maze's for envs the papers did not train on)."""
    return dict(ENV_DEFAULTS.get(env_id, FALLBACK_DEFAULTS))


def make_config(env_id: str, core: str, episodes: int, **overrides: Any) -> A2CConfig:
    """An :class:`A2CConfig` with the env's defaults, overridden by every keyword that is not ``None``."""
    settings = env_defaults(env_id)
    settings.update({k: v for k, v in overrides.items() if v is not None})
    return A2CConfig(env_id=env_id, core=core, episodes=episodes, **settings)
