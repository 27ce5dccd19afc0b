"""Building the native kernels (plastic_core.native): the first compile says so once (where, how long), later loads
from the cache say nothing; the cache key follows the CPU's features; an unwritable cache folder falls back to a
per-user temporary folder; a failed build gives the compiler's own words (or its command and exit status) and
the cores still compute, with the eager kernels; the per-step kernels' thread count follows the free cores.

Two builds in all: a fresh cache, and the temporary fallback.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
import tomllib
import warnings
from fnmatch import fnmatch
from pathlib import Path

import pytest
import torch

from plastic_core import make_core, native
from plastic_core.fused import PlasticTape, fused_unroll

LOAD = textwrap.dedent("""
    import sys, torch
    from plastic_core import native
    print(native.load(torch.float32) is not None)
""")


def have_compiler() -> bool:
    return shutil.which(native.compiler()) is not None


pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning")
needs_cc = pytest.mark.skipif(not have_compiler(), reason="no C++ compiler")


def run_load(**env: str) -> subprocess.CompletedProcess:
    """A fresh process that loads the float32 kernels (module state fresh: nothing compiled or loaded yet)."""
    full = {k: v for k, v in os.environ.items() if k not in ("PLASTIC_CORE_NATIVE", "PLASTIC_CORE_CACHE")}
    full.update(env)
    return subprocess.run([sys.executable, "-c", LOAD], capture_output=True, text=True, env=full, timeout=300)


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, subprocess.CompletedProcess]:
    """One compile into a fresh cache folder, shared by the tests below."""
    cache = tmp_path_factory.mktemp("cache") / "plastic"
    return cache, run_load(PLASTIC_CORE_CACHE=str(cache))


@needs_cc
def test_first_compile_says_so_once(built: tuple[Path, subprocess.CompletedProcess]) -> None:
    cache, proc = built
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "True"
    lines = [line for line in proc.stderr.splitlines() if "compiling" in line]
    assert len(lines) == 1, proc.stderr
    assert str(cache) in lines[0] and f"({native.vector_width()})" in lines[0]
    assert " done in " in lines[0] and lines[0].rstrip().endswith(" s")
    assert list(cache.glob("plastic_kernels_*.so"))


@needs_cc
def test_load_from_cache_is_silent(built: tuple[Path, subprocess.CompletedProcess]) -> None:
    cache, first = built
    assert first.returncode == 0, first.stderr
    proc = run_load(PLASTIC_CORE_CACHE=str(cache))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "True"
    assert "plastic_core" not in proc.stderr, proc.stderr


def test_cache_key_follows_cpu_features() -> None:
    flags = [*native.FLAGS, "-DREAL=float"]
    key = native.cache_key(native.SOURCE, "cc", flags, "flags: avx avx2 fma")
    assert key == native.cache_key(native.SOURCE, "cc", flags, "flags: avx avx2 fma")
    assert key != native.cache_key(native.SOURCE, "cc", flags, "flags: avx avx2 avx512f fma")
    assert key != native.cache_key(native.SOURCE, "cc", flags, "flags: avx avx2 fma\nmodel: 85")
    assert key != native.cache_key(native.SOURCE + " ", "cc", flags, "flags: avx avx2 fma")
    assert key != native.cache_key(native.SOURCE, "gcc", flags, "flags: avx avx2 fma")
    assert key != native.cache_key(native.SOURCE, "cc", [*native.FLAGS, "-DREAL=double"], "flags: avx avx2 fma")


def test_cpu_features(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    features = native.cpu_features()
    assert features and features == native.cpu_features()
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nvendor_id\t: GenuineIntel\nflags\t\t: fma avx sse\n\n"
                       "processor\t: 1\nvendor_id\t: GenuineIntel\nflags\t\t: fma avx sse avx512f\n")
    real_path = native.Path
    monkeypatch.setattr(native, "Path", lambda p: cpuinfo if p == "/proc/cpuinfo" else real_path(p))
    assert native.cpu_features() == "flags: avx fma sse\nvendor_id: GenuineIntel"  # the first CPU's, sorted
    monkeypatch.setattr(native, "Path", lambda p: tmp_path / "missing" if p == "/proc/cpuinfo" else real_path(p))
    assert native.cpu_features().startswith("platform: ")  # no /proc/cpuinfo: platform.machine()/processor()


@needs_cc
def test_unwritable_cache_falls_back_to_temporary_folder(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("a regular file: nothing can be created under it, not even by root")
    unwritable = tmp_path / "file" / "cache"
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    proc = run_load(PLASTIC_CORE_CACHE=str(unwritable), TMPDIR=str(tmp))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "True", proc.stderr  # native kernels, not the eager fallback
    fallback = tmp / f"plastic_core-{os.getuid()}"
    assert list(fallback.glob("plastic_kernels_*.so"))
    assert f"{unwritable} cannot be written" in proc.stderr and f"using {fallback}" in proc.stderr
    assert f"compiling the native kernels ({native.vector_width()}) into {fallback}" in proc.stderr
    assert "unavailable" not in proc.stderr


def fail_to_load(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, compiler: str) -> str:
    """Load the kernels in this process with ``CXX=compiler``: the warning's text (module state restored)."""
    monkeypatch.setattr(native, "_kernels", {})
    monkeypatch.setenv("CXX", compiler)
    monkeypatch.setenv("PLASTIC_CORE_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("PLASTIC_CORE_NATIVE", raising=False)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert native.load(torch.float32) is None
    messages = [str(w.message) for w in caught if "native kernels unavailable" in str(w.message)]
    assert len(messages) == 1
    return messages[0]


def test_failed_compile_says_command_and_status(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    message = fail_to_load(monkeypatch, tmp_path, "/bin/false")
    assert "/bin/false" in message and "status 1" in message
    assert "failed: )" not in message and not message.rstrip().endswith(":")
    # the core still computes, on the eager kernels, as stepping does
    torch.manual_seed(0)
    core = make_core("plastic", input_size=3, hidden_size=6)
    xs = torch.randn(7, 2, 3)
    state = core.initial_state(2)
    hs, _ = fused_unroll(core, core.input_drive(xs)[0], state)
    expected, s = [], state
    for x in xs:
        h, s = core.step(x, s)
        expected.append(h)
    torch.testing.assert_close(hs, torch.stack(expected))
    hs2, _ = core.unroll(xs, state)
    torch.testing.assert_close(hs2, hs)
    assert PlasticTape(core, state).backend == "eager"


def test_failed_compile_gives_compiler_error(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    fake = tmp_path / "fake-cc"
    # answers cpp_extension's version check, then fails to compile with 20 lines of errors
    fake.write_text("#!/bin/sh\n" + 'if [ "$1" = "--version" ]; then echo "fake-c++ 13.2.0"; exit 0; fi\n'
                    + "".join(f"echo 'plastic.cpp:{i}: error: fake failure {i}' >&2\n" for i in range(20))
                    + "exit 3\n")
    fake.chmod(0o755)
    message = fail_to_load(monkeypatch, tmp_path, str(fake))
    assert "error: fake failure 0" in message and "-isystem" not in message  # its words, not the command line
    assert "fake failure 19" not in message and "more lines" in message  # trimmed to a few lines


def test_threads(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PLASTIC_CORE_THREADS", raising=False)
    assert 1 <= native.threads() <= min(torch.get_num_threads(), native.cpus())
    monkeypatch.setenv("PLASTIC_CORE_THREADS", "3")
    assert native.threads() == 3 and native.step_threads(3) == 3
    monkeypatch.setenv("PLASTIC_CORE_THREADS", "many")
    with pytest.raises(ValueError, match="PLASTIC_CORE_THREADS"):
        native.threads()


def test_step_threads_follow_free_cores(monkeypatch: pytest.MonkeyPatch) -> None:
    """2 CPUs; between samples 1 s apart, this process used ``ours`` CPU seconds and the CPUs ``busy`` in all."""
    monkeypatch.delenv("PLASTIC_CORE_THREADS", raising=False)
    monkeypatch.setattr(native, "_usage", {"at": None, "busy": None, "ours": None, "free": None})
    monkeypatch.setattr(native, "cpus", lambda: 2)
    clock = {"now": 100.0, "busy": 0.0, "ours": 0.0}
    monkeypatch.setattr(native.time, "monotonic", lambda: clock["now"])
    monkeypatch.setattr(native, "_busy_seconds", lambda: clock["busy"])
    monkeypatch.setattr(native.os, "times", lambda: os.times_result((clock["ours"], 0.0, 0.0, 0.0, 0.0)))

    def advance(busy: float, ours: float) -> int:
        clock["now"] += 1.0
        clock["busy"] += busy
        clock["ours"] += ours
        return native.step_threads(2)

    assert native.step_threads(2) == 2  # nothing known yet
    assert advance(busy=2.0, ours=2.0) == 2  # only this process busy
    assert advance(busy=2.0, ours=1.0) == 1  # another process keeps one core busy
    assert advance(busy=1.7, ours=1.0) == 1  # ... most of one
    assert advance(busy=0.3, ours=0.0) == 2  # others use a little
    assert advance(busy=2.0, ours=0.0) == 1  # others use both: still one thread
    clock["busy"] += 2.0
    assert native.step_threads(2) == 1  # sampled less than min_interval ago: the last estimate


@needs_cc
def test_kernel_threads_used(monkeypatch: pytest.MonkeyPatch) -> None:
    """NativeRecurrence runs backward on ``threads()`` and the per-step kernels on ``step_threads``: the
    ``threads`` argument each operator is given."""
    if native.load(torch.float32) is None:
        pytest.skip("native kernels unavailable")
    monkeypatch.setattr(native, "threads", lambda: 2)
    monkeypatch.setattr(native, "step_threads", lambda cap: 1)
    core = make_core("plastic", input_size=3, hidden_size=4)
    tape = PlasticTape(core, core.initial_state(2))
    assert tape.backend == "native"
    given: list[tuple[str, int]] = []

    class Recording:
        def __getattr__(self, name: str):
            op = getattr(torch.ops.plastic_core, name)

            def call(*args):
                given.append((name, args[-2] if name != "backward_sequence" else args[-1]))
                return op(*args)
            return call

    tape.rec.ops = Recording()
    for x in torch.randn(3, 2, 3):
        tape.step(x)
    hs, _ = tape.replay()
    hs.sum().backward()
    assert given == [("forward_step", 1)] * 3 + [("backward_sequence", 2)]


def test_the_package_ships_every_source() -> None:
    """The package data covers every file the build compiles or includes, so that an installed wheel builds."""
    pyproject = tomllib.loads((Path(__file__).parents[2] / "pyproject.toml").read_text())
    shipped = pyproject["tool"]["setuptools"]["package-data"]["plastic_core"]
    assert {"kernels.h", "kernels.cpp", "operators.cpp"} <= set(native.SOURCES)
    for name in native.SOURCES:
        assert any(fnmatch(f"csrc/{name}", pattern) for pattern in shipped), name
