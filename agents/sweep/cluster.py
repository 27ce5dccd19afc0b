"""The local Ray cluster of a sweep, in a process of its own that cannot outlive the sweep.

``plastic-sweep`` without ``--address`` starts its Ray cluster through a keeper: ``python -m agents.sweep.cluster``,
started in a new session (so a terminal's Ctrl-C, which goes to the sweep's process group, never reaches Ray's own
processes), which starts the cluster (``ray.init``), tells the sweep its address on a pipe and then waits on its
standard input. The sweep holds the other end: when the sweep closes it (a clean stop) or dies (Ctrl-C, SIGTERM,
SIGKILL, a crash: the kernel closes it), the keeper shuts the cluster down and then ends every process left in its
session: SIGTERM, and SIGKILL to what is still there :data:`KILL_AFTER` seconds later. So within
:data:`STOP_TIMEOUT` seconds of the sweep's end no process of the cluster (raylet, GCS, agents, the workers that run
the runs) is left. Every Ray process is in the keeper's session: nothing outside it is ever signalled.

Ray's own messages go to ``<sweep>/logs/ray-cluster.log``. On systems without ``/proc`` (macOS) the keeper still
shuts Ray down, without the session sweep.
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

RAY_SHUTDOWN_TIMEOUT = 6.0  # seconds for ray.shutdown() in the keeper before the session is signalled
KILL_AFTER = 2.0  # seconds between SIGTERM and SIGKILL of what is left in the keeper's session
STOP_TIMEOUT = RAY_SHUTDOWN_TIMEOUT + KILL_AFTER + 2.0  # the whole teardown, from the sweep's end: 10 s
START_TIMEOUT = 180.0  # seconds for the cluster to start


def session_processes(sid: int) -> list[int]:
    """The pids of the processes in session ``sid`` (from ``/proc``; [] where there is none)."""
    found = []
    with contextlib.suppress(OSError):
        for entry in os.scandir("/proc"):
            if not entry.name.isdigit():
                continue
            try:
                with open(f"/proc/{entry.name}/stat", "rb") as f:
                    fields = f.read().rsplit(b")", 1)[1].split()
            except OSError:
                continue
            # after the command: state, ppid, pgrp, session, ...; a zombie is gone already
            if int(fields[3]) == sid and fields[0] != b"Z":
                found.append(int(entry.name))
    return found


def end_session(sid: int, keep: tuple[int, ...] = (), kill_after: float = KILL_AFTER) -> list[int]:
    """SIGTERM every process of session ``sid`` (but ``keep``), then SIGKILL those still there ``kill_after``
    seconds later; returns the pids that were signalled."""
    targets = [pid for pid in session_processes(sid) if pid not in keep]
    for pid in targets:
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + kill_after
    while time.monotonic() < deadline:
        left = [pid for pid in session_processes(sid) if pid not in keep]
        if not left:
            return targets
        time.sleep(0.05)
    for pid in session_processes(sid):
        if pid not in keep:
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
    return targets


class LocalCluster:
    """A local Ray cluster started by a keeper process (see the module docstring). ``start()`` returns its address
    for ``ray.init(address=...)``; ``stop()`` ends it and every process of it (at most :data:`STOP_TIMEOUT`)."""

    def __init__(self, num_cpus: int | None, log: Path) -> None:
        self.num_cpus = num_cpus or os.cpu_count() or 1
        self.log = Path(log)
        self.process: subprocess.Popen | None = None

    def start(self, stopped: threading.Event | None = None) -> str | None:
        """Start the keeper and wait for the cluster's address (None when ``stopped`` is set meanwhile)."""
        self.log.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log, "ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "agents.sweep.cluster", str(self.num_cpus)], stdin=subprocess.PIPE,
                stdout=subprocess.PIPE, stderr=log, start_new_session=True,
                env={**os.environ, "RAY_USAGE_STATS_ENABLED": "0"})
        deadline = time.monotonic() + START_TIMEOUT
        line = b""
        assert self.process.stdout is not None
        while not line.endswith(b"\n"):
            if stopped is not None and stopped.is_set():
                return None
            if time.monotonic() > deadline:
                raise RuntimeError(f"the local Ray cluster did not start within {START_TIMEOUT:.0f} s (see {self.log})")
            ready, _, _ = select.select([self.process.stdout], [], [], 0.2)
            if ready:
                chunk = os.read(self.process.stdout.fileno(), 4096)
                if not chunk:
                    raise RuntimeError(f"the local Ray cluster did not start: {last_line(self.log)} (see {self.log})")
                line += chunk
        self.process.stdout.close()
        _, address, *mode = line.decode().split()
        if mode and "RAY_AUTH_MODE" not in os.environ:  # connect as the cluster expects (the token is in ~/.ray)
            use_auth_mode(mode[0])
        return address

    def stop(self) -> None:
        """End the cluster: close the keeper's pipe, wait for it (it shuts Ray down and ends its session), and end
        the session here if the keeper is stuck."""
        process, self.process = self.process, None
        if process is None:
            return
        with contextlib.suppress(OSError):
            process.stdin.close()
        try:
            process.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            end_session(process.pid, kill_after=1.0)
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=2)
        if process.stdout is not None and not process.stdout.closed:
            process.stdout.close()


