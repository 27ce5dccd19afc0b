"""Binary pattern memorisation (Miconi et al. 2018): store 5 patterns of 1000 bits, recall one from half of it.

Each episode draws ``n_patterns`` balanced +-1 patterns (exactly ``pattern_size // 2`` bits at -1). The set is
shown ``n_repeats`` times, each time in a new random order: each pattern for ``show_steps`` steps followed by
``blank_steps`` all-zero steps. Then one of the patterns (random) is shown for ``probe_steps`` steps with a random
``degrade_fraction`` of its bits set to 0. Target: the full probe pattern. Loss: squared error summed over bits
on the last ``loss_steps`` steps (the paper: the last step only). Defaults: 2 x 5 x (6 + 4) + 6 = 106 steps.
Output: ``pattern_size`` values. The paper's network multiplies its inputs by 20; ``input_scale`` does it here
if wanted (default 1).
"""

from __future__ import annotations

import numpy as np

from envs.checks import check_float, check_int
from envs.supervised.base import Episode, SupervisedEnv, SupervisedTask, SupervisedVectorEnv


def write_presentations(inputs: np.ndarray, shown: np.ndarray, show_steps: int, period: int) -> None:
    """Write the study phase into ``inputs`` (T, D): ``shown[k]`` (K, D) for ``show_steps`` steps every
    ``period`` steps from step 0, the rest of each period left as it is (blank)."""
    rows = (np.arange(len(shown))[:, None] * period + np.arange(show_steps)).reshape(-1)
    inputs[rows] = np.repeat(shown, show_steps, axis=0)


class PatternMemoryTask(SupervisedTask):
    def __init__(
        self, n_patterns: int = 5, pattern_size: int = 1000, n_repeats: int = 2, show_steps: int = 6,
        blank_steps: int = 4, probe_steps: int = 6, degrade_fraction: float = 0.5, loss_steps: int = 1,
        input_scale: float = 1.0,
    ) -> None:
        self.n_patterns = check_int("n_patterns", n_patterns)
        self.pattern_size = check_int("pattern_size", pattern_size, minimum=2)
        self.n_repeats = check_int("n_repeats", n_repeats)
        self.show_steps = check_int("show_steps", show_steps)
        self.blank_steps = check_int("blank_steps", blank_steps, minimum=0)
        self.probe_steps = check_int("probe_steps", probe_steps)
        self.loss_steps = check_int("loss_steps", loss_steps)
        if self.loss_steps > self.probe_steps:
            raise ValueError(f"loss_steps={loss_steps} must be <= probe_steps={probe_steps}")
        self.degrade_fraction = check_float("degrade_fraction", degrade_fraction, 0.0, 1.0)
        self.input_scale = check_float("input_scale", input_scale, low=np.finfo(np.float32).tiny)
        self.period = self.show_steps + self.blank_steps
        self.n_degraded = int(self.degrade_fraction * self.pattern_size)
        episode_length = self.n_repeats * self.n_patterns * self.period + self.probe_steps
        super().__init__(
            episode_length=episode_length, obs_dim=self.pattern_size, output_dim=self.pattern_size,
            loss="squared_error", obs_low=-self.input_scale, obs_high=self.input_scale,
        )

    def fill(self, rng: np.random.Generator, episode: Episode) -> None:
        P, N, R = self.n_patterns, self.pattern_size, self.n_repeats
        balanced = np.where(np.arange(N) < N // 2, -1.0, 1.0)
        patterns = rng.permuted(np.broadcast_to(balanced, (P, N)), axis=1)  # (P, N), each row shuffled
        order = rng.permuted(np.broadcast_to(np.arange(P), (R, P)), axis=1).reshape(-1)  # (R * P,)
        probe = int(rng.integers(P))
        degraded = rng.permutation(N)[: self.n_degraded]

        write_presentations(episode.inputs, patterns[order] * self.input_scale, self.show_steps, self.period)
        test_input = patterns[probe] * self.input_scale
        test_input[degraded] = 0.0
        episode.inputs[-self.probe_steps:] = test_input
        episode.targets[-self.probe_steps:] = patterns[probe]
        episode.mask[-self.loss_steps:] = 1.0


class PatternMemoryEnv(SupervisedEnv):
    """``Plastic/PatternMemory-v0``; kwargs as :class:`PatternMemoryTask`. Squared error, output pattern_size."""

    task_class = PatternMemoryTask


class PatternMemoryVectorEnv(SupervisedVectorEnv):
    task_class = PatternMemoryTask
