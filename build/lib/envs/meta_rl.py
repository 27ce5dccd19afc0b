"""What every meta-RL env here shares: the extra inputs.

Meta-RL convention (TASKS.md section 2): besides the task input, the agent sees a bias 1, the time step divided
by the episode length, the previous step's reward and the previous action one-hot.
"""

from __future__ import annotations

import numpy as np


class MetaInputs:
    """Writes bias, t/T, previous reward and previous-action one-hot into the last ``3 + n_actions`` columns of an
    observation buffer, in place.

    Lookup tables instead of arithmetic, so that a step costs three small array writes whatever B is (the single
    env is a batch of one): t/T for every t in 0..T, and the one-hot rows with an all-zero row last, which
    ``prev_action = -1`` (no previous action, the first step of an episode) selects.
    """

    def __init__(self, episode_length: int, n_actions: int, out: np.ndarray) -> None:
        """``out``: the (B, 3 + n_actions) columns to write (a view of the observation buffer); sets the bias."""
        self.size = 3 + n_actions
        if out.shape[1:] != (self.size,):
            raise ValueError(f"the meta-RL inputs take {self.size} columns, got a buffer of shape {out.shape}")
        self.time = np.arange(episode_length + 1, dtype=np.float32) / episode_length  # (T + 1,)
        self.one_hot = np.vstack([np.eye(n_actions, dtype=np.float32), np.zeros(n_actions, dtype=np.float32)])
        out[:, 0] = 1.0
        # one view per input, made once (a view per step costs as much as the write)
        self._time_out, self._reward_out, self._action_out = out[:, 1], out[:, 2], out[:, 3:]

    def write(self, t: np.ndarray, prev_reward: np.ndarray, prev_action: np.ndarray) -> None:
        """Fill the buffer from ``t``, ``prev_reward``, ``prev_action`` (B,)."""
        self._time_out[...] = self.time[t]
        self._reward_out[...] = prev_reward
        self.one_hot.take(prev_action, axis=0, out=self._action_out)
