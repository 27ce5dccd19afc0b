"""The Omniglot classes of one split, and the drawing of episode images from them (shared by both Omniglot tasks)."""

from __future__ import annotations

import os

import numpy as np

from envs.checks import check_int
from envs.supervised.data import OmniglotData, load_omniglot, omniglot_split


class CharacterPool:
    """Classes of ``split`` (see ``omniglot_split``) of the Omniglot data at ``data_dir``."""

    def __init__(
        self, data_dir: str | os.PathLike | None = None, image_size: int = 31, split: str = "train",
        n_test_classes: int = 100, split_seed: int | None = 0, cache_dir: str | os.PathLike | None = None,
    ) -> None:
        self.data: OmniglotData = load_omniglot(data_dir, image_size=image_size, cache_dir=cache_dir)
        self.split = split
        self.classes = omniglot_split(self.data.n_classes, split, n_test_classes, split_seed)
        self.image_size = self.data.image_size

    def check_episode(self, n_way: int, per_class: int, way_name: str = "n_way") -> None:
        """Raise ``ValueError`` when episodes of ``n_way`` classes x ``per_class`` distinct drawings are impossible."""
        if n_way > len(self.classes):
            raise ValueError(
                f"{way_name}={n_way} is larger than the {len(self.classes)} classes available in split "
                f"{self.split!r} of the Omniglot data at {self.data.source}"
            )
        fewest = int(self.data.class_count[self.classes].min())
        if per_class > fewest:
            raise ValueError(
                f"episodes need {per_class} distinct drawings per class (shots + queries) but some classes of split "
                f"{self.split!r} in {self.data.source} have only {fewest}"
            )

    def sample(self, rng: np.random.Generator, n_way: int, per_class: int, rotate: bool) -> np.ndarray:
        """(n_way, per_class, S, S): ``n_way`` distinct random classes (class j gets label j), each with
        ``per_class`` distinct drawings, all of a class turned by the same random multiple of 90 degrees if
        ``rotate``."""
        check_int("n_way", n_way)
        chosen = rng.choice(self.classes, size=n_way, replace=False)
        counts = self.data.class_count[chosen]
        keys = rng.random((n_way, int(counts.max())))
        keys[np.arange(keys.shape[1]) >= counts[:, None]] = np.inf  # never pick past a class's last drawing
        picks = np.argsort(keys, axis=1)[:, :per_class]
        images = self.data.images[self.data.class_start[chosen][:, None] + picks]  # (n_way, per_class, S, S), copy
        if rotate:
            turns = rng.integers(0, 4, size=n_way)
            for k in (1, 2, 3):
                if np.any(turns == k):
                    images[turns == k] = np.rot90(images[turns == k], k, axes=(-2, -1))
        return images
