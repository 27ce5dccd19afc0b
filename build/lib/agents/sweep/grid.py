"""A sweep's grid: what runs it holds, the plastic-train command of each, and whether a run is new, partial or done.

A sweep is an env (or a preset), cores with their hidden sizes, seeds, a budget and settings. A setting with one
value is fixed; a setting given as a list is an axis of the grid and appears in the run names::

    <core>-s<seed>[-<setting><value>...]       e.g. rnn-s0, modulated-s3-lr0.001

so that the same sweep run again finds its runs, and a sweep with more seeds or more values of an axis adds runs
beside them. (Turning a fixed setting into a list renames its runs: they would be trained again.)
"""

from __future__ import annotations

import itertools
import json
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agents.run import CONFIG_FILE
from agents.run_config import RunConfig, config_differences

# plastic-train flags the sweep sets itself (per run or for every run), not through ``settings``
RESERVED = ("out", "resume", "core", "seed", "hidden", "episodes", "iterations", "preset", "preset_file", "env",
            "threads", "no_progress", "no_tensorboard")
SWEEP_KEYS = ("name", "env", "preset", "preset_file", "cores", "hidden", "seeds", "episodes", "iterations",
              "settings", "env_kwargs", "core_kwargs")


@dataclass
class Sweep:
    """A grid of plastic-train runs. ``cores``: (name, hidden or None); ``settings``: fixed values, or lists for
    the axes of the grid (one run per combination)."""

    cores: list[tuple[str, int | None]]
    seeds: list[int]
    env: str | None = None
    preset: str | None = None
    preset_file: str | None = None
    episodes: int | None = None
    iterations: int | None = None
    settings: dict[str, Any] = field(default_factory=dict)
    name: str = "sweep"

    def __post_init__(self) -> None:
        if not self.cores:
            raise ValueError("a sweep needs at least one core (--cores rnn=48 modulated=48)")
        if not self.seeds:
            raise ValueError("a sweep needs at least one seed (--seeds 0 1 2)")
        if self.env is None and self.preset is None and self.preset_file is None:
            raise ValueError("a sweep needs --env or --preset (or --preset-file)")
        if self.episodes is not None and self.iterations is not None:
            raise ValueError("give the budget as episodes or as iterations, not both")
        if self.episodes is None and self.iterations is None and self.budget_from_preset() is None:
            raise ValueError("a sweep needs a budget: --episodes or --iterations (or a preset with iterations)")
        bad = sorted(set(self.settings) & set(RESERVED))
        if bad:
            raise ValueError(f"settings {bad} are set by the sweep itself (cores, seeds, budget, env, preset)")
        names = [run.name for run in self.runs()]
        twice = sorted({name for name in names if names.count(name) > 1})
        if twice:
            raise ValueError(f"the grid names two runs alike ({', '.join(twice)}): give each core once")

    def budget_from_preset(self) -> int | None:
        """The preset's own budget in iterations (the papers' presets have one), else None."""
        from agents.presets import get_preset, load_preset_file

        try:
            preset = (load_preset_file(self.preset_file) if self.preset_file else
                      get_preset(self.preset) if self.preset else None)
        except ValueError:
            return None
        return preset.iterations if preset is not None else None

    @property
    def axes(self) -> dict[str, list[Any]]:
        return {key: list(value) for key, value in self.settings.items() if isinstance(value, list)}

    def runs(self) -> list[Run]:
        """Every run of the grid: cores x seeds x the axes, in that order."""
        fixed = {key: value for key, value in self.settings.items() if not isinstance(value, list)}
        axes = self.axes
        combos = list(itertools.product(*axes.values())) if axes else [()]
        runs = []
        for (core, hidden), seed, combo in itertools.product(self.cores, self.seeds, combos):
            chosen = dict(zip(axes, combo, strict=True))
            suffix = "".join(f"-{key}{value_label(value)}" for key, value in chosen.items())
            runs.append(Run(name=f"{core}-s{seed}{suffix}", core=core, hidden=hidden, seed=seed,
                            settings={**fixed, **chosen}, sweep=self))
        return runs

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "env": self.env, "preset": self.preset, "preset_file": self.preset_file,
                "cores": [f"{c}={h}" if h else c for c, h in self.cores], "seeds": self.seeds,
                "episodes": self.episodes, "iterations": self.iterations, "settings": self.settings}


