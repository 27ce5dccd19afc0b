"""Provenance of a run: what code, libraries, kernels and machine produced it, kept in ``run.json``.

``run.json`` sits beside ``config.json`` in every run directory (A2C and supervised). It is written when a run
starts and rewritten on every ``--resume``: its top-level fields describe the latest session (the one that is
running, or ran last), and ``sessions`` lists every session in order, one entry per start or resume, each with
its own ``started`` time (UTC), ``resumed`` flag, ``start_iteration`` (the checkpoint it continued from) and the
same provenance fields, so a run continued on another machine or with other code says so. Fields:

``version``        the installed ``plastic-meta-rl`` version ("0+unknown" when the package is not installed)
``git``            ``{"commit", "dirty"}`` when the package runs from a git checkout, else ``null``
``python``, ``torch``, ``numpy``, ``gymnasium``  library versions
``kernel``         the plastic recurrence's kernels: "native" (compiled C, ``plastic_core.native``) or "eager"
                   (batched PyTorch ops), as ``plastic_core.fused`` picks them; ``null`` when the model has no fused
                   plastic core (rnn, lstm, plastic_lstm and the supervised baselines step through autograd / torch)
``native_enabled`` whether ``PLASTIC_CORE_NATIVE`` allows the native kernels at all
``threads``        ``torch.get_num_threads()``; ``device`` the run's torch device (``device_name`` for CUDA)
``hostname``, ``platform``, ``cpu``  the machine (``cpu``: /proc/cpuinfo "model name", else platform.processor())

Provenance is best effort: nothing here may stop a run, so every probe falls back to ``null`` and a run.json that
cannot be written only warns.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import platform
import socket
import subprocess
import sys
import warnings
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import torch
from torch import nn

from agents.checkpoint import atomic_write_text

PACKAGE = "plastic-meta-rl"
RUN_FILE = "run.json"
RUN_FORMAT = 1
GIT_TIMEOUT_S = 5.0
_ROOT = Path(__file__).resolve().parents[1]  # the checkout (or site-packages) that holds agents/


def package_version() -> str:
    """The installed version of plastic-meta-rl, or "0+unknown" when it is not installed (a bare checkout)."""
    try:
        return importlib.metadata.version(PACKAGE)
    except importlib.metadata.PackageNotFoundError:
        return "0+unknown"


__version__ = package_version()


def git_info(root: str | os.PathLike = _ROOT) -> dict[str, Any] | None:
    """``{"commit": sha, "dirty": bool}`` when ``root`` is the top of a git checkout, else ``None``.

    An installed copy inside some other repository (e.g. a virtualenv in a checkout) is not mistaken for it: the
    checkout's top level must be ``root`` itself. ``dirty``: tracked files differ from the commit (untracked
    files are ignored); ``None`` when git could not tell in time.
    """
    root = Path(root).resolve()
    lines = _git(root, "rev-parse", "--show-toplevel", "HEAD")
    if lines is None or len(lines) != 2 or Path(lines[0]).resolve() != root:
        return None
    status = _git(root, "status", "--porcelain", "--untracked-files=no")
    return {"commit": lines[1], "dirty": None if status is None else bool(status)}


def _git(root: Path, *args: str) -> list[str] | None:
    try:
        proc = subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True,
                              timeout=GIT_TIMEOUT_S, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    return proc.stdout.splitlines() if proc.returncode == 0 else None


def cpu_model() -> str | None:
    """The CPU's model name (Linux /proc/cpuinfo), else ``platform.processor()``, else ``None``."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                key, _, value = line.partition(":")
                if key.strip() == "model name" and value.strip():
                    return value.strip()
    except OSError:
        pass
    return platform.processor() or None


def kernel_path(model: nn.Module | None) -> str | None:
    """"native" or "eager": the kernels ``plastic_core.fused`` runs the plastic cores of ``model`` on (the same
    test as ``plastic_core.recurrence.make_recurrence``); ``None`` when ``model`` has no core that takes the fused
    path."""
    if model is None:
        return None
    from plastic_core import native
    from plastic_core.fused import fusable

    cores = [module for module in model.modules() if fusable(module)]
    if not cores:
        return None
    tensors = [p for core in cores for p in core.parameters()]
    if tensors and native.supports(*tensors) and native.load(tensors[0].dtype) is not None:
        return "native"
    return "eager"


def _version(module: str) -> str | None:
    try:
        return importlib.metadata.version(module)
    except importlib.metadata.PackageNotFoundError:
        return None


def _probe(fn, *args: Any) -> Any:
    try:
        return fn(*args)
    except Exception as error:  # provenance never stops a run
        warnings.warn(f"run.json: {getattr(fn, '__name__', fn)} failed ({error})", RuntimeWarning, stacklevel=3)
        return None


def provenance(model: nn.Module | None = None, device: str | torch.device = "cpu") -> dict[str, Any]:
    """The provenance fields of run.json (see the module docstring) for ``model`` trained on ``device``."""
    import gymnasium
    import numpy

    from plastic_core import native

    device = str(device)
    info: dict[str, Any] = {
        "package": PACKAGE,
        "version": package_version(),
        "git": _probe(git_info),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "numpy": numpy.__version__,
        "gymnasium": gymnasium.__version__,
        "kernel": _probe(kernel_path, model),
        "native_enabled": native.enabled(),
        "threads": torch.get_num_threads(),
        "device": device,
        "hostname": _probe(socket.gethostname),
        "platform": _probe(platform.platform),
        "cpu": _probe(cpu_model),
        "executable": sys.executable,
    }
    if device.startswith("cuda") and torch.cuda.is_available():
        info["device_name"] = _probe(torch.cuda.get_device_name, torch.device(device))
    return info


def read_run_json(run_dir: str | os.PathLike) -> dict[str, Any] | None:
    """The run.json of ``run_dir``, or ``None`` when it has none (or an unreadable one)."""
    try:
        data = json.loads((Path(run_dir) / RUN_FILE).read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def write_run_json(run_dir: str | os.PathLike, info: dict[str, Any], resumed: bool = False,
                   start_iteration: int = 0) -> dict[str, Any]:
    """Record a session (``info`` from :func:`provenance`) in ``run_dir``/run.json, atomically; returns what was
    written. A resumed run keeps the earlier sessions (a new run, or an unreadable run.json, starts the list)."""
    session = {"started": datetime.now(UTC).isoformat(timespec="seconds"), "resumed": bool(resumed),
               "start_iteration": int(start_iteration), **info}
    old = read_run_json(run_dir) if resumed else None
    sessions = old.get("sessions") if old is not None else None
    sessions = [*(sessions if isinstance(sessions, list) else []), session]
    data = {"format": RUN_FORMAT, **session, "sessions": sessions}
    try:
        atomic_write_text(Path(run_dir) / RUN_FILE, json.dumps(data, indent=2, default=str) + "\n")
    except OSError as error:
        warnings.warn(f"could not write {Path(run_dir) / RUN_FILE}: {error}", RuntimeWarning, stacklevel=2)
    return data


def record_session(run_dir: str | os.PathLike, model: nn.Module | None, device: str | torch.device,
                   resumed: bool, resumed_from: dict[str, Any] | None) -> dict[str, Any]:
    """What the trainers call right after opening their run directory: :func:`provenance` of ``model`` on
    ``device`` into run.json; ``resumed_from`` is the checkpoint the run continues from (``RunDir.resumed_from``)."""
    start = int(resumed_from.get("iteration", 0)) if isinstance(resumed_from, dict) else 0
    return write_run_json(run_dir, provenance(model, device), resumed=resumed, start_iteration=start)
