"""Fast plastic recurrence: a whole episode per autograd node, in-place traces, checkpointed exact BPTT.

The per-step cores in ``plastic_rnn.py`` build an autograd graph of ~10 nodes per time step and allocate a fresh
(B, N, N) tensor per operation, keeping one per step and trace for backward. Here the recurrence of a plastic
core (rules "decay", "oja", "hebb", "modulated", "retroactive"; every alpha and modulation kind) runs as

1. a forward pass without autograd (``PlasticTape``): preallocated trace buffers updated in place, keeping only
   h(t) (T, B, N), the modulation M(t) (T, B, 1) and the traces at every K-th step (checkpoints);
2. one ``torch.autograd.Function`` node (``_PlasticSequence``) whose backward recomputes each segment's traces
   from its checkpoint (trace updates only: h(t) is kept, so no recurrent product is recomputed) and runs the
   analytic backpropagation-through-time recursion for the adjoints of h, Hebb and E, in place.

Memory: O(T/K + K) traces instead of O(T): by default K doubles as the episode grows so that about sqrt(t)
checkpoints are kept (K = 16 for T = 200), or ``checkpoint_every=K`` fixes it. Measured at B=256, N=256, T=200,
retroactive: 4.3 GiB peak for forward and backward (the per-step autograd graph keeps ~2.6 GiB per 20 steps).

Kernels (``plastic_core.recurrence``): ``NativeRecurrence`` (torch operators in C++, built on first use by
``plastic_core.native``, one or two sweeps per batch element and step, torch's thread pool over the batch) for
float32/float64 CPU tensors, else ``EagerRecurrence`` (batched PyTorch ops with preallocated buffers, any device).
Both are tested against ``plastic_core.reference``.

Two ways in:

* ``fused_unroll(core, drives, state)``: all T inputs known in advance (the plastic cores' ``unroll`` uses it, and
  their ``step``, with T = 1);
  ``clamps=`` sets chosen neurons to given values instead of the tanh (the 2018 image network).
* ``record(core, state)``: act, then replay. ``tape.step(x)`` advances one step without autograd (in place,
  cheap) and returns h (B, N) to sample an action from; after the episode ``tape.replay()`` returns hs (T, B, N)
  and the final state attached to the autograd graph, equal to what acting produced (no forward recomputation).
  ``record`` also takes any other core (rnn, lstm, a plastic subclass with its own step), through ``ReplayTape``.

What is run is read from the core, never from its class: its rule (``core.plasticity_rule``, a
``plastic_core.rules.Rule``), its parameters (w, alpha, eta, the modulator, the fan-out; ``None`` where the rule has
none) and its input drive (``core.input_drive``). Conventions as in ``plastic_rnn.py``: traces indexed [b, j, i]
(row j postsynaptic, column i presynaptic).
Backward is first-order only (``once_differentiable``).
"""

from __future__ import annotations

import math
import weakref

import torch
from torch import Tensor
from torch.autograd.function import once_differentiable

from plastic_core.base import RecurrentCore, State
from plastic_core.recurrence import NativeRecurrence, make_recurrence
from plastic_core.rules import Rule

__all__ = ["PlasticTape", "ReplayTape", "TracePool", "fusable", "fused_unroll", "record", "rule_of"]


# -- the rule and parameters of a core ---------------------------------------------------------------------------
def rule_of(core: RecurrentCore) -> Rule:
    """The ``Rule`` of a plastic core (``TypeError`` for anything else)."""
    rule = getattr(core, "plasticity_rule", None)
    if not isinstance(rule, Rule):
        raise TypeError(f"no fused recurrence for {type(core).__name__}; expected a plastic core (PlasticRNN, "
                        "ModulatedRNN or RetroactiveRNN)")
    return rule


def fusable(core: RecurrentCore) -> bool:
    """Whether the fused recurrence computes what ``core.step`` computes (the core's own ``fusable()``)."""
    check = getattr(core, "fusable", None)
    return callable(check) and check()


