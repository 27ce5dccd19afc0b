"""The kernels of one plastic rule, on detached parameters: what ``plastic_core.fused`` runs its tapes on.

* ``EagerRecurrence``: batched PyTorch ops with preallocated buffers, in place where possible; any device and
  dtype. Its trace update is ``plastic_core.hebbian.trace_update``, the rule the per-step cores run.
* ``NativeRecurrence``: the same kernels as torch operators in C++ (``torch.ops.plastic_core``, built by
  ``plastic_core.native``), for float32/float64 CPU tensors.

``make_recurrence`` picks one. Each has ``advance`` (one step: h(t), M(t), the traces of t+1), ``update`` (the
trace update alone) and ``backward_sequence`` (the whole BPTT recursion of a recorded tape). Traces are indexed
[b, j, i] (row j postsynaptic, column i presynaptic).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import torch
from torch import Tensor

from plastic_core import native
from plastic_core.hebbian import trace_update
from plastic_core.rules import Rule

__all__ = ["EagerRecurrence", "NativeRecurrence", "Tape", "make_recurrence"]


class Tape(Protocol):
    """What ``backward_sequence`` reads of a recorded episode (``plastic_core.fused.PlasticTape``)."""

    h0: Tensor  # h(0) (B, N)
    checkpoints: dict[int, tuple[Tensor, Tensor | None]]  # step -> (Hebb, E) at that step
    spare: list[tuple[Tensor, Tensor | None]]  # trace buffers free for reuse

    def segments(self) -> list[tuple[int, int]]: ...

    def new_traces(self) -> tuple[Tensor, Tensor | None]: ...


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

    def backward_sequence(self, tape: Tape, hs: Tensor, m0s: Tensor | None, clamps: Tensor | None,
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

    def backward_sequence(self, tape: Tape, hs: Tensor, m0s: Tensor | None, clamps: Tensor | None,
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


