"""What every meta-RL env here shares: the extra inputs and strict action checks.

Meta-RL convention (TASKS.md section 2): besides the task input, the agent sees a bias 1, the time step divided
by the episode length, the previous step's reward and the previous action one-hot.
"""

from __future__ import annotations

import numbers

import numpy as np


def meta_features(
    t: np.ndarray | int, episode_length: int, prev_reward: np.ndarray | float, prev_action: np.ndarray | int,
    n_actions: int,
) -> np.ndarray:
    """Bias, t/T, previous reward and previous-action one-hot: shape (B, 3 + n_actions), or (3 + n_actions,).

    ``prev_action`` is -1 at the first step of an episode (no previous action: all-zero one-hot).
    Scalars give a 1-D vector, arrays of shape (B,) give a (B, 3 + n_actions) matrix.
    """
    scalar = np.ndim(prev_action) == 0
    prev_action = np.atleast_1d(np.asarray(prev_action, dtype=np.int64))
    batch = prev_action.shape[0]
    out = np.zeros((batch, 3 + n_actions), dtype=np.float32)
    out[:, 0] = 1.0
    out[:, 1] = np.asarray(t, dtype=np.float32) / episode_length
    out[:, 2] = np.asarray(prev_reward, dtype=np.float32)
    taken = prev_action >= 0
    out[np.flatnonzero(taken), 3 + prev_action[taken]] = 1.0
    return out[0] if scalar else out


def check_action(action: object, n_actions: int) -> int:
    """Return ``action`` as an int, or raise ``ValueError``/``TypeError`` naming what is wrong with it."""
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
    """Return ``actions`` as an int64 array of shape (num_envs,), or raise a clear error."""
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
