"""Reproduce an RL benchmark: a grid of env x core x seed trained at one budget, then its figure and table.

    python scripts/reproduce_rl.py --name cue --env Plastic/CueReward-v0 --cores rnn plastic modulated retroactive \\
        --hidden 50 --lr 1e-3 --episodes 24000 --seeds 0 1 2 -j 2
    python scripts/reproduce_rl.py --name maze9 --env Plastic/Maze-v0 --env-kwargs '{"size": 9}' \\
        --cores rnn=45 plastic=33 modulated=32 retroactive=32 --episodes 15000 -j 2 --sb3 recurrent-ppo

Each run is ``scripts/train.py`` (or ``scripts/compare_sb3.py`` for ``--sb3``) in its own process, with one torch
thread, in ``<runs-root>/<name>/<core>-s<seed>``; ``-j`` runs that many at once. A finished run (its checkpoint
holds all its iterations) is skipped, an unfinished one is resumed with ``--resume``, so the command can be re-run
after an interruption, with more seeds, or with a larger ``--episodes`` (finished runs are extended). Then
``scripts/plot.py`` draws the learning curves (by episodes and by wall time) and ``results/<name>.md`` gets the
table: per core, the parameter count, the final reward per episode of each seed (mean of the last 10% of its
training batches), its median and mean with a 95% t interval over seeds, an evaluation with frozen weights on fresh
episodes (``--eval-episodes``), the wall time and, with ``--reach``, the wall time and episodes at which each run's
smoothed curve first reached that level.
"""

from __future__ import annotations

import argparse
import json
import math
import shlex
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

ROOT = Path.cwd()  # --runs-root and --results are relative to where the command runs
PYTHON = sys.executable


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
    p.add_argument("-j", "--jobs", type=int, default=1, help="runs at once (default 1)")
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


def parse_cores(specs: list[str], hidden: int | None) -> list[tuple[str, int | None]]:
    """``["rnn=139", "plastic"]`` -> ``[("rnn", 139), ("plastic", hidden)]``."""
    cores = []
    for spec in specs:
        name, _, size = spec.partition("=")
        if size and (not size.isdigit() or int(size) <= 0):
            raise ValueError(f"bad core spec {spec!r}: expected NAME or NAME=HIDDEN with a positive integer")
        cores.append((name, int(size) if size else hidden))
    return cores


def train_command(args: argparse.Namespace, core: str, hidden: int | None, seed: int, out: Path) -> list[str]:
    cmd = [PYTHON, "-m", "agents.cli.train", "--env", args.env, "--core", core, "--episodes", str(args.episodes),
           "--seed", str(seed), "--out", str(out), "--threads", "1", "--no-progress", "--no-tensorboard"]
    for flag, value in (("--hidden", hidden), ("--batch", args.batch), ("--lr", args.lr),
                        ("--entropy", args.entropy), ("--clip", args.clip), ("--env-kwargs", args.env_kwargs)):
        if value is not None:
            cmd += [flag, str(value)]
    return cmd


def sb3_command(args: argparse.Namespace, algo: str, seed: int, out: Path) -> list[str]:
    cmd = [PYTHON, "-m", "agents.cli.compare_sb3", "--algo", algo, "--env", args.env, "--episodes",
           str(args.sb3_episodes or args.episodes), "--seed", str(seed), "--out", str(out), "--no-progress"]
    if args.env_kwargs is not None:
        cmd += ["--env-kwargs", args.env_kwargs]
    return cmd


