"""Fast plastic recurrence: a whole episode per autograd node, in-place traces, checkpointed exact BPTT.

The per-step cores in ``plastic_rnn.py`` build an autograd graph of ~10 nodes per time step and allocate a fresh
(B, N, N) tensor per operation, keeping one per step and trace for backward. Here the recurrence of a
``HebbianRNN`` (rules "decay", "oja", "hebb", "modulated", "retroactive"; every alpha and modulation kind) runs as

1. a forward pass without autograd (``PlasticTape``): preallocated trace buffers updated in place, keeping only
   h(t) (T, B, N), the modulation M(t) (T, B, 1) and the traces at every K-th step (checkpoints);
2. one ``torch.autograd.Function`` node (``_PlasticSequence``) whose backward recomputes each segment's traces
   from its checkpoint (trace updates only: h(t) is kept, so no recurrent product is recomputed) and runs the
   analytic backpropagation-through-time recursion for the adjoints of h, Hebb and E, in place.

Memory: O(T/K + K) traces instead of O(T): by default K doubles as the episode grows so that about sqrt(t)
checkpoints are kept (K = 16 for T = 200), or ``checkpoint_every=K`` fixes it. Measured at B=256, N=256, T=200,
retroactive: 4.3 GiB peak for forward and backward (the per-step autograd graph keeps ~2.6 GiB per 20 steps).

Kernels: ``NativeRecurrence`` (``plastic_core.native``: torch operators in C++, built on first use, one or two sweeps
per batch element and step, torch's thread pool over the batch) for float32/float64 CPU tensors, else
``EagerRecurrence`` (batched PyTorch ops with preallocated buffers, any device). Both are tested against
``plastic_core.reference``.

Two ways in:

* ``fused_unroll(core, drives, state)``: all T inputs known in advance (``HebbianRNN.unroll`` uses it);
  ``clamps=`` sets chosen neurons to given values instead of the tanh (the 2018 image network).
* ``record(core, state)``: act, then replay. ``tape.step(x)`` advances one step without autograd (in place,
  cheap) and returns h (B, N) to sample an action from; after the episode ``tape.replay()`` returns hs (T, B, N)
  and the final state attached to the autograd graph, equal to what acting produced (no forward recomputation).
  ``record`` also takes any other core (rnn, lstm, a plastic subclass with its own step), through ``ReplayTape``.

Conventions as in ``plastic_rnn.py``: traces indexed [b, j, i] (row j postsynaptic, column i presynaptic).
Backward is first-order only (``once_differentiable``).
"""

from __future__ import annotations

import math
import weakref
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
from torch import Tensor
from torch.autograd.function import once_differentiable

from plastic_core import native
from plastic_core.base import RecurrentCore, State
from plastic_core.hebbian import trace_update
from plastic_core.rnn import LSTMCore
from plastic_core.rules import Rule

if TYPE_CHECKING:  # for annotations only: plastic_rnn builds on this module
    from plastic_core.plastic_rnn import HebbianRNN

__all__ = ["PlasticTape", "ReplayTape", "TracePool", "fusable", "fused_unroll", "record", "rule_of"]


# -- the rule and its eager kernels ------------------------------------------------------------------------------
def rule_of(core: HebbianRNN) -> Rule:
    """The ``Rule`` of a plastic core (``TypeError`` for anything else)."""
    rule = getattr(core, "plasticity_rule", None)
    if not isinstance(rule, Rule):
        raise TypeError(f"no fused recurrence for {type(core).__name__}; expected a plastic core (PlasticRNN, "
                        "ModulatedRNN or RetroactiveRNN)")
    return rule


def fusable(core: RecurrentCore) -> bool:
    """Whether the fused recurrence computes what ``core.step`` computes (see ``HebbianRNN.fusable``)."""
    check = getattr(core, "fusable", None)
    return callable(check) and check()


def _parameters(core: HebbianRNN) -> tuple[Tensor | None, ...]:
    """(w, alpha, eta, W_mod, b_mod, fan-out) of a core, ``None`` where the rule has no such parameter."""
    modulator = getattr(core, "modulator", None)
    return (core.w, core.alpha, getattr(core, "eta", None),
            None if modulator is None else modulator.weight, None if modulator is None else modulator.bias,
            getattr(core, "fanout", None))


