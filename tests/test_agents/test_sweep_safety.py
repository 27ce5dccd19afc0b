"""Issue 30: sweep files, preset files and the sweep driver run no code, allocate nothing unbounded, stop cleanly.

One test per defect of the issue's probe. The Ray tests start the sweep in a session of its own and watch only the
processes that descend from it (by pid and start time, and the sessions those processes lead): another Ray cluster
on the same machine is never looked at, and nothing the tests did not start is ever signalled.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import resource
import signal
import subprocess
import sys
import time
from pathlib import Path

import gymnasium as gym
import pytest
import torch
from cases import disk as disk_cases

import envs  # noqa: F401
from agents import run as run_module
from agents.cli import sweep as sweep_cli
from agents.cli import train
from agents.logger import read_metrics
from agents.sweep import Sweep, sweep_from
from agents.sweep.cluster import STOP_TIMEOUT
from agents.sweep.grid import MAX_RUNS, MAX_SEEDS
from agents.sweep.runner import RUN_STOP_TIMEOUT, _outcome, execute, plan

BANDIT = "Plastic/ReversalBandit-v0"
TINY = ["--env", BANDIT, "--core", "rnn", "--hidden", "4", "--batch", "4", "--env-kwargs",
        '{"episode_length": 5}', "--seed", "1", "--no-progress", "--no-tensorboard"]
MEMORY_LIMIT = 3 * 2**30  # address space of the subprocesses that would allocate without the checks


@pytest.fixture(autouse=True)
def _one_thread():
    yield
    torch.set_num_threads(1)  # train.main sets the process's thread count


def one_line_error(capsys, prog: str) -> str:
    err = capsys.readouterr().err
    assert err.startswith(f"{prog}: error: ") and err.count("\n") == 1, err
    return err


def run_limited(args: list[str], timeout: float = 60, **kwargs) -> subprocess.CompletedProcess:
    """``python args`` with at most MEMORY_LIMIT of address space (a missing check ends in MemoryError, not in
    a machine out of memory)."""
    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))

    return subprocess.run([sys.executable, *args], capture_output=True, text=True, timeout=timeout,
                          preexec_fn=limit, **kwargs)


# -- 1. no code runs from a sweep or preset file ---------------------------------------------------------------------
@pytest.fixture
def evil(tmp_path):
    """A module that leaves a marker file when it is imported; its folder goes on PYTHONPATH."""
    marker = tmp_path / "marker"
    (tmp_path / "evilmod30.py").write_text(f"open({str(marker)!r}, 'w').close()\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(tmp_path), os.environ.get("PYTHONPATH")]))}
    return marker, env


def preset_text(suffix: str) -> str:
    if suffix == ".toml":
        return 'env_id = "evilmod30:Zen-v0"\niterations = 2\n[settings]\nbatch = 4\n'
    return json.dumps({"env_id": "evilmod30:Zen-v0", "iterations": 2, "settings": {"batch": 4}})


@pytest.mark.parametrize("where", ["sweep env", "sweep preset_file", "train json", "train toml", "sweep json"])
def test_a_crafted_env_id_in_a_sweep_or_preset_file_imports_nothing(tmp_path, evil, where):
    marker, env = evil
    out = tmp_path / "out"
    preset = tmp_path / ("preset.toml" if where == "train toml" else "preset.json")
    preset.write_text(preset_text(preset.suffix))
    sweep_file = tmp_path / "sweep.toml"
    if where == "sweep env":
        sweep_file.write_text('env = "evilmod30:Zen-v0"\ncores = ["rnn=4"]\nseeds = [0]\niterations = 2\n')
    else:
        sweep_file.write_text(f'preset_file = {str(preset)!r}\ncores = ["rnn=4"]\nseeds = [0]\n')
    sweep = ["-m", "agents.cli.sweep", "--out", str(out), "--no-report", "--no-progress", "--num-cpus", "1"]
    command = {
        "sweep env": [*sweep, str(sweep_file)],
        "sweep preset_file": [*sweep, str(sweep_file)],
        "sweep json": [*sweep, "--preset-file", str(preset), "--cores", "rnn=4"],
        "train json": ["-m", "agents.cli.train", "--preset-file", str(preset), "--core", "rnn", "--iterations", "2",
                       "--out", str(out), "--no-progress"],
        "train toml": ["-m", "agents.cli.train", "--preset-file", str(preset), "--core", "rnn", "--iterations", "2",
                       "--out", str(out), "--no-progress"],
    }[where]
    done = subprocess.run([sys.executable, *command], capture_output=True, text=True, env=env, timeout=300)
    assert not marker.exists(), "the module named in the file was imported"
    assert done.returncode == 2, done.stderr
    assert done.stderr.count("\n") == 1 and "evilmod30" in done.stderr and "--env" in done.stderr, done.stderr
    assert str(sweep_file if where == "sweep env" else preset) in done.stderr


def test_a_module_env_id_given_on_the_command_line_is_trusted(tmp_path, evil):
    marker, env = evil
    preset = tmp_path / "preset.json"
    preset.write_text(preset_text(".json"))
    # --env names the same id: the user chose it, so the preset file may name it too (the import then happens, and
    # gymnasium refuses the unregistered id: the point is that the file alone never gets that far)
    done = subprocess.run([sys.executable, "-m", "agents.cli.train", "--env", "evilmod30:Zen-v0", "--preset-file",
                           str(preset), "--core", "rnn", "--iterations", "2", "--out", str(tmp_path / "run"),
                           "--no-progress"], capture_output=True, text=True, env=env, timeout=120)
    assert marker.exists() and done.returncode == 2, done.stderr


def test_an_unregistered_env_id_in_a_file_is_refused_before_anything_runs(tmp_path, capsys):
    sweep_file = tmp_path / "sweep.toml"
    sweep_file.write_text('env = "Plastic/NoSuchEnv-v0"\ncores = ["rnn=4"]\niterations = 2\n')
    assert sweep_cli.main([str(sweep_file), "--out", str(tmp_path / "out"), "--dry-run"]) == 2
    err = one_line_error(capsys, "plastic-sweep")
    assert "not registered" in err and str(sweep_file) in err
    assert not (tmp_path / "out").exists()


# -- 2. seeds, axes and runs are bounded before any run is built ------------------------------------------------------
@pytest.mark.parametrize("seeds", ["100000000", "1000000000000", "big list"])
def test_huge_seed_counts_answer_in_one_line_within_seconds(tmp_path, seeds):
    sweep_file = tmp_path / "sweep.toml"
    if seeds == "big list":  # the 10 MB file of ~1.5 M seeds
        text = "seeds = [" + ", ".join(map(str, range(1_500_000))) + "]\n"
        assert len(text) > 10_000_000
    else:
        text = f"seeds = {seeds}\n"
    sweep_file.write_text(f'env = "{BANDIT}"\ncores = ["rnn=4", "modulated=4"]\niterations = 2\n' + text)
    started = time.monotonic()
    done = run_limited(["-m", "agents.cli.sweep", str(sweep_file), "--out", str(tmp_path / "out"), "--dry-run"],
                       timeout=120)
    took = time.monotonic() - started
    assert done.returncode == 2, done.stderr[-2000:]
    assert done.stderr.startswith("plastic-sweep: error: ") and done.stderr.count("\n") == 1, done.stderr[-2000:]
    assert ("seeds" in done.stderr or "bytes" in done.stderr) and done.stdout == ""
    assert took < 30, f"took {took:.1f} s"  # the imports included, on a loaded 2-core machine


def test_the_grid_is_bounded_and_its_duplicate_check_is_linear(tmp_path):
    with pytest.raises(ValueError, match=f"more than the {MAX_RUNS:,}"):
        sweep_from({"env": BANDIT, "cores": ["rnn=4", "plastic=4", "modulated=4", "retroactive=4", "lstm=4",
                                             "plastic_lstm=4"], "seeds": MAX_SEEDS, "iterations": 2})
    with pytest.raises(ValueError, match="at most 1,000 seeds"):
        sweep_from({"env": BANDIT, "cores": ["rnn=4"], "seeds": list(range(MAX_SEEDS + 1)), "iterations": 2})
    with pytest.raises(ValueError, match="axis lr has 101 values"):
        sweep_from({"env": BANDIT, "cores": ["rnn=4"], "iterations": 2,
                    "settings": {"lr": [1e-3 + i * 1e-6 for i in range(101)]}})
    started = time.monotonic()
    sweep = Sweep(cores=[("rnn", 4), ("plastic", 4), ("modulated", 4), ("retroactive", 4), ("lstm", 4)],
                  seeds=list(range(MAX_SEEDS)), env=BANDIT, iterations=2)
    assert len(sweep.runs()) == MAX_RUNS and time.monotonic() - started < 5
    with pytest.raises(ValueError, match="names two runs alike"):
        Sweep(cores=[("rnn", 4)], seeds=list(range(MAX_SEEDS - 1)) + [0], env=BANDIT, iterations=2)


# -- 3. deeply nested files: one line ---------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["sweep toml", "preset json", "preset toml", "sweep flags preset json"])
def test_deeply_nested_files_give_one_line(tmp_path, capsys, kind):
    depth = 5000
    nested_toml = "[" * depth + "1" + "]" * depth
    out = ["--out", str(tmp_path / "out")]
    if kind == "sweep toml":
        path = tmp_path / "sweep.toml"
        path.write_text(f'env = "{BANDIT}"\ncores = ["rnn=4"]\niterations = 2\n[settings]\nlr = {nested_toml}\n')
        code, prog = sweep_cli.main([str(path), *out, "--dry-run"]), "plastic-sweep"
    elif kind == "preset toml":
        path = tmp_path / "preset.toml"
        path.write_text(f'env_id = "{BANDIT}"\n[settings]\nlr = {nested_toml}\n')
        code, prog = train.main(["--preset-file", str(path), "--core", "rnn", "--iterations", "2", *out]), \
            "plastic-train"
    else:
        path = tmp_path / "preset.json"
        path.write_text('{"env_id": "' + BANDIT + '", "settings": {"lr": ' + "[" * depth + "1" + "]" * depth + "}}")
        if kind == "preset json":
            code, prog = train.main(["--preset-file", str(path), "--core", "rnn", "--iterations", "2", *out]), \
                "plastic-train"
        else:
            code, prog = sweep_cli.main(["--preset-file", str(path), "--cores", "rnn=4", "--iterations", "2", *out,
                                         "--dry-run"]), "plastic-sweep"
    assert code == 2
    err = one_line_error(capsys, prog)
    assert str(path) in err and "nested" in err


def test_oversized_and_special_files_are_refused_naming_the_file(tmp_path, capsys):
    big = tmp_path / "big.toml"
    big.write_text(f'env = "{BANDIT}"\n' + "# padding\n" * 200_000)
    assert sweep_cli.main([str(big), "--out", str(tmp_path / "out"), "--dry-run"]) == 2
    assert str(big) in one_line_error(capsys, "plastic-sweep")
    assert train.main(["--preset-file", "/dev/zero", "--core", "rnn", "--iterations", "2",
                       "--out", str(tmp_path / "run")]) == 2
    assert "/dev/zero" in one_line_error(capsys, "plastic-train")


# -- 4. Ctrl-C on plastic-sweep ---------------------------------------------------------------------------------------
def proc_stat(pid: int) -> tuple[int, int, int, str] | None:
    """(ppid, session, start time, state) of a live process, None when it is gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            fields = f.read().rsplit(b")", 1)[1].split()
    except OSError:
        return None
    return int(fields[1]), int(fields[3]), int(fields[19]), fields[0].decode()