def run_state(out: Path, episodes: int | None = None) -> str:
    """"new", "partial" or "done": whether the checkpoint holds every iteration of ``episodes`` (default: the
    run's own config), so that a larger ``--episodes`` extends finished runs."""
    if not (out / "config.json").is_file():
        return "new"
    config = json.loads((out / "config.json").read_text())
    if config.get("algo", "a2c") != "a2c":
        return "done" if (out / "sb3_model.zip").is_file() else "broken"
    if not (out / "checkpoint.pt").is_file():
        return "partial"
    import torch

    payload = torch.load(out / "checkpoint.pt", weights_only=True, map_location="cpu")
    iterations = -(-(episodes or config["episodes"]) // config["batch"])
    return "done" if payload["iteration"] >= iterations else "partial"


def launch(cmd: list[str], out: Path, log: Path) -> tuple[str, int, float]:
    started = time.perf_counter()
    with open(log, "a") as handle:
        handle.write("$ " + shlex.join(cmd) + "\n")
        handle.flush()
        code = subprocess.call(cmd, cwd=ROOT, stdout=handle, stderr=subprocess.STDOUT)
    return str(out), code, time.perf_counter() - started


def run_grid(jobs: list[tuple[list[str], Path]], parallel: int, log_dir: Path, episodes: int | None = None) -> None:
    todo = []
    for cmd, out in jobs:
        ours = "agents.cli.train" in cmd  # an A2C run (resumable), not an SB3 one
        state = run_state(out, episodes if ours else None)
        if state == "done":
            print(f"skip {out} (finished)")
            continue
        if state == "broken":
            raise SystemExit(f"{out} holds an unfinished SB3 run (SB3 runs cannot resume); delete it and re-run")
        if state == "partial" and ours:
            cmd = [PYTHON, "-m", "agents.cli.train", "--out", str(out), "--resume", "--threads", "1", "--no-progress",
                   "--no-tensorboard"] + (["--episodes", str(episodes)] if episodes else [])
        todo.append((cmd, out))
    log_dir.mkdir(parents=True, exist_ok=True)
    with ThreadPoolExecutor(max_workers=max(1, parallel)) as pool:
        futures = [pool.submit(launch, cmd, out, log_dir / f"{out.name}.log") for cmd, out in todo]
        for future in futures:
            out, code, seconds = future.result()
            print(f"{'done' if code == 0 else f'FAILED (exit {code})'} {out} in {seconds:.0f} s", flush=True)


# -- summary --------------------------------------------------------------------------------------------------
def t_interval(values: np.ndarray) -> tuple[float, float]:
    """Mean and 95% Student-t half-width (NaN with one value)."""
    from scipy import stats

    mean = float(np.mean(values))
    if len(values) < 2:
        return mean, math.nan
    return mean, float(stats.t.ppf(0.975, len(values) - 1) * np.std(values, ddof=1) / math.sqrt(len(values)))


def first_reach(rows: list[dict], level: float, key: str, smooth: int) -> float:
    from agents.cli.plot import first_reach as reach  # the same smoothing as its --reach

    xs = np.array([r[key] for r in rows], dtype=np.float64)
    ys = np.array([r["reward_mean"] for r in rows], dtype=np.float64)
    return reach(xs, ys, level, smooth)


def summarise_run(out: Path, eval_episodes: int, reach: float | None, smooth: int = 0) -> dict:
    from agents.logger import read_metrics

    config = json.loads((out / "config.json").read_text())
    rows = read_metrics(out / "metrics.csv")
    ys = np.array([r["reward_mean"] for r in rows])
    info = {
        "core": config["core"], "hidden": config.get("hidden"), "seed": config["seed"],
        "episodes": int(rows[-1]["episodes"]), "wall": float(rows[-1]["wall_time"]),
        "final": float(ys[-max(1, len(ys) // 10):].mean()), "eval": math.nan, "params": None,
    }
    if reach is not None:
        info["reach_s"] = first_reach(rows, reach, "wall_time", smooth)
        info["reach_ep"] = first_reach(rows, reach, "episodes", smooth)
    if config.get("algo", "a2c") == "a2c":
        import torch

        from agents.a2c import load_agent
        from plastic_core import count_parameters

        model, _ = load_agent(out)
        info["params"] = count_parameters(model)
        if eval_episodes:
            from agents.evaluation import evaluate_agent

            torch.manual_seed(0)
            info["eval"] = float(np.mean(evaluate_agent(model, config["env_id"], eval_episodes,
                                                        config["env_kwargs"], seed=1000 + config["seed"])))
    return info


def fmt(value: float, digits: int = 2) -> str:
    return "n/a" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.{digits}f}"


def markdown_table(summaries: list[dict], reach: float | None) -> str:
    cores = list(dict.fromkeys(s["core"] for s in summaries))
    head = ["core", "hidden", "params", "seeds", "final reward per seed", "median", "mean ± 95% CI",
            "eval (frozen weights) mean ± 95% CI", "episodes", "wall time per run (median, s)"]
    if reach is not None:
        head += [f"reached {reach:g} (runs)", "median wall s to reach", "median episodes to reach"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for core in cores:
        runs = sorted((s for s in summaries if s["core"] == core), key=lambda s: s["seed"])
        finals = np.array([s["final"] for s in runs])
        mean, half = t_interval(finals)
        evals = np.array([s["eval"] for s in runs])
        emean, ehalf = t_interval(evals) if not np.isnan(evals).any() else (math.nan, math.nan)
        cells = [core, str(runs[0]["hidden"] or "-"), str(runs[0]["params"] or "-"), str(len(runs)),
                 ", ".join(fmt(f) for f in finals), fmt(float(np.median(finals))), f"{fmt(mean)} ± {fmt(half)}",
                 f"{fmt(emean)} ± {fmt(ehalf)}", str(runs[0]["episodes"]),
                 f"{np.median([s['wall'] for s in runs]):.0f}"]
        if reach is not None:
            secs = np.array([s["reach_s"] for s in runs])
            eps = np.array([s["reach_ep"] for s in runs])
            ok = ~np.isnan(secs)
            cells += [f"{ok.sum()}/{len(runs)}", fmt(float(np.median(secs[ok])), 0) if ok.any() else "never",
                      fmt(float(np.median(eps[ok])), 0) if ok.any() else "never"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        cores = parse_cores(args.cores, args.hidden)
        if args.env_kwargs is not None:
            json.loads(args.env_kwargs)
    except (ValueError, json.JSONDecodeError) as error:
        print(f"reproduce_rl.py: error: {error}", file=sys.stderr)
        return 2
    base = ROOT / args.runs_root / args.name
    jobs = [(train_command(args, core, hidden, seed, base / f"{core}-s{seed}"), base / f"{core}-s{seed}")
            for core, hidden in cores for seed in args.seeds]
    jobs += [(sb3_command(args, algo, seed, base / f"sb3-{algo}-s{seed}"), base / f"sb3-{algo}-s{seed}")
             for algo in args.sb3 for seed in args.seeds]
    started = time.perf_counter()
    if not args.no_train:
        run_grid(jobs, args.jobs, base / "logs", args.episodes)
    total = time.perf_counter() - started

    outs = [out for _, out in jobs if (out / "metrics.csv").is_file()]
    results = ROOT / args.results
    results.mkdir(parents=True, exist_ok=True)
    plot_cmds = [
        ["-m", "agents.cli.plot", *map(str, outs), "--out", f"{args.results}/{args.name}.png"],
        ["-m", "agents.cli.plot", *map(str, outs), "--x", "wall_time", "--out", f"{args.results}/{args.name}_wall.png"],
    ]
    for cmd in plot_cmds:
        cmd += ["--reach", str(args.reach)] if args.reach is not None else []
        cmd += ["--smooth", str(args.smooth)] if args.smooth else []
    plot_text = []
    for cmd in plot_cmds:
        done = subprocess.run([PYTHON, *cmd], cwd=ROOT, capture_output=True, text=True)
        plot_text.append(done.stdout + done.stderr)
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
        "plot.py output:", "", "```", *(t.strip() for t in plot_text), "```", "",
        f"Produced with (this call: {total:.0f} s of wall time; the runs' own training wall times add up to "
        f"{sum(s['wall'] for s in summaries):.0f} s):", "", "```", command, "```", "",
        "Each run is, exactly:", "", "```",
        *(shlex.join(["python", *cmd[1:]]) for cmd, _ in jobs), "```", "",
    ]
    (results / f"{args.name}.md").write_text("\n".join(text).replace(str(ROOT) + "/", ""))
    (results / f"{args.name}_runs.json").write_text(json.dumps(summaries, indent=1, default=str))
    print(markdown_table(summaries, args.reach))
    print(f"wrote {results / (args.name + '.md')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