class EagerRecurrence:
    """Batched eager PyTorch kernels of one rule, on detached parameters: no autograd, in-place where possible.

    Runs on any device and dtype. ``advance`` computes h(t) and writes the traces of t+1 into given buffers
    (in place when they are the sources); ``update`` is the trace update alone; ``backward_step`` runs one step
    of the BPTT recursion.
    """

    def __init__(self, rule: Rule, params: tuple[Tensor | None, ...], batch: int) -> None:
        w, alpha, eta, mod_weight, mod_bias, fanout = (None if p is None else p.detach() for p in params)
        self.rule, self.w, self.alpha = rule, w, alpha
        self.alpha_row = None if rule.alpha == "connection" else alpha.reshape(-1)  # (N,) or (1,): per row j
        self.eta = None if eta is None else float(eta)  # one scalar; a Python float feeds baddbmm's beta/alpha
        self.mod_weight, self.mod_bias, self.fanout = mod_weight, mod_bias, fanout
        self._scratch: Tensor | None = None

    def scratch(self, like: Tensor) -> Tensor:
        """A reusable (B, N, N) buffer (contents undefined)."""
        if self._scratch is None or self._scratch.shape != like.shape:
            self._scratch = torch.empty_like(like)
        return self._scratch

    def new_grads(self, like: Tensor) -> _Grads:
        zero = like.new_zeros(())
        return _Grads(eta=zero.clone(),
                      alpha=torch.zeros_like(self.alpha) if self.rule.alpha == "connection" else zero.clone(),
                      fanout=torch.zeros_like(self.fanout) if self.fanout is not None else zero.clone())

    def finish(self, grads: _Grads) -> _Grads:
        return grads

    # -- forward ------------------------------------------------------------------------------------------------
    def advance(self, d: Tensor, hp: Tensor, hebb: Tensor, elig: Tensor | None, hebb_out: Tensor,
                elig_out: Tensor | None, clamp: Tensor | None = None) -> tuple[Tensor, Tensor | None, Tensor | None]:
        """h(t) (B, N) from d = W_in x + b, h(t-1) and the traces; writes the traces of t+1.

        ``clamp`` (B, N): where not NaN, h_j(t) is set to it instead of the tanh (a clamped neuron).
        Also returns M(t) (B, 1) for modulated rules and Hebb(t) h(t-1) (B, N) for row/scalar alpha, else None.
        """
        if self.alpha_row is None:
            w_eff = torch.addcmul(self.w, self.alpha, hebb, out=self.scratch(hebb))  # (B, N, N) [b, j, i]
            # sum_i h_i w_eff[j, i] as (1, N) @ w_eff^T: MKL's fast orientation for a batched matrix-vector product
            h = torch.baddbmm(d.unsqueeze(1), hp.unsqueeze(1), w_eff.mT).squeeze(1).tanh_()
            p = None
        else:
            p = torch.bmm(hp.unsqueeze(1), hebb.mT).squeeze(1)  # (Hebb h)_j
            h = torch.addmm(d, hp, self.w.t()).addcmul_(self.alpha_row, p).tanh_()
        if clamp is not None:
            h = torch.where(clamp.isnan(), h, clamp)
        m0 = torch.addmm(self.mod_bias, h, self.mod_weight.t()).tanh_() if self.rule.modulated else None
        self.update(h, hp, m0, hebb, elig, hebb_out, elig_out)
        return h, m0, p

    def row_modulation(self, m0: Tensor) -> Tensor:
        """M_j from M (B, 1): (B, N) with fan-out, else (B, 1)."""
        return m0 * self.fanout if self.fanout is not None else m0

    def update(self, h: Tensor, hp: Tensor, m0: Tensor | None, hebb: Tensor, elig: Tensor | None,
               hebb_out: Tensor, elig_out: Tensor | None) -> None:
        """Write Hebb(t+1) (and E(t+1)) into ``hebb_out`` (``elig_out``); in place when they are the sources.
        The rule is ``plastic_core.hebbian.trace_update``, the one the per-step cores run."""
        trace_update(self.rule.kind, self.rule.clip, h, hp, hebb, eta=self.eta,
                     modulation=None if m0 is None else self.row_modulation(m0), elig=elig, hebb_out=hebb_out,
                     elig_out=elig_out)

    # -- backward -----------------------------------------------------------------------------------------------
    def backward_step(self, g: Tensor, carry: Tensor, h: Tensor, hp: Tensor, hebb: Tensor, elig: Tensor | None,
                      hebb_next: Tensor, m0: Tensor | None, g_hebb: Tensor, g_elig: Tensor | None, g_z: Tensor,
                      grads: _Grads, clamp: Tensor | None = None, g_clamp: Tensor | None = None) -> None:
        """One step of BPTT (``clamp``: as in ``advance``; ``g_clamp`` (B, N) gets dL/d clamp).


        In: g = dL/dh(t) (B, N); g_hebb, g_elig = dL/dHebb(t+1), dL/dE(t+1); Hebb(t), E(t) and Hebb(t+1).
        Out, in place: g = dL/d drive(t), carry = dL/dh(t-1) through this step (B, N), g_hebb, g_elig =
        dL/dHebb(t), dL/dE(t), g_z = dL/dz (B, 1) for z = W_mod h(t) + b_mod; ``grads`` accumulates.
        """
        rule, eta = self.rule, self.eta
        m = self.row_modulation(m0) if rule.modulated else None
        if rule.clip is not None:  # through the clip: where -c < Hebb(t+1) < c
            torch.ops.aten.hardtanh_backward.grad_input(g_hebb, hebb_next, -rule.clip, rule.clip, grad_input=g_hebb)
        g_u = g_hebb  # dL/d(unclipped update)
        trace_scale = 1.0  # dHebb(t+1)/dHebb(t) along the trace, when a scalar
        if rule.kind in ("decay", "oja", "hebb"):
            q = _rows(g_u, hp)  # sum_i g_ji h_i(t-1)
            g_hp = _cols(g_u, h).mul_(eta)  # eta sum_j g_ji h_j(t)
            grads.eta += torch.dot(h.reshape(-1), q.reshape(-1))
            g.add_(q, alpha=eta)
            if rule.kind == "decay":
                grads.eta -= _dot(g_u, hebb)
                trace_scale = 1 - eta
            elif rule.kind == "oja":
                s = _rowdot(g_u, hebb)  # sum_i g_ji Hebb_ji
                grads.eta -= torch.dot((h * h).reshape(-1), s.reshape(-1))
                g.addcmul_(h, s, value=-2 * eta)
                g_hebb.mul_((1 - eta * h * h).unsqueeze(2))
        elif rule.kind == "modulated":
            q = _rows(g_u, hp)
            g_hp = _cols(g_u, m * h)
            g.addcmul_(q, m)
            self._modulation_backward(q * h, m0, g, g_z, grads)
        else:  # retroactive
            g_m = _rowdot(g_u, elig)  # dL/dM_j = sum_i g_ji E_ji
            q = _rows(g_elig, hp)
            g_hp = _cols(g_elig, h).mul_(eta)
            grads.eta += torch.dot(h.reshape(-1), q.reshape(-1)) - _dot(g_elig, elig)
            g.add_(q, alpha=eta)
            g_elig.mul_(1 - eta).addcmul_(m.unsqueeze(2), g_u)
            self._modulation_backward(g_m, m0, g, g_z, grads)
        # through h(t) = tanh(d + (w + alpha * Hebb(t)) h(t-1))
        if clamp is not None:  # a clamped h_j: its gradient goes to the clamp, none to a pre-activation
            clamped = ~clamp.isnan()
            torch.mul(g, clamped, out=g_clamp)
            g.masked_fill_(clamped, 0)
        ga = g.mul_(1 - h * h)
        if self.alpha_row is None:
            w_eff = torch.addcmul(self.w, self.alpha, hebb, out=self.scratch(hebb))
            g_hp.unsqueeze(1).baddbmm_(ga.unsqueeze(1), w_eff)  # sum_j ga_j w_eff[j, i]
            outer = torch.bmm(ga.unsqueeze(2), hp.unsqueeze(1), out=w_eff)  # ga_j h_i(t-1)
            if trace_scale != 1.0:
                g_hebb.mul_(trace_scale)
            g_hebb.addcmul_(outer, self.alpha)
            grads.alpha += outer.mul_(hebb).sum(0)
        else:
            ga_alpha = ga * self.alpha_row
            g_hp.addmm_(ga, self.w).unsqueeze(1).baddbmm_(ga_alpha.unsqueeze(1), hebb)
            g_hebb.baddbmm_(ga_alpha.unsqueeze(2), hp.unsqueeze(1), beta=trace_scale)
        carry.copy_(g_hp)

    def backward_sequence(self, tape: PlasticTape, hs: Tensor, m0s: Tensor | None, clamps: Tensor | None,
                          g_clamps: Tensor | None, g: Tensor, carry: Tensor, g_hebb: Tensor, g_elig: Tensor | None,
                          g_zs: Tensor, grads: _Grads) -> None:
        """All T steps of BPTT, segment by segment from the last: each segment's traces are recomputed from its
        checkpoint, then walked back with ``backward_step``.

        In: g = dL/dh(t) from the outputs (T, B, N), g_hebb, g_elig = dL/dHebb(T), dL/dE(T). Out, in place: g =
        dL/d drive(t), carry = dL/dh(0) (B, N), g_hebb, g_elig = dL/dHebb(0), dL/dE(0), g_zs (T, B, 1); ``grads``
        accumulates.
        """
        steps = hs.shape[0]
        segment: list[tuple[Tensor, Tensor | None]] = []  # buffers for the recomputed traces of one segment
        for t0, t1 in tape.segments():
            # traces of steps t0..t1: the checkpoint at t0, the next one at t1 if kept, the others recomputed
            traces = [tape.checkpoints[t0]]
            for t in range(t0, t1):
                if t + 1 in tape.checkpoints:
                    traces.append(tape.checkpoints[t + 1])
                    continue
                if len(segment) <= t - t0:
                    segment.append(tape.new_traces())
                self.update(hs[t], tape.h0 if t == 0 else hs[t - 1], None if m0s is None else m0s[t], *traces[-1],
                            *segment[t - t0])
                traces.append(segment[t - t0])
            for t in range(t1 - 1, t0 - 1, -1):
                if t < steps - 1:
                    g[t].add_(carry)
                (hebb, elig), hebb_next = traces[t - t0], traces[t - t0 + 1][0]
                self.backward_step(g[t], carry, hs[t], tape.h0 if t == 0 else hs[t - 1], hebb, elig, hebb_next,
                                   None if m0s is None else m0s[t], g_hebb, g_elig, g_zs[t], grads,
                                   None if clamps is None else clamps[t], None if clamps is None else g_clamps[t])
        tape.spare.extend(segment)  # for a second backward (retain_graph)

    def _modulation_backward(self, g_m: Tensor, m0: Tensor, g: Tensor, g_z: Tensor, grads: _Grads) -> None:
        """From dL/dM_j (B, N): add to g = dL/dh(t), write dL/dz into g_z and accumulate the fan-out gradient."""
        if self.fanout is not None:
            grads.fanout += (g_m * m0).sum(0)
            g_m0 = g_m @ self.fanout.unsqueeze(1)
        else:
            g_m0 = g_m.sum(1, keepdim=True)
        torch.mul(g_m0, 1 - m0 * m0, out=g_z)  # (B, 1)
        g.addmm_(g_z, self.mod_weight)


