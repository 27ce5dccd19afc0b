"""The cores and option combinations the core tests run over, and how they build cores, states and inputs.

Shared by plastic_core/test_cores.py and plastic_core/test_fused.py.
"""

from __future__ import annotations

import torch

from plastic_core import RecurrentCore, make_core

INPUT, HIDDEN, BATCH = 3, 5, 3

# every core and the option combinations that change the computation
CONFIGS = [
    ("rnn", {}),
    ("lstm", {}),
    ("plastic", {"rule": "decay"}),
    ("plastic", {"rule": "oja"}),
    ("plastic", {"rule": "hebb"}),
    ("plastic", {"rule": "decay", "alpha": "neuron"}),
    ("plastic", {"rule": "oja", "alpha": "scalar", "clip": None}),
    ("plastic", {"rule": "hebb", "alpha": "scalar", "clip": 0.3, "eta_init": 0.9}),
    ("modulated", {}),
    ("modulated", {"modulation": "fanout", "alpha": "neuron"}),
    ("modulated", {"alpha": "scalar", "clip": 0.2}),
    ("retroactive", {}),
    ("retroactive", {"modulation": "fanout", "eta_init": 0.6}),
    ("retroactive", {"alpha": "neuron", "modulation": "fanout", "clip": 0.3}),
    ("retroactive", {"alpha": "scalar"}),
]
PLASTIC = [(name, opts) for name, opts in CONFIGS if name not in ("rnn", "lstm")]


def config_id(config: tuple[str, dict]) -> str:
    name, opts = config
    return "-".join([name, *(f"{k}={v}" for k, v in opts.items())])


def build(name: str, opts: dict, seed: int = 0, hidden: int = HIDDEN) -> RecurrentCore:
    """A float64 core with parameters large enough that plasticity visibly changes the outputs."""
    torch.manual_seed(seed)
    core = make_core(name, INPUT, hidden, **opts).double()
    with torch.no_grad():
        for pname, p in core.named_parameters():
            if pname in ("w", "alpha", "modulator.weight", "w_in.weight"):
                p.mul_(2.5)
            elif pname == "fanout":  # trained fan-out differs from the all-ones start, where it equals "scalar"
                p.uniform_(-2.0, 3.0)
    return core


def random_state(core: RecurrentCore, batch: int, seed: int = 1) -> dict[str, torch.Tensor]:
    """A mid-episode state: h in (-1, 1), traces inside their bound."""
    gen = torch.Generator().manual_seed(seed)
    state = core.initial_state(batch)
    bound = getattr(core, "clip", None) or 1.0
    return {key: (torch.rand(v.shape, generator=gen, dtype=v.dtype) * 2 - 1) * 0.9 * bound for key, v in state.items()}


def inputs(steps: int, batch: int = BATCH, seed: int = 2, scale: float = 1.5) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(steps, batch, INPUT, generator=gen, dtype=torch.float64) * scale
