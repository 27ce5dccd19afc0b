"""The native kernels as torch operators (plastic_core.native): registered under ``torch.ops.plastic_core`` with
typed schemas, their arguments checked (dtype, device, contiguity, every shape, the rule's names) with errors that
name the argument, visible to ``torch.profiler`` under their own names, and run on torch's own OpenMP runtime (the
process maps one libgomp, torch's)."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from plastic_core import make_core, native
from plastic_core.fused import fused_unroll

OPS = native.load(torch.float32)
pytestmark = pytest.mark.skipif(OPS is None, reason="native kernels unavailable (no C++ compiler)")

B, N = 3, 5


def step_args(rule: str = "decay", alpha: str = "connection", dtype: torch.dtype = torch.float32) -> dict:
    """Valid arguments of forward_step for a rule without modulation, by name."""
    gen = torch.Generator().manual_seed(0)

    def rand(*shape: int) -> torch.Tensor:
        return torch.randn(*shape, generator=gen, dtype=dtype)

    hebb = rand(B, N, N)
    return dict(d=rand(B, N), h_prev=rand(B, N), hebb=hebb, elig=None, hebb_out=torch.zeros_like(hebb), elig_out=None,
                h=torch.empty(B, N, dtype=dtype), m0=None,
                p=None if alpha == "connection" else torch.empty(B, N, dtype=dtype), clamp=None, w=rand(N, N),
                alpha=rand(*{"connection": (N, N), "neuron": (N, 1), "scalar": (1, 1)}[alpha]), mod_weight=None,
                mod_bias=None, fanout=None, rule=rule, alpha_kind=alpha, clip=None, eta=0.1, threads=1, stream=False)


# the rule's arguments of every operator (RULE_ARGS in the schemas), in order
RULE_ARGS = ("w", "alpha", "mod_weight", "mod_bias", "fanout", "rule", "alpha_kind", "clip", "eta", "threads")


def rule_args(args: dict) -> list:
    """The rule's arguments out of step_args."""
    return [args[k] for k in RULE_ARGS]


def forward_step(**args) -> None:
    OPS.forward_step(*args.values())


def test_registered_with_typed_schemas() -> None:
    for name in native.OPERATORS:
        schema = str(getattr(torch.ops.plastic_core, name).default._schema)
        assert schema.startswith(f"plastic_core::{name}("), schema
        assert "Tensor w, Tensor alpha" in schema and "str rule" in schema and "float? clip" in schema


def test_forward_step_matches_the_eager_rule() -> None:
    args = step_args()
    forward_step(**args)
    w_eff = args["w"] + args["alpha"] * args["hebb"]
    h = torch.tanh(args["d"] + torch.einsum("bji,bi->bj", w_eff, args["h_prev"]))
    torch.testing.assert_close(args["h"], h)
    hebb = (1 - 0.1) * args["hebb"] + 0.1 * h.unsqueeze(2) * args["h_prev"].unsqueeze(1)
    torch.testing.assert_close(args["hebb_out"], hebb)


@pytest.mark.parametrize("change, message", [
    (dict(d=torch.zeros(B, N, dtype=torch.float64)), "d must be Float like the traces, got Double"),
    (dict(h_prev=torch.zeros(N, B).t()), "h_prev must be contiguous"),
    (dict(w=torch.zeros(N, N + 1)), r"w must have shape \[5, 5\], got \[5, 6\]"),
    (dict(alpha=torch.zeros(N, 1)), r"alpha must have shape \[5, 5\], got \[5, 1\]"),
    (dict(hebb_out=torch.zeros(B, N, N - 1)), r"hebb_out must have shape \[3, 5, 5\]"),
    (dict(hebb=torch.zeros(B, N, N - 1)), r"hebb must have shape \(B, N, N\)"),
    (dict(rule="hebbian"), "unknown rule 'hebbian'; expected decay, oja, hebb, modulated or retroactive"),
    (dict(alpha_kind="row"), "unknown alpha kind 'row'"),
    (dict(clip=-1.0), "clip must be positive"),
    (dict(threads=0), "threads must be at least 1"),
    (dict(m0=torch.zeros(B, 1)), "m0 must be given for the modulated rules"),
    (dict(rule="retroactive", mod_weight=torch.zeros(1, N), mod_bias=torch.zeros(1), m0=torch.zeros(B, 1)),
     "elig and elig_out must be given for the retroactive rule"),
    (dict(rule="modulated", m0=torch.zeros(B, 1)), "mod_weight and mod_bias must be given for the modulated rules"),
    (dict(d=torch.zeros(B, N, dtype=torch.float16), hebb=torch.zeros(B, N, N, dtype=torch.float16)),
     "the kernels take float32 or float64 tensors, got Half"),
], ids=lambda v: v if isinstance(v, str) else None)
def test_bad_arguments_raise_naming_them(change: dict, message: str) -> None:
    args = step_args()
    args.update(change)
    before = args["hebb_out"].clone()
    with pytest.raises(RuntimeError, match=message):
        forward_step(**args)
    assert torch.equal(args["hebb_out"], before)  # checked before anything is written


def test_other_devices_are_refused() -> None:
    """The operators have CPU kernels only, and shape-only (fake) versions: a call mixing devices is refused."""
    args = step_args()
    args["w"] = torch.zeros(N, N, device="meta")
    with pytest.raises(RuntimeError, match="forward_step takes tensors on one device, got cpu, meta"):
        forward_step(**args)


