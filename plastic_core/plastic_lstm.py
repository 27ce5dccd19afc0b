"""Neuromodulated plastic LSTM (Backpropamine 2019, language-model experiment).

A standard LSTM in which only the hidden -> cell-candidate path is plastic. With h(t-1) (B, N), c(t-1) (B, N) and the
per-episode trace Hebb (B, N, N), indexed ``hebb[b, j, i]`` (row j the postsynaptic cell candidate, column i the
presynaptic hidden unit, as the other recurrent cores and ``nn.Linear``; the paper's code stores the transpose)::

    i(t) = sigmoid(W_xi x + U_i h(t-1) + b_i)        f(t), o(t) likewise
    g_j(t) = tanh( (W_xg x)_j + sum_i (w_ji + alpha_ji Hebb_ji) h_i(t-1) + b_g,j )
    c(t) = f(t) * c(t-1) + i(t) * g(t)
    h(t) = o(t) * tanh(c(t))
    M(t) = tanh(W_mod h(t))                            (B, 1): one neuromodulatory signal per batch element
    M_j(t) = M(t) v_j                                  fanned out per neuron by a trained vector v (``fanout``)
    Hebb_ji <- clip(Hebb_ji + M_j(t) g_j(t) h_i(t-1), -clip, clip)     (clip 2 in the paper)

``neuromodulation=False`` gives the non-modulated variant: M_j(t) = eta, one trace rate (trained unless
``learn_eta=False``). alpha is one per postsynaptic neuron by default (``alpha="neuron"``), or one per
``"connection"``, or one ``"scalar"``. The state is ``{"h", "c", "hebb"}``, all zeros at episode start.

Backpropagation keeps one (B, N, N) tensor per step (the trace itself: the clip saves its output, not its input);
per-connection alpha keeps a second one (alpha * Hebb).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from plastic_core.base import RecurrentCore, State, check_choice
from plastic_core.plastic_rnn import check_clip, clip_fresh_
from plastic_core.registry import register_core

ALPHAS = ("neuron", "connection", "scalar")


@register_core("plastic_lstm")
class PlasticLSTMCore(RecurrentCore):
    """LSTM with a (neuromodulated) plastic hidden -> cell-candidate path: x (B, input_size) -> h (B, hidden_size).

    Args:
        input_size, hidden_size: layer sizes.
        alpha: plasticity coefficients per postsynaptic ``"neuron"`` (N, 1), per ``"connection"`` (N, N) [j, i] or
            one ``"scalar"`` (1, 1).
        neuromodulation: trace increments gated by M(t) = tanh(W_mod h(t)) (True) or by a fixed-in-time eta.
        fanout: multiply M(t) by a trained per-neuron vector (True) or use the one scalar for every neuron.
        clip: the trace is clipped to [-clip, clip] (None: no clipping).
        eta: trace rate of the non-modulated variant; learn_eta: train it.
    """

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        alpha: str = "neuron",
        neuromodulation: bool = True,
        fanout: bool = True,
        clip: float | None = 2.0,
        eta: float = 0.1,
        learn_eta: bool = True,
    ) -> None:
        super().__init__(input_size, hidden_size)
        check_choice("alpha", alpha, ALPHAS)
        n = hidden_size
        self.alpha_mode = alpha
        self.neuromodulation = bool(neuromodulation)
        self.fanout = bool(fanout)
        self.clip = check_clip(clip, allow_none=True, owner="PlasticLSTMCore")

        bound = 1.0 / math.sqrt(n)
        # input -> gates, in the order (input i, forget f, output o, cell candidate g); the bias holds b_i..b_g
        self.input_weights = nn.Linear(input_size, 4 * n)
        nn.init.uniform_(self.input_weights.weight, -bound, bound)
        nn.init.uniform_(self.input_weights.bias, -bound, bound)
        self.recurrent_weights = nn.Parameter(torch.empty(3 * n, n).uniform_(-bound, bound))  # h -> (i, f, o)
        self.w = nn.Parameter(torch.empty(n, n).uniform_(-bound, bound))  # fixed part of h -> g, [j, i]
        alpha_shape = {"connection": (n, n), "neuron": (n, 1), "scalar": (1, 1)}[alpha]
        self.alpha = nn.Parameter(torch.empty(alpha_shape).uniform_(-bound, bound))
        if self.neuromodulation:
            self.modulator = nn.Linear(n, 1, bias=False)  # W_mod
            nn.init.uniform_(self.modulator.weight, -bound, bound)
            self.mod_fanout = nn.Parameter(torch.ones(n)) if self.fanout else None
        else:
            eta_tensor = torch.tensor(float(eta))
            if learn_eta:
                self.eta = nn.Parameter(eta_tensor)
            else:
                self.register_buffer("eta", eta_tensor)

    def state_shapes(self) -> dict[str, tuple[int, ...]]:
        n = self.hidden_size
        return {"h": (n,), "c": (n,), "hebb": (n, n)}

    def modulation(self, h: Tensor) -> Tensor:
        """M(t) from the new hidden state h (B, N): (B, N) fanned out, (B, 1) scalar, or eta (non-modulated)."""
        if not self.neuromodulation:
            return self.eta
        m = torch.tanh(self.modulator(h))
        return m * self.mod_fanout if self.mod_fanout is not None else m

    def step(self, x: Tensor, state: State) -> tuple[Tensor, State]:
        n = self.hidden_size
        h_prev, c_prev, hebb = state["h"], state["c"], state["hebb"]
        from_input = self.input_weights(x)  # (B, 4N)
        gates = torch.sigmoid(torch.addmm(from_input[:, : 3 * n], h_prev, self.recurrent_weights.t()))
        in_gate, forget_gate, out_gate = gates.split(n, dim=1)
        h_col = h_prev.unsqueeze(2)  # (B, N, 1): sum_i (...)_ji h_i as a batched matrix-vector product
        if self.alpha_mode == "connection":
            plastic = torch.bmm(self.alpha * hebb, h_col).squeeze(2)
        else:  # alpha per postsynaptic neuron or scalar: scale after the product, no (B, N, N) temporary
            plastic = self.alpha.squeeze(1) * torch.bmm(hebb, h_col).squeeze(2)
        g = torch.tanh(torch.addmm(from_input[:, 3 * n :], h_prev, self.w.t()) + plastic)
        c = forget_gate * c_prev + in_gate * g
        h = out_gate * torch.tanh(c)
        # Hebb_ji += M_j g_j(t) h_i(t-1): one fused batched outer product
        hebb = torch.baddbmm(hebb, (self.modulation(h) * g).unsqueeze(2), h_prev.unsqueeze(1))
        if self.clip is not None:
            hebb = clip_fresh_(hebb, self.clip)  # in place on the fresh update; saves no extra (B, N, N) tensor
        return h, {**state, "h": h, "c": c, "hebb": hebb}

    def extra_repr(self) -> str:
        return (
            f"{super().extra_repr()}, alpha={self.alpha_mode!r}, neuromodulation={self.neuromodulation}, "
            f"fanout={self.fanout}, clip={self.clip}"
        )
