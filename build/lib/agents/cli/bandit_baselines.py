"""Reference bandit policies and trained agents on the same reversal-bandit episodes: reward and regret per episode.

    python scripts/bandit_baselines.py                                   # the reference policies only
    python scripts/bandit_baselines.py runs/reproduce/bandit/*-s* --episodes 3000 --out results/bandit_eval.md

Every policy plays the same ``--episodes`` episodes: a ``ReversalBanditVectorEnv`` of ``--num-envs`` episodes
reset with ``--seed`` once and then continued (the episode draws do not depend on the actions, so every policy
sees the same arm probabilities, reversals and reward uniforms). Regret is the pseudo-regret
sum_t (max_a p_t[a] - p_t[a_t]). The references are those of ``agents.bandit_baselines`` (random, Thompson,
discounted Thompson, UCB1, change-detecting Thompson, the oracle that knows the best arm at each step). A trained
agent (a run directory of scripts/train.py on Plastic/ReversalBandit-v0) plays with frozen weights, sampling its
actions (``--greedy``: most likely action); its plastic/recurrent state starts afresh each episode. The env
settings are the runs' own (they must all agree) unless ``--env-kwargs`` is given for reference policies only.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

import numpy as np


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("runs", nargs="*", help="run directories of A2C agents trained on Plastic/ReversalBandit-v0")
    p.add_argument("--episodes", type=int, default=3000, help="episodes per policy (default 3000)")
    p.add_argument("--num-envs", type=int, default=100, help="episodes played in lock-step (default 100)")
    p.add_argument("--seed", type=int, default=12345, help="seed of the episodes and the policies' sampling")
    p.add_argument("--env-kwargs", default=None, help="env kwargs as JSON (default: the runs' own, or the env's)")
    p.add_argument("--greedy", action="store_true", help="agents take their most likely action")
    p.add_argument("--out", default=None, help="Markdown file for the table")
    p.add_argument("--json", action="store_true", help="print the results as JSON")
    return p.parse_args(argv)


def reference_policies() -> dict:
    from agents.bandit_baselines import UCB1, ChangeDetectingThompson, OraclePolicy, RandomPolicy, ThompsonSampling

    return {
        "random": RandomPolicy(),
        "Thompson": ThompsonSampling(),
        "discounted Thompson (0.9)": ThompsonSampling(discount=0.9),
        "UCB1": UCB1(),
        "change-detecting Thompson": ChangeDetectingThompson(),
        "oracle (knows the best arm)": OraclePolicy(),
    }


def play_agent(model, n_episodes: int, num_envs: int, seed: int, env_kwargs: dict, greedy: bool):
    """Per-episode reward and pseudo-regret (n_episodes,) of a trained agent, on run_bandit_policy's episodes."""
    import torch

    from agents.a2c import choose_actions
    from agents.bandit_baselines import BanditRunResult
    from envs.bandit import ReversalBanditVectorEnv

    env = ReversalBanditVectorEnv(num_envs=num_envs, **env_kwargs)
    rows = np.arange(num_envs)
    generator = torch.Generator().manual_seed(seed)
    rewards, regrets = [], []
    model.eval()
    with torch.no_grad():
        for batch in range(math.ceil(n_episodes / num_envs)):
            obs, info = env.reset(seed=seed if batch == 0 else None)
            state = model.initial_state(num_envs)
            total, regret = np.zeros(num_envs), np.zeros(num_envs)
            truncated = np.zeros(num_envs, dtype=bool)
            while not truncated.any():
                h, state = model.core.step(torch.as_tensor(obs, dtype=torch.float32), state)
                actions = choose_actions(model.policy(h), generator, greedy).numpy()
                probs = info["arm_probabilities"]
                regret += probs.max(axis=1) - probs[rows, actions]
                obs, reward, _, truncated, info = env.step(actions)
                total += reward
            rewards.append(total)
            regrets.append(regret)
    env.close()
    return BanditRunResult(np.concatenate(rewards)[:n_episodes], np.concatenate(regrets)[:n_episodes])


def t_interval(values: np.ndarray) -> tuple[float, float]:
    from scipy import stats

    if len(values) < 2:
        return float(np.mean(values)), math.nan
    half = stats.t.ppf(0.975, len(values) - 1) * np.std(values, ddof=1) / math.sqrt(len(values))
    return float(np.mean(values)), float(half)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    import torch

    torch.set_num_threads(1)
    from agents.a2c import load_agent
    from agents.bandit_baselines import run_bandit_policy

    agents = []
    for run in args.runs:
        model, config = load_agent(run)
        if config.env_id != "Plastic/ReversalBandit-v0":
            print(f"bandit_baselines.py: error: {run} was trained on {config.env_id}", file=sys.stderr)
            return 2
        agents.append((run, model, config))
    kwargs_set = {json.dumps(c.env_kwargs, sort_keys=True) for _, _, c in agents}
    if args.env_kwargs is not None:
        env_kwargs = json.loads(args.env_kwargs)
        if agents and kwargs_set != {json.dumps(env_kwargs, sort_keys=True)}:
            print("bandit_baselines.py: note: evaluating agents on env settings other than their training ones",
                  file=sys.stderr)
    elif len(kwargs_set) > 1:
        print(f"bandit_baselines.py: error: the runs were trained on different env settings {kwargs_set}; give "
              "--env-kwargs", file=sys.stderr)
        return 2
    else:
        env_kwargs = json.loads(kwargs_set.pop()) if kwargs_set else {}

    results = []
    for name, policy in reference_policies().items():
        res = run_bandit_policy(policy, args.episodes, num_envs=args.num_envs, seed=args.seed, **env_kwargs)
        results.append({"policy": name, "kind": "reference", **res.summary()})
    for run, model, config in agents:
        res = play_agent(model, args.episodes, args.num_envs, args.seed, env_kwargs, args.greedy)
        results.append({"policy": f"{config.core} (hidden {config.hidden}) seed {config.seed}", "kind": "agent",
                        "core": config.core, "hidden": config.hidden, "run": run, **res.summary()})

    lines = [
        f"Reversal bandit {env_kwargs or '(default settings)'}: {args.episodes} episodes, seed {args.seed}; the same "
        "episodes for every policy. Mean per episode ± 95% CI over episodes.", "",
        "| policy | reward per episode | regret per episode |", "|---|---|---|",
    ]
    for r in results:
        lines.append(f"| {r['policy']} | {r['reward_mean']:.2f} ± {r['reward_ci95']:.2f} | "
                     f"{r['regret_mean']:.2f} ± {r['regret_ci95']:.2f} |")
    cores = list(dict.fromkeys(r["core"] for r in results if r["kind"] == "agent"))
    if cores:
        lines += ["", "Agents pooled per core: mean over training seeds ± 95% t-interval over seeds.", "",
                  "| core | seeds | reward per episode | regret per episode |", "|---|---|---|---|"]
        for core in cores:
            rows = [r for r in results if r.get("core") == core]
            rew = t_interval(np.array([r["reward_mean"] for r in rows]))
            reg = t_interval(np.array([r["regret_mean"] for r in rows]))
            lines.append(f"| {core} (hidden {rows[0]['hidden']}) | {len(rows)} | {rew[0]:.2f} ± {rew[1]:.2f} | "
                         f"{reg[0]:.2f} ± {reg[1]:.2f} |")
    table = "\n".join(lines)
    if args.json:
        print(json.dumps(results, indent=1))
    else:
        print(table)
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(table + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
