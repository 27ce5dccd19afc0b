"""The fused CPU kernels of the plastic recurrence, as torch operators: ``torch.ops.plastic_core.<name>``.

Three operators (``csrc/operators.cpp``: schemas and argument checks; their kernels in ``csrc/kernels.cpp``), each
sweeping a batch element's (N, N) traces while they sit in cache, for contiguous float32/float64 CPU tensors:

* ``forward_step`` (one call per step): h(t) = tanh(d + (w + alpha * Hebb) h(t-1)), M(t), and the trace update
  to t+1 (two sweeps over row j of Hebb: the product, then the update), reading and writing each trace once;
* ``update_step``: the trace update alone;
* ``backward_sequence``: the whole BPTT recursion, one batch element at a time: its segments' traces recomputed
  from their checkpoints into a per-thread buffer, then per step two sweeps (the reductions that dL/dh(t) needs,
  then the new adjoints). An element's traces and adjoints stay in cache through all T steps, so memory is read
  only for the checkpoints (measured at B=256, N=256: backward 2-3x faster than step by step over the batch).

They are registered with ``TORCH_LIBRARY`` (typed schemas; ``TORCH_CHECK`` on dtype, device, contiguity and
every shape, so a wrong argument raises a ``RuntimeError`` naming it), run on torch's intra-op thread pool
(``at::parallel_for``: torch's OpenMP runtime, no second one) and show up in ``torch.profiler`` as
``plastic_core::forward_step`` and so on; their fake (shape-only) versions, registered when the library is
loaded, let ``torch.compile`` and ``torch.export`` trace calls to them.

Results do not depend on the CPU: every sum runs over 8 fixed lanes in a fixed order (``FOR_LANES``), so the
portable build (``narrow``: the target's baseline, SSE2 on x86-64) and the AVX2 build (``wide``, loaded where the
CPU has AVX2) give the same bits (tested); ``PLASTIC_CORE_VECTOR=narrow|wide|native`` picks one, ``native``
(``-march=native``) only on request, as it may round differently.

The source is built on first use by ``torch.utils.cpp_extension`` (the C++ compiler ``c++``, or ``$CXX``; ninja)
into ``$PLASTIC_CORE_CACHE`` (default ``~/.cache/plastic_core``; where that cannot be written, a per-user folder in
the temporary directory), keyed by a hash of source, compiler, flags and torch version (and, for a ``native``
build, the CPU's features), and loaded with ``torch.ops.load_library``; the first build says so on stderr (where,
and how long it took). The cache verifies what it loads: each build writes the sha256 of its library beside it
(``<name>.so.sha256``, after the library is in place); a cached library is loaded only where that digest matches
and it registers every operator, and is otherwise (truncated, empty, foreign, no digest, not loadable) rebuilt
once, said in one line on stderr. Builds run in their own folders (``build-<host>-<pid>-*``) and move the library
and its digest into place with ``os.replace``, so that concurrent processes never load a partly written file; the
folders of killed builds are removed later.

The batch is split across ``threads()`` threads (``torch.get_num_threads()`` capped at the process's CPUs;
``$PLASTIC_CORE_THREADS`` lowers it), fewer for the per-step kernels where other processes keep cores busy
(``step_threads``). ``load()`` returns ``None`` (and the eager kernels are used, with a warning giving the
compiler's error) where no build works (a rebuild included) or ``PLASTIC_CORE_NATIVE=0``.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import platform
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import warnings
from collections.abc import Iterator
from pathlib import Path

import torch
from torch import Tensor

# Traces at least this large (bytes of one (B, N, N) tensor) are written to separate buffers (checkpoints, the
# recomputed traces of a segment) with streaming stores (the operators' ``stream``): they will be read back from
# memory anyway, and skipping the read-for-ownership saves a third of that traffic. Smaller ones stay in cache for
# backward to read (measured: 2x slower with streaming at B=30, N=100; 1.6x faster at B=256, N=256).
STREAM_BYTES = 8 << 20

SOURCE_DIR = Path(__file__).with_name("csrc")
# the C++ sources by file name, read once (what is built is what the cache key hashes); the .cpp files are compiled
# (in parallel), the header is included
SOURCES = {path.name: path.read_text() for path in sorted([*SOURCE_DIR.glob("*.cpp"), *SOURCE_DIR.glob("*.h")])}
SOURCE = "".join(f"// file {name}\n{text}" for name, text in SOURCES.items())  # all of them, for the cache key
DTYPES = (torch.float32, torch.float64)
OPERATORS = ("forward_step", "update_step", "backward_sequence")  # torch.ops.plastic_core.<name>

# -fopenmp: for at::parallel_for (torch's OpenMP runtime; the library links none of its own) and the simd loops.
FLAGS = ["-O3", "-ffp-contract=off", "-fno-math-errno", "-fopenmp"]
# The vector widths the kernels are built for (``$PLASTIC_CORE_VECTOR``). "narrow" (the target's baseline: SSE2 on
# x86-64) and "wide" (AVX2) give the same bits: every sum runs in a fixed order (FOR_LANES in the source), and
# -ffp-contract=off keeps multiply-adds unfused. "native" (-march=native, on request only) may round differently.
VECTOR_FLAGS = {"narrow": [], "wide": ["-mavx2"], "native": ["-march=native"]}
DIGEST_SUFFIX = ".sha256"  # beside each library: the sha256 of its bytes, in the format of sha256sum
# a build folder is taken for a killed build's once this old (where its process cannot be asked: another host's,
# or an earlier version's ``tmp*`` folder); one of this host whose process is alive, only after a day (pid reused)
STALE_SECONDS = 600.0
STALE_LIVE_SECONDS = 86400.0


_lock = threading.Lock()
_kernels: dict[str, object | None] = {}  # "ops": torch.ops.plastic_core once loaded, None if it cannot be
_fakes: set[str] = set()  # {"ops"} once the operators' fake versions are registered
_cleaned: set[Path] = set()  # the cache folders already rid of stale build folders by this process


def cache_dir() -> Path:
    """Where compiled kernels are kept: ``$PLASTIC_CORE_CACHE``, default ``~/.cache/plastic_core``."""
    return Path(os.environ.get("PLASTIC_CORE_CACHE") or Path.home() / ".cache" / "plastic_core")


def fallback_cache_dir() -> Path:
    """The cache used where ``cache_dir()`` cannot be written: a per-user folder in the temporary directory."""
    uid = os.getuid() if hasattr(os, "getuid") else os.environ.get("USERNAME", "user")
    return Path(tempfile.gettempdir()) / f"plastic_core-{uid}"


def enabled() -> bool:
    return os.environ.get("PLASTIC_CORE_NATIVE", "1") not in ("0", "false", "no", "")


_CPU_KEYS = ("vendor_id", "cpu family", "model", "flags", "features", "isa", "cpu implementer", "cpu architecture",
             "cpu variant", "cpu part")


def has_avx2() -> bool:
    """Whether this CPU runs AVX2 (x86-64 only), as torch's own kernels see it."""
    return platform.machine().lower() in ("x86_64", "amd64") and torch.backends.cpu.get_cpu_capability() in (
        "AVX2", "AVX512")


