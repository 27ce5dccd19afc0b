"""The console scripts' entry points (``pyproject.toml``): each imports its command's module and runs its ``main``.

They live here, apart from the commands, so that the entry point runs before torch, gymnasium or Ray are imported
(``import agents`` imports nothing heavy): a Ctrl-C while those load (the first second or two of any command) ends
the command with one line and exit status 130 instead of a traceback. Once a command runs, it handles Ctrl-C itself
(a training run checkpoints first, see ``agents.cli.run_options.run_guarded``).
"""

from __future__ import annotations

import importlib
import signal
import sys

INTERRUPTED = 130  # 128 + SIGINT, the shell's convention


def run(module: str, prog: str, argv: list[str] | None = None) -> int:
    """Import ``agents.cli.<module>`` and return its ``main(argv)``; 130 and one line on a Ctrl-C it did not
    handle."""
    try:
        main = importlib.import_module(f"agents.cli.{module}").main
        return main(argv)
    except KeyboardInterrupt:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not print a traceback now
        print(f"\n{prog}: interrupted", file=sys.stderr, flush=True)
        return INTERRUPTED


def _command(module: str, prog: str):
    def entry(argv: list[str] | None = None) -> int:
        return run(module, prog, argv)

    entry.__name__ = module
    entry.__doc__ = f"``{prog}`` (agents/cli/{module}.py)."
    return entry


train = _command("train", "plastic-train")
train_supervised = _command("train_supervised", "plastic-train-supervised")
evaluate = _command("evaluate", "plastic-evaluate")
render = _command("render", "plastic-render")
plot = _command("plot", "plastic-plot")
compare_sb3 = _command("compare_sb3", "plastic-compare-sb3")
reproduce_rl = _command("reproduce_rl", "plastic-reproduce-rl")
reproduce_supervised = _command("reproduce_supervised", "plastic-reproduce-supervised")
sweep = _command("sweep", "plastic-sweep")
bandit_baselines = _command("bandit_baselines", "plastic-bandit-baselines")
core_demo = _command("core_demo", "plastic-demo")
benchmark = _command("benchmark", "plastic-benchmark")
benchmark_core = _command("benchmark_core", "plastic-benchmark-core")
benchmark_envs = _command("benchmark_envs", "plastic-benchmark-envs")
benchmark_vs_sb3 = _command("benchmark_vs_sb3", "plastic-benchmark-sb3")
render_env_frames = _command("render_env_frames", "plastic-render-frames")
plot_reconstruction = _command("plot_reconstruction", "plastic-plot-reconstruction")
