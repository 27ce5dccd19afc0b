"""PlasticLinear: exact equations, gradients, clipping, batch independence, bad input, and a 2016 task that learns."""

import math

import pytest
import torch
from torch import nn
from torch.func import functional_call

from plastic_core.plastic_linear import PlasticLinear


def reference_step(layer: PlasticLinear, x, hebb, target=None):
    """Direct transcription of the equations, one scalar at a time: returns y (B, out) and the new trace.

    Indices as the layer's docstring: j postsynaptic (output), k presynaptic (input); w, alpha, hebb [j, k]."""
    batch, n_out, n_in = hebb.shape
    eta = float(layer.eta)
    y = torch.zeros(batch, n_out, dtype=torch.float64)
    for b in range(batch):
        pre_act = []
        for j in range(n_out):
            total = float(layer.bias[j]) if layer.bias is not None else 0.0
            for k in range(n_in):
                if layer.alpha_kind == "connection":
                    a = float(layer.alpha[j, k])
                elif layer.alpha_kind == "neuron":
                    a = float(layer.alpha[j, 0])
                else:
                    a = float(layer.alpha[0, 0])
                total += (float(layer.w[j, k]) + a * float(hebb[b, j, k])) * float(x[b, k])
            pre_act.append(total)
        if layer.activation == "tanh":
            out = [math.tanh(v) for v in pre_act]
        elif layer.activation == "softmax":
            exps = [math.exp(v) for v in pre_act]
            out = [e / sum(exps) for e in exps]
        else:
            out = pre_act
        y[b] = torch.tensor(out, dtype=torch.float64)
    post = y if target is None else target
    new = hebb.clone()
    for b in range(batch):
        for k in range(n_in):
            for j in range(n_out):
                h, xk, yj = float(hebb[b, j, k]), float(x[b, k]), float(post[b, j])
                if layer.rule == "decay":
                    h = (1 - eta) * h + eta * xk * yj
                elif layer.rule == "oja":
                    h = h + eta * yj * (xk - yj * h)
                else:
                    h = h + eta * xk * yj
                if layer.clip is not None:
                    h = min(max(h, -layer.clip), layer.clip)
                new[b, j, k] = h
    return y, new


@pytest.mark.parametrize(
    "options",
    [
        dict(rule="decay", alpha="connection", activation="tanh"),
        dict(rule="oja", alpha="neuron", activation="identity"),
        dict(rule="hebb", alpha="scalar", activation="tanh", clip=0.1, bias=False),
        dict(rule="oja", alpha="connection", activation="softmax", eta_init=0.3),
        dict(rule="decay", alpha="scalar", activation="none", eta_init=0.6, learn_eta=False),
    ],
)
def test_matches_direct_transcription(options):
    torch.manual_seed(0)
    layer = PlasticLinear(3, 2, **options).double()
    with torch.no_grad():
        layer.alpha.mul_(4.0)  # make the plastic term matter
    batch, steps = 2, 5
    xs = torch.randn(steps, batch, 3, dtype=torch.float64)
    state = layer.initial_state(batch)
    hebb_ref = torch.zeros(batch, 2, 3, dtype=torch.float64)  # [b, post, pre]
    with torch.no_grad():
        for x in xs:
            y, state = layer(x, state)
            y_ref, hebb_ref = reference_step(layer, x, hebb_ref)
            torch.testing.assert_close(y, y_ref)
            torch.testing.assert_close(state["hebb"], hebb_ref)
    assert hebb_ref.abs().max() > 0.05  # the trace really moved
    if layer.clip is not None:
        assert (hebb_ref.abs() == layer.clip).any()  # the clipped branch was exercised
    # unroll runs the same steps
    with torch.no_grad():
        ys, final = layer.unroll(xs, layer.initial_state(batch))
    torch.testing.assert_close(final["hebb"], hebb_ref)


