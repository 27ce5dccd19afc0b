"""Build recurrent cores by name, so that an agent can swap them with one string."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from plastic_core.base import RecurrentCore, check_core_bytes

_CORES: dict[str, Callable[..., RecurrentCore]] = {}


def register_core(name: str) -> Callable[[type[RecurrentCore]], type[RecurrentCore]]:
    """Class decorator: make ``make_core(name, ...)`` build this core."""

    def decorator(cls: type[RecurrentCore]) -> type[RecurrentCore]:
        if name in _CORES:
            raise ValueError(f"core name {name!r} is already registered")
        _CORES[name] = cls
        return cls

    return decorator


def core_names() -> list[str]:
    """Names accepted by ``make_core``."""
    return sorted(_CORES)


def make_core(name: str, input_size: int, hidden_size: int, **options) -> RecurrentCore:
    """Build the core registered as ``name`` (``rnn``, ``lstm``, ``plastic``, ``modulated``, ``retroactive``...)."""
    if name not in _CORES:
        raise ValueError(f"unknown core {name!r}; expected one of {', '.join(map(repr, core_names()))}")
    measure_core(name, input_size, hidden_size, **options)
    return _CORES[name](input_size=input_size, hidden_size=hidden_size, **options)


def measure_core(name: str, input_size: int, hidden_size: int, **options) -> int:
    """The number of parameters of ``make_core(name, ...)``, counted on the meta device (nothing is allocated);
    ``ValueError`` (with the numbers) when they exceed :data:`~plastic_core.base.MAX_CORE_BYTES`. Bad sizes or
    options raise the core's own error here."""
    with torch.device("meta"):
        core = _CORES[name](input_size=input_size, hidden_size=hidden_size, **options)
    values = sum(p.numel() for p in core.parameters()) + sum(b.numel() for b in core.buffers())
    check_core_bytes(f"core {name!r} with input_size {input_size:,} and hidden_size {hidden_size:,}", values)
    return values


def count_parameters(module: nn.Module) -> int:
    """Number of trainable scalars in ``module`` (the papers matched cores on this)."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad)