def _parameters(core: RecurrentCore) -> tuple[Tensor | None, ...]:
    """(w, alpha, eta, W_mod, b_mod, fan-out) of a core, ``None`` where the rule has no such parameter."""
    modulator = getattr(core, "modulator", None)
    return (core.w, core.alpha, getattr(core, "eta", None),
            None if modulator is None else modulator.weight, None if modulator is None else modulator.bias,
            getattr(core, "fanout", None))



# -- the forward pass: a tape of h, M and trace checkpoints ---------------------------------------------------------
class TracePool:
    """Trace buffers handed from one recorded episode to the next.

    A tape at B=256, N=256 keeps ~15 (B, N, N) checkpoints (~1 GiB per trace); fresh memory costs a page fault
    per 4 KiB on first touch (measured 0.23 s per GiB here), i.e. ~10% of a training iteration. A tape made with a
    pool takes its buffers from it and gives them back when the tape is freed (after backward, once the graph is
    gone). Buffers of one shape, dtype and device are kept: asking for another drops the rest.
    """

    def __init__(self) -> None:
        self._key: tuple | None = None
        self._free: list[Tensor] = []

    def __len__(self) -> int:
        return len(self._free)

    def take(self, like: Tensor) -> Tensor:
        """A buffer shaped like ``like`` (contents undefined)."""
        key = (tuple(like.shape), like.dtype, like.device)
        if key != self._key:
            self._key, self._free = key, []
        return self._free.pop() if self._free else torch.empty(like.shape, dtype=like.dtype, device=like.device)

    def give(self, buffers: list[Tensor]) -> None:
        """Return buffers taken from this pool."""
        self._free.extend(b for b in buffers if (tuple(b.shape), b.dtype, b.device) == self._key)


