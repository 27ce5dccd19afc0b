"""The two per-step losses of the supervised tasks, in numpy (the envs' rewards) and torch (the trainer).

Both reduce over the last (output) dimension only, so a (T, B, D) output gives a (T, B) loss:

- ``"squared_error"``: sum over outputs of (output - target)^2 (the papers' loss: 8 at chance for 8-bit patterns);
- ``"cross_entropy"``: -sum(target * log_softmax(output)): the output is a vector of logits, the target a one-hot
  label (an all-zero target gives loss 0).

The per-step reward of every supervised env is ``-loss * mask``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import torch

LOSS_KINDS = ("squared_error", "cross_entropy")


def check_loss_kind(kind: str) -> None:
    if kind not in LOSS_KINDS:
        raise ValueError(f"unknown loss kind {kind!r}; expected one of {', '.join(map(repr, LOSS_KINDS))}")


def step_loss(outputs: np.ndarray, targets: np.ndarray, kind: str) -> np.ndarray:
    """Loss of each step: outputs and targets (..., D) -> (...,), float64."""
    check_loss_kind(kind)
    outputs = np.asarray(outputs, dtype=np.float64)
    targets = np.asarray(targets, dtype=np.float64)
    if kind == "squared_error":
        with np.errstate(over="ignore"):  # a huge output's loss is inf (its reward -inf), not a warning each step
            return np.square(outputs - targets).sum(axis=-1)
    shifted = outputs - outputs.max(axis=-1, keepdims=True)
    log_probs = shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))
    return -(targets * log_probs).sum(axis=-1)


def torch_step_loss(outputs: torch.Tensor, targets: torch.Tensor, kind: str) -> torch.Tensor:
    """The same loss on torch tensors (differentiable): (..., D) -> (...)."""
    check_loss_kind(kind)
    if kind == "squared_error":
        return (outputs - targets).pow(2).sum(dim=-1)
    return -(targets * outputs.log_softmax(dim=-1)).sum(dim=-1)