def all_stats() -> dict[int, tuple[int, int, int, str]]:
    stats = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            stat = proc_stat(int(entry))
            if stat is not None:
                stats[int(entry)] = stat
    return stats


class Descendants:
    """The processes that descend from ``root`` (by parent pid, recorded while they live, with their start times)
    and the sessions that ``root`` and they lead (a session's id is its leader's pid): only what the test
    started. A process counts as ours when its pid and start time were recorded, or when it is in one of our
    sessions and started after ``root``."""

    def __init__(self, root: int) -> None:
        self.root = root
        self.seen: dict[int, int] = {}  # pid -> start time
        self.leaders: set[int] = set()  # sessions led by a process of ours
        stat = proc_stat(root)
        self.root_start = stat[2] if stat else 0

    def record(self) -> None:
        stats = all_stats()
        family = {self.root} | set(self.seen)
        grew = True
        while grew:
            grew = False
            for pid, (ppid, _, _, _) in stats.items():
                if ppid in family and pid not in family:
                    family.add(pid)
                    grew = True
        for pid in family:
            if pid in stats and pid not in self.seen:
                self.seen[pid] = stats[pid][2]
        self.leaders |= {stats[pid][1] for pid in family if pid in stats and stats[pid][1] in self.seen}

    def alive(self) -> list[int]:
        left = []
        for pid, (_, sid, start, state) in all_stats().items():
            if state == "Z":
                continue
            if self.seen.get(pid) == start or (sid in self.leaders and start >= self.root_start):
                left.append(pid)
        return sorted(left)

    def wait_gone(self, timeout: float) -> list[int]:
        deadline = time.monotonic() + timeout
        while (left := self.alive()) and time.monotonic() < deadline:
            time.sleep(0.1)
        return left

    def kill_left(self) -> None:
        """Cleanup after a failed test: SIGKILL what is left of ours (and nothing else)."""
        for pid in self.alive():
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)


