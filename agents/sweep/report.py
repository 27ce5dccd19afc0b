"""The table and figures of a grid of runs (plastic-sweep, plastic-reproduce-rl): one definition of each.

Per core: the parameter count, the final reward per episode of each seed (mean of the last 10% of its training
batches), its median and inter-quartile range, the mean with a 95% t interval over seeds, an evaluation with
frozen weights on fresh episodes, the wall time and, with ``reach``, when each run's smoothed curve first reached
that level. The figures are agents/curves.py's (median + IQR over seeds), by episodes and by wall time.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np


def t_interval(values: np.ndarray) -> tuple[float, float]:
    """Mean and 95% Student-t half-width (NaN with one value)."""
    from scipy import stats

    mean = float(np.mean(values))
    if len(values) < 2:
        return mean, math.nan
    return mean, float(stats.t.ppf(0.975, len(values) - 1) * np.std(values, ddof=1) / math.sqrt(len(values)))


def first_reach(rows: list[dict], level: float, key: str, smooth: int) -> float:
    """When a run's smoothed reward first reached ``level``, in its ``key`` column (plastic-plot --reach's)."""
    from agents.curves import first_reach as reach

    xs = np.array([r[key] for r in rows], dtype=np.float64)
    ys = np.array([r["reward_mean"] for r in rows], dtype=np.float64)
    return reach(xs, ys, level, smooth)


def summarise_run(out: Path, eval_episodes: int, reach: float | None, smooth: int = 0) -> dict:
    """One run's row data: core, hidden, seed, episodes, wall time, final reward, frozen-weight eval, params."""
    from agents.curves import final_value
    from agents.logger import read_metrics
    from agents.run import RunDir

    config = RunDir.read_config(out)
    rows = read_metrics(out / "metrics.csv")
    ys = np.array([r["reward_mean"] for r in rows])
    info = {
        "core": config["core"], "hidden": config.get("hidden"), "seed": config["seed"],
        "episodes": int(rows[-1]["episodes"]), "wall": float(rows[-1]["wall_time"]),
        "final": final_value(ys), "eval": math.nan, "params": None,
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
    """The table, one line per group (``group`` of each summary, else its core)."""
    groups = list(dict.fromkeys(s.get("group", s["core"]) for s in summaries))
    head = ["core", "hidden", "params", "seeds", "final reward per seed", "median [IQR]", "mean ± 95% CI",
            "eval (frozen weights) mean ± 95% CI", "episodes", "wall time per run (median, s)"]
    if reach is not None:
        head += [f"reached {reach:g} (runs)", "median wall s to reach", "median episodes to reach"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for group in groups:
        runs = sorted((s for s in summaries if s.get("group", s["core"]) == group), key=lambda s: s["seed"])
        finals = np.array([s["final"] for s in runs])
        mean, half = t_interval(finals)
        q25, q50, q75 = np.percentile(finals, [25, 50, 75])
        evals = np.array([s["eval"] for s in runs])
        emean, ehalf = t_interval(evals) if not np.isnan(evals).any() else (math.nan, math.nan)
        cells = [group, str(runs[0]["hidden"] or "-"), str(runs[0]["params"] or "-"), str(len(runs)),
                 ", ".join(fmt(f) for f in finals), f"{fmt(q50)} [{fmt(q25)}, {fmt(q75)}]",
                 f"{fmt(mean)} ± {fmt(half)}", f"{fmt(emean)} ± {fmt(ehalf)}", str(runs[0]["episodes"]),
                 f"{np.median([s['wall'] for s in runs]):.0f}"]
        if reach is not None:
            secs = np.array([s["reach_s"] for s in runs])
            eps = np.array([s["reach_ep"] for s in runs])
            ok = ~np.isnan(secs)
            cells += [f"{ok.sum()}/{len(runs)}", fmt(float(np.median(secs[ok])), 0) if ok.any() else "never",
                      fmt(float(np.median(eps[ok])), 0) if ok.any() else "never"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def figures(outs: list[Path], stem: Path, reach: float | None = None, smooth: int = 0) -> tuple[list[Path], str]:
    """The learning curves of ``outs`` (median + IQR over seeds) by episodes (``stem``.png) and by wall time
    (``stem``_wall.png); returns the files written and their tables of final values."""
    from agents.curves import plot_runs

    written, text = [], []
    for suffix, x in (("", "episodes"), ("_wall", "wall_time")):
        png = stem.parent / f"{stem.name}{suffix}.png"
        try:
            text.append(plot_runs(outs, png, x=x, reach=reach, smooth=smooth))
        except ValueError as error:
            text.append(f"no figure by {x}: {error}")
            continue
        written.append(png)
    return written, "\n".join(text)


def paper_statistics(folder: Path, outs: list[Path], groups: dict[str, str], bin_size: int | None,
                     bin_smooth: int) -> list[str]:
    """The papers' figure and statistics of the A2C runs among ``outs`` (report.md's lines; none without any)."""
    from agents.curves import check_one_env
    from agents.run import RunDir
    from agents.sweep.statistics import read_run_curve, write_statistics

    a2c = [o for o in outs if RunDir.read_config(o).get("algo", "a2c") == "a2c"]
    if not a2c:
        return []
    config = RunDir.read_config(a2c[0])
    preset = f", preset {config['preset']}" if config.get("preset") else ""
    title = check_one_env(a2c) + preset
    stats = write_statistics([read_run_curve(o, groups.get(o.name)) for o in a2c], folder, title, bin_size,
                             bin_smooth)
    return [f"## The papers' figure ({stats['bin_size']}-iteration bins, {bin_smooth}-bin moving average; "
            "median and IQR over seeds)", "", f"![paper figure]({stats['figure'].name})", "", stats["markdown"], "",
            "## Every run", ""]


def write_rewards_csv(outs: list[Path], path: Path) -> Path:
    """Every run's reward per episode at each logged iteration, one column per run (``iteration``, then the run
    names; blank where a run has not logged that iteration), 4 significant digits: a compact record of a grid."""
    import csv

    from agents.logger import read_metrics

    columns = {}
    for out in outs:
        rows = read_metrics(out / "metrics.csv")
        columns[out.name] = {int(r["iteration"]): r["reward_mean"] for r in rows if "iteration" in r}
    iterations = sorted(set().union(*(c.keys() for c in columns.values())))
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["iteration", *columns])
        for it in iterations:
            writer.writerow([it, *(f"{c[it]:.4g}" if it in c else "" for c in columns.values())])
    return path


def run_dirs(folder: Path, finished_only: bool = False) -> list[Path]:
    """The run directories directly in a sweep folder (those with a config.json and logged metrics); with
    ``finished_only``, those that have trained their whole budget (the episodes of their config.json)."""
    runs = sorted(p for p in Path(folder).iterdir()
                  if p.is_dir() and (p / "config.json").is_file() and (p / "metrics.csv").is_file())
    return [p for p in runs if finished(p)] if finished_only else runs


def finished(run: Path) -> bool:
    """Whether the run directory ``run`` has logged the last iteration of its budget."""
    from agents.logger import read_metrics
    from agents.run import RunDir

    rows = read_metrics(run / "metrics.csv")
    budget = RunDir.read_config(run).get("episodes")
    return bool(rows) and budget is not None and int(rows[-1]["episodes"]) >= int(budget)


def write_report(folder: str | Path, outs: list[Path] | None = None, eval_episodes: int = 300,
                 reach: float | None = None, smooth: int = 0, groups: dict[str, str] | None = None,
                 title: str | None = None, note: str = "", bin_size: int | None = None,
                 bin_smooth: int = 5) -> dict[str, Any]:
    """report.md (the table and figures), curves.png, curves_wall.png and runs.json in ``folder`` for the runs
    ``outs`` (default: every run directory in it). ``groups``: run name -> table group (default: its core).
    rewards.csv: the reward per episode by iteration (:func:`write_rewards_csv`) of ``outs`` and of every other run
    in ``folder``, finished or not.
    For A2C runs also the papers' figure and statistics (``agents.sweep.statistics``: paper_figure.png,
    statistics.md, statistics.json) over bins of ``bin_size`` iterations, smoothed over ``bin_smooth`` bins."""
    folder = Path(folder)
    outs = run_dirs(folder) if outs is None else [o for o in outs if (o / "metrics.csv").is_file()]
    if not outs:
        raise ValueError(f"{folder} holds no run with metrics yet")
    summaries = []
    for out in outs:
        summary = summarise_run(out, eval_episodes, reach, smooth)
        summary["run"] = out.name
        if groups and out.name in groups:
            summary["group"] = groups[out.name]
        summaries.append(summary)
    pngs, plot_text = figures(outs, folder / "curves", reach, smooth)
    table = markdown_table(summaries, reach)
    paper = paper_statistics(folder, outs, groups or {}, bin_size, bin_smooth)
    write_rewards_csv(list(dict.fromkeys([*outs, *run_dirs(folder)])), folder / "rewards.csv")
    text = [f"# {title or folder.name}", "", note, "", *paper,
            f"{len(outs)} runs. Final reward = mean reward per episode over the last 10% of the training batches of "
            f"each run; eval = mean reward per episode of {eval_episodes} fresh episodes with frozen weights "
            "(plasticity still on), per seed; CIs are Student-t over seeds.", "", table, "",
            *(f"![learning curves]({png.name})\n" for png in pngs), "Final values (plastic-plot's table):", "", "```",
            plot_text, "```", ""]
    (folder / "report.md").write_text("\n".join(text))
    (folder / "runs.json").write_text(json.dumps(summaries, indent=1, default=str))
    return {"table": table, "summaries": summaries, "figures": pngs, "markdown": folder / "report.md"}
