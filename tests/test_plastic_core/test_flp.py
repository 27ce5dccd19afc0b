"""FLPNetwork: exact inner-loop equations, meta-gradients, batch independence, reset, bad input, and meta-learning."""

import math

import pytest
import torch
from torch import nn
from torch.func import functional_call

from plastic_core.flp import FLPNetwork


def _act(name, v):
    if name == "relu":
        return max(v, 0.0)
    if name == "tanh":
        return math.tanh(v)
    return v


def reference_forward(net: FLPNetwork, weights, x_b):
    """Activities [a_0, ..., a_{L-1}, y_hat] of one batch element as lists of floats."""
    acts = [[float(v) for v in x_b]]
    for layer, w in enumerate(weights):
        n_post, n_in = w.shape
        z = [
            float(net.biases[layer][j]) + sum(float(w[j, i]) * acts[-1][i] for i in range(n_in)) for j in range(n_post)
        ]
        acts.append(z if layer == len(weights) - 1 else [_act(net.activation, v) for v in z])
    return acts


def reference_learn(net: FLPNetwork, weights_per_b, x, y):
    """One inner-loop step written out synapse by synapse; returns the new weights of every batch element."""
    new = []
    for b, weights in enumerate(weights_per_b):
        acts = reference_forward(net, weights, x[b])
        y_hat = acts[-1]
        target = [float(v) for v in y[b]]
        if net.feedback == "target":
            signal = target
        else:
            if net.output == "softmax":
                exps = [math.exp(v) for v in y_hat]
                y_hat = [e / sum(exps) for e in exps]
            signal = [t - p for t, p in zip(target, y_hat, strict=True)]
            if net.error_clip is not None:
                signal = [min(max(v, -net.error_clip), net.error_clip) for v in signal]
        updated = []
        for layer, w in enumerate(weights):
            n_post, n_in = w.shape
            beta = float(net.feedback_strengths[layer])
            fb = net.feedback_weights[layer]
            w_new = w.clone()
            for j in range(n_post):
                f_j = _act(net.feedback_activation, sum(float(fb[j, k]) * signal[k] for k in range(len(signal))))
                p_j = (1 - beta) * acts[layer + 1][j] + beta * f_j
                for i in range(n_in):
                    rate = net.rates[layer]
                    eta = float(
                        rate[j, i]
                        if net.eta_kind == "connection"
                        else rate[j, 0]
                        if net.eta_kind == "neuron"
                        else rate[0, 0]
                    )
                    delta = p_j * acts[layer][i]
                    if net.rule == "oja":
                        delta -= p_j * p_j * float(w[j, i])
                    w_new[j, i] = float(w[j, i]) + eta * delta
            updated.append(w_new)
        new.append(updated)
    return new


@pytest.mark.parametrize(
    "options",
    [
        dict(feedback=feedback, rule=rule, eta=eta)
        for feedback in ("error", "target")
        for rule in ("oja", "hebb")
        for eta in ("connection", "neuron", "scalar")
    ]
    + [
        dict(activation="tanh", output="softmax", feedback_activation="identity"),
        dict(activation="tanh", feedback="target", feedback_activation="identity", feedback_strength=0.8),
        dict(rule="hebb", feedback_activation="identity", error_clip=0.3),
    ],
)
def test_matches_direct_transcription(options):
    torch.manual_seed(0)
    net = FLPNetwork([3, 4, 2], eta_init=0.2, **options).double()
    with torch.no_grad():
        for rate in net.rates:
            rate.uniform_(0.05, 0.3)
        for bias in net.biases:
            bias.uniform_(-0.5, 0.5)
        net.feedback_strengths.uniform_(0.2, 0.8)
    batch = 2
    state = net.initial_state(batch)
    weights = [[w.detach().clone() for w in net.initial_weights] for _ in range(batch)]
    with torch.no_grad():
        for _ in range(3):
            x = torch.randn(batch, 3, dtype=torch.float64)
            y = torch.randn(batch, 2, dtype=torch.float64)
            y_hat = net.predict(x, state)
            for b in range(batch):
                torch.testing.assert_close(
                    y_hat[b], torch.tensor(reference_forward(net, weights[b], x[b])[-1]).double()
                )
            state = net.learn(x, y, state)
            weights = reference_learn(net, weights, x, y)
            for layer in range(net.num_layers):
                expected = torch.stack([weights[b][layer] for b in range(batch)])
                torch.testing.assert_close(state[f"weight_{layer}"], expected)
    moved = sum((state[f"weight_{k}"] - net.initial_weights[k]).abs().max() for k in range(net.num_layers))
    assert moved > 0.01


