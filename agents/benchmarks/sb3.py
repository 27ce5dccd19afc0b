"""Training throughput of our A2C trainer next to sb3-contrib RecurrentPPO (LSTM, 256 units) (``plastic bench sb3``).

Each measurement trains for about ``seconds`` of wall time after one untimed warm-up unit and counts env steps
(every step of every parallel episode), training included:

* ``measure_ours``: whole ``agents.a2c.A2CTrainer.train_iteration`` calls, each B=30 episodes in lock-step on the
  native vector env: acting, forward, backward and the Adam update (the env's default N).
* ``measure_sb3``: RecurrentPPO ``learn`` one rollout at a time (n_steps x n_envs env steps, then its PPO epochs)
  on SB3's ``make_vec_env``, ``MlpLstmPolicy`` with ``lstm_hidden_size=256``, SB3's defaults otherwise except the
  env's discount.
"""

from __future__ import annotations

import time
from collections.abc import Callable

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


def measure_ours(env_id: str, core: str, seconds: float, hidden: int | None = None) -> dict:
    """Env steps per second of ``A2CTrainer.train_iteration`` (B episodes in lock-step, training included)."""
    config = make_config(env_id, core, episodes=10**9, seed=0, hidden=hidden)
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


def measure_sb3(env_id: str, seconds: float, n_envs: int, core: str | None = None, hidden: int = 64) -> dict:
    """Env steps per second of RecurrentPPO ``learn``, one rollout (n_steps x n_envs steps + its update) per unit:
    ``MlpLstmPolicy`` (LSTM 256), or ``agents.sb3.PlasticPolicy`` with ``core`` of ``hidden`` units."""
    from stable_baselines3.common.env_util import make_vec_env

    from agents.sb3 import make_model

    vec_env = make_vec_env(env_id, n_envs=n_envs, seed=0)
    model = make_model("recurrent-ppo", vec_env, core, hidden, gamma=env_defaults(env_id)["gamma"], seed=0,
                       device="cpu", verbose=0)
    rollout = model.n_steps * n_envs

    def unit() -> int:
        before = model.num_timesteps
        model.learn(total_timesteps=rollout, reset_num_timesteps=False)
        return model.num_timesteps - before

    steps, elapsed = time_units(unit, seconds)
    vec_env.close()
    name = SB3_NAME if core is None else f"sb3 RecurrentPPO ({core} {hidden}, agents.sb3)"
    return {"env": env_id, "trainer": f"{name}, {n_envs} envs", "env_steps": steps, "seconds": elapsed,
            "env_steps_per_s": steps / elapsed}
