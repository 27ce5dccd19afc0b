"""Play N episodes with a trained agent's frozen weights and report the mean reward per episode with a 95% CI.

    python scripts/evaluate.py runs/maze-retro --episodes 300
    python scripts/evaluate.py runs/maze-retro --episodes 300 --json
    python scripts/evaluate.py runs/maze-retro --random          # the random policy on the run's env
    python scripts/evaluate.py --random --env Plastic/ReversalBandit-v0

Weights do not change (torch.no_grad); the plastic traces still do: that is how these agents learn within an
episode. Evaluation episodes are drawn apart from the training ones.
"""

from __future__ import annotations

import argparse
import json
import sys

import numpy as np


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("run", nargs="?", help="run directory written by scripts/train.py")
    p.add_argument("--episodes", type=int, default=300, help="episodes to play (default 300)")
    p.add_argument("--batch", type=int, default=30, help="episodes played in lock-step (default 30)")
    p.add_argument("--seed", type=int, default=0, help="seed of the evaluation episodes and actions (default 0)")
    p.add_argument("--greedy", action="store_true", help="take the most likely action instead of sampling")
    p.add_argument("--random", action="store_true", help="evaluate the uniformly random policy instead")
    p.add_argument("--env", help="env id (only with --random and no run)")
    p.add_argument("--env-kwargs", type=json.loads, default=None, help="env kwargs as JSON (with --env)")
    p.add_argument("--device", default="cpu", help="torch device (default cpu)")
    p.add_argument("--json", action="store_true", help="print the result as one JSON object")
    args = p.parse_args(argv)
    if args.run is None and not (args.random and args.env):
        p.error("give a run directory, or --random with --env")
    if args.env is not None and args.run is not None:
        p.error("--env is for --random without a run; a run evaluates on its own env")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    import torch

    from agents.a2c import load_agent
    from agents.checks import check_device, one_line
    from agents.evaluation import evaluate_agent, evaluate_random, mean_confidence_interval
    from agents.run import RunDir

    torch.set_num_threads(1)
    try:
        check_device(args.device)
        if args.run is not None:
            run_config = RunDir.read_config(args.run)
            env_id, env_kwargs = run_config.get("env_id"), run_config.get("env_kwargs", {})
        else:
            env_id, env_kwargs = args.env, args.env_kwargs or {}
        if args.random:
            rewards = evaluate_random(env_id, args.episodes, env_kwargs, seed=args.seed, batch=args.batch)
            policy = "random"
        else:
            model, config = load_agent(args.run, device=args.device)
            rewards = evaluate_agent(model, env_id, args.episodes, env_kwargs, seed=args.seed, batch=args.batch,
                                     greedy=args.greedy)
            policy = f"{config.core} core" + (", greedy" if args.greedy else "")
    except (ValueError, TypeError, OSError) as error:
        print(f"plastic-evaluate: error: {one_line(error)}", file=sys.stderr)
        return 2
    mean, lo, hi = mean_confidence_interval(rewards)
    result = {
        "run": args.run, "env_id": env_id, "env_kwargs": env_kwargs, "policy": policy, "episodes": int(rewards.size),
        "seed": args.seed, "reward_mean": mean, "ci95": [lo, hi], "reward_std": float(np.std(rewards, ddof=1))
        if rewards.size > 1 else 0.0,
    }
    if args.json:
        print(json.dumps(result))
    else:
        where = args.run or env_id
        print(f"{where}: {policy}, {rewards.size} episodes of {env_id}: reward per episode {mean:.3f} "
              f"(95% CI [{lo:.3f}, {hi:.3f}])")
    return 0


if __name__ == "__main__":
    sys.exit(main())