def vector_width() -> str:
    """Which build of the kernels this process loads: ``$PLASTIC_CORE_VECTOR`` (narrow, wide or native) where set,
    else "wide" where the CPU runs AVX2, else "narrow". Both defaults give the same results."""
    chosen = os.environ.get("PLASTIC_CORE_VECTOR", "").strip().lower()
    if chosen:
        if chosen not in VECTOR_FLAGS:
            raise ValueError(f"PLASTIC_CORE_VECTOR must be one of {', '.join(VECTOR_FLAGS)}, got {chosen!r}")
        if chosen == "wide" and not has_avx2():
            raise ValueError("PLASTIC_CORE_VECTOR=wide needs an x86-64 CPU with AVX2; this one has none")
        return chosen
    return "wide" if has_avx2() else "narrow"


def cpu_features() -> str:
    """What ``-march=native`` (``PLASTIC_CORE_VECTOR=native``) depends on, as text: the first CPU's vendor, family,
    model and feature flags from ``/proc/cpuinfo``; where that is missing or says nothing useful,
    ``platform.machine()`` and ``platform.processor()``."""
    try:
        text = Path("/proc/cpuinfo").read_text(errors="replace")
    except OSError:
        text = ""
    found: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        key = key.strip().lower()
        if sep and key in _CPU_KEYS and key not in found:  # the first CPU's; features sorted against reordering
            found[key] = " ".join(sorted(value.split())) if key in ("flags", "features", "isa") else value.strip()
    if not any(k in found for k in ("flags", "features", "isa")):
        found["platform"] = f"{platform.machine()} {platform.processor()}"
    return "\n".join(f"{k}: {v}" for k, v in sorted(found.items()))


