"""What a trained plastic network does within an episode: its neuromodulation, its Hebbian traces, the task's events.

:func:`record_episodes` plays fresh episodes with frozen weights (the plastic state still changes, as in
evaluation) and keeps, per step t and episode b, the modulation M(t) (modulated and retroactive cores), the mean
|Hebb| and the eligibility trace's norm after the step, the reward and the task's events. Step t is: the network
reads observation t (which shows the reward of step t - 1), computes h(t) and M(t) = modulation(h(t)), acts, and
gets reward r(t). So a reward of step t is first seen by M(t + 1): in :func:`event_triggered_average` lag 0 is
the step whose action was rewarded, and lag +1 the first step that can react to it.

Events per task (``TASK_EVENTS``), each a (T, B) bool array:

- maze: ``reward hit`` (the agent stepped onto the reward cell and was teleported);
- cue-reward: ``target cue`` / ``other cue`` (a cue shown at step t), ``go`` (the step that asks for an answer),
  ``rewarded go`` / ``punished go`` (the answer at that go step was right / wrong);
- any other env: ``reward`` (r(t) > 0).

``TRIGGERS`` names the event that the event-triggered average is taken around (maze: reward hits; cue-reward:
the rewarded go step).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

MAZE, CUE_REWARD = "Plastic/Maze-v0", "Plastic/CueReward-v0"


@dataclass
class Recording:
    """Episodes played with frozen weights. Arrays are (T, B) unless said: ``modulation`` (T, B, K) with K = 1
    for scalar modulation and N for fan-out (None for cores without one), ``hebb_abs`` mean |Hebb| after each
    step, ``eligibility_norm`` the Frobenius norm of the eligibility trace after each step (None without one),
    ``final_hebb`` (B, N, N) the traces at the end of the episodes, ``events`` name -> (T, B) bool."""

    env_id: str
    rewards: np.ndarray
    hebb_abs: np.ndarray
    final_hebb: np.ndarray
    modulation: np.ndarray | None = None
    eligibility_norm: np.ndarray | None = None
    events: dict[str, np.ndarray] = field(default_factory=dict)

    @property
    def modulation_mean(self) -> np.ndarray | None:
        """M(t) (T, B): the modulation, averaged over neurons for fan-out modulation."""
        return None if self.modulation is None else self.modulation.mean(axis=2)


def _stack(infos: list[dict[str, Any]], key: str) -> np.ndarray:
    return np.stack([np.asarray(info[key]) for info in infos])


def maze_events(obs_infos: list[dict], step_infos: list[dict], rewards: np.ndarray) -> dict[str, np.ndarray]:
    return {"reward hit": _stack(step_infos, "reward_hit").astype(bool)}


def cue_reward_events(obs_infos: list[dict], step_infos: list[dict], rewards: np.ndarray) -> dict[str, np.ndarray]:
    cue, target = _stack(obs_infos, "cue"), _stack(obs_infos, "target")
    go = _stack(obs_infos, "go").astype(bool)
    return {"target cue": (cue >= 0) & (cue == target), "other cue": (cue >= 0) & (cue != target), "go": go,
            "rewarded go": go & (rewards > 0), "punished go": go & (rewards < 0)}


def reward_events(obs_infos: list[dict], step_infos: list[dict], rewards: np.ndarray) -> dict[str, np.ndarray]:
    return {"reward": rewards > 0}


EventsFn = Callable[[list[dict], list[dict], np.ndarray], dict[str, np.ndarray]]
TASK_EVENTS: dict[str, EventsFn] = {MAZE: maze_events, CUE_REWARD: cue_reward_events}
TRIGGERS = {MAZE: "reward hit", CUE_REWARD: "rewarded go"}


def record_episodes(model: Any, env_id: str, env_kwargs: dict[str, Any] | None, episodes: int,
                    seed: int = 0) -> Recording:
    """Play ``episodes`` fresh episodes at once (one batch) with frozen weights; see the module docstring.

    ``model``: an :class:`agents.a2c.ActorCritic` whose core has a Hebbian trace (ValueError otherwise)."""
    from agents.a2c import EVAL_STREAM, choose_actions, make_vector_env, reset_seed

    if episodes < 1:
        raise ValueError(f"episodes must be positive, got {episodes}")
    core = model.core
    if "hebb" not in core.state_shapes():
        raise ValueError(f"the {type(core).__name__} core has no Hebbian trace to inspect (a plastic, modulated "
                         "or retroactive core has)")
    modulated = callable(getattr(core, "modulation", None))
    generator = torch.Generator().manual_seed(seed)
    env = make_vector_env(env_id, episodes, env_kwargs)
    was_training = model.training
    model.eval()
    try:
        obs, info = env.reset(seed=reset_seed(seed, 0, EVAL_STREAM))
        state = model.initial_state(episodes)
        obs_infos, step_infos, rewards, hebb_abs, elig, mods = [info], [], [], [], [], []
        with torch.no_grad():
            while True:
                h, state = core.step(torch.as_tensor(obs, dtype=torch.float32), state)
                action = choose_actions(model.policy(h), generator)
                if modulated:
                    mods.append(core.modulation(h).numpy())
                hebb_abs.append(state["hebb"].abs().mean(dim=(1, 2)).numpy())
                if "eligibility" in state:
                    elig.append(torch.linalg.matrix_norm(state["eligibility"]).numpy())
                obs, reward, terminated, truncated, info = env.step(action.numpy())
                rewards.append(np.asarray(reward, dtype=np.float64))
                step_infos.append(info)
                if np.any(terminated | truncated):
                    break
                obs_infos.append(info)
    finally:
        env.close()
        model.train(was_training)
    rewards_tb = np.stack(rewards)
    events = TASK_EVENTS.get(env_id, reward_events)(obs_infos, step_infos, rewards_tb)
    return Recording(env_id, rewards_tb, np.stack(hebb_abs), state["hebb"].numpy().copy(),
                     np.stack(mods) if mods else None, np.stack(elig) if elig else None, events)


def event_triggered_average(signal: np.ndarray, events: np.ndarray, before: int, after: int) -> dict[str, Any]:
    """The average of ``signal`` (T, B) in windows around every event (``events`` (T, B) bool) whose window lies
    inside its episode: lags (L,) = -before .. after, the windows (n, L), their mean, std, 25th and 75th
    percentiles (L,), and n. Lag 0 is the event's step."""
    lags = np.arange(-before, after + 1)
    t, b = np.nonzero(events)
    inside = (t - before >= 0) & (t + after < signal.shape[0])
    t, b = t[inside], b[inside]
    windows = signal[t[:, None] + lags[None, :], b[:, None]]
    if not len(windows):
        nan = np.full(len(lags), np.nan)
        return {"lags": lags, "windows": windows, "mean": nan, "std": nan, "q25": nan, "q75": nan, "count": 0}
    q25, q75 = np.percentile(windows, [25, 75], axis=0)
    return {"lags": lags, "windows": windows, "mean": windows.mean(0), "std": windows.std(0), "q25": q25,
            "q75": q75, "count": len(windows)}


