"""envs.meta_rl: the meta-RL inputs written in place into a view of an observation buffer."""

import numpy as np
import pytest

from envs.meta_rl import MetaInputs


def test_meta_inputs_write_bias_time_reward_and_one_hot_into_the_buffer_view():
    obs = np.full((3, 2 + 3 + 4), 7.0, dtype=np.float32)  # two task columns, then the meta-RL inputs
    meta = MetaInputs(episode_length=10, n_actions=4, out=obs[:, 2:])
    meta.write(np.array([0, 5, 10]), np.array([0.0, -0.5, 10.0]), np.array([-1, 0, 3]))
    np.testing.assert_array_equal(obs[:, :2], 7.0)  # task columns untouched
    np.testing.assert_array_equal(obs[:, 2], 1.0)  # bias
    np.testing.assert_allclose(obs[:, 3], [0.0, 0.5, 1.0])  # t / T
    np.testing.assert_array_equal(obs[:, 4], [0.0, -0.5, 10.0])
    np.testing.assert_array_equal(obs[:, 5:], [[0, 0, 0, 0], [1, 0, 0, 0], [0, 0, 0, 1]])  # -1: no action yet
    meta.write(np.array([1, 1, 1]), np.zeros(3), np.array([2, 2, 2]))  # a second write replaces the one-hot
    np.testing.assert_array_equal(obs[:, 5:], [[0, 0, 1, 0]] * 3)


def test_meta_inputs_refuse_a_buffer_of_the_wrong_width():
    with pytest.raises(ValueError, match="take 7 columns"):
        MetaInputs(episode_length=10, n_actions=4, out=np.zeros((3, 6), dtype=np.float32))
