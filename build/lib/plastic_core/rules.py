"""The plasticity vocabulary, defined once for every plastic module of plastic_core.

Every plastic module takes its options under these names, with these values, and keeps its traces in one
orientation, **[b, post, pre]** (row j the postsynaptic unit, column i the presynaptic one, as ``nn.Linear``'s
weight):

    ==============  ============================================  =====================================================
    option          values                                        modules
    ==============  ============================================  =====================================================
    rule            "decay", "oja", "hebb" (plain increment)      ``plastic`` core, ``PlasticLinear``, ``FLPNetwork``
                                                                  ("oja", "hebb"); ``modulated`` and ``retroactive``
                                                                  are rules of their own (their cores' names)
    alpha           "connection" (N, N), "neuron" (N, 1),         the recurrent cores, ``PlasticLinear``,
                    "scalar" (1, 1)                               ``PlasticLSTMCore``
    clip            c > 0, or None (no clip)                      every trace update but FLP's
    eta_init        the trace rate's initial value                ``plastic``, ``retroactive``, ``PlasticLinear``,
                                                                  non-modulated ``PlasticLSTMCore``, ``FLPNetwork``
    learn_eta       train eta (True) or keep it fixed             ``PlasticLinear``, ``PlasticLSTMCore``
    eta             "connection", "neuron", "scalar": one rate    ``FLPNetwork`` (its rates are per synapse)
                    per synapse, per postsynaptic neuron, one
    modulation      "scalar" (one M per episode and step),        ``modulated``, ``retroactive``, ``PlasticLSTMCore``
                    "fanout" (M_j = M v_j), None (no modulation:  (None: LSTM only)
                    a rate eta instead)
    ==============  ============================================  =====================================================

A module keeps each kind option as ``<option>_kind`` (``alpha_kind``, ``modulation_kind``, ``eta_kind``). The
older names (``rule="clip"``, ``eta=`` for a rate's value, ``alpha_mode``, ``neuromodulation=`` / ``fanout=``,
``rate=`` / ``rate_init=``) still work for one version, with a ``DeprecationWarning`` naming the new one.

A :class:`Rule` is the frozen description of what a plastic recurrent core computes: which trace update, how alpha
is shared, the clip and the modulation's shape. The cores (``plastic_rnn``) build it from their options, and the
fused recurrence (``fused``) and its kernels read it, never the cores' classes.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any

PLASTIC_RULES = ("decay", "oja", "hebb")  # the ``plastic`` core's and PlasticLinear's rule option
RULE_KINDS = (*PLASTIC_RULES, "modulated", "retroactive")
ALPHA_KINDS = ("connection", "neuron", "scalar")
MODULATION_KINDS = ("scalar", "fanout")
RULE_ALIASES = {"clip": "hebb"}  # deprecated rule names


def deprecated(owner: str, old: str, new: str, stacklevel: int = 3) -> None:
    """Warn that ``owner`` got an option (or value) under its old name ``old``; ``new`` is the name to use."""
    warnings.warn(f"{owner}: {old} is deprecated, use {new} (the old name goes in the next version)",
                  DeprecationWarning, stacklevel=stacklevel)


def renamed_options(owner: str, given: dict[str, Any], renames: dict[str, str]) -> dict[str, Any]:
    """The options in ``given`` (a constructor's ``**deprecated``) under their new names, each with a
    ``DeprecationWarning``; ``TypeError`` for a name that is neither old nor known, as Python would raise."""
    unknown = sorted(set(given) - set(renames))
    if unknown:
        raise TypeError(f"{owner} got an unexpected keyword argument {unknown[0]!r}")
    for old in given:
        deprecated(owner, f"{old}=", f"{renames[old]}=", stacklevel=4)
    return {renames[old]: value for old, value in given.items()}


def plastic_rule(owner: str, rule: str) -> str:
    """``rule`` checked against PLASTIC_RULES, a deprecated alias ("clip") mapped to its name with a warning."""
    if rule in RULE_ALIASES:
        deprecated(owner, f"rule={rule!r}", f"rule={RULE_ALIASES[rule]!r}", stacklevel=4)
        rule = RULE_ALIASES[rule]
    if rule not in PLASTIC_RULES:
        raise ValueError(f"unknown rule {rule!r}; expected one of {', '.join(map(repr, PLASTIC_RULES))}")
    return rule


@dataclass(frozen=True)
class Rule:
    """What a plastic recurrent core computes: ``kind`` (RULE_KINDS), ``alpha`` (ALPHA_KINDS), ``clip`` (c or
    None) and ``fanout`` (the modulation is fanned out per postsynaptic neuron). The vocabulary's table is in the
    module docstring."""

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
