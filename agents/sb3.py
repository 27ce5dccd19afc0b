"""Plastic cores inside stable-baselines3: ``PlasticPolicy``, a policy of sb3-contrib's ``RecurrentPPO``.

    from sb3_contrib import RecurrentPPO
    from agents.sb3 import PlasticPolicy
    model = RecurrentPPO(PlasticPolicy, "Plastic/CueReward-v0",
                         policy_kwargs=dict(core="modulated", hidden=64, core_kwargs={"clip": 1.0}))

The actor's recurrence (and, unless ``shared_core=True``, the critic's) is ``make_core(core, features, hidden,
**core_kwargs)``, any core of ``plastic_core`` (``rnn``, ``lstm``, ``plastic``, ``modulated``, ``retroactive``,
``plastic_lstm``, with any of their options). Everything else is RecurrentPPO's own: rollouts, GAE, the clipped
loss, minibatches of sequences, callbacks, logger, ``evaluate_policy``, save/load.

**The state in RecurrentPPO's slots.** RecurrentPPO carries, per network, an LSTM's pair ``(h, c)`` of tensors
(n_layers, n_envs, hidden_size) and stores one pair per step in its rollout buffer. A core's whole state (h, the
Hebbian trace, the eligibility trace, an LSTM's c...) is packed into that pair (:class:`PackedCore`): per env, the
tensors of ``core.state_shapes()`` in that order, each flattened row-major (``hebb[j, i]`` at ``j * N + i``), give
P floats (N + N^2 for ``plastic``/``modulated``, N + 2 N^2 for ``retroactive``, 2N for ``lstm``, N for ``rnn``,
2N + N^2 for ``plastic_lstm``), padded with one zero when P is odd; the first half is the slot ``h`` and the second
the slot ``c``, each (1, n_envs, S) with S = ceil(P / 2) (what RecurrentPPO reads as ``lstm.hidden_size``). The
all-zero pair is every core's initial state, so SB3's zero-initialised states and ``predict(state=None)`` start
episodes right; an ``episode_start`` resets the state of its env to ``core.initial_state``.

**The training pass.** RecurrentPPO cuts its rollout into sequences that begin at an episode start (or at the
rollout's start) and pads them; each minibatch of sequences goes through ``core.unroll`` at once, which for the
plastic cores is the fused recurrence (one autograd node for the whole minibatch of sequences, exact analytic
backward; ``plastic_core.fused``). A sequence given with an episode start after its first step is cut there and
unrolled piece by piece, the state reset in between.

**Memory.** The buffer holds four float32 arrays (n_steps, 1, n_envs, S): 16 n_steps n_envs S bytes, about
8 n_steps n_envs P; flattening them for the minibatches copies one at a time, so the peak is 5/4 of that.
``PlasticPolicy`` estimates it when RecurrentPPO builds it (just before RecurrentPPO allocates the buffer) and
refuses, in one line, a buffer larger than this machine's memory (:func:`check_rollout_memory`).

**Saved with the model.** ``policy_kwargs`` (core, hidden, core_kwargs, shared_core) are in the zip's ``data``,
and the policy's state dict carries ``{"package", "version", "core", "hidden", "core_kwargs", "shared_core"}``
(``_extra_state``): loading checks the core settings against the policy built and keeps the version that saved
the weights as ``policy.saved_with``.
"""

from __future__ import annotations

import math
import os
import sys
from typing import Any

import torch
from gymnasium import spaces
from sb3_contrib.common.recurrent.policies import RecurrentActorCriticPolicy
from stable_baselines3.common.on_policy_algorithm import OnPolicyAlgorithm
from stable_baselines3.common.policies import ActorCriticPolicy
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor, FlattenExtractor
from stable_baselines3.common.type_aliases import Schedule
from torch import Tensor, nn

import envs  # noqa: F401  (registers the Plastic/... ids, so that RecurrentPPO(PlasticPolicy, "Plastic/...") works)
from agents.checks import build_core, check_integer
from agents.config import MAX_HIDDEN
from plastic_core import RecurrentCore, State, __version__

__all__ = ["PACKAGE", "PackedCore", "PlasticPolicy", "check_rollout_memory", "make_model", "rollout_state_bytes"]

PACKAGE = "plastic-meta-rl"
STATE_ARRAYS = 4  # RecurrentRolloutBuffer: hidden_states_pi, cell_states_pi, hidden_states_vf, cell_states_vf
FLOAT_BYTES = 4  # the buffer is float32


