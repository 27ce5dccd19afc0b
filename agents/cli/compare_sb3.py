"""Train the same env with stable-baselines3 A2C (MLP) or sb3-contrib RecurrentPPO (LSTM, or any of our cores),
logged like our runs.

    python scripts/compare_sb3.py --algo a2c --env Plastic/Maze-v0 --episodes 3000 --seed 0 --out runs/maze-sb3-a2c-0
    python scripts/compare_sb3.py --algo recurrent-ppo --env Plastic/Maze-v0 --episodes 3000 --out runs/maze-rppo-0
    python scripts/compare_sb3.py --algo recurrent-ppo --core modulated --hidden 64 --env Plastic/Maze-v0 \
        --episodes 3000 --out runs/maze-rppo-modulated-0
    python scripts/plot.py runs/maze-* --x wall_time --out maze_vs_sb3.png

``--core`` puts that plastic_core core in RecurrentPPO instead of its LSTM (``agents.sb3.PlasticPolicy``). The run
directory gets config.json (core "sb3-a2c" / "sb3-recurrent-ppo" / "sb3-recurrent-ppo-<core>", so that plot.py
groups these runs apart from ours) and metrics.csv with one row per --batch finished episodes: iteration, episodes,
env_steps, reward_mean (mean reward per episode of those episodes), reward_std, wall_time. Reward per episode and
wall time are therefore comparable with scripts/train.py runs. The SB3 hyper-parameters are SB3's defaults except the
discount, which is the env's (0.9 for the Plastic/ envs); --resume is not supported.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import numpy as np

ALGOS = ("a2c", "recurrent-ppo")


PROG = "plastic-compare-sb3"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--algo", choices=ALGOS, required=True)
    p.add_argument("--env", required=True, help="env id, e.g. Plastic/Maze-v0")
    p.add_argument("--env-kwargs", type=json.loads, default=None, help="env kwargs as JSON")
    p.add_argument("--episodes", type=int, required=True, help="episodes to train on")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", required=True, help="run directory (must be new)")
    p.add_argument("--n-envs", type=int, default=8, help="parallel envs of the SB3 vector env (default 8)")
    p.add_argument("--batch", type=int, default=30, help="finished episodes per metrics row (default 30)")
    p.add_argument("--gamma", type=float, default=None, help="discount (default: the env's, see agents/config.py)")
    p.add_argument("--lr", type=float, default=None, help="learning rate (default: SB3's for the algorithm)")
    p.add_argument("--core", default=None, help="recurrent-ppo only: this plastic_core core (rnn, lstm, plastic, "
                   "modulated, retroactive, plastic_lstm) instead of SB3's LSTM (agents.sb3.PlasticPolicy)")
    p.add_argument("--hidden", type=int, default=64, help="with --core: the core's hidden units (default 64)")
    p.add_argument("--core-kwargs", type=json.loads, default=None, help="with --core: the core's options as JSON")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    return p.parse_args(argv)


def episode_length(env_id: str, env_kwargs: dict) -> int:
    """Steps of one episode of ``env_id`` (played once with random actions)."""
    import gymnasium as gym

    env = gym.make(env_id, **env_kwargs)
    env.reset(seed=0)
    env.action_space.seed(0)
    for steps in range(1, 1_000_001):
        _, _, terminated, truncated, _ = env.step(env.action_space.sample())
        if terminated or truncated:
            env.close()
            return steps
    raise ValueError(f"{env_id} did not end an episode within 1e6 steps")


def make_callback(log, batch: int, started: float):
    from stable_baselines3.common.callbacks import BaseCallback

    class MetricsCallback(BaseCallback):
        """Writes one metrics row per ``batch`` finished episodes (the Monitor wrapper's episode returns)."""

        def __init__(self) -> None:
            super().__init__()
            self.pending: list[float] = []
            self.rows = 0

        def _on_step(self) -> bool:
            for info in self.locals["infos"]:
                if "episode" in info:
                    self.pending.append(float(info["episode"]["r"]))
            while len(self.pending) >= batch:
                rewards, self.pending = np.array(self.pending[:batch]), self.pending[batch:]
                self.rows += 1
                log.write({
                    "iteration": self.rows, "episodes": self.rows * batch, "env_steps": self.num_timesteps,
                    "reward_mean": float(rewards.mean()), "reward_std": float(rewards.std(ddof=1)) if batch > 1
                    else 0.0, "wall_time": time.perf_counter() - started,
                })
            return True

    return MetricsCallback()


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    import torch

    torch.set_num_threads(1)
    import gymnasium as gym
    from stable_baselines3.common.env_util import make_vec_env

    import envs  # noqa: F401  (registers the Plastic/... ids)
    from agents.config import env_defaults
    from agents.logger import MetricsLog
    from agents.run import RunDir
    from agents.sb3 import make_model

    env_kwargs = dict(args.env_kwargs or {})
    try:
        if args.env not in gym.registry:
            raise ValueError(f"unknown env id {args.env!r}")
        for name in ("episodes", "n_envs", "batch"):
            if getattr(args, name) <= 0:
                raise ValueError(f"--{name.replace('_', '-')} must be positive")
        probe = gym.make(args.env, **env_kwargs)
        if not isinstance(probe.action_space, gym.spaces.Discrete):
            raise ValueError(f"incompatible env {args.env}: discrete actions expected, got {probe.action_space}")
        probe.close()
        steps = episode_length(args.env, env_kwargs)
        gamma = args.gamma if args.gamma is not None else env_defaults(args.env)["gamma"]
        name = "sb3-a2c" if args.algo == "a2c" else "sb3-recurrent-ppo"
        config = {
            "algo": name, "core": name, "policy": "MlpPolicy" if args.algo == "a2c" else "MlpLstmPolicy",
            "env_id": args.env, "env_kwargs": env_kwargs, "episodes": args.episodes, "seed": args.seed,
            "n_envs": args.n_envs, "batch": args.batch, "gamma": gamma, "lr": args.lr, "episode_length": steps,
        }
        if args.core is not None:
            config.update(core=f"{name}-{args.core}", policy="PlasticPolicy", sb3_core=args.core, hidden=args.hidden,
                          core_kwargs=args.core_kwargs or {})
        hyper = {"gamma": gamma, "seed": args.seed, "device": "cpu", "verbose": 0}
        if args.lr is not None:
            hyper["learning_rate"] = args.lr
        vec_env = make_vec_env(args.env, n_envs=args.n_envs, seed=args.seed, env_kwargs=env_kwargs)
        try:  # bad core settings and an impossible rollout buffer are refused here, before the run directory
            model = make_model(args.algo, vec_env, args.core, args.hidden, args.core_kwargs, **hyper)
            run = RunDir.create(args.out, config, how_to_continue="SB3 runs cannot be resumed: delete it to train "
                                "again, or choose another output directory")
        except BaseException:
            vec_env.close()
            raise
    except (ValueError, TypeError, OSError, MemoryError) as error:
        print(f"{PROG}: error: {error}", file=sys.stderr)
        return 2

    started = time.perf_counter()
    try:
        with MetricsLog(run.path) as log:
            callback = make_callback(log, args.batch, started)
            model.learn(total_timesteps=args.episodes * steps, callback=callback,
                        progress_bar=not args.no_progress and sys.stderr.isatty())
        model.save(run.path / "sb3_model.zip")
    except KeyboardInterrupt:  # an SB3 run cannot resume: leave nothing that blocks running it again
        run.discard()
        print(f"\n{PROG}: interrupted; {args.out} removed (SB3 runs cannot resume)", file=sys.stderr)
        return 130
    except BaseException:
        run.discard()
        raise
    finally:
        run.release()
        vec_env.close()
    elapsed = time.perf_counter() - started
    print(f"{args.out}: {config['core']}, {callback.rows * args.batch} episodes logged in {elapsed:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
