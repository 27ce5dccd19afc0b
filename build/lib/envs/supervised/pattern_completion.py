"""Pattern completion (Miconi 2016): see a random +-1 pattern once, then complete it from a single kept bit.

## Description
Episode of 2 steps. Step 0: a random +-1 pattern of ``n_bits`` (8) bits, in full. Step 1: the same pattern with
all bits but ``n_kept`` (1, at random positions) set to 0. Target: the full pattern. Loss: squared error (summed
over bits) at step 1 only, so an all-zero output scores ``n_bits`` (8), the paper's chance level.

## Observation
``Box(8,)`` float32 at the defaults (``n_bits`` inputs, bounds [-1, 1]):

| index | input | range |
|---|---|---|
| 0 .. n_bits-1 (0-7) | step 0: the pattern; step 1: its ``n_kept`` kept bits, the others 0 | {-1, 0, 1} |

## Actions
``Box(n_bits,)`` float32 (unbounded): the network's output, ``n_bits`` values (squared-error task).

## Rewards
Minus the step's loss: 0 at step 0 (no loss), minus the squared error summed over the ``n_bits`` outputs at
step 1. Info (about the step just scored; the reset info is empty): "target" (the full pattern, on both steps),
"loss_mask" (1.0 where the loss counts: step 1), "loss" (the step's loss, 0 where it does not count).

## Episode end
Truncated after 2 steps (fixed); never terminated. The observation returned with the truncation is all zeros
(there is no next input).

## Arguments
``n_bits`` (8: pattern length), ``n_kept`` (1: bits kept at step 1, at most ``n_bits``).

## Registered ids
``Plastic/PatternCompletion-v0``: ``gym.make`` gives :class:`PatternCompletionEnv`;
``gym.make_vec(..., vectorization_mode="vector_entry_point")`` gives :class:`PatternCompletionVectorEnv`, the
same episodes as B ``PatternCompletionEnv``s seeded seed, seed + 1, ... No render modes.

## Source paper
Miconi, "Learning to learn with backpropagation of Hebbian plasticity", arXiv:1609.02228, 2016 (the pattern
completion experiment; TASKS.md section 3).
"""

from __future__ import annotations

import numpy as np

from envs.checks import check_int
from envs.supervised.base import Episode, SupervisedEnv, SupervisedTask, SupervisedVectorEnv


class PatternCompletionTask(SupervisedTask):
    def __init__(self, n_bits: int = 8, n_kept: int = 1) -> None:
        self.n_bits = check_int("n_bits", n_bits)
        self.n_kept = check_int("n_kept", n_kept)
        if self.n_kept > self.n_bits:
            raise ValueError(f"n_kept={n_kept} must be <= n_bits={n_bits}")
        super().__init__(
            episode_length=2, obs_dim=self.n_bits, output_dim=self.n_bits, loss="squared_error", obs_low=-1.0,
            obs_high=1.0,
        )

    def fill(self, rng: np.random.Generator, episode: Episode) -> None:
        pattern = rng.integers(0, 2, size=self.n_bits) * 2.0 - 1.0
        kept = rng.permutation(self.n_bits)[: self.n_kept]
        episode.inputs[0] = pattern
        episode.inputs[1, kept] = pattern[kept]
        episode.targets[:] = pattern
        episode.mask[1] = 1.0


class PatternCompletionEnv(SupervisedEnv):
    """``Plastic/PatternCompletion-v0``; kwargs: n_bits=8, n_kept=1. Loss squared error, output n_bits."""

    config_class = PatternCompletionTask
    metadata = {
        "render_modes": [],
        "paper": "Miconi 2016, Learning to learn with backpropagation of Hebbian plasticity (arXiv:1609.02228)",
        "tags": ["supervised", "memory", "miconi2016"],
    }


class PatternCompletionVectorEnv(SupervisedVectorEnv):
    """Native vector version of :class:`PatternCompletionEnv` (``num_envs`` plus the same kwargs)."""

    env_class = PatternCompletionEnv
