"""Learning curves of several runs, grouped (by core by default): median and inter-quartile range over seeds.

    python scripts/plot.py runs/maze-* --out maze.png
    python scripts/plot.py runs/maze-* runs/sb3-* --x wall_time --out maze_time.png
    python scripts/plot.py runs/bandit-* --group label --y reward_mean --smooth 20 --out bandit.png

Each argument is a run directory (config.json + metrics.csv, from scripts/train.py or scripts/compare_sb3.py).
Runs are grouped by a config.json field (--group, default "core"; the sb3 runs have core "sb3-a2c" and
"sb3-recurrent-ppo"). Each run's curve is smoothed with a running mean, put on a common x grid, and the group is
drawn as its median with the 25-75% band. A table of the final values (median over seeds of each run's mean over
its last 10% of training) is printed.

All runs must be of one env with the same env kwargs (keyword arguments equal to the env's defaults count as
left out): runs of different envs or settings are refused (exit code 2, naming the two settings and their runs)
rather than drawn on one axis. The title names the env and its kwargs, e.g. ``Plastic/Maze-v0 {size: 9}``.
"""

from __future__ import annotations

import argparse
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


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("runs", nargs="+", help="run directories")
    p.add_argument("--out", required=True, help="PNG file to write")
    p.add_argument("--group", default="core", help="config.json field that groups runs (default core)")
    p.add_argument("--x", default="episodes", help="x column: episodes (default) or wall_time")
    p.add_argument("--y", default="reward_mean", help="y column (default reward_mean: reward per episode)")
    p.add_argument("--smooth", type=int, default=0, help="running-mean window in rows (default: about 2%% of a run)")
    p.add_argument("--points", type=int, default=200, help="points of the common x grid (default 200)")
    p.add_argument("--title", default=None, help="figure title (default: the env id and its kwargs)")
    p.add_argument("--logx", action="store_true", help="logarithmic x axis")
    p.add_argument("--reach", type=float, default=None,
                   help="also print when each group's smoothed curve first reaches this y level (median over runs); "
                        "needs an explicit --smooth, so that runs of different lengths are smoothed alike")
    return p.parse_args(argv)


def load_runs(paths: list[str], group: str, x: str, y: str) -> dict[str, list[tuple[np.ndarray, np.ndarray]]]:
    """{group value: [(x (n,), y (n,)) per run]} for every run that has logged at least one row."""
    from agents.logger import read_metrics
    from agents.run import RunDir

    groups: dict[str, list[tuple[np.ndarray, np.ndarray]]] = defaultdict(list)
    for path in paths:
        config = RunDir.read_config(path)
        if group not in config:
            raise ValueError(f"{path}/config.json has no field {group!r}; fields: {', '.join(sorted(config))}")
        metrics_file = Path(path) / "metrics.csv"
        if not metrics_file.is_file():
            print(f"plot.py: skipping {path}: no metrics.csv yet", file=sys.stderr)
            continue
        rows = read_metrics(metrics_file)
        if not rows:
            print(f"plot.py: skipping {path}: no rows yet", file=sys.stderr)
            continue
        for column in (x, y):
            if column not in rows[0]:
                raise ValueError(f"{metrics_file} has no column {column!r}; columns: {', '.join(rows[0])}")
        groups[str(config[group])].append(
            (np.array([r[x] for r in rows], dtype=np.float64), np.array([r[y] for r in rows], dtype=np.float64))
        )
    return dict(groups)


def env_defaults(env_id: str) -> dict[str, Any]:
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
    """(env id, canonical JSON of the env kwargs that differ from the env's defaults): equal for runs of one task."""
    env_id = str(config.get("env_id", "?"))
    if env_id not in defaults:
        defaults[env_id] = env_defaults(env_id)
    kwargs = _normalised(dict(config.get("env_kwargs") or {}))
    given = {k: v for k, v in kwargs.items() if k not in defaults[env_id] or defaults[env_id][k] != v}
    return env_id, json.dumps(given, sort_keys=True)


