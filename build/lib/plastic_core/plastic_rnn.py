"""Plastic recurrent cores: differentiable Hebbian plasticity (2016/2018) and neuromodulation (Backpropamine 2019).

Every core here computes, with B batch, I ``input_size``, N ``hidden_size``::

    h_j(t) = tanh( sum_k W_in[j, k] x_k(t) + b_j + sum_i (w[j, i] + alpha[j, i] * Hebb[b, j, i]) h_i(t-1) )

Index convention (as ``nn.Linear`` and TASKS.md): **row j is the postsynaptic neuron, column i the presynaptic
one**, for ``w``, ``alpha`` and the per-episode traces ``Hebb`` and ``E`` (state shape (B, N, N), ``hebb[b, j, i]``).
Some implementations (the Backpropamine code among them) store the transpose, presynaptic first; the equations are
the same. After h(t) is computed, the trace is updated with the Hebbian product ``h_j(t) h_i(t-1)``:

    ========================  =========================================================================
    core / rule               update
    ========================  =========================================================================
    plastic, rule="decay"     Hebb <- (1 - eta) Hebb + eta h_j(t) h_i(t-1)                  (2016, 2018)
    plastic, rule="oja"       Hebb <- Hebb + eta h_j(t) (h_i(t-1) - h_j(t) Hebb)                 (2018)
    plastic, rule="hebb"      Hebb <- clip(Hebb + eta h_j(t) h_i(t-1), -c, c)       (2019 non-modulated)
    modulated                 Hebb <- clip(Hebb + M_j(t) h_j(t) h_i(t-1), -c, c)                 (2019)
    retroactive               Hebb <- clip(Hebb + M_j(t) E(t), -c, c)                            (2019)
                              E(t+1) = (1 - eta) E(t) + eta h_j(t) h_i(t-1)
    ========================  =========================================================================

The "decay" and "oja" results are also clipped to [-c, c] unless ``clip=None`` (see ``PlasticRNN``). Here
M(t) = tanh(W_mod h(t) + b_mod) is one scalar per batch element (``modulation="scalar"``, M_j = M) or fanned
out per postsynaptic neuron (``modulation="fanout"``, M_j = M * v_j with a trained vector v). eta is one trained
scalar. The retroactive rule follows the paper's indices: the modulation at step t gates the eligibility trace
accumulated *before* this step's Hebbian product, which then enters E.

Each rule is written once, in ``plastic_core.hebbian.trace_update``, which these cores, ``PlasticLinear``,
``PlasticLSTMCore`` and the fused recurrence's eager kernels all call. The implementation is batched
(``bmm``/``baddbmm``, no loop over batch elements) and keeps for backward only the per-step traces themselves: the
clip saves its own output (the next trace) instead of its input, and the product with per-connection alpha
recomputes ``w + alpha * Hebb`` in backward instead of storing it. ``reference.py`` holds
a plain transcription of the same equations that the tests compare against.
"""

from __future__ import annotations

import math
from numbers import Real

import torch
from torch import Tensor, nn
from torch.autograd.function import once_differentiable

from plastic_core import fused as fused_recurrence  # the module (``fused`` is also an attribute)
from plastic_core.base import State, check_choice, check_positive_real
from plastic_core.hebbian import trace_update
from plastic_core.registry import register_core
from plastic_core.rnn import ProjectedInputCore, recurrent_init_
from plastic_core.rules import ALPHA_KINDS, MODULATION_KINDS, Rule, plastic_rule


