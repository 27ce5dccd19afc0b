"""Sweeps of plastic-train runs on Ray (``plastic-sweep``): a grid (cores x seeds x settings) run as Ray tasks on
this machine or a cluster, resumed where it stopped; its table and figures; and Ray Tune searches.

- :mod:`agents.sweep.grid`: the grid, its run names and plastic-train arguments, the state of a run directory;
- :mod:`agents.sweep.runner`: one Ray task per run, retried (and resumed) when its worker dies;
- :mod:`agents.sweep.report`: the table (per core) and the learning-curve figures;
- :mod:`agents.sweep.search`: hyperparameter search with Ray Tune, the best configuration as a preset file;
- :mod:`agents.sweep.cluster`: the local Ray cluster in a process of its own, which ends with the sweep.

Ray is imported only when runs are started, so reading a sweep or writing its report does not need it.
"""

import importlib
from typing import Any

_LAZY = {
    "Run": "grid", "Sweep": "grid", "load_sweep_file": "grid", "parse_cores": "grid", "parse_settings": "grid",
    "run_state": "grid", "sweep_from": "grid", "markdown_table": "report", "summarise_run": "report",
    "write_report": "report", "GridResult": "runner", "Job": "runner", "Outcome": "runner", "run_grid": "runner",
    "run_jobs": "runner",
}

__all__ = sorted(_LAZY)


def __getattr__(name: str) -> Any:
    """The names above, imported on first use (the cluster keeper, ``python -m agents.sweep.cluster``, imports
    this package and needs none of them)."""
    if name in _LAZY:
        value = getattr(importlib.import_module(f"agents.sweep.{_LAZY[name]}"), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'agents.sweep' has no attribute {name!r}")
