"""Supervised tasks of the seed papers as degenerate one-step Gymnasium environments (TASKS.md section 3).

Every env steps through one supervised episode: observation = that step's input, action = the network's output
(a Box of ``output_dim`` floats), reward = -loss (0 on steps without loss), ``info["target"]`` and
``info["loss_mask"]`` = the target of the step just scored. The vector envs add ``sample_episodes(seed)``:
whole batched episodes (T, B, ...) for a supervised trainer.

| id (Plastic/...)      | loss           | output_dim            | steps (defaults) |
| --------------------- | -------------- | --------------------- | ---------------- |
| PatternCompletion-v0  | squared_error  | n_bits (8)            | 2                |
| OneShotAssociation-v0 | cross_entropy  | 2                     | 20               |
| ReversalAssociation-v0| cross_entropy  | 2                     | 20               |
| PatternMemory-v0      | squared_error  | pattern_size (1000)   | 106              |
| ImageReconstruction-v0| squared_error  | image_size**2 (1024)  | 201              |
| OmniglotOneShot-v0    | cross_entropy  | n_way (5)             | 6                |
| ContinualSine-v0      | squared_error  | 1                     | 500              |
| ContinualOmniglot-v0  | cross_entropy  | n_classes (10)        | 70               |

Modules are imported lazily by the registry (``envs/__init__.py``); import them directly for the task classes.
"""

from envs.supervised.base import Episode, SupervisedEnv, SupervisedTask, SupervisedVectorEnv
from envs.supervised.losses import LOSS_KINDS, step_loss, torch_step_loss

__all__ = [
    "LOSS_KINDS",
    "Episode",
    "SupervisedEnv",
    "SupervisedTask",
    "SupervisedVectorEnv",
    "step_loss",
    "torch_step_loss",
]