# -- batched kernels with lean backward ------------------------------------------------------------------------
class _PlasticMatvec(torch.autograd.Function):
    """``drive + (w + alpha * hebb) @ h_prev``, batched, without storing ``w + alpha * hebb`` for backward."""

    @staticmethod
    def forward(ctx, drive: Tensor, h_prev: Tensor, w: Tensor, alpha: Tensor, hebb: Tensor) -> Tensor:
        w_eff = torch.addcmul(w, alpha, hebb)  # (B, N, N), [b, j, i]
        ctx.save_for_backward(h_prev, w, alpha, hebb)
        return torch.baddbmm(drive.unsqueeze(2), w_eff, h_prev.unsqueeze(2)).squeeze(2)

    @staticmethod
    @once_differentiable
    def backward(ctx, grad: Tensor) -> tuple[Tensor | None, ...]:
        h_prev, w, alpha, hebb = ctx.saved_tensors
        need_drive, need_h, need_w, need_alpha, need_hebb = ctx.needs_input_grad
        grad_drive = grad if need_drive else None
        grad_h = grad_w = grad_alpha = grad_hebb = None
        if need_h:  # sum_j g_j (w + alpha * hebb)[j, i]
            grad_h = torch.bmm(grad.unsqueeze(1), torch.addcmul(w, alpha, hebb)).squeeze(1)
        if need_w:
            grad_w = grad.t() @ h_prev
        if need_alpha or need_hebb:
            outer = torch.bmm(grad.unsqueeze(2), h_prev.unsqueeze(1))  # g_j h_i, (B, N, N)
            if need_hebb:
                grad_hebb = outer * alpha
            if need_alpha:  # outer is not needed any more: reuse it
                grad_alpha = outer.mul_(hebb).sum(0).sum_to_size(alpha.shape)
        return grad_drive, grad_h, grad_w, grad_alpha, grad_hebb


# -- option checks ----------------------------------------------------------------------------------------------
def check_clip(clip: float | None, allow_none: bool, owner: str) -> float | None:
    """Validate the trace bound c: a positive finite number (``None`` = unbounded, only where ``allow_none``)."""
    if clip is None:
        if allow_none:
            return None
        raise ValueError(f"clip=None is not allowed for {owner}: its rule clips the trace; give a positive number")
    return check_positive_real("clip", clip)


def check_eta(eta_init: float) -> float:
    """Validate the initial plasticity rate: a finite real number."""
    if isinstance(eta_init, bool) or not isinstance(eta_init, Real) or not math.isfinite(eta_init):
        raise ValueError(f"eta_init must be a finite number, got {eta_init!r}")
    return float(eta_init)


# -- cores ------------------------------------------------------------------------------------------------------
# The methods that say what a step computes: a subclass that overrides one of them is not fused (``fusable``).
_RULE_METHODS = ("step", "advance", "preactivation", "update_traces", "modulation", "state_shapes", "_rule_kind")


