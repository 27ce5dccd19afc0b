"""The kernel cache verifies what it loads (plastic_core.native): a cached library is loaded only where its sha256
digest file (``<name>.so.sha256``, written after a complete build) matches its bytes and it holds every kernel;
otherwise (truncated, zero bytes, random bytes, no digest, a foreign library) it is rebuilt once, said in one line
on stderr, and the cores run on the native kernels again; stale build folders of killed compiles are removed.

Every load runs in a fresh process (module state fresh) on a copy of one cache folder built once for the module.
"""

from __future__ import annotations

import hashlib
import os
import random
import re
import shutil
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from plastic_core import native

# loads the float32 kernels, then runs a core forward and backward on the native and on the eager kernels
RUN = textwrap.dedent("""
    import torch
    from plastic_core import make_core, native
    from plastic_core.fused import PlasticTape, fused_unroll

    lib = native.load(torch.float32)
    torch.manual_seed(0)
    core = make_core("plastic", input_size=3, hidden_size=6)
    xs, state = torch.randn(7, 2, 3), core.initial_state(2)
    params = list(core.parameters())
    results = []
    for backend in ("native", "eager") if lib is not None else ("eager",):
        hs, _ = fused_unroll(core, core.input_drive(xs)[0], state, backend=backend)
        grads = torch.autograd.grad((hs * torch.linspace(-1, 1, hs.numel()).view_as(hs)).sum(), params)
        results.append([hs.detach(), *grads])
    for a, b in zip(results[0], results[-1]):
        torch.testing.assert_close(a, b)
    print(PlasticTape(core, state).backend)
""")


def have_compiler() -> bool:
    return shutil.which(native.compiler()) is not None


pytestmark = pytest.mark.skipif(not have_compiler(), reason="no C++ compiler")


def run(cache: Path, **env: str) -> subprocess.CompletedProcess:
    """A fresh process that loads the float32 kernels from ``cache`` and runs a core on them."""
    full = {k: v for k, v in os.environ.items() if k not in ("PLASTIC_CORE_NATIVE", "PLASTIC_CORE_CACHE")}
    full.update(PLASTIC_CORE_CACHE=str(cache), **env)
    return subprocess.run([sys.executable, "-c", RUN], capture_output=True, text=True, env=full, timeout=300)


def start(cache: Path) -> subprocess.Popen:
    full = {k: v for k, v in os.environ.items() if k not in ("PLASTIC_CORE_NATIVE", "PLASTIC_CORE_CACHE")}
    full["PLASTIC_CORE_CACHE"] = str(cache)
    return subprocess.Popen([sys.executable, "-c", RUN], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=full)


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def digest_of(lib: Path) -> Path:
    return lib.with_name(lib.name + ".sha256")


def write_digest(lib: Path) -> None:
    digest_of(lib).write_text(f"{sha256(lib)}  {lib.name}\n")


def recorded(lib: Path) -> str:
    return digest_of(lib).read_text().split()[0]


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One compile into a fresh cache folder; the tests below work on copies of it."""
    cache = tmp_path_factory.mktemp("built") / "cache"
    proc = run(cache)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split()[-1] == "native", proc.stderr
    return cache


@pytest.fixture
def cache(built: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "cache"
    shutil.copytree(built, copy)
    return copy


def library(cache: Path) -> Path:
    (lib,) = cache.glob("plastic_kernels_*.so")
    return lib


def assert_rebuilt(cache: Path, proc: subprocess.CompletedProcess, problem: str) -> None:
    """The core ran on the native kernels (same results as eager), the rebuild was said in one line naming the
    file and what was wrong with it, the rebuilt library's digest is on disk, and the next load is silent."""
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split()[-1] == "native", proc.stderr
    lib = library(cache)
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, proc.stderr
    assert str(lib) in lines[0] and problem in lines[0] and "rebuilt" in lines[0], lines[0]
    assert recorded(lib) == sha256(lib)
    again = run(cache)
    assert again.returncode == 0, again.stderr
    assert again.stdout.split()[-1] == "native" and again.stderr == "", again.stderr


def test_build_writes_digest(built: Path) -> None:
    lib = library(built)
    assert digest_of(lib).read_text() == f"{sha256(lib)}  {lib.name}\n"  # the format of sha256sum
    assert sorted(p.name for p in built.iterdir()) == sorted([lib.name, digest_of(lib).name])  # no leftovers


