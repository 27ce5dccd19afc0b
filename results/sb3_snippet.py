# The README snippet of issue 28, as written (docs/sb3.md), run from an installed wheel.
import time

import numpy as np
from sb3_contrib import RecurrentPPO
from stable_baselines3.common.evaluation import evaluate_policy

import agents.sb3
from agents.sb3 import PlasticPolicy  # also registers the Plastic/ envs

print("agents.sb3 from", agents.sb3.__file__, flush=True)
start = time.time()
model = RecurrentPPO(PlasticPolicy, "Plastic/CueReward-v0",
                     policy_kwargs=dict(core="modulated", hidden=64, core_kwargs={"clip": 1.0}))
model.learn(200_000); model.save("m")  # noqa: E702  (the snippet as the issue writes it)
print(f"learned 200,000 steps in {time.time() - start:.0f} s", flush=True)
loaded = RecurrentPPO.load("m")
env = model.get_env()
obs, s, starts = env.reset(), None, np.ones(env.num_envs, dtype=bool)
for _ in range(120):  # one episode; s carries h and the Hebbian trace from step to step
    action, s = loaded.predict(obs, state=s, episode_start=starts)
    obs, reward, starts, info = env.step(action)
print(evaluate_policy(loaded, env, n_eval_episodes=10))  # (mean, std) of the reward per episode