class HebbianRNN(ProjectedInputCore):
    """Shared part of the plastic cores: the plastic recurrent product and the trace bound.

    ``h(t) = tanh(W_in x(t) + b + (w + alpha * Hebb) h(t-1))``; subclasses define ``update_traces``.

    Parameters: ``w_in`` (``nn.Linear``: W_in (N, I), b (N,)), ``w`` (N, N) and ``alpha`` of shape (N, N) for
    ``alpha="connection"``, (N, 1) for ``"neuron"`` (one per postsynaptic neuron j) or (1, 1) for ``"scalar"``;
    both indexed [j, i] (row postsynaptic). State: ``h`` (B, N) and ``hebb`` (B, N, N), zeros at episode start.
    ``init``: how w and alpha start, "uniform" (U(±1/sqrt(N)), default) or "paper" (0.01 U[0, 1), the
    Backpropamine code).
    """

    fused = True  # step and unroll through plastic_core.fused; False: the per-step autograd graph of ``advance``
    # Whether a class redefines what a step computes (a method of _RULE_METHODS), decided when the class is made:
    # the built-in cores declare their rule (``class PlasticRNN(HebbianRNN, defines_rule=True)``), any other
    # subclass that overrides one of these runs its own step instead of the fused kernels.
    rule_overridden = False

    def __init_subclass__(cls, defines_rule: bool = False, **kwargs) -> None:
        super().__init_subclass__(**kwargs)
        if not defines_rule and any(name in vars(cls) for name in _RULE_METHODS):
            cls.rule_overridden = True

    def __init__(self, input_size: int, hidden_size: int, alpha: str = "connection", clip: float | None = 1.0,
                 allow_unclipped: bool = False, init: str = "uniform") -> None:
        super().__init__(input_size, hidden_size)
        check_choice("alpha", alpha, ALPHA_KINDS)
        self.alpha_kind = alpha
        self.clip = check_clip(clip, allow_unclipped, f"the {type(self).__name__} core")
        n = hidden_size
        alpha_shape = {"connection": (n, n), "neuron": (n, 1), "scalar": (1, 1)}[alpha]
        self.w = nn.Parameter(recurrent_init_(torch.empty(n, n), n, init))
        self.alpha = nn.Parameter(recurrent_init_(torch.empty(alpha_shape), n, init))

    def state_shapes(self) -> dict[str, tuple[int, ...]]:
        n = self.hidden_size
        return {"h": (n,), "hebb": (n, n)}

    def preactivation(self, drive: Tensor, h_prev: Tensor, hebb: Tensor) -> Tensor:
        """``drive + (w + alpha * hebb) h_prev``: (B, N)."""
        if self.alpha_kind == "connection":
            return _PlasticMatvec.apply(drive, h_prev, self.w, self.alpha, hebb)
        # alpha constant along i: (alpha * Hebb) h = alpha_j (Hebb h)_j, no (B, N, N) temporary
        fixed = torch.addmm(drive, h_prev, self.w.t())
        return torch.addcmul(fixed, self.alpha.view(-1), torch.bmm(hebb, h_prev.unsqueeze(2)).squeeze(2))

    def update_traces(self, h_prev: Tensor, h: Tensor, state: State) -> State:
        """New plastic state (``hebb`` and any other trace) from h(t-1) (B, N), h(t) (B, N) and the old state."""
        raise NotImplementedError

    def input_drive(self, xs: Tensor) -> tuple[Tensor, Tensor | None]:
        """What inputs xs (..., I) do to the neurons: the drive added to the recurrent input (..., N), and the
        clamped activities (..., N; NaN where a neuron runs free) or None when no neuron is clamped.

        ``W_in x + b`` and no clamp here. A subclass that feeds its inputs otherwise overrides this alone: ``step``,
        ``unroll`` and the fused path all take the inputs through it.
        """
        return self.w_in(xs), None

    def advance(self, drive: Tensor, state: State, clamp: Tensor | None = None) -> tuple[Tensor, State]:
        """One step given the drive (B, N) and, optionally, clamped activities (B, N; NaN = free neuron)."""
        h_prev = state["h"]
        h = torch.tanh(self.preactivation(drive, h_prev, state["hebb"]))
        if clamp is not None:
            h = torch.where(torch.isnan(clamp), h, clamp)
        return h, {"h": h, **self.update_traces(h_prev, h, state)}

    def step(self, x: Tensor, state: State) -> tuple[Tensor, State]:
        """One step on x (B, I): the fused recurrence with T = 1 (the kernels ``unroll`` runs), or, for a core
        that is not ``fusable()``, ``advance``'s per-step autograd graph; the same results either way."""
        drive, clamp = self.input_drive(x)
        if self.fusable():
            hs, state = fused_recurrence.fused_unroll(self, drive.unsqueeze(0), state,
                                                      clamps=None if clamp is None else clamp.unsqueeze(0))
            return hs[0], state
        return self.advance(drive, state, clamp)

    def unroll(self, xs: Tensor, state: State) -> tuple[Tensor, State]:
        """Run ``T`` steps: xs (T, B, I) -> hs (T, B, N), final state.

        With ``fused`` (the default) the whole sequence is one autograd node (``plastic_core.fused``): in-place
        traces, checkpoints instead of every step's traces, analytic backward; same results as stepping.
        """
        self.check_input(xs, state, rank=3)
        if xs.shape[0] == 0:
            raise ValueError("xs must have at least one time step, got shape (0, ...)")
        drives, clamps = self.input_drive(xs)
        if self.fusable():
            return fused_recurrence.fused_unroll(self, drives, state, clamps=clamps)
        hs = []
        for t, drive in enumerate(drives):
            h, state = self.advance(drive, state, None if clamps is None else clamps[t])
            hs.append(h)
        return torch.stack(hs), state

    @property
    def plasticity_rule(self) -> Rule:
        """What this core computes (``plastic_core.rules.Rule``): what the fused recurrence and kernels read."""
        return Rule(self._rule_kind(), self.alpha_kind, self.clip, getattr(self, "fanout", None) is not None)

    def _rule_kind(self) -> str:
        raise NotImplementedError

    def fusable(self) -> bool:
        """Whether the fused recurrence computes what ``advance`` computes: ``fused`` set, and neither the class
        (``rule_overridden``) nor the instance (a patched ``step``) replaces a method of the rule. A class may
        override ``input_drive``, as ``agents.supervised_models.ClampedPlasticRNN`` does: the fused path takes its
        inputs through it too."""
        return self.fused and not self.rule_overridden and not any(name in vars(self) for name in _RULE_METHODS)

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, alpha={self.alpha_kind!r}, clip={self.clip}"


