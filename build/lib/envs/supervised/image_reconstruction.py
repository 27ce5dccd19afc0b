"""Natural image reconstruction (Miconi et al. 2018): memorise 3 images, restore one from its top or bottom half.

## Description
Each episode draws ``n_images`` distinct grayscale S x S images (S = ``image_size``, 32; flattened row by row,
pixels in [-1, 1]) from the pool of ``images`` / ``split`` (see envs.supervised.natural_images). The set is shown
``n_repeats`` (3) times, each time in a new random order: each image for ``show_steps`` (20) steps then
``blank_steps`` (2) all-zero steps. Then one of the images is shown for ``probe_steps`` (3) steps with its top or
bottom half (random; the top half is the first S // 2 rows) set to 0. Target: the full image. Loss: squared
error summed over pixels on the last ``loss_steps`` steps (the paper: the last step). Defaults: 3 x 3 x 22 + 3 =
201 steps; output S * S = 1024 values.

## Observation
``Box(1024,)`` float32 at the defaults (S * S inputs, bounds [-1, 1]):

| index | input | range |
|---|---|---|
| 0 .. S*S-1 (0-1023) | the image shown, row by row (0 on blank steps); probe: the probe image, half zeroed | [-1, 1] |

## Actions
``Box(S * S,)`` float32 (unbounded): the network's output, one value per pixel (squared-error task).

## Rewards
Minus the step's loss: minus the squared error summed over the S * S outputs on the last ``loss_steps`` steps,
0 on the other steps. Info (about the step just scored; the reset info is empty): "target" (the full probe
image on the probe steps, all 0 before), "loss_mask" (1.0 where the loss counts), "loss" (the step's loss, 0
where it does not count).

## Episode end
Truncated after ``n_repeats * n_images * (show_steps + blank_steps) + probe_steps`` steps (201 by default);
never terminated. The observation returned with the truncation is all zeros (there is no next input).

## Arguments
``n_images`` (3, at most the pool's size), ``image_size`` (32, at least 2), ``n_repeats`` (3: showings of the
set), ``show_steps`` (20), ``blank_steps`` (2, may be 0), ``probe_steps`` (3), ``loss_steps`` (1, at most
``probe_steps``), ``images`` ("skimage": patches of the photos in the scikit-image wheel; or a path to a local
CIFAR-10 copy; or an (N, S, S) array), ``split`` ("train", "test" or "all").

## Registered ids
``Plastic/ImageReconstruction-v0``: ``gym.make`` gives :class:`ImageReconstructionEnv`;
``gym.make_vec(..., vectorization_mode="vector_entry_point")`` gives :class:`ImageReconstructionVectorEnv`, the
same episodes as B ``ImageReconstructionEnv``s seeded seed, seed + 1, ... No render modes.

## Source paper
Miconi, Clune, Stanley, "Differentiable plasticity: training plastic neural networks with backpropagation",
ICML 2018 (the natural image reconstruction experiment; TASKS.md section 3).
"""

from __future__ import annotations

import os

import numpy as np

from envs.checks import check_int
from envs.supervised.base import Episode, SupervisedEnv, SupervisedTask, SupervisedVectorEnv
from envs.supervised.natural_images import load_natural_images
from envs.supervised.pattern_memory import write_presentations


class ImageReconstructionTask(SupervisedTask):
    def __init__(
        self, n_images: int = 3, image_size: int = 32, n_repeats: int = 3, show_steps: int = 20,
        blank_steps: int = 2, probe_steps: int = 3, loss_steps: int = 1,
        images: str | os.PathLike | np.ndarray = "skimage", split: str = "train",
    ) -> None:
        self.n_images = check_int("n_images", n_images)
        self.image_size = check_int("image_size", image_size, minimum=2)
        self.n_repeats = check_int("n_repeats", n_repeats)
        self.show_steps = check_int("show_steps", show_steps)
        self.blank_steps = check_int("blank_steps", blank_steps, minimum=0)
        self.probe_steps = check_int("probe_steps", probe_steps)
        self.loss_steps = check_int("loss_steps", loss_steps)
        if self.loss_steps > self.probe_steps:
            raise ValueError(f"loss_steps={loss_steps} must be <= probe_steps={probe_steps}")
        pool = load_natural_images(images, self.image_size, split)
        if self.n_images > len(pool):
            raise ValueError(f"n_images={n_images} is larger than the {len(pool)} images available (split {split!r})")
        self.pool = pool.reshape(len(pool), -1)  # (N, S * S)
        self.split = split
        self.period = self.show_steps + self.blank_steps
        self.half = (self.image_size // 2) * self.image_size  # pixels of the top half (row-major)
        n_pixels = self.image_size**2
        episode_length = self.n_repeats * self.n_images * self.period + self.probe_steps
        super().__init__(
            episode_length=episode_length, obs_dim=n_pixels, output_dim=n_pixels, loss="squared_error",
            obs_low=-1.0, obs_high=1.0,
        )

    def fill(self, rng: np.random.Generator, episode: Episode) -> None:
        P, R = self.n_images, self.n_repeats
        images = self.pool[rng.choice(len(self.pool), size=P, replace=False)]  # (P, S * S)
        order = rng.permuted(np.broadcast_to(np.arange(P), (R, P)), axis=1).reshape(-1)
        probe = int(rng.integers(P))
        zero_top = bool(rng.integers(2))
        write_presentations(episode.inputs, images[order], self.show_steps, self.period)
        test_input = images[probe].copy()
        if zero_top:
            test_input[: self.half] = 0.0
        else:
            test_input[self.half:] = 0.0
        episode.inputs[-self.probe_steps:] = test_input
        episode.targets[-self.probe_steps:] = images[probe]
        episode.mask[-self.loss_steps:] = 1.0


class ImageReconstructionEnv(SupervisedEnv):
    """``Plastic/ImageReconstruction-v0``; kwargs as :class:`ImageReconstructionTask`. Squared error, S*S outputs."""

    config_class = ImageReconstructionTask
    metadata = {
        "render_modes": [],
        "paper": "Miconi, Clune, Stanley 2018, Differentiable plasticity (ICML)",
        "tags": ["supervised", "memory", "images", "miconi2018"],
    }


class ImageReconstructionVectorEnv(SupervisedVectorEnv):
    env_class = ImageReconstructionEnv
