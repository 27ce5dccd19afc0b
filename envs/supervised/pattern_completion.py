"""Pattern completion (Miconi 2016): see a random +-1 pattern once, then complete it from a single kept bit.

Episode of 2 steps. Step 0: the full pattern. Step 1: the same pattern with all bits but ``n_kept`` (random
positions) set to 0. Target: the full pattern. Loss: squared error (summed over bits) at step 1 only, so an
all-zero output scores ``n_bits`` (8), the paper's chance level. Output: ``n_bits`` values.
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

    task_class = PatternCompletionTask


class PatternCompletionVectorEnv(SupervisedVectorEnv):
    """Native vector version of :class:`PatternCompletionEnv` (``num_envs`` plus the same kwargs)."""

    task_class = PatternCompletionTask