SWEEP = ["--env", BANDIT, "--cores", "rnn=4", "modulated=4", "--iterations", "150", "--set", "batch=4",
         'env_kwargs={"episode_length": 10}', "checkpoint_every=5", "--num-cpus", "2", "--no-report",
         "--no-progress", "--no-tensorboard"]
RAY_CRASH = ("Traceback", "discovered a bug in Ray", "Check failed", "SIGSEGV", "Aborted", "*** ")


def start_sweep(out: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "agents.cli.sweep", *SWEEP, "--out", str(out)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)


def wait_until_training(out: Path, proc: subprocess.Popen, family: Descendants, rows: int = 10,
                        timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    runs = [out / "rnn-s0", out / "modulated-s0"]
    while not all((r / "checkpoint.pt").is_file() and len(read_metrics(r)) >= rows for r in runs):
        family.record()
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "the sweep did not start training in time"
        time.sleep(0.1)
    family.record()


@pytest.mark.slow
def test_ctrl_c_stops_a_sweep_cleanly_and_the_same_command_continues_exactly(tmp_path):
    out = tmp_path / "sweep"
    proc = start_sweep(out)
    family = Descendants(proc.pid)
    try:
        wait_until_training(out, proc, family)
        os.killpg(proc.pid, signal.SIGINT)  # as a terminal sends Ctrl-C: to the whole process group
        stdout, stderr = proc.communicate(timeout=RUN_STOP_TIMEOUT + STOP_TIMEOUT + 30)
        assert proc.returncode == 130, stderr
        assert not any(text in stderr + stdout for text in RAY_CRASH), stderr
        assert "stopped by SIGINT" in stderr and "Continue with the same command" in stderr
        left = family.wait_gone(STOP_TIMEOUT)
        assert not left, f"processes left after {STOP_TIMEOUT} s: {left}"
        for run in ("rnn-s0", "modulated-s0"):
            assert json.loads((out / run / "run.lock").read_text() or "null") is None
    finally:
        family.kill_left()
    # the same command continues every run from its checkpoint, exactly
    done = subprocess.run([sys.executable, "-m", "agents.cli.sweep", *SWEEP, "--out", str(out)],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    for name, core in (("rnn-s0", "rnn"), ("modulated-s0", "modulated")):
        alone = tmp_path / "alone" / name
        assert train.main(["--env", BANDIT, "--core", core, "--hidden", "4", "--seed", "0", "--iterations", "150",
                           "--batch", "4", "--env-kwargs", '{"episode_length": 10}', "--checkpoint-every", "5",
                           "--out", str(alone), "--no-progress", "--no-tensorboard"]) == 0
        strip = lambda rows: [{k: v for k, v in r.items() if k != "wall_time"} for r in rows]  # noqa: E731
        assert strip(read_metrics(out / name)) == strip(read_metrics(alone))


@pytest.mark.slow
@pytest.mark.parametrize("signal_name", ["SIGTERM", "SIGKILL"])
def test_a_stopped_or_killed_sweep_driver_leaves_no_process(tmp_path, signal_name):
    out = tmp_path / "sweep"
    proc = start_sweep(out)
    family = Descendants(proc.pid)
    try:
        wait_until_training(out, proc, family, rows=5)
        proc.send_signal(getattr(signal, signal_name))  # the driver alone
        _, stderr = proc.communicate(timeout=RUN_STOP_TIMEOUT + STOP_TIMEOUT + 30)
        if signal_name == "SIGTERM":
            assert proc.returncode == 143 and "Traceback" not in stderr, stderr
        left = family.wait_gone(STOP_TIMEOUT)
        assert not left, f"processes left {STOP_TIMEOUT} s after the driver's end: {left}"
    finally:
        family.kill_left()


# -- 5. disk full at the very start -----------------------------------------------------------------------------------
fill = disk_cases.fill  # the small_disk fixture: tests/conftest.py


def test_disk_full_at_the_start_leaves_no_lock_and_the_same_command_then_starts(small_disk, capsys):
    out = small_disk / "run"
    filler = fill(small_disk)
    command = [*TINY, "--episodes", "8", "--out", str(out)]
    assert train.main(command) == 2
    assert "No space left" in one_line_error(capsys, "plastic-train")
    assert not out.exists() or not list(out.iterdir())  # no run.lock, nothing
    filler.unlink()
    assert train.main(command) == 0
    assert len(read_metrics(out)) == 2


@pytest.mark.parametrize("made", [True, False])
def test_a_run_that_fails_before_writing_anything_leaves_no_lock(tmp_path, monkeypatch, capsys, made):
    out = tmp_path / "run"
    if not made:
        out.mkdir()  # an empty folder given as --out stays, empty
    real = run_module.atomic_write_text

    def full(path, text):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))

    monkeypatch.setattr(run_module, "atomic_write_text", full)
    command = [*TINY, "--episodes", "8", "--out", str(out)]
    assert train.main(command) == 2
    assert "No space left" in one_line_error(capsys, "plastic-train")
    assert out.exists() != made and (made or not list(out.iterdir()))
    monkeypatch.setattr(run_module, "atomic_write_text", real)
    assert train.main(command) == 0


