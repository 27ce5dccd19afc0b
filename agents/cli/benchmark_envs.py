"""Environment speed: transitions per second of the single env, SyncVectorEnv and the native vector env.

    plastic bench envs                       # every RL env, B = 30 and 1024
    plastic bench envs --envs Plastic/Maze-v0 --steps 50000 --batch-sizes 30 1024

Random actions (drawn before timing). Each measurement runs at least ``--steps`` transitions (B per vector step)
and at least one full episode plus its autoreset, so that reset costs count. Prints a Markdown table; the measurement is
``agents.benchmarks.envs.env_rates``.
"""

from __future__ import annotations

import argparse
import platform
import sys

import gymnasium as gym
import numpy as np

import envs
from agents.benchmarks.envs import available_rl_envs, env_rates, markdown_table


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--envs", nargs="+", default=None, help="env ids (default: every RL env)")
    parser.add_argument("--steps", type=int, default=200_000, help="minimum transitions per measurement")
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[30, 1024])
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    env_ids = args.envs or available_rl_envs()
    unknown = [env_id for env_id in env_ids if env_id not in gym.registry]
    if unknown:
        parser.error(f"unknown env ids {unknown}; registered: {list(envs.RL_ENV_IDS)}")
    if args.steps < 1 or any(B < 1 for B in args.batch_sizes):
        parser.error("--steps and --batch-sizes must be positive")

    results = {env_id: env_rates(env_id, args.batch_sizes, args.steps, args.seed) for env_id in env_ids}
    print(
        f"Transitions per second (random actions; {platform.processor() or platform.machine()}, "
        f"Python {platform.python_version()}, NumPy {np.__version__}, Gymnasium {gym.__version__}).\n"
    )
    print(markdown_table(results, args.batch_sizes))
    return 0


if __name__ == "__main__":
    sys.exit(main())
