"""Feedback and local plasticity (FLP; Lindsey & Litwin-Kumar 2020, "Learning to Learn with Feedback and Local
Plasticity").

A feed-forward network that learns within an episode without derivatives: its forward weights W_l are per-episode
state, changed after each example by a local Oja (or Hebb) rule whose postsynaptic activity is nudged by a learned
feedback projection of the error (or of the target). Layers l = 1..L map n_{l-1} -> n_l units, a_0 = x (B, n_0).

Prediction (``predict``), with the weights of the current state::

    a_l = phi(W_l a_{l-1} + b_l)            l = 1..L-1, phi = ReLU (or tanh)
    y_hat = W_L a_{L-1} + b_L               (regression output, or logits)

One inner-loop step on an example (x, y) (``learn``), from that same forward pass::

    e = y - s(y_hat)                        feedback="error"   (s: identity, or softmax for ``output="softmax"``)
    e = y                                   feedback="target"
    f_l = psi(B_l e)                        feedback to every layer l = 1..L, B_l (n_l, n_L), psi = ReLU (or identity)
    p_l = (1 - beta_l) a_l + beta_l f_l     postsynaptic activity after feedback (a_L = y_hat), beta_l per layer
    oja:  W_l <- W_l + eta_l * (p_l a_{l-1}^T - (p_l * p_l) 1^T * W_l)
    hebb: W_l <- W_l + eta_l * p_l a_{l-1}^T

All layers are updated at once from the one forward pass (the presynaptic activity a_{l-1} is the feed-forward
activity, as in the authors' code). eta_l is per synapse (``eta="connection"``, (n_l, n_{l-1})), per postsynaptic
neuron (``"neuron"``, (n_l, 1)) or one per layer (``"scalar"``), starting at ``eta_init``: the vocabulary of
``plastic_core.rules`` (the older ``rate="synapse" | "neuron" | "layer"`` and ``rate_init=`` still work, with a
``DeprecationWarning``). Meta-learned by backpropagating through the whole inner episode (the outer loop): the
initial weights W_l(0), the biases b_l (not plastic), the feedback matrices B_l, the feedback strengths beta_l and
the rates eta_l. The inner loop itself takes no derivative.

Scale of the inputs: the Oja step multiplies W_l by (1 - eta_l p_l^2) per example, which flips sign and grows once
eta_l p_l^2 > 2, and the Hebbian term grows with |a_{l-1}| |p_l|, so the inner loop diverges within a few dozen
examples when the inputs or targets are several units large (raw sine regression, x and y up to 5: non-finite
weights after 11 examples at the defaults, after 36 with eta_init 0.003). No choice of defaults fixes that;
normalise x and y to about [-1, 1] first (as ``agents.supervised_models`` does for sine). On normalised inputs
the defaults still diverge after ~200 examples with ReLU feedback (a linear output can then only be pushed up);
eta_init 0.003 or feedback_activation="identity" keeps the weights bounded over 400 examples, and keeping the
rates >= 0 during meta-training (a negative Oja rate makes the weights grow exponentially) is the trainer's job.

Memory of the outer loop: backpropagation keeps each layer's weights (B, n_l, n_{l-1}) once per inner step; per-synapse
rates keep one more such tensor (the Hebbian product, for the rates' gradient), per-neuron and per-layer rates do not.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor, nn

from plastic_core.base import State, check_choice, check_positive, check_positive_real
from plastic_core.rules import ALPHA_KINDS, deprecated, renamed_options

FEEDBACKS = ("error", "target")
RULES = ("oja", "hebb")
OLD_RATES = {"synapse": "connection", "neuron": "neuron", "layer": "scalar"}  # deprecated ``rate=`` values
ACTIVATIONS = ("relu", "tanh")
OUTPUTS = ("linear", "softmax")
FEEDBACK_ACTIVATIONS = ("relu", "identity")


def _activate(name: str, z: Tensor) -> Tensor:
    return torch.relu(z) if name == "relu" else (torch.tanh(z) if name == "tanh" else z)


class FLPNetwork(nn.Module):
    """Feed-forward network with learned feedback and local plasticity; weights are state (B, n_l, n_{l-1}).

    Args:
        layer_sizes: [n_0 (inputs), n_1, ..., n_L (outputs)], at least two sizes.
        feedback: send the ``"error"`` y - s(y_hat) or the ``"target"`` y to every layer.
        rule: local rule, ``"oja"`` or ``"hebb"``.
        eta: plasticity rates one per synapse (``"connection"``), per postsynaptic ``"neuron"`` or one per layer
            (``"scalar"``).
        eta_init: initial value of every rate.
        activation: hidden nonlinearity phi, ``"relu"`` or ``"tanh"``.
        output: ``"linear"`` (regression) or ``"softmax"`` (classification: y_hat are logits, the error uses
            softmax(y_hat) and y is one-hot).
        feedback_activation: psi, ``"relu"`` (the paper's default) or ``"identity"``.
        feedback_strength: initial beta_l, the weight of the feedback in the postsynaptic activity.
        error_clip: with ``feedback="error"``, clamp every component of the error to [-error_clip, error_clip]
            (``None``: no clamp). A meta-learned rate that grows past the stable step size makes an episode's
            error oscillate and grow until it is non-finite; with the clamp each update is bounded, so the weights
            can only grow linearly within an episode and the outer loss stays finite (and pushes the rates back).
    """

    def __init__(
        self,
        layer_sizes: Sequence[int],
        feedback: str = "error",
        rule: str = "oja",
        eta: str = "connection",
        eta_init: float = 0.01,
        activation: str = "relu",
        output: str = "linear",
        feedback_activation: str = "relu",
        feedback_strength: float = 0.5,
        error_clip: float | None = None,
        **deprecated_options: Any,
    ) -> None:
        super().__init__()
        old = renamed_options("FLPNetwork", deprecated_options, {"rate": "eta", "rate_init": "eta_init"})
        eta_init = old.get("eta_init", eta_init)
        if "eta" in old:
            check_choice("rate", old["eta"], tuple(OLD_RATES))
            eta = OLD_RATES[old["eta"]]
        if isinstance(layer_sizes, (str, bytes)) or not isinstance(layer_sizes, Sequence) or len(layer_sizes) < 2:
            raise ValueError(
                f"layer_sizes must be a list of at least two sizes [inputs, ..., outputs], got {layer_sizes!r}"
            )
        check_positive(**{f"layer_sizes[{i}]": n for i, n in enumerate(layer_sizes)})
        check_choice("feedback", feedback, FEEDBACKS)
        check_choice("rule", rule, RULES)
        check_choice("eta", eta, ALPHA_KINDS)
        check_choice("activation", activation, ACTIVATIONS)
        check_choice("output", output, OUTPUTS)
        check_choice("feedback_activation", feedback_activation, FEEDBACK_ACTIVATIONS)
        self.layer_sizes = tuple(int(n) for n in layer_sizes)
        self.feedback = feedback
        self.rule = rule
        self.eta_kind = eta
        self.activation = activation
        self.output = output
        self.feedback_activation = feedback_activation
        self.error_clip = None if error_clip is None else check_positive_real("error_clip", error_clip)

        n_out = self.layer_sizes[-1]
        gain = math.sqrt(2.0) if activation == "relu" else 1.0
        self.initial_weights = nn.ParameterList()
        self.biases = nn.ParameterList()
        self.feedback_weights = nn.ParameterList()
        self.rates = nn.ParameterList()
        for n_in, n_post in zip(self.layer_sizes[:-1], self.layer_sizes[1:], strict=True):
            self.initial_weights.append(nn.Parameter(torch.randn(n_post, n_in) * (gain / math.sqrt(n_in))))
            self.biases.append(nn.Parameter(torch.zeros(n_post)))
            self.feedback_weights.append(nn.Parameter(torch.randn(n_post, n_out) * (math.sqrt(2.0 / n_out))))
            rate_shape = {"connection": (n_post, n_in), "neuron": (n_post, 1), "scalar": (1, 1)}[eta]
            self.rates.append(nn.Parameter(torch.full(rate_shape, float(eta_init))))
        self.feedback_strengths = nn.Parameter(torch.full((self.num_layers,), float(feedback_strength)))

    @property
    def rate_mode(self) -> str:
        """Deprecated: ``eta_kind`` ("connection", "neuron", "scalar"), here in the old values."""
        deprecated("FLPNetwork", "rate_mode", "eta_kind")
        return {new: old for old, new in OLD_RATES.items()}[self.eta_kind]

    @property
    def num_layers(self) -> int:
        """L, the number of weight layers."""
        return len(self.layer_sizes) - 1

    @staticmethod
    def weight_key(layer: int) -> str:
        """State key of the weights of layer ``layer`` (0-based): ``"weight_0"`` maps the inputs to n_1."""
        return f"weight_{layer}"

    # -- state ----------------------------------------------------------------------------------------------
    def initial_state(
        self, batch_size: int, device: torch.device | str | None = None, dtype: torch.dtype | None = None
    ) -> State:
        """Episode start: every layer's weights set to the meta-learned W_l(0), one copy per batch element."""
        check_positive(batch_size=batch_size)
        state = {}
        for layer, w0 in enumerate(self.initial_weights):
            w = w0 if device is None and dtype is None else w0.to(device=device, dtype=dtype)
            state[self.weight_key(layer)] = w.unsqueeze(0).expand(batch_size, -1, -1).clone()
        return state

    def check_input(self, x: Tensor, state: State, y: Tensor | None = None) -> None:
        """Raise a clear error when ``x``, ``y`` or ``state`` do not fit this network."""
        if not isinstance(x, Tensor):
            raise TypeError(f"input must be a torch.Tensor, got {type(x).__name__}")
        if x.dim() != 2:
            raise ValueError(f"input must have shape (B, {self.layer_sizes[0]}), got shape {tuple(x.shape)}")
        if x.shape[1] != self.layer_sizes[0]:
            raise ValueError(f"input has {x.shape[1]} features, network expects layer_sizes[0]={self.layer_sizes[0]}")
        if y is not None:
            if not isinstance(y, Tensor):
                raise TypeError(f"target must be a torch.Tensor, got {type(y).__name__}")
            if tuple(y.shape) != (x.shape[0], self.layer_sizes[-1]):
                raise ValueError(
                    f"target must have shape (B, n_out) = {(x.shape[0], self.layer_sizes[-1])}, got {tuple(y.shape)}"
                )
        if not isinstance(state, dict):
            raise TypeError(f"state must be the dict returned by initial_state(), got {type(state).__name__}")
        for layer in range(self.num_layers):
            key = self.weight_key(layer)
            if key not in state:
                raise ValueError(f"state is missing {key!r}; build it with network.initial_state(batch_size)")
            expected = (x.shape[0], self.layer_sizes[layer + 1], self.layer_sizes[layer])
            if tuple(state[key].shape) != expected:
                raise ValueError(
                    f"state[{key!r}] has shape {tuple(state[key].shape)} but the input batch is {x.shape[0]}: "
                    f"expected {expected} (was the state made for another batch size?)"
                )

    # -- inner loop -----------------------------------------------------------------------------------------
    def _activities(self, x: Tensor, state: State) -> list[Tensor]:
        """Forward pass: [a_0 = x, a_1, ..., a_{L-1}, y_hat], each (B, n_l)."""
        activities = [x]
        for layer in range(self.num_layers):
            w = state[self.weight_key(layer)]
            z = torch.baddbmm(self.biases[layer].unsqueeze(-1), w, activities[-1].unsqueeze(-1)).squeeze(-1)
            activities.append(z if layer == self.num_layers - 1 else _activate(self.activation, z))
        return activities

    def _plasticity(self, activities: list[Tensor], y: Tensor, state: State) -> State:
        """The local rule on every layer from one forward pass and the target y (B, n_L)."""
        y_hat = activities[-1]
        if self.feedback == "target":
            signal = y
        else:
            signal = y - (torch.softmax(y_hat, dim=-1) if self.output == "softmax" else y_hat)
            if self.error_clip is not None:
                signal = signal.clamp(-self.error_clip, self.error_clip)
        new_state = dict(state)
        for layer in range(self.num_layers):
            key = self.weight_key(layer)
            w, pre, post_ff = state[key], activities[layer], activities[layer + 1]
            fed_back = _activate(self.feedback_activation, signal @ self.feedback_weights[layer].T)
            beta = self.feedback_strengths[layer]
            post = post_ff + beta * (fed_back - post_ff)  # (1 - beta) a_l + beta f_l
            eta = self.rates[layer]
            if self.eta_kind == "connection":
                hebbian = torch.bmm(post.unsqueeze(2), pre.unsqueeze(1))  # p_l a_{l-1}^T  (B, n_l, n_{l-1})
                if self.rule == "oja":
                    hebbian = hebbian - (post * post).unsqueeze(2) * w
                new_state[key] = w + eta * hebbian
            else:  # rate per neuron or layer: fold it into p_l, so that backprop keeps no (B, n_l, n_{l-1}) product
                eta = eta.squeeze(1)  # (n_l,) or (1,)
                if self.rule == "oja":  # W (1 - eta p^2) + (eta p) a^T
                    w = w * (1 - eta * post * post).unsqueeze(2)
                new_state[key] = torch.baddbmm(w, (eta * post).unsqueeze(2), pre.unsqueeze(1))
        return new_state

    def predict(self, x: Tensor, state: State) -> Tensor:
        """y_hat (B, n_out) for x (B, n_in) under the current weights (no plasticity)."""
        self.check_input(x, state)
        return self._activities(x, state)[-1]

    def forward(self, x: Tensor, state: State) -> Tensor:
        """Same as ``predict``."""
        return self.predict(x, state)

    def learn(self, x: Tensor, y: Tensor, state: State) -> State:
        """One inner-loop plasticity step on the example (x (B, n_in), y (B, n_out)); returns the new state."""
        self.check_input(x, state, y)
        return self._plasticity(self._activities(x, state), y, state)

    def step(self, x: Tensor, y: Tensor, state: State) -> tuple[Tensor, State]:
        """Predict then learn from the same forward pass: (y_hat before the update, new state)."""
        self.check_input(x, state, y)
        activities = self._activities(x, state)
        return activities[-1], self._plasticity(activities, y, state)

    def extra_repr(self) -> str:
        return (
            f"layer_sizes={list(self.layer_sizes)}, feedback={self.feedback!r}, rule={self.rule!r}, "
            f"eta={self.eta_kind!r}, activation={self.activation!r}, output={self.output!r}, "
            f"feedback_activation={self.feedback_activation!r}, error_clip={self.error_clip}"
        )
