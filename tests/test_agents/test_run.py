"""Run machinery: resume gives the uninterrupted metrics, atomic/validated checkpoints, NaN stop, refused dirs."""

from __future__ import annotations

import csv
import json
import math
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from agents.a2c import A2CTrainer, load_agent, train
from agents.checkpoint import CheckpointError, RunError, load_checkpoint, save_checkpoint
from agents.config import RESUMABLE_FIELDS, make_config
from agents.logger import read_metrics
from agents.run import NonFiniteLossError, RunDir, train_loop

ROOT = Path(__file__).resolve().parents[2]
BANDIT = "Plastic/ReversalBandit-v0"


def tiny_config(**overrides):
    settings = dict(episodes=4 * 6, batch=4, hidden=8, lr=1e-3, env_kwargs={"episode_length": 10}, checkpoint_every=2)
    settings.update(overrides)
    return make_config(BANDIT, settings.pop("core", "rnn"), **settings)


def snapshot(directory: Path) -> dict[str, bytes]:
    return {str(p.relative_to(directory)): p.read_bytes() for p in sorted(directory.rglob("*")) if p.is_file()}


def csv_rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


# -- resume ---------------------------------------------------------------------------------------------------------
TRAIN_ARGS = ["--env", BANDIT, "--core", "rnn", "--hidden", "16", "--batch", "8", "--episodes", str(8 * 300),
              "--env-kwargs", '{"episode_length": 20}', "--lr", "3e-3", "--seed", "5", "--checkpoint-every", "5",
              "--no-progress"]


def run_train(args: list[str]) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "agents.cli.train", *args], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


@pytest.mark.slow
def test_killed_and_resumed_run_equals_uninterrupted_run(tmp_path):
    killed, whole = tmp_path / "killed", tmp_path / "whole"
    proc = run_train([*TRAIN_ARGS, "--out", str(killed)])
    deadline = time.monotonic() + 120
    while not (killed / "checkpoint.pt").exists():
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "no checkpoint within 120 s"
        time.sleep(0.002)
    proc.send_signal(signal.SIGKILL)
    proc.communicate()
    assert proc.returncode == -signal.SIGKILL
    logged = len(csv_rows(killed / "metrics.csv"))
    assert 5 <= logged < 300, "the run must be killed part-way for this test to mean anything"

    # a new run in the same directory is refused; --resume (only --out needed) continues it
    refused = run_train([*TRAIN_ARGS, "--out", str(killed)])
    _, err = refused.communicate()
    assert refused.returncode == 2 and "already holds" in err and "--resume" in err
    resumed = run_train(["--out", str(killed), "--resume", "--no-progress"])
    uninterrupted = run_train([*TRAIN_ARGS, "--out", str(whole)])
    for proc in (resumed, uninterrupted):
        out, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err

    rows_resumed, rows_whole = csv_rows(killed / "metrics.csv"), csv_rows(whole / "metrics.csv")
    assert len(rows_whole) == 300
    assert [r["iteration"] for r in rows_resumed] == [str(i) for i in range(1, 301)]
    for a, b in zip(rows_resumed, rows_whole, strict=True):
        a.pop("wall_time"), b.pop("wall_time")
        assert a == b
    # the wall time goes on from where the checkpoint left it
    wall = [r["wall_time"] for r in read_metrics(killed)]
    assert all(later >= earlier for earlier, later in zip(wall, wall[1:], strict=False))
    # same final weights
    a, _ = load_agent(killed)
    b, _ = load_agent(whole)
    for (name, pa), pb in zip(a.state_dict().items(), b.state_dict().values(), strict=True):
        assert torch.equal(pa, pb), name
    assert any((killed / "tb").iterdir())


