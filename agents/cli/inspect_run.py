"""What a trained plastic network does within an episode (agents/inspection.py draws it).

    plastic inspect runs/maze-modulated                 # figures in runs/maze-modulated/inspect/
    plastic inspect RUN --episodes 300 --out figs/run1  # more episodes for the event-triggered average

Plays fresh episodes with the run's last checkpoint, weights frozen (the Hebbian traces still change), and writes:

- timeline.png: one episode's reward, M(t) (per neuron as an image for fan-out modulation), mean |Hebb|(t) and
  the eligibility trace's norm, with the task's events marked (maze: reward hits, i.e. teleports; cue-reward:
  target and other cues, rewarded and punished go steps);
- event_average.png (modulated and retroactive cores): M(t) around every reward hit (maze) or rewarded go step
  (cue-reward) of all the episodes, mean with its spread;
- parameters.png: the learned eta (eligibility rate), histograms of w and alpha, one episode's final Hebb;
- inspection.json: the numbers behind them.
"""

from __future__ import annotations

import argparse
import sys

PROG = "plastic inspect"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("run", help="a trained A2C run directory with a plastic core (plastic, modulated, retroactive)")
    p.add_argument("--out", help="folder for the figures (default RUN/inspect)")
    p.add_argument("--episodes", type=int, default=100, help="fresh episodes to play, one batch (default 100)")
    p.add_argument("--seed", type=int, default=0, help="seed of the episodes and the actions (default 0)")
    p.add_argument("--before", type=int, default=5, help="steps before each event in the average (default 5)")
    p.add_argument("--after", type=int, default=10, help="steps after each event in the average (default 10)")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    from agents.inspection import inspect_run

    try:
        if args.episodes < 1 or args.episodes > 10_000:
            raise ValueError(f"--episodes must be in 1..10000, got {args.episodes}")
        if min(args.before, args.after) < 0:
            raise ValueError("--before and --after must be at least 0")
        summary = inspect_run(args.run, args.out, args.episodes, args.seed, args.before, args.after)
    except (ValueError, OSError) as error:
        print(f"{PROG}: error: {error}", file=sys.stderr)
        return 2
    print(f"{summary['core']} on {summary['env_id']}: mean reward per episode {summary['mean_reward']:.2f} over "
          f"{summary['episodes']} episodes; events: "
          + ", ".join(f"{k} {v}" for k, v in summary["events"].items()))
    if "event_average" in summary:
        average = summary["event_average"]
        peak = max(range(len(average["lags"])), key=lambda i: abs(average["mean"][i]))
        print(f"M(t) around {average['count']} {average['trigger']} events: largest mean {average['mean'][peak]:+.3f} "
              f"at lag {average['lags'][peak]:+d}")
    print("wrote " + ", ".join(summary["figures"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
