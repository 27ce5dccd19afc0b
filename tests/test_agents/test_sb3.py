"""agents.sb3: plastic cores as sb3-contrib RecurrentPPO's recurrence (PlasticPolicy)."""

from __future__ import annotations

import json
import zipfile

import gymnasium as gym
import numpy as np
import pytest
import torch
from cases.cores import CONFIGS, PLASTIC, build, config_id, random_state
from sb3_contrib import RecurrentPPO
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.evaluation import evaluate_policy

from agents.cli import compare_sb3, plot
from agents.logger import read_metrics
from agents.sb3 import PackedCore, PlasticPolicy, check_rollout_memory, rollout_state_bytes
from plastic_core import __version__, core_names

BANDIT = "Plastic/ReversalBandit-v0"
SHORT = {"episode_length": 10}


def small_model(core: str, core_kwargs: dict | None = None, n_envs: int = 2, seed: int = 0, **kwargs) -> RecurrentPPO:
    env = make_vec_env(BANDIT, n_envs=n_envs, seed=seed, env_kwargs=SHORT)
    policy_kwargs = {"core": core, "hidden": 6, "core_kwargs": core_kwargs or {}, **kwargs.pop("policy_kwargs", {})}
    return RecurrentPPO(PlasticPolicy, env, n_steps=16, batch_size=16, n_epochs=2, seed=seed, device="cpu",
                        policy_kwargs=policy_kwargs, **kwargs)


def play(model: RecurrentPPO, steps: int, seed: int = 3) -> tuple[list[np.ndarray], list[tuple[np.ndarray, ...]]]:
    """Actions and states of ``model.predict`` over ``steps`` steps of 2 seeded bandit episodes (random obs order)."""
    env = make_vec_env(BANDIT, n_envs=2, seed=seed, env_kwargs=SHORT)
    obs, state, starts = env.reset(), None, np.ones(2, dtype=bool)
    actions, states = [], []
    for _ in range(steps):
        action, state = model.predict(obs, state=state, episode_start=starts, deterministic=True)
        obs, _, starts, _ = env.step(action)
        actions.append(action)
        states.append(state)
    env.close()
    return actions, states


# every core name, and option combinations of each rule
POLICY_CONFIGS = [*CONFIGS[:2], *CONFIGS[2::3], ("plastic_lstm", {}), ("modulated", {"clip": 1.0})]


def test_every_core_name_is_covered():
    assert {name for name, _ in POLICY_CONFIGS} == set(core_names())


@pytest.mark.parametrize("config", POLICY_CONFIGS, ids=config_id)
def test_every_core_learns_saves_loads_and_predicts_identically(config, tmp_path):
    name, options = config
    model = small_model(name, options)
    before = {k: v.clone() for k, v in model.policy.state_dict().items() if isinstance(v, torch.Tensor)}
    model.learn(256)
    after = model.policy.state_dict()
    core_keys = [k for k in before if k.startswith(("lstm_actor.core.", "lstm_critic.core."))]
    assert core_keys and all(k in after for k in core_keys)
    assert any(not torch.equal(before[k], after[k]) for k in core_keys if k.startswith("lstm_actor"))  # trained
    assert any(not torch.equal(before[k], after[k]) for k in core_keys if k.startswith("lstm_critic"))
    model.save(tmp_path / "model")
    loaded = RecurrentPPO.load(tmp_path / "model", device="cpu")
    assert isinstance(loaded.policy, PlasticPolicy) and loaded.policy.saved_with == __version__
    actions, states = play(model, 25)  # 2.5 episodes: across an episode start
    loaded_actions, loaded_states = play(loaded, 25)
    for a, b in zip(actions, loaded_actions, strict=True):
        np.testing.assert_array_equal(a, b)
    for a, b in zip(states, loaded_states, strict=True):
        np.testing.assert_array_equal(a[0], b[0])
        np.testing.assert_array_equal(a[1], b[1])
    with zipfile.ZipFile(tmp_path / "model.zip") as archive:  # the settings, readable in SB3's zip
        data = json.loads(archive.read("data"))
        extra = torch.load(archive.open("policy.pth"), weights_only=True)["_extra_state"]
    assert data["policy_kwargs"] == {"core": name, "hidden": 6, "core_kwargs": options}
    assert extra == {"package": "plastic-meta-rl", "version": __version__, "core": name, "hidden": 6,
                     "core_kwargs": options, "shared_core": False}