def test_resume_can_extend_a_finished_run_but_not_change_its_settings(tmp_path):
    out = tmp_path / "run"
    train(tiny_config(), out, progress=False, tensorboard=False)
    assert train(tiny_config(), out, resume=True, progress=False, tensorboard=False) == []  # already complete
    more = train(tiny_config(episodes=4 * 8), out, resume=True, progress=False, tensorboard=False)
    assert [row["iteration"] for row in more] == [7, 8]
    assert json.loads((out / "config.json").read_text())["episodes"] == 32
    assert len(read_metrics(out)) == 8
    with pytest.raises(RunError, match=r"cannot resume .*lr: 0.001 -> 0.01"):
        train(tiny_config(lr=1e-2), out, resume=True, progress=False, tensorboard=False)
    with pytest.raises(RunError, match="no config.json"):
        train(tiny_config(), tmp_path / "never-started", resume=True, progress=False, tensorboard=False)


# -- checkpoints -----------------------------------------------------------------------------------------------------
def test_checkpoint_is_atomic_and_weights_only(tmp_path):
    path = tmp_path / "c.pt"
    save_checkpoint(path, {"w": torch.ones(3), "n": 4, "nested": {"s": "x", "none": None}})
    save_checkpoint(path, {"w": torch.zeros(3), "n": 5, "nested": {}})
    loaded = load_checkpoint(path)
    assert loaded["n"] == 5 and torch.equal(loaded["w"], torch.zeros(3))
    assert [p.name for p in tmp_path.iterdir()] == ["c.pt"]  # no temporary file left behind
    # a failed write leaves the previous checkpoint untouched
    with pytest.raises(Exception):  # noqa: B017 (pickling a lambda fails inside torch.save)
        save_checkpoint(path, {"bad": lambda: 0})
    assert load_checkpoint(path)["n"] == 5
    assert [p.name for p in tmp_path.iterdir()] == ["c.pt"]
    # arbitrary pickled objects are refused by weights_only loading
    torch.save({"format": 1, "obj": Path("x")}, tmp_path / "evil.pt")
    with pytest.raises(CheckpointError, match="cannot be loaded"):
        load_checkpoint(tmp_path / "evil.pt")


