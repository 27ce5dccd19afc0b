"""Binary pattern memorisation (Miconi et al. 2018): store 5 patterns of 1000 bits, recall one from half of it.

## Description
Each episode draws ``n_patterns`` balanced +-1 patterns (exactly ``pattern_size // 2`` bits at -1). The set is
shown ``n_repeats`` times, each time in a new random order: each pattern for ``show_steps`` steps followed by
``blank_steps`` all-zero steps. Then one of the patterns (random) is shown for ``probe_steps`` steps with a random
``degrade_fraction`` of its bits (``int(degrade_fraction * pattern_size)`` of them) set to 0. Target: the full
probe pattern (+-1, whatever ``input_scale``). Loss: squared error summed over bits on the last ``loss_steps``
steps (the paper: the last step only). Defaults: 2 x 5 x (6 + 4) + 6 = 106 steps. The paper's network multiplies
its inputs by 20; ``input_scale`` does it here if wanted (default 1).

## Observation
``Box(1000,)`` float32 at the defaults (``pattern_size`` inputs, bounds [-s, s], s = ``input_scale``):

| index | input | range |
|---|---|---|
| 0 .. pattern_size-1 (0-999) | pattern shown x s (0 on blanks); probe: the probe x s, degraded bits 0 | {-s, 0, s} |

## Actions
``Box(pattern_size,)`` float32 (unbounded): the network's output, ``pattern_size`` values (squared-error task).

## Rewards
Minus the step's loss: minus the squared error summed over the ``pattern_size`` outputs on the last
``loss_steps`` steps, 0 on the other steps. Info (about the step just scored; the reset info is empty): "target"
(the probe pattern on the probe steps, all 0 before), "loss_mask" (1.0 where the loss counts), "loss" (the
step's loss, 0 where it does not count).

## Episode end
Truncated after ``n_repeats * n_patterns * (show_steps + blank_steps) + probe_steps`` steps (106 by default);
never terminated. The observation returned with the truncation is all zeros (there is no next input).

## Arguments
``n_patterns`` (5), ``pattern_size`` (1000, at least 2), ``n_repeats`` (2: showings of the set),
``show_steps`` (6), ``blank_steps`` (4, may be 0), ``probe_steps`` (6), ``degrade_fraction`` (0.5, in [0, 1]),
``loss_steps`` (1, at most ``probe_steps``), ``input_scale`` (1.0, > 0: factor on every input).

## Registered ids
``Plastic/PatternMemory-v0``: ``gym.make`` gives :class:`PatternMemoryEnv`;
``gym.make_vec(..., vectorization_mode="vector_entry_point")`` gives :class:`PatternMemoryVectorEnv`, the same
episodes as B ``PatternMemoryEnv``s seeded seed, seed + 1, ... No render modes.

## Source paper
Miconi, Clune, Stanley, "Differentiable plasticity: training plastic neural networks with backpropagation",
ICML 2018 (the binary pattern memorisation experiment; TASKS.md section 3).
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

    config_class = PatternMemoryTask
    metadata = {
        "render_modes": [],
        "paper": "Miconi, Clune, Stanley 2018, Differentiable plasticity (ICML)",
        "tags": ["supervised", "memory", "miconi2018"],
    }


class PatternMemoryVectorEnv(SupervisedVectorEnv):
    env_class = PatternMemoryEnv
