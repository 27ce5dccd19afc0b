# ruff: noqa: E402  (the package check runs before the imports it guards)
"""A2C agents whose recurrent core is any plastic_core network, the supervised meta-trainer, baselines, and the
same cores inside sb3-contrib RecurrentPPO (``agents.sb3.PlasticPolicy``)."""

from agents.package_check import check_sibling_package

check_sibling_package("envs")  # before anything imports a namesake (see agents/package_check.py)

from agents.a2c import A2CTrainer, ActorCritic, load_agent, train
from agents.config import A2CConfig, make_config
from agents.provenance import __version__ as __version__
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
