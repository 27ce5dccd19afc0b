"""Issue 18: nothing damaged silently, no code run from data, one-line errors for every fault.

Each test reproduces one fault of the issue's probe; tiny runs (ReversalBandit, hidden 4, batch 4, 5 steps).
"""

from __future__ import annotations

import csv
import errno
import json
import os
import pickle
import signal
import subprocess
import sys
import time
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import torch
from cases import disk as disk_cases

import envs  # noqa: F401
from agents import checkpoint as checkpoint_module
from agents.checkpoint import load_checkpoint, save_checkpoint
from agents.cli import evaluate, train
from agents.logger import read_metrics

BANDIT = "Plastic/ReversalBandit-v0"
TINY = ["--env", BANDIT, "--core", "rnn", "--hidden", "4", "--batch", "4", "--env-kwargs",
        '{"episode_length": 5}', "--seed", "1", "--no-progress", "--no-tensorboard"]


@pytest.fixture(autouse=True)
def _one_thread():
    yield
    torch.set_num_threads(1)  # train.main sets the process's thread count


def tiny_run(out: Path, *extra: str, episodes: int = 16, every: int = 2) -> None:
    assert train.main([*TINY, "--episodes", str(episodes), "--checkpoint-every", str(every), "--out", str(out),
                       *extra]) == 0


def resume(out: Path, *extra: str) -> int:
    return train.main(["--out", str(out), "--resume", "--no-progress", "--no-tensorboard", *extra])


def one_line_error(capsys, prog: str = "plastic-train") -> str:
    err = capsys.readouterr().err
    assert err.startswith(f"{prog}: error: ") and err.count("\n") == 1, err
    return err


def cells(out: Path) -> list[dict[str, str]]:
    with open(out / "metrics.csv", newline="") as f:
        return [{k: v for k, v in row.items() if k != "wall_time"} for row in csv.DictReader(f)]


# -- 1. metrics.csv is verified on resume --------------------------------------------------------------------------
def test_emptied_metrics_refuse_resume_and_repair_rebuilds_them(tmp_path, capsys):
    out = tmp_path / "run"
    tiny_run(out, episodes=16)
    before = cells(out)
    (out / "metrics.csv").write_text("")
    assert resume(out, "--episodes", "24") == 2
    err = one_line_error(capsys)
    assert "metrics.csv" in err and "--repair-metrics" in err
    assert (out / "metrics.csv").read_text() == ""  # nothing changed
    assert resume(out, "--episodes", "24", "--repair-metrics") == 0
    after = cells(out)
    assert len(after) == 6 and after[:4] == before


def test_mid_line_cut_metrics_refuse_resume_and_read_metrics_says_why(tmp_path, capsys):
    out = tmp_path / "run"
    tiny_run(out, episodes=16)
    text = (out / "metrics.csv").read_text()
    (out / "metrics.csv").write_text(text[: len(text) - 7])  # the last covered row cut mid-line
    assert resume(out, "--episodes", "24") == 2
    err = one_line_error(capsys)
    assert "metrics.csv" in err and ("partial" in err or "cut" in err)
    with pytest.raises(ValueError, match="metrics.csv"):
        read_metrics(out)
    # what the old code made of it: new rows appended to the cut line
    (out / "metrics.csv").write_text(text[: len(text) - 7] + text.splitlines(keepends=True)[-1])
    with pytest.raises(ValueError, match="damaged"):
        read_metrics(out)
    (out / "metrics.csv").write_text(text[: len(text) - 7])
    assert resume(out, "--episodes", "24", "--repair-metrics") == 0
    assert [row["iteration"] for row in read_metrics(out)] == [1, 2, 3, 4, 5, 6]


def test_a_changed_covered_row_is_refused(tmp_path, capsys):
    out = tmp_path / "run"
    tiny_run(out, episodes=16)
    lines = (out / "metrics.csv").read_text().splitlines(keepends=True)
    lines[2] = lines[2].replace(",", ",9", 1)
    (out / "metrics.csv").write_text("".join(lines))
    assert resume(out, "--episodes", "24") == 2
    assert "differs" in one_line_error(capsys)


def test_resume_without_a_checkpoint_but_with_metrics_refuses(tmp_path, capsys):
    out = tmp_path / "run"
    tiny_run(out, episodes=16)
    (out / "checkpoint.pt").unlink()
    rows = (out / "metrics.csv").read_text()
    assert resume(out) == 2
    err = one_line_error(capsys)
    assert "checkpoint.pt" in err and "metrics.csv" in err
    assert (out / "metrics.csv").read_text() == rows


