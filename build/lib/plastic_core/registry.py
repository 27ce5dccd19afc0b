"""Build recurrent cores by name, so that an agent can swap them with one string."""

from __future__ import annotations

from collections.abc import Callable

from torch import nn

from plastic_core.base import RecurrentCore

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
    return _CORES[name](input_size=input_size, hidden_size=hidden_size, **options)


def count_parameters(module: nn.Module) -> int:
    """Number of trainable scalars in ``module`` (the papers matched cores on this)."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad)
