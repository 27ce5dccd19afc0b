"""What every meta-RL env here shares: the extra inputs.

Meta-RL convention (TASKS.md section 2): besides the task input, the agent sees a bias 1, the time step divided
by the episode length, the previous step's reward and the previous action one-hot.
"""

from __future__ import annotations

import numpy as np


class MetaInputs:
    """Writes bias, t/T, previous reward and previous-action one-hot (``3 + n_actions`` columns) in place.

    Lookup tables instead of arithmetic, so that a step costs three small array writes whatever B is (the single
    env is a batch of one): t/T for every t in 0..T, and the one-hot rows with an all-zero row last, which
    ``prev_action = -1`` (no previous action, the first step of an episode) selects.
    """

    def __init__(self, episode_length: int, n_actions: int) -> None:
        self.size = 3 + n_actions
        self.time = np.arange(episode_length + 1, dtype=np.float32) / episode_length  # (T + 1,)
        self.one_hot = np.vstack([np.eye(n_actions, dtype=np.float32), np.zeros(n_actions, dtype=np.float32)])

    def start(self, out: np.ndarray) -> None:
        """Set the constant column (the bias) of ``out`` (B, 3 + n_actions)."""
        out[:, 0] = 1.0

    def write(self, out: np.ndarray, t: np.ndarray, prev_reward: np.ndarray, prev_action: np.ndarray) -> None:
        """Fill ``out`` (B, 3 + n_actions), already ``start``-ed, from ``t``, ``prev_reward``, ``prev_action`` (B,)."""
        out[:, 1] = self.time[t]
        out[:, 2] = prev_reward
        out[:, 3:] = self.one_hot[prev_action]
