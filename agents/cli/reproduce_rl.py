"""Reproduce an RL benchmark: a grid of env x core x seed trained at one budget, then its figure and table.

    plastic reproduce rl --name cue --env Plastic/CueReward-v0 --cores rnn plastic modulated retroactive \\
        --hidden 50 --lr 1e-3 --episodes 24000 --seeds 0 1 2 -j 2
    plastic reproduce rl --name maze9 --env Plastic/Maze-v0 --env-kwargs '{"size": 9}' \\
        --cores rnn=45 plastic=33 modulated=32 retroactive=32 --episodes 15000 -j 2 --sb3 recurrent-ppo

A front-end of plastic sweep's runner (agents/sweep): each run is a Ray task on a local Ray cluster of ``-j`` CPUs
(or the cluster at ``--address``) that runs plastic train (or plastic compare-sb3 for ``--sb3``) with one torch
thread in ``<runs-root>/<name>/<core>-s<seed>``, its output in ``<runs-root>/<name>/logs/``. A finished run (its
checkpoint holds all its iterations) is skipped, an unfinished one is resumed with ``--resume``, so the command can
be re-run after an interruption, with more seeds, or with a larger ``--episodes`` (finished runs are extended).
Then plot.py draws the learning curves (by episodes and by wall time) and ``results/<name>.md`` gets the table
(agents/sweep/report.py): per core, the parameter count, the final reward per episode of each seed (mean of the
last 10% of its training batches), its median [IQR] and mean with a 95% t interval over seeds, an evaluation with
frozen weights on fresh episodes (``--eval-episodes``), the wall time and, with ``--reach``, the wall time and
episodes at which each run's smoothed curve first reached that level. plastic sweep does the same from a sweep
file or flags (and Ray Tune searches); this command keeps the old flags and the results/ layout.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from pathlib import Path

from agents.cli.run_options import stop_sweep_cleanly
from agents.sweep.grid import Sweep, parse_cores, run_state
from agents.sweep.report import figures, markdown_table, summarise_run
from agents.sweep.runner import Job, describe, plan, run_jobs

__all__ = ["main", "markdown_table", "parse_cores", "run_state", "summarise_run"]

ROOT = Path.cwd()  # --runs-root and --results are relative to where the command runs


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--name", required=True, help="benchmark name: run folder <runs-root>/<name>, results/<name>.*")
    p.add_argument("--env", required=True, help="env id, e.g. Plastic/CueReward-v0")
    p.add_argument("--env-kwargs", default=None, help="env kwargs as JSON")
    p.add_argument("--cores", nargs="+", required=True,
                   help="cores, each optionally with its hidden size: rnn=139 plastic=101 modulated=100")
    p.add_argument("--hidden", type=int, default=None, help="hidden size of cores given without one")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--episodes", type=int, required=True, help="training episodes per run")
    p.add_argument("--batch", type=int, default=None)
    p.add_argument("--lr", type=float, default=None)
    p.add_argument("--entropy", type=float, default=None)
    p.add_argument("--clip", type=float, default=None)
    p.add_argument("--sb3", nargs="*", default=[], choices=["a2c", "recurrent-ppo"],
                   help="also train these SB3 baselines (same env, episodes and seeds)")
    p.add_argument("--sb3-episodes", type=int, default=None, help="episodes of the SB3 runs (default --episodes)")
    p.add_argument("-j", "--jobs", type=int, default=1, help="CPUs of the local Ray cluster: runs at once (default 1)")
    p.add_argument("--address", default=None, help="run on this Ray cluster instead (auto or HOST:PORT)")
    p.add_argument("--runs-root", default="runs/reproduce", help="parent folder of the run folders")
    p.add_argument("--results", default="results", help="folder of the table and figures")
    p.add_argument("--eval-episodes", type=int, default=300, help="frozen-weight evaluation episodes (0: none)")
    p.add_argument("--reach", type=float, default=None, help="reward level for the time-to-reach columns")
    p.add_argument("--smooth", type=int, default=0,
                   help="running-mean window in metrics rows for the curves and --reach (default: plot.py's, ~2%% of "
                        "a run; give one value when runs log different numbers of rows, e.g. SB3 runs)")
    p.add_argument("--no-train", action="store_true", help="only write the figures and table of existing runs")
    p.add_argument("--note", default="", help="text put under the title of the Markdown file")
    return p.parse_args(argv)


def sweep_of(args: argparse.Namespace) -> Sweep:
    """The grid of the A2C runs as a plastic sweep :class:`Sweep`."""
    settings = {key: value for key, value in (("batch", args.batch), ("lr", args.lr), ("entropy", args.entropy),
                                              ("clip", args.clip)) if value is not None}
    if args.env_kwargs is not None:
        settings["env_kwargs"] = json.loads(args.env_kwargs)
    return Sweep(cores=parse_cores(args.cores, args.hidden), seeds=list(args.seeds), env=args.env,
                 episodes=args.episodes, settings=settings, name=args.name)


def sb3_command(args: argparse.Namespace, algo: str, seed: int, out: Path) -> list[str]:
    cmd = ["--algo", algo, "--env", args.env, "--episodes", str(args.sb3_episodes or args.episodes), "--seed",
           str(seed), "--out", str(out), "--no-progress"]
    if args.env_kwargs is not None:
        cmd += ["--env-kwargs", args.env_kwargs]
    return cmd


def run_all(args: argparse.Namespace, base: Path) -> tuple[list[Path], list[list[str]]]:
    """Train what is left of the grid (A2C and SB3 runs); returns every run directory and command."""
    runs = sweep_of(args).runs()
    jobs, known = plan(runs, base, threads=1, tensorboard=False)
    commands = [["-m", "agents.cli.train", *run.train_args(base / run.name), "--threads", "1", "--no-progress",
                 "--no-tensorboard"] for run in runs]
    outs = [base / run.name for run in runs]
    for algo in args.sb3:
        for seed in args.seeds:
            out = base / f"sb3-{algo}-s{seed}"
            argv = sb3_command(args, algo, seed, out)
            outs.append(out)
            commands.append(["-m", "agents.cli.compare_sb3", *argv])
            state = run_state(out)
            if state == "broken":
                raise SystemExit(f"{out} holds an unfinished SB3 run (SB3 runs cannot resume); delete it and re-run")
            if state == "done":
                print(f"skip {out} (finished)")
            else:
                jobs.append(Job(out.name, out, argv, None, module="agents.cli.compare_sb3"))
    for outcome in known:
        print(describe(outcome), flush=True)
    if not args.no_train:
        run_jobs(jobs, address=args.address, num_cpus=max(1, args.jobs))
    return outs, commands


def main(argv: list[str] | None = None) -> int:
    """Run the reproduction; Ctrl-C or SIGTERM stops its sweep cleanly (the runs checkpoint, Ray is shut down)."""
    return stop_sweep_cleanly("reproduce_rl.py", lambda: _main(argv))


def _main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        parse_cores(args.cores, args.hidden)
        if args.env_kwargs is not None:
            json.loads(args.env_kwargs)
    except (ValueError, json.JSONDecodeError) as error:
        print(f"reproduce_rl.py: error: {error}", file=sys.stderr)
        return 2
    base = (ROOT / args.runs_root / args.name).resolve()
    started = time.perf_counter()
    outs, commands = run_all(args, base)
    total = time.perf_counter() - started

    outs = [out for out in outs if (out / "metrics.csv").is_file()]
    results = ROOT / args.results
    results.mkdir(parents=True, exist_ok=True)
    _, plot_text = figures(outs, results / args.name, args.reach, args.smooth)
    summaries = [summarise_run(out, args.eval_episodes, args.reach, args.smooth) for out in outs]
    command = shlex.join(["python", "scripts/reproduce_rl.py", *(argv if argv is not None else sys.argv[1:])])
    text = [
        f"# {args.name}: {args.env} {args.env_kwargs or ''}", "", args.note, "",
        f"{len(outs)} runs; {args.episodes} training episodes per run; seeds {args.seeds}. Final reward = mean "
        "reward per episode over the last 10% of the training batches of each run; eval = mean reward per episode "
        f"of {args.eval_episodes} fresh episodes with frozen weights (plasticity still on), per seed; CIs are "
        "Student-t over seeds.", "",
        markdown_table(summaries, args.reach), "",
        f"![learning curves]({args.name}.png)", "", f"![learning curves by wall time]({args.name}_wall.png)", "",
        "plot.py output:", "", "```", plot_text, "```", "",
        f"Produced with (this call: {total:.0f} s of wall time; the runs' own training wall times add up to "
        f"{sum(s['wall'] for s in summaries):.0f} s):", "", "```", command, "```", "",
        "Each run is, exactly:", "", "```", *(shlex.join(["python", *cmd]) for cmd in commands), "```", "",
    ]
    (results / f"{args.name}.md").write_text("\n".join(text).replace(str(ROOT) + "/", ""))
    (results / f"{args.name}_runs.json").write_text(json.dumps(summaries, indent=1, default=str))
    print(markdown_table(summaries, args.reach))
    print(f"wrote {results / (args.name + '.md')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
