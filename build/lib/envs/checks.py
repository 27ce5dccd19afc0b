"""Every argument check of the envs: keyword arguments, sizes, render modes, actions. One wording for all.

A wrong type raises ``TypeError``, a wrong value ``ValueError``; both name the argument and show what was given.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence
from typing import Any

import numpy as np

MAX_EPISODE_LENGTH = 100_000  # steps (the A2C trainer gives up on episodes longer than this anyway)
MAX_NUM_ENVS = 100_000
MAX_TABLE_BYTES = 8 * 2**30  # the episodes' (B, T + 1, ...) tables, checked before they are allocated


def check_int(name: str, value: object, minimum: int = 1) -> int:
    """Return ``value`` as an int, or raise when it is not an integer >= ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer, got {type(value).__name__} {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    return int(value)


def check_float(name: str, value: object, low: float = -math.inf, high: float = math.inf,
                low_open: bool = False) -> float:
    """Return ``value`` as a float, or raise when it is not a finite number in [low, high] (``(low, high]`` with
    ``low_open``)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a number, got {type(value).__name__} {value!r}")
    value = float(value)
    above = value > low if low_open else value >= low
    if not math.isfinite(value) or not above or value > high:
        interval = f"{'(' if low_open else '['}{low:g}, {high:g}]"
        raise ValueError(f"{name} must be a finite number in {interval}, got {value!r}")
    return value


def check_range(name: str, value: object) -> tuple[float, float]:
    """Return a (low, high) pair of finite floats with low <= high, or raise."""
    if not isinstance(value, Sequence) or isinstance(value, str) or len(value) != 2:
        raise ValueError(f"{name} must be a (low, high) pair, got {value!r}")
    low, high = (check_float(name, v) for v in value)
    if low > high:
        raise ValueError(f"{name} must have low <= high, got {value!r}")
    return low, high


def check_choice(name: str, value: object, choices: Sequence[str]) -> str:
    if value not in choices:
        raise ValueError(f"unknown {name} {value!r}; expected one of {', '.join(map(repr, choices))}")
    return str(value)


def check_probabilities(name: str, values: object) -> np.ndarray:
    """Return ``values`` as a float64 array of probabilities, or raise."""
    try:
        arr = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise TypeError(f"{name} must be numbers in [0, 1], got {values!r}") from err
    if not np.all(np.isfinite(arr)) or np.any(arr < 0) or np.any(arr > 1):
        raise ValueError(f"{name} must be probabilities in [0, 1], got {values!r}")
    return arr


def check_render_mode(render_mode: str | None, render_modes: Sequence[str]) -> str | None:
    if render_mode is not None and render_mode not in render_modes:
        if not render_modes:
            raise ValueError(f"this env has no render modes, got render_mode={render_mode!r}")
        raise ValueError(f"render_mode must be None or one of {list(render_modes)}, got {render_mode!r}")
    return render_mode


def check_sizes(num_envs: int, episode_length: int, bytes_per_step: int) -> None:
    """``ValueError`` (with the numbers) when B episodes of T steps are too many or too large to allocate."""
    if num_envs > MAX_NUM_ENVS:
        raise ValueError(f"num_envs must be at most {MAX_NUM_ENVS}, got {num_envs}")
    if episode_length > MAX_EPISODE_LENGTH:
        raise ValueError(f"episode_length must be at most {MAX_EPISODE_LENGTH}, got {episode_length}")
    need = num_envs * (episode_length + 1) * bytes_per_step
    if need > MAX_TABLE_BYTES:
        raise ValueError(
            f"{num_envs} episodes of {episode_length} steps need about {need / 2**30:.1f} GiB of episode tables, more "
            f"than the {MAX_TABLE_BYTES / 2**30:.0f} GiB allowed; lower num_envs (--batch) or episode_length"
        )


def check_action(action: object, n_actions: int) -> int:
    """Return one discrete ``action`` as an int, or raise naming what is wrong with it."""
    if type(action) is int and 0 <= action < n_actions:  # the common case, first (a step's cost matters)
        return action
    if isinstance(action, np.ndarray):
        if action.shape not in ((), (1,)):
            raise ValueError(f"expected a single discrete action, got an array of shape {action.shape}")
        action = action.reshape(()).item()
    if isinstance(action, bool) or not isinstance(action, numbers.Real):
        raise TypeError(f"action must be an integer in [0, {n_actions}), got {type(action).__name__} {action!r}")
    if not isinstance(action, numbers.Integral):
        if not float(action).is_integer():  # catches NaN and inf too
            raise ValueError(f"action must be an integer in [0, {n_actions}), got {action!r}")
    action = int(action)
    if not 0 <= action < n_actions:
        raise ValueError(f"action {action} is out of range: valid actions are 0..{n_actions - 1}")
    return action


def check_actions(actions: object, n_actions: int, num_envs: int) -> np.ndarray:
    """Return discrete ``actions`` as an int64 array of shape (num_envs,), or raise."""
    arr = np.asarray(actions)
    if arr.shape != (num_envs,):
        raise ValueError(f"expected {num_envs} actions (shape ({num_envs},)), got shape {arr.shape}")
    if arr.dtype == np.bool_ or not (np.issubdtype(arr.dtype, np.integer) or np.issubdtype(arr.dtype, np.floating)):
        raise TypeError(f"actions must be integers in [0, {n_actions}), got dtype {arr.dtype}")
    if np.issubdtype(arr.dtype, np.floating):
        if not np.all(np.isfinite(arr)) or not np.all(arr == np.round(arr)):
            raise ValueError(f"actions must be integers in [0, {n_actions}), got {arr!r}")
    bad = (arr < 0) | (arr >= n_actions)  # before the cast, so that 1e20 is reported as given, not as it wraps
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise ValueError(f"action {arr[i].item()!r} of env {i} is out of range: valid actions are 0..{n_actions - 1}")
    return arr.astype(np.int64)


def check_outputs(action: object, shape: tuple[int, ...]) -> np.ndarray:
    """Return a continuous ``action`` (a network output) as a float array of ``shape``, or raise."""
    arr = np.asarray(action)
    if arr.dtype == np.bool_ or not (np.issubdtype(arr.dtype, np.floating) or np.issubdtype(arr.dtype, np.integer)):
        raise TypeError(f"action (the network output) must be real numbers, got dtype {arr.dtype}")
    if arr.shape != shape:
        raise ValueError(f"action (the network output) must have shape {shape}, got {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ValueError("action (the network output) contains NaN or inf")
    return arr


def check_options(options: dict[str, Any] | None, allowed: Sequence[str], owner: str) -> dict[str, Any]:
    """A copy of the reset ``options``, or ``ValueError`` naming those that ``owner.reset`` does not take."""
    options = dict(options or {})
    unknown = sorted(map(str, set(options) - set(allowed)))
    if unknown:
        takes = f"only the options {list(allowed)}" if allowed else "no options"
        raise ValueError(f"{owner}.reset takes {takes}, got options {unknown}")
    return options