def test_loading_weights_of_another_core_is_refused():
    model = small_model("modulated")
    other = small_model("modulated", {"clip": 0.5})
    with pytest.raises(ValueError, match="the weights are of a PlasticPolicy with .*'clip': 0.5"):
        model.policy.load_state_dict(other.policy.state_dict())


def test_shared_core_has_one_core_trains_and_the_policy_alone_saves_and_loads(tmp_path):
    model = small_model("retroactive", policy_kwargs={"shared_core": True})
    assert model.policy.lstm_critic is None and model.policy.shared_lstm
    model.learn(64)
    model.policy.save(tmp_path / "policy.pt")  # SB3's policy-only format: constructor parameters + state dict
    policy = PlasticPolicy.load(tmp_path / "policy.pt")
    assert policy.core_settings == model.policy.core_settings and policy.saved_with == __version__
    obs, starts = np.ones((2, 5), dtype=np.float32), np.ones(2, dtype=bool)
    state, loaded_state = None, None
    for _ in range(3):
        action, state = model.policy.predict(obs, state, starts, deterministic=True)
        loaded_action, loaded_state = policy.predict(obs, loaded_state, starts, deterministic=True)
        np.testing.assert_array_equal(action, loaded_action)
        np.testing.assert_array_equal(state[0], loaded_state[0])
        starts = np.zeros(2, dtype=bool)


def test_box_actions_work():
    """No core needs discrete actions: SB3's Gaussian head reads the core's h as it reads an LSTM's."""
    model = RecurrentPPO(PlasticPolicy, make_vec_env("Pendulum-v1", n_envs=2, seed=0), n_steps=16, batch_size=16,
                         n_epochs=1, seed=0, device="cpu", policy_kwargs={"core": "modulated", "hidden": 6})
    model.learn(32)
    action, state = model.predict(np.zeros((2, 3), dtype=np.float32), episode_start=np.ones(2, dtype=bool))
    assert action.shape == (2, 1) and state[0].shape == (1, 2, model.policy.lstm_actor.hidden_size)


# -- the state: packed, carried, reset -----------------------------------------------------------------------------
@pytest.mark.parametrize("config", CONFIGS + [("plastic_lstm", {})], ids=config_id)
def test_pack_and_unpack_are_inverse(config):
    name, options = config
    core = build(name, options)
    packed = PackedCore(core)
    state = random_state(core, 3)
    slots = packed.pack(state)
    assert slots[0].shape == slots[1].shape == (1, 3, packed.hidden_size)
    assert packed.packed_size == sum(v[0].numel() for v in state.values())
    assert 2 * packed.hidden_size - packed.packed_size in (0, 1)
    unpacked = packed.unpack(slots)
    assert unpacked.keys() == state.keys() and all(torch.equal(unpacked[k], state[k]) for k in state)
    with pytest.raises(ValueError, match="do not fit"):
        packed.unpack((slots[0][..., :-1], slots[1][..., :-1]))


def test_hebbian_traces_change_within_an_episode_and_reset_at_episode_start():
    model = small_model("modulated")
    policy, packed = model.policy, model.policy.lstm_actor
    core = packed.core
    obs = np.array([[1.0, 0.3, 1.0, 1.0, 0.0], [1.0, 0.3, 0.0, 0.0, 1.0]], dtype=np.float32)
    state, hebbs = None, []
    for t in range(4):
        _, state = policy.predict(obs, state=state, episode_start=np.full(2, t == 0))
        hebbs.append(packed.unpack(tuple(map(torch.from_numpy, state)))["hebb"])
    for earlier, later in zip(hebbs, hebbs[1:], strict=False):
        assert (later - earlier).abs().amax(dim=(1, 2)).min() > 1e-4  # every env's trace moved at every step
    # env 0 starts a new episode: its state is one step from core.initial_state; env 1 goes on (a 5th step)
    _, state = policy.predict(obs, state=state, episode_start=np.array([True, False]))
    after = packed.unpack(tuple(map(torch.from_numpy, state)))
    with torch.no_grad():
        x = policy.extract_features(torch.from_numpy(obs), policy.pi_features_extractor)
        _, fresh = core(x[:1], core.initial_state(1))
        going_on = core.initial_state(1)
        for _ in range(5):
            _, going_on = core(x[1:], going_on)
    for key in fresh:
        torch.testing.assert_close(after[key][:1], fresh[key], rtol=0, atol=0)
        torch.testing.assert_close(after[key][1:], going_on[key], rtol=1e-6, atol=1e-7)
    assert (after["hebb"][1] - fresh["hebb"][0]).abs().max() > 1e-3