# -- 6. the Python API checks sizes before allocating ---------------------------------------------------------------
API_CASES = {
    "cue_size": "import gymnasium as gym, envs; gym.make('Plastic/CueReward-v0', cue_size=10**9)",
    "image_size": "import gymnasium as gym, envs; gym.make('Plastic/ImageReconstruction-v0', image_size=10**5)",
    "make_core": "from plastic_core import make_core; make_core('plastic', 17, 10**6)",
    "initial_state": "from plastic_core import make_core; make_core('modulated', 17, 32).initial_state(10**9)",
    "make_core lstm": "from plastic_core import make_core; make_core('lstm', 17, 10**6)",
}


@pytest.mark.parametrize("case", sorted(API_CASES))
def test_the_python_api_checks_sizes_before_allocating(case):
    code = f"""
import sys
try:
    {API_CASES[case]}
except ValueError as error:
    print(error); sys.exit(3)
"""
    started = time.monotonic()
    done = run_limited(["-c", code], timeout=120)
    assert done.returncode == 3, done.stderr[-2000:]
    message = done.stdout.strip()
    assert "GiB" in message or "allowed" in message, message
    assert any(number in message for number in ("1,000,000,000", "10,000,000,000", "1,000,000", "1,000,017,000,000"))
    assert time.monotonic() - started < 60


