"""Atomic checkpoint files, loaded with ``torch.load(weights_only=True)``.

A checkpoint is a plain dict of tensors, numbers, strings and containers (model and optimizer ``state_dict``,
generator states, counters). It is written to a temporary file in the same directory and moved over the old one
with ``os.replace``, so that a run killed mid-write leaves the previous checkpoint intact.

Format 2 adds ``digest``: the SHA-256 of everything else in the payload (every tensor's dtype, shape and bytes,
every number and string, in order), checked at load, so that a flipped bit is reported instead of trained on.
Loading also refuses non-finite floating-point tensors (NaN or infinite weights or optimizer moments), digest or
not. Format 1 checkpoints (no digest) still load, with the finiteness check.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path
from typing import Any

import torch

CHECKPOINT_FORMAT = 2
READABLE_FORMATS = (1, 2)  # 1: before the digest
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
    body = {key: value for key, value in payload.items() if key not in ("format", "digest")}
    _atomic_write(Path(path), lambda f: torch.save(
        {"format": CHECKPOINT_FORMAT, **body, "digest": payload_digest(body)}, f))


def payload_digest(payload: Any) -> str:
    """SHA-256 (hex) of a checkpoint payload: tensors by dtype, shape and bytes, other leaves by type and repr."""
    digest = hashlib.sha256()
    _feed(digest, payload)
    return digest.hexdigest()


def _feed(digest: Any, value: Any) -> None:
    if isinstance(value, torch.Tensor):
        tensor = value.detach().cpu().contiguous()
        digest.update(f"T{tensor.dtype}{tuple(tensor.shape)}:".encode())
        digest.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes() if tensor.numel() else b"")
    elif isinstance(value, dict):
        digest.update(f"D{len(value)}:".encode())
        for key, item in value.items():
            _feed(digest, key)
            _feed(digest, item)
    elif isinstance(value, (list, tuple)):
        digest.update(f"{'L' if isinstance(value, list) else 'U'}{len(value)}:".encode())
        for item in value:
            _feed(digest, item)
    else:
        text = repr(value).encode("utf-8", "backslashreplace")
        digest.update(f"S{type(value).__name__}{len(text)}:".encode() + text)


def non_finite(payload: Any, where: str = "") -> str | None:
    """The path (e.g. ``trainer.model.policy.weight``) of the first floating-point tensor in ``payload`` that holds
    NaN or an infinity, or ``None`` when all are finite."""
    if isinstance(payload, torch.Tensor):
        if (payload.is_floating_point() or payload.is_complex()) and not bool(torch.isfinite(payload).all()):
            return where or "<tensor>"
        return None
    if isinstance(payload, dict):
        items: Any = payload.items()
    elif isinstance(payload, (list, tuple)):
        items = enumerate(payload)
    else:
        return None
    for key, item in items:
        found = non_finite(item, f"{where}.{key}" if where else str(key))
        if found is not None:
            return found
    return None


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
    if not isinstance(payload, dict) or payload.get("format") not in READABLE_FORMATS:
        raise CheckpointError(f"{path} is not a checkpoint written by this project (format {CHECKPOINT_FORMAT})")
    if payload["format"] >= 2:
        body = {key: value for key, value in payload.items() if key not in ("format", "digest")}
        if not isinstance(payload.get("digest"), str) or payload_digest(body) != payload["digest"]:
            raise CheckpointError(
                f"checkpoint {path} fails its digest check: its contents changed after it was written (a flipped "
                "bit, a partial copy or an edit). Restore it from a backup, or delete it to restart the run"
            )
    bad = non_finite(payload)
    if bad is not None:
        raise CheckpointError(
            f"checkpoint {path} holds non-finite values (NaN or inf) in {bad}; it cannot be trained on or "
            "evaluated. Restore an earlier checkpoint, or delete it to restart the run"
        )
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
