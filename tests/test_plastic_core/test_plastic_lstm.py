"""PlasticLSTMCore: exact equations, gradients, clipping, batch independence, registry and bad input."""

import math

import pytest
import torch
from torch import nn
from torch.func import functional_call

from plastic_core.plastic_lstm import PlasticLSTMCore
from plastic_core.registry import core_names, make_core


def _sigmoid(v: float) -> float:
    return 1.0 / (1.0 + math.exp(-v))


def reference_step(core: PlasticLSTMCore, x, h, c, hebb):
    """Direct transcription of the plastic-LSTM equations, one scalar at a time."""
    batch, n = h.shape
    w_x, b_x = core.input_weights.weight, core.input_weights.bias  # rows: i, f, o, g blocks of n
    new_h, new_c, new_hebb = torch.zeros_like(h), torch.zeros_like(c), hebb.clone()
    for b in range(batch):
        g = []
        gate = {}
        for j in range(n):

            def drive(block, j=j, b=b):
                row = block * n + j
                total = float(b_x[row]) + sum(float(w_x[row, k]) * float(x[b, k]) for k in range(x.shape[1]))
                if block < 3:
                    total += sum(float(core.recurrent_weights[row, i]) * float(h[b, i]) for i in range(n))
                return total

            gate[j] = [_sigmoid(drive(block)) for block in range(3)]  # i, f, o
            total = drive(3)
            for i in range(n):
                if core.alpha_kind == "connection":
                    a = float(core.alpha[j, i])
                elif core.alpha_kind == "neuron":
                    a = float(core.alpha[j, 0])
                else:
                    a = float(core.alpha[0, 0])
                total += (float(core.w[j, i]) + a * float(hebb[b, j, i])) * float(h[b, i])
            g.append(math.tanh(total))
        for j in range(n):
            i_gate, f_gate, o_gate = gate[j]
            new_c[b, j] = f_gate * float(c[b, j]) + i_gate * g[j]
            new_h[b, j] = o_gate * math.tanh(float(new_c[b, j]))
        if core.modulation_kind is not None:
            m = math.tanh(sum(float(core.modulator.weight[0, j]) * float(new_h[b, j]) for j in range(n)))
            mod = [m * float(core.fanout[j]) if core.modulation_kind == "fanout" else m for j in range(n)]
        else:
            mod = [float(core.eta)] * n
        for j in range(n):
            for i in range(n):
                value = float(hebb[b, j, i]) + mod[j] * g[j] * float(h[b, i])
                if core.clip is not None:
                    value = min(max(value, -core.clip), core.clip)
                new_hebb[b, j, i] = value
    return new_h, new_c, new_hebb


@pytest.mark.parametrize(
    "options",
    [
        dict(),  # per-neuron alpha, neuromodulated, fanned out, clip 2
        dict(alpha="connection", modulation="scalar"),
        dict(alpha="scalar", modulation=None, eta_init=0.3),
        dict(alpha="neuron", clip=0.05),
        dict(alpha="connection", clip=None, modulation=None, learn_eta=False),
    ],
)
def test_matches_direct_transcription(options):
    torch.manual_seed(0)
    core = PlasticLSTMCore(3, 4, **options).double()
    with torch.no_grad():
        core.alpha.mul_(5.0)
        if core.modulation_kind is not None:
            core.modulator.weight.mul_(4.0)
            if core.modulation_kind == "fanout":
                core.fanout.uniform_(-2.0, 2.0)
    batch = 2
    xs = 2 * torch.randn(6, batch, 3, dtype=torch.float64)
    state = core.initial_state(batch)
    h = torch.zeros(batch, 4, dtype=torch.float64)
    c, hebb = torch.zeros_like(h), torch.zeros(batch, 4, 4, dtype=torch.float64)
    with torch.no_grad():
        for x in xs:
            out, state = core(x, state)
            h, c, hebb = reference_step(core, x, h, c, hebb)
            torch.testing.assert_close(out, h)
            torch.testing.assert_close(state["h"], h)
            torch.testing.assert_close(state["c"], c)
            torch.testing.assert_close(state["hebb"], hebb)
        hs, final = core.unroll(xs, core.initial_state(batch))
    assert hebb.abs().max() > 0.01
    if core.clip is not None and core.clip < 1:
        assert (hebb.abs() == core.clip).any()  # the clipped branch was exercised
    torch.testing.assert_close(hs[-1], h)
    torch.testing.assert_close(final["hebb"], hebb)


def test_built_by_name():
    assert "plastic_lstm" in core_names()
    core = make_core("plastic_lstm", input_size=5, hidden_size=7, alpha="connection", clip=1.0)
    assert isinstance(core, PlasticLSTMCore)
    assert core.alpha.shape == (7, 7) and core.clip == 1.0
    state = core.initial_state(batch_size=3)
    assert set(state) == {"h", "c", "hebb"}
    assert state["hebb"].shape == (3, 7, 7)
    h, state = core(torch.randn(3, 5), state)
    assert h.shape == (3, 7)


class _Episode(nn.Module):
    def __init__(self, core):
        super().__init__()
        self.core = core

    def forward(self, xs):
        hs, state = self.core.unroll(xs, self.core.initial_state(xs.shape[1], dtype=xs.dtype))
        return hs, state["c"], state["hebb"]


