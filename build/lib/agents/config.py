"""The settings of an A2C run. Defaults and paper settings come from the presets (agents/presets.py).

A run is fully described by an :class:`A2CConfig`; it is written to ``config.json`` in the run directory and
checked again on ``--resume``, so that a checkpoint is never continued under other settings.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

from agents.checks import check_choice, check_integer, check_number
from agents.presets import Preset, default_preset, get_preset
from agents.run_config import RunConfig

REGULARISERS = ("entropy", "concentration")

# Fields that may differ between a checkpoint and the settings of ``--resume`` (they do not change the training
# metrics; ``eval_every`` only adds the ``eval_reward`` column, and config.json files older than it resume as 0).
RESUMABLE_FIELDS = ("episodes", "device", "checkpoint_every", "eval_every")

MAX_HIDDEN = 10_000  # hidden units; the papers used 100-200
MAX_TRACE_BYTES = 16 * 2**30  # memory of one (batch, hidden, hidden) float32 plastic trace: checked before building


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
    # the policy regulariser: "entropy" subtracts coef * entropy (a bonus), "concentration" adds
    # coef * sum_a p(a)^2 (the Backpropamine code's penalty); both are means over steps and episodes
    regulariser: str = "entropy"
    regulariser_coef: float = 0.03
    clip: float = 4.0
    adam_eps: float = 1e-8  # torch's default; the Backpropamine code used 1e-4 (maze) and 1e-6 (cue-reward)
    burn_in: int = 0  # the first burn_in iterations compute the loss and gradient but take no optimizer step
    n_step: int = 0  # 0: full-episode returns; n > 0: n-step returns bootstrapped on the value
    env_kwargs: dict[str, Any] = field(default_factory=dict)
    core_kwargs: dict[str, Any] = field(default_factory=dict)
    checkpoint_every: int = 50  # iterations (one iteration = one batch of ``batch`` episodes)
    device: str = "cpu"
    # every N iterations, the mean reward of one batch of fresh evaluation episodes with frozen weights
    # (``eval_reward`` in metrics.csv; its own episodes and generator, so training is unchanged); 0: never
    eval_every: int = 0
    preset: str | None = None  # the preset the settings were resolved from (a record; they are all above)

    def __post_init__(self) -> None:
        self.check_common(dict_fields=("env_kwargs", "core_kwargs"))
        check_integer("hidden", self.hidden, minimum=1, maximum=MAX_HIDDEN)
        trace = 4 * self.batch * self.hidden**2
        if trace > MAX_TRACE_BYTES:
            raise ValueError(
                f"hidden {self.hidden} with batch {self.batch} needs about {trace / 2**30:.1f} GiB for the plastic "
                f"traces alone (batch x hidden^2 x 4 bytes), more than the {MAX_TRACE_BYTES / 2**30:.0f} GiB this "
                "package allows; lower --hidden or --batch"
            )
        check_integer("eval_every", self.eval_every, minimum=0)
        check_integer("burn_in", self.burn_in, minimum=0)
        check_choice("regulariser", self.regulariser, REGULARISERS)
        check_number("adam_eps", self.adam_eps, positive=True)
        if isinstance(self.n_step, bool) or not isinstance(self.n_step, int) or self.n_step < 0:
            raise ValueError(f"n_step must be 0 (full-episode returns) or a positive integer, got {self.n_step!r}")
        for name in ("value_coef", "regulariser_coef"):
            check_number(name, getattr(self, name))
        if not 0.0 <= self.gamma <= 1.0:
            raise ValueError(f"gamma must be in [0, 1], got {self.gamma!r}")

    @classmethod
    def upgrade(cls, data: dict[str, Any]) -> dict[str, Any]:
        """Older config.json files named the regulariser's coefficient ``entropy_coef`` (always an entropy bonus)."""
        data = dict(data)
        if "entropy_coef" in data:
            data.setdefault("regulariser", "entropy")
            data.setdefault("regulariser_coef", data.pop("entropy_coef"))
        return super().upgrade(data)


def env_defaults(env_id: str) -> dict[str, Any]:
    """The training defaults for ``env_id``: its default preset's settings (the maze's for other envs)."""
    preset = default_preset(env_id)
    return {k: v for k, v in preset.resolve(next(iter(preset.cores), "rnn")).items() if k != "env_id"}


def make_config(env_id: str | None, core: str, episodes: int | None = None, preset: str | Preset | None = None,
                iterations: int | None = None, **overrides: Any) -> A2CConfig:
    """An :class:`A2CConfig`: ``preset`` (a name, a :class:`Preset`, or None for the env's default preset)
    resolved for ``core``, then every keyword that is not ``None``. The budget is ``episodes`` or ``iterations``
    (of ``batch`` episodes each); ``env_id`` may be None with a preset, and must match it otherwise."""
    chosen = default_preset(env_id) if preset is None else get_preset(preset) if isinstance(preset, str) else preset
    if env_id is not None and env_id != chosen.env_id and preset is not None:
        raise ValueError(f"preset {chosen.name!r} is for {chosen.env_id}, not {env_id}")
    settings = chosen.resolve(core) if preset is not None else {**env_defaults(env_id), "env_id": env_id}
    for key in ("env_kwargs", "core_kwargs"):  # kwargs given are laid over the preset's, key by key
        if isinstance(overrides.get(key), dict):
            settings[key] = {**settings.get(key, {}), **overrides.pop(key)}
    settings.update({k: v for k, v in overrides.items() if v is not None})
    if (episodes is None) == (iterations is None):
        raise ValueError("give the budget as episodes or as iterations (of batch episodes each), not both")
    if iterations is not None:
        check_integer("iterations", iterations, minimum=1)
        episodes = iterations * settings.get("batch", A2CConfig.batch)
    name = chosen.name if preset is not None else None
    return A2CConfig(core=core, episodes=episodes, preset=name, **settings)
