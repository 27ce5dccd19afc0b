"""The supervised tasks as Gymnasium envs: episode structure, reward = -loss, vector env = single envs, fast path."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch
from cases.supervised import SMALL

import envs
from envs.supervised.association import OneShotAssociationTask, ReversalAssociationTask
from envs.supervised.continual_omniglot import ContinualOmniglotTask
from envs.supervised.continual_sine import ContinualSineTask
from envs.supervised.data import load_omniglot
from envs.supervised.image_reconstruction import ImageReconstructionTask
from envs.supervised.losses import step_loss, torch_step_loss
from envs.supervised.omniglot_one_shot import OmniglotOneShotTask
from envs.supervised.pattern_completion import PatternCompletionTask
from envs.supervised.pattern_memory import PatternMemoryTask

IDS = list(SMALL)
EXPECTED = {  # loss kind and output size of each env at its defaults
    "Plastic/PatternCompletion-v0": ("squared_error", 8, 2),
    "Plastic/OneShotAssociation-v0": ("cross_entropy", 2, 20),
    "Plastic/ReversalAssociation-v0": ("cross_entropy", 2, 20),
    "Plastic/PatternMemory-v0": ("squared_error", 1000, 106),
    "Plastic/ImageReconstruction-v0": ("squared_error", 1024, 201),
    "Plastic/OmniglotOneShot-v0": ("cross_entropy", 5, 6),
    "Plastic/ContinualSine-v0": ("squared_error", 1, 500),
    "Plastic/ContinualOmniglot-v0": ("cross_entropy", 10, 70),
}


def make(env_id: str) -> gym.Env:
    return gym.make(env_id, **SMALL[env_id])


def make_vec(env_id: str, num_envs: int, mode: str = "vector_entry_point") -> gym.vector.VectorEnv:
    return gym.make_vec(env_id, num_envs=num_envs, vectorization_mode=mode, **SMALL[env_id])


def rng_episode(task, seed: int):
    """The episode a single env draws after reset(seed=seed)."""
    return task.draw(gym.utils.seeding.np_random(seed)[0])


def test_every_supervised_id_is_covered():
    assert set(IDS) == set(envs.SUPERVISED_ENV_IDS) == set(EXPECTED)


@pytest.mark.parametrize("env_id", IDS)
def test_default_sizes_and_loss_kind(env_id):
    loss, output_dim, length = EXPECTED[env_id]
    env = gym.make(env_id).unwrapped
    assert (env.loss, env.output_dim, env.episode_length) == (loss, output_dim, length)
    assert env.action_space.shape == (output_dim,) and env.observation_space.shape == (env.obs_dim,)
    episode = env.task.draw(np.random.default_rng(0))
    assert episode.inputs.shape == (length, env.obs_dim) and episode.targets.shape == (length, output_dim)
    assert episode.mask.shape == (length,) and episode.mask.sum() >= 1
    assert all(a.dtype == np.float32 for a in episode)
    assert env.observation_space.contains(episode.inputs.min(0))
    assert env.observation_space.contains(episode.inputs.max(0))


# -- reward = -loss ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("env_id", IDS)
def test_reward_is_minus_the_masked_loss(env_id):
    env = make(env_id)
    task = env.unwrapped.task
    episode = rng_episode(task, 5)
    n = task.output_dim
    rng = np.random.default_rng(0)
    for kind_of_action in ("perfect", "zero", "random"):
        obs, _ = env.reset(seed=5)
        for t in range(task.episode_length):
            np.testing.assert_array_equal(obs, episode.inputs[t])
            target, mask = episode.targets[t], float(episode.mask[t])
            if kind_of_action == "perfect":
                action = target if task.loss == "squared_error" else 50.0 * target
            elif kind_of_action == "zero":
                action = np.zeros(n, dtype=np.float32)
            else:
                action = rng.normal(size=n).astype(np.float32)
            obs, reward, terminated, truncated, info = env.step(action)
            assert not terminated and truncated == (t == task.episode_length - 1)
            np.testing.assert_array_equal(info["target"], target)
            assert info["loss_mask"] == mask and info["loss"] == pytest.approx(-reward)
            if mask == 0.0:
                assert reward == 0.0
            elif kind_of_action == "perfect":
                assert -1e-9 < reward <= 0.0
            elif kind_of_action == "zero":  # chance levels: sum of squared targets, or log(n) for one label
                chance = np.square(target).sum() if task.loss == "squared_error" else np.log(n)
                assert reward == pytest.approx(-chance, rel=1e-6)
            else:  # against the torch loss the trainer uses
                expected = torch_step_loss(torch.from_numpy(action), torch.from_numpy(target), task.loss).item()
                assert reward == pytest.approx(-expected * mask, rel=1e-5)
        np.testing.assert_array_equal(obs, np.zeros(task.obs_dim))  # no input after the last step


def test_losses_numpy_and_torch_agree():
    rng = np.random.default_rng(1)
    outputs, targets = rng.normal(size=(4, 3, 5)), np.eye(5)[rng.integers(5, size=(4, 3))]
    for kind in ("squared_error", "cross_entropy"):
        expected = torch_step_loss(torch.from_numpy(outputs), torch.from_numpy(targets), kind).numpy()
        np.testing.assert_allclose(step_loss(outputs, targets, kind), expected, rtol=1e-10)
    manual = -np.log(np.exp(outputs[0, 0]) / np.exp(outputs[0, 0]).sum())[targets[0, 0].argmax()]
    assert step_loss(outputs, targets, "cross_entropy")[0, 0] == pytest.approx(manual)
    with pytest.raises(ValueError, match="unknown loss kind"):
        step_loss(outputs, targets, "mse")


# -- vector env -------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("env_id", IDS)
def test_sample_episodes_equal_stepping(env_id):
    B = 2
    fast, stepped = make_vec(env_id, B), make_vec(env_id, B)
    T = fast.episode_length
    first, second = fast.sample_episodes(seed=4), fast.sample_episodes()
    shapes = {"inputs": (T, B, fast.obs_dim), "targets": (T, B, fast.output_dim), "mask": (T, B)}
    assert {key: value.shape for key, value in first.items()} == shapes
    assert all(value.dtype == np.float32 for value in first.values())
    obs, _ = stepped.reset(seed=4)
    for episode in (first, second):
        for t in range(T):
            np.testing.assert_array_equal(obs, episode["inputs"][t])
            obs, _, _, truncated, info = stepped.step(np.zeros((B, fast.output_dim), dtype=np.float32))
            np.testing.assert_array_equal(info["target"], episode["targets"][t])
            np.testing.assert_array_equal(info["loss_mask"], episode["mask"][t])
        assert truncated.all()
        obs, *_ = stepped.step(np.zeros((B, fast.output_dim), dtype=np.float32))  # autoreset
    # seeding is per sub-env: a batch seeded s holds the episodes of single envs seeded s, s + 1
    single = rng_episode(fast.task, 5)
    np.testing.assert_array_equal(first["inputs"][:, 1], single.inputs)
    assert not np.array_equal(first["inputs"], second["inputs"])


def test_sample_episodes_leave_the_stepped_episode_alone():
    venv = make_vec("Plastic/ContinualSine-v0", 2)
    obs, _ = venv.reset(seed=0)
    reference = venv.sample_episodes(seed=0)
    venv.sample_episodes(seed=99)
    for t in range(1, 4):
        obs, *_ = venv.step(np.zeros((2, 1), dtype=np.float32))
        np.testing.assert_array_equal(obs, reference["inputs"][t])


# -- structure of each task ------------------------------------------------------------------------------------
def test_pattern_completion_structure():
    task = PatternCompletionTask()
    for seed in range(30):
        inputs, targets, mask = task.draw(np.random.default_rng(seed))
        pattern = inputs[0]
        assert set(np.unique(pattern)) <= {-1.0, 1.0}
        np.testing.assert_array_equal(targets, [pattern, pattern])
        kept = np.flatnonzero(inputs[1])
        assert len(kept) == 1 and inputs[1, kept[0]] == pattern[kept[0]]
        np.testing.assert_array_equal(mask, [0.0, 1.0])
    three = PatternCompletionTask(n_bits=12, n_kept=3).draw(np.random.default_rng(0))
    assert np.count_nonzero(three.inputs[1]) == 3


@pytest.mark.parametrize("order", ["alternate", "random"])
def test_one_shot_association_structure(order):
    task = OneShotAssociationTask(query_order=order)
    firsts = set()
    for seed in range(30):
        inputs, targets, mask = task.draw(np.random.default_rng(seed))
        patterns, suffix = inputs[:, :8], inputs[:, 8:]
        assert np.any(patterns[0] != patterns[1])
        assert suffix[0].sum() == 1 and suffix[1].sum() == 1 and not np.array_equal(suffix[0], suffix[1])
        assert not suffix[2:].any()  # neutral suffix 00 after the two labelled steps
        firsts.add(int(suffix[0].argmax()))
        for t in range(20):
            shown = 0 if np.array_equal(patterns[t], patterns[0]) else 1
            assert np.array_equal(patterns[t], patterns[shown])
            np.testing.assert_array_equal(targets[t], suffix[shown])  # the label taught with this pattern
            if order == "alternate":
                assert shown == t % 2
        np.testing.assert_array_equal(mask, [0, 0] + [1] * 18)
    assert firsts == {0, 1}  # which label comes first is random


def test_reversal_association_labels_swap_at_step_10():
    task = ReversalAssociationTask()
    for seed in range(30):
        inputs, targets, mask = task.draw(np.random.default_rng(seed))
        patterns, suffix = inputs[:, :8], inputs[:, 8:]
        np.testing.assert_array_equal(patterns[10], patterns[0])
        np.testing.assert_array_equal(patterns[11], patterns[1])
        np.testing.assert_array_equal(suffix[10], suffix[0][::-1])  # relearning: the swapped labels
        np.testing.assert_array_equal(suffix[11], suffix[1][::-1])
        assert not suffix[[*range(2, 10), *range(12, 20)]].any()
        for t in range(20):
            shown = t % 2
            label = suffix[shown] if t < 10 else suffix[shown][::-1]
            np.testing.assert_array_equal(targets[t], label)
        expected_mask = np.ones(20)
        expected_mask[[0, 1, 10, 11]] = 0
        np.testing.assert_array_equal(mask, expected_mask)


def test_association_patterns_always_differ():
    task = OneShotAssociationTask(n_bits=1)  # half of the raw draws are equal pairs
    for seed in range(40):
        inputs = task.draw(np.random.default_rng(seed)).inputs
        assert inputs[0, 0] != inputs[1, 0]


def test_pattern_memory_schedule_probe_and_target():
    task = PatternMemoryTask(n_patterns=4, pattern_size=50, n_repeats=3, show_steps=3, blank_steps=2,
                             probe_steps=4, degrade_fraction=0.5, loss_steps=2)
    assert task.episode_length == 3 * 4 * 5 + 4
    inputs, targets, mask = task.draw(np.random.default_rng(3))
    study = inputs[:60].reshape(12, 5, 50)
    assert not study[:, 3:].any()  # blank steps
    shown = study[:, 0]
    assert np.all(study[:, :3] == shown[:, None])
    patterns = np.unique(shown, axis=0)
    assert len(patterns) == 4 and np.all(patterns.sum(axis=1) == 0)  # balanced +-1 patterns
    for r in range(3):  # each repetition shows every pattern once
        assert len(np.unique(shown[4 * r: 4 * r + 4], axis=0)) == 4
    probe = inputs[-1]
    assert np.all(inputs[-4:] == probe)
    target = targets[-1]
    assert any(np.array_equal(target, p) for p in patterns)
    assert np.count_nonzero(probe == 0) == 25
    np.testing.assert_array_equal(probe[probe != 0], target[probe != 0])
    np.testing.assert_array_equal(mask, [0] * 62 + [1, 1])
    default = PatternMemoryTask()
    assert default.episode_length == 106 and default.obs_dim == default.output_dim == 1000


def test_image_reconstruction_structure():
    task = ImageReconstructionTask(image_size=8, show_steps=2, blank_steps=1, n_repeats=3, probe_steps=3)
    pool = {image.tobytes() for image in task.pool}
    halves = set()
    for seed in range(12):
        inputs, targets, mask = task.draw(np.random.default_rng(seed))
        study = inputs[:27].reshape(9, 3, 64)
        assert not study[:, 2].any()
        assert all(image.tobytes() in pool for image in study[:, 0])
        assert len(np.unique(study[:, 0], axis=0)) == 3
        target, probe = targets[-1], inputs[-1]
        assert target.tobytes() in pool and any(np.array_equal(target, image) for image in study[:, 0])
        assert np.all(inputs[-3:] == probe)
        top_zero = not probe[:32].any()
        halves.add(top_zero)
        kept = slice(32, 64) if top_zero else slice(0, 32)
        np.testing.assert_array_equal(probe[kept], target[kept])
        assert not probe[slice(0, 32) if top_zero else slice(32, 64)].any()
        np.testing.assert_array_equal(mask, [0] * 29 + [1])
        assert inputs.min() >= -1 and inputs.max() <= 1
    assert halves == {True, False}


@pytest.fixture(scope="module")
def omniglot_lookup():
    """Every stored drawing, in each of its 4 rotations -> (class, drawing index, quarter turns)."""
    data = load_omniglot()
    lookup = {}
    for c in range(data.n_classes):
        for j, image in enumerate(data.class_images(c)):
            for k in range(4):
                lookup.setdefault(np.rot90(image, k).tobytes(), (c, j, k))
    return lookup


def _identify(lookup, flat_images, size=31):
    return [lookup[np.ascontiguousarray(image.reshape(size, size)).tobytes()] for image in flat_images]


def test_omniglot_one_shot_structure(omniglot_lookup):
    task = OmniglotOneShotTask(n_way=5, n_shots=2)
    D = task.n_pixels
    turns_seen = set()
    for seed in range(15):
        inputs, targets, mask = task.draw(np.random.default_rng(seed))
        assert inputs.shape == (11, D + 5)
        ids = _identify(omniglot_lookup, inputs[:, :D])
        labels = inputs[:-1, D:].argmax(axis=1)
        assert np.all(inputs[:-1, D:].sum(axis=1) == 1) and not inputs[-1, D:].any()
        for r in range(2):  # every round shows each label once
            assert sorted(labels[5 * r: 5 * r + 5]) == list(range(5))
        class_of_label = {}
        for (c, _, k), label in zip(ids[:-1], labels, strict=True):
            assert class_of_label.setdefault(label, (c, k)) == (c, k)  # one class and one rotation per label
            turns_seen.add(k)
        assert len({c for c, _ in class_of_label.values()}) == 5
        test_class, test_drawing, test_turns = ids[-1]
        answer = int(targets[-1].argmax())
        assert class_of_label[answer] == (test_class, test_turns)
        shown_drawings = {j for (c, j, _) in ids[:-1] if c == test_class}
        assert len(shown_drawings) == 2 and test_drawing not in shown_drawings  # a new drawing
        np.testing.assert_array_equal(mask, [0] * 10 + [1])
    assert len(turns_seen) == 4


@pytest.mark.parametrize("ordering", ["continual", "iid"])
def test_continual_omniglot_structure(omniglot_lookup, ordering):
    task = ContinualOmniglotTask(n_classes=4, n_shots=3, n_queries=2, ordering=ordering)
    D = task.n_pixels
    blocky = []
    for seed in range(10):
        inputs, targets, mask = task.draw(np.random.default_rng(seed))
        assert inputs.shape == (20, D + 4)
        ids = _identify(omniglot_lookup, inputs[:, :D])
        labels = inputs[:12, D:].argmax(axis=1)
        assert np.all(inputs[:12, D:].sum(axis=1) == 1) and not inputs[12:, D:].any()
        np.testing.assert_array_equal(targets[:12].argmax(axis=1), labels)
        assert sorted(np.bincount(labels).tolist()) == [3, 3, 3, 3]
        blocky.append(all(len(set(labels[3 * b: 3 * b + 3])) == 1 for b in range(4)))
        class_of_label = {int(label): c for (c, _, _), label in zip(ids[:12], labels, strict=True)}
        assert len(set(class_of_label.values())) == 4
        learnt = {(c, j) for c, j, _ in ids[:12]}
        query_labels = targets[12:].argmax(axis=1)
        assert sorted(np.bincount(query_labels).tolist()) == [2, 2, 2, 2]
        for (c, j, _), label in zip(ids[12:], query_labels, strict=True):
            assert class_of_label[int(label)] == c and (c, j) not in learnt  # new drawings of known classes
        np.testing.assert_array_equal(mask, [0] * 12 + [1] * 8)
    assert all(blocky) if ordering == "continual" else not all(blocky)


@pytest.mark.parametrize("ordering", ["continual", "iid"])
def test_continual_sine_structure(ordering):
    task = ContinualSineTask(n_functions=4, samples_per_function=6, queries_per_function=3, ordering=ordering)
    assert task.episode_length == 36 and task.obs_dim == 7 and task.output_dim == 1
    sorted_learning = []
    for seed in range(10):
        inputs, targets, mask = task.draw(np.random.default_rng(seed))
        ids = inputs[:, :4].argmax(axis=1)
        assert np.all(inputs[:, :4].sum(axis=1) == 1)
        x, y, flag = inputs[:, 4], inputs[:, 5], inputs[:, 6]
        assert np.all(np.abs(x) <= 5)
        np.testing.assert_array_equal(flag, [1] * 24 + [0] * 12)
        np.testing.assert_array_equal(y[:24], targets[:24, 0])  # the target is shown while learning
        assert not y[24:].any()
        assert sorted(np.bincount(ids[:24]).tolist()) == [6] * 4 and sorted(np.bincount(ids[24:]).tolist()) == [3] * 4
        sorted_learning.append(np.array_equal(ids[:24], np.repeat(np.arange(4), 6)))
        for k in range(4):  # every (x, target) of a function lies on one A sin(x + phi), A and phi in range
            rows = ids == k
            basis = np.stack([np.sin(x[rows]), np.cos(x[rows])], axis=1)
            (a, b), *_ = np.linalg.lstsq(basis, targets[rows, 0], rcond=None)
            np.testing.assert_allclose(basis @ [a, b], targets[rows, 0], atol=1e-4)
            amplitude, phase = np.hypot(a, b), np.arctan2(b, a)
            assert 0.1 - 1e-4 <= amplitude <= 5.1 + 1e-4 and -1e-4 <= phase <= np.pi + 1e-4
        np.testing.assert_array_equal(mask, [0] * 24 + [1] * 12)
    assert all(sorted_learning) if ordering == "continual" else not any(sorted_learning)


# -- bad input ----------------------------------------------------------------------------------------------------
@pytest.mark.filterwarnings("ignore:.*render_mode='human' that is not in the possible render_modes")
def test_bad_actions_and_misuse():
    env = make("Plastic/PatternCompletion-v0").unwrapped
    with pytest.raises(RuntimeError, match="reset"):
        env.step(np.zeros(8))
    env.reset(seed=0)
    with pytest.raises(ValueError, match=r"shape \(8,\)"):
        env.step(np.zeros(7))
    with pytest.raises(ValueError, match="NaN"):
        env.step(np.full(8, np.nan))
    with pytest.raises(TypeError, match="real numbers"):
        env.step(np.zeros(8, dtype=bool))
    env.step(np.zeros(8))
    env.step(np.zeros(8))
    with pytest.raises(RuntimeError, match="episode is over"):
        env.step(np.zeros(8))
    venv = make_vec("Plastic/PatternCompletion-v0", 3)
    with pytest.raises(RuntimeError, match="reset"):
        venv.step(np.zeros((3, 8)))
    venv.reset(seed=0)
    with pytest.raises(ValueError, match=r"shape \(3, 8\)"):
        venv.step(np.zeros((2, 8)))
    with pytest.raises(ValueError, match="expected 3 seeds"):
        venv.reset(seed=[1, 2])
    with pytest.raises(TypeError, match="seed must be"):
        venv.sample_episodes(seed="1")
    with pytest.raises(ValueError, match="render"):
        gym.make("Plastic/PatternCompletion-v0", render_mode="human")
    with pytest.raises(TypeError, match=r"unknown keyword arguments \[.n_bitz.\]; it takes \[.n_bits., .n_kept.\]"):
        gym.make("Plastic/PatternCompletion-v0", n_bitz=3)


@pytest.mark.parametrize(
    ("task_class", "kwargs", "error", "match"),
    [
        (PatternCompletionTask, {"n_bits": 0}, ValueError, "n_bits must be >= 1"),
        (PatternCompletionTask, {"n_kept": 9}, ValueError, "n_kept=9 must be <= n_bits=8"),
        (OneShotAssociationTask, {"query_order": "sorted"}, ValueError, "unknown query_order"),
        (OneShotAssociationTask, {"n_steps": 2}, ValueError, "n_steps must be >= 3"),
        (ReversalAssociationTask, {"reversal_step": 18}, ValueError, "no query step"),
        (PatternMemoryTask, {"pattern_size": 1}, ValueError, "pattern_size must be >= 2"),
        (PatternMemoryTask, {"loss_steps": 7}, ValueError, "loss_steps=7 must be <= probe_steps=6"),
        (PatternMemoryTask, {"degrade_fraction": 1.5}, ValueError, "degrade_fraction"),
        (PatternMemoryTask, {"n_patterns": 2.5}, TypeError, "n_patterns must be an integer"),
        (ImageReconstructionTask, {"image_size": 8, "n_images": 10_000}, ValueError, "larger than the"),
        (ImageReconstructionTask, {"image_size": 8, "split": "dev"}, ValueError, "unknown split"),
        (ContinualSineTask, {"ordering": "shuffled"}, ValueError, "unknown ordering"),
        (ContinualSineTask, {"amplitude_range": (5.0, 1.0)}, ValueError, "low <= high"),
        (ContinualSineTask, {"x_range": (0.0,)}, ValueError, "pair"),
        (ContinualSineTask, {"samples_per_function": 0}, ValueError, "samples_per_function must be >= 1"),
    ],
)
def test_bad_task_arguments(task_class, kwargs, error, match):
    with pytest.raises(error, match=match):
        task_class(**kwargs)