# -- 2. checkpoint digest and finite weights ------------------------------------------------------------------------
def test_a_bit_flipped_checkpoint_is_refused_by_evaluate_and_resume(tmp_path, capsys):
    out = tmp_path / "run"
    tiny_run(out, episodes=16)
    weight = load_checkpoint(out / "checkpoint.pt")["trainer"]["model"]["policy.weight"]
    data = bytearray((out / "checkpoint.pt").read_bytes())
    at = data.find(weight.numpy().tobytes())
    assert at >= 0
    data[at + 3] ^= 0x40  # the exponent's top bit of the first float: a weight of about 1e38
    (out / "checkpoint.pt").write_bytes(bytes(data))
    assert evaluate.main([str(out), "--episodes", "4", "--batch", "4"]) == 2
    assert "digest" in one_line_error(capsys, "plastic-evaluate")
    assert resume(out, "--episodes", "24") == 2
    assert "digest" in one_line_error(capsys)


def test_a_nan_weight_in_a_valid_checkpoint_is_refused_everywhere(tmp_path, capsys):
    out = tmp_path / "run"
    tiny_run(out, episodes=16)
    payload = load_checkpoint(out / "checkpoint.pt")
    payload.pop("format"), payload.pop("digest", None)
    payload["trainer"]["model"]["policy.weight"][0, 0] = float("nan")
    save_checkpoint(out / "checkpoint.pt", payload)  # a crafted checkpoint with a valid digest
    assert evaluate.main([str(out), "--episodes", "4", "--batch", "4"]) == 2
    assert "non-finite" in one_line_error(capsys, "plastic-evaluate")
    assert resume(out, "--episodes", "24") == 2
    assert "non-finite" in one_line_error(capsys)


def test_a_checkpoint_that_does_not_fit_its_config_gets_one_line(tmp_path, capsys):
    out = tmp_path / "run"
    tiny_run(out, episodes=16)
    payload = load_checkpoint(out / "checkpoint.pt")
    payload.pop("format"), payload.pop("digest", None)
    payload["trainer"]["model"]["policy.weight"] = torch.zeros(3, 7)
    save_checkpoint(out / "checkpoint.pt", payload)
    assert evaluate.main([str(out), "--episodes", "4", "--batch", "4"]) == 2
    assert "policy.weight" in one_line_error(capsys, "plastic-evaluate")
    assert resume(out, "--episodes", "24") == 2
    assert "policy.weight" in one_line_error(capsys)


# -- 4. no code from data ---------------------------------------------------------------------------------------------
class _Payload:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_a_crafted_cifar_batch_runs_no_code(tmp_path):
    from envs.supervised.natural_images import load_natural_images

    marker = tmp_path / "marker"
    folder = tmp_path / "cifar"
    folder.mkdir()
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        (folder / name).write_bytes(pickle.dumps({b"data": _Payload(marker), b"labels": [0]}))
    with pytest.raises(ValueError, match="CIFAR-10"):
        load_natural_images(str(folder), 32, "test")
    assert not marker.exists()


def test_the_cifar_binary_version_is_read(tmp_path):
    from envs.supervised.natural_images import load_natural_images

    folder = tmp_path / "cifar-10-batches-bin"
    folder.mkdir()
    rng = np.random.default_rng(0)
    pixels = {}
    for name in [f"data_batch_{i}.bin" for i in range(1, 6)] + ["test_batch.bin"]:
        records = np.zeros((3, 3073), dtype=np.uint8)
        records[:, 0] = rng.integers(0, 10, 3)
        records[:, 1:] = rng.integers(0, 256, (3, 3072))
        pixels[name] = records[:, 1:]
        (folder / name).write_bytes(records.tobytes())
    images = load_natural_images(str(tmp_path), 32, "test")
    raw = pixels["test_batch.bin"][0].reshape(3, 32, 32).mean(0)
    expected = (raw - raw.mean()) / np.abs(raw - raw.mean()).max()
    np.testing.assert_allclose(images[0], expected, atol=1e-5)
    (folder / "test_batch.bin").write_bytes(b"\0" * 100)
    load_natural_images.__globals__["cifar10_gray"].cache_clear()
    with pytest.raises(ValueError, match="3073"):
        load_natural_images(str(folder), 32, "test")


