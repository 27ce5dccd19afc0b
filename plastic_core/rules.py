"""The plasticity rules' vocabulary, defined once for every plastic module of plastic_core.

A :class:`Rule` is the frozen description of what a plastic recurrent core computes: which trace update, how alpha
is shared, the clip and the modulation's shape. The cores (``plastic_rnn``) build it from their options, and the
fused recurrence (``fused``) and its kernels read it, never the cores' classes.

    =============  ===========================================================  ==========================
    option         values                                                       meaning
    =============  ===========================================================  ==========================
    kind           "decay", "oja", "clip" (the ``plastic`` core's ``rule``),    the trace update (see
                   "modulated", "retroactive" (the cores of those names)        ``plastic_core.plastic_rnn``)
    alpha          "connection" (N, N), "neuron" (N, 1), "scalar" (1, 1)        plasticity coefficients
    clip           c > 0, or None ("decay" and "oja" only)                      Hebb kept in [-c, c]
    modulation     "scalar" (one M per episode), "fanout" (M_j = M v_j)         modulated kinds only
    =============  ===========================================================  ==========================
"""

from __future__ import annotations

from dataclasses import dataclass

PLASTIC_RULES = ("decay", "oja", "clip")  # the ``plastic`` core's rule option
RULE_KINDS = (*PLASTIC_RULES, "modulated", "retroactive")
ALPHA_KINDS = ("connection", "neuron", "scalar")
MODULATION_KINDS = ("scalar", "fanout")


@dataclass(frozen=True)
class Rule:
    """What a plastic recurrent core computes: ``kind`` (RULE_KINDS), ``alpha`` (ALPHA_KINDS), ``clip`` (c or
    None) and ``fanout`` (the modulation is fanned out per postsynaptic neuron)."""

    kind: str
    alpha: str
    clip: float | None
    fanout: bool

    def __post_init__(self) -> None:
        if self.kind not in RULE_KINDS:
            raise ValueError(f"unknown rule kind {self.kind!r}; expected one of {', '.join(map(repr, RULE_KINDS))}")
        if self.alpha not in ALPHA_KINDS:
            raise ValueError(f"unknown alpha {self.alpha!r}; expected one of {', '.join(map(repr, ALPHA_KINDS))}")
        if self.fanout and not self.modulated:
            raise ValueError(f"a fan-out modulation needs a modulated rule, not {self.kind!r}")

    @property
    def modulated(self) -> bool:
        return self.kind in ("modulated", "retroactive")

    @property
    def eligibility(self) -> bool:
        return self.kind == "retroactive"
