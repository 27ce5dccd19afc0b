"""Differentiable Hebbian plasticity: batched PyTorch recurrent cores behind one step interface."""

from plastic_core.base import RecurrentCore, State
from plastic_core.registry import core_names, count_parameters, make_core, register_core

__all__ = ["RecurrentCore", "State", "core_names", "count_parameters", "make_core", "register_core"]
