"""Recurrent cores behind make_core: exactness against the plain transcription, gradients, bounds, interface."""

from __future__ import annotations

import pytest
import torch
from cases.cores import BATCH, CONFIGS, HIDDEN, INPUT, PLASTIC, build, config_id, inputs, random_state

from plastic_core import count_parameters, make_core
from plastic_core.reference import reference_unroll


# -- exactness ----------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("config", CONFIGS, ids=config_id)
@pytest.mark.parametrize("start", ["zeros", "random"])
def test_unroll_matches_reference_transcription(config, start):
    core = build(*config)
    state = core.initial_state(BATCH) if start == "zeros" else random_state(core, BATCH)
    xs = inputs(12)
    with torch.no_grad():
        hs, final = core.unroll(xs, state)
        ref_hs, ref_final = reference_unroll(core, xs, state)
    torch.testing.assert_close(hs, ref_hs, rtol=1e-10, atol=1e-10)
    assert final.keys() == ref_final.keys() == state.keys()
    for key in final:
        torch.testing.assert_close(final[key], ref_final[key], rtol=1e-10, atol=1e-10, msg=f"final state {key!r}")
    if "hebb" in final:  # the traces moved: the comparison covered the update rule, not just zeros
        assert (final["hebb"] - state["hebb"]).abs().max() > 1e-2


@pytest.mark.parametrize(
    "config", [("plastic", {"rule": "hebb", "clip": 0.3, "eta_init": 0.9}), ("modulated", {"clip": 0.2})],
    ids=config_id,
)
def test_reference_comparison_covers_active_clip(config):
    core = build(*config)
    xs = inputs(12)
    with torch.no_grad():
        _, final = core.unroll(xs, core.initial_state(BATCH))
        _, ref_final = reference_unroll(core, xs, core.initial_state(BATCH))
    hebb = final["hebb"]
    assert (hebb.abs() == core.clip).any(), "the clip never engaged"
    torch.testing.assert_close(hebb, ref_final["hebb"], rtol=1e-10, atol=1e-10)


def test_plastic_core_without_plasticity_is_the_rnn():
    rnn, plastic = build("rnn", {}), build("plastic", {})
    with torch.no_grad():
        plastic.w_in.load_state_dict(rnn.w_in.state_dict())
        plastic.w.copy_(rnn.w)
        plastic.alpha.zero_()
    xs = inputs(8)
    torch.testing.assert_close(plastic.unroll(xs, plastic.initial_state(BATCH))[0],
                               rnn.unroll(xs, rnn.initial_state(BATCH))[0])


# -- gradients ------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("config", CONFIGS, ids=config_id)
def test_gradcheck_through_steps(config):
    """float64 gradcheck w.r.t. inputs, the initial state and every parameter, through 3 steps."""
    core = build(*config, hidden=4)
    xs = inputs(3, batch=2).requires_grad_()
    state = {k: v.requires_grad_() for k, v in random_state(core, 2).items()}
    keys, params = list(state), list(core.parameters())

    def run(xs, *tensors):  # parameters are perturbed in place by gradcheck, so the core sees them directly
        hs, final = core.unroll(xs, dict(zip(keys, tensors[: len(keys)], strict=True)))
        return (hs, *final.values())

    assert torch.autograd.gradcheck(run, (xs, *state.values(), *params), eps=1e-6, atol=1e-6)


@pytest.mark.parametrize("config", PLASTIC, ids=config_id)
def test_gradients_reach_every_parameter(config):
    core = build(*config)
    hs, final = core.unroll(inputs(6), core.initial_state(BATCH))  # from an episode start
    (hs.pow(2).sum() + final["hebb"].sum()).backward()
    expected = {"w", "alpha", "w_in.weight", "w_in.bias"}
    expected |= {"eta"} if hasattr(core, "eta") else set()
    expected |= {"modulator.weight", "modulator.bias"} if hasattr(core, "modulator") else set()
    expected |= {"fanout"} if config[1].get("modulation") == "fanout" else set()
    grads = dict(core.named_parameters())
    assert expected <= grads.keys()
    for name in expected:
        grad = grads[name].grad
        assert grad is not None and grad.abs().max() > 1e-8, f"no gradient reaches {name}"


