"""Neuromodulated plastic LSTM (Backpropamine 2019, language-model experiment).

A standard LSTM in which only the hidden -> cell-candidate path is plastic. With h(t-1) (B, N), c(t-1) (B, N) and the
per-episode trace Hebb (B, N, N), indexed ``hebb[b, j, i]`` (row j the postsynaptic cell candidate, column i the
presynaptic hidden unit, as the other recurrent cores and ``nn.Linear``; the paper's code stores the transpose)::

    i(t) = sigmoid(W_xi x + U_i h(t-1) + b_i)        f(t), o(t) likewise
    g_j(t) = tanh( (W_xg x)_j + sum_i (w_ji + alpha_ji Hebb_ji) h_i(t-1) + b_g,j )
    c(t) = f(t) * c(t-1) + i(t) * g(t)
    h(t) = o(t) * tanh(c(t))
    M(t) = tanh(W_mod h(t))                            (B, 1): one neuromodulatory signal per batch element
    M_j(t) = M(t) v_j                                  ``modulation="fanout"``: fanned out per neuron by a trained
                                                       vector v (``fanout``); ``"scalar"``: M_j(t) = M(t)
    Hebb_ji <- clip(Hebb_ji + M_j(t) g_j(t) h_i(t-1), -clip, clip)     (clip 2 in the paper)

``modulation=None`` gives the non-modulated variant: M_j(t) = eta, one trace rate (starting at ``eta_init``,
trained unless ``learn_eta=False``). alpha is one per postsynaptic neuron by default (``alpha="neuron"``), or one
per ``"connection"``, or one ``"scalar"``. The state is ``{"h", "c", "hebb"}``, all zeros at episode start. The
options are the vocabulary of ``plastic_core.rules``; the older ``neuromodulation=`` / ``fanout=`` (bools) and
``eta=`` still work, with a ``DeprecationWarning``.

Backpropagation keeps one (B, N, N) tensor per step (the trace itself: the clip saves its output, not its input);
per-connection alpha keeps a second one (alpha * Hebb).
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor, nn

from plastic_core.base import RecurrentCore, State, check_choice
from plastic_core.hebbian import trace_update
from plastic_core.plastic_rnn import check_clip, check_eta
from plastic_core.registry import register_core
from plastic_core.rules import ALPHA_KINDS, MODULATION_KINDS, deprecated, renamed_options


@register_core("plastic_lstm")
class PlasticLSTMCore(RecurrentCore):
    """LSTM with a (neuromodulated) plastic hidden -> cell-candidate path: x (B, input_size) -> h (B, hidden_size).

    Args:
        input_size, hidden_size: layer sizes.
        alpha: plasticity coefficients per postsynaptic ``"neuron"`` (N, 1), per ``"connection"`` (N, N) [j, i] or
            one ``"scalar"`` (1, 1).
        modulation: trace increments gated by M(t) = tanh(W_mod h(t)) fanned out per neuron (``"fanout"``) or
            the one scalar for every neuron (``"scalar"``); ``None``: by a fixed-in-time rate eta.
        clip: the trace is clipped to [-clip, clip] (None: no clipping).
        eta_init: trace rate of the non-modulated variant; learn_eta: train it.
    """

    _version = 2  # 2: the fan-out vector is ``fanout`` (1: ``mod_fanout``)

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        alpha: str = "neuron",
        modulation: str | None = "fanout",
        clip: float | None = 2.0,
        eta_init: float = 0.1,
        learn_eta: bool = True,
        **deprecated_options: Any,
    ) -> None:
        super().__init__(input_size, hidden_size)
        bools = {name: deprecated_options.pop(name) for name in ("neuromodulation", "fanout")
                 if name in deprecated_options}
        eta_init = renamed_options("PlasticLSTMCore", deprecated_options, {"eta": "eta_init"}).get("eta_init", eta_init)
        if bools:  # the old pair of bools (defaults True, True) -> modulation
            modulation = (None if not bools.get("neuromodulation", True)
                          else "fanout" if bools.get("fanout", True) else "scalar")
            deprecated("PlasticLSTMCore", " / ".join(f"{name}=" for name in bools), f"modulation={modulation!r}")
        check_choice("alpha", alpha, ALPHA_KINDS)
        if modulation is not None:
            check_choice("modulation", modulation, MODULATION_KINDS)
        n = hidden_size
        self.alpha_kind = alpha
        self.modulation_kind = modulation
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
        if modulation is not None:
            self.modulator = nn.Linear(n, 1, bias=False)  # W_mod
            nn.init.uniform_(self.modulator.weight, -bound, bound)
            self.fanout = nn.Parameter(torch.ones(n)) if modulation == "fanout" else None
        else:
            eta_tensor = torch.tensor(check_eta(eta_init))
            if learn_eta:
                self.eta = nn.Parameter(eta_tensor)
            else:
                self.register_buffer("eta", eta_tensor)

    def _load_from_state_dict(self, state_dict: dict[str, Tensor], prefix: str, local_metadata: dict[str, Any],
                              *args: Any) -> None:
        """State dicts of version 1 named the fan-out vector ``mod_fanout``; it is ``fanout``, as in the cores."""
        if prefix + "mod_fanout" in state_dict:
            state_dict[prefix + "fanout"] = state_dict.pop(prefix + "mod_fanout")
        super()._load_from_state_dict(state_dict, prefix, local_metadata, *args)

    @property
    def alpha_mode(self) -> str:
        """Deprecated name of ``alpha_kind``."""
        deprecated("PlasticLSTMCore", "alpha_mode", "alpha_kind")
        return self.alpha_kind

    @property
    def neuromodulation(self) -> bool:
        """Deprecated: ``modulation_kind is not None``."""
        deprecated("PlasticLSTMCore", "neuromodulation", "modulation_kind")
        return self.modulation_kind is not None

    def state_shapes(self) -> dict[str, tuple[int, ...]]:
        n = self.hidden_size
        return {"h": (n,), "c": (n,), "hebb": (n, n)}

    def modulation(self, h: Tensor) -> Tensor:
        """M(t) from the new hidden state h (B, N): (B, N) fanned out, (B, 1) scalar, or eta (non-modulated)."""
        if self.modulation_kind is None:
            return self.eta
        m = torch.tanh(self.modulator(h))
        return m * self.fanout if self.fanout is not None else m

    def step(self, x: Tensor, state: State) -> tuple[Tensor, State]:
        n = self.hidden_size
        h_prev, c_prev, hebb = state["h"], state["c"], state["hebb"]
        from_input = self.input_weights(x)  # (B, 4N)
        gates = torch.sigmoid(torch.addmm(from_input[:, : 3 * n], h_prev, self.recurrent_weights.t()))
        in_gate, forget_gate, out_gate = gates.split(n, dim=1)
        h_col = h_prev.unsqueeze(2)  # (B, N, 1): sum_i (...)_ji h_i as a batched matrix-vector product
        if self.alpha_kind == "connection":
            plastic = torch.bmm(self.alpha * hebb, h_col).squeeze(2)
        else:  # alpha per postsynaptic neuron or scalar: scale after the product, no (B, N, N) temporary
            plastic = self.alpha.squeeze(1) * torch.bmm(hebb, h_col).squeeze(2)
        g = torch.tanh(torch.addmm(from_input[:, 3 * n :], h_prev, self.w.t()) + plastic)
        c = forget_gate * c_prev + in_gate * g
        h = out_gate * torch.tanh(c)
        # Hebb_ji += M_j g_j(t) h_i(t-1) (the "modulated" rule), or eta g_j(t) h_i(t-1) (plain "hebb")
        if self.modulation_kind is None:
            hebb, _ = trace_update("hebb", self.clip, g, h_prev, hebb, eta=self.eta)
        else:
            hebb, _ = trace_update("modulated", self.clip, g, h_prev, hebb, modulation=self.modulation(h))
        return h, {**state, "h": h, "c": c, "hebb": hebb}

    def extra_repr(self) -> str:
        return (
            f"{super().extra_repr()}, alpha={self.alpha_kind!r}, modulation={self.modulation_kind!r}, "
            f"clip={self.clip}"
        )
