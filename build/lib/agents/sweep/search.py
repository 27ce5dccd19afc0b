"""Hyperparameter search with Ray Tune over any A2C setting (``plastic-sweep --search``).

Each trial is a normal run directory ``<sweep>/search/<core>-<trial id>`` trained by :func:`agents.a2c.train`
with the sampled settings; every logged row is reported to Tune (``reward_mean`` and ``reward_smooth``, the mean
of the last ~5% of the rows, with ``iteration``), so a scheduler such as ASHA can stop poor trials early. With
several cores each sample is tried with each core. The best configuration per core, among the trials that ran
their whole budget, is written as a preset file (JSON, :func:`agents.presets.load_preset_file`'s format) that
``plastic-train --preset-file FILE --core CORE`` trains.
"""

from __future__ import annotations

import ast
import json
import re
import time
from pathlib import Path
from typing import Any

from agents.sweep.grid import Sweep

DISTRIBUTIONS = ("uniform", "loguniform", "quniform", "qloguniform", "randint", "lograndint", "choice")
# A2CConfig fields that a preset does not carry (per run or not training settings)
NOT_IN_PRESET = ("algo", "env_id", "core", "episodes", "seed", "preset", "device", "checkpoint_every", "eval_every")


def parse_search(specs: list[str]) -> dict[str, tuple[str, tuple]]:
    """``["lr=loguniform(1e-4,3e-3)", "batch=choice(8,16)"]`` -> ``{"lr": ("loguniform", (1e-4, 3e-3)), ...}``."""
    space = {}
    for spec in specs:
        match = re.fullmatch(r"\s*([A-Za-z_][\w-]*)\s*=\s*(\w+)\((.*)\)\s*", spec)
        if not match or match.group(2) not in DISTRIBUTIONS:
            raise ValueError(f"bad search spec {spec!r}: expected KEY=DIST(ARGS) with DIST one of "
                             f"{', '.join(DISTRIBUTIONS)}, e.g. lr=loguniform(1e-4,3e-3)")
        try:
            args = ast.literal_eval(f"({match.group(3)},)")
        except (ValueError, SyntaxError):
            raise ValueError(f"bad arguments in search spec {spec!r}") from None
        space[match.group(1).replace("-", "_")] = (match.group(2), tuple(args))
    return space


def domain(dist: str, args: tuple) -> Any:
    from ray import tune

    return tune.choice(list(args)) if dist == "choice" else getattr(tune, dist)(*args)


def _trial(config: dict[str, Any], base: dict[str, Any]) -> None:
    """One Tune trial: train the run with the sampled settings, reporting every row."""
    from ray import tune

    from agents.a2c import train
    from agents.cli import train as train_cli
    from agents.cli.run_options import run_guarded

    sweep: Sweep = base["sweep"]
    settings = {k: v for k, v in config.items() if k != "core"}
    run = next(r for r in sweep.runs() if r.core == config["core"])
    out = Path(base["out"]) / "search" / f"{run.core}-{tune.get_context().get_trial_id()}"
    argv = run.train_args(out, settings) + ["--no-progress"] + ([] if base["tensorboard"] else ["--no-tensorboard"])
    window: list[float] = []
    held: list[dict[str, Any]] = []

    def on_row(row: dict[str, float]) -> None:
        # Each row is reported when the next one arrives (and the last after training): a scheduler that stops
        # the trial does so inside tune.report, and the last report must come after the final checkpoint.
        window.append(row["reward_mean"])
        del window[:-base["smooth"]]
        if held:
            tune.report(held.pop())
        held.append({"reward_mean": row["reward_mean"], "reward_smooth": sum(window) / len(window),
                     "iteration": int(row["iteration"]), "episodes": int(row["episodes"]), "run": str(out)})

    def job() -> int:
        args = train_cli.parse_args(argv)
        train(train_cli.build_config(args), out, resume=(out / "config.json").is_file(), progress=False,
              tensorboard=not args.no_tensorboard, on_row=on_row)
        return 0

    code = run_guarded("plastic-sweep", str(out), job)
    if code == 2:
        raise ValueError(f"trial {out.name}: bad settings {settings} (see the trial's log)")
    if held:  # code 1 (the loss diverged) ends the trial too; its last reported reward stands
        tune.report(held.pop())