# -- bounds ---------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("config", [
    ("plastic", {"rule": "decay", "eta_init": 1.5}),
    ("plastic", {"rule": "oja", "eta_init": 1.5, "clip": 0.5}),
    ("plastic", {"rule": "hebb", "eta_init": 0.5}),
    ("modulated", {"clip": 0.7}),
    ("modulated", {"modulation": "fanout"}),
    ("retroactive", {"eta_init": 0.9}),
    ("retroactive", {"alpha": "neuron", "modulation": "fanout", "clip": 2.0}),
], ids=config_id)
def test_hebb_stays_within_clip_over_long_unrolls(config):
    core = build(*config, hidden=8)
    with torch.no_grad():
        state, peak = core.initial_state(4), 0.0
        for x in torch.randn(300, 4, INPUT, dtype=torch.float64) * 3:
            _, state = core(x, state)
            peak = max(peak, state["hebb"].abs().max().item())
            assert peak <= core.clip
    assert peak > 0.9 * core.clip, "the unroll never came near the bound: the test did not exercise it"


def test_unclipped_trace_leaves_the_bound_that_clipping_keeps():
    """eta = 2.5 makes the decay rule unstable: only the clip keeps Hebb bounded."""
    xs = torch.randn(100, 4, INPUT, dtype=torch.float64) * 3
    peaks = {}
    for clip in (1.0, None):
        core = build("plastic", {"rule": "decay", "eta_init": 2.5, "clip": clip})
        with torch.no_grad():
            peaks[clip] = core.unroll(xs, core.initial_state(4))[1]["hebb"].abs().max().item()
    assert peaks[1.0] <= 1.0 < peaks[None]


# -- interface ------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("config", CONFIGS, ids=config_id)
def test_initial_state_is_zeros_and_episodes_do_not_leak(config):
    core = build(*config)
    state = core.initial_state(BATCH)
    assert all(v.dtype == torch.float64 and v.shape[0] == BATCH and not v.any() for v in state.values())
    assert state["h"].shape == (BATCH, HIDDEN)
    xs = inputs(6)
    first, _ = core.unroll(xs, state)
    core.unroll(inputs(9, seed=5), core.initial_state(BATCH))  # another episode in between
    again, _ = core.unroll(xs, core.initial_state(BATCH))
    torch.testing.assert_close(first, again, rtol=0, atol=0)
    assert not any(v.any() for v in core.initial_state(BATCH).values())


@pytest.mark.parametrize("config", CONFIGS, ids=config_id)
def test_batch_elements_are_independent(config):
    core = build(*config)
    xs = inputs(8)
    changed = xs.clone()
    changed[:, 1] += torch.randn(8, INPUT, dtype=torch.float64)
    with torch.no_grad():
        hs, final = core.unroll(xs, core.initial_state(BATCH))
        hs2, final2 = core.unroll(changed, core.initial_state(BATCH))
    torch.testing.assert_close(hs2[:, [0, 2]], hs[:, [0, 2]], rtol=0, atol=1e-14)
    for key in final:
        torch.testing.assert_close(final2[key][[0, 2]], final[key][[0, 2]], rtol=0, atol=1e-14)
    assert (hs2[:, 1] - hs[:, 1]).abs().max() > 1e-3


@pytest.mark.parametrize("config", CONFIGS, ids=config_id)
def test_unroll_equals_repeated_forward(config):
    core = build(*config)
    xs, state = inputs(7), random_state(core, BATCH)
    hs, final = core.unroll(xs, state)
    steps = []
    for x in xs:
        h, state = core(x, state)
        steps.append(h)
    assert hs.shape == (7, BATCH, HIDDEN)
    torch.testing.assert_close(hs, torch.stack(steps), rtol=1e-12, atol=1e-12)
    for key in final:
        torch.testing.assert_close(final[key], state[key], rtol=1e-12, atol=1e-12)


def test_float32_cores_keep_float32_state():
    core = make_core("retroactive", INPUT, HIDDEN, modulation="fanout")
    state = core.initial_state(2)
    assert {k: v.dtype for k, v in state.items()} == dict.fromkeys(("h", "hebb", "eligibility"), torch.float32)
    h, state = core(torch.randn(2, INPUT), state)
    assert h.dtype == torch.float32 and state["eligibility"].shape == (2, HIDDEN, HIDDEN)


