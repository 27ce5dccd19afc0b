"""Plain transcriptions of every core's equations: the ground truth of the tests and the speed baseline.

Deliberately straightforward: one Python step per time step, every index written out with ``einsum`` in the
notation of TASKS.md (b batch, j postsynaptic, i presynaptic, k input), the effective weights and the Hebbian
product materialised as full (B, N, N) tensors, ``torch.clamp`` for the clip. No batching tricks, no custom
backward. ``reference_unroll(core, xs, state)`` reads the parameters of a core built by ``make_core`` and must
give the same outputs and final state as ``core.unroll(xs, state)``.
"""

from __future__ import annotations

import torch
from torch import Tensor

from plastic_core.base import RecurrentCore, State
from plastic_core.plastic_rnn import HebbianRNN, ModulatedRNN, PlasticRNN, RetroactiveRNN
from plastic_core.rnn import LSTMCore, TanhRNN


def _clip(trace: Tensor, c: float | None) -> Tensor:
    return trace if c is None else torch.clamp(trace, -c, c)


def _input_drive(core: RecurrentCore, x: Tensor) -> Tensor:
    """sum_k W_in[j, k] x_k + b_j: (B, N)."""
    return torch.einsum("jk,bk->bj", core.w_in.weight, x) + core.w_in.bias


def _modulation(core: ModulatedRNN, h: Tensor) -> Tensor:
    """M_j(t) = tanh(W_mod h(t) + b_mod) [* v_j]: (B, N), one value per postsynaptic neuron j."""
    m = torch.tanh(torch.einsum("oj,bj->bo", core.modulator.weight, h) + core.modulator.bias)  # (B, 1)
    v = core.fanout if core.fanout is not None else torch.ones_like(h[0])
    return torch.einsum("bo,j->bj", m, v)


def _rnn(core: TanhRNN, xs: Tensor, state: State) -> tuple[Tensor, State]:
    h, hs = state["h"], []
    for x in xs:
        h = torch.tanh(_input_drive(core, x) + torch.einsum("ji,bi->bj", core.w, h))
        hs.append(h)
    return torch.stack(hs), {"h": h}


def _lstm(core: LSTMCore, xs: Tensor, state: State) -> tuple[Tensor, State]:
    lstm = core.lstm
    w_ih, w_hh, b_ih, b_hh = lstm.weight_ih_l0, lstm.weight_hh_l0, lstm.bias_ih_l0, lstm.bias_hh_l0
    h, c, hs = state["h"], state["c"], []
    for x in xs:
        gates = torch.einsum("gk,bk->bg", w_ih, x) + b_ih + torch.einsum("gi,bi->bg", w_hh, h) + b_hh
        i, f, g, o = gates.chunk(4, dim=1)  # PyTorch's gate order
        c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
        h = torch.sigmoid(o) * torch.tanh(c)
        hs.append(h)
    return torch.stack(hs), {"h": h, "c": c}


def _plastic(core: HebbianRNN, xs: Tensor, state: State) -> tuple[Tensor, State]:
    n = core.hidden_size
    alpha = core.alpha.expand(n, n)  # per connection, per postsynaptic neuron or one scalar, as (j, i)
    c = core.clip
    h, hebb, elig = state["h"], state["hebb"], state.get("eligibility")
    hs = []
    for x in xs:
        h_prev = h
        weights = core.w + alpha * hebb  # (B, j, i)
        h = torch.tanh(_input_drive(core, x) + torch.einsum("bji,bi->bj", weights, h_prev))
        hebbian = torch.einsum("bj,bi->bji", h, h_prev)  # h_j(t) h_i(t-1)
        if isinstance(core, PlasticRNN):
            eta = core.eta
            if core.rule == "decay":
                hebb = (1 - eta) * hebb + eta * hebbian
            elif core.rule == "oja":
                hebb = hebb + eta * h[:, :, None] * (h_prev[:, None, :] - h[:, :, None] * hebb)
            else:  # "hebb": plain Hebb
                hebb = hebb + eta * hebbian
            hebb = _clip(hebb, c)
        elif isinstance(core, RetroactiveRNN):
            m = _modulation(core, h)
            hebb = _clip(hebb + m[:, :, None] * elig, c)  # Hebb(t+1) uses E(t)
            elig = (1 - core.eta) * elig + core.eta * hebbian
        elif isinstance(core, ModulatedRNN):
            m = _modulation(core, h)
            hebb = _clip(hebb + m[:, :, None] * hebbian, c)
        else:
            raise TypeError(f"no reference transcription for {type(core).__name__}")
        hs.append(h)
    final = {"h": h, "hebb": hebb}
    if elig is not None:
        final["eligibility"] = elig
    return torch.stack(hs), final


def reference_unroll(core: RecurrentCore, xs: Tensor, state: State) -> tuple[Tensor, State]:
    """Unroll ``core`` on xs (T, B, I) from ``state`` by the plain equations: hs (T, B, N), final state."""
    if isinstance(core, TanhRNN):
        return _rnn(core, xs, state)
    if isinstance(core, LSTMCore):
        return _lstm(core, xs, state)
    if isinstance(core, HebbianRNN):
        return _plastic(core, xs, state)
    raise TypeError(f"no reference transcription for {type(core).__name__}")
