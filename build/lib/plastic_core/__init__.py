"""Differentiable Hebbian plasticity: batched PyTorch recurrent cores behind one step interface."""

import importlib.metadata

from plastic_core.base import RecurrentCore, State
from plastic_core.flp import FLPNetwork
from plastic_core.fused import fused_unroll, record
from plastic_core.plastic_linear import PlasticLinear
from plastic_core.plastic_lstm import PlasticLSTMCore
from plastic_core.plastic_rnn import HebbianRNN, ModulatedRNN, PlasticRNN, RetroactiveRNN
from plastic_core.registry import core_names, count_parameters, make_core, register_core
from plastic_core.rnn import LSTMCore, TanhRNN
from plastic_core.rules import ALPHA_KINDS, MODULATION_KINDS, PLASTIC_RULES, RULE_KINDS, Rule

try:
    __version__ = importlib.metadata.version("plastic-meta-rl")
except importlib.metadata.PackageNotFoundError:
    __version__ = "0+unknown"

__all__ = [
    "ALPHA_KINDS",
    "MODULATION_KINDS",
    "PLASTIC_RULES",
    "RULE_KINDS",
    "Rule",
    "FLPNetwork",
    "HebbianRNN",
    "LSTMCore",
    "ModulatedRNN",
    "PlasticLSTMCore",
    "PlasticLinear",
    "PlasticRNN",
    "RecurrentCore",
    "RetroactiveRNN",
    "State",
    "TanhRNN",
    "core_names",
    "count_parameters",
    "fused_unroll",
    "make_core",
    "record",
    "register_core",
]
