"""Training throughput of our A2C trainer next to sb3-contrib RecurrentPPO (LSTM, 256 units), in one run.

    python scripts/benchmark_vs_sb3.py                                  # cue-reward and maze, ~20 s per row
    python scripts/benchmark_vs_sb3.py --envs Plastic/Maze-v0 --seconds 10 --json runs/vs_sb3.json

Each row trains for about ``--seconds`` of wall time (after one untimed warm-up unit) on the same env, with the
same env settings, on the CPU with ``--threads`` torch threads, and reports env steps per second (every step of
every parallel episode counts), training included:

* ours (``retroactive``, ``rnn``): whole ``agents.a2c.A2CTrainer.train_iteration`` calls, each B=30 episodes in
  lock-step on the native vector env: acting, forward, backward and the Adam update (the env's default N: 100 on
  the maze, 200 on cue-reward), as in scripts/benchmark.py.
* ``sb3 RecurrentPPO``: ``model.learn`` one rollout at a time (n_steps x n_envs env steps, then its PPO epochs) on
  SB3's ``make_vec_env`` with ``--n-envs`` envs (8), ``MlpLstmPolicy`` with ``lstm_hidden_size=256``, SB3's defaults
  otherwise except the env's discount (as scripts/compare_sb3.py builds it).
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from collections.abc import Callable
from pathlib import Path

import gymnasium as gym
import torch

import envs  # noqa: F401  (registers the Plastic/... ids)
from agents.a2c import A2CTrainer
from agents.config import env_defaults, make_config

ENVS = ("Plastic/CueReward-v0", "Plastic/Maze-v0")
OUR_CORES = ("retroactive", "rnn")
SB3_NAME = "sb3 RecurrentPPO (LSTM 256)"


def time_units(unit: Callable[[], int], seconds: float) -> tuple[int, float]:
    """Run ``unit`` (returns the env steps it took) once untimed, then until ``seconds`` pass: (steps, elapsed)."""
    unit()
    steps, start = 0, time.perf_counter()
    while True:
        steps += unit()
        elapsed = time.perf_counter() - start
        if elapsed >= seconds:
            return steps, elapsed


def measure_ours(env_id: str, core: str, seconds: float) -> dict:
    """Env steps per second of ``A2CTrainer.train_iteration`` (B episodes in lock-step, training included)."""
    config = make_config(env_id, core, episodes=10**9, seed=0)
    trainer = A2CTrainer(config)
    iteration = 0

    def unit() -> int:
        nonlocal iteration
        row = trainer.train_iteration(iteration)
        iteration += 1
        return config.batch * int(row["episode_length"])

    steps, elapsed = time_units(unit, seconds)
    return {"env": env_id, "trainer": f"ours {core} (B={config.batch}, N={config.hidden})", "env_steps": steps,
            "seconds": elapsed, "env_steps_per_s": steps / elapsed}


def measure_sb3(env_id: str, seconds: float, n_envs: int) -> dict:
    """Env steps per second of RecurrentPPO ``learn``, one rollout (n_steps x n_envs steps + its update) per unit."""
    from sb3_contrib import RecurrentPPO
    from stable_baselines3.common.env_util import make_vec_env

    vec_env = make_vec_env(env_id, n_envs=n_envs, seed=0)
    model = RecurrentPPO("MlpLstmPolicy", vec_env, policy_kwargs={"lstm_hidden_size": 256},
                         gamma=env_defaults(env_id)["gamma"], seed=0, device="cpu", verbose=0)
    rollout = model.n_steps * n_envs

    def unit() -> int:
        before = model.num_timesteps
        model.learn(total_timesteps=rollout, reset_num_timesteps=False)
        return model.num_timesteps - before

    steps, elapsed = time_units(unit, seconds)
    vec_env.close()
    return {"env": env_id, "trainer": f"{SB3_NAME}, {n_envs} envs", "env_steps": steps, "seconds": elapsed,
            "env_steps_per_s": steps / elapsed}


def format_row(result: dict) -> str:
    return f"| {result['env']} | {result['trainer']} | {result['env_steps_per_s']:,.0f} | {result['seconds']:.1f} |"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--envs", default=",".join(ENVS), help=f"comma-separated env ids (default {','.join(ENVS)})")
    parser.add_argument("--cores", default=",".join(OUR_CORES), help="our cores, comma-separated (default "
                        f"{','.join(OUR_CORES)})")
    parser.add_argument("--seconds", type=float, default=20.0, help="timed wall time per row (default 20)")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1)")
    parser.add_argument("--n-envs", type=int, default=8, help="parallel envs of the SB3 vector env (default 8)")
    parser.add_argument("--json", type=Path, default=None, help="also write the results to this JSON file")
    args = parser.parse_args(argv)
    env_ids = [name.strip() for name in args.envs.split(",") if name.strip()]
    cores = [name.strip() for name in args.cores.split(",") if name.strip()]
    unknown = [name for name in env_ids if name not in gym.registry]
    if unknown:
        parser.error(f"unknown env ids {unknown}")
    if args.seconds <= 0 or args.threads <= 0 or args.n_envs <= 0:
        parser.error("--seconds, --threads and --n-envs must be positive")
    torch.set_num_threads(args.threads)

    print(f"CPU ({platform.processor() or platform.machine()}), {args.threads} torch thread(s), "
          f"~{args.seconds:g} s per row after one warm-up unit\n")
    print("| env | trainer | env steps/s | seconds measured |")
    print("| --- | --- | ---: | ---: |")
    results = []
    for env_id in env_ids:
        for core in cores:
            results.append(measure_ours(env_id, core, args.seconds))
            print(format_row(results[-1]), flush=True)
        results.append(measure_sb3(env_id, args.seconds, args.n_envs))
        print(format_row(results[-1]), flush=True)
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    sys.exit(main())
