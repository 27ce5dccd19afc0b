"""Atomic checkpoint files, loaded with ``torch.load(weights_only=True)``.

A checkpoint is a plain dict of tensors, numbers, strings and containers (model and optimizer ``state_dict``,
generator states, counters). It is written to a temporary file in the same directory and moved over the old one
with ``os.replace``, so that a run killed mid-write leaves the previous checkpoint intact.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import torch

CHECKPOINT_FORMAT = 1
_TMP_PREFIX = ".tmp-"


class RunError(ValueError):
    """A run directory or its files cannot be used as asked (the message says why and what to do)."""


class CheckpointError(RunError):
    """A checkpoint file is corrupt, truncated, or belongs to another run."""


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file in the same directory and ``os.replace``."""
    _atomic_write(Path(path), lambda f: f.write(data))


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def save_checkpoint(path: str | os.PathLike, payload: dict[str, Any]) -> None:
    """Save ``payload`` atomically; it must hold only what ``torch.load(weights_only=True)`` accepts."""
    if not isinstance(payload, dict):
        raise TypeError(f"a checkpoint payload must be a dict, got {type(payload).__name__}")
    _atomic_write(Path(path), lambda f: torch.save({"format": CHECKPOINT_FORMAT, **payload}, f))


def load_checkpoint(path: str | os.PathLike, map_location: str | torch.device | None = "cpu") -> dict[str, Any]:
    """Load a checkpoint written by :func:`save_checkpoint`, or raise :class:`CheckpointError` saying why not."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"no checkpoint at {path}")
    try:
        payload = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as error:  # torch raises RuntimeError, EOFError, UnpicklingError... for bad files
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise CheckpointError(
            f"checkpoint {path} is corrupt or truncated and cannot be loaded ({type(error).__name__}: {reason}). "
            "Restore it from a backup, or delete it to restart the run from scratch."
        ) from error
    if not isinstance(payload, dict) or payload.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(f"{path} is not a checkpoint written by this project (format {CHECKPOINT_FORMAT})")
    return payload


def remove_stale_temp_files(directory: str | os.PathLike) -> None:
    """Delete temporary files left by a write that was killed before its ``os.replace``."""
    for stale in Path(directory).glob(f"{_TMP_PREFIX}*"):
        stale.unlink(missing_ok=True)


def _atomic_write(path: Path, write) -> None:
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f"{_TMP_PREFIX}{path.name}.")
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp_name, 0o644)  # mkstemp makes it private; run files are ordinary files
        os.replace(tmp_name, path)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
    _fsync_directory(path.parent)


def _fsync_directory(directory: Path) -> None:
    """Make the rename itself durable (POSIX); a no-op where directories cannot be opened."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
