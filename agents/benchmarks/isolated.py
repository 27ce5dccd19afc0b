"""Run one measurement in a fresh Python process and read back its result.

A measurement that runs in its own process has its own peak resident memory, thread pools and allocator, and
one that runs out of memory fails alone. ``run_isolated("agents.benchmarks.core:measure_core", {...})`` starts
``python -m agents.benchmarks.isolated agents.benchmarks.core:measure_core '{...}'``, which calls the function
with those keyword arguments and prints its result (a JSON object) as the last line.
"""

from __future__ import annotations

import importlib
import json
import resource
import subprocess
import sys
from collections.abc import Mapping
from typing import Any


def run_isolated(function: str, kwargs: Mapping[str, Any], memory_limit_gib: float = 0.0,
                 env: Mapping[str, str] | None = None) -> dict | str:
    """``function(**kwargs)`` (``"module:name"``, returning a JSON-serialisable dict) in a subprocess.

    Returns its result, or a one-line reason when it failed (killed, out of memory, or its last line of
    stderr). ``memory_limit_gib`` > 0 caps the subprocess's address space, so that a configuration that does not
    fit fails instead of exhausting the machine; ``env`` replaces its environment.
    """

    def limit_memory() -> None:
        if memory_limit_gib > 0:
            cap = int(memory_limit_gib * 2**30)
            resource.setrlimit(resource.RLIMIT_AS, (cap, cap))

    command = [sys.executable, "-m", __name__, function, json.dumps(dict(kwargs))]
    proc = subprocess.run(command, capture_output=True, text=True, preexec_fn=limit_memory,
                          env=None if env is None else dict(env))
    if proc.returncode == 0:
        return json.loads(proc.stdout.strip().splitlines()[-1])
    if proc.returncode < 0:
        return f"killed (signal {-proc.returncode}, out of memory?)"
    text = proc.stderr.strip()
    if memory_limit_gib > 0 and "memory" in text.lower() and ("alloc" in text.lower() or "MemoryError" in text):
        return f"out of memory (> {memory_limit_gib:g} GiB)"
    lines = text.splitlines() or [f"exit code {proc.returncode}"]
    return f"failed: {lines[-1][:100]}"


def call(function: str, kwargs: Mapping[str, Any]) -> dict:
    """Import ``"module:name"`` and call it with ``kwargs``."""
    module, _, name = function.partition(":")
    return getattr(importlib.import_module(module), name)(**kwargs)


if __name__ == "__main__":
    print(json.dumps(call(sys.argv[1], json.loads(sys.argv[2]))))
