"""The fused plastic recurrence (plastic_core.fused, native C++ and eager kernels) against the plain transcription.

Same outputs, final traces and gradients (every parameter, the inputs and the initial state) as
``reference_unroll`` with autograd: float64 to 1e-10 for every rule, alpha kind and modulation kind, with and
without checkpoints (spacing that does not divide T), float64 gradcheck, float32 on longer unrolls with the clip
engaged; the act-then-replay tape; memory bookkeeping; errors.
"""

from __future__ import annotations

import copy
import math

import pytest
import torch
import torch.nn.functional as F
from cases.cores import INPUT, PLASTIC, build, config_id, inputs, random_state

from plastic_core import make_core, native
from plastic_core.fused import (
    PlasticTape,
    ReplayTape,
    TracePool,
    fusable,
    fused_unroll,
    record,
)
from plastic_core.plastic_rnn import PlasticRNN
from plastic_core.recurrence import EagerRecurrence, NativeRecurrence
from plastic_core.reference import reference_unroll

NATIVE_OK = native.load(torch.float64) is not None and native.load(torch.float32) is not None
BACKENDS = ["eager", pytest.param("native", marks=pytest.mark.skipif(not NATIVE_OK, reason="no C++ compiler"))]


def weighted_loss(hs: torch.Tensor, final: dict[str, torch.Tensor]) -> torch.Tensor:
    """A loss that reaches every output with distinct weights (so that transposed gradients would differ)."""
    weights = torch.linspace(-1, 1, hs.numel(), dtype=hs.dtype).view_as(hs)
    traces = sum((v * torch.linspace(-0.5, 1, v.numel(), dtype=v.dtype).view_as(v)).sum()
                 for k, v in final.items() if k != "h")
    return (hs * weights).sum() + traces


def outputs_and_grads(core, xs, state, unroll) -> tuple[list[torch.Tensor], list[str]]:
    """[hs, final state..., dL/dxs, dL/dstate..., dL/dparameters...] of ``weighted_loss``, and their names."""
    core.zero_grad(set_to_none=True)
    xs = xs.detach().clone().requires_grad_()
    state = {k: v.detach().clone().requires_grad_() for k, v in state.items()}
    hs, final = unroll(core, xs, state)
    weighted_loss(hs, final).backward()
    names = ["hs", *(f"final {k}" for k in final), "d xs", *(f"d state {k}" for k in state),
             *(f"d {n}" for n, _ in core.named_parameters())]
    values = [hs, *final.values(), xs.grad, *(v.grad for v in state.values()),
              *(p.grad for _, p in core.named_parameters())]
    return [v.detach() for v in values], names


def reference(core, xs, state):
    return reference_unroll(core, xs, state)


def fused(backend: str, every: int | None = None):
    return lambda core, xs, state: fused_unroll(core, core.w_in(xs), state, checkpoint_every=every, backend=backend)


# -- exactness, float64 ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("config", PLASTIC, ids=config_id)
@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("every", [None, 1, 5])  # auto (sqrt), every step kept, a spacing that does not divide T
def test_outputs_and_gradients_match_the_reference(config, backend, every):
    core = build(*config)
    xs, state = inputs(12), random_state(core, 3)
    got, names = outputs_and_grads(core, xs, state, fused(backend, every))
    want, _ = outputs_and_grads(core, xs, state, reference)
    for name, a, b in zip(names, got, want, strict=True):
        assert b is not None and a is not None, name
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-10, msg=name)
    assert (want[names.index("final hebb")] - state["hebb"]).abs().max() > 1e-2  # the traces moved


@pytest.mark.skipif(not NATIVE_OK, reason="no C++ compiler")
@pytest.mark.parametrize("hidden", [5, 8])  # rows of 8 floats/doubles are aligned for streaming stores, of 5 not
@pytest.mark.parametrize("config", [("retroactive", {"modulation": "fanout"}), ("plastic", {"rule": "oja"}),
                                    ("modulated", {"alpha": "neuron"})], ids=config_id)
