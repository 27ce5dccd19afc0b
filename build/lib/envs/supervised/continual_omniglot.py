"""Continual few-shot Omniglot classification (Lindsey & Litwin-Kumar 2020, after Javed & White 2019).

## Description
Each episode picks ``n_classes`` random classes of ``split`` (label j for the j-th; with ``rotate`` every class
is turned by its own random multiple of 90 degrees) and has two phases:

- learning: ``n_shots`` labelled drawings of every class, one per step. ``ordering="continual"``: class by
  class (all drawings of one class, then the next; classes in random order); ``"iid"``: all in random order.
- query: ``n_queries`` new drawings of every class, unlabelled, in random order; the output (``n_classes``
  logits) must name the class. Cross-entropy on the query steps only; the score is the query accuracy.

Defaults 10 classes x 5 shots + 10 x 2 queries = 70 steps; FLP's own sizes vary by experiment (to confirm
against the paper), set them with the keyword arguments.

## Observation
``Box(971,)`` float32 at the defaults (S * S + ``n_classes`` inputs, S = ``image_size`` = 31; bounds [0, 1]):

| index | input | range |
|---|---|---|
| 0 .. S*S-1 (0-960) | the S x S image flattened row by row (ink 1) | [0, 1] |
| S*S .. S*S+n_classes-1 (961-970) | the label one-hot (all zero on query steps) | {0, 1} |

## Actions
``Box(n_classes,)`` float32 (unbounded): the network's output, ``n_classes`` logits (cross-entropy task).

## Rewards
Minus the step's loss: minus the cross-entropy of the logits against the drawing's label on the query steps, 0
on the learning steps. Info (about the step just scored; the reset info is empty): "target" (the label one-hot
of the drawing shown, on every step), "loss_mask" (1.0 where the loss counts: the query steps), "loss" (the
step's loss, 0 where it does not count).

## Episode end
Truncated after ``n_classes * (n_shots + n_queries)`` steps (70 by default); never terminated. The observation
returned with the truncation is all zeros (there is no next input).

## Arguments
``n_classes`` (10, at least 2), ``n_shots`` (5), ``n_queries`` (2), ``ordering`` ("continual" or "iid"),
``image_size`` (31: S), ``split`` ("train", "test" or "all"; see envs.supervised.data.omniglot_split),
``n_test_classes`` (100: classes held out for "test"), ``split_seed`` (0: the seed of the fixed shuffle; None:
sorted order, whole alphabets held out), ``rotate`` (False), ``data_dir`` (None: ``$PLASTIC_OMNIGLOT``, else the
small copy shipped in ``envs/supervised/omniglot/``), ``cache_dir`` (None; a folder for a ``.npz`` cache of the
loaded images).

## Registered ids
``Plastic/ContinualOmniglot-v0``: ``gym.make`` gives :class:`ContinualOmniglotEnv`;
``gym.make_vec(..., vectorization_mode="vector_entry_point")`` gives :class:`ContinualOmniglotVectorEnv`, the
same episodes as B ``ContinualOmniglotEnv``s seeded seed, seed + 1, ... No render modes.

## Source paper
Lindsey, Litwin-Kumar, "Learning to learn with feedback and local plasticity", NeurIPS 2020 (continual few-shot
classification; TASKS.md section 3), after Javed, White, "Meta-learning representations for continual
learning", NeurIPS 2019.
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

    config_class = ContinualOmniglotTask
    metadata = {
        "render_modes": [],
        "paper": "Lindsey & Litwin-Kumar 2020, Learning to learn with feedback and local plasticity (NeurIPS)",
        "tags": ["supervised", "continual", "few-shot", "images", "omniglot", "lindsey2020"],
    }


class ContinualOmniglotVectorEnv(SupervisedVectorEnv):
    env_class = ContinualOmniglotEnv