# -- figures ----------------------------------------------------------------------------------------------------
EVENT_STYLES = {"reward hit": ("tab:green", "-"), "target cue": ("tab:orange", ":"), "other cue": ("0.6", ":"),
                "go": ("tab:blue", "--"), "rewarded go": ("tab:green", "-"), "punished go": ("tab:red", "-"),
                "reward": ("tab:green", "-")}


def _mark_events(ax: Any, recording: Recording, episode: int) -> None:
    for name, happened in recording.events.items():
        if name == "go" and "rewarded go" in recording.events:
            continue  # the answered go steps are drawn by their outcome
        color, style = EVENT_STYLES.get(name, ("k", "-"))
        for i, t in enumerate(np.flatnonzero(happened[:, episode])):
            ax.axvline(t, color=color, linestyle=style, linewidth=0.8, alpha=0.7, label=name if i == 0 else None)


def draw_timeline(recording: Recording, episode: int, title: str):
    """One episode: M(t) (per neuron as an image for fan-out), mean |Hebb|(t), the eligibility norm and the reward,
    with the task's events as vertical lines. Returns the matplotlib Figure."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = ["reward"] + (["modulation"] if recording.modulation is not None else []) + ["hebb"]
    panels += ["eligibility"] if recording.eligibility_norm is not None else []
    fanout = recording.modulation is not None and recording.modulation.shape[2] > 1
    panels += ["fanout"] if fanout else []
    fig, axes = plt.subplots(len(panels), 1, figsize=(10, 1.9 * len(panels) + 0.6), sharex=True, squeeze=False)
    steps = np.arange(recording.rewards.shape[0])
    for ax, panel in zip(axes[:, 0], panels, strict=True):
        if panel == "reward":
            ax.step(steps, recording.rewards[:, episode], where="mid", color="k", linewidth=0.8)
            ax.set_ylabel("reward r(t)")
        elif panel == "modulation":
            ax.plot(steps, recording.modulation_mean[:, episode], color="tab:purple", linewidth=0.9)
            ax.axhline(0, color="0.5", linewidth=0.5)
            ax.set_ylabel("M(t)" + (" (mean)" if fanout else ""))
        elif panel == "hebb":
            ax.plot(steps, recording.hebb_abs[:, episode], color="tab:brown")
            ax.set_ylabel("mean |Hebb|")
        elif panel == "eligibility":
            ax.plot(steps, recording.eligibility_norm[:, episode], color="tab:cyan")
            ax.set_ylabel("‖E‖ (eligibility)")
        else:
            image = recording.modulation[:, episode, :].T
            limit = float(np.abs(image).max()) or 1.0
            shown = ax.imshow(image, aspect="auto", cmap="RdBu_r", vmin=-limit, vmax=limit, interpolation="nearest",
                              extent=(-0.5, len(steps) - 0.5, image.shape[0] - 0.5, -0.5))
            fig.colorbar(shown, cax=ax.inset_axes([1.005, 0.0, 0.012, 1.0]), label="M_j(t)")  # keeps the x axis
            ax.set_ylabel("neuron j")
            continue
        _mark_events(ax, recording, episode)
        ax.grid(alpha=0.25)
    handles, labels = axes[0, 0].get_legend_handles_labels()
    if handles:
        axes[0, 0].legend(handles, labels, loc="upper right", fontsize="x-small", ncol=len(labels))
    axes[-1, 0].set_xlabel("step t (M(t) and the traces after step t; r(t) is an input from step t + 1 on)")
    fig.suptitle(title, fontsize="medium")
    fig.tight_layout()
    return fig


def draw_event_average(average: dict[str, Any], trigger: str, title: str):
    """M(t) around the trigger event: the mean over events, its ±1 std and the IQR band, n in the legend."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    lags = average["lags"]
    ax.fill_between(lags, average["mean"] - average["std"], average["mean"] + average["std"], color="tab:purple",
                    alpha=0.12, linewidth=0, label="mean ± 1 std")
    ax.fill_between(lags, average["q25"], average["q75"], color="tab:purple", alpha=0.3, linewidth=0, label="IQR")
    ax.plot(lags, average["mean"], color="tab:purple", marker="o", markersize=3, label=f"mean (n={average['count']})")
    ax.axvline(0, color="tab:green", linewidth=1, label=f"{trigger} (its action's step)")
    ax.axvline(1, color="tab:green", linewidth=0.8, linestyle="--", label="first step that sees the reward")
    ax.axhline(0, color="0.5", linewidth=0.5)
    ax.set_xlabel(f"steps from the {trigger}")
    ax.set_ylabel("M(t)")
    ax.set_title(title, fontsize="medium")
    ax.grid(alpha=0.25)
    ax.legend(fontsize="x-small", loc="best")
    fig.tight_layout()
    return fig


