"""Run the runs of a sweep as Ray tasks: on a local Ray cluster (the CPUs of this machine) or a running one.

Each run is one Ray task that calls a training command's ``main(argv)`` (``agents.cli.train`` by default) in the
Ray worker process itself, in the run's own directory, with its stdout and stderr in ``<sweep>/logs/<run>.log``.
In-process, not a subprocess, because then the pid in the run's ``run.lock`` is the worker's: when that process
dies (killed, out of memory, its machine lost) Ray sees a dead worker and runs the task again (``max_retries``),
and the task, finding the run directory, continues it with ``--resume`` from its last checkpoint. A run that fails
by itself (exit status 1: NaN loss, 2: bad settings) returns its status and is not retried.

Before anything starts, every run is checked here: one whose checkpoint holds all its iterations is skipped, one
whose directory holds a run with other settings is reported (it is not touched), the others are new or resumed.
So the same command run again continues the sweep and starts nothing once it is done, and a sweep with more
seeds runs only the new ones.

On a cluster of several machines the sweep folder must be on a file system that every node mounts at the same
path (the runs write their directories there), and every node needs this package installed.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import shlex
import socket
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from agents.sweep.grid import Run, differences, expected_config, resume_args, run_state

LOG_DIR = "logs"


@dataclass
class Job:
    """One run to hand to Ray: the command module, the arguments of a new run and of a resume."""

    name: str
    out: Path
    argv: list[str]
    resume_argv: list[str] | None  # None: the command cannot resume (SB3 runs)
    module: str = "agents.cli.train"
    log: Path | None = None

    def spec(self) -> dict[str, Any]:
        return {"name": self.name, "out": str(self.out), "argv": self.argv, "resume_argv": self.resume_argv,
                "module": self.module, "log": str(self.log or self.out.parent / LOG_DIR / f"{self.name}.log")}


@dataclass
class Outcome:
    """How one run of the sweep ended (``state``: skipped, done, failed)."""

    name: str
    state: str
    code: int | None = None
    seconds: float = 0.0
    message: str = ""
    resumed: bool = False
    reward: float | None = None


@dataclass
class GridResult:
    outcomes: list[Outcome] = field(default_factory=list)
    wall: float = 0.0

    @property
    def ok(self) -> bool:
        return all(o.state != "failed" for o in self.outcomes)

    def count(self, state: str) -> int:
        return sum(o.state == state for o in self.outcomes)

    @property
    def started(self) -> list[str]:
        return [o.name for o in self.outcomes if o.state != "skipped"]


def execute(spec: dict[str, Any]) -> dict[str, Any]:
    """The body of a run's Ray task (also callable without Ray): train or resume, return how it ended."""
    out, log = Path(spec["out"]), Path(spec["log"])
    resume = spec["resume_argv"] is not None and (out / "config.json").is_file()
    argv = spec["resume_argv"] if resume else spec["argv"]
    module = importlib.import_module(spec["module"])
    log.parent.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    with open(log, "a") as handle, contextlib.redirect_stdout(handle), contextlib.redirect_stderr(handle):
        print(f"$ python -m {spec['module']} {shlex.join(argv)}  # pid {os.getpid()} on {socket.gethostname()}",
              flush=True)
        try:
            code = module.main(argv)
        except SystemExit as stop:  # argparse
            code = stop.code if isinstance(stop.code, int) else 2
        print(f"# exit status {code}", flush=True)
    lines = [line for line in log.read_text(errors="replace").splitlines() if line and not line.startswith("#")]
    reward = None
    if code == 0 and (out / "metrics.csv").is_file():
        from agents.logger import read_metrics

        rows = read_metrics(out)
        reward = rows[-1].get("reward_mean") if rows else None
    return {"name": spec["name"], "code": code, "seconds": time.perf_counter() - started, "resumed": resume,
            "message": lines[-1] if lines else "", "reward": reward, "host": socket.gethostname()}


def plan(runs: list[Run], out: Path, threads: int = 1, tensorboard: bool = True
         ) -> tuple[list[Job], list[Outcome]]:
    """The jobs that are left to do, and the outcomes known beforehand (finished runs, bad settings)."""
    jobs, known = [], []
    flags = ["--threads", str(threads), "--no-progress"] + ([] if tensorboard else ["--no-tensorboard"])
    for run in runs:
        run_out = out / run.name
        argv = run.train_args(run_out) + flags
        try:
            expected = expected_config(argv)
        except (ValueError, TypeError) as error:
            known.append(Outcome(run.name, "failed", 2, message=f"bad settings: {error}"))
            continue
        state = run_state(run_out, expected.episodes)
        if state != "new":
            diff = differences(run_out, expected)
            if diff:
                known.append(Outcome(run.name, "failed", 2, message=f"{run_out} holds a run with other settings "
                                     f"({'; '.join(diff)}); not touched"))
                continue
        if state == "done":
            known.append(Outcome(run.name, "skipped", 0, message="finished"))
            continue
        jobs.append(Job(run.name, run_out, argv, resume_args(run_out, expected) + flags))
    return jobs, known


