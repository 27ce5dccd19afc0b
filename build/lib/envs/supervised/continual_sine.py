"""Continual sine regression (Lindsey & Litwin-Kumar 2020, "FLP"; the protocol of Javed & White 2019, OML).

## Description
Each episode draws ``n_functions`` (10) functions f_k(x) = A_k sin(x + phi_k), A_k uniform in
``amplitude_range`` [0.1, 5.1], phi_k uniform in ``phase_range`` [0, pi], and has two phases:

- learning: ``samples_per_function`` (40) samples (x uniform in ``x_range`` [-5, 5]) of every function, one per
  step, with their target. ``ordering="continual"``: function 0's samples, then function 1's, ...; ``"iid"``:
  all n x 40 samples in random order. No loss on these steps.
- query: ``queries_per_function`` (10) new samples of every function, in random order, without their target:
  the output must be f_k(x). Squared error (one output) on these steps; the score is their mean, the MSE over
  all functions after learning them all (FLP reports it against OML, ~0.35 for OML after 10 functions).

Differences from the FLP/OML code: there, each inner step is a minibatch of 32 samples of one function and the
query set is one minibatch of 32 per function; here each step is one sample (a 32-sample minibatch is 32 steps).

## Observation
``Box(13,)`` float32 at the defaults (``n_functions + 3`` inputs; every input has the bounds
[min(0, x_low, -max |A|), max(1, x_high, max |A|)], [-5.1, 5.1] at the defaults):

| index | input | range |
|---|---|---|
| 0 .. n_functions-1 (0-9) | function id one-hot | {0, 1} |
| n_functions (10) | x | ``x_range`` |
| n_functions+1 (11) | the target y (learning steps; 0 on query steps) | [-max abs A, max abs A] |
| n_functions+2 (12) | flag: 1 on learning steps, 0 on query steps | {0, 1} |

A feedback-and-local-plasticity network takes the first n_functions + 1 values as its forward input and y as
its feedback; a recurrent network takes them all.

## Actions
``Box(1,)`` float32 (unbounded): the network's output, one value, the estimate of f_k(x) (squared-error task).

## Rewards
Minus the step's loss: minus the squared error on the query steps, 0 on the learning steps. Info (about the
step just scored; the reset info is empty): "target" (y = f_k(x), on every step), "loss_mask" (1.0 where the
loss counts: the query steps), "loss" (the step's loss, 0 where it does not count).

## Episode end
Truncated after ``n_functions * (samples_per_function + queries_per_function)`` steps (500 by default); never
terminated. The observation returned with the truncation is all zeros (there is no next input).

## Arguments
``n_functions`` (10), ``samples_per_function`` (40), ``queries_per_function`` (10), ``ordering`` ("continual"
or "iid"), ``amplitude_range`` ((0.1, 5.1)), ``phase_range`` ((0, pi)), ``x_range`` ((-5, 5)); each range is a
(low, high) pair with low <= high.

## Registered ids
``Plastic/ContinualSine-v0``: ``gym.make`` gives :class:`ContinualSineEnv`;
``gym.make_vec(..., vectorization_mode="vector_entry_point")`` gives :class:`ContinualSineVectorEnv`, the same
episodes as B ``ContinualSineEnv``s seeded seed, seed + 1, ... No render modes.

## Source paper
Lindsey, Litwin-Kumar, "Learning to learn with feedback and local plasticity", NeurIPS 2020 (continual sine
regression; TASKS.md section 3), after the protocol of Javed, White, "Meta-learning representations for
continual learning", NeurIPS 2019 (OML).
"""

from __future__ import annotations

import numpy as np

from envs.checks import check_choice, check_int, check_range
from envs.supervised.base import Episode, SupervisedEnv, SupervisedTask, SupervisedVectorEnv

ORDERINGS = ("continual", "iid")


class ContinualSineTask(SupervisedTask):
    def __init__(
        self, n_functions: int = 10, samples_per_function: int = 40, queries_per_function: int = 10,
        ordering: str = "continual", amplitude_range: tuple[float, float] = (0.1, 5.1),
        phase_range: tuple[float, float] = (0.0, np.pi), x_range: tuple[float, float] = (-5.0, 5.0),
    ) -> None:
        self.n_functions = check_int("n_functions", n_functions)
        self.samples_per_function = check_int("samples_per_function", samples_per_function)
        self.queries_per_function = check_int("queries_per_function", queries_per_function)
        self.ordering = check_choice("ordering", ordering, ORDERINGS)
        self.amplitude_range = check_range("amplitude_range", amplitude_range)
        self.phase_range = check_range("phase_range", phase_range)
        self.x_range = check_range("x_range", x_range)
        self.n_learning_steps = self.n_functions * self.samples_per_function
        max_amplitude = max(abs(a) for a in self.amplitude_range)
        super().__init__(
            episode_length=self.n_functions * (self.samples_per_function + self.queries_per_function),
            obs_dim=self.n_functions + 3, output_dim=1, loss="squared_error",
            obs_low=min(0.0, self.x_range[0], -max_amplitude), obs_high=max(1.0, self.x_range[1], max_amplitude),
        )

    def fill(self, rng: np.random.Generator, episode: Episode) -> None:
        F, S, Q, L = self.n_functions, self.samples_per_function, self.queries_per_function, self.n_learning_steps
        amplitude = rng.uniform(*self.amplitude_range, size=F)
        phase = rng.uniform(*self.phase_range, size=F)
        learn_ids = np.repeat(np.arange(F), S)
        if self.ordering == "iid":
            learn_ids = rng.permutation(learn_ids)
        ids = np.concatenate([learn_ids, rng.permutation(np.repeat(np.arange(F), Q))])
        x = rng.uniform(*self.x_range, size=len(ids))
        y = amplitude[ids] * np.sin(x + phase[ids])
        episode.inputs[np.arange(len(ids)), ids] = 1.0
        episode.inputs[:, F] = x
        episode.inputs[:L, F + 1] = y[:L]
        episode.inputs[:L, F + 2] = 1.0
        episode.targets[:, 0] = y
        episode.mask[L:] = 1.0


class ContinualSineEnv(SupervisedEnv):
    """``Plastic/ContinualSine-v0``; kwargs as :class:`ContinualSineTask`. Squared error, one output."""

    config_class = ContinualSineTask
    metadata = {
        "render_modes": [],
        "paper": "Lindsey & Litwin-Kumar 2020, Learning to learn with feedback and local plasticity (NeurIPS)",
        "tags": ["supervised", "continual", "regression", "lindsey2020"],
    }


class ContinualSineVectorEnv(SupervisedVectorEnv):
    env_class = ContinualSineEnv
