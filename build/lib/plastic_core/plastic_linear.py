"""Feed-forward plastic layer (Miconi 2016; plastic output layer of the 2018 Omniglot model).

Each connection k -> j has a fixed weight ``w[j, k]``, a plasticity coefficient ``alpha`` and a per-episode Hebbian
trace ``hebb[b, j, k]`` (row j the postsynaptic output, column k the presynaptic input, as ``nn.Linear``'s weight
and the recurrent cores' traces; one matrix per batch element b)::

    y_j(t) = act( sum_k (w_jk + alpha_jk * Hebb_jk(t)) x_k(t) + b_j )

after which the trace is updated with the presynaptic input x(t) and the postsynaptic output y(t) (or a clamped
target, see ``forward``)::

    decay:  Hebb_jk <- (1 - eta) Hebb_jk + eta y_j x_k                 (running average, 2016: eta is gamma)
    oja:    Hebb_jk <- Hebb_jk + eta y_j (x_k - y_j Hebb_jk)           (Oja's rule, 2018)
    hebb:   Hebb_jk <- Hebb_jk + eta y_j x_k                           (plain Hebb; use with ``clip``)

and, when ``clip`` is set, clipped to [-clip, clip]. w, alpha, b (and eta unless ``learn_eta=False``) are trained by
backpropagation through the episode; the trace is state, reset to zero by ``initial_state``. The options are the
vocabulary of ``plastic_core.rules``.

State dicts saved before the layer took the [post, pre] orientation (version 1: w and alpha (in, out), alpha
(out,) or (1,)) load into it transposed.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor, nn

from plastic_core.base import State, check_choice, check_positive
from plastic_core.hebbian import trace_update
from plastic_core.plastic_rnn import check_clip, check_eta
from plastic_core.rules import ALPHA_KINDS, deprecated, plastic_rule, renamed_options

ACTIVATIONS = ("tanh", "identity", "none", "softmax")


class PlasticLinear(nn.Module):
    """Plastic fully connected layer: x (B, in_features) -> y (B, out_features), trace state (B, out, in).

    Args:
        in_features, out_features: layer sizes.
        rule: trace update, ``"decay"`` (running average), ``"oja"`` or ``"hebb"`` (plain, best with ``clip``).
        alpha: plasticity coefficients one per ``"connection"`` (out, in), per postsynaptic ``"neuron"`` (out, 1)
            or one ``"scalar"`` (1, 1).
        eta_init: initial (or fixed) trace rate: gamma of the 2016 paper, eta of 2018 (``eta=``: deprecated name).
        learn_eta: train eta by backpropagation (True) or keep it fixed (False).
        activation: ``"tanh"``, ``"identity"`` (alias ``"none"``) or ``"softmax"`` (the Omniglot output layer).
        bias: add a trained bias b.
        clip: clip the trace to [-clip, clip] after each update (None: no clipping).

    Parameters: ``w`` (out, in), ``alpha`` (see above), ``bias`` (out,), ``eta`` (scalar; a buffer when not
    learned).
    """

    _version = 2  # 2: w, alpha and the trace [post, pre]; 1: [pre, post] (see _load_from_state_dict)

    def __init__(
        self,
        in_features: int,
        out_features: int,
        rule: str = "decay",
        alpha: str = "connection",
        eta_init: float = 0.1,
        learn_eta: bool = True,
        activation: str | None = "tanh",
        bias: bool = True,
        clip: float | None = None,
        **deprecated_options: Any,
    ) -> None:
        super().__init__()
        eta_init = renamed_options("PlasticLinear", deprecated_options, {"eta": "eta_init"}).get("eta_init", eta_init)
        check_positive(in_features=in_features, out_features=out_features)
        rule = plastic_rule("PlasticLinear", rule)
        check_choice("alpha", alpha, ALPHA_KINDS)
        activation = "identity" if activation is None else activation
        check_choice("activation", activation, ACTIVATIONS)
        self.in_features = in_features
        self.out_features = out_features
        self.rule = rule
        self.alpha_kind = alpha
        self.activation = "identity" if activation == "none" else activation
        self.clip = check_clip(clip, allow_none=True, owner="PlasticLinear")

        bound = 1.0 / math.sqrt(in_features)
        self.w = nn.Parameter(torch.empty(out_features, in_features).uniform_(-bound, bound))
        alpha_shape = {"connection": (out_features, in_features), "neuron": (out_features, 1), "scalar": (1, 1)}[alpha]
        self.alpha = nn.Parameter(torch.empty(alpha_shape).uniform_(-bound, bound))
        self.bias = nn.Parameter(torch.zeros(out_features)) if bias else None
        eta_tensor = torch.tensor(check_eta(eta_init))
        if learn_eta:
            self.eta = nn.Parameter(eta_tensor)
        else:
            self.register_buffer("eta", eta_tensor)

    @property
    def alpha_mode(self) -> str:
        """Deprecated name of ``alpha_kind``."""
        deprecated("PlasticLinear", "alpha_mode", "alpha_kind")
        return self.alpha_kind

    def _load_from_state_dict(self, state_dict: dict[str, Tensor], prefix: str, local_metadata: dict[str, Any],
                              *args: Any) -> None:
        """Version 1 state dicts (w, alpha [pre, post]; alpha (out,) per neuron, (1,) scalar) load transposed.

        The shapes tell the versions apart except for a square per-connection layer, where the saved version
        decides (missing, as in a dict rebuilt without its metadata, counts as the current one)."""
        version = local_metadata.get("version", self._version)
        square = self.in_features == self.out_features
        for name in ("w", "alpha"):
            key = prefix + name
            value = state_dict.get(key)
            if value is None:
                continue
            if value.dim() == 1:  # version 1 alpha per neuron (out,) or scalar (1,)
                state_dict[key] = value.unsqueeze(1)
            elif value.shape == (self.in_features, self.out_features) and (not square or version < 2):
                state_dict[key] = value.t().contiguous()
        super()._load_from_state_dict(state_dict, prefix, local_metadata, *args)

    # -- state ----------------------------------------------------------------------------------------------
    def initial_state(
        self, batch_size: int, device: torch.device | str | None = None, dtype: torch.dtype | None = None
    ) -> State:
        """Episode start: ``{"hebb": zeros (B, out_features, in_features)}`` ([b, post, pre])."""
        check_positive(batch_size=batch_size)
        device = device if device is not None else self.w.device
        dtype = dtype if dtype is not None else self.w.dtype
        return {"hebb": torch.zeros(batch_size, self.out_features, self.in_features, device=device, dtype=dtype)}

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
        expected_shape = (x.shape[-2], self.out_features, self.in_features)
        if tuple(state["hebb"].shape) != expected_shape:
            raise ValueError(
                f"state['hebb'] has shape {tuple(state['hebb'].shape)} but the input batch is {x.shape[-2]}: "
                f"expected {expected_shape} (was the state made for another batch size?)"
            )

    # -- dynamics -------------------------------------------------------------------------------------------
    def output(self, x: Tensor, hebb: Tensor) -> Tensor:
        """y = act((w + alpha * Hebb) x + b): x (B, in), hebb (B, out, in) -> y (B, out). No checks, no update."""
        x_col = x.unsqueeze(2)  # (B, in, 1): sum_k (...)_jk x_k as a batched matrix-vector product
        if self.alpha_kind == "connection":
            plastic = torch.bmm(self.alpha * hebb, x_col).squeeze(2)
        else:  # alpha per postsynaptic neuron or scalar: scale after the product, no (B, out, in) temporary
            plastic = self.alpha.squeeze(1) * torch.bmm(hebb, x_col).squeeze(2)
        pre = torch.addmm(plastic, x, self.w.t())
        if self.bias is not None:
            pre = pre + self.bias
        if self.activation == "tanh":
            return torch.tanh(pre)
        if self.activation == "softmax":
            return torch.softmax(pre, dim=-1)
        return pre

    def update_trace(self, hebb: Tensor, pre: Tensor, post: Tensor) -> Tensor:
        """One trace update with presynaptic ``pre`` (B, in) and postsynaptic ``post`` (B, out) activity: the rule
        of ``plastic_core.hebbian.trace_update``, as in the recurrent cores."""
        return trace_update(self.rule, self.clip, post, pre, hebb, eta=self.eta)[0]

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
            f"alpha={self.alpha_kind!r}, activation={self.activation!r}, bias={self.bias is not None}, "
            f"clip={self.clip}, learn_eta={isinstance(self.eta, nn.Parameter)}"
        )
