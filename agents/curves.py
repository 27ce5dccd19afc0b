"""Learning curves of runs, grouped (by core by default): loading, smoothing, aggregating and drawing them.

One definition of each curve helper for ``plastic-plot``, ``plastic-sweep report`` and the results pages: a run's
curve is its metrics.csv column ``y`` against column ``x``; a group's curve is the median and inter-quartile range
over its runs of their smoothed curves on a common x grid; a run's final value is the mean of its last 10%.

All runs drawn on one axis must be of one env with the same env kwargs (keyword arguments equal to the env's
defaults count as left out): :func:`check_one_env` refuses others, naming the two settings and their runs.
"""

from __future__ import annotations

import importlib
import inspect
import json
import math
import sys
import textwrap
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

Curve = tuple[np.ndarray, np.ndarray]  # x (n,), y (n,) of one run

AXIS_LABELS = {"episodes": "episodes", "wall_time": "wall time (s)", "iteration": "iterations",
               "reward_mean": "reward per episode"}


def load_runs(paths: list[str | Path], group: str, x: str, y: str) -> dict[str, list[Curve]]:
    """{group value: [(x (n,), y (n,)) per run]} for every run that has logged at least one row; ``group`` is a
    config.json field (ValueError naming the run when it lacks it, or when metrics.csv lacks ``x`` or ``y``)."""
    from agents.logger import read_metrics
    from agents.run import RunDir

    groups: dict[str, list[Curve]] = defaultdict(list)
    for path in paths:
        config = RunDir.read_config(path)
        if group not in config:
            raise ValueError(f"{path}/config.json has no field {group!r}; fields: {', '.join(sorted(config))}")
        metrics_file = Path(path) / "metrics.csv"
        if not metrics_file.is_file():
            print(f"plot: skipping {path}: no metrics.csv yet", file=sys.stderr)
            continue
        rows = read_metrics(metrics_file)
        if not rows:
            print(f"plot: skipping {path}: no rows yet", file=sys.stderr)
            continue
        for column in (x, y):
            if column not in rows[0]:
                raise ValueError(f"{metrics_file} has no column {column!r}; columns: {', '.join(rows[0])}")
        groups[str(config[group])].append(
            (np.array([r[x] for r in rows], dtype=np.float64), np.array([r[y] for r in rows], dtype=np.float64))
        )
    return dict(groups)


def env_kwarg_defaults(env_id: str) -> dict[str, Any]:
    """The keyword arguments ``gym.make(env_id)`` uses when given none (the registered kwargs over the entry
    point's signature defaults), JSON-normalised; {} when the env cannot be looked up."""
    import gymnasium as gym

    try:
        import envs  # noqa: F401  (registers the Plastic/... ids)

        spec = gym.spec(env_id)
        entry = spec.entry_point
        if isinstance(entry, str):
            module, _, name = entry.partition(":")
            entry = getattr(importlib.import_module(module), name)
        defaults = {
            key: param.default for key, param in inspect.signature(entry).parameters.items()
            if param.default is not inspect.Parameter.empty and key != "render_mode"
        }
        defaults.update(spec.kwargs)
        return _normalised(defaults)
    except Exception:  # an unknown or unimportable env: compare the kwargs as written
        return {}


def _normalised(kwargs: dict[str, Any]) -> dict[str, Any]:
    """As JSON would give them back (tuples -> lists); values that cannot be written become their repr."""
    return json.loads(json.dumps(kwargs, default=repr))


def env_setting(config: dict[str, Any], defaults: dict[str, dict[str, Any]]) -> tuple[str, str]:
    """(env id, canonical JSON of the env kwargs that differ from the env's defaults): equal for runs of one task.
    ``defaults`` caches :func:`env_kwarg_defaults` by env id."""
    env_id = str(config.get("env_id", "?"))
    if env_id not in defaults:
        defaults[env_id] = env_kwarg_defaults(env_id)
    kwargs = _normalised(dict(config.get("env_kwargs") or {}))
    given = {k: v for k, v in kwargs.items() if k not in defaults[env_id] or defaults[env_id][k] != v}
    return env_id, json.dumps(given, sort_keys=True)


def describe_env(env_id: str, env_kwargs: dict[str, Any] | None) -> str:
    """``Plastic/Maze-v0 {size: 9, episode_length: 100}`` (``(default kwargs)`` when none are given)."""
    if not env_kwargs:
        return f"{env_id} (default kwargs)"
    items = ", ".join(f"{k}: {v if isinstance(v, str) else json.dumps(v)}" for k, v in env_kwargs.items())
    return f"{env_id} {{{items}}}"