@pytest.mark.parametrize("rule", ["decay", "oja"])
def test_target_clamps_the_postsynaptic_activity(rule):
    torch.manual_seed(1)
    layer = PlasticLinear(4, 3, rule=rule, activation="softmax", eta_init=0.4).double()
    x = torch.randn(2, 4, dtype=torch.float64)
    target = torch.eye(3, dtype=torch.float64)[[2, 0]]
    state = layer.initial_state(2)
    with torch.no_grad():
        state["hebb"] = 0.3 * torch.randn(2, 3, 4, dtype=torch.float64)  # [b, post, pre]
        y, new = layer(x, state, target=target)
        y_ref, hebb_ref = reference_step(layer, x, state["hebb"], target=target)
    torch.testing.assert_close(y, y_ref)  # returned y is the layer's own output
    torch.testing.assert_close(new["hebb"], hebb_ref)
    with torch.no_grad():
        _, unclamped = layer(x, state)
    assert not torch.allclose(unclamped["hebb"], new["hebb"])


class _Episode(nn.Module):
    """Wraps a layer so that functional_call can swap its parameters: a few steps from a zero trace."""

    def __init__(self, layer):
        super().__init__()
        self.layer = layer

    def forward(self, xs):
        ys, state = self.layer.unroll(xs, self.layer.initial_state(xs.shape[1], dtype=xs.dtype))
        return ys, state["hebb"]


@pytest.mark.parametrize("rule,alpha", [("decay", "connection"), ("oja", "neuron"), ("hebb", "scalar")])
def test_gradcheck_through_several_steps(rule, alpha):
    torch.manual_seed(2)
    episode = _Episode(PlasticLinear(3, 2, rule=rule, alpha=alpha, eta_init=0.3)).double()
    names = [name for name, _ in episode.named_parameters()]
    assert {"layer.w", "layer.alpha", "layer.eta", "layer.bias"} == set(names)
    params = [p.detach().clone().requires_grad_() for p in episode.parameters()]
    xs = torch.randn(4, 2, 3, dtype=torch.float64, requires_grad=True)

    def run(xs, *tensors):
        return functional_call(episode, dict(zip(names, tensors, strict=True)), (xs,))

    assert torch.autograd.gradcheck(run, (xs, *params))
    ys, hebb = run(xs, *params)
    (ys.square().sum() + hebb.sum()).backward()
    for name, p in zip(names, params, strict=True):
        assert p.grad is not None and p.grad.abs().sum() > 0, name
    assert xs.grad.abs().sum() > 0


def test_fixed_eta_is_not_a_parameter():
    layer = PlasticLinear(3, 2, learn_eta=False, eta_init=0.25)
    assert "eta" not in dict(layer.named_parameters())
    assert float(layer.eta) == 0.25
    assert "eta" in dict(layer.named_buffers())  # moves with .to() / .double() and is saved in state_dict


def test_trace_stays_within_clip():
    torch.manual_seed(3)
    layer = PlasticLinear(5, 4, rule="hebb", eta_init=0.5, clip=0.7, activation="identity")
    state = layer.initial_state(3)
    with torch.no_grad():
        for _ in range(30):
            _, state = layer(3 * torch.randn(3, 5), state)
            assert state["hebb"].abs().max() <= 0.7 + 1e-7
    assert torch.isclose(state["hebb"].abs().max(), torch.tensor(0.7))  # the clip was reached


