"""The native kernels give the same bits whatever vector width they are built for (plastic_core.native).

Every sum in the kernels runs over 8 fixed lanes in a fixed order, so the portable build ("narrow": SSE2 on x86-64)
and the AVX2 build ("wide") must agree bit for bit: outputs, final traces and every gradient, float32 and float64,
for every rule, alpha kind and modulation kind, on sizes that are and are not multiples of the lane count. Each
width runs in its own process (``PLASTIC_CORE_VECTOR``), building its kernels into one cache for this module.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
from cases.cores import PLASTIC

from plastic_core import native

SCRIPT = textwrap.dedent("""
    import sys, torch
    from cases.cores import PLASTIC, build, random_state
    from plastic_core import native
    from plastic_core.fused import fused_unroll

    assert native.vector_width() == sys.argv[2], native.vector_width()
    results = {}
    for dtype in (torch.float32, torch.float64):
        assert native.load(dtype) is not None
        for hidden, batch, steps in ((13, 3, 9), (16, 2, 6)):  # 13: a tail after the 8-lane chunks
            for name, opts in PLASTIC:
                core = build(name, opts, hidden=hidden).to(dtype)
                state = {k: v.to(dtype).requires_grad_() for k, v in random_state(core, batch).items()}
                gen = torch.Generator().manual_seed(hidden)
                drives = (torch.randn(steps, batch, hidden, generator=gen, dtype=dtype) * 1.5).requires_grad_()
                hs, final = fused_unroll(core, drives, state, checkpoint_every=4, backend="native")
                weights = torch.linspace(-1, 1, hs.numel(), dtype=dtype).view_as(hs)
                loss = (hs * weights).sum() + sum(v.sum() for k, v in final.items() if k != "h")
                loss.backward()
                key = f"{dtype} {hidden} {name} {opts}"
                results[key] = [hs.detach(), *(v.detach() for v in final.values()), drives.grad,
                                *(v.grad for v in state.values()), *(p.grad for p in core.parameters())]
    torch.save(results, sys.argv[1])
""")


def have_compiler() -> bool:
    return shutil.which(native.compiler()) is not None


pytestmark = pytest.mark.skipif(not have_compiler(), reason="no C++ compiler")


def run(width: str, out: Path, cache: Path) -> dict[str, list[torch.Tensor]]:
    env = {**os.environ, "PLASTIC_CORE_VECTOR": width, "PLASTIC_CORE_CACHE": str(cache), "PLASTIC_CORE_THREADS": "1"}
    tests = Path(__file__).resolve().parents[1]
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(tests), env.get("PYTHONPATH", "")]))
    proc = subprocess.run([sys.executable, "-c", SCRIPT, str(out), width], env=env, capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, proc.stderr
    return torch.load(out)


@pytest.mark.skipif(not native.has_avx2(), reason="this CPU has no AVX2: only the narrow build runs")
def test_narrow_and_wide_builds_give_the_same_bits(tmp_path: Path) -> None:
    narrow = run("narrow", tmp_path / "narrow.pt", tmp_path / "cache")
    wide = run("wide", tmp_path / "wide.pt", tmp_path / "cache")
    assert narrow.keys() == wide.keys() and len(narrow) == 2 * 2 * len(PLASTIC)
    for key, values in narrow.items():
        assert len(values) == len(wide[key])
        for i, (a, b) in enumerate(zip(values, wide[key], strict=True)):
            if a is None or b is None:  # no gradient (a parameter the loss does not reach): in both
                assert a is None and b is None, f"{key}: value {i}"
                continue
            assert a.dtype == b.dtype and torch.equal(a, b), f"{key}: value {i} differs (max {(a - b).abs().max()})"
    assert sorted(p.name.split("_")[2] for p in (tmp_path / "cache").glob("*.so")) == ["narrow", "wide"]


def test_vector_width_choice(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PLASTIC_CORE_VECTOR", raising=False)
    assert native.vector_width() == ("wide" if native.has_avx2() else "narrow")
    monkeypatch.setenv("PLASTIC_CORE_VECTOR", "Narrow ")
    assert native.vector_width() == "narrow"
    monkeypatch.setenv("PLASTIC_CORE_VECTOR", "native")
    assert native.vector_width() == "native"
    monkeypatch.setenv("PLASTIC_CORE_VECTOR", "widest")
    with pytest.raises(ValueError, match="PLASTIC_CORE_VECTOR must be one of narrow, wide, native, got 'widest'"):
        native.vector_width()
    monkeypatch.setattr(native, "has_avx2", lambda: False)
    monkeypatch.setenv("PLASTIC_CORE_VECTOR", "wide")
    with pytest.raises(ValueError, match="needs an x86-64 CPU with AVX2"):
        native.vector_width()
    monkeypatch.delenv("PLASTIC_CORE_VECTOR")
    assert native.vector_width() == "narrow"


def test_portable_builds_do_not_depend_on_the_cpu() -> None:
    assert "-march=native" not in native.FLAGS and native.VECTOR_FLAGS["narrow"] == []
    assert native.VECTOR_FLAGS["wide"] == ["-mavx2"] and "-ffp-contract=off" in native.FLAGS
    assert set(native.SOURCES) == {"kernels.h", "kernels.cpp", "operators.cpp", "roofline.cpp"}
    for name, text in native.SOURCES.items():
        assert text == (native.SOURCE_DIR / name).read_text() and text in native.SOURCE
        assert "reduction(" not in text  # no sum left to the compiler's vector width