@register_core("plastic")
class PlasticRNN(HebbianRNN, defines_rule=True):
    """Non-modulated plastic RNN (differentiable plasticity, Miconi et al. 2016/2018; 2019 "non-modulated")::

        h(t)  = tanh(W_in x(t) + b + (w + alpha * Hebb(t)) h(t-1))
        rule="decay":  Hebb(t+1) = (1 - eta) Hebb(t) + eta h_j(t) h_i(t-1)           (running average)
        rule="oja":    Hebb(t+1) = Hebb(t) + eta h_j(t) (h_i(t-1) - h_j(t) Hebb(t))
        rule="hebb":   Hebb(t+1) = clip(Hebb(t) + eta h_j(t) h_i(t-1), -c, c)          (plain Hebb, clipped)

    Hebb is indexed [b, j, i]: row j postsynaptic, column i presynaptic. eta is one trained scalar (``eta``,
    initialised to ``eta_init``; ``rule="clip"`` is the deprecated name of "hebb"). For "decay" and "oja" the
    result is also clipped to [-c, c] unless ``clip=None``: with 0 < eta < 1 the decay trace never leaves [-1, 1],
    so the default c = 1 only guards against a learned eta leaving that range (and against Oja's fixed points
    h_i/h_j when h_j is small).

    Parameters: as ``HebbianRNN`` plus ``eta`` (scalar). State: ``h`` (B, N), ``hebb`` (B, N, N).
    """

    def __init__(self, input_size: int, hidden_size: int, rule: str = "decay", alpha: str = "connection",
                 clip: float | None = 1.0, eta_init: float = 0.1, init: str = "uniform") -> None:
        rule = plastic_rule("the plastic core", rule)
        super().__init__(input_size, hidden_size, alpha=alpha, clip=clip, allow_unclipped=rule != "hebb", init=init)
        self.rule = rule
        self.eta = nn.Parameter(torch.tensor(check_eta(eta_init)))

    def update_traces(self, h_prev: Tensor, h: Tensor, state: State) -> State:
        return {"hebb": trace_update(self.rule, self.clip, h, h_prev, state["hebb"], eta=self.eta)[0]}

    def _rule_kind(self) -> str:
        return self.rule

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, rule={self.rule!r}"


