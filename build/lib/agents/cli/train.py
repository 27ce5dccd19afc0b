"""Train an A2C agent with a recurrent or plastic core on a Plastic/ meta-RL env, or meta-train a network on a
supervised Plastic/ task (the supervised ids go to the supervised trainer, with its --model, --model-kwargs,
--data and --eval-episodes options).

    plastic-train --env Plastic/Maze-v0 --core retroactive --hidden 100 --episodes 3000 --batch 30 \\
        --seed 0 --out runs/maze-retro
    plastic-train --preset backpropamine2019-maze --core retroactive --iterations 2000 --out runs/bp-retro
    plastic-train --out runs/maze-retro --resume                  # continue a stopped or killed run
    plastic-train --out runs/maze-retro --resume --episodes 6000  # ... or extend a finished one
    plastic-train --list-presets

Settings left out come from --preset (the papers' exact settings by name) or else from the env's default preset
(agents/presets.py). The run directory gets config.json, run.json, metrics.csv (one row per iteration of --batch
episodes), TensorBoard logs in tb/ and checkpoint.pt. Ctrl-C or SIGTERM finishes the iteration, writes a
checkpoint and exits; --resume continues exactly.

    plastic-train --env Plastic/PatternCompletion-v0 --episodes 32000 --out runs/completion
"""

from __future__ import annotations

import argparse
import sys

from agents.a2c import train
from agents.checks import check_device, one_line
from agents.cli import train_supervised
from agents.cli.run_options import add_run_arguments, json_object, resume_flags, run_guarded, run_settings
from agents.config import REGULARISERS, RESUMABLE_FIELDS, A2CConfig, make_config
from agents.presets import load_preset_file, preset_table
from agents.run import RunDir
from envs import SUPERVISED_ENV_IDS

PROG = "plastic-train"

# A2C-only flags, refused for supervised env ids (whose network is chosen with --model).
A2C_ONLY = ("core", "core_kwargs", "hidden", "gamma", "entropy", "regulariser", "regulariser_coef", "value_coef",
            "n_step", "eval_every", "adam_eps", "burn_in", "preset", "preset_file", "iterations")

# flag destination -> A2CConfig field
FIELDS = {
    "env": "env_id", "core": "core", "episodes": "episodes", "seed": "seed", "hidden": "hidden", "batch": "batch",
    "lr": "lr", "gamma": "gamma", "regulariser": "regulariser", "regulariser_coef": "regulariser_coef",
    "value_coef": "value_coef", "clip": "clip", "adam_eps": "adam_eps", "burn_in": "burn_in",
    "n_step": "n_step", "env_kwargs": "env_kwargs", "core_kwargs": "core_kwargs",
    "checkpoint_every": "checkpoint_every", "device": "device", "eval_every": "eval_every",
}


class ListPresets(argparse.Action):
    """``--list-presets``: print the preset table and exit (like ``--help``, no other option needed)."""

    def __init__(self, option_strings: list[str], dest: str, **kwargs) -> None:
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS, **kwargs)

    def __call__(self, parser, namespace, values, option_string=None) -> None:
        print(preset_table())
        parser.exit()


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--list-presets", action=ListPresets, help="print the presets (name, env, budget, source), exit")
    add_run_arguments(p, env_help="env id, e.g. Plastic/Maze-v0, Plastic/CueReward-v0, Plastic/ReversalBandit-v0",
                      env_kwargs_example='{"size": 9}', batch_help="episodes per update, played in lock-step",
                      seed_help="seed of the weights, the episodes and the action sampling (default 0)")
    a2c = p.add_argument_group("A2C agents (RL envs)")
    a2c.add_argument("--preset", help="named settings, e.g. backpropamine2019-maze (see --list-presets); flags "
                     "override it")
    a2c.add_argument("--preset-file", help="a preset from a TOML/JSON file (as plastic-sweep --search writes)")
    a2c.add_argument("--iterations", type=int, help="budget in iterations of --batch episodes (instead of "
                     "--episodes)")
    a2c.add_argument("--core", help="rnn, lstm, plastic, modulated, retroactive, ...")
    a2c.add_argument("--core-kwargs", type=json_object, help="core keyword arguments as JSON")
    a2c.add_argument("--hidden", type=int, help="hidden units of the core")
    a2c.add_argument("--gamma", type=float, help="discount")
    a2c.add_argument("--regulariser", choices=REGULARISERS, help="policy regulariser: an entropy bonus or the "
                     "Backpropamine code's concentration penalty sum_a p(a)^2")
    a2c.add_argument("--regulariser-coef", type=float, help="its coefficient")
    a2c.add_argument("--entropy", type=float, help="shorthand for --regulariser entropy --regulariser-coef X")
    a2c.add_argument("--adam-eps", type=float, help="Adam's eps (torch default 1e-8; the 2019 code 1e-4 / 1e-6)")
    a2c.add_argument("--burn-in", type=int, help="first iterations without an optimizer step (2019 maze: 100)")
    a2c.add_argument("--value-coef", type=float, help="value-loss coefficient")
    a2c.add_argument("--n-step", type=int, help="n-step returns bootstrapped on the value (default 0: whole episode)")
    a2c.add_argument("--eval-every", type=int,
                     help="every N iterations, log eval_reward: the mean reward of one batch of fresh episodes "
                          "played with frozen weights (training is unchanged; default 0: never)")
    train_supervised.add_supervised_arguments(p.add_argument_group("supervised tasks"))
    return p.parse_args(argv)


