"""Gymnasium environments of the plasticity papers, registered under the ``Plastic/`` namespace.

``import envs`` (or ``gym.register_envs(envs)``) registers them; ``gym.make("envs:Plastic/Maze-v0")`` works with
no prior import. Every id also has a native batched ``VectorEnv``:
``gym.make_vec(id, num_envs=B, vectorization_mode="vector_entry_point")``.

Each env's ``metadata`` names its source paper and tags (neurogym's convention); ``envs.tasks("omniglot")`` lists
the ids with a tag, ``envs.tasks()`` all of them with their metadata.
"""

from __future__ import annotations

import importlib.metadata
from typing import Any

from gymnasium.envs.registration import load_env_creator, register, registry

try:
    __version__ = importlib.metadata.version("plastic-meta-rl")
except importlib.metadata.PackageNotFoundError:
    __version__ = "0+unknown"

# id -> module:class prefix; the single env is "<Class>Env" and the vector env "<Class>VectorEnv".
_ENVS = {
    "Plastic/Maze-v0": "envs.maze:Maze",
    "Plastic/CueReward-v0": "envs.cue_reward:CueReward",
    "Plastic/ReversalBandit-v0": "envs.bandit:ReversalBandit",
    "Plastic/PatternCompletion-v0": "envs.supervised.pattern_completion:PatternCompletion",
    "Plastic/OneShotAssociation-v0": "envs.supervised.association:OneShotAssociation",
    "Plastic/ReversalAssociation-v0": "envs.supervised.association:ReversalAssociation",
    "Plastic/PatternMemory-v0": "envs.supervised.pattern_memory:PatternMemory",
    "Plastic/ImageReconstruction-v0": "envs.supervised.image_reconstruction:ImageReconstruction",
    "Plastic/OmniglotOneShot-v0": "envs.supervised.omniglot_one_shot:OmniglotOneShot",
    "Plastic/ContinualSine-v0": "envs.supervised.continual_sine:ContinualSine",
    "Plastic/ContinualOmniglot-v0": "envs.supervised.continual_omniglot:ContinualOmniglot",
}

ENV_IDS = tuple(_ENVS)
RL_ENV_IDS = ("Plastic/Maze-v0", "Plastic/CueReward-v0", "Plastic/ReversalBandit-v0")
SUPERVISED_ENV_IDS = tuple(env_id for env_id in _ENVS if env_id not in RL_ENV_IDS)

for _env_id, _target in _ENVS.items():
    if _env_id not in registry:
        register(id=_env_id, entry_point=f"{_target}Env", vector_entry_point=f"{_target}VectorEnv")


def tasks(tag: str | None = None) -> dict[str, dict[str, Any]]:
    """The registered ids (with ``tag`` among their tags, when given) and their single env's metadata.

    Imports the env modules (the supervised ones are otherwise imported lazily).
    """
    found = {}
    for env_id in ENV_IDS:
        metadata = load_env_creator(registry[env_id].entry_point).metadata
        if tag is None or tag in metadata["tags"]:
            found[env_id] = dict(metadata)
    return found