def test_truncated_library_is_rebuilt(cache: Path) -> None:
    lib = library(cache)
    data = lib.read_bytes()
    lib.write_bytes(data[: len(data) // 2])  # its digest kept: it no longer matches
    assert_rebuilt(cache, run(cache), "does not match its digest")


def test_library_without_digest_is_rebuilt(cache: Path) -> None:
    lib = library(cache)
    digest_of(lib).unlink()  # a build killed between the library and its digest, or an older cache
    assert_rebuilt(cache, run(cache), "no digest")


@pytest.mark.parametrize("content", [b"", random.Random(0).randbytes(50_000)], ids=["zero bytes", "random bytes"])
def test_garbage_is_rebuilt(cache: Path, content: bytes) -> None:
    lib = library(cache)
    lib.write_bytes(content)
    assert_rebuilt(cache, run(cache), "is empty" if not content else "does not match its digest")


def test_garbage_with_matching_digest_is_rebuilt(cache: Path) -> None:
    lib = library(cache)
    lib.write_bytes(b"\x7fELF" + random.Random(1).randbytes(20_000))
    write_digest(lib)  # the digest agrees: only loading it fails
    assert_rebuilt(cache, run(cache), "cannot be loaded")


def test_foreign_library_is_rebuilt(cache: Path, tmp_path: Path) -> None:
    src = tmp_path / "foreign.c"
    src.write_text("int plastic_unrelated(void) { return 42; }\n")
    lib = library(cache)
    compiler = os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc")
    subprocess.run([compiler, "-shared", "-fPIC", str(src), "-o", str(lib)], check=True, timeout=120)
    write_digest(lib)  # a valid library with a matching digest: only the symbol check catches it
    assert_rebuilt(cache, run(cache), "lacks plastic_core::forward_step")


def test_racing_rebuilds_are_safe(cache: Path) -> None:
    """Two processes find the same truncated library at once: both rebuild, neither loads a half-written file, and
    the library left in the cache matches its digest."""
    lib = library(cache)
    lib.write_bytes(lib.read_bytes()[:4096])
    procs = [start(cache) for _ in range(2)]
    for proc in procs:
        out, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err
        assert out.split()[-1] == "native", err
    assert recorded(lib) == sha256(lib)
    assert sorted(p.name for p in cache.iterdir()) == sorted([lib.name, digest_of(lib).name])
    again = run(cache)
    assert again.returncode == 0 and again.stderr == "", again.stderr


def dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def build_prefix(pid: int) -> str:
    """How a build folder's name starts: ``build-<host>-<pid>-`` (the host with ``-`` and the like as ``_``)."""
    prefix = f"build-{re.sub(r'[^A-Za-z0-9.]', '_', socket.gethostname())}-{pid}-"
    assert not hasattr(native, "build_prefix") or native.build_prefix(pid=pid) == prefix
    return prefix


def test_stale_build_folders_are_removed(cache: Path) -> None:
    old = time.time() - 3600
    stale = [cache / "tmpk2j3h4g5", cache / f"{build_prefix(dead_pid())}x1y2z3"]
    for folder in stale:  # a killed compile's folder: an old one (old-style name), one whose process is gone
        folder.mkdir()
        (folder / "plastic.c").write_text(native.SOURCE)
        (folder / "plastic.so").write_bytes(b"\x7fELF half written")
    os.utime(stale[0] / "plastic.c", (old, old))
    os.utime(stale[0] / "plastic.so", (old, old))
    os.utime(stale[0], (old, old))
    live = cache / f"{build_prefix(os.getpid())}a1b2c3"  # a compile in progress
    live.mkdir()
    (live / "plastic.c").write_text(native.SOURCE)
    young = cache / "tmpq8w7e6r5"  # an old-style compile in progress
    young.mkdir()
    other = cache / "tmpnotes_ab"  # not a build folder: another file in it
    other.mkdir()
    (other / "notes.txt").write_text("mine")
    os.utime(other, (old, old))
    proc = run(cache)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split()[-1] == "native" and proc.stderr == "", proc.stderr
    assert not any(folder.exists() for folder in stale)
    assert live.exists() and young.exists() and other.exists()
