"""The package's command-line tools, one module each, installed as console scripts (``pyproject.toml``).

Every module has ``main(argv=None) -> int`` and runs as ``python -m agents.cli.<name>``; ``scripts/*.py`` are
one-line wrappers of the same functions for a checkout.

| command | module | what it does |
| --- | --- | --- |
| ``plastic-train`` | ``train`` | train an A2C agent (RL envs) or a supervised network; ``--resume`` continues |
| ``plastic-train-supervised`` | ``train_supervised`` | the supervised trainer alone |
| ``plastic-evaluate`` | ``evaluate`` | a trained agent's reward with frozen weights, 95% interval |
| ``plastic-render`` | ``render`` | a maze agent's episode as GIF / MP4, or live |
| ``plastic-plot`` | ``plot`` | learning curves of run directories, median + IQR over seeds |
| ``plastic-compare-sb3`` | ``compare_sb3`` | SB3 A2C / RecurrentPPO on the same envs, same run format |
| ``plastic-reproduce-rl`` / ``-supervised`` | ``reproduce_rl`` / ``reproduce_supervised`` | the papers' grids |
| ``plastic-bandit-baselines`` | ``bandit_baselines`` | Thompson, UCB1, oracle on the reversal bandit |
| ``plastic-demo`` | ``core_demo`` | a few-second demo of a plastic core |
| ``plastic-benchmark`` (``-core``, ``-envs``, ``-sb3``) | ``benchmark*`` | speed tables of the README |
| ``plastic-render-frames`` / ``plastic-plot-reconstruction`` | | the README's pictures |
"""