def test_step_is_predict_then_learn_and_predict_leaves_the_state():
    torch.manual_seed(1)
    net = FLPNetwork([4, 6, 5, 3], eta="neuron")
    state = net.initial_state(3)
    x, y = torch.randn(3, 4), torch.randn(3, 3)
    with torch.no_grad():
        before = {k: v.clone() for k, v in state.items()}
        y_hat = net.predict(x, state)
        assert all(torch.equal(state[k], before[k]) for k in state)
        learned = net.learn(x, y, state)
        y_hat_step, stepped = net.step(x, y, state)
        assert torch.equal(net(x, state), y_hat)
    torch.testing.assert_close(y_hat_step, y_hat)
    for key in learned:
        torch.testing.assert_close(stepped[key], learned[key])
        assert not torch.allclose(learned[key], state[key])


class _Episode(nn.Module):
    """Inner loop of a few examples, then a prediction: what the outer loop backpropagates through."""

    def __init__(self, net):
        super().__init__()
        self.net = net

    def forward(self, xs, ys, x_query):
        state = self.net.initial_state(xs.shape[1], dtype=xs.dtype)
        for x, y in zip(xs, ys, strict=True):
            state = self.net.learn(x, y, state)
        return self.net.predict(x_query, state)


@pytest.mark.parametrize(
    "options",
    [
        dict(),
        dict(eta="neuron", feedback_activation="identity"),
        dict(feedback="target", rule="hebb", eta="scalar", activation="tanh", output="softmax"),
    ],
)
def test_gradcheck_through_the_inner_loop(options):
    torch.manual_seed(2)
    episode = _Episode(FLPNetwork([3, 4, 2], eta_init=0.1, **options)).double()
    names = [name for name, _ in episode.named_parameters()]
    params = [p.detach().clone().requires_grad_() for p in episode.parameters()]
    xs = torch.randn(3, 2, 3, dtype=torch.float64, requires_grad=True)
    ys = torch.randn(3, 2, 2, dtype=torch.float64)
    x_query = torch.randn(2, 3, dtype=torch.float64)

    def run(xs, *tensors):
        return functional_call(episode, dict(zip(names, tensors, strict=True)), (xs, ys, x_query))

    assert torch.autograd.gradcheck(run, (xs, *params))
    run(xs, *params).square().sum().backward()
    groups = {"initial_weights", "biases", "feedback_weights", "rates", "feedback_strengths"}
    assert {name.split(".")[1] for name in names} == groups
    for name, p in zip(names, params, strict=True):
        assert p.grad is not None and p.grad.abs().sum() > 0, name
    assert xs.grad.abs().sum() > 0


def test_batch_elements_are_independent():
    torch.manual_seed(3)
    net = FLPNetwork([3, 5, 2])
    xs, ys = torch.randn(4, 3, 3), torch.randn(4, 3, 2)

    def episode(xs, ys):
        state = net.initial_state(xs.shape[1])
        for x, y in zip(xs, ys, strict=True):
            state = net.learn(x, y, state)
        return net.predict(xs[0], state), state

    with torch.no_grad():
        out, state = episode(xs, ys)
        changed = ys.clone()
        changed[:, 1] += 2.0
        out2, state2 = episode(xs, changed)
        alone, alone_state = episode(xs[:, 2:], ys[:, 2:])
    torch.testing.assert_close(out2[[0, 2]], out[[0, 2]])
    assert not torch.allclose(out2[1], out[1])
    torch.testing.assert_close(alone[0], out[2], rtol=1e-5, atol=1e-6)
    for key in state:
        torch.testing.assert_close(state2[key][[0, 2]], state[key][[0, 2]])
        torch.testing.assert_close(alone_state[key][0], state[key][2], rtol=1e-5, atol=1e-6)


def test_initial_state_is_a_fresh_copy_of_the_initial_weights():
    torch.manual_seed(4)
    net = FLPNetwork([3, 5, 2])
    state = net.initial_state(2)
    assert set(state) == {"weight_0", "weight_1"}
    for layer, w0 in enumerate(net.initial_weights):
        assert state[f"weight_{layer}"].shape == (2, *w0.shape)
        torch.testing.assert_close(state[f"weight_{layer}"], w0.detach().expand(2, -1, -1))
    with torch.no_grad():
        kept = net.initial_weights[0].clone()
        state["weight_0"].add_(1.0)  # a user editing the state in place does not touch the parameters
        assert torch.equal(net.initial_weights[0], kept)
        learned = net.learn(torch.randn(2, 3), torch.randn(2, 2), net.initial_state(2))
        fresh = net.initial_state(2)
    assert not torch.allclose(learned["weight_0"], fresh["weight_0"])
    torch.testing.assert_close(fresh["weight_0"], net.initial_weights[0].detach().expand(2, -1, -1))


