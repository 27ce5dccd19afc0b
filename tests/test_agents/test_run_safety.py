"""Runs that lose nothing: SIGINT / SIGTERM checkpoint and exit, one writer per run, failed starts leave nothing."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from agents.a2c import A2CTrainer
from agents.checkpoint import load_checkpoint
from agents.cli import compare_sb3, train

BANDIT = "Plastic/ReversalBandit-v0"
# ~300 iterations of a few ms each: long enough to be stopped mid-run, short enough to finish in seconds.
RUN_ARGS = ["--env", BANDIT, "--core", "modulated", "--hidden", "8", "--batch", "4", "--episodes", str(4 * 150),
            "--env-kwargs", '{"episode_length": 20}', "--lr", "3e-3", "--seed", "3", "--checkpoint-every", "1000",
            "--no-progress", "--no-tensorboard"]


def start_train(*args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "agents.cli.train", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def metric_rows(run: Path) -> list[dict[str, str]]:
    with open(run / "metrics.csv", newline="") as f:
        return [{k: v for k, v in row.items() if k != "wall_time"} for row in csv.DictReader(f)]


def wait_for_rows(run: Path, proc: subprocess.Popen, rows: int, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not (run / "metrics.csv").exists() or len(metric_rows(run)) < rows:
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, f"fewer than {rows} rows within {timeout} s"
        time.sleep(0.01)


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory) -> list[dict[str, str]]:
    out = tmp_path_factory.mktemp("whole") / "run"
    done = subprocess.run([sys.executable, "-m", "agents.cli.train", *RUN_ARGS, "--out", str(out)],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    return metric_rows(out)


@pytest.mark.slow
@pytest.mark.parametrize("signal_name", ["SIGINT", "SIGTERM"])
def test_signal_checkpoints_the_iteration_and_resume_gives_the_uninterrupted_metrics(tmp_path, uninterrupted,
                                                                                      signal_name):
    out = tmp_path / "run"
    proc = start_train(*RUN_ARGS, "--out", str(out))
    wait_for_rows(out, proc, 5)
    proc.send_signal(getattr(signal, signal_name))
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 128 + getattr(signal, signal_name), err
    assert f"stopped by {signal_name} after iteration" in err and f"plastic train --out {out} --resume" in err
    logged = len(metric_rows(out))
    assert 5 <= logged < 150
    assert load_checkpoint(out / "checkpoint.pt")["iteration"] == logged  # nothing logged is lost
    assert json.loads((out / "run.lock").read_text() or "null") is None  # the lock was given back

    done = subprocess.run([sys.executable, "-m", "agents.cli.train", "--out", str(out), "--resume",
                           "--no-progress"], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert metric_rows(out) == uninterrupted


@pytest.mark.slow
def test_a_second_writer_is_refused_and_a_killed_writers_lock_is_taken_over(tmp_path, capsys):
    out = tmp_path / "run"
    proc = start_train(*RUN_ARGS, "--checkpoint-every", "2", "--out", str(out))
    try:
        wait_for_rows(out, proc, 3)
        holder = json.loads((out / "run.lock").read_text())
        assert holder["pid"] == proc.pid
        assert train.main(["--out", str(out), "--resume", "--no-progress"]) == 2
        err = capsys.readouterr().err
        assert f"is being written by pid {proc.pid}" in err and err.count("\n") == 1
        assert train.main([*RUN_ARGS, "--out", str(out)]) == 2  # a new run there is refused as well
        assert "already holds" in capsys.readouterr().err
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.communicate()
    # the killed process's lock is stale (the kernel dropped it): the next writer takes it over
    assert train.main(["--out", str(out), "--resume", "--no-progress"]) == 0
    assert len(metric_rows(out)) == 150


def test_a_run_that_fails_before_its_first_checkpoint_leaves_nothing_behind(tmp_path, monkeypatch, capsys):
    out = tmp_path / "new" / "run"
    args = ["--env", BANDIT, "--core", "rnn", "--hidden", "4", "--batch", "4", "--episodes", "8",
            "--env-kwargs", '{"episode_length": 5}', "--no-progress", "--out", str(out)]
    original = A2CTrainer.train_iteration

    def failing(self, iteration):
        raise RuntimeError("simulated failure in the first iteration")

    monkeypatch.setattr(A2CTrainer, "train_iteration", failing)
    with pytest.raises(RuntimeError, match="simulated failure"):
        train.main(args)
    assert not out.exists()  # the directory this run made is gone again
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(RuntimeError, match="simulated failure"):
        train.main([*args[:-1], str(empty)])
    assert empty.is_dir() and not any(empty.iterdir())  # an empty directory given by the user stays, empty

    monkeypatch.setattr(A2CTrainer, "train_iteration", original)
    assert train.main(args) == 0  # the same command now simply works
    assert load_checkpoint(out / "checkpoint.pt")["iteration"] == 2


def test_a_failure_after_a_checkpoint_keeps_the_run(tmp_path, monkeypatch):
    out = tmp_path / "run"
    args = ["--env", BANDIT, "--core", "rnn", "--hidden", "4", "--batch", "4", "--episodes", "16",
            "--env-kwargs", '{"episode_length": 5}', "--checkpoint-every", "1", "--no-progress", "--out", str(out)]
    original = A2CTrainer.train_iteration

    def fails_third(self, iteration):
        if iteration == 2:
            raise RuntimeError("simulated failure")
        return original(self, iteration)

    monkeypatch.setattr(A2CTrainer, "train_iteration", fails_third)
    with pytest.raises(RuntimeError):
        train.main(args)
    assert load_checkpoint(out / "checkpoint.pt")["iteration"] == 2
    monkeypatch.setattr(A2CTrainer, "train_iteration", original)
    assert train.main(["--out", str(out), "--resume", "--no-progress"]) == 0


@pytest.mark.parametrize("out", ["/proc/plastic-run", "/dev/null/run"])
def test_impossible_output_paths_get_a_one_line_error(out, capsys):
    assert train.main(["--env", BANDIT, "--core", "rnn", "--hidden", "4", "--episodes", "8", "--batch", "4",
                       "--no-progress", "--out", out]) == 2
    err = capsys.readouterr().err
    assert err.startswith("plastic-train: error: ") and err.count("\n") == 1 and out in err


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write into read-only directories")
def test_unwritable_output_directory_gets_a_one_line_error(tmp_path, capsys):
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    assert train.main(["--env", BANDIT, "--core", "rnn", "--hidden", "4", "--episodes", "8", "--batch", "4",
                       "--no-progress", "--out", str(locked / "run")]) == 2
    assert capsys.readouterr().err.count("\n") == 1


def test_compare_sb3_never_suggests_a_resume_it_cannot_do(tmp_path, capsys):
    out = tmp_path / "sb3"
    args = ["--algo", "a2c", "--env", BANDIT, "--env-kwargs", '{"episode_length": 5}', "--episodes", "8",
            "--batch", "4", "--n-envs", "2", "--no-progress", "--out", str(out)]
    assert compare_sb3.main(args) == 0
    assert compare_sb3.main(args) == 2
    err = capsys.readouterr().err
    assert "cannot be resumed" in err and "--resume" not in err