@pytest.mark.parametrize(
    "options",
    [
        dict(),
        dict(alpha="connection", modulation="scalar"),
        dict(alpha="scalar", modulation=None),
        dict(clip=0.02),  # clip active: the gradient of the clipped entries is zero
    ],
)
def test_gradcheck_through_several_steps(options):
    torch.manual_seed(1)
    core = PlasticLSTMCore(3, 3, **options)
    with torch.no_grad():
        core.alpha.mul_(5.0)
        if core.modulation_kind is not None:
            core.modulator.weight.mul_(4.0)
    episode = _Episode(core).double()
    names = [name for name, _ in episode.named_parameters()]
    expected = {"core.w", "core.alpha", "core.input_weights.weight", "core.input_weights.bias"}
    expected |= {"core.modulator.weight"} if core.modulation_kind is not None else {"core.eta"}
    assert expected <= set(names)
    params = [p.detach().clone().requires_grad_() for p in episode.parameters()]
    xs = torch.randn(4, 2, 3, dtype=torch.float64, requires_grad=True)

    def run(xs, *tensors):
        return functional_call(episode, dict(zip(names, tensors, strict=True)), (xs,))

    assert torch.autograd.gradcheck(run, (xs, *params))
    hs, c, hebb = run(xs, *params)
    if core.clip < 1:
        assert (hebb.abs() == core.clip).any()
    else:
        assert hebb.abs().max() < core.clip  # the clip is not active here, so every gradient path is open
    (hs.square().sum() + hebb.sum()).backward()
    for name, p in zip(names, params, strict=True):
        assert p.grad is not None and p.grad.abs().sum() > 0, name
    assert xs.grad.abs().sum() > 0


def test_trace_stays_within_clip():
    torch.manual_seed(2)
    core = PlasticLSTMCore(4, 6, clip=2.0)
    with torch.no_grad():
        core.modulator.weight.mul_(20.0)
        core.fanout.fill_(3.0)
    state = core.initial_state(5)
    with torch.no_grad():
        for _ in range(40):
            _, state = core(3 * torch.randn(5, 4), state)
            assert state["hebb"].abs().max() <= 2.0 + 1e-6
    assert torch.isclose(state["hebb"].abs().max(), torch.tensor(2.0))  # the clip was reached


def test_batch_elements_are_independent():
    torch.manual_seed(3)
    core = PlasticLSTMCore(3, 5)
    xs = torch.randn(6, 3, 3)
    with torch.no_grad():
        hs, state = core.unroll(xs, core.initial_state(3))
        changed = xs.clone()
        changed[:, 1] -= 1.0
        hs2, state2 = core.unroll(changed, core.initial_state(3))
        alone, alone_state = core.unroll(xs[:, :1], core.initial_state(1))
    torch.testing.assert_close(hs2[:, [0, 2]], hs[:, [0, 2]])
    torch.testing.assert_close(state2["hebb"][[0, 2]], state["hebb"][[0, 2]])
    assert not torch.allclose(hs2[:, 1], hs[:, 1])
    torch.testing.assert_close(alone[:, 0], hs[:, 0], rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(alone_state["hebb"][0], state["hebb"][0], rtol=1e-5, atol=1e-6)


def test_initial_state_resets_the_episode():
    torch.manual_seed(4)
    core = PlasticLSTMCore(3, 4)
    state = core.initial_state(2)
    assert all(not v.any() for v in state.values())
    xs = torch.randn(5, 2, 3)
    with torch.no_grad():
        first, after = core.unroll(xs, state)
        assert after["hebb"].abs().sum() > 0 and all(not v.any() for v in state.values())
        second, _ = core.unroll(xs, core.initial_state(2))
    torch.testing.assert_close(first, second)


def test_plasticity_changes_the_output():
    """The same input gives a different cell candidate once the trace has grown (alpha matters)."""
    torch.manual_seed(5)
    core = PlasticLSTMCore(3, 4)
    xs = torch.randn(5, 2, 3)
    with torch.no_grad():
        hs, _ = core.unroll(xs, core.initial_state(2))
        core.alpha.zero_()
        hs_frozen, _ = core.unroll(xs, core.initial_state(2))
    torch.testing.assert_close(hs[:2], hs_frozen[:2])  # h(0) = 0: the trace is still 0 for the 2nd step
    assert not torch.allclose(hs[2:], hs_frozen[2:])


def test_bad_input_gets_clear_errors():
    core = PlasticLSTMCore(3, 4)
    state = core.initial_state(2)
    with pytest.raises(ValueError, match="input_size=3"):
        core(torch.zeros(2, 5), state)
    with pytest.raises(ValueError, match="rank 1"):
        core(torch.zeros(3), state)
    with pytest.raises(ValueError, match="another batch size"):
        core(torch.zeros(4, 3), state)
    with pytest.raises(ValueError, match="missing 'hebb'"):
        core(torch.zeros(2, 3), {"h": state["h"], "c": state["c"]})
    with pytest.raises(ValueError, match="unknown alpha"):
        PlasticLSTMCore(3, 4, alpha="row")
    with pytest.raises(ValueError, match="clip"):
        PlasticLSTMCore(3, 4, clip=-1.0)
    with pytest.raises(ValueError, match="hidden_size must be a positive integer"):
        make_core("plastic_lstm", input_size=3, hidden_size=0)
