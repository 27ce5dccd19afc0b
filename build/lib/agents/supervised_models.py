"""The networks of the supervised tasks (TASKS.md section 3), chosen by name per task.

Every model maps a whole batch of episodes to outputs, ``outputs = model(inputs)``: inputs (T, B, obs_dim) ->
outputs (T, B, output_dim), the per-episode plastic state starting from zero (or from the meta-learned initial
weights) at step 0. Outputs are what the env scores: values for the squared-error tasks, logits for the
cross-entropy ones. After each optimizer step the trainer calls ``model.after_update()`` (projections such as
alpha >= 0).

| task (env)                                | models                      | default |
| ----------------------------------------- | --------------------------- | ------- |
| PatternCompletion (2016)                  | plastic, rnn, lstm          | plastic |
| OneShotAssociation, ReversalAssociation   | plastic, rnn, lstm          | plastic |
| PatternMemory, ImageReconstruction (2018) | plastic, rnn, lstm          | plastic |
| OmniglotOneShot (2018)                    | plastic, lstm               | plastic |
| ContinualSine (2020)                      | flp, online-sgd, oml, rnn, lstm | flp |
| ContinualOmniglot (2020)                  | flp, online-sgd, lstm       | flp     |

Build one with :func:`build_model` (``name``, the env's task, keyword arguments of the model).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

import plastic_core  # noqa: F401  (registers the rnn, lstm and plastic cores)
from envs.supervised.association import AssociationTask
from envs.supervised.base import SupervisedTask
from envs.supervised.continual_omniglot import ContinualOmniglotTask
from envs.supervised.continual_sine import ContinualSineTask
from envs.supervised.image_reconstruction import ImageReconstructionTask
from envs.supervised.omniglot_one_shot import OmniglotOneShotTask
from envs.supervised.pattern_completion import PatternCompletionTask
from envs.supervised.pattern_memory import PatternMemoryTask
from plastic_core import State, make_core
from plastic_core.flp import FLPNetwork
from plastic_core.plastic_linear import PlasticLinear
from plastic_core.plastic_rnn import PlasticRNN


class SupervisedModel(nn.Module):
    """Base of the task networks: ``forward(inputs (T, B, obs)) -> outputs (T, B, out)``."""

    def forward(self, inputs: Tensor) -> Tensor:
        raise NotImplementedError

    def after_update(self) -> None:
        """Called by the trainer after every optimizer step (no-op unless a model constrains its parameters)."""


def check_episode_input(inputs: Tensor, obs_dim: int) -> None:
    if not isinstance(inputs, Tensor):
        raise TypeError(f"inputs must be a torch.Tensor, got {type(inputs).__name__}")
    if inputs.dim() != 3 or inputs.shape[-1] != obs_dim:
        raise ValueError(f"inputs must have shape (T, B, {obs_dim}), got {tuple(inputs.shape)}")


# -- 2016: feed-forward plastic layer ------------------------------------------------------------------------------
class Plastic2016Net(SupervisedModel):
    """The 2016 feed-forward plastic network (Miconi 2016, "backpropagation of Hebbian plasticity").

    The input layer is clamped to the step's input x(t); a plastic layer (``PlasticLinear``, decay rule) computes
    ``y = tanh((w + alpha * Hebb) x + b)`` and then updates ``Hebb_jk <- (1 - gamma) Hebb_jk + gamma y_j x_k``, so
    a step sees the earlier steps only through the Hebbian traces. Pattern completion: the plastic layer is the
    output (``hidden=None``, N = 8 -> 8, gamma 0.5). Association: 10 -> 2 plastic tanh units -> 2 logits through
    fixed (trained, non-plastic) weights, gamma 0.02.

    ``nonnegative_alpha`` projects alpha onto alpha >= 0 after every update (the paper's reversal ablation,
    "clipping plasticity coefficients to positive values").
    """

    def __init__(self, n_in: int, n_out: int, hidden: int | None = None, gamma: float = 0.5,
                 learn_gamma: bool = False, nonnegative_alpha: bool = False) -> None:
        super().__init__()
        self.n_in = n_in
        self.plastic = PlasticLinear(n_in, hidden or n_out, rule="decay", alpha="connection", eta_init=gamma,
                                     learn_eta=learn_gamma, activation="tanh")
        self.readout = nn.Linear(hidden, n_out) if hidden else None
        self.nonnegative_alpha = bool(nonnegative_alpha)
        self.after_update()

    def forward(self, inputs: Tensor) -> Tensor:
        check_episode_input(inputs, self.n_in)
        ys, _ = self.plastic.unroll(inputs, self.plastic.initial_state(inputs.shape[1]))
        return ys if self.readout is None else self.readout(ys)

    def after_update(self) -> None:
        if self.nonnegative_alpha:
            with torch.no_grad():
                self.plastic.alpha.clamp_(min=0.0)


# -- recurrent baselines ---------------------------------------------------------------------------------------------
class RecurrentReadout(SupervisedModel):
    """Any ``plastic_core`` core (``rnn``, ``lstm``...) unrolled over the episode, then a linear readout.

    ``encoder`` (optional) maps the image part of the observation to features first: obs = [image, rest] with
    ``image_size**2`` pixels; the core then sees [features, rest].
    """

    def __init__(self, core: str, n_in: int, n_out: int, hidden: int = 64, encoder: ConvEncoder | None = None,
                 **core_kwargs: Any) -> None:
        super().__init__()
        self.n_in = n_in
        self.encoder = encoder
        core_in = n_in if encoder is None else encoder.out_features + n_in - encoder.n_pixels
        self.core = make_core(core, core_in, hidden, **core_kwargs)
        self.readout = nn.Linear(hidden, n_out)

    def forward(self, inputs: Tensor) -> Tensor:
        check_episode_input(inputs, self.n_in)
        if self.encoder is not None:
            pixels = self.encoder.n_pixels
            inputs = torch.cat([self.encoder(inputs[..., :pixels]), inputs[..., pixels:]], dim=-1)
        hs, _ = self.core.unroll(inputs, self.core.initial_state(inputs.shape[1]))
        return self.readout(hs)


# -- 2018: fully recurrent plastic network whose neurons are the data -----------------------------------------------
INPUT_MODES = ("add", "clamp")


class ClampedPlasticRNN(PlasticRNN):
    """Fully recurrent plastic network of N = size + 1 neurons (the last one a bias neuron), no input weights.

    Neuron j < size receives input x_j(t); the bias neuron receives 1. With ``input_mode="add"`` (binary pattern
    memorisation, 2018) the input is added, scaled by ``input_scale`` (20)::

        h(t) = tanh((w + alpha * Hebb) h(t-1) + input_scale * [x(t), 1])

    With ``"clamp"`` (image reconstruction) a neuron whose input is non-zero is set to it, the others run freely:
    ``h_j(t) = x_j(t) if x_j(t) != 0 else tanh(((w + alpha * Hebb) h(t-1))_j)``. Hebb follows the core's rule
    (decay by default: ``Hebb <- (1 - eta) Hebb + eta h_j(t) h_i(t-1)``). Parameters: w, alpha, eta only
    (2 N^2 + 1 with per-connection alpha: 2,004,003 for 1000 bits, as in the paper).

    ``w_init``: bound of the uniform initialisation of the fixed weights w; ``None`` keeps ``nn.RNN``'s
    1/sqrt(N), 0 starts them at zero. The memorisation network starts at zero (its builder's default): there
    recall is the Hebbian term's job, and random fixed weights only add noise to it (1000 bits, 800 episodes at
    lr 3e-3: bit error 1.3% from zero against 1.9% from 1/sqrt(N); zeroing a trained network's w after training
    took it from 3.3% to 0.3% on the missing bits; ``results/supervised.md``).
    """

    def __init__(self, size: int, input_mode: str = "add", input_scale: float = 20.0, rule: str = "decay",
                 alpha: str = "connection", eta_init: float = 0.01, clip: float | None = 1.0,
                 w_init: float | None = None) -> None:
        if input_mode not in INPUT_MODES:
            raise ValueError(f"unknown input_mode {input_mode!r}; expected one of {', '.join(map(repr, INPUT_MODES))}")
        if w_init is not None and (isinstance(w_init, bool) or not isinstance(w_init, (int, float))
                                   or not math.isfinite(w_init) or w_init < 0):
            raise ValueError(f"w_init must be None or a finite number >= 0, got {w_init!r}")
        super().__init__(size, size + 1, rule=rule, alpha=alpha, clip=clip, eta_init=eta_init)
        if w_init is not None:
            with torch.no_grad():
                self.w.uniform_(-w_init, w_init)
        del self.w_in  # inputs enter unweighted
        self.input_mode = input_mode
        self.input_scale = float(input_scale)

    def input_drive(self, xs: Tensor) -> tuple[Tensor, Tensor | None]:
        """``"add"``: the drive input_scale * [x, 1], no clamp. ``"clamp"``: no drive, and the neurons whose input
        is non-zero clamped to it (NaN elsewhere: free). xs (..., size) -> (..., size + 1) each."""
        external = F.pad(xs, (0, 1), value=1.0)  # the input, then the bias neuron's 1
        if self.input_mode == "add":
            return self.input_scale * external, None
        return torch.zeros_like(external), torch.where(external != 0, external, torch.full_like(external, math.nan))

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, input_mode={self.input_mode!r}, input_scale={self.input_scale}"


class ClampedPlasticNet(SupervisedModel):
    """The 2018 memorisation network: outputs are the activities of the data neurons (T, B, size)."""

    def __init__(self, size: int, **core_kwargs: Any) -> None:
        super().__init__()
        self.size = size
        self.core = ClampedPlasticRNN(size, **core_kwargs)

    def forward(self, inputs: Tensor) -> Tensor:
        check_episode_input(inputs, self.size)
        hs, _ = self.core.unroll(inputs, self.core.initial_state(inputs.shape[1]))
        return hs[..., : self.size]


# -- 2018: Omniglot -----------------------------------------------------------------------------------------------
class ConvEncoder(nn.Module):
    """``n_layers`` 3x3 convolutions, stride 2, ``channels`` channels, ReLU: flattened S x S images (..., S*S) ->
    features (..., out_features). 31 x 31 -> 15 -> 7 -> 3 -> 1: 64 features. He (Kaiming) initialisation: with
    PyTorch's default the features of 4 layers start ~50x smaller than the pixels, and the plastic layer, whose
    Hebbian term is quadratic in them, then gives no learning signal."""

    def __init__(self, image_size: int, channels: int = 64, n_layers: int = 4) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        size, c_in = image_size, 1
        for _ in range(n_layers):
            size = (size - 3) // 2 + 1
            if size < 1:
                raise ValueError(f"images of {image_size}x{image_size} are too small for {n_layers} stride-2 3x3 convs")
            conv = nn.Conv2d(c_in, channels, kernel_size=3, stride=2)
            nn.init.kaiming_normal_(conv.weight, nonlinearity="relu")  # keeps the activity's scale through layers
            nn.init.zeros_(conv.bias)
            layers += [conv, nn.ReLU()]
            c_in = channels
        self.net = nn.Sequential(*layers)
        self.image_size = image_size
        self.n_pixels = image_size * image_size
        self.out_features = channels * size * size

    def forward(self, pixels: Tensor) -> Tensor:
        lead = pixels.shape[:-1]
        images = pixels.reshape(-1, 1, self.image_size, self.image_size)
        return self.net(images).reshape(*lead, self.out_features)


class PlasticOmniglotNet(SupervisedModel):
    """Miconi et al. 2018 Omniglot model: conv encoder -> plastic output layer (features x n_way, Oja rule).

    Each step's image goes through the encoder (all steps at once); the output layer gives logits
    ``(w + alpha * Hebb) f``. On labelled steps the output neurons are clamped to the label for the trace update
    (``Hebb_jk <- Hebb_jk + eta y_j (f_k - y_j Hebb_jk)`` with y the label one-hot), so each class's row
    imprints its drawing; on unlabelled steps y is the softmax of the network's own logits.
    """

    def __init__(self, image_size: int, n_way: int, channels: int = 64, rule: str = "oja",
                 alpha: str = "connection", eta_init: float = 0.1) -> None:
        super().__init__()
        self.encoder = ConvEncoder(image_size, channels)
        self.n_way = n_way
        self.plastic = PlasticLinear(self.encoder.out_features, n_way, rule=rule, alpha=alpha, eta_init=eta_init,
                                     activation="identity", bias=False)

    def forward(self, inputs: Tensor) -> Tensor:
        pixels = self.encoder.n_pixels
        check_episode_input(inputs, pixels + self.n_way)
        features = self.encoder(inputs[..., :pixels])  # (T, B, F)
        labels = inputs[..., pixels:]  # (T, B, n_way), all zero on the test step
        hebb = self.plastic.initial_state(inputs.shape[1])["hebb"]
        outputs = []
        for f, label in zip(features, labels, strict=True):
            logits = self.plastic.output(f, hebb)
            labelled = label.sum(-1, keepdim=True) > 0
            post = torch.where(labelled, label, torch.softmax(logits, dim=-1))
            hebb = self.plastic.update_trace(hebb, f, post)
            outputs.append(logits)
        return torch.stack(outputs)


# -- 2020: learning within the episode from (x, y) pairs ----------------------------------------------------------
class OnlineSGDNetwork(nn.Module):
    """The online-SGD baseline: an MLP whose weights are per-episode state, updated by one plain SGD step on each
    learning example, starting from meta-learned initial weights.

    Same interface as ``FLPNetwork`` (``initial_state``, ``predict``, ``step``). The SGD gradient of the step's
    loss (squared error summed over outputs, or softmax cross-entropy on logits) is computed by hand (backprop
    through the ReLU MLP), so the outer loop can backpropagate through the inner updates (second order, as
    MAML) without nested autograd. Meta-learned: initial weights and biases, one SGD step size per layer.
    """

    def __init__(self, layer_sizes: Sequence[int], loss: str = "squared_error", lr_init: float = 0.01) -> None:
        super().__init__()
        if len(layer_sizes) < 2:
            raise ValueError(f"layer_sizes must hold at least [inputs, outputs], got {list(layer_sizes)}")
        if loss not in ("squared_error", "cross_entropy"):
            raise ValueError(f"unknown loss {loss!r}")
        if not lr_init > 0:
            raise ValueError(f"lr_init must be > 0, got {lr_init!r}")
        self.layer_sizes = tuple(int(n) for n in layer_sizes)
        self.loss = loss
        self.initial_weights = nn.ParameterList()
        self.initial_biases = nn.ParameterList()
        for n_in, n_out in zip(self.layer_sizes[:-1], self.layer_sizes[1:], strict=True):
            self.initial_weights.append(nn.Parameter(torch.randn(n_out, n_in) * math.sqrt(2.0 / n_in)))
            self.initial_biases.append(nn.Parameter(torch.zeros(n_out)))
        self.log_lrs = nn.Parameter(torch.full((len(self.initial_weights),), math.log(lr_init)))

    def initial_state(self, batch_size: int) -> State:
        state = {}
        for layer, (w, b) in enumerate(zip(self.initial_weights, self.initial_biases, strict=True)):
            state[f"weight_{layer}"] = w.expand(batch_size, -1, -1)
            state[f"bias_{layer}"] = b.expand(batch_size, -1)
        return state

    def _forward(self, x: Tensor, state: State) -> tuple[list[Tensor], list[Tensor]]:
        """Activities [a_0 = x, ..., a_{L-1}] (inputs of each layer) and pre-activations [z_1, ..., z_L]."""
        activities, pre = [x], []
        n_layers = len(self.initial_weights)
        for layer in range(n_layers):
            z = torch.baddbmm(state[f"bias_{layer}"].unsqueeze(2), state[f"weight_{layer}"],
                              activities[-1].unsqueeze(2)).squeeze(2)
            pre.append(z)
            if layer < n_layers - 1:
                activities.append(torch.relu(z))
        return activities, pre

    def predict(self, x: Tensor, state: State) -> Tensor:
        return self._forward(x, state)[1][-1]

    def step(self, x: Tensor, y: Tensor, state: State) -> tuple[Tensor, State]:
        """Predict on x (B, n_in), then one SGD step on the loss against y (B, n_out): (y_hat, new state)."""
        activities, pre = self._forward(x, state)
        y_hat = pre[-1]
        grad = 2.0 * (y_hat - y) if self.loss == "squared_error" else torch.softmax(y_hat, dim=-1) - y
        lrs = self.log_lrs.exp()
        new_state = dict(state)
        for layer in reversed(range(len(self.initial_weights))):
            w = state[f"weight_{layer}"]
            grad_w = torch.bmm(grad.unsqueeze(2), activities[layer].unsqueeze(1))  # (B, n_out, n_in)
            new_state[f"weight_{layer}"] = w - lrs[layer] * grad_w
            new_state[f"bias_{layer}"] = state[f"bias_{layer}"] - lrs[layer] * grad
            if layer > 0:
                grad = torch.bmm(grad.unsqueeze(1), w).squeeze(1) * (pre[layer - 1] > 0)
        return y_hat, new_state


class InnerLoopNet(SupervisedModel):
    """Runs a within-episode learner (FLP or online SGD) over a continual-learning episode.

    The observation holds the forward input x (first ``n_x`` values; images when ``encoder`` is set), then the
    target y (``n_y`` values, zero on query steps), then, with ``flag=True``, a learning-step flag. On learning
    steps the learner predicts and then learns from (x, y); on query steps it only predicts. ``encoder`` (meta-learned,
    fixed within the episode) maps x to the learner's input: the conv encoder for Omniglot, or an MLP
    representation (OML-style). ``x_scale`` (n_x,) and ``y_scale`` are fixed normalisations: the learner sees
    ``x * x_scale`` and ``y / y_scale`` and the model outputs ``y_scale * y_hat`` (regression targets of a few
    units would otherwise make the Hebbian updates blow up at initialisation).
    """

    def __init__(self, learner: nn.Module, n_x: int, n_y: int, flag: bool, encoder: nn.Module | None = None,
                 x_scale: Sequence[float] | None = None, y_scale: float = 1.0) -> None:
        super().__init__()
        self.learner = learner
        self.encoder = encoder
        self.n_x, self.n_y, self.flag = n_x, n_y, flag
        scale = torch.ones(n_x) if x_scale is None else torch.as_tensor(x_scale, dtype=torch.float32)
        if scale.shape != (n_x,):
            raise ValueError(f"x_scale must have {n_x} values, got shape {tuple(scale.shape)}")
        self.register_buffer("x_scale", scale)
        self.y_scale = float(y_scale)

    def forward(self, inputs: Tensor) -> Tensor:
        check_episode_input(inputs, self.n_x + self.n_y + int(self.flag))
        x = inputs[..., : self.n_x] * self.x_scale
        y = inputs[..., self.n_x: self.n_x + self.n_y]
        learn = inputs[..., -1] > 0.5 if self.flag else y.abs().sum(-1) > 0  # (T, B)
        y = y / self.y_scale
        if self.encoder is not None:
            x = self.encoder(x)
        state = self.learner.initial_state(inputs.shape[1])
        outputs = []
        for t in range(inputs.shape[0]):
            if not learn[t].any():
                outputs.append(self.learner.predict(x[t], state))
                continue
            y_hat, new_state = self.learner.step(x[t], y[t], state)
            if not learn[t].all():  # some episodes learn at this step, the others only answer
                learning = learn[t]
                new_state = {k: torch.where(learning.view(-1, *[1] * (v.dim() - 1)), v, state[k])
                             for k, v in new_state.items()}
            outputs.append(y_hat)
            state = new_state
        return torch.stack(outputs) * self.y_scale

    def after_update(self) -> None:
        """Keep FLP's plasticity rates >= 0 and its feedback strengths in [0, 1]: a negative Oja rate makes the
        weights grow exponentially within the episode (a NaN loss after a few hundred steps)."""
        if isinstance(self.learner, FLPNetwork):
            with torch.no_grad():
                for rate in self.learner.rates:
                    rate.clamp_(min=0.0)
                self.learner.feedback_strengths.clamp_(0.0, 1.0)


def mlp(sizes: Sequence[int]) -> nn.Sequential:
    """ReLU MLP through ``sizes`` (ReLU after every layer: a representation)."""
    layers: list[nn.Module] = []
    for n_in, n_out in zip(sizes[:-1], sizes[1:], strict=True):
        layers += [nn.Linear(n_in, n_out), nn.ReLU()]
    return nn.Sequential(*layers)


# -- the registry -----------------------------------------------------------------------------------------------
Builder = Callable[..., SupervisedModel]


def _recurrent(core: str, default_hidden: Callable[[SupervisedTask], int]) -> Builder:
    def build(task: SupervisedTask, hidden: int | None = None, **core_kwargs: Any) -> SupervisedModel:
        return RecurrentReadout(core, task.obs_dim, task.output_dim, hidden or default_hidden(task), **core_kwargs)

    return build


def _encoded_recurrent(core: str) -> Builder:
    def build(task: SupervisedTask, hidden: int = 128, channels: int = 64, **core_kwargs: Any) -> SupervisedModel:
        encoder = ConvEncoder(task.image_size, channels)
        return RecurrentReadout(core, task.obs_dim, task.output_dim, hidden, encoder=encoder, **core_kwargs)

    return build


def _completion_plastic(task: PatternCompletionTask, gamma: float = 0.5, learn_gamma: bool = False,
                        nonnegative_alpha: bool = False) -> SupervisedModel:
    return Plastic2016Net(task.obs_dim, task.output_dim, None, gamma, learn_gamma, nonnegative_alpha)


def _association_plastic(task: AssociationTask, hidden: int = 2, gamma: float = 0.02, learn_gamma: bool = False,
                         nonnegative_alpha: bool = False) -> SupervisedModel:
    return Plastic2016Net(task.obs_dim, task.output_dim, hidden, gamma, learn_gamma, nonnegative_alpha)


def _memory_plastic(input_mode: str, **defaults: Any) -> Builder:
    def build(task: SupervisedTask, **kwargs: Any) -> SupervisedModel:
        return ClampedPlasticNet(task.obs_dim, **{"input_mode": input_mode, **defaults, **kwargs})

    return build


def _omniglot_plastic(task: OmniglotOneShotTask, **kwargs: Any) -> SupervisedModel:
    return PlasticOmniglotNet(task.image_size, task.n_way, **kwargs)


def _sine_scales(task: ContinualSineTask) -> dict[str, Any]:
    """Normalise x (function id one-hot, x) and y to about [-1, 1] for the inner learner."""
    x_max = max(abs(v) for v in task.x_range) or 1.0
    y_max = max(abs(v) for v in task.amplitude_range) or 1.0
    return {"x_scale": [1.0] * task.n_functions + [1.0 / x_max], "y_scale": y_max}


class UnitNorm(nn.Module):
    """Scales every feature vector (..., F) to the Euclidean norm ``norm`` (fixed)."""

    def __init__(self, norm: float = 1.0) -> None:
        super().__init__()
        if not norm > 0:
            raise ValueError(f"feature norm must be > 0, got {norm!r}")
        self.norm = float(norm)

    def forward(self, features: Tensor) -> Tensor:
        return self.norm * F.normalize(features, dim=-1)


def _sine_flp(task: ContinualSineTask, representation: Sequence[int] = (40, 40), hidden: Sequence[int] = (40,),
              rule: str = "hebb", eta_init: float = 0.003, feedback_activation: str = "identity",
              feedback_strength: float = 1.0, feature_norm: float | None = 2.0, error_clip: float | None = 2.0,
              **flp_kwargs: Any) -> SupervisedModel:
    """A meta-learned ReLU ``representation`` of (function id one-hot, x) that the inner loop does not change,
    scaled to norm ``feature_norm``, then FLP (plastic ``hidden`` layers and output): OML's split, as in the FLP
    paper's comparison with OML.

    Without the fixed norm one seed of 6 diverged (iid ordering, after 5200 episodes at lr 3e-3: the inner
    weights went from ~1 to NaN within 10 examples of one episode as the meta-learned rates grew); with norm 1 or
    2 the same seed trains through 16k episodes (MSE 0.149 and 0.125). The Omniglot builder fixes the norm too.

    The feedback strength starts at 1: the postsynaptic activity while learning is the fed-back error alone, so
    the rule starts as a delta rule, without the self-reinforcing Hebbian part (1 - beta) a_l. Starting at 0.5, the
    paper's 10-function episode (400 learning steps) gave non-finite outputs in the very first batch, and 5
    functions learned more slowly (MSE 0.54 against 0.35 after 3200 episodes).

    ``representation=()`` makes the whole net plastic: with hidden (40, 40) and Oja's rule (the first defaults)
    that learns far less (5 functions, 16k episodes at lr 3e-3, continual: MSE 1.51 and 0.93 on two seeds, NaN on
    the third, against 0.05-0.15 for this model; ``results/supervised_2020.md``).
    """
    n_x = task.n_functions + 1  # function id one-hot, x
    encoder = mlp([n_x, *representation]) if representation else None
    if encoder is not None and feature_norm is not None:
        encoder.append(UnitNorm(feature_norm))
    n_in = representation[-1] if representation else n_x
    flp = FLPNetwork([n_in, *hidden, 1], rule=rule, eta_init=eta_init, feedback_activation=feedback_activation,
                     feedback_strength=feedback_strength, error_clip=error_clip, **flp_kwargs)
    return InnerLoopNet(flp, n_x, 1, flag=True, encoder=encoder, **_sine_scales(task))


def _sine_sgd(task: ContinualSineTask, hidden: Sequence[int] = (40, 40), representation: Sequence[int] = (),
              lr_init: float = 0.03) -> SupervisedModel:
    n_x = task.n_functions + 1
    encoder = mlp([n_x, *representation]) if representation else None
    n_in = representation[-1] if representation else n_x
    learner = OnlineSGDNetwork([n_in, *hidden, 1], "squared_error", lr_init)
    return InnerLoopNet(learner, n_x, 1, flag=True, encoder=encoder, **_sine_scales(task))


def _sine_oml(task: ContinualSineTask, representation: Sequence[int] = (40, 40), hidden: Sequence[int] = (40,),
              lr_init: float = 0.03) -> SupervisedModel:
    return _sine_sgd(task, hidden, representation, lr_init)


def _omniglot_flp(task: ContinualOmniglotTask, hidden: Sequence[int] = (), channels: int = 64,
                  rule: str = "hebb", eta_init: float = 0.3, feedback_activation: str = "identity",
                  feature_norm: float = 2.0, **flp_kwargs: Any) -> SupervisedModel:
    """Conv encoder -> features scaled to norm ``feature_norm`` -> FLP (Hebbian rule by default).

    The output layer's feedback starts as the identity (each output unit is nudged by its own class's error) and
    the rates at 0.3: with FLP's defaults (random ReLU feedback, rates 0.01) an episode of 15 examples moves the
    logits by ~0.1, the outer loop gets no signal and test accuracy stays at chance. Features of fixed norm keep
    the inner loop stable: with raw ReLU features the meta-learned encoder grows them until it diverges (a NaN
    loss after ~450 episodes in one of 3 seeds, Oja's rule). Oja's decay term, W (1 - eta p^2), also shrinks the
    other classes' weights at every example; the Hebbian rule does not, and learns more (5 classes x 3 shots,
    4000 episodes, continual accuracy; one seed: norm 1 0.62 against Oja's 0.53, norm 10 chance; 3 seeds at norm
    2: 0.738, against online SGD's 0.718: results/supervised_2020.md).
    """
    encoder = nn.Sequential(ConvEncoder(task.image_size, channels), UnitNorm(feature_norm))
    encoder.n_pixels, encoder.out_features = encoder[0].n_pixels, encoder[0].out_features
    flp = FLPNetwork([encoder.out_features, *hidden, task.n_classes], output="softmax", rule=rule,
                     eta_init=eta_init, feedback_activation=feedback_activation, **flp_kwargs)
    with torch.no_grad():
        flp.feedback_weights[-1].copy_(torch.eye(task.n_classes))
    return InnerLoopNet(flp, encoder.n_pixels, task.n_classes, flag=False, encoder=encoder)


def _omniglot_sgd(task: ContinualOmniglotTask, hidden: Sequence[int] = (), channels: int = 64,
                  lr_init: float = 0.1) -> SupervisedModel:
    encoder = ConvEncoder(task.image_size, channels)
    learner = OnlineSGDNetwork([encoder.out_features, *hidden, task.n_classes], "cross_entropy", lr_init)
    return InnerLoopNet(learner, encoder.n_pixels, task.n_classes, flag=False, encoder=encoder)


def _small_hidden(task: SupervisedTask) -> int:
    return 32


def _data_hidden(task: SupervisedTask) -> int:
    return task.obs_dim + 1  # as many neurons as the plastic network


def _sine_hidden(task: SupervisedTask) -> int:
    return 64


_BASELINES: dict[str, Builder] = {"rnn": _recurrent("rnn", _small_hidden), "lstm": _recurrent("lstm", _small_hidden)}

# (task class, {model name: builder}); the first name is the default
MODELS: list[tuple[type[SupervisedTask], dict[str, Builder]]] = [
    (PatternCompletionTask, {"plastic": _completion_plastic, **_BASELINES}),
    (AssociationTask, {"plastic": _association_plastic, **_BASELINES}),
    (PatternMemoryTask, {"plastic": _memory_plastic("add", w_init=0.0), "rnn": _recurrent("rnn", _data_hidden),
                         "lstm": _recurrent("lstm", _data_hidden)}),
    (ImageReconstructionTask, {"plastic": _memory_plastic("clamp"), "rnn": _recurrent("rnn", _data_hidden),
                               "lstm": _recurrent("lstm", _data_hidden)}),
    (OmniglotOneShotTask, {"plastic": _omniglot_plastic, "lstm": _encoded_recurrent("lstm")}),
    (ContinualSineTask, {"flp": _sine_flp, "online-sgd": _sine_sgd, "oml": _sine_oml,
                         "rnn": _recurrent("rnn", _sine_hidden), "lstm": _recurrent("lstm", _sine_hidden)}),
    (ContinualOmniglotTask, {"flp": _omniglot_flp, "online-sgd": _omniglot_sgd, "lstm": _encoded_recurrent("lstm")}),
]


def models_for(task: SupervisedTask) -> dict[str, Builder]:
    """The models that fit ``task`` (name -> builder; the first is the default)."""
    for task_class, builders in MODELS:
        if isinstance(task, task_class):
            return builders
    raise ValueError(f"no supervised models for task {type(task).__name__}")


def model_names(task: SupervisedTask) -> list[str]:
    return list(models_for(task))


def default_model(task: SupervisedTask) -> str:
    return model_names(task)[0]


def all_model_names() -> list[str]:
    return sorted({name for _, builders in MODELS for name in builders})


def build_model(name: str, task: SupervisedTask, **kwargs: Any) -> SupervisedModel:
    """The model ``name`` for ``task`` (an env's ``.task``), with its keyword arguments ``kwargs``.

    Raises ``ValueError`` for an unknown name, a model that does not fit the task, or bad keyword arguments.
    """
    builders = models_for(task)
    if name not in builders:
        task_name = type(task).__name__.removesuffix("Task")
        if name not in all_model_names():
            raise ValueError(f"unknown model {name!r}; models for {task_name}: {', '.join(builders)}")
        raise ValueError(
            f"model {name!r} does not fit the {task_name} task; models for {task_name}: {', '.join(builders)}"
        )
    try:
        return builders[name](task, **kwargs)
    except TypeError as error:
        raise ValueError(f"bad model kwargs {kwargs!r} for model {name!r}: {error}") from None