def use_auth_mode(mode: str) -> None:
    """Connect to the cluster with its authentication mode: ``ray.init`` turns token authentication on for a local
    cluster (the token in ``~/.ray/auth_token``), and a driver that connects must know. Ray reads the mode when it
    is imported, so a Ray already imported in this process re-reads its configuration, as ``ray.init`` does."""
    os.environ["RAY_AUTH_MODE"] = mode
    if "ray" in sys.modules:
        with contextlib.suppress(Exception):
            from ray._raylet import Config

            Config.initialize("")


def last_line(path: Path) -> str:
    with contextlib.suppress(OSError):
        lines = [line for line in path.read_text(errors="replace").splitlines() if line.strip()]
        if lines:
            return lines[-1].strip()
    return "no message"


def keep(num_cpus: int) -> int:
    """The keeper (``python -m agents.sweep.cluster NUM_CPUS``): start Ray, print its address, wait for the end of
    standard input, then shut Ray down and end every other process of this session."""
    report = os.fdopen(os.dup(1), "w")  # the address goes to the sweep; Ray's processes get the log as stdout
    os.dup2(2, 1)
    stop = threading.Event()
    for name in ("SIGINT", "SIGTERM", "SIGHUP"):
        signal.signal(getattr(signal, name), lambda *_: stop.set())
    sid = os.getsid(0)
    try:
        import ray

        ray.init(num_cpus=num_cpus, include_dashboard=False, log_to_driver=False,
                 object_store_memory=256 * 1024**2)
        for name in ("SIGINT", "SIGTERM", "SIGHUP"):  # ray.init installs its own SIGTERM handler
            signal.signal(getattr(signal, name), lambda *_: stop.set())
        # the cluster's address, and its authentication mode (ray.init turns token authentication on for it)
        report.write(f"address {ray.get_runtime_context().gcs_address} {os.environ.get('RAY_AUTH_MODE', '')}\n")
        report.close()
        waiter = threading.Thread(target=_wait_for_eof, args=(stop,), daemon=True)
        waiter.start()
        while not stop.wait(0.5):
            pass
        shutdown = threading.Thread(target=ray.shutdown, daemon=True)
        shutdown.start()
        shutdown.join(RAY_SHUTDOWN_TIMEOUT)
    finally:
        if sid == os.getpid():  # only in a session of our own (started by LocalCluster)
            end_session(sid, keep=(os.getpid(),))
    return 0


def _wait_for_eof(stop: threading.Event) -> None:
    with contextlib.suppress(OSError):
        while os.read(0, 4096):
            pass
    stop.set()


if __name__ == "__main__":
    sys.exit(keep(int(sys.argv[1])))