def test_sizes_within_the_bounds_still_build():
    from plastic_core import make_core

    env = gym.make("Plastic/CueReward-v0", cue_size=64, n_cues=8)
    env.close()
    core = make_core("plastic", 17, 64)
    assert core.initial_state(1024)["hebb"].shape == (1024, 64, 64)


# -- 7. --dry-run runs the same checks as the sweep --------------------------------------------------------------------
@pytest.mark.parametrize("case", ["hidden", "batch", "list", "unknown", "preset list"])
def test_dry_run_refuses_what_the_sweep_refuses(tmp_path, capsys, case):
    argv = ["--env", BANDIT, "--cores", "rnn=4", "--iterations", "2", "--out", str(tmp_path / "out"),
            "--no-report", "--no-progress"]
    if case == "hidden":
        argv[argv.index("rnn=4")] = "rnn=1000000000"
    elif case == "batch":
        argv += ["--set", "batch=1000000000"]
    elif case == "list":
        sweep_file = tmp_path / "sweep.toml"
        sweep_file.write_text(f'env = "{BANDIT}"\ncores = ["rnn=4"]\nepisodes = [8, 16]\n')
        argv = [str(sweep_file), "--out", str(tmp_path / "out"), "--no-report", "--no-progress"]
    elif case == "unknown":
        argv += ["--set", "bogus=1"]
    else:
        preset = tmp_path / "preset.json"
        preset.write_text("[1, 2]")
        argv = ["--preset-file", str(preset), "--cores", "rnn=4", "--iterations", "2", "--out",
                str(tmp_path / "out"), "--no-report", "--no-progress"]
    dry = sweep_cli.main([*argv, "--dry-run"])
    dry_text = capsys.readouterr()
    real = sweep_cli.main(argv)  # refused before Ray starts: nothing to run
    real_text = capsys.readouterr()
    assert dry == real != 0, (dry_text, real_text)
    expected = {"hidden": "hidden", "batch": "batch", "list": "episodes", "unknown": "bogus",
                "preset list": "JSON list"}[case]
    assert expected in dry_text.out + dry_text.err and expected in real_text.out + real_text.err
    assert not (tmp_path / "out" / "rnn-s0").exists()


