"""Run a grid of plastic-train runs on Ray (this machine's CPUs, or a cluster), then its table and figures.

    plastic-sweep --env Plastic/ReversalBandit-v0 --cores rnn=8 modulated=8 --seeds 0 1 --episodes 90 --out DIR
    plastic-sweep maze2019 --out runs/maze2019                  # a sweep file shipped in agents/sweeps/
    plastic-sweep my_sweep.toml --seeds 0 1 2 3 --out runs/mine  # a file of your own, flags override it
    plastic-sweep --preset reversal-bandit --cores rnn modulated --grid lr=1e-3,3e-3 --iterations 500 --out DIR
    plastic-sweep --address auto maze2019 --out /shared/runs/maze2019   # on a running Ray cluster
    plastic-sweep report DIR                                     # the table and figures of what DIR holds
    plastic-sweep --preset reversal-bandit --cores modulated --iterations 300 --out DIR \\
        --search 'lr=loguniform(1e-4,3e-3)' 'regulariser_coef=uniform(0,0.1)' --samples 16 --scheduler asha

Every run is a Ray task (one CPU by default, --cpus-per-run) that trains in its own run directory
``DIR/<core>-s<seed>[-<setting><value>]`` exactly as plastic-train does (same files, checkpoints, resume); its
output goes to DIR/logs/<run>.log. Without --address a local Ray cluster is started on this machine (no dashboard,
no usage statistics). Running the same command again continues: finished runs are skipped, unfinished ones
resumed; with more seeds only the new runs start. A run whose worker dies is retried by Ray and resumes from its
last checkpoint; a run that fails by itself (NaN loss, bad settings) is reported and the others go on. The exit
status is 0 when every run succeeded, 1 when one failed, 2 for a bad sweep.

Settings: --set KEY=VALUE for every run, --grid KEY=V1,V2 for an axis of the grid (KEY: any plastic-train
setting, e.g. lr, batch, regulariser_coef, env_kwargs='{"episode_length": 20}'). A sweep file (TOML) holds the same:
name, env, preset, cores, seeds, episodes or iterations, and a [settings] table where lists are axes.

At the end (and with ``plastic-sweep report DIR``) DIR gets report.md (per core: parameters, final reward per seed,
median [IQR], mean ± 95% CI, frozen-weight evaluation, wall time), curves.png and curves_wall.png (median + IQR
over seeds by episodes and by wall time) and runs.json.

--search runs a Ray Tune search instead of the grid: --samples configurations per core drawn from the given
distributions (uniform, loguniform, quniform, qloguniform, randint, lograndint, choice), each reporting its reward
every iteration so that --scheduler asha stops poor ones early; the best configuration per core is written as a
preset file (DIR/best_preset.json) for ``plastic-train --preset-file DIR/best_preset.json --core CORE ...``.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from importlib import resources
from pathlib import Path
from typing import Any

from agents.cli.run_options import json_object

PROG = "plastic-sweep"


def shipped_sweeps() -> dict[str, Path]:
    """The sweep files that come with the package (agents/sweeps/*.toml), by name."""
    folder = resources.files("agents") / "sweeps"
    return {Path(str(f)).stem: Path(str(f)) for f in folder.iterdir() if str(f).endswith(".toml")}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog=PROG, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("sweep", nargs="?", help="a sweep file (TOML) or the name of a shipped one: "
                   + ", ".join(sorted(shipped_sweeps())))
    p.add_argument("--out", required=True, help="sweep folder: one run directory per run, logs/, report.md")
    grid = p.add_argument_group("the grid (flags override the sweep file)")
    grid.add_argument("--env", help="env id, e.g. Plastic/ReversalBandit-v0")
    grid.add_argument("--preset", help="named settings (plastic-train --list-presets)")
    grid.add_argument("--preset-file", help="a preset file (TOML/JSON)")
    grid.add_argument("--cores", nargs="+", help="cores, each optionally with its hidden size: rnn=48 modulated=48")
    grid.add_argument("--hidden", type=int, help="hidden size of the cores given without one")
    grid.add_argument("--seeds", type=int, nargs="+", help="seeds (default 0)")
    grid.add_argument("--episodes", type=int, help="budget per run in episodes")
    grid.add_argument("--iterations", type=int, help="budget per run in iterations (default: the preset's)")
    grid.add_argument("--env-kwargs", type=json_object, help="env keyword arguments as JSON")
    grid.add_argument("--core-kwargs", type=json_object, help="core keyword arguments as JSON")
    grid.add_argument("--set", nargs="+", default=[], metavar="KEY=VALUE", help="a setting for every run")
    grid.add_argument("--grid", nargs="+", default=[], metavar="KEY=V1,V2", help="a setting's values: an axis")
    grid.add_argument("--dry-run", action="store_true", help="list the runs and their state, start nothing")
    ray = p.add_argument_group("Ray")
    ray.add_argument("--address", help="join a running Ray cluster: auto or HOST:PORT (default: start a local one)")
    ray.add_argument("--num-cpus", type=int, help="CPUs of the local cluster (default: all of this machine)")
    ray.add_argument("--cpus-per-run", type=float, default=1, help="CPUs each run reserves (default 1)")
    ray.add_argument("--threads", type=int, help="torch threads per run (default: --cpus-per-run, at least 1)")
    ray.add_argument("--max-retries", type=int, default=3, help="retries of a run whose worker died (default 3)")
    out = p.add_argument_group("output")
    out.add_argument("--no-tensorboard", action="store_true", help="no TensorBoard logs in the runs")
    out.add_argument("--no-progress", action="store_true", help="no overall progress bar")
    out.add_argument("--no-report", action="store_true", help="no table and figures at the end")
    add_report_arguments(out)
    tune = p.add_argument_group("hyperparameter search (Ray Tune)")
    tune.add_argument("--search", nargs="+", metavar="KEY=DIST(ARGS)",
                      help="search these settings instead of running the grid, e.g. 'lr=loguniform(1e-4,3e-3)'")
    tune.add_argument("--samples", type=int, default=8, help="configurations per core (default 8)")
    tune.add_argument("--scheduler", choices=("asha", "fifo"), default="asha", help="asha stops poor trials early")
    tune.add_argument("--metric", choices=("reward_smooth", "reward_mean"), default="reward_smooth",
                      help="what Tune maximises (default reward_smooth: mean of the last ~5%% of the rows)")
    tune.add_argument("--grace", type=int, help="ASHA's grace period in iterations (default: 1/8 of the budget)")
    tune.add_argument("--preset-out", help="where to write the best preset (default DIR/best_preset.json)")
    return p.parse_args(argv)


def add_report_arguments(p: argparse.ArgumentParser | Any) -> None:
    p.add_argument("--eval-episodes", type=int, default=300, help="frozen-weight evaluation episodes (0: none)")
    p.add_argument("--reach", type=float, help="reward level for the time-to-reach columns")
    p.add_argument("--smooth", type=int, default=0, help="running-mean window (rows) of the curves and --reach")


def parse_report_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog=f"{PROG} report", description="The table and figures of a sweep folder: "
                                "report.md, curves.png, curves_wall.png, runs.json in DIR.")
    p.add_argument("folder", metavar="DIR", help="sweep folder")
    add_report_arguments(p)
    return p.parse_args(argv)


def sweep_fields(args: argparse.Namespace) -> dict[str, Any]:
    """The sweep file's fields (if any) with the flags laid over them."""
    from agents.sweep.grid import load_sweep_file, parse_settings

    fields: dict[str, Any] = {}
    if args.sweep:
        shipped = shipped_sweeps()
        path = Path(args.sweep)
        if not path.is_file() and args.sweep in shipped:
            path = shipped[args.sweep]
        fields = load_sweep_file(path)
        fields.setdefault("name", path.stem)
    for key in ("env", "preset", "preset_file", "cores", "hidden", "seeds", "episodes", "iterations", "env_kwargs",
                "core_kwargs"):
        if getattr(args, key) is not None:
            fields[key] = getattr(args, key)
    if args.episodes is not None:
        fields.pop("iterations", None)
    if args.iterations is not None:
        fields.pop("episodes", None)
    fields["settings"] = {**fields.get("settings", {}), **parse_settings(args.set, args.grid)}
    fields.setdefault("name", Path(args.out).name)
    return fields


def report(folder: Path, eval_episodes: int, reach: float | None, smooth: int, runs: list[Path] | None = None,
           groups: dict[str, str] | None = None, note: str = "") -> None:
    from agents.sweep.report import write_report

    written = write_report(folder, runs, eval_episodes, reach, smooth, groups=groups, note=note)
    print(written["table"])
    print(f"wrote {written['markdown']}, {', '.join(str(f) for f in written['figures'])}")


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["report"]:
        rargs = parse_report_args(argv[1:])
        try:
            report(Path(rargs.folder), rargs.eval_episodes, rargs.reach, rargs.smooth)
        except (ValueError, OSError) as error:
            print(f"{PROG}: error: {error}", file=sys.stderr)
            return 2
        return 0
    args = parse_args(argv)
    command = shlex.join([PROG, *argv])
    from agents.sweep.grid import run_state, sweep_from

    try:
        sweep = sweep_from(sweep_fields(args))
        runs = sweep.runs()
    except (ValueError, TypeError) as error:
        print(f"{PROG}: error: {error}", file=sys.stderr)
        return 2
    out = Path(args.out)
    threads = args.threads or max(1, int(args.cpus_per_run))
    if args.search:
        return run_search(args, sweep, out, command)
    if args.dry_run:
        for run in runs:
            argv = shlex.join(run.train_args(out / run.name))
            print(f"{run_state(out / run.name):8s} {run.name}: plastic-train {argv}")
        return 0
    from agents.sweep.runner import run_grid

    result = run_grid(runs, out, address=args.address, num_cpus=args.num_cpus, cpus_per_run=args.cpus_per_run,
                      max_retries=args.max_retries, threads=threads, tensorboard=not args.no_tensorboard,
                      progress=False if args.no_progress else None)
    done, skipped, failed = (result.count(s) for s in ("done", "skipped", "failed"))
    print(f"{PROG}: {len(runs)} runs: {done} trained, {skipped} already finished, {failed} failed "
          f"({result.wall:.1f} s)")
    if not args.no_report and result.started:
        try:
            axes = sweep.axes
            groups = {run.name: run.core + "".join(f" {k}={run.settings[k]}" for k in axes) for run in runs}
            report(out.resolve(), args.eval_episodes, args.reach, args.smooth,
                   [out.resolve() / run.name for run in runs], groups, note=f"`{command}`")
        except (ValueError, OSError) as error:
            print(f"{PROG}: no report: {error}", file=sys.stderr)
    return 0 if result.ok else 1


def run_search(args: argparse.Namespace, sweep: Any, out: Path, command: str) -> int:
    from agents.sweep.search import parse_search, search

    try:
        space = parse_search(args.search)
        if args.samples < 1:
            raise ValueError("--samples must be positive")
        found = search(sweep, space, out, args.samples, args.scheduler, args.metric, address=args.address,
                       num_cpus=args.num_cpus, cpus_per_run=args.cpus_per_run, max_retries=args.max_retries,
                       grace=args.grace, tensorboard=not args.no_tensorboard, preset_path=args.preset_out,
                       verbose=0 if args.no_progress else 1, command=command)
    except (ValueError, TypeError) as error:
        print(f"{PROG}: error: {error}", file=sys.stderr)
        return 2
    except RuntimeError as error:
        print(f"{PROG}: {error}", file=sys.stderr)
        return 1
    for core, info in found["best"].items():
        print(f"best {core}: {args.metric} {info['metric']:.4f} at iteration {info['iteration']} "
              f"({info['trials']} trials): {info['config']} ({info['run']})")
    print(f"wrote {found['preset']}: plastic-train --preset-file {found['preset']} --core CORE --out RUN")
    return 0 if not found["errors"] else 1


if __name__ == "__main__":
    sys.exit(main())