def init_ray(address: str | None = None, num_cpus: int | None = None) -> bool:
    """Connect to Ray: the cluster at ``address`` ("auto", "HOST:PORT"), else a new local one with ``num_cpus``
    CPUs (default: all). Returns whether this call started it (and should shut it down). No dashboard, no usage
    statistics."""
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    import ray

    if ray.is_initialized():
        return False
    if address:
        ray.init(address=address, include_dashboard=False, log_to_driver=False)
    else:
        ray.init(num_cpus=num_cpus or os.cpu_count(), include_dashboard=False, log_to_driver=False,
                 object_store_memory=256 * 1024**2)
    return True


def _outcome(name: str, result: dict[str, Any] | None, error: BaseException | None) -> Outcome:
    if error is not None:
        return Outcome(name, "failed", None, message=f"{type(error).__name__}: {str(error).strip().splitlines()[-1]}")
    code = result["code"]
    return Outcome(name, "done" if code == 0 else "failed", code, result["seconds"], result["message"],
                   result["resumed"], result["reward"])


def describe(outcome: Outcome, log: Path | None = None) -> str:
    """One line per finished run."""
    if outcome.state == "skipped":
        return f"skip {outcome.name} ({outcome.message})"
    if outcome.state == "done":
        reward = f", reward {outcome.reward:.3f} (last batch)" if outcome.reward is not None else ""
        return f"done {outcome.name} in {outcome.seconds:.1f} s{' (resumed)' if outcome.resumed else ''}{reward}"
    where = f" (log: {log})" if log is not None else ""
    status = f"exit {outcome.code}" if outcome.code is not None else "error"
    return f"FAILED {outcome.name} ({status}): {outcome.message}{where}"


def run_jobs(jobs: list[Job], *, address: str | None = None, num_cpus: int | None = None, cpus_per_run: float = 1,
             max_retries: int = 3, stream: TextIO | None = None, progress: bool | None = None) -> list[Outcome]:
    """Run ``jobs`` as Ray tasks (see the module docstring); prints a line per finished run and keeps an overall
    bar (done, running, failed, time left). Returns their outcomes in the order of ``jobs``."""
    from tqdm import tqdm

    stream = stream or sys.stdout
    if not jobs:
        return []
    started_here = init_ray(address, num_cpus)
    import ray

    task = ray.remote(num_cpus=cpus_per_run, max_retries=max_retries, retry_exceptions=False)(execute)
    refs = {task.options(name=job.name).remote(job.spec()): job for job in jobs}
    outcomes: dict[str, Outcome] = {}
    bar = tqdm(total=len(jobs), unit="run", desc="sweep", dynamic_ncols=True, file=sys.stderr,
               disable=True if progress is False else None if progress is None else False)
    pending = list(refs)
    try:
        while pending:
            ready, pending = ray.wait(pending, num_returns=1, timeout=2.0)
            for ref in ready:
                job = refs[ref]
                try:
                    outcome = _outcome(job.name, ray.get(ref), None)
                except Exception as error:  # a task that raised, or whose worker died more than max_retries times
                    outcome = _outcome(job.name, None, error)
                outcomes[job.name] = outcome
                bar.write(describe(outcome, Path(job.spec()["log"]) if outcome.state == "failed" else None),
                          file=stream)
                bar.update(1)
            failed = sum(o.state == "failed" for o in outcomes.values())
            with contextlib.suppress(Exception):  # a cluster-wide estimate: CPUs in use / CPUs per run
                used = ray.cluster_resources().get("CPU", 0) - ray.available_resources().get("CPU", 0)
                bar.set_postfix(running=min(len(pending), int(round(used / cpus_per_run))), failed=failed)
    except KeyboardInterrupt:
        for ref in pending:
            ray.cancel(ref)
        bar.write("interrupted: the runs keep their last checkpoints; run the same command again to continue",
                  file=stream)
        raise
    finally:
        bar.close()
        if started_here:
            ray.shutdown()
    return [outcomes[job.name] for job in jobs]


def run_grid(runs: list[Run], out: str | Path, *, address: str | None = None, num_cpus: int | None = None,
             cpus_per_run: float = 1, max_retries: int = 3, threads: int = 1, tensorboard: bool = True,
             stream: TextIO | None = None, progress: bool | None = None) -> GridResult:
    """Plan ``runs`` in sweep folder ``out`` and run what is left (no Ray at all when nothing is)."""
    stream = stream or sys.stdout
    started = time.perf_counter()
    out = Path(out).resolve()
    jobs, known = plan(runs, out, threads=threads, tensorboard=tensorboard)
    for outcome in known:
        print(describe(outcome), file=stream, flush=True)
    if not jobs:
        print(f"nothing to run: {sum(o.state == 'skipped' for o in known)} of {len(runs)} runs are finished",
              file=stream, flush=True)
    done = run_jobs(jobs, address=address, num_cpus=num_cpus, cpus_per_run=cpus_per_run, max_retries=max_retries,
                    stream=stream, progress=progress)
    order = {run.name: i for i, run in enumerate(runs)}
    outcomes = sorted(known + done, key=lambda o: order.get(o.name, len(order)))
    return GridResult(outcomes, time.perf_counter() - started)
