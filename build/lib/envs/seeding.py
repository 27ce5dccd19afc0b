"""Seeding of vector envs, as ``SyncVectorEnv`` does it: one generator per sub-env; an int s seeds sub-env i with
s + i, a list gives one seed per sub-env, None keeps the existing generators (new ones from OS entropy)."""

from __future__ import annotations

import numbers
from collections.abc import Sequence

import numpy as np
from gymnasium.utils import seeding


def sub_env_seeds(seed: int | Sequence[int | None] | None, num_envs: int) -> list[int | None]:
    """The seed of each sub-env for ``reset(seed=seed)``."""
    if seed is None:
        return [None] * num_envs
    if isinstance(seed, numbers.Integral) and not isinstance(seed, bool):
        return [int(seed) + i for i in range(num_envs)]
    if isinstance(seed, Sequence) and not isinstance(seed, str):
        if len(seed) != num_envs:
            raise ValueError(f"seed: expected {num_envs} seeds, got {len(seed)}")
        return list(seed)
    raise TypeError(f"seed must be an int, a list of {num_envs} ints or None, got {seed!r}")


class SubEnvStreams:
    """One numpy generator per sub-env and the seed it was made from (``np_random`` / ``np_random_seed``)."""

    def __init__(self, num_envs: int) -> None:
        self.num_envs = num_envs
        self.rngs: list[np.random.Generator | None] = [None] * num_envs
        self.seeds: list[int | None] = [None] * num_envs

    def reseed(self, seed: int | Sequence[int | None] | None, mask: np.ndarray | None = None) -> None:
        """Reseed the sub-envs in ``mask`` (all by default) for ``reset(seed=seed)``."""
        seeds = sub_env_seeds(seed, self.num_envs)
        indices = range(self.num_envs) if mask is None else np.flatnonzero(mask)
        for i in indices:
            if seeds[i] is not None or self.rngs[i] is None:
                self.rngs[i], self.seeds[i] = seeding.np_random(seeds[i])

    def generators(self) -> tuple[np.random.Generator, ...]:
        """Every sub-env's generator (made from OS entropy where none was seeded yet)."""
        if any(rng is None for rng in self.rngs):
            self.reseed(None)
        return tuple(self.rngs)  # type: ignore[arg-type]