# -- the state in RecurrentPPO's (h, c) slots ----------------------------------------------------------------------
class PackedCore(nn.Module):
    """A recurrent core as RecurrentPPO sees an ``nn.LSTM``: ``num_layers`` 1 and ``hidden_size`` S, the width of
    one of the two state slots (not the core's N: that is ``core.hidden_size``); its state packed as in the module
    docstring. Called by :meth:`PlasticPolicy._process_sequence`."""

    num_layers = 1

    def __init__(self, core: RecurrentCore) -> None:
        super().__init__()
        if any(t.any() for t in core.initial_state(1).values()):
            raise ValueError(f"{type(core).__name__} starts episodes from a non-zero state; RecurrentPPO starts its "
                             "state slots at zeros, so it cannot be packed here")
        self.core = core
        self.input_size = core.input_size
        self.shapes = core.state_shapes()
        self.sizes = [math.prod(shape) for shape in self.shapes.values()]
        self.packed_size = sum(self.sizes)  # P
        self.hidden_size = (self.packed_size + 1) // 2  # S: RecurrentPPO allocates (n_steps, 1, n_envs, S) twice

    def pack(self, state: State) -> tuple[Tensor, Tensor]:
        """The core's state (B, ...) as the slots (h, c), each (1, B, S)."""
        batch = next(iter(state.values())).shape[0]
        flat = torch.cat([state[key].reshape(batch, -1) for key in self.shapes], dim=1)
        flat = nn.functional.pad(flat, (0, 2 * self.hidden_size - self.packed_size))
        h, c = flat.split(self.hidden_size, dim=1)
        return h.unsqueeze(0).contiguous(), c.unsqueeze(0).contiguous()

    def unpack(self, slots: tuple[Tensor, Tensor]) -> State:
        """The slots (h, c), each (1, B, S), as the core's state (B, ...)."""
        h, c = slots
        expected = (1, h.shape[1] if h.dim() == 3 else "B", self.hidden_size)
        if h.dim() != 3 or tuple(h.shape) != expected or tuple(c.shape) != expected:
            raise ValueError(f"state slots of shapes {tuple(h.shape)} and {tuple(c.shape)} do not fit this "
                             f"{type(self.core).__name__} (hidden {self.core.hidden_size}): expected (1, n_envs, "
                             f"{self.hidden_size}) each (was the state made by another policy?)")
        flat = torch.cat([h[0], c[0]], dim=1)[:, : self.packed_size]
        batch = flat.shape[0]
        parts = flat.split(self.sizes, dim=1)
        return {key: part.reshape(batch, *shape) for (key, shape), part in zip(self.shapes.items(), parts, strict=True)}

    def forward(self, features: Tensor, slots: tuple[Tensor, Tensor], episode_starts: Tensor) -> tuple[Tensor, tuple]:
        """SB3's batch of sequences through the core: features (n_seq * T, F) ordered sequence by sequence,
        episode_starts (n_seq * T,), slots (h, c) (1, n_seq, S) at the sequences' first step. Returns the core's
        outputs (n_seq * T, N) in the same order and the slots after the last step.

        The state is reset to ``core.initial_state`` where a step starts an episode; between such steps the sequence
        goes through ``core.unroll`` in one piece (the fused recurrence for the plastic cores)."""
        state = self.unpack(slots)
        n_seq = slots[0].shape[1]
        xs = features.reshape(n_seq, -1, self.input_size).transpose(0, 1)  # (T, n_seq, F)
        starts = episode_starts.reshape(n_seq, -1).transpose(0, 1) > 0  # (T, n_seq)
        steps = xs.shape[0]
        cuts = [0, *(1 + torch.nonzero(starts[1:].any(dim=1)).flatten()).tolist(), steps]
        initial = self.core.initial_state(n_seq, device=xs.device, dtype=xs.dtype)
        outputs = []
        for begin, end in zip(cuts[:-1], cuts[1:], strict=True):
            state = reset(state, initial, starts[begin])
            hs, state = self.core.unroll(xs[begin:end].contiguous(), state)
            outputs.append(hs)
        hs = torch.cat(outputs) if len(outputs) > 1 else outputs[0]  # (T, n_seq, N)
        return hs.transpose(0, 1).reshape(-1, self.core.hidden_size), self.pack(state)


def reset(state: State, initial: State, starts: Tensor) -> State:
    """``state`` with the batch elements where ``starts`` (B,) bool is set replaced by ``initial``."""
    if not bool(starts.any()):
        return state
    return {key: torch.where(starts.view(-1, *([1] * (value.dim() - 1))), initial[key], value)
            for key, value in state.items()}


# -- memory --------------------------------------------------------------------------------------------------------
def rollout_state_bytes(slot_width: int, n_steps: int, n_envs: int) -> int:
    """Bytes of the states in RecurrentPPO's rollout buffer: four float32 arrays (n_steps, 1, n_envs, S)."""
    return STATE_ARRAYS * FLOAT_BYTES * n_steps * n_envs * slot_width


