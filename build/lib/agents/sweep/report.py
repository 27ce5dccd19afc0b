"""The table and figures of a grid of runs (plastic-sweep, plastic-reproduce-rl): one definition of each.

Per core: the parameter count, the final reward per episode of each seed (mean of the last 10% of its training
batches), its median and inter-quartile range, the mean with a 95% t interval over seeds, an evaluation with
frozen weights on fresh episodes, the wall time and, with ``reach``, when each run's smoothed curve first reached
that level. The figures are agents/cli/plot.py's (median + IQR over seeds), by episodes and by wall time.
"""

from __future__ import annotations

import contextlib
import io
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
    from agents.cli.plot import first_reach as reach  # the same smoothing as its --reach

    xs = np.array([r[key] for r in rows], dtype=np.float64)
    ys = np.array([r["reward_mean"] for r in rows], dtype=np.float64)
    return reach(xs, ys, level, smooth)


def summarise_run(out: Path, eval_episodes: int, reach: float | None, smooth: int = 0) -> dict:
    """One run's row data: core, hidden, seed, episodes, wall time, final reward, frozen-weight eval, params."""
    from agents.cli.plot import final_value
    from agents.logger import read_metrics

    config = json.loads((out / "config.json").read_text())
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
    """plot.py's learning curves of ``outs`` by episodes (``stem``.png) and by wall time (``stem``_wall.png);
    returns the files written and plot.py's printed output."""
    from agents.cli import plot

    written, text = [], []
    for suffix, x in (("", "episodes"), ("_wall", "wall_time")):
        png = stem.parent / f"{stem.name}{suffix}.png"
        argv = [*map(str, outs), "--x", x, "--out", str(png)]
        argv += ["--reach", str(reach)] if reach is not None else []
        argv += ["--smooth", str(smooth)] if smooth else []
        captured = io.StringIO()
        with contextlib.redirect_stdout(captured), contextlib.redirect_stderr(captured):
            code = plot.main(argv)
        text.append(captured.getvalue().strip())
        if code == 0:
            written.append(png)
    return written, "\n".join(text)


def run_dirs(folder: Path) -> list[Path]:
    """The run directories directly in a sweep folder (those with a config.json and logged metrics)."""
    return sorted(p for p in Path(folder).iterdir()
                  if p.is_dir() and (p / "config.json").is_file() and (p / "metrics.csv").is_file())


def write_report(folder: str | Path, outs: list[Path] | None = None, eval_episodes: int = 300,
                 reach: float | None = None, smooth: int = 0, groups: dict[str, str] | None = None,
                 title: str | None = None, note: str = "") -> dict[str, Any]:
    """report.md (the table and figures), curves.png, curves_wall.png and runs.json in ``folder`` for the runs
    ``outs`` (default: every run directory in it). ``groups``: run name -> table group (default: its core)."""
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
    text = [f"# {title or folder.name}", "", note, "",
            f"{len(outs)} runs. Final reward = mean reward per episode over the last 10% of the training batches of "
            f"each run; eval = mean reward per episode of {eval_episodes} fresh episodes with frozen weights "
            "(plasticity still on), per seed; CIs are Student-t over seeds.", "", table, "",
            *(f"![learning curves]({png.name})\n" for png in pngs), "plot.py output:", "", "```", plot_text, "```", ""]
    (folder / "report.md").write_text("\n".join(text))
    (folder / "runs.json").write_text(json.dumps(summaries, indent=1, default=str))
    return {"table": table, "summaries": summaries, "figures": pngs, "markdown": folder / "report.md"}