def test_streaming_stores_of_large_traces_change_nothing(monkeypatch, config, hidden):
    monkeypatch.setattr(native, "STREAM_BYTES", 0)  # every trace counts as large: checkpoints and recomputed traces
    core = build(*config, hidden=hidden)
    xs, state = inputs(12), random_state(core, 3)
    want, names = outputs_and_grads(core, xs, state, reference)
    for every in (None, 1):
        got, _ = outputs_and_grads(core, xs, state, fused("native", every))
        for name, a, b in zip(names, got, want, strict=True):
            torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-10, msg=f"{name}, checkpoint_every={every}")
    core32 = copy.deepcopy(core).float()
    got32, _ = outputs_and_grads(core32, xs.float(), {k: v.float() for k, v in state.items()}, fused("native", 1))
    for name, a, b in zip(names, got32, want, strict=True):
        torch.testing.assert_close(a.double(), b, rtol=2e-3, atol=2e-4, msg=f"float32 {name}")


@pytest.mark.parametrize("config", PLASTIC, ids=config_id)
@pytest.mark.parametrize("backend", BACKENDS)
def test_gradcheck(config, backend):
    """float64 gradcheck w.r.t. inputs, the initial state and every parameter, 4 steps, checkpoints every 3."""
    core = build(*config, hidden=4)
    xs = inputs(4, batch=2).requires_grad_()
    state = {k: v.requires_grad_() for k, v in random_state(core, 2).items()}
    keys, params = list(state), list(core.parameters())

    def run(xs, *tensors):
        hs, final = fused_unroll(core, core.w_in(xs), dict(zip(keys, tensors[: len(keys)], strict=True)),
                                 checkpoint_every=3, backend=backend)
        return (hs, *(v for k, v in final.items() if k != "h"))

    assert torch.autograd.gradcheck(run, (xs, *state.values(), *params), eps=1e-6, atol=1e-6)


# -- float32, longer unrolls, clip engaged ----------------------------------------------------------------------------
@pytest.mark.parametrize("config", PLASTIC, ids=config_id)
@pytest.mark.parametrize("backend", BACKENDS)
def test_float32_long_unroll_is_as_accurate_as_the_reference(config, backend):
    """Against float64 ground truth, the fused float32 path is no less accurate than the reference in float32."""
    name, opts = config
    torch.manual_seed(0)
    core = make_core(name, INPUT, 16, **opts)
    with torch.no_grad():
        for pname, p in core.named_parameters():
            if pname in ("alpha", "modulator.weight"):  # strong plasticity, not yet chaotic in float32
                p.mul_(1.5)
            elif pname == "fanout":
                p.uniform_(0.5, 1.5)
    xs, state = torch.randn(60, 4, INPUT) * 2, core.initial_state(4)
    core64 = copy.deepcopy(core).double()
    truth, names = outputs_and_grads(core64, xs.double(), {k: v.double() for k, v in state.items()}, reference)
    ref32, _ = outputs_and_grads(core, xs, state, reference)
    got32, _ = outputs_and_grads(core, xs, state, fused(backend))
    assert got32[0].dtype == torch.float32
    for label, a, r, t in zip(names, got32, ref32, truth, strict=True):
        scale = t.abs().max().clamp(min=1e-12)
        err, ref_err = ((a.double() - t).abs().max() / scale).item(), ((r.double() - t).abs().max() / scale).item()
        assert err <= 10 * ref_err + 2e-4, f"{label}: relative error {err:.1e}, reference float32 {ref_err:.1e}"
    if core.clip is not None and name != "plastic":
        assert (truth[names.index("final hebb")].abs() >= core.clip * (1 - 1e-12)).any(), "the clip never engaged"