def describe_env(env_id: str, env_kwargs: dict[str, Any] | None) -> str:
    """``Plastic/Maze-v0 {size: 9, episode_length: 100}`` (``(default kwargs)`` when none are given)."""
    if not env_kwargs:
        return f"{env_id} (default kwargs)"
    items = ", ".join(f"{k}: {v if isinstance(v, str) else json.dumps(v)}" for k, v in env_kwargs.items())
    return f"{env_id} {{{items}}}"


def check_one_env(paths: list[str]) -> str:
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


def aggregate(curves: list[tuple[np.ndarray, np.ndarray]], smooth: int, points: int):
    """Common grid (P,) and the 25th, 50th and 75th percentiles (P,) of the smoothed curves over runs.

    The grid spans the x range that every run covers, so each point is a statistic over all runs.
    """
    lo = max(xs[0] for xs, _ in curves)
    hi = min(xs[-1] for xs, _ in curves)
    grid = np.linspace(lo, hi, points) if hi > lo else np.array([hi])
    smoothed = []
    for xs, ys in curves:
        window = smooth or max(1, len(ys) // 50)
        smoothed.append(np.interp(grid, xs, running_mean(ys, window)))
    q25, q50, q75 = np.percentile(np.stack(smoothed), [25, 50, 75], axis=0)
    return grid, q25, q50, q75


def first_reach(xs: np.ndarray, ys: np.ndarray, level: float, smooth: int) -> float:
    """The first x at which the smoothed curve is >= ``level`` (NaN if it never is)."""
    smoothed = running_mean(ys, smooth or max(1, len(ys) // 50))
    above = np.flatnonzero(smoothed >= level)
    return float(xs[above[0]]) if above.size else math.nan


def final_value(ys: np.ndarray) -> float:
    """Mean of the last 10% of a run's values."""
    return float(ys[-max(1, len(ys) // 10):].mean())


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.reach is not None and args.smooth <= 0:
        # The default window is ~2% of a run's rows: a short run would get none, and one lucky batch would count.
        print("plot.py: error: --reach needs --smooth N (a running mean over N rows, the same for every run)",
              file=sys.stderr)
        return 2
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    try:
        env = check_one_env(args.runs)
        groups = load_runs(args.runs, args.group, args.x, args.y)
        if not groups:
            raise ValueError("none of the runs has logged metrics yet")
        title = args.title or "\n".join(textwrap.wrap(env, 70))
    except ValueError as error:
        print(f"plot.py: error: {error}", file=sys.stderr)
        return 2

    fig, ax = plt.subplots(figsize=(7, 4.5))
    print(f"{'group':<24} {'runs':>4} {'final ' + args.y + ' (median [IQR] over runs)':>40} {'last ' + args.x:>14}")
    for name, curves in sorted(groups.items()):
        grid, q25, q50, q75 = aggregate(curves, args.smooth, args.points)
        line, = ax.plot(grid, q50, label=f"{name} (n={len(curves)})")
        ax.fill_between(grid, q25, q75, color=line.get_color(), alpha=0.25, linewidth=0)
        finals = np.array([final_value(ys) for _, ys in curves])
        f25, f50, f75 = np.percentile(finals, [25, 50, 75])
        print(f"{name:<24} {len(curves):>4} {f'{f50:.3f} [{f25:.3f}, {f75:.3f}]':>40} {grid[-1]:>14.6g}")
        if args.reach is not None:
            reached = np.array([first_reach(xs, ys, args.reach, args.smooth) for xs, ys in curves])
            ok = reached[~np.isnan(reached)]
            when = f"median {np.median(ok):.6g}" if ok.size else "never"
            print(f"{'':<24} reaches {args.y} >= {args.reach:g} in {ok.size}/{len(curves)} runs; {args.x}: {when}")
    ax.set_xlabel({"episodes": "episodes", "wall_time": "wall time (s)"}.get(args.x, args.x))
    ax.set_ylabel({"reward_mean": "reward per episode"}.get(args.y, args.y))
    if args.logx:
        ax.set_xscale("log")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(loc="best", fontsize="small")
    fig.tight_layout()
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.out, dpi=120, metadata={"Title": title.replace("\n", " ")})  # also in the PNG's tEXt
    plt.close(fig)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