# -- parameter matching (maze comparison of Backpropamine) ----------------------------------------------------------
@pytest.mark.parametrize("name,hidden", [("rnn", 139), ("plastic", 101), ("modulated", 100), ("retroactive", 100)])
def test_parameter_matched_cores_land_near_22_5k(name, hidden):
    heads = 5 * (hidden + 1)  # 4 action logits + 1 value, linear
    total = count_parameters(make_core(name, 17, hidden)) + heads
    assert abs(total - 22_500) <= 0.02 * 22_500, total


def test_parameter_counts_follow_the_options():
    i, n = 17, 10
    base = i * n + n + n * n  # W_in, b, w
    assert count_parameters(make_core("rnn", i, n)) == base
    assert count_parameters(make_core("plastic", i, n)) == base + n * n + 1
    assert count_parameters(make_core("plastic", i, n, alpha="neuron")) == base + n + 1
    assert count_parameters(make_core("modulated", i, n, alpha="scalar")) == base + 1 + n + 1
    assert count_parameters(make_core("retroactive", i, n, modulation="fanout")) == base + n * n + n + 1 + n + 1


# -- bad input ------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name,opts,match", [
    ("hebbian", {}, "unknown core 'hebbian'"),
    ("plastic", {"rule": "bcm"}, "unknown rule 'bcm'; expected one of 'decay', 'oja', 'hebb'"),
    ("plastic", {"alpha": "synapse"}, "unknown alpha 'synapse'; expected one of 'connection', 'neuron', 'scalar'"),
    ("modulated", {"modulation": "vector"}, "unknown modulation 'vector'; expected one of 'scalar', 'fanout'"),
    ("retroactive", {"alpha": "row"}, "unknown alpha 'row'"),
    ("plastic", {"clip": 0.0}, "clip must be a positive finite number"),
    ("modulated", {"clip": float("nan")}, "clip must be a positive finite number"),
    ("plastic", {"rule": "hebb", "clip": None}, "clip=None is not allowed"),
    ("retroactive", {"clip": None}, "clip=None is not allowed"),
    ("plastic", {"eta_init": "0.1"}, "eta_init must be a finite number"),
])
def test_bad_options_are_named(name, opts, match):
    with pytest.raises(ValueError, match=match):
        make_core(name, INPUT, HIDDEN, **opts)


@pytest.mark.parametrize("name,option", [("plastic", "modulation"), ("modulated", "eta_init"), ("rnn", "alpha")])
def test_options_a_core_does_not_have_are_rejected(name, option):
    with pytest.raises(TypeError, match=option):
        make_core(name, INPUT, HIDDEN, **{option: "scalar"})


@pytest.mark.parametrize("name", ["rnn", "lstm", "plastic", "modulated", "retroactive"])
def test_bad_sizes_and_inputs_are_named(name):
    with pytest.raises(ValueError, match="hidden_size must be a positive integer, got 0"):
        make_core(name, INPUT, 0)
    with pytest.raises(ValueError, match="input_size must be a positive integer, got -3"):
        make_core(name, -3, HIDDEN)
    core = make_core(name, INPUT, HIDDEN)
    with pytest.raises(ValueError, match="batch_size must be a positive integer"):
        core.initial_state(0)
    state = core.initial_state(2)
    with pytest.raises(ValueError, match="input_size=3"):
        core(torch.randn(2, INPUT + 1), state)
    with pytest.raises(ValueError, match="rank 3"):
        core(torch.randn(4, 2, INPUT), state)
    with pytest.raises(ValueError, match="rank 2"):
        core.unroll(torch.randn(2, INPUT), state)
    with pytest.raises(ValueError, match="another batch size"):
        core(torch.randn(5, INPUT), state)
    with pytest.raises(ValueError, match="another batch size"):
        core.unroll(torch.randn(4, 5, INPUT), state)
    with pytest.raises(ValueError, match="state is missing 'h'"):
        core(torch.randn(2, INPUT), {k: v for k, v in state.items() if k != "h"})
    with pytest.raises(TypeError, match="input must be a torch.Tensor"):
        core([[0.0] * INPUT] * 2, state)
