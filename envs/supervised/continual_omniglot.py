"""Continual few-shot Omniglot classification (Lindsey & Litwin-Kumar 2020, after Javed & White 2019).

Each episode picks ``n_classes`` random classes of ``split`` (label j for the j-th) and has two phases:

- learning: ``n_shots`` labelled drawings of every class, one per step. ``ordering="continual"``: class by
  class (all drawings of one class, then the next; classes in random order); ``"iid"``: all in random order.
- query: ``n_queries`` new drawings of every class, unlabelled, in random order; the output (``n_classes``
  logits) must name the class. Cross-entropy on the query steps only; the score is the query accuracy.

Observation: the S x S image flattened row by row (pixels in [0, 1], ink 1), then the label one-hot (all zero on
query steps). Defaults 10 classes x 5 shots + 10 x 2 queries = 70 steps; FLP's own sizes vary by experiment
(to confirm against the paper), set them with the keyword arguments.
"""

from __future__ import annotations

import os

import numpy as np

from envs.checks import check_choice, check_int
from envs.supervised.base import Episode, SupervisedEnv, SupervisedTask, SupervisedVectorEnv
from envs.supervised.characters import CharacterPool

ORDERINGS = ("continual", "iid")


class ContinualOmniglotTask(SupervisedTask):
    def __init__(
        self, n_classes: int = 10, n_shots: int = 5, n_queries: int = 2, ordering: str = "continual",
        image_size: int = 31, split: str = "train", n_test_classes: int = 100, split_seed: int | None = 0,
        rotate: bool = False, data_dir: str | os.PathLike | None = None, cache_dir: str | os.PathLike | None = None,
    ) -> None:
        self.n_classes = check_int("n_classes", n_classes, minimum=2)
        self.n_shots = check_int("n_shots", n_shots)
        self.n_queries = check_int("n_queries", n_queries)
        self.ordering = check_choice("ordering", ordering, ORDERINGS)
        self.rotate = bool(rotate)
        self.pool = CharacterPool(data_dir, image_size, split, n_test_classes, split_seed, cache_dir)
        self.pool.check_episode(self.n_classes, self.n_shots + self.n_queries, way_name="n_classes")
        self.image_size = self.pool.image_size
        self.n_pixels = self.image_size**2
        self.n_learning_steps = self.n_classes * self.n_shots
        super().__init__(
            episode_length=self.n_classes * (self.n_shots + self.n_queries), obs_dim=self.n_pixels + self.n_classes,
            output_dim=self.n_classes, loss="cross_entropy", obs_low=0.0, obs_high=1.0,
        )

    def fill(self, rng: np.random.Generator, episode: Episode) -> None:
        N, K, Q, D, L = self.n_classes, self.n_shots, self.n_queries, self.n_pixels, self.n_learning_steps
        images = self.pool.sample(rng, N, K + Q, self.rotate).reshape(N, K + Q, D)
        # learning phase: (class, drawing) per step
        if self.ordering == "continual":
            learn_class = np.repeat(rng.permutation(N), K)
            learn_drawing = np.tile(np.arange(K), N)
        else:
            steps = rng.permutation(N * K)
            learn_class, learn_drawing = steps // K, steps % K
        query = rng.permutation(N * Q)
        classes = np.concatenate([learn_class, query // Q])
        drawings = np.concatenate([learn_drawing, K + query % Q])
        one_hot = np.eye(N, dtype=np.float32)[classes]
        episode.inputs[:, :D] = images[classes, drawings]
        episode.inputs[:L, D:] = one_hot[:L]
        episode.targets[:] = one_hot
        episode.mask[L:] = 1.0


class ContinualOmniglotEnv(SupervisedEnv):
    """``Plastic/ContinualOmniglot-v0``; kwargs as :class:`ContinualOmniglotTask`. Cross-entropy, n_classes logits."""

    task_class = ContinualOmniglotTask


class ContinualOmniglotVectorEnv(SupervisedVectorEnv):
    task_class = ContinualOmniglotTask