def machine_memory() -> int | None:
    """Physical memory of this machine in bytes (None where the OS does not say)."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):
        return None


def check_rollout_memory(core: PackedCore, n_steps: int, n_envs: int, limit: int | None = None) -> int:
    """The peak bytes of RecurrentPPO's state buffer for ``core`` (5/4 of :func:`rollout_state_bytes`: the buffer
    flattens its arrays one copy at a time), or a one-line ``MemoryError`` when that exceeds ``limit`` (default:
    this machine's physical memory)."""
    peak = rollout_state_bytes(core.hidden_size, n_steps, n_envs) * 5 // 4
    limit = machine_memory() if limit is None else limit
    if limit is not None and peak > limit:
        inner = core.core
        raise MemoryError(
            f"RecurrentPPO with n_steps={n_steps} and n_envs={n_envs} would store {core.packed_size} floats of "
            f"{type(inner).__name__} state (hidden {inner.hidden_size}) per step, env and network: about "
            f"{peak / 2**30:.1f} GiB (16 x n_steps x n_envs x {core.hidden_size} bytes, x 5/4 at its peak), more than "
            f"the {limit / 2**30:.1f} GiB of memory here; lower n_steps, n_envs or hidden")
    return peak


def _algorithm_building(policy: nn.Module) -> OnPolicyAlgorithm | None:
    """The algorithm whose ``_setup_model`` is building ``policy`` right now, if any.

    RecurrentPPO builds the policy and then allocates its rollout buffer without telling the policy n_steps and
    n_envs; this finds them in the caller's frame, so that an impossible buffer is refused before it is allocated.
    """
    frame = sys._getframe(1)
    for _ in range(16):
        if frame is None:
            return None
        owner = frame.f_locals.get("self")
        if (frame.f_code.co_name == "_setup_model" and isinstance(owner, OnPolicyAlgorithm)
                and owner.policy_class is type(policy)):
            return owner
        frame = frame.f_back
    return None


# -- the policy ----------------------------------------------------------------------------------------------------
# RecurrentActorCriticPolicy's LSTM options, and what replaces each here
LSTM_OPTIONS = {"lstm_hidden_size": "hidden", "n_lstm_layers": "core (one recurrent layer)",
                "shared_lstm": "shared_core", "enable_critic_lstm": "shared_core", "lstm_kwargs": "core_kwargs"}


class PlasticPolicy(RecurrentActorCriticPolicy):
    """RecurrentPPO's policy with a ``plastic_core`` core where ``MlpLstmPolicy`` has its LSTMs.

    ``policy_kwargs``: ``core`` (a ``make_core`` name, default ``"modulated"``), ``hidden`` (the core's N, default
    64), ``core_kwargs`` (the core's options, e.g. ``{"clip": 1.0}``, ``{"rule": "oja"}``), ``shared_core``
    (False: the critic has a core of its own, as ``MlpLstmPolicy``'s two LSTMs; True: the critic reads the actor's
    core outputs, detached, as ``shared_lstm=True``); and ``ActorCriticPolicy``'s own options (``net_arch``: the
    MLPs after the core, SB3's default ``dict(pi=[64, 64], vf=[64, 64])``; ``[]`` for linear heads on h as our
    A2C; ``activation_fn``, ``ortho_init``, ``features_extractor_class``...). See the module docstring for how the
    state is carried and stored.
    """

    def __init__(
        self,
        observation_space: spaces.Space,
        action_space: spaces.Space,
        lr_schedule: Schedule,
        core: str = "modulated",
        hidden: int = 64,
        core_kwargs: dict[str, Any] | None = None,
        shared_core: bool = False,
        net_arch: list[int] | dict[str, list[int]] | None = None,
        activation_fn: type[nn.Module] = nn.Tanh,
        ortho_init: bool = True,
        use_sde: bool = False,
        log_std_init: float = 0.0,
        full_std: bool = True,
        use_expln: bool = False,
        squash_output: bool = False,
        features_extractor_class: type[BaseFeaturesExtractor] = FlattenExtractor,
        features_extractor_kwargs: dict[str, Any] | None = None,
        share_features_extractor: bool = True,
        normalize_images: bool = True,
        optimizer_class: type[torch.optim.Optimizer] = torch.optim.Adam,
        optimizer_kwargs: dict[str, Any] | None = None,
        **unknown: Any,
    ) -> None:
        for name in unknown:
            if name in LSTM_OPTIONS:
                raise ValueError(f"policy_kwargs option {name!r} is MlpLstmPolicy's; PlasticPolicy takes "
                                 f"{LSTM_OPTIONS[name]} instead")
        if unknown:
            raise ValueError(f"unknown policy_kwargs option(s) {', '.join(map(repr, unknown))} for PlasticPolicy; it "
                             "takes core, hidden, core_kwargs, shared_core and ActorCriticPolicy's options")
        check_integer("hidden", hidden, minimum=1, maximum=MAX_HIDDEN)
        if not isinstance(shared_core, bool):
            raise ValueError(f"shared_core must be True or False, got {shared_core!r}")
        if shared_core and not share_features_extractor:
            raise ValueError("shared_core=True needs share_features_extractor=True (one core reads one feature set)")
        self.lstm_output_dim = hidden  # what the MLPs after the recurrence read (RecurrentActorCriticPolicy's name)
        # RecurrentActorCriticPolicy.__init__ would build LSTMs: its parent builds the rest, the cores come here
        ActorCriticPolicy.__init__(
            self, observation_space, action_space, lr_schedule, net_arch, activation_fn, ortho_init, use_sde,
            log_std_init, full_std, use_expln, squash_output, features_extractor_class, features_extractor_kwargs,
            share_features_extractor, normalize_images, optimizer_class, optimizer_kwargs)
        self.lstm_actor = PackedCore(build_core(core, self.features_dim, hidden, core_kwargs))
        self.lstm_critic = None if shared_core else PackedCore(build_core(core, self.features_dim, hidden, core_kwargs))
        self.core_settings = {"core": core, "hidden": hidden, "core_kwargs": dict(core_kwargs or {}),
                              "shared_core": shared_core}
        self.critic = None
        self.shared_lstm, self.enable_critic_lstm, self.lstm_kwargs = shared_core, not shared_core, {}
        self.lstm_hidden_state_shape = (1, 1, self.lstm_actor.hidden_size)  # predict(state=None): zeros
        self.saved_with: str | None = None  # the package version of loaded weights
        algorithm = _algorithm_building(self)
        if algorithm is not None:
            check_rollout_memory(self.lstm_actor, algorithm.n_steps, algorithm.n_envs)
        self.optimizer = self.optimizer_class(self.parameters(), lr=lr_schedule(1), **self.optimizer_kwargs)

    @staticmethod
    def _process_sequence(features: Tensor, lstm_states: tuple[Tensor, Tensor], episode_starts: Tensor,
                          lstm: PackedCore) -> tuple[Tensor, tuple[Tensor, Tensor]]:
        """RecurrentActorCriticPolicy's one recurrence hook, for a packed core (see :meth:`PackedCore.forward`)."""
        return lstm(features, lstm_states, episode_starts)

    def _get_constructor_parameters(self) -> dict[str, Any]:
        data = super()._get_constructor_parameters()
        data.update(self.core_settings, share_features_extractor=self.share_features_extractor)
        return data

    def get_extra_state(self) -> dict[str, Any]:
        """Saved in the state dict (``_extra_state``): this package's name and version and the core settings."""
        return {"package": PACKAGE, "version": __version__, **self.core_settings}

    def set_extra_state(self, state: Any) -> None:
        """Check loaded weights' core settings against this policy's; keep the version that saved them."""
        if not isinstance(state, dict) or state.get("package") != PACKAGE:
            raise ValueError(f"these weights were not saved by a {PACKAGE} PlasticPolicy (extra state {state!r})")
        saved = {key: state.get(key) for key in self.core_settings}
        if saved != self.core_settings:
            raise ValueError(f"the weights are of a PlasticPolicy with {saved}, this policy has {self.core_settings}")
        self.saved_with = state.get("version")


def make_model(algo: str, env: Any, core: str | None = None, hidden: int = 64,
               core_kwargs: dict[str, Any] | None = None, **hyper: Any) -> OnPolicyAlgorithm:
    """The SB3 model ``plastic-compare-sb3`` trains: ``"a2c"`` (SB3's A2C, ``MlpPolicy``) or ``"recurrent-ppo"``
    (RecurrentPPO with ``MlpLstmPolicy``, or with ``PlasticPolicy`` and ``core`` when one is given); ``hyper`` goes
    to the algorithm (gamma, seed, learning_rate, device...)."""
    if algo == "a2c":
        if core is not None:
            raise ValueError("a core needs algo 'recurrent-ppo' (SB3's A2C policy has no recurrence)")
        from stable_baselines3 import A2C

        return A2C("MlpPolicy", env, **hyper)
    if algo != "recurrent-ppo":
        raise ValueError(f"unknown algo {algo!r}; expected 'a2c' or 'recurrent-ppo'")
    from sb3_contrib import RecurrentPPO

    if core is None:
        return RecurrentPPO("MlpLstmPolicy", env, **hyper)
    policy_kwargs = {"core": core, "hidden": hidden, "core_kwargs": core_kwargs or {}}
    return RecurrentPPO(PlasticPolicy, env, policy_kwargs=policy_kwargs, **hyper)