def core_parameters(core: Any) -> dict[str, Any]:
    """The learned plasticity parameters: eta (the plastic core's rate, the retroactive core's eligibility rate),
    and w and alpha as flat arrays."""
    eta = getattr(core, "eta", None)
    return {"eta": None if eta is None else float(eta.detach().float().mean()),
            "w": core.w.detach().numpy().ravel(), "alpha": core.alpha.detach().numpy().ravel()}


def draw_parameters(core: Any, final_hebb: np.ndarray, title: str):
    """Histograms of w and alpha (learned eta in the title) and one episode's final Hebbian trace as an image."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    params = core_parameters(core)
    fig, axes = plt.subplots(1, 3, figsize=(13, 4.3))
    for ax, name in zip(axes[:2], ("w", "alpha"), strict=True):
        ax.hist(params[name], bins=60, color="tab:blue" if name == "w" else "tab:orange")
        ax.set_title(f"{name} ({params[name].size} entries): mean {params[name].mean():.3g}, "
                     f"std {params[name].std():.3g}", fontsize="small")
        ax.set_yscale("log")
    limit = float(np.abs(final_hebb).max()) or 1.0
    shown = axes[2].imshow(final_hebb, cmap="RdBu_r", vmin=-limit, vmax=limit, interpolation="nearest")
    axes[2].set_title("final Hebb[j, i] of one episode", fontsize="small")
    axes[2].set_xlabel("presynaptic i")
    axes[2].set_ylabel("postsynaptic j")
    fig.colorbar(shown, ax=axes[2])
    rate = {"RetroactiveRNN": "eligibility rate", "PlasticRNN": "eta"}.get(type(core).__name__, "eta")
    suffix = f"; learned {rate} = {params['eta']:.4g}" if params["eta"] is not None else ""
    fig.suptitle(title + suffix, fontsize="medium")
    fig.tight_layout()
    return fig


def inspect_run(run_dir: str | Path, out: str | Path | None = None, episodes: int = 100, seed: int = 0,
                before: int = 5, after: int = 10) -> dict[str, Any]:
    """timeline.png, event_average.png, parameters.png and inspection.json of a trained A2C run in ``out``
    (default RUN/inspect); returns the summary written to inspection.json."""
    import matplotlib.pyplot as plt

    from agents.a2c import load_agent

    run_dir = Path(run_dir)
    out = Path(out) if out is not None else run_dir / "inspect"
    model, config = load_agent(run_dir)
    recording = record_episodes(model, config.env_id, config.env_kwargs, episodes, seed)
    out.mkdir(parents=True, exist_ok=True)
    name = f"{run_dir.name}: {config.core} core, {config.env_id}"
    written = []
    figures = [("timeline.png", draw_timeline(recording, 0, f"{name}, one episode"))]
    summary: dict[str, Any] = {"run": str(run_dir), "core": config.core, "env_id": config.env_id,
                               "episodes": episodes, "seed": seed,
                               "mean_reward": float(recording.rewards.sum(0).mean()),
                               "events": {k: int(v.sum()) for k, v in recording.events.items()}}
    trigger = TRIGGERS.get(config.env_id, "reward")
    if recording.modulation is not None:
        average = event_triggered_average(recording.modulation_mean, recording.events[trigger], before, after)
        figures.append(("event_average.png", draw_event_average(
            average, trigger, f"{name}: M(t) around each {trigger}, {episodes} episodes")))
        summary["event_average"] = {"trigger": trigger, "count": average["count"],
                                    "lags": average["lags"].tolist(), "mean": average["mean"].tolist(),
                                    "std": average["std"].tolist()}
        summary["modulation_mean"] = float(recording.modulation_mean.mean())
    params = core_parameters(model.core)
    summary["eta"] = params["eta"]
    summary["alpha_abs_mean"] = float(np.abs(params["alpha"]).mean())
    summary["final_hebb_abs_mean"] = float(np.abs(recording.final_hebb).mean())
    figures.append(("parameters.png", draw_parameters(model.core, recording.final_hebb[0], name)))
    for file, fig in figures:
        fig.savefig(out / file, dpi=110)
        plt.close(fig)
        written.append(out / file)
    summary["figures"] = [str(p) for p in written]
    (out / "inspection.json").write_text(json.dumps(summary, indent=1))
    return summary
