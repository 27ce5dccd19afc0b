"""A2C agents whose recurrent core is any plastic_core network, the supervised meta-trainer, baselines."""

from agents.a2c import A2CTrainer, ActorCritic, load_agent, train
from agents.config import A2CConfig, make_config
from agents.run import NonFiniteLossError, RunDir, train_loop

__all__ = [
    "A2CConfig",
    "A2CTrainer",
    "ActorCritic",
    "NonFiniteLossError",
    "RunDir",
    "load_agent",
    "make_config",
    "train",
    "train_loop",
]