# -- act, then replay -------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("config", [("retroactive", {"modulation": "fanout"}), ("plastic", {"rule": "oja"}),
                                    ("modulated", {"alpha": "neuron"})], ids=config_id)
@pytest.mark.parametrize("backend", BACKENDS)
def test_replay_returns_what_acting_saw_and_exact_gradients(config, backend):
    core = build(*config)
    xs, state = inputs(23), random_state(core, 3)  # 23 steps: thinned checkpoints, last segment partial
    tape = record(core, state, backend=backend)
    stepped = torch.stack([tape.step(x) for x in xs])
    assert not stepped.requires_grad
    hs, final = tape.replay()
    assert hs.requires_grad
    torch.testing.assert_close(hs.detach(), stepped, rtol=0, atol=0)
    core.zero_grad(set_to_none=True)
    weighted_loss(hs, final).backward()
    got = [p.grad.clone() for p in core.parameters()]
    want, _ = outputs_and_grads(core, xs, state, reference)
    for a, b in zip(got, want[-len(got):], strict=True):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("name", ["rnn", "lstm"])
def test_replay_tape_for_non_plastic_cores(name):
    core = build(name, {})
    state, xs = core.initial_state(3), inputs(9)
    tape = record(core, state)
    assert isinstance(tape, ReplayTape) and tape.live == (name == "rnn")  # the LSTM replays with its sequence kernel
    stepped = torch.stack([tape.step(x) for x in xs]).detach()
    hs, final = tape.replay()
    torch.testing.assert_close(hs.detach(), stepped, rtol=1e-12, atol=1e-12)
    want_hs, want_final = core.unroll(xs, state)
    grads = torch.autograd.grad(hs.square().sum() + final["h"].sum(), list(core.parameters()))
    want = torch.autograd.grad(want_hs.square().sum() + want_final["h"].sum(), list(core.parameters()))
    for a, b in zip(grads, want, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)


