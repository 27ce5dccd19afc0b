"""Command-line options shared by scripts/train.py (A2C) and scripts/train_supervised.py (supervised tasks).

Both scripts write the same kind of run directory (agents/run.py), so they take the same run options and turn
them into a config the same way: flags map to config fields, and with ``--resume`` the run's own config.json
supplies every field not given again (RunDir.resume then checks that the given ones agree).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from agents.checks import one_line
from agents.run import NonFiniteLossError, RunDir, RunInterrupted, check_resumable, resume_policy
from agents.run_config import canonical


def json_object(text: str) -> dict:
    """argparse type: a JSON object such as ``'{"size": 9}'``."""
    try:
        value = json.loads(text)
    except json.JSONDecodeError as error:
        raise argparse.ArgumentTypeError(f"not valid JSON ({error}): {text!r}") from None
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError(f"expected a JSON object like '{{\"size\": 9}}', got {text!r}")
    return value


def add_run_arguments(p: argparse.ArgumentParser, env_help: str, env_kwargs_example: str, batch_help: str,
                      seed_help: str) -> argparse.ArgumentParser:
    """The options of every training run: output, resume, env, budget, seed, optimiser, checkpoints, device."""
    p.add_argument("--out", required=True, help="run directory (created; must be new unless --resume)")
    p.add_argument("--resume", action="store_true", help="continue the run in --out from its last checkpoint")
    p.add_argument("--env", help=env_help)
    p.add_argument("--env-kwargs", type=json_object,
                   help=f"env keyword arguments as JSON, e.g. '{env_kwargs_example}'")
    p.add_argument("--episodes", type=int, help="episodes to train on in total (rounded up to whole batches)")
    p.add_argument("--batch", type=int, help=batch_help)
    p.add_argument("--seed", type=int, help=seed_help)
    p.add_argument("--lr", type=float, help="Adam learning rate")
    p.add_argument("--clip", type=float, help="gradient-norm clip")
    p.add_argument("--checkpoint-every", type=int, help="iterations between checkpoints (default 50)")
    p.add_argument("--device", help="torch device (default cpu)")
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1; recorded: a resume "
                   "with another count is refused, see --allow-nonexact)")
    p.add_argument("--allow-nonexact", action="store_true",
                   help="with --resume: continue even with another thread count, device or kernel path than the "
                        "checkpoint's (the metrics will then differ from an uninterrupted run)")
    p.add_argument("--repair-metrics", action="store_true",
                   help="with --resume: rebuild metrics.csv from the copy of its rows that the checkpoint keeps when "
                        "it was emptied, cut or edited (instead of refusing to resume)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--no-tensorboard", action="store_true", help="no TensorBoard logs")
    return p


def run_settings(args: argparse.Namespace, fields: Mapping[str, str], required: Sequence[str],
                 resumable: Sequence[str] | None = None) -> dict[str, Any]:
    """Config fields from ``args`` (``fields``: flag destination -> config field; flags not given are left out).

    With ``--resume`` they are laid over the run's own config.json (an env id given with ``--env`` may name a
    module of its own), and with ``resumable`` a given field outside it that differs is refused here, before
    anything is built or allocated; otherwise every flag in ``required`` must be given (a ValueError names the
    missing ones).
    """
    given = {fields[name]: value for name, value in vars(args).items() if name in fields and value is not None}
    if args.resume:
        existing = RunDir.read_config(args.out, trusted_env_id=given.get("env_id"))
        if resumable is not None:
            check_resumable(args.out, existing, canonical({**existing, **given}), tuple(resumable))
        return {**existing, **given}
    missing = [f"--{flag.replace('_', '-')}" for flag in required if fields[flag] not in given]
    if missing:
        raise ValueError(f"a new run needs {', '.join(missing)} (or --resume to continue the run in --out)")
    return given


def resume_hint(out: str) -> str:
    return f"continue with: plastic train --out {out} --resume"


def run_guarded(prog: str, out: str, job: Callable[[], int]) -> int:
    """Run ``job`` (a training command's work; returns its exit status) and turn its failures into one line on
    stderr and an exit status: 1 the loss diverged, 2 bad input or an unusable path, 128 + signal number when
    SIGINT / SIGTERM stopped the run (after a checkpoint), 130 for a second Ctrl-C."""
    try:
        return job()
    except NonFiniteLossError as error:
        print(f"{prog}: {error}", file=sys.stderr)
        return 1
    except RunInterrupted as stop:
        print(f"{prog}: {stop}; {resume_hint(out)}", file=sys.stderr)
        return stop.exit_code
    except KeyboardInterrupt:
        print(f"\n{prog}: interrupted before a checkpoint of the last iteration; {resume_hint(out)} "
              "(from the last checkpoint)", file=sys.stderr)
        return 130
    except (ValueError, TypeError, OSError) as error:
        print(f"{prog}: error: {one_line(error)}", file=sys.stderr)
        return 2


def resume_flags(args: argparse.Namespace) -> contextlib.AbstractContextManager:
    """The resume policy of ``--allow-nonexact`` / ``--repair-metrics`` (a ValueError without ``--resume``)."""
    allow, repair = getattr(args, "allow_nonexact", False), getattr(args, "repair_metrics", False)
    if (allow or repair) and not args.resume:
        raise ValueError("--allow-nonexact and --repair-metrics apply to --resume only")
    return resume_policy(allow_nonexact=allow, repair_metrics=repair)


def stop_sweep_cleanly(prog: str, job: Callable[[], int]) -> int:
    """``job()``, a command that runs a sweep; Ctrl-C or SIGTERM stops that sweep cleanly (the runs checkpoint,
    Ray is shut down): one line saying how to continue, and the signal's exit status."""
    from agents.sweep.runner import SweepInterrupted

    try:
        return job()
    except SweepInterrupted as stop:
        print(f"{prog}: {stop}; Ray is shut down. Run the same command again to continue", file=sys.stderr)
        return stop.exit_code