def test_error_clip_keeps_an_unstable_inner_loop_finite():
    """Rates far past the stable step make the error oscillate and grow; clamped errors bound every update."""
    torch.manual_seed(0)
    x, y = torch.randn(300, 8, 5), torch.randn(300, 8, 1)
    outputs = {}
    for clip in (None, 1.0):
        torch.manual_seed(1)
        net = FLPNetwork([5, 16, 1], rule="hebb", eta_init=2.0, feedback_activation="identity",
                         feedback_strength=1.0, error_clip=clip)
        state = net.initial_state(8)
        with torch.no_grad():
            for t in range(300):
                y_hat, state = net.step(x[t], y[t], state)
        outputs[clip] = y_hat
    assert not torch.isfinite(outputs[None]).all()
    assert torch.isfinite(outputs[1.0]).all()


def test_bad_input_gets_clear_errors():
    net = FLPNetwork([3, 4, 2])
    state = net.initial_state(2)
    x, y = torch.zeros(2, 3), torch.zeros(2, 2)
    with pytest.raises(ValueError, match="layer_sizes\\[0\\]=3"):
        net.predict(torch.zeros(2, 4), state)
    with pytest.raises(ValueError, match=r"shape \(B, 3\)"):
        net.predict(torch.zeros(3), state)
    with pytest.raises(ValueError, match="another batch size"):
        net.learn(torch.zeros(5, 3), torch.zeros(5, 2), state)
    with pytest.raises(ValueError, match="target must have shape"):
        net.learn(x, torch.zeros(2, 3), state)
    with pytest.raises(TypeError, match="target must be a torch.Tensor"):
        net.learn(x, [0.0, 1.0], state)
    with pytest.raises(ValueError, match="missing 'weight_1'"):
        net.predict(x, {"weight_0": state["weight_0"]})
    with pytest.raises(TypeError, match="dict"):
        net.step(x, y, [state["weight_0"], state["weight_1"]])
    with pytest.raises(ValueError, match="at least two sizes"):
        FLPNetwork([3])
    with pytest.raises(ValueError, match=r"layer_sizes\[1\] must be a positive integer"):
        FLPNetwork([3, 0, 2])
    for bad in (0.0, -1.0, float("nan"), True, "1"):
        with pytest.raises(ValueError, match="error_clip must be a positive finite number"):
            FLPNetwork([3, 2], error_clip=bad)
    for option, value in [
        ("feedback", "gradient"),
        ("rule", "bcm"),
        ("eta", "global"),
        ("activation", "gelu"),
        ("output", "sigmoid"),
        ("feedback_activation", "tanh"),
    ]:
        with pytest.raises(ValueError, match=f"unknown {option} '{value}'"):
            FLPNetwork([3, 2], **{option: value})


def test_meta_learns_continual_association():
    """Each episode: 4 one-hot cues get random targets in [-1, 1]^2, shown once each, one after another; then every
    cue is queried. No fixed weights can know the targets (chance MSE 1/3): only the inner-loop plasticity can."""
    torch.manual_seed(0)
    n_cues, n_out, batch = 4, 2, 32
    net = FLPNetwork([n_cues, 16, n_out])
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-2)
    cues = torch.eye(n_cues).unsqueeze(1).expand(n_cues, batch, n_cues)

    def episode_loss():
        targets = torch.rand(n_cues, batch, n_out) * 2 - 1
        state = net.initial_state(batch)
        for cue, target in zip(cues, targets, strict=True):
            state = net.learn(cue, target, state)
        return torch.stack(
            [(net.predict(cue, state) - t).square().mean() for cue, t in zip(cues, targets, strict=True)]
        ).mean()

    losses = []
    for _ in range(300):
        loss = episode_loss()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    start, end = sum(losses[:10]) / 10, sum(losses[-20:]) / 20
    assert start > 0.2
    assert end < 0.05, (start, end)
    with torch.no_grad():  # the plasticity is what learned: without it the trained network is back near chance
        for rate in net.rates:
            rate.zero_()
        frozen = torch.stack([episode_loss() for _ in range(5)]).mean()
    assert frozen > 0.25
