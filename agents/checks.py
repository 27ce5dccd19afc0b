"""The argument checks of the agents package: one definition of each, one-line messages naming the setting.

Every config and command-line tool of ``agents`` checks its values with these, so that a bad value gives the same
message wherever it is given (a flag, a config.json, a preset file).
"""

from __future__ import annotations

import math
import os
from typing import Any

import torch

from agents.checkpoint import RunError
from plastic_core import RecurrentCore, make_core

MAX_BATCH = 100_000  # episodes per iteration: far beyond any setting of the papers, well before memory runs out
MAX_SEED = 2**32 - 1  # seeds feed numpy's and torch's generators; beyond this they overflow


def check_integer(name: str, value: Any, minimum: int, maximum: int | None = None,
                  why: str = "larger sizes would not fit in memory") -> None:
    """``ValueError`` unless ``value`` is an int (not a bool) of at least ``minimum`` (and at most ``maximum``;
    ``why`` says why in the message)."""
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        kind = "a positive integer" if minimum == 1 else f"an integer >= {minimum}"
        raise ValueError(f"{name} must be {kind}, got {value!r}")
    if maximum is not None and value > maximum:
        raise ValueError(f"{name} must be at most {maximum} ({why}), got {value!r}")


def check_device(value: Any, name: str = "device", available: bool = True) -> None:
    """``ValueError`` unless ``value`` names a torch device (and, with ``available``, one this machine has)."""
    if not isinstance(value, str):
        raise ValueError(f"{name} must be a string such as 'cpu' or 'cuda:0', got {value!r}")
    try:
        device = torch.device(value)
    except (RuntimeError, ValueError, TypeError):
        raise ValueError(f"{name} {value!r} is not a torch device; use cpu, cuda, cuda:N or mps") from None
    if not available:
        return
    if device.type == "cuda":
        if not torch.cuda.is_available():
            why = "has no CUDA support" if torch.version.cuda is None else "sees no GPU"
            raise ValueError(f"{name} {value!r} is not available: this torch ({torch.__version__}) {why}; use cpu")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise ValueError(f"{name} {value!r} is not available: {torch.cuda.device_count()} GPU(s) visible")
    elif device.type == "mps" and not torch.backends.mps.is_available():
        raise ValueError(f"{name} {value!r} is not available on this machine; use cpu")
    elif device.type not in ("cpu", "cuda", "mps"):
        raise ValueError(f"{name} {value!r} is not supported here; use cpu, cuda or mps")


def check_env_id(env_id: Any, where: str | os.PathLike, trusted: str | None = None) -> None:
    """The one check of an env id read from a file (``where``: a sweep file, a preset file, a config.json): it must
    be a string registered in gymnasium's registry (the ``Plastic/`` ids, gymnasium's own, any id registered by code
    already imported), optionally prefixed with this package's ``envs:``. Nothing is imported here, and a
    ``module:Env`` id, which makes ``gym.make`` import ``module``, is refused unless it is ``trusted``: the id given
    on the command line. :class:`RunError` (a ``ValueError``) of one line naming the file otherwise."""
    if env_id is None or (trusted is not None and env_id == trusted):
        return
    if not isinstance(env_id, str):
        raise RunError(f"{where} has env_id {env_id!r}, not a string")
    module, sep, name = env_id.partition(":")
    if sep and module != "envs" and not module.startswith("envs."):
        raise RunError(
            f"{where} names env id {env_id!r}, whose prefix {module!r} is a Python module that gymnasium would "
            f"import; a file never chooses code to run. If you trust it, give --env {env_id!r} on the command line"
        )
    from gymnasium.envs.registration import registry

    import envs  # noqa: F401  (registers the Plastic/ ids; our own package)

    if (name if sep else env_id) not in registry:
        plastic = ", ".join(sorted(k for k in registry if k.startswith("Plastic/")))
        raise RunError(f"{where} names env id {env_id!r}, which is not registered with gymnasium (registered here: "
                       f"{plastic}, and gymnasium's own); an env of your own needs --env on the command line")


def build_core(name: str, input_size: int, hidden: int, core_kwargs: dict[str, Any] | None = None) -> RecurrentCore:
    """``make_core(name, input_size, hidden, **core_kwargs)``, with a one-line ``ValueError`` for an unknown core
    or an option the core does not take (``make_core`` raises ``TypeError`` for those)."""
    if core_kwargs is not None and not isinstance(core_kwargs, dict):
        raise ValueError(f"core_kwargs must be a dict of the core's options, got {core_kwargs!r}")
    try:
        return make_core(name, input_size, hidden, **(core_kwargs or {}))
    except TypeError as error:
        raise ValueError(f"bad core kwargs {core_kwargs!r} for core {name!r}: {error}") from None


def check_choice(name: str, value: Any, choices: tuple[str, ...]) -> None:
    """``ValueError`` unless ``value`` is one of ``choices``."""
    if value not in choices:
        raise ValueError(f"{name} must be one of {', '.join(map(repr, choices))}, got {value!r}")


def check_number(name: str, value: Any, positive: bool = False) -> None:
    """``ValueError`` unless ``value`` is a finite number that is >= 0 (> 0 with ``positive``)."""
    if (isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0
            or (positive and value == 0)):
        raise ValueError(f"{name} must be a finite {'positive' if positive else 'non-negative'} number, got {value!r}")


def one_line(error: BaseException | str) -> str:
    """An error message as one line: line breaks joined with '; ', control characters (ANSI escapes...) escaped."""
    text = str(error).strip()
    text = "; ".join(part.strip() for part in text.splitlines() if part.strip())
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in text)