def cache_key(source: str, compiler: str, flags: list[str], features: str) -> str:
    """The name part of a compiled library: a hash of the source, compiler, flags and ``features`` (the CPU's, for a
    ``-march=native`` build, so that a HOME shared by machines with different CPUs never loads another's; empty for
    the portable builds, the same on every machine)."""
    return hashlib.sha256("\n".join([source, compiler, *flags, "--cpu--", features]).encode()).hexdigest()[:16]


def _say(text: str, end: str = "\n") -> None:
    print(text, end=end, file=sys.stderr, flush=True)


def _build_error(error: BaseException, max_lines: int = 8) -> str:
    """What went wrong in a build, in the compiler's own words, a few lines of them: cpp_extension's message less
    ninja's progress lines and the echoed compile commands (long lines of flags)."""
    text = str(error).strip()
    header, sep, rest = text.partition("\n")
    head, colon, first = header.partition(": ")
    if sep and colon and head.startswith("Error building extension"):
        text = first + sep + rest
    cxx = compiler()
    lines = [line for line in text.splitlines()
             if line.strip() and not re.match(r"\[\d+/\d+\] ", line) and not line.startswith(f"{cxx} ")]
    if not lines:
        return f"{type(error).__name__} and no message"
    if len(lines) > max_lines:
        lines = [*lines[:max_lines], f"... ({len(lines) - max_lines} more lines)"]
    return "\n".join(lines)


def _writable_dir(path: Path, private: bool = False) -> Path:
    """``path``, created if need be; OSError where it cannot be created or written (or, ``private``, is not this
    user's own folder, closed to others: a folder in a shared temporary directory could be planted)."""
    path.mkdir(parents=True, exist_ok=True, **({"mode": 0o700} if private else {}))
    if private and hasattr(os, "getuid"):
        st = path.stat()
        if st.st_uid != os.getuid() or st.st_mode & 0o022:
            raise PermissionError(f"{path} is not a folder of this user's alone")
    if not os.access(path, os.W_OK | os.X_OK):
        raise PermissionError(f"{path} is not writable")
    return path


def build_prefix(host: str | None = None, pid: int | None = None) -> str:
    """How the name of a build folder starts: ``build-<host>-<pid>-`` (this host and process by default), so that
    the folder of a killed compile can be told from one in progress."""
    host = re.sub(r"[^A-Za-z0-9.]", "_", socket.gethostname() if host is None else host) or "_"
    return f"build-{host}-{os.getpid() if pid is None else pid}-"


def _alive(pid: int) -> bool:
    if os.name != "posix":  # os.kill would end it
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # PermissionError: someone else's, alive
        return True
    return True


_OLD_BUILD = re.compile(r"tmp[a-z0-9_]{8}")  # tempfile.TemporaryDirectory's names: the build folders of before


def _stale(entry: os.DirEntry, now: float, host: str) -> bool:
    """Whether ``entry`` is the build folder of a compile that was killed (its process gone, or long ago)."""
    try:
        if not entry.is_dir(follow_symlinks=False):
            return False
        age = now - entry.stat(follow_symlinks=False).st_mtime
    except OSError:
        return False
    if entry.name.startswith("build-"):
        parts = entry.name.removeprefix("build-").split("-")
        if len(parts) == 3 and parts[0] == host and parts[1].isdigit():
            return not _alive(int(parts[1])) or age > STALE_LIVE_SECONDS
        return age > STALE_SECONDS
    if _OLD_BUILD.fullmatch(entry.name) and age > STALE_SECONDS:
        try:
            return set(os.listdir(entry.path)) <= {"plastic.c", "plastic.so"}
        except OSError:
            return False
    return False


def _clean_stale(folder: Path) -> None:
    """Remove the build folders that killed compiles left in ``folder`` (once per process and folder)."""
    if folder in _cleaned:
        return
    _cleaned.add(folder)
    host, now = build_prefix(pid=0).split("-")[1], time.time()
    try:
        with os.scandir(folder) as entries:
            stale = [entry.path for entry in entries if _stale(entry, now, host)]
    except OSError:
        return
    for path in stale:
        shutil.rmtree(path, ignore_errors=True)