# -- the training pass: fused sequences == steps ---------------------------------------------------------------------
def sequence_nodes(output: torch.Tensor) -> int:
    """How many fused-sequence autograd nodes the graph of ``output`` holds."""
    seen, stack, count = set(), [output.grad_fn], 0
    while stack:
        node = stack.pop()
        if node is None or node in seen:
            continue
        seen.add(node)
        count += "_PlasticSequenceBackward" in type(node).__name__
        stack.extend(next_node for next_node, _ in node.next_functions)
    return count


@pytest.mark.parametrize("config", PLASTIC, ids=config_id)
def test_fused_sequence_pass_equals_a_step_by_step_pass(config):
    """SB3's minibatch of 3 padded sequences of 6 steps (float64): the fused pass (one node, or one per piece when
    an episode starts mid-sequence) gives the outputs, final slots and gradients of 6 one-step calls of a core
    that steps with its per-step autograd graph, as RecurrentPPO's LSTM loop does."""
    name, options = config
    fused = PackedCore(build(name, options))
    stepped = PackedCore(build(name, options))
    stepped.core.fused = False  # its unroll: the per-step autograd graph of ``advance``
    n_seq, steps = 3, 6
    slots = fused.pack(random_state(fused.core, n_seq))
    gen = torch.Generator().manual_seed(4)
    features = torch.randn(n_seq * steps, fused.input_size, generator=gen, dtype=torch.float64)
    weights = torch.randn(n_seq * steps, fused.core.hidden_size, generator=gen, dtype=torch.float64)
    for mid_start in (False, True):
        starts = torch.zeros(n_seq, steps, dtype=torch.float64)
        starts[0, 0] = starts[2, 0] = 1.0  # sequences 0 and 2 begin episodes, 1 goes on from its stored state
        if mid_start:
            starts[1, 3] = 1.0
        out, final = fused(features, slots, starts.flatten())
        loss = (out * weights).sum() + final[0].pow(2).sum() + final[1].sum()
        assert sequence_nodes(loss) == (2 if mid_start else 1)
        grads = torch.autograd.grad(loss, list(fused.parameters()))
        state, outs = slots, []
        per_step = features.view(n_seq, steps, -1)
        for t in range(steps):
            h, state = stepped(per_step[:, t], state, starts[:, t])
            outs.append(h)
        ref_out = torch.stack(outs, dim=1).reshape(n_seq * steps, -1)
        ref_loss = (ref_out * weights).sum() + state[0].pow(2).sum() + state[1].sum()
        ref_grads = torch.autograd.grad(ref_loss, list(stepped.parameters()))
        torch.testing.assert_close(out, ref_out, rtol=1e-12, atol=1e-12)
        torch.testing.assert_close(final, state, rtol=1e-12, atol=1e-12)
        for g, ref in zip(grads, ref_grads, strict=True):
            torch.testing.assert_close(g, ref, rtol=1e-9, atol=1e-11)


# -- errors --------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("policy_kwargs, message", [
    ({"core": "nope"}, "unknown core 'nope'"),
    ({"core": "modulated", "wings": 2}, "unknown policy_kwargs option(s) 'wings'"),
    ({"core": "modulated", "lstm_hidden_size": 32}, "'lstm_hidden_size' is MlpLstmPolicy's; PlasticPolicy takes hidden"
     ),
    ({"core": "modulated", "core_kwargs": {"rule": "oja"}}, "bad core kwargs {'rule': 'oja'} for core 'modulated'"),
    ({"core": "plastic", "core_kwargs": {"rule": "nope"}}, "rule"),
    ({"core": "modulated", "hidden": 0}, "hidden must be a positive integer, got 0"),
    ({"core": "modulated", "core_kwargs": [1]}, "core_kwargs must be a dict"),
])
def test_bad_policy_kwargs_give_one_line_errors(policy_kwargs, message):
    env = make_vec_env(BANDIT, n_envs=1, env_kwargs=SHORT)
    with pytest.raises(ValueError) as error:
        RecurrentPPO(PlasticPolicy, env, policy_kwargs=policy_kwargs, device="cpu")
    assert message in str(error.value) and "\n" not in str(error.value)


def test_an_oversized_rollout_buffer_is_refused_in_one_line_before_it_is_allocated():
    env = make_vec_env(BANDIT, n_envs=4, env_kwargs=SHORT)
    with pytest.raises(MemoryError) as error:  # 16 x 10^6 x 4 x 1,000,500 bytes: 64 TB
        RecurrentPPO(PlasticPolicy, env, n_steps=10**6, device="cpu",
                     policy_kwargs={"core": "retroactive", "hidden": 1000})
    message = str(error.value)
    assert "n_steps=1000000 and n_envs=4" in message and "2001000 floats" in message and "\n" not in message
    packed = PackedCore(build("retroactive", {}))
    with pytest.raises(MemoryError, match="more than the 0.0 GiB"):
        check_rollout_memory(packed, n_steps=128, n_envs=8, limit=1000)
    assert check_rollout_memory(packed, n_steps=128, n_envs=8) == rollout_state_bytes(28, 128, 8) * 5 // 4


