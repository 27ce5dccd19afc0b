"""The step interface shared by every recurrent core.

A core maps one input step to one hidden step and carries all per-episode state explicitly::

    state = core.initial_state(batch_size=B)   # dict of tensors: "h", and e.g. "hebb", "trace"
    h, state = core(x_t, state)                # x_t: (B, input_size)  -> h: (B, hidden_size)
    hs, state = core.unroll(x_seq, state)      # x_seq: (T, B, input_size) -> hs: (T, B, hidden_size)

State is a plain ``dict[str, Tensor]`` whose tensors all have the batch as their first dimension, so that an
agent can reset it (call ``initial_state`` again), detach it or move it without knowing which core it holds.
"""

from __future__ import annotations

import math
from numbers import Real

import torch
from torch import Tensor, nn

State = dict[str, Tensor]


def check_positive(**sizes: int) -> None:
    """Raise ``ValueError`` naming the first size that is not a positive integer."""
    for name, value in sizes.items():
        if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")


def check_positive_real(name: str, value: object) -> float:
    """Return ``value`` as a float, or raise ``ValueError`` naming it when it is not a positive finite number."""
    if isinstance(value, bool) or not isinstance(value, Real) or not math.isfinite(value) or value <= 0:
        raise ValueError(f"{name} must be a positive finite number, got {value!r}")
    return float(value)


def check_choice(name: str, value: str, choices: tuple[str, ...] | list[str]) -> None:
    """Raise ``ValueError`` when ``value`` is not one of ``choices``."""
    if value not in choices:
        raise ValueError(f"unknown {name} {value!r}; expected one of {', '.join(map(repr, choices))}")


class RecurrentCore(nn.Module):
    """Base class of the recurrent cores: input checks, ``unroll`` and ``initial_state`` plumbing.

    Subclasses implement ``state_shapes`` (the per-element shape of every state tensor) and ``step``.
    """

    # how ``plastic_core.fused.record`` records an episode of a core without a fused recurrence: False, stepping
    # with autograd; True, stepping without it and then one ``unroll`` (for a core whose unroll is a sequence
    # kernel, much faster than its steps under autograd)
    replays_unroll = False

    def __init__(self, input_size: int, hidden_size: int) -> None:
        super().__init__()
        check_positive(input_size=input_size, hidden_size=hidden_size)
        self.input_size = input_size
        self.hidden_size = hidden_size

    # -- to implement -------------------------------------------------------------------------------------
    def state_shapes(self) -> dict[str, tuple[int, ...]]:
        """Per-batch-element shape of each state tensor, e.g. ``{"h": (N,), "hebb": (N, N)}``."""
        raise NotImplementedError

    def step(self, x: Tensor, state: State) -> tuple[Tensor, State]:
        """One step on validated input ``x`` (B, input_size); returns h (B, hidden_size) and the new state."""
        raise NotImplementedError

    # -- shared -------------------------------------------------------------------------------------------
    def initial_state(
        self, batch_size: int, device: torch.device | str | None = None, dtype: torch.dtype | None = None
    ) -> State:
        """All per-episode state at episode start (zeros): one entry per ``state_shapes`` key, batch first."""
        check_positive(batch_size=batch_size)
        ref = next(self.parameters(), None)
        device = device if device is not None else (ref.device if ref is not None else None)
        dtype = dtype if dtype is not None else (ref.dtype if ref is not None else torch.get_default_dtype())
        return {
            key: torch.zeros((batch_size, *shape), device=device, dtype=dtype)
            for key, shape in self.state_shapes().items()
        }

    def check_input(self, x: Tensor, state: State, rank: int = 2) -> None:
        """Raise a clear error when ``x`` or ``state`` do not fit this core."""
        if not isinstance(x, Tensor):
            raise TypeError(f"input must be a torch.Tensor, got {type(x).__name__}")
        expected = "(B, input_size)" if rank == 2 else "(T, B, input_size)"
        if x.dim() != rank:
            raise ValueError(f"input must have shape {expected}, got rank {x.dim()} shape {tuple(x.shape)}")
        if x.shape[-1] != self.input_size:
            raise ValueError(
                f"input has {x.shape[-1]} features in its last dimension, core expects input_size={self.input_size}"
            )
        if not isinstance(state, dict):
            raise TypeError(f"state must be the dict returned by initial_state(), got {type(state).__name__}")
        batch = x.shape[-2]
        for key, shape in self.state_shapes().items():
            if key not in state:
                raise ValueError(f"state is missing {key!r}; build it with core.initial_state(batch_size)")
            got = tuple(state[key].shape)
            if got != (batch, *shape):
                raise ValueError(
                    f"state[{key!r}] has shape {got} but the input batch is {batch}: expected {(batch, *shape)} "
                    "(was the state made for another batch size?)"
                )

    def forward(self, x: Tensor, state: State) -> tuple[Tensor, State]:
        """One step: x (B, input_size) -> h (B, hidden_size), new state."""
        self.check_input(x, state, rank=2)
        return self.step(x, state)

    def unroll(self, xs: Tensor, state: State) -> tuple[Tensor, State]:
        """Run ``T`` steps: xs (T, B, input_size) -> hs (T, B, hidden_size), final state."""
        self.check_input(xs, state, rank=3)
        hs = []
        for x in xs:
            h, state = self.step(x, state)
            hs.append(h)
        return torch.stack(hs), state

    def extra_repr(self) -> str:
        return f"input_size={self.input_size}, hidden_size={self.hidden_size}"
