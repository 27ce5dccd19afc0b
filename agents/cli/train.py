"""Train an A2C agent with a recurrent or plastic core on a Plastic/ meta-RL env, or meta-train a network on a
supervised Plastic/ task (the supervised ids are handed to scripts/train_supervised.py, with its --model,
--model-kwargs, --data and --eval-episodes options).

    python scripts/train.py --env Plastic/Maze-v0 --core retroactive --hidden 100 --episodes 3000 --batch 30 \\
        --seed 0 --out runs/maze-retro
    python scripts/train.py --out runs/maze-retro --resume                 # continue a killed run
    python scripts/train.py --out runs/maze-retro --resume --episodes 6000 # ... or extend a finished one

Settings left out take the env's defaults (TASKS.md section 2; see agents/config.py). The run directory gets
config.json, metrics.csv (one row per iteration of --batch episodes), TensorBoard logs in tb/ and checkpoint.pt.

    python scripts/train.py --env Plastic/PatternCompletion-v0 --episodes 32000 --out runs/completion
"""

from __future__ import annotations

import argparse
import sys

from agents.a2c import train
from agents.cli import train_supervised
from agents.cli.run_options import add_run_arguments, json_object, run_guarded, run_settings
from agents.config import A2CConfig, make_config
from agents.run import RunDir
from envs import SUPERVISED_ENV_IDS

PROG = "plastic-train"

# A2C-only flags, refused for supervised env ids (whose network is chosen with --model).
A2C_ONLY = ("core", "core_kwargs", "hidden", "gamma", "entropy", "value_coef", "n_step", "eval_every")

# flag destination -> A2CConfig field
FIELDS = {
    "env": "env_id", "core": "core", "episodes": "episodes", "seed": "seed", "hidden": "hidden", "batch": "batch",
    "lr": "lr", "gamma": "gamma", "entropy": "entropy_coef", "value_coef": "value_coef", "clip": "clip",
    "n_step": "n_step", "env_kwargs": "env_kwargs", "core_kwargs": "core_kwargs",
    "checkpoint_every": "checkpoint_every", "device": "device", "eval_every": "eval_every",
}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_run_arguments(p, env_help="env id, e.g. Plastic/Maze-v0, Plastic/CueReward-v0, Plastic/ReversalBandit-v0",
                      env_kwargs_example='{"size": 9}', batch_help="episodes per update, played in lock-step",
                      seed_help="seed of the weights, the episodes and the action sampling (default 0)")
    a2c = p.add_argument_group("A2C agents (RL envs)")
    a2c.add_argument("--core", help="rnn, lstm, plastic, modulated, retroactive, ...")
    a2c.add_argument("--core-kwargs", type=json_object, help="core keyword arguments as JSON")
    a2c.add_argument("--hidden", type=int, help="hidden units of the core")
    a2c.add_argument("--gamma", type=float, help="discount")
    a2c.add_argument("--entropy", type=float, help="entropy bonus coefficient")
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
    settings = run_settings(args, FIELDS, required=("env", "core", "episodes"))
    if args.resume:
        return A2CConfig.from_dict(settings)
    env_id, core, episodes = settings.pop("env_id"), settings.pop("core"), settings.pop("episodes")
    return make_config(env_id, core, episodes, **settings)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        supervised = is_supervised(args)
    except (ValueError, TypeError) as error:
        print(f"{PROG}: error: {error}", file=sys.stderr)
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
        config = build_config(args)
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