def test_dry_run_lists_new_partial_and_finished_runs(tmp_path, capsys):
    out = tmp_path / "out"
    argv = ["--env", BANDIT, "--cores", "rnn=4", "--seeds", "0", "1", "2", "--set", "batch=4",
            'env_kwargs={"episode_length": 5}', "--out", str(out), "--no-tensorboard"]
    sweep = sweep_from(sweep_cli.sweep_fields(sweep_cli.parse_args([*argv, "--iterations", "4"])))
    run0, run1, _ = sweep.runs()
    assert train.main(run0.train_args(out / run0.name) + ["--no-progress", "--no-tensorboard"]) == 0
    half = run1.train_args(out / run1.name)
    half[half.index("--iterations") + 1] = "2"
    assert train.main(half + ["--no-progress", "--no-tensorboard"]) == 0
    capsys.readouterr()
    assert sweep_cli.main([*argv, "--iterations", "4", "--dry-run"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("skip rnn-s0") and lines[1].startswith("partial  rnn-s1")
    assert lines[2].startswith("new      rnn-s2") and "1 new, 1 to resume, 1 finished, 0 refused" in lines[3]


# -- 8. the smaller messages -----------------------------------------------------------------------------------------
@pytest.mark.parametrize("field, value, expected", [("seed", 2**70, "seed must be at most"),
                                                    ("lr", float("nan"), "lr is nan")])
def test_bad_values_in_config_json_name_the_setting_and_the_file(tmp_path, capsys, field, value, expected):
    out = tmp_path / "run"
    assert train.main([*TINY, "--episodes", "8", "--out", str(out)]) == 0
    config = json.loads((out / "config.json").read_text())
    config[field] = value
    (out / "config.json").write_text(json.dumps(config))  # json writes NaN as NaN
    assert train.main(["--out", str(out), "--resume", "--episodes", "16", "--no-progress"]) == 2
    err = one_line_error(capsys, "plastic-train")
    assert expected in err and "config.json" in err and "other settings" not in err


def test_a_run_another_driver_finished_is_reported_as_skipped_not_trained(tmp_path, monkeypatch):
    monkeypatch.setattr(run_module.StopSignals, "second_signal_stops", True)  # execute() sets it for its worker
    out = tmp_path / "sweep"
    sweep = Sweep(cores=[("rnn", 4)], seeds=[0], env=BANDIT, iterations=4,
                  settings={"batch": 4, "env_kwargs": {"episode_length": 5}})
    (run,) = sweep.runs()
    argv = run.train_args(out / run.name) + ["--no-progress", "--no-tensorboard"]
    half = list(argv)
    half[half.index("--iterations") + 1] = "2"
    assert train.main(half) == 0  # half of it
    jobs, known = plan([run], out, tensorboard=False)
    assert len(jobs) == 1 and not known  # this driver plans to resume it ...
    assert train.main(jobs[0].resume_argv) == 0  # ... and another driver finishes it first
    outcome = _outcome(run.name, execute(jobs[0].spec()), None)
    assert outcome.state == "skipped" and "another sweep" in outcome.message


# -- early Ctrl-C in any command --------------------------------------------------------------------------------------
@pytest.mark.parametrize("command", [["plastic", "train"], ["plastic", "sweep"], ["plastic-train"]])
def test_ctrl_c_while_a_command_imports_exits_130_with_one_line(tmp_path, command):
    script = Path(sys.executable).with_name(command[0])
    if not script.exists():
        pytest.skip("the package is not installed in this environment (pip install -e .)")
    verb = "train" if command == ["plastic-train"] else command[1]
    proc = subprocess.Popen([str(script), *command[1:], "--help"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, cwd=tmp_path)
    try:
        deadline = time.monotonic() + 60
        while True:  # torch's library is being loaded: the command's imports are under way
            with contextlib.suppress(OSError):
                if "libtorch" in Path(f"/proc/{proc.pid}/maps").read_text():
                    break
            assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
            time.sleep(0.002)
        proc.send_signal(signal.SIGINT)
        stdout, stderr = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    if proc.returncode == 0 and stdout.startswith("usage:"):
        pytest.skip("the imports finished before the signal arrived")
    assert proc.returncode == 130, stderr
    # one line (a legacy alias says first that it is deprecated)
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert lines[-1] == f"plastic {verb}: interrupted", stderr
    assert len(lines) == (2 if command == ["plastic-train"] else 1), stderr
