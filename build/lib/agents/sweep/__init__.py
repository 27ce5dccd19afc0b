"""Sweeps of plastic-train runs on Ray (``plastic-sweep``): a grid (cores x seeds x settings) run as Ray tasks on
this machine or a cluster, resumed where it stopped; its table and figures; and Ray Tune searches.

- :mod:`agents.sweep.grid`: the grid, its run names and plastic-train arguments, the state of a run directory;
- :mod:`agents.sweep.runner`: one Ray task per run, retried (and resumed) when its worker dies;
- :mod:`agents.sweep.report`: the table (per core) and the learning-curve figures;
- :mod:`agents.sweep.search`: hyperparameter search with Ray Tune, the best configuration as a preset file.

Ray is imported only when runs are started, so reading a sweep or writing its report does not need it.
"""

from agents.sweep.grid import Run, Sweep, load_sweep_file, parse_cores, parse_settings, run_state, sweep_from
from agents.sweep.report import markdown_table, summarise_run, write_report
from agents.sweep.runner import GridResult, Job, Outcome, run_grid, run_jobs

__all__ = ["GridResult", "Job", "Outcome", "Run", "Sweep", "load_sweep_file", "markdown_table", "parse_cores",
           "parse_settings", "run_grid", "run_jobs", "run_state", "summarise_run", "sweep_from", "write_report"]