def test_batch_elements_are_independent():
    torch.manual_seed(4)
    layer = PlasticLinear(4, 3, rule="oja")
    xs = torch.randn(6, 3, 4)
    with torch.no_grad():
        ys, state = layer.unroll(xs, layer.initial_state(3))
        changed = xs.clone()
        changed[:, 1] += 1.0
        ys2, state2 = layer.unroll(changed, layer.initial_state(3))
        alone, alone_state = layer.unroll(xs[:, 2:3], layer.initial_state(1))
    torch.testing.assert_close(ys2[:, [0, 2]], ys[:, [0, 2]])
    torch.testing.assert_close(state2["hebb"][[0, 2]], state["hebb"][[0, 2]])
    assert not torch.allclose(ys2[:, 1], ys[:, 1])
    torch.testing.assert_close(alone[:, 0], ys[:, 2], rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(alone_state["hebb"][0], state["hebb"][2], rtol=1e-5, atol=1e-6)


def test_initial_state_resets_the_episode():
    torch.manual_seed(5)
    layer = PlasticLinear(4, 3)
    state = layer.initial_state(2)
    assert state["hebb"].shape == (2, 3, 4) and not state["hebb"].any()  # [b, out, in]
    xs = torch.randn(5, 2, 4)
    with torch.no_grad():
        first, after = layer.unroll(xs, state)
        assert after["hebb"].abs().sum() > 0 and not state["hebb"].any()  # the input state is not modified
        second, _ = layer.unroll(xs, layer.initial_state(2))
    torch.testing.assert_close(first, second)


def test_bad_input_gets_clear_errors():
    layer = PlasticLinear(4, 3)
    state = layer.initial_state(2)
    with pytest.raises(ValueError, match="in_features=4"):
        layer(torch.zeros(2, 5), state)
    with pytest.raises(ValueError, match="rank 3"):
        layer(torch.zeros(1, 2, 4), state)
    with pytest.raises(ValueError, match="another batch size"):
        layer(torch.zeros(3, 4), state)
    with pytest.raises(ValueError, match="missing 'hebb'"):
        layer(torch.zeros(2, 4), {})
    with pytest.raises(TypeError, match="torch.Tensor"):
        layer([[0.0] * 4] * 2, state)
    with pytest.raises(TypeError, match="dict"):
        layer(torch.zeros(2, 4), state["hebb"])
    with pytest.raises(ValueError, match="target must have shape"):
        layer(torch.zeros(2, 4), state, target=torch.zeros(2, 4))
    with pytest.raises(ValueError, match=r"\(T, B, in_features\)"):
        layer.unroll(torch.zeros(2, 4), state)
    with pytest.raises(ValueError, match="unknown rule 'bogus'"):
        PlasticLinear(4, 3, rule="bogus")
    with pytest.raises(ValueError, match="unknown alpha"):
        PlasticLinear(4, 3, alpha="row")
    with pytest.raises(ValueError, match="unknown activation"):
        PlasticLinear(4, 3, activation="relu6")
    with pytest.raises(ValueError, match="clip"):
        PlasticLinear(4, 3, clip=0.0)
    with pytest.raises(ValueError, match="out_features must be a positive integer"):
        PlasticLinear(4, 0)
    with pytest.raises(ValueError, match="batch_size"):
        layer.initial_state(0)


def test_learns_pattern_completion_2016():
    """8 bits +-1; step 1 the pattern, step 2 one of its bits; output the full pattern at step 2 (Miconi 2016).

    Without plasticity the best possible error is 7 (one known bit); from ~8 the plastic layer gets well below 1.
    """
    torch.manual_seed(0)
    n, batch = 8, 32
    layer = PlasticLinear(n, n, rule="decay", eta_init=0.5, learn_eta=False)
    optimizer = torch.optim.Adam(layer.parameters(), lr=3e-2)
    losses = []
    for _ in range(400):
        pattern = torch.randint(0, 2, (batch, n)).float() * 2 - 1
        keep = nn.functional.one_hot(torch.randint(0, n, (batch,)), n).float()
        ys, _ = layer.unroll(torch.stack([pattern, pattern * keep]), layer.initial_state(batch))
        loss = (ys[1] - pattern).abs().sum(1).mean()  # Manhattan error at step 2
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    start, end = sum(losses[:10]) / 10, sum(losses[-20:]) / 20
    assert start > 6.0
    assert end < 0.5, (start, end)