def is_supervised(args: argparse.Namespace) -> bool:
    """Whether ``args`` name (or, with --resume, the run in --out holds) a supervised env id."""
    env_id = args.env
    if env_id is None and args.resume:
        env_id = RunDir.read_config(args.out).get("env_id")
    return env_id in SUPERVISED_ENV_IDS


def build_config(args: argparse.Namespace) -> A2CConfig:
    if args.entropy is not None:
        if args.regulariser not in (None, "entropy") or args.regulariser_coef is not None:
            raise ValueError("--entropy X is --regulariser entropy --regulariser-coef X; give one or the other")
        args.regulariser, args.regulariser_coef = "entropy", args.entropy
    if args.resume:
        if args.preset or args.preset_file:
            raise ValueError("--preset and --preset-file start a run; a resumed run keeps the settings in its "
                             "config.json")
        config = A2CConfig.from_dict(run_settings(args, FIELDS, required=(), resumable=RESUMABLE_FIELDS))
        if args.iterations is not None:
            config.episodes = args.iterations * config.batch
        return config
    if args.preset and args.preset_file:
        raise ValueError("give --preset or --preset-file, not both")
    preset = load_preset_file(args.preset_file) if args.preset_file else args.preset
    required = ("core",) if preset else ("env", "core")
    settings = run_settings(args, FIELDS, required=required)
    if args.episodes is None and args.iterations is None:
        raise ValueError("a new run needs --episodes or --iterations (or --resume to continue the run in --out)")
    env_id, core, episodes = settings.pop("env_id", None), settings.pop("core"), settings.pop("episodes", None)
    return make_config(env_id, core, episodes, preset=preset, iterations=args.iterations, **settings)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        supervised = is_supervised(args)
    except (ValueError, TypeError, OSError) as error:
        print(f"{PROG}: error: {one_line(error)}", file=sys.stderr)
        return 2
    if supervised:
        given = [f"--{name.replace('_', '-')}" for name in A2C_ONLY if getattr(args, name) is not None]
        if given:
            print(f"{PROG}: error: {', '.join(given)} apply to the RL envs only; a supervised task picks its "
                  "network with --model (and --model-kwargs)", file=sys.stderr)
            return 2
        return train_supervised.run(args)
    supervised_only = ("model", "model_kwargs", "data")
    given = [f"--{name.replace('_', '-')}" for name in supervised_only if getattr(args, name) is not None]
    if given or args.eval_episodes:
        given += ["--eval-episodes"] if args.eval_episodes else []
        print(f"{PROG}: error: {', '.join(given)} apply to the supervised tasks only; an RL agent picks its core "
              "with --core (evaluate it with plastic-evaluate)", file=sys.stderr)
        return 2
    import torch

    torch.set_num_threads(args.threads)

    def job() -> int:
        policy = resume_flags(args)
        config = build_config(args)
        check_device(config.device)
        with policy:
            rows = train(config, args.out, resume=args.resume, progress=False if args.no_progress else None,
                         tensorboard=not args.no_tensorboard)
        if rows:
            last = rows[-1]
            print(f"{args.out}: {int(last['episodes'])} episodes, reward per episode {last['reward_mean']:.3f} "
                  f"(last batch), {last['wall_time']:.1f} s")
        else:
            print(f"{args.out}: already trained for {config.episodes} episodes; nothing to do (raise --episodes)")
        return 0

    return run_guarded(PROG, args.out, job)


if __name__ == "__main__":
    sys.exit(main())
