"""The papers' figure and statistics for any grid of runs: binned curves, per-bin rank-sum tests, final values.

Miconi et al.'s figure scripts (TASKS.md section 2) plot, per core, the median and inter-quartile range over seeds
of the reward per episode against training iterations (batches of episodes), smoothed by a moving average, and
compare cores with ``scipy.stats.ranksums`` at each point. Here a point is a *bin* of ``bin_size`` consecutive
iterations (each run's mean reward per episode over them), so that every run contributes one value per bin; the
moving average runs over ``smooth`` bins for the figure, while the tests use each bin's unsmoothed values, so
that neighbouring tests do not share data.

- :func:`significance_onsets`: for each pair of groups, the first iteration from which the rank-sum test stays
  significant (p < ``alpha`` at that bin and every later one), and which group is ahead there;
- :func:`final_table`: per group the median [IQR] over seeds of each run's final value (its mean over the last
  10% of its iterations), and the two-sided Mann-Whitney U p-value of each pair.
"""

from __future__ import annotations

import itertools
import json
import math
import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from agents.curves import final_value, running_mean

# The legend names of the Backpropamine (2019) and differentiable plasticity (2018) figures.
PAPER_NAMES = {"rnn": "Non-plastic", "plastic": "Non-modulated plastic", "modulated": "Simple neuromodulation",
               "retroactive": "Retroactive neuromodulation", "lstm": "LSTM"}
ALPHA = 0.05


@dataclass(frozen=True)
class RunCurve:
    """One run's training curve: reward per episode (n,) at iterations (n,) (1, 2, ...), ``batch`` episodes each."""

    name: str
    group: str
    batch: int
    iterations: np.ndarray
    rewards: np.ndarray


def read_run_curve(run: Path, group: str | None = None) -> RunCurve:
    """The curve of the run directory ``run`` (config.json + metrics.csv); ``group`` defaults to its core."""
    from agents.logger import read_metrics
    from agents.run import RunDir

    config = RunDir.read_config(run)
    rows = read_metrics(Path(run) / "metrics.csv")
    if not rows:
        raise ValueError(f"{run}/metrics.csv has no rows yet")
    if "iteration" not in rows[0]:
        raise ValueError(f"{run}/metrics.csv has no iteration column (not an A2C run)")
    return RunCurve(Path(run).name, group or str(config["core"]), int(config.get("batch", 1)),
                    np.array([r["iteration"] for r in rows], dtype=np.int64),
                    np.array([r["reward_mean"] for r in rows], dtype=np.float64))


