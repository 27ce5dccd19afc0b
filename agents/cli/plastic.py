"""``plastic <verb>``: one command for every tool of the package (``python -m agents`` is the same).

Each verb runs the ``main(argv)`` of one module of ``agents/cli/`` with the rest of the command line, so its
options are defined once, in that module's parser (``plastic <verb> --help``). A new verb is one line of
``VERBS``. The old ``plastic-*`` console scripts are aliases (``LEGACY``) that say so on stderr, then run.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import signal
import sys
from collections.abc import Iterator, Sequence
from typing import NamedTuple


class Verb(NamedTuple):
    module: str  # the name of a module of agents/cli/ with main(argv) -> int | None
    summary: str  # the one line of `plastic --help`


VERBS: dict[str, Verb] = {
    "train": Verb("train", "train an A2C agent (RL envs) or a supervised network; --preset, --resume, --list-presets"),
    "evaluate": Verb("evaluate", "a trained agent's (or the random policy's) reward with frozen weights, 95% interval"),
    "render": Verb("render", "a maze agent's episode as GIF / MP4, or live (--human)"),
    "plot": Verb("plot", "learning curves of the run directories of one env (median + IQR over seeds)"),
    "inspect": Verb("inspect_run", "what a trained plastic network does: M(t), Hebbian traces, events, parameters"),
    "sweep": Verb("sweep", "a grid or search of training runs on Ray (this machine or a cluster)"),
    "compare-sb3": Verb("compare_sb3", "stable-baselines3 A2C / RecurrentPPO on the same envs, in the same run format"),
    "reproduce rl": Verb("reproduce_rl", "the papers' RL grids, tables and figures (results/)"),
    "reproduce supervised": Verb("reproduce_supervised", "the papers' supervised tasks over seeds, tables and figures"),
    "train-supervised": Verb("train_supervised", "the supervised meta-trainer alone"),
    "bandit-baselines": Verb("bandit_baselines", "bandit reference policies (Thompson, UCB1, oracle) beside agents"),
    "demo": Verb("core_demo", "a few-second demo of a plastic core (pattern completion)"),
    "bench trainer": Verb("benchmark", "A2C training speed and memory of every core on the maze"),
    "bench core": Verb("benchmark_core", "forward+backward speed and memory of every core"),
    "bench envs": Verb("benchmark_envs", "env transitions per second: single, Sync and native vector"),
    "bench sb3": Verb("benchmark_vs_sb3", "our trainer's speed next to sb3-contrib RecurrentPPO"),
    "bench threads": Verb("benchmark_threads", "thread counts on a loaded machine"),
    "frames": Verb("render_env_frames", "the envs' example frames as PNG files (the pictures of the docs)"),
    "plot-reconstruction": Verb("plot_reconstruction", "restored image halves of reconstruction runs"),
}

# the console scripts before `plastic`: kept for one version, each runs its verb after a note on stderr
LEGACY: dict[str, str] = {
    "plastic-train": "train",
    "plastic-train-supervised": "train-supervised",
    "plastic-evaluate": "evaluate",
    "plastic-render": "render",
    "plastic-plot": "plot",
    "plastic-compare-sb3": "compare-sb3",
    "plastic-reproduce-rl": "reproduce rl",
    "plastic-reproduce-supervised": "reproduce supervised",
    "plastic-sweep": "sweep",
    "plastic-bandit-baselines": "bandit-baselines",
    "plastic-demo": "demo",
    "plastic-benchmark": "bench trainer",
    "plastic-benchmark-core": "bench core",
    "plastic-benchmark-envs": "bench envs",
    "plastic-benchmark-sb3": "bench sb3",
    "plastic-render-frames": "frames",
    "plastic-plot-reconstruction": "plot-reconstruction",
}


def usage() -> str:
    """The text of ``plastic --help``: every verb with its one line."""
    width = max(map(len, VERBS)) + 2
    lines = ["usage: plastic <verb> [options]     (plastic <verb> --help: the verb's options)", "",
             "One command for the tools of plastic-meta-rl (python -m agents is the same). Verbs:", ""]
    lines += [f"  {name:<{width}}{verb.summary}" for name, verb in VERBS.items()]
    return "\n".join(lines)


def find_verb(argv: Sequence[str]) -> tuple[str, list[str]]:
    """Split ``argv`` into a verb of ``VERBS`` (one or two words) and its arguments; ValueError if none fits."""
    for words in (2, 1):
        name = " ".join(argv[:words])
        if len(argv) >= words and name in VERBS:
            return name, list(argv[words:])
    given = argv[0]
    group = sorted(name.split(" ", 1)[1] for name in VERBS if name.startswith(f"{given} "))
    if group:
        choice = f" {argv[1]!r}" if len(argv) > 1 else ""
        raise ValueError(f"plastic {given}{choice}: expected one of {', '.join(group)}")
    raise ValueError(f"unknown verb {given!r}; plastic --help lists them")


@contextlib.contextmanager
def program_name(name: str) -> Iterator[None]:
    """Let argparse name the program ``name`` (it reads ``sys.argv[0]``) while a verb's parser is built."""
    saved = sys.argv[0] if sys.argv else ""
    sys.argv[:1] = [name]
    try:
        yield
    finally:
        sys.argv[:1] = [saved]


INTERRUPTED = 130  # 128 + SIGINT, the shell's convention


def run_verb(name: str, argv: Sequence[str]) -> int:
    """Run the verb ``name`` with the arguments ``argv``; its exit status.

    This module imports nothing heavy, so the verb's module (torch, gymnasium, Ray) is imported here: a Ctrl-C
    while it loads (the first second or two of any command) ends the command with one line and 130 instead of a
    traceback. Once a verb runs it handles Ctrl-C itself (a training run checkpoints first,
    ``agents.cli.run_options.run_guarded``); one it lets through ends the same way."""
    try:
        module = importlib.import_module(f"agents.cli.{VERBS[name].module}")
        with program_name(f"plastic {name}"):
            status = module.main(list(argv))
    except KeyboardInterrupt:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not print a traceback now
        print(f"\nplastic {name}: interrupted", file=sys.stderr, flush=True)
        return INTERRUPTED
    return 0 if status is None else int(status)


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(usage())
        return 0 if argv else 2
    if argv[0] == "--version":
        from agents.provenance import __version__

        print(f"plastic-meta-rl {__version__}")
        return 0
    try:
        name, rest = find_verb(argv)
    except ValueError as error:
        print(f"plastic: error: {error}", file=sys.stderr)
        return 2
    return run_verb(name, rest)


def legacy_main() -> int:
    """A ``plastic-*`` console script of the previous version: a one-line note on stderr, then its verb."""
    old = os.path.basename(sys.argv[0])
    name = LEGACY.get(old)
    if name is None:
        print(f"plastic: error: {old!r} is not a command of this package; plastic --help lists them",
              file=sys.stderr)
        return 2
    print(f"{old} is deprecated and will be removed in the next version: use `plastic {name}`", file=sys.stderr)
    return run_verb(name, sys.argv[1:])


if __name__ == "__main__":
    sys.exit(main())