def test_tape_keeps_about_sqrt_t_checkpoints_and_reuses_buffers():
    core = build("retroactive", {}, hidden=6)
    tape = record(core, core.initial_state(2))
    for x in inputs(200, batch=2):
        tape.step(x)
        assert len(tape.checkpoints) <= math.isqrt(tape.t) + 1
    assert tape.every == 16 and sorted(tape.checkpoints) == list(range(0, 200, 16))
    buffers = {id(b) for pair in [*tape.checkpoints.values(), *tape.spare, tape.work] for b in pair}
    assert len(buffers) <= 2 * (len(tape.checkpoints) + len(tape.spare) + 1)
    assert len(tape.spare) <= 16  # dropped checkpoints wait for reuse instead of new allocations
    fixed = record(core, core.initial_state(2), checkpoint_every=7)
    for x in inputs(30, batch=2):
        fixed.step(x)
    assert sorted(fixed.checkpoints) == [0, 7, 14, 21, 28]


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_trace_pool_reuses_buffers_across_episodes_without_changing_results(backend):
    core = build("retroactive", {"modulation": "fanout"})
    pool = TracePool()

    def episode(state, pool):
        tape = record(core, state, checkpoint_every=3, backend=backend, pool=pool)
        for x in inputs(10, batch=3):
            tape.step(x)
        hs, final = tape.replay()
        grads = torch.autograd.grad(weighted_loss(hs, final), list(core.parameters()))
        used = {b.data_ptr() for b in tape.owned}
        return hs.detach(), {k: v.detach() for k, v in final.items()}, grads, used  # the graph (and tape) go

    state = random_state(core, 3)
    plain = episode(state, None)
    first = episode(state, pool)
    assert len(pool) >= 4 and first[2] and first[3]  # the tape's checkpoints went back to the pool when it was freed
    kept = {k: v.clone() for k, v in first[1].items()}
    second = episode(state, pool)
    # the second episode ran on the first one's buffers, but for one (Hebb, E) pair: the first handed one out
    assert len(second[3] - first[3]) <= 2 and len(second[3] & first[3]) >= len(first[3]) - 2
    for a, b in zip([plain[0], *plain[1].values(), *plain[2]], [second[0], *second[1].values(), *second[2]],
                    strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    for k, v in first[1].items():  # the first episode's final state is the caller's: not reused by the second
        torch.testing.assert_close(v, kept[k], rtol=0, atol=0)
    assert not {v.data_ptr() for v in first[1].values()} & second[3]


def test_a_trace_pool_keeps_one_shape():
    pool = TracePool()
    a = pool.take(torch.empty(2, 3, 3))
    pool.give([a])
    assert pool.take(torch.empty(2, 3, 3)) is a  # same shape: reused
    pool.give([a])
    b = pool.take(torch.empty(4, 3, 3))  # another shape: the old buffers are dropped
    assert b.shape == (4, 3, 3) and len(pool) == 0
    pool.give([a])
    assert len(pool) == 0  # a buffer of the old shape is not kept


@pytest.mark.parametrize("backend", BACKENDS)
def test_backward_can_run_twice(backend):
    core = build("retroactive", {"alpha": "neuron"})
    hs, final = fused_unroll(core, core.w_in(inputs(10)), random_state(core, 3), checkpoint_every=4, backend=backend)
    loss = weighted_loss(hs, final)
    first = torch.autograd.grad(loss, list(core.parameters()), retain_graph=True)
    second = torch.autograd.grad(loss, list(core.parameters()))
    for a, b in zip(first, second, strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


@pytest.mark.skipif(not NATIVE_OK, reason="no C++ compiler")
def test_native_kernels_split_the_batch_across_threads_exactly():
    core = build("retroactive", {"modulation": "fanout"})
    xs, state = inputs(10, batch=5), random_state(core, 5)
    one, _ = outputs_and_grads(core, xs, state, fused("native"))
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        two, names = outputs_and_grads(core, xs, state, fused("native"))
    finally:
        torch.set_num_threads(threads)
    for name, a, b in zip(names, one, two, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-13, atol=1e-13, msg=name)


def test_unroll_uses_the_fused_path_and_equals_the_per_step_graph():
    core = build("retroactive", {"alpha": "neuron", "modulation": "fanout"})
    xs, state = inputs(9), random_state(core, 3)
    got, names = outputs_and_grads(core, xs, state, lambda c, x, s: c.unroll(x, s))
    core.fused = False
    try:
        want, _ = outputs_and_grads(core, xs, state, lambda c, x, s: c.unroll(x, s))
    finally:
        del core.fused
    for name, a, b in zip(names, got, want, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-10, msg=name)
    with torch.no_grad():
        hs, final = core.unroll(xs, state)
    assert hs.grad_fn is None and final["hebb"].grad_fn is None


@pytest.mark.parametrize("config", PLASTIC, ids=config_id)
def test_step_is_the_fused_kernel_with_one_step(monkeypatch, config):
    """``step`` runs the fused recurrence with T = 1: stepping T times gives the outputs, final traces and every
    gradient of the reference (and of the per-step graph of ``advance``), through one fused node per step."""
    core = build(*config)
    xs, state = inputs(7), random_state(core, 3)
    calls = []
    monkeypatch.setattr("plastic_core.fused.fused_unroll",
                        lambda core, drives, *a, **k: calls.append(drives.shape[0]) or fused_unroll(core, drives, *a,
                                                                                                    **k))

    def stepping(c, x, s):
        hs = []
        for x_t in x:
            h, s = c.step(x_t, s)
            hs.append(h)
        return torch.stack(hs), s

    got, names = outputs_and_grads(core, xs, state, stepping)
    assert calls == [1] * len(xs)
    want, _ = outputs_and_grads(core, xs, state, reference)
    core.fused = False
    per_step, _ = outputs_and_grads(core, xs, state, stepping)
    assert len(calls) == len(xs)  # not fused: advance's graph
    for name, a, b, c in zip(names, got, want, per_step, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-10, msg=name)
        torch.testing.assert_close(a, c, rtol=1e-10, atol=1e-10, msg=name)


class DuckPlasticCore(torch.nn.Module):
    """Not a plastic_core class: a module with a rule description, the parameters and an input drive. The fused
    recurrence runs it from those alone (it never looks at a core's class)."""

    def __init__(self, like: torch.nn.Module) -> None:
        super().__init__()
        self.w, self.alpha, self.modulator = like.w, like.alpha, like.modulator
        self.eta, self.fanout, self.w_in = like.eta, like.fanout, like.w_in
        self.plasticity_rule = like.plasticity_rule

    def input_drive(self, xs):
        return self.w_in(xs), None

    def fusable(self) -> bool:
        return True


def test_the_fused_recurrence_reads_the_rule_and_parameters_not_the_class():
    core = build("retroactive", {"alpha": "neuron", "modulation": "fanout"})
    duck = DuckPlasticCore(core)
    assert fusable(duck)
    xs, state = inputs(6, batch=2), random_state(core, 2)
    got, got_names = outputs_and_grads(duck, xs, state, fused("auto"))
    want, names = outputs_and_grads(core, xs, state, reference)
    got_by_name = dict(zip(got_names, got, strict=True))
    assert sorted(got_by_name) == sorted(names)  # the same parameters, registered in another order
    for name, b in zip(names, want, strict=True):
        torch.testing.assert_close(got_by_name[name], b, rtol=1e-10, atol=1e-10, msg=name)


class HalvedTraces(PlasticRNN):
    """A subclass with its own rule: the fused kernels do not know it."""

    def update_traces(self, h_prev, h, state):
        return {"hebb": super().update_traces(h_prev, h, state)["hebb"] * 0.5}


@pytest.mark.parametrize("name", ["rnn", "lstm"])
def test_replay_tape_acting_under_no_grad_still_gives_gradients(name):
    """The A2C trainer samples actions under no_grad; the replayed hs must still reach the parameters."""
    core = build(name, {})
    state, xs = core.initial_state(3), inputs(5)
    tape = record(core, state)
    for x in xs:
        with torch.no_grad():
            tape.step(x)
    hs, _ = tape.replay()
    grads = torch.autograd.grad(hs.square().sum(), list(core.parameters()))
    assert all(g.abs().sum() > 0 for g in grads)


def test_switched_off_or_patched_cores_are_not_fused():
    core = build("retroactive", {})
    assert fusable(core)
    core.fused = False
    assert not fusable(core) and isinstance(record(core, core.initial_state(2)), ReplayTape)
    patched = build("retroactive", {})
    patched.step = lambda x, state: (x, state)
    assert not fusable(patched)


def test_subclasses_that_change_the_step_are_not_fused():
    core = HalvedTraces(INPUT, 5).double()
    assert not fusable(core) and fusable(build("plastic", {}))
    assert isinstance(record(core, core.initial_state(2)), ReplayTape)
    xs, state = inputs(6, batch=2), core.initial_state(2)
    hs, final = core.unroll(xs, state)
    for x in xs:
        h, state = core(x, state)
    torch.testing.assert_close(hs[-1], h)
    torch.testing.assert_close(final["hebb"], state["hebb"])


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("mode", ["add", "clamp"])
def test_the_memorisation_networks_run_fused_and_exactly(monkeypatch, backend, mode):
    """The 2018 networks: inputs added to the drive (memorisation), or clamping their neurons (images)."""
    from agents.supervised_models import ClampedPlasticRNN

    torch.manual_seed(0)
    core = ClampedPlasticRNN(6, input_mode=mode, input_scale=3.0).double()
    with torch.no_grad():
        core.w.mul_(20)
        core.alpha.mul_(20)
        core.eta.fill_(0.3)
    calls = []
    monkeypatch.setattr("plastic_core.fused.fused_unroll",
                        lambda *a, **k: calls.append(1) or fused_unroll(*a, **k, backend=backend))
    xs = torch.randint(0, 2, (12, 3, 6), generator=torch.Generator().manual_seed(3)).double() * 2 - 1
    if mode == "clamp":  # about half the neurons free at each step (input 0), as in the probe with a blank half
        xs = xs * torch.randint(0, 2, xs.shape, generator=torch.Generator().manual_seed(4)).double()
    state = core.initial_state(3)
    got, names = outputs_and_grads(core, xs, state, lambda c, x, s: c.unroll(x, s))
    assert calls
    core.fused = False
    want, _ = outputs_and_grads(core, xs, state, lambda c, x, s: c.unroll(x, s))
    assert len(calls) == 1  # fused = False: the loop over step
    assert got[names.index("final hebb")].abs().max() > 0.3  # plasticity at work
    hs = got[names.index("hs")]
    if mode == "clamp":  # neurons with a non-zero input are that input, the others are not
        shown = F.pad(xs, (0, 1), value=1.0) != 0
        torch.testing.assert_close(hs[shown], F.pad(xs, (0, 1), value=1.0)[shown], rtol=0, atol=0)
        assert (hs[1:][~shown[1:]] != 0).all()  # after step 0 (no drive, h = 0), a clamp would have held them at 0
    else:  # h(0) = tanh(input_scale * [x(0), 1]) from the zero initial state
        torch.testing.assert_close(hs[0], torch.tanh(3.0 * F.pad(xs[0], (0, 1), value=1.0)), rtol=1e-12, atol=1e-12)
    for name, a, b in zip(names, got, want, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-10, msg=name)


def test_backend_choice(monkeypatch):
    core = build("modulated", {})
    state = core.initial_state(2)
    assert isinstance(PlasticTape(core, state, backend="eager").rec, EagerRecurrence)
    if NATIVE_OK:
        assert isinstance(PlasticTape(core, state).rec, NativeRecurrence)
    monkeypatch.setenv("PLASTIC_CORE_NATIVE", "0")
    assert isinstance(PlasticTape(core, state).rec, EagerRecurrence)
    with pytest.raises(RuntimeError, match="native kernels are unavailable"):
        PlasticTape(core, state, backend="native")
    half = copy.deepcopy(core).to(torch.bfloat16)
    monkeypatch.delenv("PLASTIC_CORE_NATIVE")
    assert isinstance(PlasticTape(half, half.initial_state(2)).rec, EagerRecurrence)  # no bfloat16 kernels


# -- errors ---------------------------------------------------------------------------------------------------------
def test_misuse_is_named():
    core = build("plastic", {})
    state = core.initial_state(3)
    with pytest.raises(ValueError, match="unknown backend 'gpu'"):
        record(core, state, backend="gpu")
    with pytest.raises(ValueError, match="checkpoint_every must be a positive integer"):
        record(core, state, checkpoint_every=0)
    with pytest.raises(ValueError, match="nothing to replay"):
        record(core, state).replay()
    with pytest.raises(ValueError, match="at least one time step"):
        core.unroll(inputs(0), state)
    with pytest.raises(TypeError, match="no fused recurrence for TanhRNN"):
        PlasticTape(build("rnn", {}), state)
    tape = record(core, state)
    tape.step(inputs(1)[0])
    tape.replay()
    with pytest.raises(RuntimeError, match="already replayed"):
        tape.replay()
    with pytest.raises(RuntimeError, match="already replayed"):
        tape.step(inputs(1)[0])
    tape = record(core, state)
    tape.step(inputs(1)[0])
    with torch.no_grad():
        core.w.add_(1.0)  # an optimizer step between acting and replay
    with pytest.raises(RuntimeError, match="modified in place after recording started"):
        tape.replay()
