"""plastic-sweep on a local Ray cluster of 2 CPUs: grids equal single runs, killed workers resume, re-runs start
nothing, extensions run only the new runs, a Tune search writes a preset that trains."""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from pathlib import Path

import pytest

from agents.cli import sweep as sweep_cli
from agents.cli import train
from agents.logger import read_metrics
from agents.sweep import Sweep, load_sweep_file, parse_settings, run_grid, sweep_from
from agents.sweep.search import parse_search

ray = pytest.importorskip("ray")

BANDIT = "Plastic/ReversalBandit-v0"
TINY = {"batch": 4, "env_kwargs": {"episode_length": 12}, "lr": 3e-3}


@pytest.fixture(scope="module")
def cluster():
    """One local Ray cluster for the whole module (ray.init takes seconds); the sweep code joins it."""
    os.environ["RAY_USAGE_STATS_ENABLED"] = "0"
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, object_store_memory=128 * 1024**2)
    yield
    ray.shutdown()


def tiny_sweep(seeds: list[int], iterations: int = 12, **settings) -> Sweep:
    return Sweep(cores=[("rnn", 4), ("modulated", 8)], seeds=seeds, env=BANDIT, iterations=iterations,
                 settings={**TINY, **settings})


def rows_without_wall_time(run: Path) -> list[dict[str, float]]:
    return [{k: v for k, v in row.items() if k != "wall_time"} for row in read_metrics(run)]


def train_alone(run, out: Path) -> None:
    assert train.main(run.train_args(out) + ["--no-progress", "--no-tensorboard"]) == 0


def test_a_grid_equals_its_runs_one_by_one_and_continues(cluster, tmp_path):
    sweep = tiny_sweep([0, 1])
    result = run_grid(sweep.runs(), tmp_path / "grid", tensorboard=False, progress=False)
    assert result.ok and sorted(result.started) == ["modulated-s0", "modulated-s1", "rnn-s0", "rnn-s1"]
    for run in sweep.runs():
        train_alone(run, tmp_path / "alone" / run.name)
        grid_rows = rows_without_wall_time(tmp_path / "grid" / run.name)
        assert len(grid_rows) == 12 and grid_rows == rows_without_wall_time(tmp_path / "alone" / run.name)
        assert (tmp_path / "grid" / "logs" / f"{run.name}.log").is_file()
    # the same sweep again starts nothing; more seeds start only the new runs
    assert run_grid(sweep.runs(), tmp_path / "grid", tensorboard=False, progress=False).started == []
    more = run_grid(tiny_sweep([0, 1, 2]).runs(), tmp_path / "grid", tensorboard=False, progress=False)
    assert more.ok and sorted(more.started) == ["modulated-s2", "rnn-s2"]
    assert more.count("skipped") == 4


def test_a_killed_worker_is_retried_and_resumes_from_its_checkpoint(cluster, tmp_path):
    sweep = Sweep(cores=[("modulated", 8)], seeds=[3], env=BANDIT, iterations=300,
                  settings={**TINY, "checkpoint_every": 5})
    (run,) = sweep.runs()
    out = tmp_path / "sweep" / run.name
    results = []
    thread = threading.Thread(target=lambda: results.append(
        run_grid([run], tmp_path / "sweep", tensorboard=False, progress=False, max_retries=2)))
    thread.start()
    killed = None
    deadline = time.monotonic() + 90
    while killed is None and time.monotonic() < deadline and thread.is_alive():
        lock = out / "run.lock"
        holder = lock.read_text().strip() if lock.is_file() else ""
        rows = len(read_metrics(out)) if (out / "metrics.csv").is_file() else 0
        if holder and (out / "checkpoint.pt").is_file() and 20 <= rows < 250:
            killed = json.loads(holder)["pid"]
            os.kill(killed, signal.SIGKILL)
        time.sleep(0.02)
    thread.join(120)
    assert killed is not None, "the run finished before it could be killed"
    (result,) = results
    assert result.ok and result.outcomes[0].resumed
    sessions = json.loads((out / "run.json").read_text())["sessions"]
    assert len(sessions) >= 2 and sessions[-1]["resumed"] and sessions[-1]["start_iteration"] > 0
    train_alone(run, tmp_path / "alone")
    assert rows_without_wall_time(out) == rows_without_wall_time(tmp_path / "alone")


def test_plastic_sweep_runs_the_grid_then_starts_nothing(cluster, tmp_path, capsys):
    out = tmp_path / "DIR"
    argv = ["--env", BANDIT, "--cores", "rnn=8", "modulated=8", "--seeds", "0", "1", "--episodes", "90",
            "--out", str(out)]
    assert sweep_cli.main(argv + ["--eval-episodes", "10", "--no-progress"]) == 0
    captured = capsys.readouterr()
    assert "4 runs: 4 trained" in captured.out and "| modulated | 8 |" in captured.out, captured.err
    assert {"report.md", "curves.png", "curves_wall.png", "runs.json", "paper_figure.png", "statistics.md",
            "statistics.json"} <= {p.name for p in out.iterdir()}
    report = (out / "report.md").read_text()
    assert "![paper figure](paper_figure.png)" in report and "| Non-plastic vs Simple neuromodulation |" in report
    rewards = (out / "rewards.csv").read_text().splitlines()
    assert rewards[0].split(",")[0] == "iteration" and len(rewards) == 1 + 3  # 90 episodes = 3 iterations of 30
    first = read_metrics(out / "rnn-s0")[0]["reward_mean"]
    assert float(rewards[1].split(",")[rewards[0].split(",").index("rnn-s0")]) == pytest.approx(first, rel=1e-3)
    assert (out / "rnn-s0" / "tb").is_dir()  # the same run format as plastic-train
    assert sweep_cli.main(argv) == 0
    assert "nothing to run: 4 of 4 runs are finished" in capsys.readouterr().out
    assert sweep_cli.main(["report", str(out), "--eval-episodes", "0"]) == 0
    assert "| rnn | 8 |" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        sweep_cli.main(["--help"])
    assert "--address" in capsys.readouterr().out


