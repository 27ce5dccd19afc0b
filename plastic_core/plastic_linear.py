"""Feed-forward plastic layer (Miconi 2016; plastic output layer of the 2018 Omniglot model).

Each connection k -> j has a fixed weight ``w[k, j]``, a plasticity coefficient ``alpha`` and a per-episode Hebbian
trace ``hebb[b, k, j]`` (presynaptic input k, postsynaptic output j, one matrix per batch element b)::

    y_j(t) = act( sum_k (w_kj + alpha_kj * Hebb_kj(t)) x_k(t) + b_j )

after which the trace is updated with the presynaptic input x(t) and the postsynaptic output y(t) (or a clamped
target, see ``forward``)::

    decay:  Hebb_kj <- (1 - eta) Hebb_kj + eta x_k y_j                 (running average, 2016: eta is gamma)
    oja:    Hebb_kj <- Hebb_kj + eta y_j (x_k - y_j Hebb_kj)           (Oja's rule, 2018)
    hebb:   Hebb_kj <- Hebb_kj + eta x_k y_j                           (plain Hebb; use with ``clip``)

and, when ``clip`` is set, clipped to [-clip, clip]. w, alpha, b (and eta unless ``learn_eta=False``) are trained by
backpropagation through the episode; the trace is state, reset to zero by ``initial_state``.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from plastic_core.base import State, check_choice, check_positive
from plastic_core.plastic_rnn import check_clip, clip_fresh_

RULES = ("decay", "oja", "hebb")
ALPHAS = ("connection", "neuron", "scalar")
ACTIVATIONS = ("tanh", "identity", "none", "softmax")


class PlasticLinear(nn.Module):
    """Plastic fully connected layer: x (B, in_features) -> y (B, out_features), trace state (B, in, out).

    Args:
        in_features, out_features: layer sizes.
        rule: trace update, ``"decay"`` (running average), ``"oja"`` or ``"hebb"`` (plain, best with ``clip``).
        alpha: plasticity coefficients one per ``"connection"`` (in, out), per postsynaptic ``"neuron"`` (out,) or
            one ``"scalar"``.
        eta: initial (or fixed) trace rate: gamma of the 2016 paper, eta of 2018.
        learn_eta: train eta by backpropagation (True) or keep it fixed (False).
        activation: ``"tanh"``, ``"identity"`` (alias ``"none"``) or ``"softmax"`` (the Omniglot output layer).
        bias: add a trained bias b.
        clip: clip the trace to [-clip, clip] after each update (None: no clipping).
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        rule: str = "decay",
        alpha: str = "connection",
        eta: float = 0.1,
        learn_eta: bool = True,
        activation: str | None = "tanh",
        bias: bool = True,
        clip: float | None = None,
    ) -> None:
        super().__init__()
        check_positive(in_features=in_features, out_features=out_features)
        check_choice("rule", rule, RULES)
        check_choice("alpha", alpha, ALPHAS)
        activation = "identity" if activation is None else activation
        check_choice("activation", activation, ACTIVATIONS)
        self.in_features = in_features
        self.out_features = out_features
        self.rule = rule
        self.alpha_mode = alpha
        self.activation = "identity" if activation == "none" else activation
        self.clip = check_clip(clip, allow_none=True, owner="PlasticLinear")

        bound = 1.0 / math.sqrt(in_features)
        self.w = nn.Parameter(torch.empty(in_features, out_features).uniform_(-bound, bound))
        alpha_shape = {"connection": (in_features, out_features), "neuron": (out_features,), "scalar": (1,)}[alpha]
        self.alpha = nn.Parameter(torch.empty(alpha_shape).uniform_(-bound, bound))
        self.bias = nn.Parameter(torch.zeros(out_features)) if bias else None
        eta_tensor = torch.tensor(float(eta))
        if learn_eta:
            self.eta = nn.Parameter(eta_tensor)
        else:
            self.register_buffer("eta", eta_tensor)

    # -- state ----------------------------------------------------------------------------------------------
    def initial_state(
        self, batch_size: int, device: torch.device | str | None = None, dtype: torch.dtype | None = None
    ) -> State:
        """Episode start: ``{"hebb": zeros (B, in_features, out_features)}``."""
        check_positive(batch_size=batch_size)
        device = device if device is not None else self.w.device
        dtype = dtype if dtype is not None else self.w.dtype
        return {"hebb": torch.zeros(batch_size, self.in_features, self.out_features, device=device, dtype=dtype)}

    def check_input(self, x: Tensor, state: State, rank: int = 2) -> None:
        """Raise a clear error when ``x`` or ``state`` do not fit this layer."""
        if not isinstance(x, Tensor):
            raise TypeError(f"input must be a torch.Tensor, got {type(x).__name__}")
        expected = "(B, in_features)" if rank == 2 else "(T, B, in_features)"
        if x.dim() != rank:
            raise ValueError(f"input must have shape {expected}, got rank {x.dim()} shape {tuple(x.shape)}")
        if x.shape[-1] != self.in_features:
            raise ValueError(
                f"input has {x.shape[-1]} features in its last dimension, layer expects in_features={self.in_features}"
            )
        if not isinstance(state, dict):
            raise TypeError(f"state must be the dict returned by initial_state(), got {type(state).__name__}")
        if "hebb" not in state:
            raise ValueError("state is missing 'hebb'; build it with layer.initial_state(batch_size)")
        expected_shape = (x.shape[-2], self.in_features, self.out_features)
        if tuple(state["hebb"].shape) != expected_shape:
            raise ValueError(
                f"state['hebb'] has shape {tuple(state['hebb'].shape)} but the input batch is {x.shape[-2]}: "
                f"expected {expected_shape} (was the state made for another batch size?)"
            )

    # -- dynamics -------------------------------------------------------------------------------------------
    def output(self, x: Tensor, hebb: Tensor) -> Tensor:
        """y = act(x (w + alpha * Hebb) + b): x (B, in), hebb (B, in, out) -> y (B, out). No checks, no update."""
        pre = x @ self.w
        if self.alpha_mode == "connection":
            pre = pre + torch.bmm(x.unsqueeze(1), self.alpha * hebb).squeeze(1)
        else:  # alpha per postsynaptic neuron or scalar: scale after the product, no (B, in, out) temporary
            pre = pre + self.alpha * torch.bmm(x.unsqueeze(1), hebb).squeeze(1)
        if self.bias is not None:
            pre = pre + self.bias
        if self.activation == "tanh":
            return torch.tanh(pre)
        if self.activation == "softmax":
            return torch.softmax(pre, dim=-1)
        return pre

    def update_trace(self, hebb: Tensor, pre: Tensor, post: Tensor) -> Tensor:
        """One trace update with presynaptic ``pre`` (B, in) and postsynaptic ``post`` (B, out) activity."""
        eta = self.eta
        outer_left, outer_right = pre.unsqueeze(2), (eta * post).unsqueeze(1)  # outer product eta * x y^T
        if self.rule == "decay":
            hebb = torch.baddbmm((1 - eta) * hebb, outer_left, outer_right)
        elif self.rule == "oja":  # Hebb + eta y_j (x_k - y_j Hebb_kj) = Hebb (1 - eta y_j^2) + eta x_k y_j
            hebb = torch.baddbmm(hebb * (1 - eta * post * post).unsqueeze(1), outer_left, outer_right)
        else:
            hebb = torch.baddbmm(hebb, outer_left, outer_right)
        if self.clip is not None:
            hebb = clip_fresh_(hebb, self.clip)  # in place on the fresh update; saves no extra (B, in, out) tensor
        return hebb

    def forward(self, x: Tensor, state: State, target: Tensor | None = None) -> tuple[Tensor, State]:
        """One step: x (B, in_features) -> y (B, out_features), new state.

        With ``target`` (B, out_features) the postsynaptic activity in the trace update is clamped to the target,
        as the 2018 Omniglot model does with the label on the output during the shown steps; the returned ``y`` is
        still the layer's own output (before the update), so that a loss can be taken on it.
        """
        self.check_input(x, state)
        if target is not None:
            if not isinstance(target, Tensor):
                raise TypeError(f"target must be a torch.Tensor or None, got {type(target).__name__}")
            if tuple(target.shape) != (x.shape[0], self.out_features):
                raise ValueError(
                    f"target must have shape (B, out_features) = {(x.shape[0], self.out_features)}, "
                    f"got {tuple(target.shape)}"
                )
        hebb = state["hebb"]
        y = self.output(x, hebb)
        hebb = self.update_trace(hebb, x, y if target is None else target)
        return y, {**state, "hebb": hebb}

    def unroll(self, xs: Tensor, state: State) -> tuple[Tensor, State]:
        """Run ``T`` steps: xs (T, B, in_features) -> ys (T, B, out_features), final state."""
        self.check_input(xs, state, rank=3)
        hebb, ys = state["hebb"], []
        for x in xs:
            y = self.output(x, hebb)
            hebb = self.update_trace(hebb, x, y)
            ys.append(y)
        return torch.stack(ys), {**state, "hebb": hebb}

    def extra_repr(self) -> str:
        return (
            f"in_features={self.in_features}, out_features={self.out_features}, rule={self.rule!r}, "
            f"alpha={self.alpha_mode!r}, activation={self.activation!r}, bias={self.bias is not None}, "
            f"clip={self.clip}, learn_eta={isinstance(self.eta, nn.Parameter)}"
        )