class NativeRecurrence:
    """The same kernels as ``EagerRecurrence``, fused in C++: the operators ``torch.ops.plastic_core.*``
    (``plastic_core.native``), on contiguous CPU tensors."""

    def __init__(self, rule: Rule, params: tuple[Tensor | None, ...], batch: int, ops) -> None:
        w, alpha, eta, mod_weight, mod_bias, fanout = (
            None if p is None else p.detach().contiguous() for p in params)
        self.rule, self.ops = rule, ops
        self.fanout = fanout
        # backward_sequence (one parallel region per sequence) runs on ``threads``; the per-step kernels on
        # ``step_threads``, lowered where other processes keep cores busy (see ``native.step_threads``)
        self.threads = native.threads()
        self.step_threads = native.step_threads(self.threads)
        # the rule's arguments of every operator, after its own: parameters, rule, alpha kind, clip, eta
        self.rule_args = (w, alpha, mod_weight, mod_bias, fanout, rule.kind, rule.alpha, rule.clip,
                          0.0 if eta is None else float(eta))
        self.stream = batch * w.shape[0] ** 2 * w.element_size() >= native.STREAM_BYTES

    def new_grads(self, like: Tensor) -> _Grads:
        return _Grads(eta=like.new_zeros(()), alpha=None, fanout=None)

    def finish(self, grads: _Grads) -> _Grads:
        return grads

    def advance(self, d: Tensor, hp: Tensor, hebb: Tensor, elig: Tensor | None, hebb_out: Tensor,
                elig_out: Tensor | None, clamp: Tensor | None = None) -> tuple[Tensor, Tensor | None, Tensor | None]:
        h = torch.empty_like(hp)
        m0 = hp.new_empty(hp.shape[0], 1) if self.rule.modulated else None
        p = torch.empty_like(hp) if self.rule.alpha != "connection" else None
        self.ops.forward_step(d, hp, hebb, elig, hebb_out, elig_out, h, m0, p, clamp, *self.rule_args,
                              self.step_threads, self.stream)
        return h, m0, p

    def update(self, h: Tensor, hp: Tensor, m0: Tensor | None, hebb: Tensor, elig: Tensor | None,
               hebb_out: Tensor, elig_out: Tensor | None) -> None:
        self.ops.update_step(h, hp, m0, hebb, elig, hebb_out, elig_out, *self.rule_args, self.step_threads,
                             self.stream)

    def backward_sequence(self, tape: PlasticTape, hs: Tensor, m0s: Tensor | None, clamps: Tensor | None,
                          g_clamps: Tensor | None, g: Tensor, carry: Tensor, g_hebb: Tensor, g_elig: Tensor | None,
                          g_zs: Tensor, grads: _Grads) -> None:
        """All T steps of BPTT in one call, batch element by batch element (``backward_sequence`` in C++): each
        element's traces and adjoints stay in cache from the last step to the first.

        In: g = dL/dh(t) from the outputs (T, B, N), g_hebb, g_elig = dL/dHebb(T), dL/dE(T). Out, in place: g =
        dL/d drive(t), carry = dL/dh(0) (B, N), g_hebb, g_elig = dL/dHebb(0), dL/dE(0), g_zs (T, B, 1); ``grads``
        gets dL/d eta and, where the rule has them, dL/d alpha (per connection) and dL/d fanout.
        """
        starts = sorted(tape.checkpoints)
        hebbs = [tape.checkpoints[t][0] for t in starts]
        eligs = [tape.checkpoints[t][1] for t in starts] if self.rule.eligibility else []
        g_eta, g_alpha, g_fanout = self.ops.backward_sequence(
            starts, hebbs, eligs, hs, tape.h0, m0s, clamps, g_clamps, g, carry, g_hebb, g_elig,
            g_zs if self.rule.modulated else None, *self.rule_args, self.threads)
        if self.rule.kind != "modulated":
            grads.eta += g_eta.sum()
        if self.rule.alpha == "connection":
            grads.alpha = g_alpha
        if self.fanout is not None:
            grads.fanout = g_fanout