@dataclass
class Run:
    """One run of a sweep: its name (the run directory's) and the plastic-train arguments that make it."""

    name: str
    core: str
    hidden: int | None
    seed: int
    settings: dict[str, Any]
    sweep: Sweep

    def train_args(self, out: str | Path, extra: dict[str, Any] | None = None) -> list[str]:
        """The plastic-train arguments of a new run in ``out`` (``extra``: settings laid over the run's)."""
        s = self.sweep
        argv = ["--out", str(out), "--core", self.core, "--seed", str(self.seed)]
        for flag, value in (("--env", s.env), ("--preset", s.preset), ("--preset-file", s.preset_file),
                            ("--hidden", self.hidden), ("--episodes", s.episodes), ("--iterations", s.iterations)):
            if value is not None:
                argv += [flag, str(value)]
        if s.episodes is None and s.iterations is None:
            argv += ["--iterations", str(s.budget_from_preset())]
        return argv + setting_flags({**self.settings, **(extra or {})})


def value_label(value: Any) -> str:
    """A setting's value as it appears in run names (JSON without spaces for tables, / replaced)."""
    text = value if isinstance(value, str) else json.dumps(value, separators=(",", ":"), sort_keys=True)
    return re.sub(r"[^A-Za-z0-9_.,:=+-]", "", text.replace("/", "_"))


def setting_flags(settings: dict[str, Any]) -> list[str]:
    """``{"lr": 0.001, "env_kwargs": {...}}`` -> ``["--lr", "0.001", "--env-kwargs", "{...}"]``."""
    argv: list[str] = []
    for key, value in settings.items():
        flag = "--" + key.replace("_", "-")
        if isinstance(value, bool):
            if value:
                argv.append(flag)
        elif isinstance(value, dict):
            argv += [flag, json.dumps(value)]
        elif value is not None:
            argv += [flag, str(value)]
    return argv


def parse_cores(specs: list[str], hidden: int | None = None) -> list[tuple[str, int | None]]:
    """``["rnn=139", "plastic"]`` -> ``[("rnn", 139), ("plastic", hidden)]``."""
    cores = []
    for spec in specs:
        name, _, size = str(spec).partition("=")
        if not name or (size and (not size.isdigit() or int(size) <= 0)):
            raise ValueError(f"bad core spec {spec!r}: expected NAME or NAME=HIDDEN with a positive integer")
        cores.append((name, int(size) if size else hidden))
    return cores


def parse_value(text: str) -> Any:
    """A setting's value from the command line: JSON where it parses (numbers, objects, true), else the text."""
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def parse_settings(fixed: list[str], grid: list[str]) -> dict[str, Any]:
    """``--set KEY=VALUE`` (one value) and ``--grid KEY=V1,V2`` (an axis) into the settings of a :class:`Sweep`."""
    settings: dict[str, Any] = {}
    for spec, is_axis in [(s, False) for s in fixed] + [(s, True) for s in grid]:
        key, sep, text = spec.partition("=")
        if not sep or not key:
            raise ValueError(f"bad setting {spec!r}: expected KEY=VALUE" + (",VALUE..." if is_axis else ""))
        key = key.replace("-", "_")
        if key in settings:
            raise ValueError(f"setting {key!r} given twice")
        settings[key] = [parse_value(v) for v in text.split(",")] if is_axis else parse_value(text)
    return settings


def load_sweep_file(path: str | Path) -> dict[str, Any]:
    """The fields of a sweep file (TOML): name, env, preset, preset_file, cores (a list of "NAME[=HIDDEN]" or a
    table NAME = HIDDEN), hidden, seeds, episodes or iterations, and a [settings] table (lists are axes)."""
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError) as error:
        raise ValueError(f"cannot read the sweep file {path}: {error}") from None
    unknown = sorted(set(data) - set(SWEEP_KEYS))
    if unknown:
        raise ValueError(f"sweep file {path}: unknown keys {unknown}; known: {', '.join(SWEEP_KEYS)}")
    if isinstance(data.get("cores"), dict):
        data["cores"] = [f"{name}={size}" if size else name for name, size in data["cores"].items()]
    return data


