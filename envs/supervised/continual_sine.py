"""Continual sine regression (Lindsey & Litwin-Kumar 2020, "FLP"; the protocol of Javed & White 2019, OML).

Each episode draws ``n_functions`` (10) functions f_k(x) = A_k sin(x + phi_k), A_k uniform in
``amplitude_range`` [0.1, 5.1], phi_k uniform in ``phase_range`` [0, pi], and has two phases:

- learning: ``samples_per_function`` (40) samples (x uniform in ``x_range`` [-5, 5]) of every function, one per
  step, with their target. ``ordering="continual"``: function 0's samples, then function 1's, ...; ``"iid"``:
  all n x 40 samples in random order. No loss on these steps.
- query: ``queries_per_function`` (10) new samples of every function, in random order, without their target:
  the output must be f_k(x). Squared error (one output) on these steps; the score is their mean, the MSE over
  all functions after learning them all (FLP reports it against OML, ~0.35 for OML after 10 functions).

Observation (n_functions + 3 values): function id one-hot, x, the target y (learning steps; 0 on query steps),
and a flag that is 1 on learning steps. A feedback-and-local-plasticity network takes the first n_functions + 1
values as its forward input and y as its feedback; a recurrent network takes them all.

Differences from the FLP/OML code: there, each inner step is a minibatch of 32 samples of one function and the
query set is one minibatch of 32 per function; here each step is one sample (a 32-sample minibatch is 32 steps).
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

    task_class = ContinualSineTask


class ContinualSineVectorEnv(SupervisedVectorEnv):
    task_class = ContinualSineTask