def make_recurrence(rule: Rule, params: tuple[Tensor | None, ...], state: tuple[Tensor | None, ...],
                    backend: str = "auto") -> EagerRecurrence | NativeRecurrence:
    """The kernels for these tensors: ``"native"`` (C++ operators, CPU float32/float64) where available, else
    ``"eager"``."""
    if backend not in ("auto", "native", "eager"):
        raise ValueError(f"unknown backend {backend!r}; expected 'auto', 'native' or 'eager'")
    batch = state[0].shape[0]
    if backend != "eager" and native.supports(*params, *state):
        ops = native.load(state[0].dtype)
        if ops is not None:
            return NativeRecurrence(rule, params, batch, ops)
    if backend == "native":
        raise RuntimeError("the native kernels are unavailable for these tensors (they need float32 or float64 CPU "
                           "tensors and a C++ compiler; PLASTIC_CORE_NATIVE=0 disables them)")
    return EagerRecurrence(rule, params, batch)


def _rows(mat: Tensor, v: Tensor) -> Tensor:
    """sum_i mat[b, j, i] v[b, i]: (B, N)."""
    return torch.bmm(v.unsqueeze(1), mat.mT).squeeze(1)


def _cols(mat: Tensor, v: Tensor) -> Tensor:
    """sum_j v[b, j] mat[b, j, i]: (B, N)."""
    return torch.bmm(v.unsqueeze(1), mat).squeeze(1)


def _rowdot(a: Tensor, b: Tensor) -> Tensor:
    """sum_i a[b, j, i] b[b, j, i]: (B, N), as B*N dot products."""
    batch, n, _ = a.shape
    return torch.bmm(a.view(batch * n, 1, n), b.view(batch * n, n, 1)).view(batch, n)


def _dot(a: Tensor, b: Tensor) -> Tensor:
    return torch.dot(a.view(-1), b.view(-1))


@dataclass
class _Grads:
    """Parameter gradients accumulated step by step (the others are formed at the end from whole sequences)."""

    eta: Tensor
    alpha: Tensor | None
    fanout: Tensor | None


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

    def __init__(self, core: HebbianRNN, state: State, checkpoint_every: int | None = None,
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
def fused_unroll(core: HebbianRNN, drives: Tensor, state: State, checkpoint_every: int | None = None,
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
    # the LSTM's unroll is nn.LSTM's sequence kernel: acting without autograd, then one unroll, is faster
    # (measured 1.6x at B=30, N=100); any other core keeps its per-step autograd graph while acting
    return ReplayTape(core, state, live=not isinstance(core, LSTMCore))
