# ruff: noqa: E402  (the package check runs before the imports it guards)
"""A2C agents whose recurrent core is any plastic_core network, the supervised meta-trainer, baselines, and the
same cores inside sb3-contrib RecurrentPPO (``agents.sb3.PlasticPolicy``).

The names below are imported on first use (``from agents import A2CConfig`` works as before), so that a command's
entry point (:mod:`agents.cli.plastic`) starts before torch is imported and can answer an early Ctrl-C in one line.
"""

from __future__ import annotations

import importlib
from typing import Any

from agents.package_check import check_sibling_package

check_sibling_package("envs")  # before anything imports a namesake (see agents/package_check.py)

_LAZY = {
    "A2CConfig": "agents.config",
    "A2CTrainer": "agents.a2c",
    "ActorCritic": "agents.a2c",
    "NonFiniteLossError": "agents.run",
    "RunDir": "agents.run",
    "load_agent": "agents.a2c",
    "make_config": "agents.config",
    "train": "agents.a2c",
    "train_loop": "agents.run",
    "__version__": "agents.provenance",
}

__all__ = [
    "A2CConfig",
    "A2CTrainer",
    "ActorCritic",
    "NonFiniteLossError",
    "RunDir",
    "load_agent",
    "make_config",
    "train",
    "train_loop",
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'agents' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