@pytest.mark.parametrize("damage", ["truncate", "garbage", "empty", "foreign"])
def test_corrupt_checkpoint_gives_a_clear_error_and_is_left_alone(tmp_path, damage):
    out = tmp_path / "run"
    train(tiny_config(), out, progress=False, tensorboard=False)
    checkpoint = out / "checkpoint.pt"
    data = checkpoint.read_bytes()
    damaged = {"truncate": data[: len(data) // 2], "garbage": os.urandom(len(data)), "empty": b""}.get(damage)
    if damaged is None:
        torch.save({"weights": torch.ones(2)}, checkpoint)  # a valid torch file that is not our checkpoint
        damaged = checkpoint.read_bytes()
    else:
        checkpoint.write_bytes(damaged)
    before = snapshot(out)
    message = "not a checkpoint written by this project" if damage == "foreign" else "corrupt or truncated"
    with pytest.raises(CheckpointError, match=message):
        train(tiny_config(episodes=4 * 8), out, resume=True, progress=False, tensorboard=False)
    with pytest.raises(CheckpointError, match=message):
        load_agent(out)
    assert snapshot(out) == before  # nothing rewritten, the damaged file kept for the user to inspect


def test_checkpoint_from_another_config_is_refused(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    train(tiny_config(), a, progress=False, tensorboard=False)
    train(tiny_config(lr=2e-3), b, progress=False, tensorboard=False)
    (a / "checkpoint.pt").write_bytes((b / "checkpoint.pt").read_bytes())
    before = snapshot(a)
    with pytest.raises(CheckpointError, match=r"another config .*lr: 0.002 -> 0.001"):
        train(tiny_config(episodes=4 * 8), a, resume=True, progress=False, tensorboard=False)
    with pytest.raises(CheckpointError, match="another config"):
        load_agent(a)
    assert snapshot(a) == before


# -- NaN -------------------------------------------------------------------------------------------------------------
class PoisonedTrainer(A2CTrainer):
    """Sets the policy weights to NaN before iteration ``poison_at`` (0-based)."""

    poison_at = 3

    def train_iteration(self, iteration):
        if iteration == self.poison_at:
            with torch.no_grad():
                self.model.policy.weight.fill_(math.nan)
        return super().train_iteration(iteration)


def test_nan_loss_stops_the_run_and_keeps_the_last_good_checkpoint(tmp_path):
    config = tiny_config()
    run = RunDir.create(tmp_path / "run", config.to_dict(), RESUMABLE_FIELDS)
    trainer = PoisonedTrainer(config)
    with pytest.raises(NonFiniteLossError, match=r"loss is nan at iteration 4 .*last good checkpoint .*iteration 2"):
        train_loop(run, trainer, config.iterations, checkpoint_every=2, progress=False, tensorboard=False)
    payload = run.load_checkpoint()
    assert payload["iteration"] == 2 and payload["episodes"] == 8
    assert all(torch.isfinite(t).all() for t in payload["trainer"]["model"].values())
    assert [row["iteration"] for row in read_metrics(run.path)] == [1, 2, 3]  # the NaN iteration is not logged
    # the run resumes from the good checkpoint (the poison is gone: it lived only in memory)
    rows = train(config, run.path, resume=True, progress=False, tensorboard=False)
    assert [row["iteration"] for row in rows] == [3, 4, 5, 6]
    assert all(math.isfinite(row["loss"]) for row in rows)


def test_train_script_reports_a_diverging_run(tmp_path):
    out = tmp_path / "run"
    proc = run_train(["--env", BANDIT, "--core", "rnn", "--hidden", "8", "--batch", "4", "--episodes", "400",
                      "--env-kwargs", '{"episode_length": 10}', "--lr", "1e30", "--clip", "1e30",
                      "--checkpoint-every", "1", "--no-progress", "--out", str(out)])
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 1, err
    assert re.search(r"stopping: the (loss|gradient norm) is -?(nan|inf) at iteration \d+", err), err
    assert "last good checkpoint" in err
    payload = load_checkpoint(out / "checkpoint.pt")
    assert all(torch.isfinite(t).all() for t in payload["trainer"]["model"].values())


# -- output directories ----------------------------------------------------------------------------------------------
def test_output_directory_with_another_run_is_refused_and_untouched(tmp_path):
    out = tmp_path / "run"
    train(tiny_config(), out, progress=False, tensorboard=True)
    before = snapshot(out)
    with pytest.raises(RunError, match=r"already holds a different run \(.*lr: 0.001 -> 0.005"):
        train(tiny_config(lr=5e-3), out, progress=False)
    with pytest.raises(RunError, match="already holds a run with the same settings.*--resume"):
        train(tiny_config(), out, progress=False)
    assert snapshot(out) == before

    other = tmp_path / "notes"
    other.mkdir()
    (other / "notes.txt").write_text("mine")
    with pytest.raises(RunError, match="not an empty directory"):
        train(tiny_config(), other, progress=False)
    assert snapshot(other) == {"notes.txt": b"mine"}


def test_metrics_and_config_files(tmp_path):
    out = tmp_path / "run"
    rows = train(tiny_config(), out, progress=False, tensorboard=False)
    config = json.loads((out / "config.json").read_text())
    assert config["algo"] == "a2c" and config["env_id"] == BANDIT and config["lr"] == 1e-3
    logged = read_metrics(out)
    assert len(logged) == 6 and [r["episodes"] for r in logged] == [4, 8, 12, 16, 20, 24]
    assert {"iteration", "episodes", "reward_mean", "reward_std", "loss", "policy_loss", "value_loss", "entropy",
            "grad_norm", "episode_length", "wall_time"} <= set(logged[0])
    assert [r["reward_mean"] for r in logged] == [r["reward_mean"] for r in rows]  # exact floats
    assert all(0 <= r["reward_mean"] <= 10 for r in logged)