def search(sweep: Sweep, space: dict[str, tuple[str, tuple]], out: str | Path, samples: int, scheduler: str = "asha",
           metric: str = "reward_smooth", address: str | None = None, num_cpus: int | None = None,
           cpus_per_run: float = 1, max_retries: int = 1, grace: int | None = None, tensorboard: bool = True,
           preset_path: str | Path | None = None, verbose: int = 1, command: str = "") -> dict[str, Any]:
    """Run the search; returns {"preset": path, "best": {core: {...}}, "trials": n}."""
    from agents.sweep.grid import expected_config
    from agents.sweep.runner import init_ray

    out = Path(out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    probe_run = sweep.runs()[0]
    iterations = expected_config(probe_run.train_args(out / "probe")).iterations
    bad = sorted(set(space) & {"core", "seed", "episodes", "iterations", "env", "preset"})
    if bad:
        raise ValueError(f"cannot search over {bad}: a search varies training settings (lr, batch, ...)")
    for key, (_dist, args) in space.items():  # a bad key or range fails here, before Ray starts
        expected_config(probe_run.train_args(out / "probe", {key: args[0]}))
    started_here = init_ray(address, num_cpus)
    from ray import tune

    try:
        param_space = {key: domain(dist, args) for key, (dist, args) in space.items()}
        param_space["core"] = tune.grid_search(list(dict.fromkeys(c for c, _ in sweep.cores)))
        if scheduler == "asha":
            from ray.tune.schedulers import ASHAScheduler

            chosen = ASHAScheduler(time_attr="iteration", max_t=iterations, reduction_factor=2,
                                   grace_period=grace or max(1, iterations // 8))
        elif scheduler == "fifo":
            chosen = None
        else:
            raise ValueError(f"unknown scheduler {scheduler!r}: asha or fifo")
        base = {"sweep": sweep, "out": str(out), "tensorboard": tensorboard, "smooth": max(1, iterations // 20)}
        trainable = tune.with_resources(tune.with_parameters(_trial, base=base), {"cpu": cpus_per_run})
        tuner = tune.Tuner(
            trainable, param_space=param_space,
            tune_config=tune.TuneConfig(metric=metric, mode="max", num_samples=samples, scheduler=chosen,
                                        reuse_actors=True),
            run_config=tune.RunConfig(name=f"search-{time.strftime('%Y%m%d-%H%M%S')}",
                                      storage_path=str(out / "tune"), verbose=verbose,
                                      failure_config=tune.FailureConfig(max_failures=max_retries)),
        )
        results = tuner.fit()
    finally:
        if started_here:
            import ray

            ray.shutdown()
    best = best_trials(results, metric)
    if not best:
        raise RuntimeError("no trial reported a result; see the trials' errors above")
    path = Path(preset_path) if preset_path else out / "best_preset.json"
    preset = best_preset(best, sweep, iterations, samples, metric, command)
    path.write_text(json.dumps(preset, indent=2) + "\n")
    return {"preset": path, "best": best, "trials": len(results), "errors": results.num_errors}


def best_trials(results: Any, metric: str) -> dict[str, dict[str, Any]]:
    """Per core, the trial with the highest last ``metric`` among those that got furthest (normally the whole
    budget; ASHA stops the others early, and an early value is not comparable with a final one)."""
    by_core: dict[str, list[Any]] = {}
    for result in results:
        if result.metrics and metric in result.metrics and result.config:
            by_core.setdefault(result.config["core"], []).append(result)
    best = {}
    for core, trials in by_core.items():
        furthest = max(r.metrics["iteration"] for r in trials)
        winner = max((r for r in trials if r.metrics["iteration"] == furthest), key=lambda r: r.metrics[metric])
        best[core] = {"config": dict(winner.config), "metric": winner.metrics[metric], "run": winner.metrics["run"],
                      "iteration": furthest, "trials": len(trials)}
    return best


def best_preset(best: dict[str, dict[str, Any]], sweep: Sweep, iterations: int, samples: int, metric: str,
                command: str = "") -> dict[str, Any]:
    """A preset (load_preset_file's fields) from the best trials' config.json: the settings they share, and per
    core the hidden size, core kwargs and whatever differs between the cores' winners."""
    from agents.run import RunDir

    configs = {core: RunDir.read_config(info["run"]) for core, info in best.items()}
    fields = {core: {k: v for k, v in c.items() if k not in NOT_IN_PRESET} for core, c in configs.items()}
    first = next(iter(fields.values()))
    shared = {k: v for k, v in first.items() if k not in ("hidden", "core_kwargs")
              and all(f.get(k) == v for f in fields.values())}
    cores = {core: {k: v for k, v in f.items() if k not in shared} for core, f in fields.items()}
    scores = ", ".join(f"{core} {info['metric']:.4g}" for core, info in best.items())
    env_id = next(iter(configs.values()))["env_id"]
    return {"name": f"search-{sweep.name}", "env_id": env_id, "settings": shared, "cores": cores,
            "iterations": iterations,
            "source": f"plastic-sweep --search: best of {samples} samples per core by {metric} ({scores})"
                      + (f"; {command}" if command else "")}
