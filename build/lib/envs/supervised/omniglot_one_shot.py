"""Omniglot N-way k-shot classification (Miconi et al. 2018: 5-way 1-shot), one image per step.

## Description
Each episode picks ``n_way`` random classes of ``split`` (label j for the j-th; with ``rotate`` every class is
turned by its own random multiple of 90 degrees, a new class for the task) and shows ``n_shots`` rounds, each
presenting one new drawing of every class, in random order, with its label. The last step shows one more
drawing of one of the classes (random), without label. Output: ``n_way`` logits; cross-entropy on the last step
only. Defaults: 5 x 1 + 1 = 6 steps. Classes: ``split`` "train" or "test" (the last ``n_test_classes`` of a
fixed shuffle are held out, see envs.supervised.data.omniglot_split).

## Observation
``Box(966,)`` float32 at the defaults (S * S + ``n_way`` inputs, S = ``image_size`` = 31; bounds [0, 1]):

| index | input | range |
|---|---|---|
| 0 .. S*S-1 (0-960) | the S x S image flattened row by row (ink 1) | [0, 1] |
| S*S .. S*S+n_way-1 (961-965) | the label one-hot (all zero on the test step) | {0, 1} |

``obs[:S*S].reshape(S, S)`` is the image for a conv net.

## Actions
``Box(n_way,)`` float32 (unbounded): the network's output, ``n_way`` logits (cross-entropy task).

## Rewards
Minus the step's loss: minus the cross-entropy of the logits against the test drawing's label on the last step,
0 on the other steps. Info (about the step just scored; the reset info is empty): "target" (the label one-hot
of the drawing shown, on every step), "loss_mask" (1.0 where the loss counts: the last step), "loss" (the
step's loss, 0 where it does not count).

## Episode end
Truncated after ``n_shots * n_way + 1`` steps (6 by default); never terminated. The observation returned with
the truncation is all zeros (there is no next input).

## Arguments
``n_way`` (5, at least 2), ``n_shots`` (1), ``image_size`` (31: S), ``split`` ("train", "test" or "all"),
``n_test_classes`` (100: classes held out for "test"), ``split_seed`` (0: the seed of the fixed shuffle; None:
sorted order, whole alphabets held out), ``rotate`` (True), ``data_dir`` (None: ``$PLASTIC_OMNIGLOT``, else the
small copy shipped in ``envs/supervised/omniglot/``; a full Omniglot can be given here), ``cache_dir`` (None; a
folder for a ``.npz`` cache of the loaded images).

## Registered ids
``Plastic/OmniglotOneShot-v0``: ``gym.make`` gives :class:`OmniglotOneShotEnv`;
``gym.make_vec(..., vectorization_mode="vector_entry_point")`` gives :class:`OmniglotOneShotVectorEnv`, the same
episodes as B ``OmniglotOneShotEnv``s seeded seed, seed + 1, ... No render modes.

## Source paper
Miconi, Clune, Stanley, "Differentiable plasticity: training plastic neural networks with backpropagation",
ICML 2018 (the Omniglot 5-way 1-shot experiment; TASKS.md section 3).
"""

from __future__ import annotations

import os

import numpy as np

from envs.checks import check_int
from envs.supervised.base import Episode, SupervisedEnv, SupervisedTask, SupervisedVectorEnv
from envs.supervised.characters import CharacterPool


class OmniglotOneShotTask(SupervisedTask):
    def __init__(
        self, n_way: int = 5, n_shots: int = 1, image_size: int = 31, split: str = "train",
        n_test_classes: int = 100, split_seed: int | None = 0, rotate: bool = True,
        data_dir: str | os.PathLike | None = None, cache_dir: str | os.PathLike | None = None,
    ) -> None:
        self.n_way = check_int("n_way", n_way, minimum=2)
        self.n_shots = check_int("n_shots", n_shots)
        self.rotate = bool(rotate)
        self.pool = CharacterPool(data_dir, image_size, split, n_test_classes, split_seed, cache_dir)
        self.pool.check_episode(self.n_way, self.n_shots + 1)
        self.image_size = self.pool.image_size
        self.n_pixels = self.image_size**2
        super().__init__(
            episode_length=self.n_shots * self.n_way + 1, obs_dim=self.n_pixels + self.n_way, output_dim=self.n_way,
            loss="cross_entropy", obs_low=0.0, obs_high=1.0,
        )

    def fill(self, rng: np.random.Generator, episode: Episode) -> None:
        K, N, D = self.n_shots, self.n_way, self.n_pixels
        images = self.pool.sample(rng, N, K + 1, self.rotate).reshape(N, K + 1, D)
        shown = rng.permuted(np.broadcast_to(np.arange(N), (K, N)), axis=1)  # (K, N): class shown per step
        test_class = int(rng.integers(N))
        labels = np.concatenate([shown.reshape(-1), [test_class]])  # (T,)
        one_hot = np.eye(N, dtype=np.float32)[labels]
        episode.inputs[:-1, :D] = images[shown, np.arange(K)[:, None]].reshape(K * N, D)
        episode.inputs[:-1, D:] = one_hot[:-1]
        episode.inputs[-1, :D] = images[test_class, K]
        episode.targets[:] = one_hot
        episode.mask[-1] = 1.0


class OmniglotOneShotEnv(SupervisedEnv):
    """``Plastic/OmniglotOneShot-v0``; kwargs as :class:`OmniglotOneShotTask` (``data_dir`` for a full Omniglot).
    Cross-entropy over ``n_way`` logits."""

    config_class = OmniglotOneShotTask
    metadata = {
        "render_modes": [],
        "paper": "Miconi, Clune, Stanley 2018, Differentiable plasticity (ICML)",
        "tags": ["supervised", "few-shot", "images", "omniglot", "miconi2018"],
    }


class OmniglotOneShotVectorEnv(SupervisedVectorEnv):
    env_class = OmniglotOneShotEnv
