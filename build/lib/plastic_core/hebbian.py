"""The trace updates of every plastic module, written once in torch operations (the eager backend).

One function, :func:`trace_update`, computes the next trace of every rule of ``plastic_core.rules`` from the
postsynaptic activity ``post`` (B, N_post) and the presynaptic activity ``pre`` (B, N_pre), traces [b, post, pre]:

    =============  ==========================================================================
    rule           update
    =============  ==========================================================================
    "decay"        Hebb <- (1 - eta) Hebb + eta post_j pre_i
    "oja"          Hebb <- Hebb (1 - eta post_j^2) + eta post_j pre_i
    "hebb"         Hebb <- Hebb + eta post_j pre_i
    "modulated"    Hebb <- Hebb + M_j post_j pre_i                        (M: (B, 1) or (B, N_post))
    "retroactive"  Hebb <- Hebb + M_j E;  E <- (1 - eta) E + eta post_j pre_i
    =============  ==========================================================================

then clipped to [-clip, clip] when ``clip`` is set. The same code serves two callers:

- the per-step modules (the recurrent cores' ``step``, ``PlasticLinear``, ``PlasticLSTMCore``): no ``out``, every
  operation returns a fresh tensor and autograd records it (eta may be a trained tensor);
- the fused recurrence's eager kernels (``plastic_core.fused``): ``hebb_out`` / ``elig_out`` given (the sources
  themselves for an in-place update), every operation writes there, nothing (B, N, N) is allocated.

The native C kernels (``plastic_core/csrc``) and the plain transcription the tests use (``plastic_core.reference``)
are the other backends.
"""

from __future__ import annotations

import torch
from torch import Tensor
from torch.autograd.function import once_differentiable

from plastic_core.rules import RULE_KINDS

__all__ = ["clip_fresh_", "trace_update"]


class _ClipFresh(torch.autograd.Function):
    """``x.clamp_(-c, c)`` on a freshly computed tensor; backward masks with ``|result| < c``.

    Saving the result (the next trace, kept alive by the next step anyway) instead of the input, as
    ``torch.clamp`` does, saves one (B, N, N) tensor per step.
    """

    @staticmethod
    def forward(ctx, x: Tensor, bound: float) -> Tensor:
        x.clamp_(-bound, bound)
        ctx.mark_dirty(x)
        ctx.save_for_backward(x)
        ctx.bound = bound
        return x

    @staticmethod
    @once_differentiable
    def backward(ctx, grad: Tensor) -> tuple[Tensor, None]:
        (out,) = ctx.saved_tensors  # gradient flows where -c < out < c: one fused pass
        return torch.ops.aten.hardtanh_backward(grad, out, -ctx.bound, ctx.bound), None


def clip_fresh_(x: Tensor, bound: float) -> Tensor:
    """Clamp ``x`` to [-bound, bound] in place. ``x`` must be a fresh result that nothing else uses."""
    return _ClipFresh.apply(x, bound)


def trace_update(rule: str, clip: float | None, post: Tensor, pre: Tensor, hebb: Tensor, *,
                 eta: Tensor | float | None = None, modulation: Tensor | None = None, elig: Tensor | None = None,
                 hebb_out: Tensor | None = None, elig_out: Tensor | None = None) -> tuple[Tensor, Tensor | None]:
    """The next (Hebb, E) of ``rule`` (see the module docstring); E is None but for "retroactive".

    post (B, N_post), pre (B, N_pre), hebb and elig (B, N_post, N_pre); ``eta`` (a float or a 0-dim tensor) for
    the rules with a rate, ``modulation`` M_j ((B, 1) or (B, N_post)) for the modulated ones. With ``hebb_out`` (and
    ``elig_out`` for "retroactive") the results are written there, in place when they are the sources.
    """
    if rule not in RULE_KINDS:
        raise ValueError(f"unknown rule {rule!r}; expected one of {', '.join(map(repr, RULE_KINDS))}")
    col, row = post.unsqueeze(2), pre.unsqueeze(1)  # post_j as (B, N_post, 1), pre_i as (B, 1, N_pre)
    new_elig = None
    if rule == "decay":
        new = _scaled_plus_outer(hebb, 1 - eta, eta * col, row, hebb_out)
    elif rule == "oja":
        new = torch.baddbmm(torch.mul(hebb, (1 - eta * post * post).unsqueeze(2), out=hebb_out), eta * col, row,
                            out=hebb_out)
    elif rule == "hebb":
        new = torch.baddbmm(hebb, eta * col, row, out=hebb_out)
    elif rule == "modulated":
        new = torch.baddbmm(hebb, (modulation * post).unsqueeze(2), row, out=hebb_out)
    else:  # retroactive: Hebb(t+1) takes E(t), before this step's product enters E
        new = torch.addcmul(hebb, modulation.unsqueeze(2), elig, out=hebb_out)
        new_elig = _scaled_plus_outer(elig, 1 - eta, eta * col, row, elig_out)
    if clip is not None:
        new = clip_fresh_(new, clip)
    return new, new_elig


def _scaled_plus_outer(src: Tensor, scale: Tensor | float, b1: Tensor, b2: Tensor, out: Tensor | None) -> Tensor:
    """scale * src + b1 @ b2: one pass (baddbmm's beta) when scale is a number, as in the fused path; a product
    then a baddbmm when it is a trained tensor (autograd)."""
    if isinstance(scale, Tensor):
        return torch.baddbmm(torch.mul(src, scale, out=out), b1, b2, out=out)
    return torch.baddbmm(src, b1, b2, beta=scale, out=out)
