"""Plot restored image halves of trained ImageReconstruction runs (Miconi et al. 2018, natural images).

    python scripts/plot_reconstruction.py RUN_DIR [RUN_DIR ...] --out results/supervised_2018_images.png
    python scripts/plot_reconstruction.py runs/plastic runs/lstm --labels plastic LSTM --images 4 --seed 3

Every run sees the same ``--images`` test episodes (held-out images, ``split="test"``, drawn with ``--seed``).
One row per episode: the probe shown at the last step (the image with its top or bottom half zeroed), the
original, then each run's output at the last step (frozen weights; the plastic state runs as in training).
Gray scale from -1 (black) to 1 (white), the pixel range of the env.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

from agents.supervised import load_supervised_model, make_supervised_env


def run_label(config) -> str:
    """A short column title from a run's config: the model name and its keyword arguments."""
    extra = ", ".join(f"{k}={v}" for k, v in config.model_kwargs.items())
    return f"{config.model} ({extra})" if extra else config.model


def reconstructions(run_dirs: list[Path], n_images: int, seed: int
                    ) -> tuple[np.ndarray, np.ndarray, list[np.ndarray], list[str], int]:
    """(probes (B, P), originals (B, P), one (B, P) output per run, labels, image side S) at the episode's last step.

    All runs must share the env settings (image size and episode layout), so that they see the same episodes.
    """
    outputs, labels, first_kwargs = [], [], None
    probes = originals = None
    side = 0
    for run_dir in run_dirs:
        model, config = load_supervised_model(run_dir)
        if config.env_id != "Plastic/ImageReconstruction-v0":
            raise ValueError(f"{run_dir} is a {config.env_id} run; this script plots ImageReconstruction runs")
        if first_kwargs is None:
            first_kwargs = config.env_kwargs
            env = make_supervised_env(config.env_id, n_images, {**config.env_kwargs, "split": "test"}, config.data)
            batch = env.sample_episodes(seed)
            side = env.task.image_size
            env.close()
            probes, originals = batch["inputs"][-1], batch["targets"][-1]
            inputs = torch.from_numpy(batch["inputs"])
        elif config.env_kwargs != first_kwargs:
            raise ValueError(f"{run_dir} has env settings {config.env_kwargs}, the first run {first_kwargs}: "
                             "plot runs of the same task together")
        model.eval()
        with torch.no_grad():
            outputs.append(model(inputs)[-1].clamp(-1, 1).numpy())
        labels.append(run_label(config))
    return probes, originals, outputs, labels, side


def plot(probes: np.ndarray, originals: np.ndarray, outputs: list[np.ndarray], labels: list[str], side: int,
         out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    columns = [("probe (half missing)", probes), ("original", originals), *zip(labels, outputs, strict=True)]
    rows = len(probes)
    fig, axes = plt.subplots(rows, len(columns), figsize=(1.9 * len(columns), 1.9 * rows), squeeze=False)
    for col, (title, images) in enumerate(columns):
        for row in range(rows):
            ax = axes[row, col]
            ax.imshow(images[row].reshape(side, side), cmap="gray", vmin=-1, vmax=1, interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            if row == 0:
                ax.set_title(title, fontsize=8)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=120)
    plt.close(fig)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("runs", nargs="+", help="ImageReconstruction run directories (same env settings)")
    p.add_argument("--labels", nargs="+", help="column titles, one per run (default: model and its kwargs)")
    p.add_argument("--images", type=int, default=4, help="number of test episodes (rows), default 4")
    p.add_argument("--seed", type=int, default=0, help="seed of the test episodes (default 0)")
    p.add_argument("--out", default="reconstruction.png", help="PNG path (default reconstruction.png)")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        if args.images < 1:
            raise ValueError(f"--images must be positive, got {args.images}")
        if args.labels is not None and len(args.labels) != len(args.runs):
            raise ValueError(f"--labels needs one label per run ({len(args.runs)}), got {len(args.labels)}")
        probes, originals, outputs, labels, side = reconstructions(
            [Path(r) for r in args.runs], args.images, args.seed)
    except (ValueError, FileNotFoundError) as error:
        print(f"plot_reconstruction.py: error: {error}", file=sys.stderr)
        return 2
    plot(probes, originals, outputs, args.labels or labels, side, Path(args.out))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    torch.set_num_threads(1)
    sys.exit(main())