@register_core("modulated")
class ModulatedRNN(HebbianRNN, defines_rule=True):
    """Simple neuromodulated plastic RNN (Backpropamine, Miconi et al. 2019)::

        h(t)  = tanh(W_in x(t) + b + (w + alpha * Hebb(t)) h(t-1))
        M(t)  = tanh(W_mod h(t) + b_mod)                              (B, 1): one scalar per episode and step
        M_j   = M(t) (modulation="scalar")  or  M(t) v_j (modulation="fanout", v trained, initialised to 1)
        Hebb(t+1) = clip(Hebb(t) + M_j h_j(t) h_i(t-1), -c, c)

    Hebb is indexed [b, j, i]: row j postsynaptic, column i presynaptic; fan-out scales rows. The network sets its
    own plasticity rate each step, so there is no eta.

    Parameters: as ``HebbianRNN`` plus ``modulator`` (``nn.Linear(N, 1)``: W_mod (1, N), b_mod (1,)) and, for
    fan-out, ``fanout`` v (N,). State: ``h`` (B, N), ``hebb`` (B, N, N).
    """

    def __init__(self, input_size: int, hidden_size: int, alpha: str = "connection", clip: float = 1.0,
                 modulation: str = "scalar", init: str = "uniform") -> None:
        check_choice("modulation", modulation, MODULATION_KINDS)
        super().__init__(input_size, hidden_size, alpha=alpha, clip=clip, init=init)
        self.modulation_kind = modulation
        self.modulator = nn.Linear(hidden_size, 1)
        self.register_parameter("fanout", nn.Parameter(torch.ones(hidden_size)) if modulation == "fanout" else None)

    def modulation(self, h: Tensor) -> Tensor:
        """M_j(t) from h(t) (B, N): (B, 1) for scalar modulation, (B, N) for fan-out."""
        m = torch.tanh(self.modulator(h))
        return m * self.fanout if self.fanout is not None else m

    def update_traces(self, h_prev: Tensor, h: Tensor, state: State) -> State:
        hebb, _ = trace_update("modulated", self.clip, h, h_prev, state["hebb"], modulation=self.modulation(h))
        return {"hebb": hebb}

    def _rule_kind(self) -> str:
        return "modulated"

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, modulation={self.modulation_kind!r}"


@register_core("retroactive")
class RetroactiveRNN(ModulatedRNN, defines_rule=True):
    """Retroactive neuromodulation with an eligibility trace (Backpropamine, Miconi et al. 2019)::

        h(t)  = tanh(W_in x(t) + b + (w + alpha * Hebb(t)) h(t-1))
        M_j   = as in ``ModulatedRNN``
        Hebb(t+1) = clip(Hebb(t) + M_j E(t), -c, c)
        E(t+1)    = (1 - eta) E(t) + eta h_j(t) h_i(t-1)

    The modulation of step t gates the eligibility trace of the co-activations *before* step t (the paper's
    equations), so a reward that arrives later can still strengthen the connections that led to it. Hebb and E
    are indexed [b, j, i]: row j postsynaptic, column i presynaptic. eta is one trained scalar.

    Parameters: as ``ModulatedRNN`` plus ``eta`` (scalar). State: ``h`` (B, N), ``hebb`` (B, N, N),
    ``eligibility`` (B, N, N).
    """

    def __init__(self, input_size: int, hidden_size: int, alpha: str = "connection", clip: float = 1.0,
                 modulation: str = "scalar", eta_init: float = 0.1, init: str = "uniform") -> None:
        super().__init__(input_size, hidden_size, alpha=alpha, clip=clip, modulation=modulation, init=init)
        self.eta = nn.Parameter(torch.tensor(check_eta(eta_init)))

    def state_shapes(self) -> dict[str, tuple[int, ...]]:
        n = self.hidden_size
        return {**super().state_shapes(), "eligibility": (n, n)}

    def update_traces(self, h_prev: Tensor, h: Tensor, state: State) -> State:
        hebb, elig = trace_update("retroactive", self.clip, h, h_prev, state["hebb"], eta=self.eta,
                                  modulation=self.modulation(h), elig=state["eligibility"])
        return {"hebb": hebb, "eligibility": elig}

    def _rule_kind(self) -> str:
        return "retroactive"

