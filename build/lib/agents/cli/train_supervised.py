"""Meta-train a plastic network (or a baseline) on a supervised Plastic/ task by backpropagation through episodes.

    python scripts/train_supervised.py --env Plastic/PatternCompletion-v0 --episodes 32000 --out runs/completion
    python scripts/train_supervised.py --env Plastic/ReversalAssociation-v0 --model plastic --lr 0.1 \\
        --episodes 64000 --model-kwargs '{"nonnegative_alpha": true}' --out runs/reversal-pos
    python scripts/train_supervised.py --env Plastic/OmniglotOneShot-v0 --data ~/omniglot/images_background.zip \\
        --episodes 100000 --out runs/omniglot
    python scripts/train_supervised.py --out runs/completion --resume --episodes 64000   # continue / extend

Settings left out take the env's defaults (agents/supervised.py SUPERVISED_DEFAULTS; the model defaults to the
task's plastic network, see agents/supervised_models.py). The run directory gets config.json, metrics.csv (one row
per iteration of --batch episodes: loss, reward_mean, accuracy or bit_error, grad_norm), TensorBoard logs in tb/
and checkpoint.pt, as for scripts/train.py. With --eval-episodes the final model is scored on fresh episodes
(held-out classes/images for Omniglot and natural images) with frozen weights.
"""

from __future__ import annotations

import argparse
import sys

from agents.checks import check_device
from agents.cli.run_options import add_run_arguments, json_object, resume_flags, run_guarded, run_settings
from agents.supervised import (
    RESUMABLE_FIELDS,
    SupervisedConfig,
    SupervisedTrainer,
    evaluate,
    make_supervised_config,
    train_supervised,
)

# flag destination -> SupervisedConfig field
FIELDS = {
    "env": "env_id", "model": "model", "episodes": "episodes", "seed": "seed", "batch": "batch", "lr": "lr",
    "clip": "clip", "env_kwargs": "env_kwargs", "model_kwargs": "model_kwargs", "data": "data",
    "checkpoint_every": "checkpoint_every", "device": "device",
}


def add_supervised_arguments(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Add the options only the supervised tasks have (model, data, evaluation) to ``p``."""
    p.add_argument("--model", help="network: plastic (default), rnn, lstm; flp, online-sgd, oml for the 2020 tasks")
    p.add_argument("--model-kwargs", type=json_object, help='model keyword arguments as JSON, e.g. \'{"hidden": 2}\'')
    p.add_argument("--data", help="Omniglot folder or zip (Omniglot tasks); image folder / CIFAR-10 copy "
                                  "(ImageReconstruction). Default: the Omniglot subset shipped with the package / "
                                  "scikit-image images")
    p.add_argument("--eval-episodes", type=int, default=0,
                   help="after training, score the model on this many fresh test episodes (default 0: skip)")
    return p


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_run_arguments(p, env_help="supervised env id, e.g. Plastic/PatternCompletion-v0",
                      env_kwargs_example='{"n_bits": 8}', batch_help="episodes per update",
                      seed_help="seed of the weights and of the episodes (default 0)")
    return add_supervised_arguments(p).parse_args(argv)


def build_config(args: argparse.Namespace) -> SupervisedConfig:
    settings = run_settings(args, FIELDS, required=("env", "episodes"), resumable=RESUMABLE_FIELDS)
    if args.resume:
        return SupervisedConfig.from_dict(settings)
    env_id, episodes, model = settings.pop("env_id"), settings.pop("episodes"), settings.pop("model", None)
    return make_supervised_config(env_id, model, episodes, **settings)


def run(args: argparse.Namespace) -> int:
    """Train (and optionally evaluate) as ``args`` say; returns the exit status (0 ok, 1 diverged, 2 bad input).

    plastic-train calls this with its own parsed arguments for supervised env ids.
    """
    import torch

    torch.set_num_threads(getattr(args, "threads", 1))

    def job() -> int:
        policy = resume_flags(args)
        config = build_config(args)
        check_device(config.device)
        trainer = SupervisedTrainer(config)
        try:
            with policy:
                rows = train_supervised(config, args.out, resume=args.resume,
                                        progress=False if args.no_progress else None,
                                        tensorboard=not args.no_tensorboard, trainer=trainer)
            scores = evaluate(trainer, args.eval_episodes) if args.eval_episodes > 0 else None
        finally:
            trainer.close()
        if rows:
            last = rows[-1]
            score = next((k for k in ("accuracy", "bit_error") if k in last), None)
            extra = f", {score} {last[score]:.4f}" if score else ""
            print(f"{args.out}: {int(last['episodes'])} episodes, loss {last['loss']:.5f}{extra} (last batch), "
                  f"{last['wall_time']:.1f} s")
        else:
            print(f"{args.out}: already trained for {config.episodes} episodes; nothing to do (raise --episodes)")
        if scores is not None:
            parts = [f"{key} {scores[key]:.5f} [{scores[key + '_lo']:.5f}, {scores[key + '_hi']:.5f}]"
                     for key in scores if key != "episodes" and not key.endswith(("_lo", "_hi"))]
            print(f"evaluation on {args.eval_episodes} test episodes (frozen weights, 95% CI): {'; '.join(parts)}")
        return 0

    return run_guarded("plastic-train", args.out, job)


def main(argv: list[str] | None = None) -> int:
    return run(parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
