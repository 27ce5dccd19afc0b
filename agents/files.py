"""The one reader of the settings files the package reads: sweep files (TOML), preset files (JSON or TOML),
``config.json`` and ``run.json`` of a run directory.

Every such file goes through :func:`read_settings_file`: a regular file of at most :data:`MAX_FILE_BYTES`, UTF-8,
valid JSON / TOML, an object (table) at the top, nested at most :data:`MAX_FILE_DEPTH` levels, and only finite
numbers. Anything else is a :class:`SettingsFileError` (a ``ValueError``) of one line that names the file, raised
before anything else reads the data. Nothing in a file is evaluated, and an env id in it goes through
:func:`agents.checks.check_env_id` (the gymnasium registry) before anything could import a module it names.
"""

from __future__ import annotations

import json
import math
import os
import stat
import tomllib
from pathlib import Path
from typing import Any

MAX_FILE_BYTES = 1 << 20  # 1 MiB: a settings file is a few KB; the paper sweeps are under 2 KB
MAX_FILE_DEPTH = 32  # nesting of lists and tables (deeper is damage or a crafted file, not settings)


class SettingsFileError(ValueError):
    """A settings file that cannot be used (the message names it and says why, on one line)."""


def file_format(path: str | os.PathLike) -> str:
    """"toml" for a ``.toml`` file, else "json"."""
    return "toml" if Path(path).suffix.lower() == ".toml" else "json"


def read_bounded(path: str | os.PathLike, what: str, max_bytes: int = MAX_FILE_BYTES) -> bytes:
    """The bytes of the regular file ``path`` (at most ``max_bytes``; more, a FIFO or a device is refused)."""
    path = Path(path)
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
    except OSError as error:
        raise SettingsFileError(f"cannot read the {what} {path}: {error.strerror or error}") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise SettingsFileError(f"the {what} {path} is not a regular file")
        if info.st_size > max_bytes:
            raise SettingsFileError(f"the {what} {path} is {info.st_size:,} bytes, more than the {max_bytes:,} a "
                                    "settings file may have")
        chunks, size = [], 0
        while size <= max_bytes:
            chunk = os.read(fd, max_bytes + 1 - size)
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
    except OSError as error:
        raise SettingsFileError(f"cannot read the {what} {path}: {error.strerror or error}") from None
    finally:
        os.close(fd)
    data = b"".join(chunks)
    if len(data) > max_bytes:  # it grew while we read it
        raise SettingsFileError(f"the {what} {path} is more than the {max_bytes:,} bytes a settings file may have")
    return data


def parse_settings_text(text: str, fmt: str, where: str) -> Any:
    """JSON or TOML ``text`` parsed (``where`` names it in the errors); nothing is evaluated."""
    try:
        if fmt == "toml":
            return tomllib.loads(text)
        return json.loads(text)
    except RecursionError:
        raise SettingsFileError(f"{where} is nested more than {MAX_FILE_DEPTH} levels deep") from None
    except tomllib.TOMLDecodeError as error:
        raise SettingsFileError(f"{where} is not valid TOML ({_one_line(error)})") from None
    except json.JSONDecodeError as error:
        raise SettingsFileError(f"{where} is not valid JSON ({_one_line(error)})") from None
    except ValueError as error:  # e.g. an integer of more than 4300 digits
        raise SettingsFileError(f"{where} cannot be read ({_one_line(error)})") from None


def check_settings_value(value: Any, where: str, max_depth: int = MAX_FILE_DEPTH) -> None:
    """:class:`SettingsFileError` when ``value`` nests deeper than ``max_depth`` or holds a NaN or infinite number
    (naming its key); iterative, so no file can exhaust the stack."""
    stack: list[tuple[Any, str, int]] = [(value, "", 0)]
    while stack:
        item, key, depth = stack.pop()
        if isinstance(item, float) and not math.isfinite(item):
            raise SettingsFileError(f"{where}: {key or 'the value'} is {item!r}; settings must be finite numbers")
        if isinstance(item, (dict, list)):
            if depth + 1 > max_depth:
                raise SettingsFileError(f"{where} is nested more than {max_depth} levels deep")
            pairs = item.items() if isinstance(item, dict) else enumerate(item)
            for name, child in pairs:
                label = f"{key}.{name}" if key and isinstance(item, dict) else (f"{key}[{name}]" if key else str(name))
                stack.append((child, label, depth + 1))


def read_settings_file(path: str | os.PathLike, what: str, fmt: str | None = None,
                       max_bytes: int = MAX_FILE_BYTES, max_depth: int = MAX_FILE_DEPTH) -> dict[str, Any]:
    """The object (table) in the settings file ``path``: ``what`` names the kind of file in the errors ("sweep
    file", "preset file", ...); ``fmt`` "json" or "toml" (default: by the suffix). Raises a one-line
    :class:`SettingsFileError` naming the file for a missing, oversized, non-UTF-8, invalid, too deeply nested or
    non-finite file, or one whose top level is not an object."""
    path = Path(path)
    fmt = fmt or file_format(path)
    data = read_bounded(path, what, max_bytes)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise SettingsFileError(f"the {what} {path} is not UTF-8 text ({error.reason} at byte {error.start})") from None
    where = f"the {what} {path}"
    value = parse_settings_text(text, fmt, where)
    if not isinstance(value, dict):
        kind = "JSON " + type(value).__name__ if fmt == "json" else type(value).__name__
        raise SettingsFileError(f"{where} holds a {kind}, not an object of settings")
    check_settings_value(value, where, max_depth)
    return value


def _one_line(error: BaseException) -> str:
    from agents.checks import one_line

    return one_line(error)