@contextlib.contextmanager
def _locked(folder: Path, exclusive: bool) -> Iterator[None]:
    """Hold a lock on ``folder`` (flock of the folder itself; none where that cannot be had), exclusive while a
    build moves its library and digest into place, shared while a load reads both, so that a load never pairs one
    build's library with another's digest (which would only cost a needless rebuild)."""
    try:
        import fcntl

        fd = os.open(folder, os.O_RDONLY)
    except (ImportError, OSError):
        yield
        return
    try:
        with contextlib.suppress(OSError):
            fcntl.flock(fd, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
        yield
    finally:
        os.close(fd)  # and with it the lock


def digest_path(library: Path) -> Path:
    """Where the sha256 of ``library`` is kept: ``<name>.so.sha256`` beside it."""
    return library.with_name(library.name + DIGEST_SUFFIX)


def _check(path: Path) -> str | None:
    """What is wrong with the cached library ``path`` (``None``: its bytes match its digest)."""
    digest = digest_path(path)
    with _locked(path.parent, exclusive=False):
        try:
            data = path.read_bytes()
        except OSError as error:
            return f"cannot be read ({error.strerror or error})"
        try:
            recorded: str | None = digest.read_text()
        except FileNotFoundError:
            recorded = None
        except (OSError, ValueError) as error:
            return f"has an unreadable digest {digest.name} ({error})"
    if not data:
        return "is empty (0 bytes)"
    if recorded is None:
        return f"has no digest {digest.name}"
    if hashlib.sha256(data).hexdigest() != next(iter(recorded.split()), "").lower():
        return f"does not match its digest {digest.name} ({len(data)} bytes: truncated or replaced)"
    return None


def _missing_operators() -> list[str]:
    """The operators that no loaded library has registered yet."""
    missing = []
    for name in OPERATORS:
        try:
            getattr(torch.ops.plastic_core, name)
        except (AttributeError, RuntimeError):
            missing.append(f"plastic_core::{name}")
    return missing


def _open(path: Path) -> str | None:
    """Load the cached library ``path``, only where its digest matches, and check that it registers every
    operator; ``None``, or what is wrong with it. (A library replaced between the check and the load is another
    build's, complete: builds only ever move whole files into place.)"""
    problem = _check(path)
    if problem is not None:
        return problem
    try:
        torch.ops.load_library(str(path))
    except (OSError, RuntimeError) as error:
        return f"cannot be loaded ({str(error).removeprefix(f'{path}: ')})"
    missing = _missing_operators()
    if missing:  # it stays loaded (unloading a foreign library is not safe); the rebuild is loaded by another name
        return f"lacks {', '.join(missing)} (not these kernels)"
    return None


def _ninja_on_path() -> None:
    """cpp_extension runs ``ninja`` from PATH: where there is none, the ninja wheel's (a dependency), whose
    console script is not on PATH when this virtual environment is not activated."""
    if shutil.which("ninja") is not None:
        return
    try:
        import ninja
    except ImportError:
        return
    os.environ["PATH"] = os.pathsep.join(filter(None, [ninja.BIN_DIR, os.environ.get("PATH")]))


@contextlib.contextmanager
def _quiet_cpp_extension() -> Iterator[None]:
    """Silence cpp_extension's warnings and log lines (its notes on the compiler's name and version)."""
    logger = logging.getLogger("torch.utils.cpp_extension")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        logger.setLevel(level)


def _build(flags: list[str], target: Path, label: str, problem: str | None = None) -> None:
    """Build the source into ``target`` with ``torch.utils.cpp_extension`` and load it, saying so (one line;
    ``problem``: why a cached library is rebuilt). The build runs in a folder of its own beside ``target``; the
    library is loaded from there (complete, this build's own), then moved into place, then its digest: concurrent
    processes may race here harmlessly."""
    from torch.utils import cpp_extension  # imports setuptools: only when building

    folder = target.parent
    what = f"the native kernels ({label}) into {folder}"
    _say(f"plastic_core: {problem}; rebuilding {what} ..." if problem else f"plastic_core: compiling {what} ...",
         end="")
    start = time.perf_counter()
    try:
        _clean_stale(folder)
        _ninja_on_path()
        tmp = Path(tempfile.mkdtemp(prefix=build_prefix(), dir=folder))
        try:
            for file, text in SOURCES.items():
                (tmp / file).write_text(text)
            sources = [str(tmp / file) for file in SOURCES if file.endswith(".cpp")]
            name = target.name.removesuffix(".so")
            try:
                with _quiet_cpp_extension():  # its notes on the compiler: the build's result says what matters
                    out = Path(cpp_extension.load(name, sources, extra_cflags=flags, build_directory=str(tmp),
                                                  is_python_module=False, verbose=False))
            except (RuntimeError, OSError, subprocess.SubprocessError) as error:
                raise RuntimeError(f"building the plastic kernels failed: {_build_error(error)}") from error
            missing = _missing_operators()
            if missing:
                raise RuntimeError(f"the built library lacks {', '.join(missing)}")
            digest = tmp / (out.name + DIGEST_SUFFIX)
            digest.write_text(f"{hashlib.sha256(out.read_bytes()).hexdigest()}  {target.name}\n")
            with _locked(folder, exclusive=True):
                os.replace(out, target)
                os.replace(digest, digest_path(target))
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    except BaseException:
        _say(" failed")
        raise
    _say(f" {'rebuilt' if problem else 'done'} in {time.perf_counter() - start:.1f} s")


def _private(folder: Path) -> bool:
    """Whether ``folder`` is this user's alone (the fallback folder lies in a shared temporary directory)."""
    if not hasattr(os, "getuid"):
        return True
    try:
        st = folder.stat()
    except OSError:
        return False
    return st.st_uid == os.getuid() and not st.st_mode & 0o022


def compiler() -> str:
    """The C++ compiler cpp_extension builds with: ``$CXX``, default ``c++``."""
    return os.environ.get("CXX") or "c++"


def _compile() -> None:
    """Load the kernels from the cache, or build them there: ``RuntimeError`` where neither works."""
    cxx = compiler()
    if shutil.which(cxx) is None:
        raise RuntimeError(f"no C++ compiler {cxx!r} found (set CXX)")
    vector = vector_width()
    flags = [*FLAGS, *VECTOR_FLAGS[vector]]
    features = cpu_features() if vector == "native" else ""
    key = cache_key(SOURCE, cxx, [*flags, f"torch {torch.__version__}"], features)
    name = f"plastic_kernels_{vector}_{key}.so"
    primary, fallback = cache_dir(), fallback_cache_dir()
    problem = None  # what was wrong with the first cached library found, rebuilt below
    for folder in (primary, fallback):
        path = folder / name
        if not os.path.lexists(path) or (folder == fallback and not _private(folder)):
            continue
        _clean_stale(folder)
        why = _open(path)
        if why is None:
            return
        problem = problem or f"{path} {why}"
    try:
        target = _writable_dir(primary) / name
    except OSError as error:
        try:
            target = _writable_dir(fallback, private=True) / name
        except OSError as error2:
            raise RuntimeError(f"no writable cache folder: {primary} ({error}), {fallback} ({error2})") from error2
        _say(f"plastic_core: the cache folder {primary} cannot be written ({error}); using {fallback}")
    _build(flags, target, vector, problem)


def _bound(op: str, args: tuple, kwargs: dict) -> dict:
    """A call's arguments by their names in the operator's schema, every tensor on one device (what the
    dispatcher cannot say for a fake call)."""
    names = [a.name for a in getattr(torch.ops.plastic_core, op).default._schema.arguments]
    bound = dict(zip(names, args, strict=False), **kwargs)  # kwargs: the arguments given by name
    tensors = [t for value in bound.values() for t in (value if isinstance(value, (list, tuple)) else [value])
               if isinstance(t, Tensor)]
    devices = sorted({str(t.device) for t in tensors})
    if len(devices) > 1:
        raise RuntimeError(f"plastic_core: {op} takes tensors on one device, got {', '.join(devices)}")
    return bound


def _register_fakes() -> None:
    """Shape-only versions of the operators (for fake and meta tensors), so that ``torch.compile`` and
    ``torch.export`` trace through calls to them instead of breaking the graph; once per process, after the library
    is loaded. The step operators write into their outputs and return nothing; ``backward_sequence`` returns
    g_eta (B,), g_alpha (N, N) for alpha per connection (else empty) and g_fanout (N,) where there is a fanout
    (else empty)."""
    if _fakes:
        return

    def step(op: str):
        def fake(*args, **kwargs) -> None:
            _bound(op, args, kwargs)
        return fake

    def backward_sequence(*args, **kwargs) -> tuple[Tensor, Tensor, Tensor]:
        a = _bound("backward_sequence", args, kwargs)
        g_hebb = a["g_hebb"]  # (B, N, N)
        n_batch, n = g_hebb.shape[0], g_hebb.shape[1]
        return (g_hebb.new_empty(n_batch), g_hebb.new_empty((n, n) if a["alpha_kind"] == "connection" else (0,)),
                g_hebb.new_empty((n,) if a["fanout"] is not None else (0,)))

    for name in OPERATORS:
        torch.library.register_fake(f"plastic_core::{name}")(backward_sequence if name == "backward_sequence"
                                                              else step(name))
    _fakes.add("ops")


def load(dtype: torch.dtype):
    """``torch.ops.plastic_core`` (its operators take float32 and float64), loaded or built on first call; ``None``
    where ``dtype`` is another or the kernels cannot be had (with a warning saying why, once per process)."""
    if dtype not in DTYPES or not enabled():
        return None
    with _lock:
        if "ops" not in _kernels:
            try:
                _compile()
                _register_fakes()
                _kernels["ops"] = torch.ops.plastic_core
            except (OSError, RuntimeError, subprocess.SubprocessError, ImportError) as error:
                warnings.warn(f"plastic_core: native kernels unavailable ({error}); using the eager PyTorch kernels",
                              RuntimeWarning, stacklevel=3)
                _kernels["ops"] = None
        return _kernels["ops"]


def cpus() -> int:
    """How many CPUs this process may run on (its affinity mask where the OS has one)."""
    try:
        return len(os.sched_getaffinity(0)) or 1
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def threads() -> int:
    """Threads for the kernels that run once per sequence (the backward pass, one long parallel region):
    ``$PLASTIC_CORE_THREADS`` where set, else ``torch.get_num_threads()`` capped at ``cpus()``."""
    fixed = os.environ.get("PLASTIC_CORE_THREADS", "").strip()
    if fixed:
        if not fixed.isdigit() or int(fixed) < 1:
            raise ValueError(f"PLASTIC_CORE_THREADS must be a positive integer, got {fixed!r}")
        return int(fixed)
    return max(1, min(torch.get_num_threads(), cpus()))


_usage: dict[str, float | None] = {"at": None, "busy": None, "ours": None, "free": None}


def _busy_seconds() -> float | None:
    """CPU seconds spent so far (all but idle and iowait) on the CPUs this process may run on, from /proc/stat."""
    try:
        allowed = os.sched_getaffinity(0)
        text = Path("/proc/stat").read_text()
        tick = os.sysconf("SC_CLK_TCK")
    except (AttributeError, OSError, ValueError):
        return None
    busy, seen = 0, 0
    for line in text.splitlines():
        if line.startswith("cpu") and line[3:4].isdigit():
            name, *fields = line.split()
            if int(name[3:]) in allowed and len(fields) >= 5:
                values = [int(v) for v in fields[:8]]
                busy += sum(values) - values[3] - values[4]
                seen += 1
    return busy / tick if seen else None


def free_cores(min_interval: float = 0.1) -> float | None:
    """Cores of this process's CPUs that other processes left unused since the previous measurement (taken at
    least ``min_interval`` s before; more recent calls return the last estimate), or ``None`` where unknown (the
    first call; no /proc/stat)."""
    now = time.monotonic()
    if _usage["at"] is not None and now - _usage["at"] < min_interval:
        return _usage["free"]
    busy = _busy_seconds()
    if busy is None:
        return None
    t = os.times()
    ours = t.user + t.system  # all of this process's threads
    if _usage["at"] is not None:
        others = max(0.0, (busy - _usage["busy"]) - (ours - _usage["ours"])) / (now - _usage["at"])
        _usage["free"] = max(0.0, cpus() - others)
    _usage.update(at=now, busy=busy, ours=ours)
    return _usage["free"]


def step_threads(cap: int) -> int:
    """Threads for the kernels called once per time step (``forward_step``, ``update_step``): ``cap``,
    lowered to the cores that other processes have left free lately (``free_cores``), since each such call is a
    short parallel region that ends in a barrier: a thread that shares its core with a busy process makes every
    step wait for it (measured: 3-10x slower than 1 thread beside one busy process on 2 cores). The forward
    results do not depend on the thread count (each batch element is computed by one thread)."""
    if os.environ.get("PLASTIC_CORE_THREADS", "").strip():
        return cap
    free = free_cores()
    return cap if free is None else max(1, min(cap, int(free + 0.5)))


def supports(*tensors: Tensor | None) -> bool:
    """Whether the native kernels can run on these tensors (CPU, float32/float64, one dtype)."""
    present = [t for t in tensors if t is not None]
    dtype = present[0].dtype
    return dtype in DTYPES and all(t.device.type == "cpu" and t.dtype == dtype for t in present)


if __name__ == "__main__":  # python -m plastic_core.native: build the kernels now
    print("ok" if load(torch.float32) is not None else "unavailable", file=sys.stderr)
