"""Learning curves of several runs, grouped (by core by default): median and inter-quartile range over seeds.

    python scripts/plot.py runs/maze-* --out maze.png
    python scripts/plot.py runs/maze-* runs/sb3-* --x wall_time --out maze_time.png
    python scripts/plot.py runs/bandit-* --group label --y reward_mean --smooth 20 --out bandit.png

Each argument is a run directory (config.json + metrics.csv, from scripts/train.py or scripts/compare_sb3.py).
Runs are grouped by a config.json field (--group, default "core"; the sb3 runs have core "sb3-a2c" and
"sb3-recurrent-ppo"). Each run's curve is smoothed with a running mean, put on a common x grid, and the group is
drawn as its median with the 25-75% band (agents/curves.py). A table of the final values (median over seeds of
each run's mean over its last 10% of training) is printed.

All runs must be of one env with the same env kwargs (keyword arguments equal to the env's defaults count as
left out): runs of different envs or settings are refused (exit code 2, naming the two settings and their runs)
rather than drawn on one axis. The title names the env and its kwargs, e.g. ``Plastic/Maze-v0 {size: 9}``.
"""

from __future__ import annotations

import argparse
import sys

from agents.curves import plot_runs


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


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        table = plot_runs(args.runs, args.out, group=args.group, x=args.x, y=args.y, smooth=args.smooth,
                          points=args.points, title=args.title, logx=args.logx, reach=args.reach)
    except ValueError as error:
        print(f"plot.py: error: {error}", file=sys.stderr)
        return 2
    print(table)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
