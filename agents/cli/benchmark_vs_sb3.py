"""Training throughput of our A2C trainer next to sb3-contrib RecurrentPPO (LSTM, 256 units), in one run.

    plastic bench sb3                                  # cue-reward and maze, ~20 s per row
    plastic bench sb3 --envs Plastic/Maze-v0 --seconds 10 --json runs/vs_sb3.json
    plastic bench sb3 --cores modulated --hidden 64 --sb3-cores modulated   # + RecurrentPPO with our
                                                                         # modulated core (agents.sb3)

Each row trains for about ``--seconds`` of wall time (after one untimed warm-up unit) on the same env, with the
same env settings, on the CPU with ``--threads`` torch threads, and reports env steps per second (every step of
every parallel episode counts), training included:

* ours (``retroactive``, ``rnn``): whole ``agents.a2c.A2CTrainer.train_iteration`` calls, each B=30 episodes in
  lock-step on the native vector env: acting, forward, backward and the Adam update (the env's default N: 100 on
  the maze, 200 on cue-reward), as in scripts/benchmark.py.
* ``sb3 RecurrentPPO``: ``model.learn`` one rollout at a time (n_steps x n_envs env steps, then its PPO epochs) on
  SB3's ``make_vec_env`` with ``--n-envs`` envs (8), ``MlpLstmPolicy`` with ``lstm_hidden_size=256``, SB3's defaults
  otherwise except the env's discount (as scripts/compare_sb3.py builds it); with ``--sb3-cores``, also
  RecurrentPPO with ``agents.sb3.PlasticPolicy`` and each of those cores (``--sb3-hidden`` units), the same way.

The measurements are ``agents.benchmarks.sb3.measure_ours`` and ``measure_sb3``.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
from pathlib import Path

import gymnasium as gym
import torch

from agents.benchmarks.sb3 import ENVS, OUR_CORES, measure_ours, measure_sb3


def format_row(result: dict) -> str:
    return f"| {result['env']} | {result['trainer']} | {result['env_steps_per_s']:,.0f} | {result['seconds']:.1f} |"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--envs", default=",".join(ENVS), help=f"comma-separated env ids (default {','.join(ENVS)})")
    parser.add_argument("--cores", default=",".join(OUR_CORES), help="our cores, comma-separated (default "
                        f"{','.join(OUR_CORES)})")
    parser.add_argument("--hidden", type=int, default=None, help="our cores' hidden units (default: the env's)")
    parser.add_argument("--sb3-cores", default="", help="also RecurrentPPO with these of our cores, comma-separated "
                        "(agents.sb3.PlasticPolicy; default none)")
    parser.add_argument("--sb3-hidden", type=int, default=64, help="hidden units of --sb3-cores (default 64)")
    parser.add_argument("--seconds", type=float, default=20.0, help="timed wall time per row (default 20)")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1)")
    parser.add_argument("--n-envs", type=int, default=8, help="parallel envs of the SB3 vector env (default 8)")
    parser.add_argument("--json", type=Path, default=None, help="also write the results to this JSON file")
    args = parser.parse_args(argv)
    env_ids = [name.strip() for name in args.envs.split(",") if name.strip()]
    cores = [name.strip() for name in args.cores.split(",") if name.strip()]
    sb3_cores = [name.strip() for name in args.sb3_cores.split(",") if name.strip()]
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
            results.append(measure_ours(env_id, core, args.seconds, args.hidden))
            print(format_row(results[-1]), flush=True)
        for core in (None, *sb3_cores):
            results.append(measure_sb3(env_id, args.seconds, args.n_envs, core, args.sb3_hidden))
            print(format_row(results[-1]), flush=True)
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    sys.exit(main())