def test_a_crafted_env_id_in_config_json_imports_nothing(tmp_path):
    out = tmp_path / "run"
    tiny_run(out, episodes=8)
    marker = tmp_path / "marker"
    (tmp_path / "evilmod.py").write_text(f"open({str(marker)!r}, 'w').close()\n")
    config = json.loads((out / "config.json").read_text())
    config["env_id"] = "evilmod:Zen-v0"
    (out / "config.json").write_text(json.dumps(config))
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    for command in (["agents.cli.train", "--out", str(out), "--resume", "--no-progress"],
                    ["agents.cli.evaluate", str(out), "--episodes", "4", "--batch", "4"]):
        done = subprocess.run([sys.executable, "-m", *command], capture_output=True, text=True, env=env,
                              timeout=120)
        assert done.returncode == 2, done.stderr
        assert done.stderr.count("\n") == 1 and "evilmod" in done.stderr, done.stderr
        assert not marker.exists()


# -- 5. Ctrl-C with TensorBoard on ------------------------------------------------------------------------------------
@pytest.mark.parametrize("signal_name", ["SIGINT"])
def test_sigint_with_tensorboard_exits_within_5_seconds(tmp_path, signal_name):
    out = tmp_path / "run"
    args = [a for a in TINY if a != "--no-tensorboard"]
    proc = subprocess.Popen([sys.executable, "-m", "agents.cli.train", *args, "--episodes", str(4 * 100000),
                             "--checkpoint-every", "100000", "--out", str(out)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while not (out / "metrics.csv").exists() or len((out / "metrics.csv").read_text().splitlines()) < 20:
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline
            time.sleep(0.05)
        sent = time.monotonic()
        proc.send_signal(getattr(signal, signal_name))
        proc.communicate(timeout=30)
        took = time.monotonic() - sent
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 128 + getattr(signal, signal_name)
    assert took < 5.0, f"exit took {took:.1f} s"


# -- 6. one line for every fault ------------------------------------------------------------------------------------
fill = disk_cases.fill  # the small_disk fixture: tests/conftest.py


def test_disk_full_gives_one_line_and_a_resumable_run(small_disk, capsys):
    out = small_disk / "run"
    tiny_run(out, episodes=8, every=1)
    filler = fill(small_disk)
    assert resume(out, "--episodes", "400", "--checkpoint-every", "1") == 2
    err = one_line_error(capsys)
    assert "No space left" in err and str(out) in err
    assert load_checkpoint(out / "checkpoint.pt")["iteration"] >= 2
    filler.unlink()
    assert resume(out, "--episodes", "40") == 0
    assert [row["iteration"] for row in read_metrics(out)] == list(range(1, 11))


def test_disk_full_while_writing_a_checkpoint_keeps_the_last_one(tmp_path, monkeypatch, capsys):
    out = tmp_path / "run"
    tiny_run(out, episodes=8, every=1)
    real_save = torch.save

    def full(obj, f, *args, **kwargs):
        real_save(obj, f, *args, **kwargs)
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(checkpoint_module.torch, "save", full)
    assert resume(out, "--episodes", "16") == 2
    err = one_line_error(capsys)
    assert "checkpoint.pt" in err and "No space left" in err and "--resume" in err
    monkeypatch.setattr(checkpoint_module.torch, "save", real_save)
    assert load_checkpoint(out / "checkpoint.pt")["iteration"] == 2
    assert not [p for p in out.iterdir() if p.name.startswith(".tmp-")]
    assert resume(out, "--episodes", "16") == 0
    assert len(read_metrics(out)) == 4


@pytest.mark.parametrize("content", ["[1, 2]", "null", "[" * 100000 + "]" * 100000, '{"a": ' * 5000 + "1" +
                                     "}" * 5000])
def test_a_damaged_config_json_gets_one_line(tmp_path, capsys, content):
    out = tmp_path / "run"
    tiny_run(out, episodes=8)
    (out / "config.json").write_text(content)
    assert resume(out) == 2
    assert "config.json" in one_line_error(capsys)
    assert evaluate.main([str(out), "--episodes", "4", "--batch", "4"]) == 2
    assert "config.json" in one_line_error(capsys, "plastic-evaluate")


@pytest.mark.parametrize("device", ["garbage", "cuda"])
def test_an_unusable_device_gets_one_line(tmp_path, capsys, device):
    if device == "cuda" and torch.cuda.is_available():
        pytest.skip("this torch has a GPU")
    assert train.main([*TINY, "--episodes", "8", "--device", device, "--out", str(tmp_path / "run")]) == 2
    assert device in one_line_error(capsys)
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("flag, value", [("--hidden", "1000000"), ("--batch", "100000000")])
def test_huge_sizes_are_refused_before_allocating(tmp_path, capsys, flag, value):
    args = [a for a in TINY]
    i = args.index(flag)
    args[i + 1] = value
    started = time.monotonic()
    assert train.main([*args, "--episodes", "8", "--out", str(tmp_path / "run")]) == 2
    assert time.monotonic() - started < 5
    err = one_line_error(capsys)
    assert flag[2:] in err


@pytest.mark.parametrize("kwargs", [{"episode_length": 200000}, {"episode_length": 100000, "n_arms": 1000}])
def test_huge_episodes_are_refused_up_front(kwargs):
    started = time.monotonic()
    with pytest.raises(ValueError, match="episode_length|GiB"):
        gym.make_vec(BANDIT, num_envs=64, vectorization_mode="vector_entry_point", **kwargs)
    with pytest.raises(ValueError):
        gym.make_vec("Plastic/Maze-v0", num_envs=4, vectorization_mode="vector_entry_point", size=100001)
    with pytest.raises(ValueError):
        gym.make_vec("Plastic/Maze-v0", num_envs=10**9, vectorization_mode="vector_entry_point")
    assert time.monotonic() - started < 2


def test_resume_compares_the_config_before_allocating(tmp_path, capsys):
    out = tmp_path / "run"
    tiny_run(out, episodes=8)
    assert resume(out, "--hidden", "1000000") == 2
    err = one_line_error(capsys)
    assert "hidden: 4 -> 1000000" in err


# -- 7. the thread count ------------------------------------------------------------------------------------------
def test_a_changed_thread_count_on_resume_is_refused_or_warned(tmp_path, capsys):
    out = tmp_path / "run"
    tiny_run(out, "--threads", "1", episodes=8)
    assert resume(out, "--episodes", "16", "--threads", "2") == 2
    err = one_line_error(capsys)
    assert "threads" in err and "--allow-nonexact" in err
    assert resume(out, "--episodes", "16", "--threads", "2", "--allow-nonexact") == 0
    err = capsys.readouterr().err
    assert "threads" in err and "differ" in err
    assert len(read_metrics(out)) == 4


# -- 8. the smaller items --------------------------------------------------------------------------------------------
def test_supervised_rewards_are_not_nan_for_huge_outputs():
    env = gym.make_vec("Plastic/PatternCompletion-v0", num_envs=2, vectorization_mode="vector_entry_point")
    env.reset(seed=0)
    rewards = []
    for _ in range(env.unwrapped.episode_length):
        _, reward, *_ = env.step(np.full((2, env.unwrapped.output_dim), 1e200))
        rewards.append(reward)
    assert not np.isnan(np.array(rewards)).any()
    single = gym.make("Plastic/PatternCompletion-v0").unwrapped
    single.reset(seed=0)
    for _ in range(single.episode_length):
        _, reward, *_ = single.step(np.full(single.output_dim, 1e200))
        assert not np.isnan(reward)


def test_supervised_envs_refuse_unknown_reset_options():
    env = gym.make_vec("Plastic/PatternCompletion-v0", num_envs=2, vectorization_mode="vector_entry_point")
    with pytest.raises(ValueError, match="bogus"):
        env.reset(seed=0, options={"bogus": 1})
    single = gym.make("Plastic/PatternCompletion-v0").unwrapped
    with pytest.raises(ValueError, match="bogus"):
        single.reset(seed=0, options={"bogus": 1})


@pytest.mark.parametrize("env_id", [BANDIT, "Plastic/Maze-v0", "Plastic/CueReward-v0"])
def test_vector_env_errors_print_the_action_as_given(env_id):
    env = gym.make_vec(env_id, num_envs=2, vectorization_mode="vector_entry_point")
    env.reset(seed=0)
    with pytest.raises(ValueError) as caught:
        env.step(np.array([1e20, 0.0]))
    assert "-9223372036854775808" not in str(caught.value) and "1e+20" in str(caught.value)


def test_escape_codes_in_an_env_id_are_not_echoed_raw(tmp_path, capsys):
    args = [*TINY, "--episodes", "8", "--out", str(tmp_path / "run")]
    args[args.index(BANDIT)] = "\x1b[31mEvil-v0"
    assert train.main(args) == 2
    err = one_line_error(capsys)
    assert "\x1b" not in err and "Evil-v0" in err