def sweep_from(fields: dict[str, Any]) -> Sweep:
    """A :class:`Sweep` from a sweep file's fields (or the CLI's, in the same form)."""
    settings = dict(fields.get("settings") or {})
    for key in ("env_kwargs", "core_kwargs"):
        if fields.get(key) is not None:
            settings[key] = fields[key]
    seeds = fields.get("seeds", [0])
    seeds = list(range(seeds)) if isinstance(seeds, int) else [int(s) for s in seeds]
    return Sweep(cores=parse_cores(list(fields.get("cores") or []), fields.get("hidden")), seeds=seeds,
                 env=fields.get("env"), preset=fields.get("preset"), preset_file=fields.get("preset_file"),
                 episodes=fields.get("episodes"), iterations=fields.get("iterations"), settings=settings,
                 name=str(fields.get("name") or "sweep"))


# -- the state of a run directory ------------------------------------------------------------------------------
def checkpoint_iteration(out: Path) -> int | None:
    """The iteration of the run's last checkpoint (None without one)."""
    if not (out / "checkpoint.pt").is_file():
        return None
    import torch

    return int(torch.load(out / "checkpoint.pt", weights_only=True, map_location="cpu")["iteration"])


def run_state(out: Path, episodes: int | None = None) -> str:
    """"new", "partial" or "done": whether the checkpoint holds every iteration of ``episodes`` (default: the
    run's own config), so that a larger ``--episodes`` extends finished runs; "done" or "broken" for an SB3 run
    (finished or not: they cannot resume)."""
    if not (out / CONFIG_FILE).is_file():
        return "new"
    config = json.loads((out / CONFIG_FILE).read_text())
    if config.get("algo", "a2c") not in ("a2c", "supervised"):
        return "done" if (out / "sb3_model.zip").is_file() else "broken"
    done = checkpoint_iteration(out)
    if done is None:
        return "partial"
    iterations = -(-(episodes or config["episodes"]) // config["batch"])
    return "done" if done >= iterations else "partial"


def expected_config(argv: list[str]) -> RunConfig:
    """The config that ``plastic-train argv`` would start (A2C or supervised), built without touching any file;
    ``ValueError`` (with argparse's message for unknown flags) when the settings are bad."""
    import contextlib
    import io

    from agents.cli import train, train_supervised

    err = io.StringIO()
    try:
        with contextlib.redirect_stderr(err):
            args = train.parse_args(argv)
    except SystemExit:
        raise ValueError(err.getvalue().strip().splitlines()[-1] if err.getvalue().strip() else "bad flags") from None
    if train.is_supervised(args):
        return train_supervised.build_config(args)
    return train.build_config(args)


def differences(out: Path, expected: RunConfig) -> list[str]:
    """How the run already in ``out`` differs from ``expected`` beyond what a resume may change ([] if not)."""
    from agents.run import RunDir

    if expected.ALGO == "supervised":
        from agents.supervised import RESUMABLE_FIELDS
    else:
        from agents.config import RESUMABLE_FIELDS
    want = json.loads(json.dumps(expected.to_dict()))
    return config_differences(RunDir.read_config(out), want, ignore=RESUMABLE_FIELDS)


def resume_args(out: str | Path, expected: RunConfig) -> list[str]:
    """plastic-train arguments that continue the run in ``out`` up to ``expected``'s budget (its other settings
    come from its config.json, checked beforehand by :func:`differences`)."""
    argv = ["--out", str(out), "--resume", "--episodes", str(expected.episodes),
            "--checkpoint-every", str(expected.checkpoint_every)]
    if getattr(expected, "eval_every", 0):
        argv += ["--eval-every", str(expected.eval_every)]
    return argv