def test_the_memory_formula_is_what_recurrent_ppo_allocates():
    model = small_model("retroactive", n_envs=3)
    buffer, width = model.rollout_buffer, model.policy.lstm_actor.hidden_size
    assert width == (6 + 2 * 36 + 1) // 2
    arrays = (buffer.hidden_states_pi, buffer.cell_states_pi, buffer.hidden_states_vf, buffer.cell_states_vf)
    assert sum(a.nbytes for a in arrays) == rollout_state_bytes(width, 16, 3)


# -- learning ------------------------------------------------------------------------------------------------------
@pytest.mark.slow
def test_recurrent_ppo_with_the_modulated_core_learns_a_bandit():
    """Two arms paying 1 and 0, in a random order per episode, 10 pulls: the random policy earns 5 per episode on
    average, win-stay-lose-shift 9.5. Over 100 evaluation episodes (1000 fair coin flips for a random policy) the
    mean of a random policy has a standard deviation of 0.16, so 7.5 is 15 standard deviations above chance.
    Measured (seeds 0-3, 8192 steps, ~5 s each on one core): 9.47, 9.45, 9.00, 8.98."""
    kwargs = {"episode_length": 10, "probabilities": [1.0, 0.0], "hazard_rate": 0.0}
    env = make_vec_env(BANDIT, n_envs=8, seed=0, env_kwargs=kwargs)
    model = RecurrentPPO(PlasticPolicy, env, n_steps=32, batch_size=64, n_epochs=4, learning_rate=1e-3, gamma=0.9,
                         seed=0, device="cpu", policy_kwargs={"core": "modulated", "hidden": 16, "net_arch": []})
    eval_env = make_vec_env(BANDIT, n_envs=1, seed=1000, env_kwargs=kwargs)
    before, _ = evaluate_policy(model, eval_env, n_eval_episodes=100)
    model.learn(8192)
    after, _ = evaluate_policy(model, eval_env, n_eval_episodes=100)
    assert before < 7.0 and after > 7.5, (before, after)


def test_the_issue_snippet_env_id_works_without_importing_envs_first():
    assert "Plastic/CueReward-v0" in gym.registry  # agents.sb3 registers the Plastic/ ids on import


# -- plastic-compare-sb3 --core ------------------------------------------------------------------------------------
def test_compare_sb3_trains_recurrent_ppo_with_a_core_in_our_run_format(tmp_path, capsys):
    out = tmp_path / "bandit-rppo-modulated"
    common = ["--env", "Plastic/ReversalBandit-v0", "--env-kwargs", json.dumps(SHORT), "--episodes", "40",
              "--n-envs", "2", "--batch", "10", "--no-progress"]
    assert compare_sb3.main(["--algo", "recurrent-ppo", "--core", "modulated", "--hidden", "8", *common,
                             "--out", str(out)]) == 0
    assert [r["episodes"] for r in read_metrics(out)][:4] == [10, 20, 30, 40]
    config = json.loads((out / "config.json").read_text())
    assert (config["core"], config["policy"], config["sb3_core"], config["hidden"]) == (
        "sb3-recurrent-ppo-modulated", "PlasticPolicy", "modulated", 8)
    loaded = RecurrentPPO.load(out / "sb3_model.zip", device="cpu")
    assert loaded.policy.core_settings["core"] == "modulated" and loaded.policy.lstm_actor.core.hidden_size == 8
    assert plot.main([str(out), "--out", str(tmp_path / "curve.png")]) == 0
    assert "sb3-recurrent-ppo-modulated" in capsys.readouterr().out
    for bad, message in ((["--algo", "a2c", "--core", "modulated"], "a core needs algo 'recurrent-ppo'"),
                         (["--algo", "recurrent-ppo", "--core", "modulated", "--core-kwargs", '{"wings": 1}'],
                          "bad core kwargs {'wings': 1}")):
        assert compare_sb3.main([*bad, *common, "--out", str(tmp_path / "bad")]) == 2
        err = capsys.readouterr().err
        assert message in err and err.count("\n") == 1
        assert not (tmp_path / "bad").exists()
