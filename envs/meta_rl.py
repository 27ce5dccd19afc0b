"""What every meta-RL env here shares: the extra inputs.

Meta-RL convention (TASKS.md section 2): besides the task input, the agent sees a bias 1, the time step divided
by the episode length, the previous step's reward and the previous action one-hot.
"""

from __future__ import annotations

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