class PlasticTape:
    """Runs a plastic core step by step without autograd and keeps what an exact backward needs.

    Kept: h(t) and M(t) (and Hebb(t) h(t-1) for row/scalar alpha) for every step, and the traces at every
    ``every``-th step; between checkpoints the traces are updated in place in one working buffer. With
    ``checkpoint_every=None`` the spacing starts at 1 and doubles (dropping every other checkpoint) whenever
    there are more than about sqrt(t) checkpoints: memory O(sqrt(T)) traces for any episode length.
    """

    def __init__(self, core: RecurrentCore, state: State, checkpoint_every: int | None = None,
                 backend: str = "auto", pool: TracePool | None = None) -> None:
        if checkpoint_every is not None and (isinstance(checkpoint_every, bool) or
                                             not isinstance(checkpoint_every, int) or checkpoint_every <= 0):
            raise ValueError(f"checkpoint_every must be a positive integer or None, got {checkpoint_every!r}")
        self.core, self.rule = core, rule_of(core)
        self.params = _parameters(core)
        self.state0 = state
        self.versions = [t._version for t in self._watched()]
        self.h0 = state["h"].detach().contiguous()
        hebb0 = state["hebb"].detach().contiguous()
        elig0 = state["eligibility"].detach().contiguous() if self.rule.eligibility else None
        self.rec = make_recurrence(self.rule, self.params, (self.h0, hebb0, elig0), backend)
        self.cur = (hebb0, elig0)
        self.work: tuple[Tensor, Tensor | None] | None = None  # the buffers updated in place
        self.h = self.h0
        self.hs: list[Tensor] = []
        self.m0s: list[Tensor] = []
        self.ps: list[Tensor] = []
        self.xs: list[Tensor] = []
        self.clamps: list[Tensor] = []  # per step (B, N), when neurons are clamped
        self.checkpoints: dict[int, tuple[Tensor, Tensor | None]] = {0: self.cur}
        self.spare: list[tuple[Tensor, Tensor | None]] = []
        self.every = checkpoint_every or 1
        self.thinning = checkpoint_every is None
        self.used = False
        self.pool = pool
        self.owned: list[Tensor] = []  # buffers from the pool, given back when the tape is freed
        if pool is not None:
            weakref.finalize(self, pool.give, self.owned)

    @property
    def t(self) -> int:
        """Steps taken so far."""
        return len(self.hs)

    @property
    def backend(self) -> str:
        return "native" if isinstance(self.rec, NativeRecurrence) else "eager"

    def _watched(self) -> list[Tensor]:
        return [p for p in self.params if p is not None] + list(self.state0.values())

    def step(self, x: Tensor) -> Tensor:
        """One step on the raw input x (B, input_size): returns h(t) (B, N), without autograd."""
        with torch.no_grad():
            self.xs.append(x)
            return self.step_drive(*self.core.input_drive(x))

    def step_drive(self, drive: Tensor, clamp: Tensor | None = None) -> Tensor:
        """One step given the input drive W_in x + b (B, N): returns h(t) (B, N). ``clamp`` (B, N): where not
        NaN, h_j(t) is set to it instead of the tanh (a clamped neuron); give it at every step or at none."""
        if self.used:
            raise RuntimeError("this tape was already replayed; record a new one")
        if (clamp is not None) != bool(self.clamps) and self.t > 0:
            raise ValueError("clamp must be given at every step of a tape or at none")
        if clamp is not None:
            clamp = clamp.detach().to(drive.dtype).contiguous()
            self.clamps.append(clamp)
        with torch.no_grad():
            hebb, elig = self.cur
            t = self.t + 1  # the traces written now are those of step t
            if t % self.every == 0:
                out = self.new_traces()
            else:
                if self.work is None:
                    self.work = self.new_traces()
                out = self.work
            h, m0, p = self.rec.advance(drive.contiguous(), self.h, hebb, elig, *out, clamp=clamp)
            self.cur, self.h = out, h
            self.hs.append(h)
            if m0 is not None:
                self.m0s.append(m0)
            if p is not None:
                self.ps.append(p)
            if t % self.every == 0:
                self.checkpoints[t] = out
                if self.thinning:
                    self._thin(t)
            return h

    def new_traces(self) -> tuple[Tensor, Tensor | None]:
        """A (Hebb, E) pair of buffers (contents undefined): a dropped checkpoint's if any, else fresh memory."""
        if self.spare:
            return self.spare.pop()
        hebb = self.checkpoints[0][0]
        return self._fresh(hebb), self._fresh(hebb) if self.rule.eligibility else None

    def _fresh(self, like: Tensor) -> Tensor:
        if self.pool is None:
            return torch.empty_like(like)
        buffer = self.pool.take(like)
        self.owned.append(buffer)
        return buffer

    def _thin(self, t: int) -> None:
        """Double the spacing, dropping every other checkpoint, while there are too many of them."""
        limit = math.isqrt(t) + 1
        while len(self.checkpoints) > limit:
            self.every *= 2
            for step in [s for s in self.checkpoints if s % self.every]:
                dropped = self.checkpoints.pop(step)
                if dropped[0] is self.cur[0]:
                    if self.work is not None:
                        self.spare.append(self.work)
                    self.work = dropped  # the current traces are no checkpoint any more: update them in place
                else:
                    self.spare.append(dropped)  # reused for later checkpoints and by backward (no page faults)

    def replay(self, drives: Tensor | None = None, clamps: Tensor | None = None) -> tuple[Tensor, State]:
        """hs (T, B, N) and the final state, attached to autograd (gradients w.r.t. the parameters, the input
        drives W_in x + b of the recorded inputs (or ``drives``), the clamped values (``clamps`` (T, B, N), what the
        steps were given) and the initial state); equal to what the steps returned. A tape recorded with ``step(x)``
        takes drives and clamps from its inputs through ``core.input_drive``; give both only with ``step_drive``."""
        if self.t == 0:
            raise ValueError("nothing to replay: the tape has no step")
        if self.used:
            raise RuntimeError("this tape was already replayed; record a new one")
        if [t._version for t in self._watched()] != self.versions:
            raise RuntimeError("a parameter or the initial state was modified in place after recording started; "
                               "replay before the optimizer step")
        self.used = True
        self.owned[:] = [b for b in self.owned if all(b is not c for c in self.cur)]  # the outputs are the caller's
        if drives is None:
            drives, clamps = self.core.input_drive(torch.stack(self.xs))
        if self.checkpoints.get(self.t, (None,))[0] is self.cur[0]:  # the output must not alias a saved trace
            del self.checkpoints[self.t]
        state0 = self.state0
        inputs = (drives, state0["h"], state0["hebb"], state0.get("eligibility") if self.rule.eligibility else None,
                  *self.params, clamps)
        if torch.is_grad_enabled() and any(t is not None and t.requires_grad for t in inputs):
            outs = _PlasticSequence.apply(self, *inputs)
        else:
            outs = (torch.stack(self.hs), *(t for t in self.cur if t is not None))
        hs = outs[0]
        state = {"h": hs[-1], "hebb": outs[1]}
        if self.rule.eligibility:
            state["eligibility"] = outs[2]
        return hs, state

    def segments(self) -> list[tuple[int, int]]:
        """[t0, t1) ranges between checkpoints, last first (for backward)."""
        starts = sorted(self.checkpoints)
        ends = [*starts[1:], self.t]
        return list(zip(starts, ends, strict=True))[::-1]