def test_a_failing_run_is_reported_and_the_others_go_on(cluster, tmp_path, capsys):
    argv = ["--env", BANDIT, "--cores", "rnn=4", "--iterations", "3", "--set", "batch=4",
            'env_kwargs={"episode_length": 10}', "--grid", "lr=0.001,-1", "--out", str(tmp_path), "--no-report",
            "--no-progress", "--no-tensorboard"]
    assert sweep_cli.main(argv) == 1
    text = capsys.readouterr().out
    assert "FAILED rnn-s0-lr-1 (exit 2): bad settings: lr must be a finite positive number" in text
    assert "done rnn-s0-lr0.001" in text and "1 trained, 0 already finished, 1 failed" in text


def test_a_tune_search_with_asha_writes_a_preset_that_trains(cluster, tmp_path, capsys):
    out = tmp_path / "search"
    argv = ["--env", BANDIT, "--cores", "rnn=4", "--iterations", "8", "--set", "batch=4",
            'env_kwargs={"episode_length": 10}', "--out", str(out), "--no-tensorboard", "--no-progress",
            "--search", "lr=loguniform(1e-4,1e-2)", "regulariser_coef=uniform(0,0.1)", "--samples", "4",
            "--scheduler", "asha", "--grace", "2"]
    assert sweep_cli.main(argv) == 0
    assert "best rnn: reward_smooth" in capsys.readouterr().out
    preset = json.loads((out / "best_preset.json").read_text())
    assert preset["env_id"] == BANDIT and preset["iterations"] == 8 and preset["cores"]["rnn"]["hidden"] == 4
    assert 1e-4 <= preset["settings"]["lr"] <= 1e-2 and preset["settings"]["batch"] == 4
    assert len(list((out / "search").iterdir())) == 4
    run = tmp_path / "from-preset"
    assert train.main(["--preset-file", str(out / "best_preset.json"), "--core", "rnn", "--iterations", "8",
                       "--out", str(run), "--no-progress", "--no-tensorboard"]) == 0
    config = json.loads((run / "config.json").read_text())
    assert config["lr"] == preset["settings"]["lr"] and config["env_kwargs"]["episode_length"] == 10


# -- without Ray: the grid, its names, the shipped sweep files ------------------------------------------------------
def test_grid_names_axes_and_settings():
    settings = parse_settings(["batch=4", 'env_kwargs={"episode_length": 10}'], ["lr=0.001,0.003"])
    assert settings == {"batch": 4, "env_kwargs": {"episode_length": 10}, "lr": [0.001, 0.003]}
    sweep = Sweep(cores=[("rnn", 8)], seeds=[0, 1], env=BANDIT, episodes=40, settings=settings)
    assert [r.name for r in sweep.runs()] == ["rnn-s0-lr0.001", "rnn-s0-lr0.003", "rnn-s1-lr0.001", "rnn-s1-lr0.003"]
    assert sweep.runs()[1].train_args("X")[-6:] == ["--batch", "4", "--env-kwargs", '{"episode_length": 10}',
                                                     "--lr", "0.003"]
    with pytest.raises(ValueError, match="set by the sweep itself"):
        Sweep(cores=[("rnn", 8)], seeds=[0], env=BANDIT, episodes=4, settings={"seed": 1})
    assert parse_search(["lr=loguniform(1e-4,3e-3)", "batch=choice(4, 8)"]) == {
        "lr": ("loguniform", (1e-4, 3e-3)), "batch": ("choice", (4, 8))}
    with pytest.raises(ValueError, match="bad search spec"):
        parse_search(["lr=gaussian(0,1)"])


def test_shipped_sweep_files():
    shipped = sweep_cli.shipped_sweeps()
    assert {"maze2019", "cue_reward2019"} <= set(shipped)
    maze = sweep_from(load_sweep_file(shipped["maze2019"]))
    runs = maze.runs()
    assert len(runs) == 40 and runs[0].name == "rnn-s0" and maze.budget_from_preset() == 200_002
    # seed by seed: a grid stopped part way holds every core's first seeds
    assert [r.name for r in runs[:5]] == ["rnn-s0", "plastic-s0", "modulated-s0", "retroactive-s0", "rnn-s1"]
    assert "--iterations" in runs[0].train_args("X") and "backpropamine2019-maze" in runs[0].train_args("X")
    cue = sweep_from(load_sweep_file(shipped["cue_reward2019"]))
    assert len(cue.runs()) == 40
