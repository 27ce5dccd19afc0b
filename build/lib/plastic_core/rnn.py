"""Non-plastic baseline cores: a tanh RNN (``"rnn"``) and an LSTM (``"lstm"``) behind the step interface.

Shapes: B batch, T time, I ``input_size``, N ``hidden_size``. Weight matrices follow ``nn.Linear``: rows are the
postsynaptic (receiving) neuron j, columns the presynaptic neuron i.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from plastic_core.base import RecurrentCore, State, check_choice
from plastic_core.registry import register_core


class ProjectedInputCore(RecurrentCore):
    """A core whose input enters only through ``W_in x + b`` (``self.w_in``, an ``nn.Linear(I, N)``).

    ``unroll`` projects the whole sequence with one matrix product, then loops over time on the recurrent part
    (``advance``), instead of one small product per step. Subclasses implement ``advance``.
    """

    def __init__(self, input_size: int, hidden_size: int) -> None:
        super().__init__(input_size, hidden_size)
        self.w_in = nn.Linear(input_size, hidden_size)

    def advance(self, drive: Tensor, state: State) -> tuple[Tensor, State]:
        """One step given the input drive ``W_in x + b`` (B, N); returns h (B, N) and the new state."""
        raise NotImplementedError

    def step(self, x: Tensor, state: State) -> tuple[Tensor, State]:
        return self.advance(self.w_in(x), state)

    def unroll(self, xs: Tensor, state: State) -> tuple[Tensor, State]:
        """Run ``T`` steps: xs (T, B, I) -> hs (T, B, N), final state."""
        self.check_input(xs, state, rank=3)
        hs = []
        for drive in self.w_in(xs):
            h, state = self.advance(drive, state)
            hs.append(h)
        return torch.stack(hs), state


def uniform_init_(tensor: Tensor, fan_in: int) -> Tensor:
    """The ``nn.RNN`` initialisation: U(-1/sqrt(fan_in), 1/sqrt(fan_in))."""
    bound = 1.0 / math.sqrt(fan_in)
    return nn.init.uniform_(tensor, -bound, bound)


# How the recurrent matrices (w, and alpha where there is one) start: "uniform" is nn.RNN's U(±1/sqrt(N));
# "paper" is the Backpropamine authors' code, 0.01 * U[0, 1) (small and all positive).
RECURRENT_INITS = ("uniform", "paper")


def recurrent_init_(tensor: Tensor, fan_in: int, init: str = "uniform") -> Tensor:
    """Fill a recurrent matrix (w or alpha) in place by ``init`` (one of ``RECURRENT_INITS``)."""
    check_choice("init", init, RECURRENT_INITS)
    if init == "paper":
        return nn.init.uniform_(tensor, 0.0, 0.01)
    return uniform_init_(tensor, fan_in)


@register_core("rnn")
class TanhRNN(ProjectedInputCore):
    """Non-plastic Elman RNN::

        h(t) = tanh(W_in x(t) + b + w h(t-1))

    Parameters: ``w_in.weight`` W_in (N, I), ``w_in.bias`` b (N,), ``w`` (N, N) indexed [j, i] (row j
    postsynaptic, column i presynaptic). Parameter count N*I + N + N*N (one bias, unlike ``nn.RNNCell``).
    State: ``{"h": (B, N)}``, zeros at episode start. ``init``: how w starts (``RECURRENT_INITS``).
    """

    def __init__(self, input_size: int, hidden_size: int, init: str = "uniform") -> None:
        super().__init__(input_size, hidden_size)
        self.w = nn.Parameter(recurrent_init_(torch.empty(hidden_size, hidden_size), hidden_size, init))

    def state_shapes(self) -> dict[str, tuple[int, ...]]:
        return {"h": (self.hidden_size,)}

    def advance(self, drive: Tensor, state: State) -> tuple[Tensor, State]:
        h = torch.tanh(torch.addmm(drive, state["h"], self.w.t()))
        return h, {"h": h}


@register_core("lstm")
class LSTMCore(RecurrentCore):
    """Standard LSTM (``torch.nn.LSTM``, one layer) behind the step interface; the output is h::

        i, f, g, o = sigmoid/sigmoid/tanh/sigmoid(W_ih x(t) + b_ih + W_hh h(t-1) + b_hh)   (gate blocks of 4N)
        c(t) = f * c(t-1) + i * g;    h(t) = o * tanh(c(t))

    Parameters: ``lstm.weight_ih_l0`` (4N, I), ``lstm.weight_hh_l0`` (4N, N), ``lstm.bias_ih_l0``,
    ``lstm.bias_hh_l0`` (4N,), the same tensors as ``nn.LSTMCell``. ``unroll`` runs the fused sequence kernel.
    State: ``{"h": (B, N), "c": (B, N)}``, zeros at episode start.
    """

    replays_unroll = True  # acting without autograd, then nn.LSTM's sequence kernel: measured 1.6x at B=30, N=100

    def __init__(self, input_size: int, hidden_size: int) -> None:
        super().__init__(input_size, hidden_size)
        self.lstm = nn.LSTM(input_size, hidden_size)

    def state_shapes(self) -> dict[str, tuple[int, ...]]:
        return {"h": (self.hidden_size,), "c": (self.hidden_size,)}

    def _run(self, xs: Tensor, state: State) -> tuple[Tensor, State]:
        hs, (h, c) = self.lstm(xs, (state["h"].unsqueeze(0), state["c"].unsqueeze(0)))
        return hs, {"h": h.squeeze(0), "c": c.squeeze(0)}

    def step(self, x: Tensor, state: State) -> tuple[Tensor, State]:
        hs, state = self._run(x.unsqueeze(0), state)
        return hs.squeeze(0), state

    def unroll(self, xs: Tensor, state: State) -> tuple[Tensor, State]:
        """Run ``T`` steps: xs (T, B, I) -> hs (T, B, N), final state."""
        self.check_input(xs, state, rank=3)
        return self._run(xs, state)