class _PlasticSequence(torch.autograd.Function):
    """The whole recorded sequence as one autograd node; backward = checkpointed analytic BPTT."""

    @staticmethod
    def forward(ctx, tape: PlasticTape, drives: Tensor, h0: Tensor, hebb0: Tensor, elig0: Tensor | None,
                w: Tensor, alpha: Tensor, eta: Tensor | None, mod_weight: Tensor | None, mod_bias: Tensor | None,
                fanout: Tensor | None, clamps: Tensor | None) -> tuple[Tensor, ...]:
        ctx.set_materialize_grads(False)
        ctx.tape = tape
        hs = torch.stack(tape.hs)
        # saved for autograd's check that nothing was modified in place before backward; the tape holds the data
        ctx.save_for_backward(hs, h0, hebb0, elig0, w, alpha, eta, mod_weight, mod_bias, fanout)
        hebb, elig = tape.cur
        tape.cur = tape.work = None  # the outputs are the caller's now: no tape -> output -> node -> tape cycle
        return (hs, hebb) if elig is None else (hs, hebb, elig)

    @staticmethod
    @once_differentiable
    def backward(ctx, g_hs: Tensor | None, g_hebb_out: Tensor | None, g_elig_out: Tensor | None = None):
        tape: PlasticTape = ctx.tape  # read only: backward may run again (retain_graph)
        hs = ctx.saved_tensors[0]
        rec, rule = tape.rec, tape.rule
        T, batch, n = hs.shape
        like = tape.checkpoints[0][0]
        g_hebb = _adjoint(g_hebb_out, like)
        g_elig = _adjoint(g_elig_out, like) if rule.eligibility else None
        m0s = torch.stack(tape.m0s) if rule.modulated else None
        grads = rec.new_grads(hs)
        g_drives = g_hs.contiguous().clone() if g_hs is not None else torch.zeros_like(hs)  # dL/dh(t), then ga(t)
        g_zs = hs.new_zeros(T, batch, 1)
        carry = hs.new_zeros(batch, n)
        clamps = torch.stack(tape.clamps) if tape.clamps else None
        g_clamps = torch.zeros_like(clamps) if clamps is not None else None
        rec.backward_sequence(tape, hs, m0s, clamps, g_clamps, g_drives, carry, g_hebb, g_elig, g_zs, grads)
        grads = rec.finish(grads)
        # the other parameter gradients from whole sequences: one matrix product each
        h_prev = torch.cat([tape.h0.unsqueeze(0), hs[:-1]]).reshape(T * batch, n)
        ga_flat = g_drives.reshape(T * batch, n)
        need = ctx.needs_input_grad
        g_w = ga_flat.t() @ h_prev if need[5] else None
        g_alpha = None
        if need[6]:
            if rule.alpha == "connection":
                g_alpha = grads.alpha
            else:
                g_alpha = (ga_flat * torch.stack(tape.ps).reshape(T * batch, n)).sum(0).view(n, 1)
                g_alpha = g_alpha if rule.alpha == "neuron" else g_alpha.sum().view(1, 1)
        g_eta = grads.eta if need[7] else None
        g_mod_w = g_mod_b = g_fanout = None
        if rule.modulated:
            g_z = g_zs.reshape(T * batch, 1)
            g_mod_w = g_z.t() @ hs.reshape(T * batch, n) if need[8] else None
            g_mod_b = g_z.sum(0) if need[9] else None
            g_fanout = grads.fanout if need[10] else None
        return (None, g_drives if need[1] else None, carry if need[2] else None, g_hebb if need[3] else None,
                g_elig if need[4] else None, g_w, g_alpha, g_eta, g_mod_w, g_mod_b, g_fanout,
                g_clamps if need[11] else None)


