"""One-shot and reversal association (Miconi 2016): tie two random patterns to two labels from one showing.

## Description
Input each step: a +-1 pattern of ``n_bits`` (8) followed by a 2-bit label suffix (10 or 01). Steps 0-1 show
each of the two patterns once with its label (the order of the two, and which label each pattern gets, are
random). The remaining steps show the patterns with the neutral suffix 00, and the output must be the label of
the pattern shown: 2 logits, cross-entropy loss, on every step but the labelled ones. The two patterns differ in
at least one bit.

Reversal (``Plastic/ReversalAssociation-v0``): at ``reversal_step`` (10) the labels swap; steps 10-11 show each
pattern once with its new label (same order as steps 0-1), are excluded from the loss, and from then on the
target is the swapped label.

``query_order``: "alternate" (the paper: the two patterns alternate, starting with the first one shown) or
"random" (each unlabelled step shows one of the two at random). With "alternate", a network with recurrent
memory can answer from the step parity and the two labels it saw, without associating patterns and labels; the
2016 feedforward plastic network cannot. Use "random" to rule that shortcut out.

## Observation
``Box(10,)`` float32 at the defaults (``n_bits + 2`` inputs, bounds [-1, 1]):

| index | input | range |
|---|---|---|
| 0 .. n_bits-1 (0-7) | the pattern shown | {-1, 1} |
| n_bits .. n_bits+1 (8-9) | label suffix: the label one-hot (10 or 01) on labelled steps, else 00 | {0, 1} |

## Actions
``Box(2,)`` float32 (unbounded): the network's output, 2 logits (cross-entropy task; the number of labels is
fixed at 2).

## Rewards
Minus the step's loss: the cross-entropy of the 2 logits against the label of the pattern shown (ln 2 = 0.693
for equal logits) on every unlabelled step, 0 on the labelled steps (0-1, and ``reversal_step`` and
``reversal_step + 1`` in the reversal task). Info (about the step just scored; the reset info is empty):
"target" (the current label of the pattern shown, one-hot, on every step), "loss_mask" (1.0 where the loss
counts, 0.0 on the labelled steps), "loss" (the step's loss, 0 where it does not count).

## Episode end
Truncated after ``n_steps`` steps (20 by default); never terminated. The observation returned with the
truncation is all zeros (there is no next input).

## Arguments
One-shot: ``n_bits`` (8: pattern length), ``n_steps`` (20: episode length, at least 3), ``query_order``
("alternate" or "random"). Reversal: the same and ``reversal_step`` (10: the step where the labels swap, at
least 3, with ``reversal_step + 2 < n_steps`` so that a query step follows the relearning steps).

## Registered ids
``Plastic/OneShotAssociation-v0``: ``gym.make`` gives :class:`OneShotAssociationEnv`;
``gym.make_vec(..., vectorization_mode="vector_entry_point")`` gives :class:`OneShotAssociationVectorEnv`.
``Plastic/ReversalAssociation-v0``: ``gym.make`` gives :class:`ReversalAssociationEnv`; ``gym.make_vec`` (same
mode) gives :class:`ReversalAssociationVectorEnv`. Each vector env gives the same episodes as B single envs
seeded seed, seed + 1, ... No render modes.

## Source paper
Miconi, "Learning to learn with backpropagation of Hebbian plasticity", arXiv:1609.02228, 2016 (the one-shot
learning and reversal learning experiments; TASKS.md section 3).
"""

from __future__ import annotations

import numpy as np

from envs.checks import check_choice, check_int
from envs.supervised.base import Episode, SupervisedEnv, SupervisedTask, SupervisedVectorEnv

QUERY_ORDERS = ("alternate", "random")