def default_bin_size(runs: list[RunCurve], points: int = 100) -> int:
    """Iterations per bin so that the shortest run gives about ``points`` bins (at least 1)."""
    return max(1, min(int(r.iterations[-1]) for r in runs) // points)


def bin_curves(runs: list[RunCurve], bin_size: int) -> tuple[np.ndarray, np.ndarray]:
    """Bins of ``bin_size`` iterations over the range every run covers: the last iteration of each bin (P,) and
    each run's mean reward per episode in it (R, P). Bin k holds iterations k*bin_size+1 .. (k+1)*bin_size."""
    if bin_size < 1:
        raise ValueError(f"bin size must be a positive number of iterations, got {bin_size}")
    shortest = min(int(r.iterations[-1]) for r in runs)
    n_bins = shortest // bin_size
    if n_bins < 1:
        raise ValueError(f"the shortest run has {shortest} iterations, fewer than one bin of {bin_size}")
    ends = np.arange(1, n_bins + 1) * bin_size
    values = np.empty((len(runs), n_bins))
    for i, run in enumerate(runs):
        which = (run.iterations - 1) // bin_size  # bin of each logged iteration
        keep = which < n_bins
        sums = np.bincount(which[keep], weights=run.rewards[keep], minlength=n_bins)
        counts = np.bincount(which[keep], minlength=n_bins)
        if (counts == 0).any():
            raise ValueError(f"run {run.name} has no logged iteration in bin {int(np.argmin(counts)) + 1}")
        values[i] = sums / counts
    return ends, values


def smooth_bins(values: np.ndarray, window: int) -> np.ndarray:
    """Trailing moving average (R, P) of each run's bins over ``window`` bins (fewer at the start)."""
    return np.stack([running_mean(row, window) for row in values]) if window > 1 else values


def significance_onsets(groups: dict[str, np.ndarray], ends: np.ndarray, alpha: float = ALPHA) -> list[dict]:
    """For each pair (a, b) of groups (values (S_g, P) per group): the rank-sum p-value of every bin, and
    ``onset``, the last iteration of the first bin from which p < ``alpha`` at every later bin (None when the last
    bin is not significant), with ``ahead``, the group whose median is higher from there on (None if it changes)."""
    from scipy import stats

    pairs = []
    for a, b in itertools.combinations(groups, 2):
        p = np.array([stats.ranksums(groups[a][:, k], groups[b][:, k]).pvalue for k in range(len(ends))])
        significant = p < alpha
        onset, ahead = None, None
        if significant[-1]:
            first = len(p) - int(np.argmin(significant[::-1])) if not significant.all() else 0
            diff = np.median(groups[a][:, first:], axis=0) - np.median(groups[b][:, first:], axis=0)
            onset = int(ends[first])
            ahead = a if (diff > 0).all() else b if (diff < 0).all() else None
        pairs.append({"a": a, "b": b, "onset": onset, "ahead": ahead, "p": p.tolist()})
    return pairs


def final_table(groups: dict[str, np.ndarray]) -> tuple[list[dict], list[dict]]:
    """Per group (final values (S,)): seeds, median and IQR; per pair: the two-sided Mann-Whitney U p-value."""
    from scipy import stats

    rows = []
    for name, finals in groups.items():
        q25, q50, q75 = np.percentile(finals, [25, 50, 75])
        rows.append({"group": name, "seeds": len(finals), "median": float(q50), "q25": float(q25),
                     "q75": float(q75), "values": [float(v) for v in finals]})
    pairs = []
    for a, b in itertools.combinations(groups, 2):
        test = stats.mannwhitneyu(groups[a], groups[b], alternative="two-sided")
        pairs.append({"a": a, "b": b, "U": float(test.statistic), "p": float(test.pvalue)})
    return rows, pairs


def label(group: str) -> str:
    """The papers' legend name of a group named by its core ('modulated' -> 'Simple neuromodulation')."""
    core, _, rest = group.partition(" ")
    return PAPER_NAMES.get(core, core) + (f" ({rest})" if rest else "")


def draw_paper_figure(ends: np.ndarray, groups: dict[str, np.ndarray], batch: int | None, title: str,
                      smooth: int):
    """The papers' figure (a matplotlib Figure): per group the median (line) and IQR (band) over seeds of its bins
    (S, P) smoothed over ``smooth`` bins, x in iterations, episodes (``batch`` per iteration) on the top axis."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7.5, 4.8))
    for name, values in groups.items():
        q25, q50, q75 = np.percentile(smooth_bins(values, smooth), [25, 50, 75], axis=0)
        line, = ax.plot(ends, q50, label=f"{label(name)} (n={len(values)})")
        ax.fill_between(ends, q25, q75, color=line.get_color(), alpha=0.22, linewidth=0)
    ax.set_xlabel("training iterations")
    ax.set_ylabel("reward per episode")
    if batch:
        top = ax.secondary_xaxis("top", functions=(lambda it: it * batch, lambda ep: ep / batch))
        top.set_xlabel(f"episodes ({batch} per iteration)")
    ax.set_title("\n".join(textwrap.wrap(title, 90)), fontsize="medium")
    ax.grid(alpha=0.3)
    ax.legend(loc="upper left", fontsize="small")
    fig.tight_layout()
    return fig


def paper_figure(ends: np.ndarray, groups: dict[str, np.ndarray], out: Path, batch: int | None, title: str,
                 smooth: int) -> Path:
    """:func:`draw_paper_figure` saved as the PNG ``out``."""
    import matplotlib.pyplot as plt

    fig = draw_paper_figure(ends, groups, batch, title, smooth)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=120)
    plt.close(fig)
    return out


def grid_statistics(runs: list[RunCurve], bin_size: int | None = None, alpha: float = ALPHA) -> dict[str, Any]:
    """The binned curves per group, the significance onsets and the final-value table of ``runs``."""
    if not runs:
        raise ValueError("no runs with metrics to compare")
    bin_size = bin_size or default_bin_size(runs)
    ends, values = bin_curves(runs, bin_size)
    order = list(PAPER_NAMES)  # the papers' order (rnn, plastic, modulated, retroactive), then as found
    names = sorted(dict.fromkeys(r.group for r in runs),
                   key=lambda g: order.index(g.partition(" ")[0]) if g.partition(" ")[0] in order else len(order))
    groups = {g: values[[i for i, r in enumerate(runs) if r.group == g]] for g in names}
    shortest = int(ends[-1])  # finals over the range every run covers, so that every run is judged alike
    finals = {g: np.array([final_value(r.rewards[r.iterations <= shortest]) for r in runs if r.group == g])
              for g in names}
    rows, pairs = final_table(finals)
    return {"bin_size": bin_size, "ends": ends, "groups": groups, "onsets": significance_onsets(groups, ends, alpha),
            "finals": rows, "final_pairs": pairs, "alpha": alpha, "iterations": shortest,
            "batch": runs[0].batch if len({r.batch for r in runs}) == 1 else None}


def _fmt_p(p: float) -> str:
    return "n/a" if math.isnan(p) else f"{p:.2g}" if p >= 1e-3 else f"{p:.1e}"


def statistics_markdown(stats: dict[str, Any]) -> str:
    """The onsets and the final-value table as markdown."""
    alpha, batch = stats["alpha"], stats["batch"]
    episodes = f" ({stats['iterations'] * batch:,} episodes)" if batch else ""
    lines = [f"Final value = each run's mean reward per episode over the last 10% of the first "
             f"{stats['iterations']:,} iterations{episodes} (the range every run covers).", "",
             "| group | seeds | final: median [IQR] | per seed |", "|---|---|---|---|"]
    for row in stats["finals"]:
        lines.append(f"| {label(row['group'])} | {row['seeds']} | {row['median']:.2f} [{row['q25']:.2f}, "
                     f"{row['q75']:.2f}] | {', '.join(f'{v:.2f}' for v in row['values'])} |")
    lines += ["", f"Pairs: the two-sided Mann-Whitney U test on the final values, and the first iteration from "
              f"which the rank-sum test of each {stats['bin_size']}-iteration bin stays below p = {alpha} "
              "to the end (the papers' per-bin `scipy.stats.ranksums`).", "",
              "| pair | Mann-Whitney p (final) | significant from iteration | ahead |", "|---|---|---|---|"]
    for final, onset in zip(stats["final_pairs"], stats["onsets"], strict=True):
        when = f"{onset['onset']:,}" if onset["onset"] is not None else "not at the end"
        ahead = label(onset["ahead"]) if onset["ahead"] else "-"
        lines.append(f"| {label(final['a'])} vs {label(final['b'])} | {_fmt_p(final['p'])} | {when} | {ahead} |")
    return "\n".join(lines)


def write_statistics(runs: list[RunCurve], folder: Path, title: str, bin_size: int | None = None,
                     smooth: int = 5) -> dict[str, Any]:
    """paper_figure.png, statistics.md and statistics.json in ``folder``; returns the statistics."""
    stats = grid_statistics(runs, bin_size)
    figure = paper_figure(stats["ends"], stats["groups"], folder / "paper_figure.png", stats["batch"], title, smooth)
    markdown = statistics_markdown(stats)
    (folder / "statistics.md").write_text(markdown + "\n")
    saved = {k: v for k, v in stats.items() if k not in ("ends", "groups")}
    saved["bins"] = {"ends": stats["ends"].tolist(), **{g: v.tolist() for g, v in stats["groups"].items()}}
    saved["smooth"] = smooth
    (folder / "statistics.json").write_text(json.dumps(saved, indent=1))
    return {**stats, "figure": figure, "markdown": markdown}