def _adjoint(grad: Tensor | None, like: Tensor) -> Tensor:
    """A private contiguous copy of an incoming trace gradient (zeros when the output was not used)."""
    return torch.zeros_like(like) if grad is None else grad.clone(memory_format=torch.contiguous_format)


# -- entry points -----------------------------------------------------------------------------------------------
def fused_unroll(core: RecurrentCore, drives: Tensor, state: State, checkpoint_every: int | None = None,
                 backend: str = "auto", clamps: Tensor | None = None) -> tuple[Tensor, State]:
    """Unroll a plastic core on input drives W_in x + b (T, B, N): hs (T, B, N) and the final state.

    Same results as stepping the core T times; gradients (first order) by checkpointed analytic BPTT. ``clamps``
    (T, B, N): where not NaN, h_j(t) is set to that value instead of the tanh (clamped neurons, no gradient to
    their drive).
    """
    if drives.dim() != 3 or drives.shape[0] == 0:
        raise ValueError(f"drives must have shape (T, B, hidden_size) with T >= 1, got {tuple(drives.shape)}")
    if clamps is not None and clamps.shape != drives.shape:
        raise ValueError(f"clamps must have the drives' shape {tuple(drives.shape)}, got {tuple(clamps.shape)}")
    tape = PlasticTape(core, state, checkpoint_every, backend)
    for t, d in enumerate(drives.detach()):
        tape.step_drive(d, None if clamps is None else clamps[t])
    return tape.replay(drives, clamps)


class ReplayTape:
    """``record`` for a core without a fused path.

    ``live=False``: steps under ``torch.no_grad`` and ``replay`` runs ``core.unroll`` (for a core whose unroll is a
    fused sequence kernel, as the LSTM's). ``live=True``: steps with autograd as usual and ``replay`` stacks them.
    Whether autograd records is decided when the tape is made, so that the caller may act under ``no_grad``.
    """

    def __init__(self, core: RecurrentCore, state: State, live: bool = False) -> None:
        self.core, self.state0, self.state, self.live = core, state, state, live
        self.grad_enabled = torch.is_grad_enabled()
        self.xs: list[Tensor] = []
        self.hs: list[Tensor] = []

    def step(self, x: Tensor) -> Tensor:
        """One step on x (B, input_size): h(t) (B, N)."""
        if self.live:
            with torch.set_grad_enabled(self.grad_enabled):
                h, self.state = self.core.step(x, self.state)
            self.hs.append(h)
            return h
        with torch.no_grad():
            h, self.state = self.core.step(x, self.state)
        self.xs.append(x)
        return h

    def replay(self) -> tuple[Tensor, State]:
        """hs (T, B, N) and the final state, attached to autograd when gradients are enabled."""
        if not (self.hs or self.xs):
            raise ValueError("nothing to replay: the tape has no step")
        if self.live:
            return torch.stack(self.hs), self.state
        return self.core.unroll(torch.stack(self.xs), self.state0)


def record(core: RecurrentCore, state: State, checkpoint_every: int | None = None,
           backend: str = "auto", pool: TracePool | None = None) -> PlasticTape | ReplayTape:
    """Start recording an episode from ``state``: ``h = tape.step(x)`` per step (sample the action from it), then
    ``hs, final_state = tape.replay()`` for the loss: the same hs, attached to autograd when gradients are enabled.

    Plastic cores get the fast ``PlasticTape`` (no autograd while acting, in-place traces, fused kernels); others a
    ``ReplayTape``. A training loop passes the same ``pool`` every episode to reuse the trace buffers."""
    if fusable(core):
        return PlasticTape(core, state, checkpoint_every, backend, pool)
    return ReplayTape(core, state, live=not core.replays_unroll)