class AssociationTask(SupervisedTask):
    """Both association tasks; ``reversal_step=None`` gives the one-shot task."""

    def __init__(
        self, n_bits: int = 8, n_steps: int = 20, reversal_step: int | None = None, query_order: str = "alternate",
    ) -> None:
        self.n_bits = check_int("n_bits", n_bits)
        self.n_labels = 2
        self.query_order = check_choice("query_order", query_order, QUERY_ORDERS)
        n_steps = check_int("n_steps", n_steps, minimum=3)
        if reversal_step is not None:
            reversal_step = check_int("reversal_step", reversal_step, minimum=3)
            if reversal_step + 2 >= n_steps:
                raise ValueError(
                    f"reversal_step={reversal_step} leaves no query step after the relearning steps "
                    f"(n_steps={n_steps}); need reversal_step + 2 < n_steps"
                )
        self.reversal_step = reversal_step
        super().__init__(
            episode_length=n_steps, obs_dim=self.n_bits + self.n_labels, output_dim=self.n_labels,
            loss="cross_entropy", obs_low=-1.0, obs_high=1.0,
        )

    def _patterns(self, rng: np.random.Generator) -> np.ndarray:
        """Two +-1 patterns (2, n_bits) differing in at least one bit (redrawn until they do)."""
        while True:
            patterns = rng.integers(0, 2, size=(2, self.n_bits)) * 2.0 - 1.0
            if np.any(patterns[0] != patterns[1]):
                return patterns

    def fill(self, rng: np.random.Generator, episode: Episode) -> None:
        T, n = self.episode_length, self.n_bits
        patterns = self._patterns(rng)  # row 0 is shown first, row 1 second
        labels = rng.permutation(self.n_labels)  # labels[k]: class of pattern k (before any reversal)
        which = np.empty(T, dtype=np.int64)  # index of the pattern shown at each step
        if self.query_order == "alternate":
            which[:] = np.arange(T) % 2
        else:
            which[:] = rng.integers(0, 2, size=T)
        taught = [0, 1] if self.reversal_step is None else [0, 1, self.reversal_step, self.reversal_step + 1]
        which[taught] = [0, 1] * (len(taught) // 2)
        classes = labels[which]
        if self.reversal_step is not None:
            classes[self.reversal_step:] = 1 - classes[self.reversal_step:]
        one_hot = np.eye(self.n_labels, dtype=np.float32)[classes]  # (T, n_labels)
        episode.inputs[:, :n] = patterns[which]
        episode.inputs[taught, n:] = one_hot[taught]
        episode.targets[:] = one_hot
        episode.mask[:] = 1.0
        episode.mask[taught] = 0.0


class OneShotAssociationTask(AssociationTask):
    def __init__(self, n_bits: int = 8, n_steps: int = 20, query_order: str = "alternate") -> None:
        super().__init__(n_bits=n_bits, n_steps=n_steps, reversal_step=None, query_order=query_order)


class ReversalAssociationTask(AssociationTask):
    def __init__(
        self, n_bits: int = 8, n_steps: int = 20, reversal_step: int = 10, query_order: str = "alternate"
    ) -> None:
        super().__init__(n_bits=n_bits, n_steps=n_steps, reversal_step=reversal_step, query_order=query_order)


class OneShotAssociationEnv(SupervisedEnv):
    """``Plastic/OneShotAssociation-v0``; kwargs n_bits=8, n_steps=20, query_order. Cross-entropy, 2 logits."""

    config_class = OneShotAssociationTask
    metadata = {
        "render_modes": [],
        "paper": "Miconi 2016, Learning to learn with backpropagation of Hebbian plasticity (arXiv:1609.02228)",
        "tags": ["supervised", "association", "one-shot", "miconi2016"],
    }


class OneShotAssociationVectorEnv(SupervisedVectorEnv):
    env_class = OneShotAssociationEnv


class ReversalAssociationEnv(SupervisedEnv):
    """``Plastic/ReversalAssociation-v0``; kwargs n_bits=8, n_steps=20, reversal_step=10, query_order."""

    config_class = ReversalAssociationTask
    metadata = {
        "render_modes": [],
        "paper": "Miconi 2016, Learning to learn with backpropagation of Hebbian plasticity (arXiv:1609.02228)",
        "tags": ["supervised", "association", "reversal", "miconi2016"],
    }


class ReversalAssociationVectorEnv(SupervisedVectorEnv):
    env_class = ReversalAssociationEnv