def backward_args(rule: str = "decay", alpha: str = "connection") -> tuple:
    """Valid arguments of backward_sequence (one segment of 4 steps) for a rule without modulation."""
    args = step_args(rule, alpha)
    hs = torch.randn(4, B, N, generator=torch.Generator().manual_seed(1))
    return ([0], [args["hebb"]], [], hs, torch.zeros(B, N), None, None, None, torch.ones_like(hs), torch.zeros(B, N),
            torch.zeros(B, N, N), None, None, *rule_args(args))


def test_backward_sequence_checks_its_segments() -> None:
    hs, hebb = torch.zeros(4, B, N), torch.zeros(B, N, N)
    common = (hs, torch.zeros(B, N), None, None, None, torch.zeros_like(hs), torch.zeros(B, N),
              torch.zeros_like(hebb), None, None, *rule_args(step_args()))
    with pytest.raises(RuntimeError, match="the first segment must start at step 0"):
        OPS.backward_sequence([1], [hebb], [], *common)
    with pytest.raises(RuntimeError, match="one checkpoint per segment start"):
        OPS.backward_sequence([0, 2], [hebb], [], *common)
    with pytest.raises(RuntimeError, match="segment starts must increase"):
        OPS.backward_sequence([0, 3, 2], [hebb, hebb, hebb], [], *common)


@pytest.mark.parametrize("alpha", ["connection", "neuron"])
def test_fake_versions_match_the_kernels(alpha: str) -> None:
    """torch.library.opcheck: the schemas declare what the kernels write, and the fake versions give the outputs'
    shapes under fake tensors and ahead-of-time autograd tracing."""
    args = step_args(alpha=alpha)
    torch.library.opcheck(OPS.forward_step.default, tuple(args.values()))
    update = (args["h"], args["h_prev"], None, args["hebb"], None, args["hebb_out"], None,
              *rule_args(args), args["stream"])
    torch.library.opcheck(OPS.update_step.default, update)
    torch.library.opcheck(OPS.backward_sequence.default, backward_args(alpha=alpha))
    g_eta, g_alpha, g_fanout = OPS.backward_sequence(*backward_args(alpha=alpha))
    assert g_eta.shape == (B,) and g_alpha.shape == ((N, N) if alpha == "connection" else (0,))
    assert g_fanout.shape == (0,)


def test_torch_compile_keeps_the_kernels_in_one_graph() -> None:
    """The fake versions let torch.compile trace kernel calls into its graph (fullgraph: no break), here a
    forward step then the backward over a sequence (whose outputs need the fake version's shapes)."""
    args = step_args()
    backward = backward_args()

    def run(d: torch.Tensor, g: torch.Tensor, carry: torch.Tensor, g_hebb: torch.Tensor) -> tuple[torch.Tensor, ...]:
        h, hebb_out = torch.empty_like(d), torch.empty_like(args["hebb"])
        OPS.forward_step(d, args["h_prev"], args["hebb"], None, hebb_out, None, h, None, None, None,
                         *rule_args(args), False)
        g_eta, g_alpha, _ = OPS.backward_sequence(*backward[:8], g, carry, g_hebb, *backward[11:])
        return 2 * h, hebb_out, g_eta + 1, g_alpha.sum(0), g_hebb

    def inputs() -> list[torch.Tensor]:  # fresh each call: backward_sequence writes into g, carry and g_hebb
        return [args["d"]] + [t.clone() for t in backward[8:11]]

    torch._dynamo.reset()
    compiled = torch.compile(run, backend="aot_eager", fullgraph=True)
    for want, got in zip(run(*inputs()), compiled(*inputs()), strict=True):
        assert torch.equal(want, got)


def test_profiler_shows_the_operators_by_name() -> None:
    torch.manual_seed(0)
    core = make_core("retroactive", input_size=3, hidden_size=6)
    drives = core.input_drive(torch.randn(5, 2, 3))[0]
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
        hs, _ = fused_unroll(core, drives, core.initial_state(2), backend="native")
        hs.sum().backward()
    counts = {e.key: e.count for e in prof.key_averages()}
    assert counts.get("plastic_core::forward_step") == 5, sorted(counts)
    assert counts.get("plastic_core::backward_sequence") == 1, sorted(counts)


ONE_RUNTIME = textwrap.dedent("""
    import re, torch
    from pathlib import Path
    from plastic_core import make_core
    from plastic_core.fused import fused_unroll

    core = make_core("plastic", input_size=2, hidden_size=4)
    hs, _ = fused_unroll(core, torch.zeros(2, 2, 4), core.initial_state(2), backend="native")
    maps = Path("/proc/self/maps").read_text().splitlines()
    print(sorted({line.split()[-1] for line in maps if re.search(r"/libgomp[^/]*[.]so", line)}))
    print(sorted({line.split()[-1] for line in maps if re.search(r"plastic_kernels_[a-z]+_[0-9a-f]+[.]so", line)}))
""")


@pytest.mark.skipif(not Path("/proc/self/maps").exists(), reason="no /proc/self/maps")
def test_one_openmp_runtime() -> None:
    """The kernels' library links no OpenMP runtime of its own: a process that runs them (and imports nothing
    else that brings one, as pygame's wheel does) maps one libgomp, torch's."""
    env = {k: v for k, v in os.environ.items() if k != "PLASTIC_CORE_NATIVE"}
    proc = subprocess.run([sys.executable, "-c", ONE_RUNTIME], capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr
    gomp, kernels = (ast.literal_eval(line) for line in proc.stdout.splitlines()[-2:])
    assert len(kernels) == 1, proc.stdout
    assert len(gomp) == 1, gomp  # torch's (in torch/lib for the pip wheels)