def check_one_env(paths: list[str | Path]) -> str:
    """The description (``describe_env``) of the env that every run in ``paths`` trained on; ValueError naming the
    first two runs whose env id or env kwargs differ."""
    from agents.run import RunDir

    defaults: dict[str, dict[str, Any]] = {}
    first_path, first_config = paths[0], RunDir.read_config(paths[0])
    first = env_setting(first_config, defaults)
    for path in paths[1:]:
        config = RunDir.read_config(path)
        if env_setting(config, defaults) != first:
            mine = describe_env(str(config.get("env_id", "?")), config.get("env_kwargs"))
            theirs = describe_env(str(first_config.get("env_id", "?")), first_config.get("env_kwargs"))
            raise ValueError(f"runs of different envs or env kwargs cannot share one plot: {first_path} is "
                             f"{theirs} but {path} is {mine}; plot them separately")
    return describe_env(str(first_config.get("env_id", "?")), first_config.get("env_kwargs"))


def running_mean(values: np.ndarray, window: int) -> np.ndarray:
    """Trailing running mean (n,) over up to ``window`` values (shorter at the start)."""
    if window <= 1:
        return values
    cumsum = np.concatenate([[0.0], np.cumsum(values)])
    ends = np.arange(1, len(values) + 1)
    starts = np.maximum(ends - window, 0)
    return (cumsum[ends] - cumsum[starts]) / (ends - starts)


def default_window(n: int) -> int:
    """The smoothing window when none is given: about 2% of a run's rows."""
    return max(1, n // 50)


def aggregate(curves: list[Curve], smooth: int, points: int) -> tuple[np.ndarray, ...]:
    """Common grid (P,) and the 25th, 50th and 75th percentiles (P,) of the smoothed curves over runs.

    The grid spans the x range that every run covers, so each point is a statistic over all runs.
    """
    lo = max(xs[0] for xs, _ in curves)
    hi = min(xs[-1] for xs, _ in curves)
    grid = np.linspace(lo, hi, points) if hi > lo else np.array([hi])
    smoothed = []
    for xs, ys in curves:
        smoothed.append(np.interp(grid, xs, running_mean(ys, smooth or default_window(len(ys)))))
    q25, q50, q75 = np.percentile(np.stack(smoothed), [25, 50, 75], axis=0)
    return grid, q25, q50, q75


def first_reach(xs: np.ndarray, ys: np.ndarray, level: float, smooth: int) -> float:
    """The first x at which the smoothed curve is >= ``level`` (NaN if it never is)."""
    smoothed = running_mean(ys, smooth or default_window(len(ys)))
    above = np.flatnonzero(smoothed >= level)
    return float(xs[above[0]]) if above.size else math.nan


def final_value(ys: np.ndarray) -> float:
    """Mean of the last 10% of a run's values."""
    return float(ys[-max(1, len(ys) // 10):].mean())


def plot_runs(paths: list[str | Path], out: str | Path, *, group: str = "core", x: str = "episodes",
              y: str = "reward_mean", smooth: int = 0, points: int = 200, title: str | None = None,
              logx: bool = False, reach: float | None = None) -> str:
    """Draw the runs ``paths`` grouped by ``group`` (median + IQR band per group) into the PNG ``out``; returns the
    table of final values (and, with ``reach``, when each group's smoothed curve first reaches that level).

    ValueError (one line) for runs of different envs, a missing field or column, or no logged rows at all;
    ``reach`` needs an explicit ``smooth`` so that runs of different lengths are smoothed alike."""
    if reach is not None and smooth <= 0:
        # The default window is ~2% of a run's rows: a short run would get none, and one lucky batch would count.
        raise ValueError("--reach needs --smooth N (a running mean over N rows, the same for every run)")
    env = check_one_env(paths)
    groups = load_runs(paths, group, x, y)
    if not groups:
        raise ValueError("none of the runs has logged metrics yet")
    title = title or "\n".join(textwrap.wrap(env, 70))
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    lines = [f"{'group':<24} {'runs':>4} {'final ' + y + ' (median [IQR] over runs)':>40} {'last ' + x:>14}"]
    for name, curves in sorted(groups.items()):
        grid, q25, q50, q75 = aggregate(curves, smooth, points)
        line, = ax.plot(grid, q50, label=f"{name} (n={len(curves)})")
        ax.fill_between(grid, q25, q75, color=line.get_color(), alpha=0.25, linewidth=0)
        finals = np.array([final_value(ys) for _, ys in curves])
        f25, f50, f75 = np.percentile(finals, [25, 50, 75])
        lines.append(f"{name:<24} {len(curves):>4} {f'{f50:.3f} [{f25:.3f}, {f75:.3f}]':>40} {grid[-1]:>14.6g}")
        if reach is not None:
            reached = np.array([first_reach(xs, ys, reach, smooth) for xs, ys in curves])
            ok = reached[~np.isnan(reached)]
            when = f"median {np.median(ok):.6g}" if ok.size else "never"
            lines.append(f"{'':<24} reaches {y} >= {reach:g} in {ok.size}/{len(curves)} runs; {x}: {when}")
    ax.set_xlabel(AXIS_LABELS.get(x, x))
    ax.set_ylabel(AXIS_LABELS.get(y, y))
    if logx:
        ax.set_xscale("log")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(loc="best", fontsize="small")
    fig.tight_layout()
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=120, metadata={"Title": title.replace("\n", " ")})  # also in the PNG's tEXt
    plt.close(fig)
    return "\n".join(lines)
