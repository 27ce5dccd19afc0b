"""Run directories and the training loop shared by every trainer (A2C here, the supervised meta-trainer later).

A run directory holds::

    config.json     the settings (checked on --resume and against every checkpoint)
    run.json        where and with what each session ran: versions, git commit, kernel path, CPU (agents.provenance)
    metrics.csv     one row per iteration (see agents.logger)
    tb/             TensorBoard events of the same scalars
    checkpoint.pt   the last checkpoint (atomic; torch.load(weights_only=True))
    run.lock        held (``flock``) by the one process that writes the run; holds its pid and host

Only one process writes a run at a time: :class:`RunDir` takes the lock before it writes anything and a second
writer is refused with the holder's pid. The operating system drops the lock when its process dies, so a killed
run's lock is taken over by the next ``--resume`` without a word.

A trainer is any object with ``episodes_per_iteration``, ``train_iteration(iteration) -> dict`` of floats (raising
:class:`NonFiniteLossError` *before* it updates anything when its loss is NaN or infinite), and
``state_dict()`` / ``load_state_dict()`` covering everything that the next iterations depend on (weights,
optimizer, random generators). :func:`train_loop` then gives it logging, checkpoints, resume and a progress bar.
Resumed runs reproduce uninterrupted ones exactly as long as iteration ``i`` draws its data from ``(seed, i)``
and its other randomness from generators in the state dict.
"""

from __future__ import annotations

import contextlib
import contextvars
import dataclasses
import fcntl
import json
import math
import os
import shutil
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

import torch
from torch import Tensor, nn
from tqdm import tqdm

from agents.checkpoint import (
    CheckpointError,
    RunError,
    atomic_write_text,
    load_checkpoint,
    remove_stale_temp_files,
    save_checkpoint,
)
from agents.checks import MAX_CONFIG_DEPTH, check_env_id_source, config_depth, one_line
from agents.logger import METRICS_FILE, MetricsLog, parse_metrics, repair_metrics, verify_metrics
from agents.run_config import canonical, config_differences, upgrade_config

CONFIG_FILE = "config.json"
CHECKPOINT_FILE = "checkpoint.pt"
LOCK_FILE = "run.lock"


@dataclasses.dataclass(frozen=True)
class ResumePolicy:
    """How a resume treats what it cannot continue exactly (the CLI's ``--allow-nonexact``, ``--repair-metrics``)."""

    allow_nonexact: bool = False  # continue with another thread count / device / kernel path (metrics will differ)
    repair_metrics: bool = False  # rebuild metrics.csv from the checkpoint's copy of the rows it covers


_RESUME_POLICY: contextvars.ContextVar[ResumePolicy | None] = contextvars.ContextVar("resume_policy",
                                                                                      default=None)


def _policy() -> ResumePolicy:
    return _RESUME_POLICY.get() or ResumePolicy()


@contextlib.contextmanager
def resume_policy(allow_nonexact: bool = False, repair_metrics: bool = False):
    """Within this block, :meth:`RunDir.resume` (and so ``train(..., resume=True)``) follows this policy."""
    token = _RESUME_POLICY.set(ResumePolicy(bool(allow_nonexact), bool(repair_metrics)))
    try:
        yield
    finally:
        _RESUME_POLICY.reset(token)


class NonFiniteLossError(FloatingPointError):
    """The loss (or its gradient) became NaN or infinite; the run stops and keeps its last good checkpoint."""


class RunInterrupted(Exception):
    """SIGINT or SIGTERM stopped the run after it finished an iteration and wrote a checkpoint of it."""

    def __init__(self, signal_name: str, iteration: int, path: Path) -> None:
        super().__init__(f"stopped by {signal_name} after iteration {iteration}; checkpoint written to "
                         f"{path / CHECKPOINT_FILE}")
        self.signal_name, self.iteration, self.path = signal_name, iteration, path

    @property
    def exit_code(self) -> int:
        """The shell's convention for a process ended by this signal: 128 + its number."""
        return 128 + int(getattr(signal, self.signal_name))


class Trainer(Protocol):
    episodes_per_iteration: int

    def train_iteration(self, iteration: int) -> dict[str, float]: ...

    def state_dict(self) -> dict[str, Any]: ...

    def load_state_dict(self, state: dict[str, Any]) -> None: ...


class TorchTrainer:
    """The state and teardown shared by the trainers: a ``model``, its ``optimizer``, an ``env`` and, where the
    trainer samples with one, a torch ``generator``. The checkpoint holds the weights, the optimizer, the global
    torch RNG and that generator."""

    model: nn.Module
    optimizer: torch.optim.Optimizer
    env: Any
    generator: torch.Generator | None = None

    def state_dict(self) -> dict[str, Any]:
        state = {"model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
                 "torch_rng": torch.get_rng_state()}
        if self.generator is not None:
            state["generator"] = self.generator.get_state()
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        if self.generator is not None:
            self.generator.set_state(state["generator"])
        torch.set_rng_state(state["torch_rng"])

    def update(self, loss: Tensor, clip: float, step: bool = True) -> Tensor:
        """One optimizer step on ``loss``, with the gradient norm clipped to ``clip``; returns the norm before the
        clip. A NaN or infinite loss or gradient raises :class:`NonFiniteLossError` before anything changes.
        ``step=False`` (a burn-in iteration) computes the gradient and its norm but leaves weights and optimizer."""
        if not torch.isfinite(loss):
            raise NonFiniteLossError(f"the loss is {loss.item()}")
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        grad_norm = nn.utils.clip_grad_norm_(self.model.parameters(), clip)
        if not torch.isfinite(grad_norm):
            raise NonFiniteLossError(f"the gradient norm is {grad_norm.item()}")
        if step:
            self.optimizer.step()
        return grad_norm

    def close(self) -> None:
        self.env.close()


def check_resumable(path: str | os.PathLike, existing: dict[str, Any], config: dict[str, Any],
                    resumable_fields: tuple[str, ...]) -> None:
    """:class:`RunError` unless ``config`` differs from the run's ``existing`` config only in ``resumable_fields``."""
    diff = config_differences(existing, config, ignore=resumable_fields)
    if diff:
        raise RunError(
            f"cannot resume {path}: it holds a run with other settings ({'; '.join(diff)}). Only "
            f"{', '.join(resumable_fields) or 'nothing'} may change on resume."
        )


class RunDir:
    """One run's directory. Build it with :meth:`create` (new run) or :meth:`resume` (continue one)."""

    def __init__(self, path: str | os.PathLike, config: dict[str, Any], resumable_fields: tuple[str, ...] = ()):
        self.path = Path(path)
        self.config = canonical(config)
        self.resumable_fields = tuple(resumable_fields)
        self.resumed_from: dict[str, Any] | None = None  # the checkpoint that resume() loaded
        self.created = False  # this object started the run (create): discard() may remove what it wrote
        self._made_dir = False
        self._lock_fd: int | None = None

    @property
    def checkpoint_path(self) -> Path:
        return self.path / CHECKPOINT_FILE

    @property
    def metrics_path(self) -> Path:
        return self.path / METRICS_FILE

    @staticmethod
    def read_config(path: str | os.PathLike, trusted_env_id: str | None = None) -> dict[str, Any]:
        """The ``config.json`` of run directory ``path`` (a clear error when there is none, or a damaged one).

        Its ``env_id`` may not name a module outside this package (``module:Env``) unless it is
        ``trusted_env_id``, the id given on the command line (see :func:`check_env_id_source`)."""
        config_file = Path(path) / CONFIG_FILE
        if not config_file.is_file():
            raise RunError(f"{path} is not a run directory: it has no {CONFIG_FILE}")
        damaged = (f"the run directory is damaged: restore {CONFIG_FILE} from a backup (checkpoint.pt keeps a copy "
                   "of the settings under 'config')")
        try:
            data = json.loads(config_file.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as error:
            raise RunError(f"{config_file} is not valid JSON ({error}); {damaged}") from None
        except RecursionError:
            raise RunError(f"{config_file} is nested too deeply to be a config; {damaged}") from None
        except OSError as error:
            raise RunError(f"cannot read {config_file}: {error.strerror or error}") from None
        if not isinstance(data, dict):
            raise RunError(f"{config_file} holds a JSON {type(data).__name__}, not an object of settings; {damaged}")
        if config_depth(data) > MAX_CONFIG_DEPTH:
            raise RunError(f"{config_file} is nested more than {MAX_CONFIG_DEPTH} levels deep; {damaged}")
        check_env_id_source(data.get("env_id"), config_file, trusted_env_id)
        return upgrade_config(data)

    @classmethod
    def open(
        cls, path: str | os.PathLike, config: dict[str, Any], resumable_fields: tuple[str, ...] = (),
        resume: bool = False,
    ) -> RunDir:
        """:meth:`resume` the run in ``path`` with ``resume``, else :meth:`create` a new one."""
        return (cls.resume if resume else cls.create)(path, config, resumable_fields)

    @classmethod
    def create(
        cls, path: str | os.PathLike, config: dict[str, Any], resumable_fields: tuple[str, ...] = (),
        how_to_continue: str = "Pass --resume to continue it, or choose another output directory",
    ) -> RunDir:
        """Start a new run in ``path`` (created if needed). Refuses a directory that already holds anything;
        ``how_to_continue`` ends that message (a trainer that cannot resume says what to do instead)."""
        path = Path(path)
        if (path / CONFIG_FILE).exists():
            existing = cls.read_config(path)
            diff = config_differences(existing, canonical(config))
            what = "a different run (" + "; ".join(diff) + ")" if diff else "a run with the same settings"
            raise RunError(
                f"output directory {path} already holds {what}. {how_to_continue}; nothing was changed."
            )
        if path.exists() and (not path.is_dir() or any(path.iterdir())):
            raise RunError(f"output directory {path} exists and is not an empty directory; refusing to write there")
        run = cls(path, config, resumable_fields)
        run._made_dir = not path.exists()
        try:
            path.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise RunError(f"cannot create the output directory {path}: {error.strerror or error}") from None
        run.lock()
        if (path / CONFIG_FILE).exists():  # another process created the run between our check and our lock
            run.release()
            raise RunError(f"output directory {path} was just taken by another run; choose another one")
        run.created = True
        run._write(CONFIG_FILE, json.dumps(run.config, indent=2, sort_keys=True) + "\n")
        return run

    @classmethod
    def resume(
        cls, path: str | os.PathLike, config: dict[str, Any], resumable_fields: tuple[str, ...] = ()
    ) -> RunDir:
        """Continue the run in ``path``; ``config`` may differ from its ``config.json`` only in ``resumable_fields``.

        The last checkpoint (if any) is loaded and checked here, before anything is written, and kept in
        ``resumed_from`` for :func:`train_loop`.
        """
        existing = cls.read_config(path, trusted_env_id=config.get("env_id"))
        run = cls(path, config, resumable_fields)
        check_resumable(path, existing, run.config, run.resumable_fields)
        run.lock()
        try:
            run.resumed_from = run.load_checkpoint()
            run._check_metrics(run.resumed_from, _policy().repair_metrics)
            run._check_arithmetic(run.resumed_from, _policy().allow_nonexact,
                                  {"threads": torch.get_num_threads(), "device": run.config.get("device")})
            if existing != run.config:
                run._write(CONFIG_FILE, json.dumps(run.config, indent=2, sort_keys=True) + "\n")
            remove_stale_temp_files(run.path)
        except BaseException:
            run.release()
            raise
        return run

    def _check_metrics(self, payload: dict[str, Any] | None, repair: bool) -> None:
        """``metrics.csv`` must hold the rows the checkpoint covers (exactly); ``repair`` rebuilds them."""
        hint = ("pass --repair-metrics to rebuild them from the copy the checkpoint keeps (rows after it are "
                "recomputed), or restore metrics.csv from a backup")
        if payload is None:
            try:
                _, body, _ = parse_metrics(self.metrics_path) if self.metrics_path.exists() else ([], [], False)
            except ValueError:
                body = [[]]
            if body:
                if repair:
                    repair_metrics(self.metrics_path, None)
                    print(f"{self.metrics_path}: no checkpoint, so its {len(body)} rows were dropped; the run "
                          "starts again at iteration 0", file=sys.stderr)
                    return
                raise RunError(
                    f"cannot resume {self.path}: {self.metrics_path} holds {len(body)} rows but there is no "
                    f"{CHECKPOINT_FILE}: restore {self.checkpoint_path} from a backup, or pass --repair-metrics to "
                    "drop the rows and start again at iteration 0"
                )
            return
        record = payload.get("metrics")
        if record is None:  # a checkpoint from before the metrics record: MetricsLog checks the row count
            return
        problem = verify_metrics(self.metrics_path, record)
        if problem is None:
            return
        if not repair:
            raise RunError(f"cannot resume {self.path}: {problem}; {hint}")
        try:
            rows = repair_metrics(self.metrics_path, record)
        except OSError as error:
            raise RunError(f"cannot rewrite {self.metrics_path}: {error.strerror or error}") from None
        print(f"{self.metrics_path}: {problem}; rebuilt its {rows} rows from {self.checkpoint_path}",
              file=sys.stderr)

    def _check_arithmetic(self, payload: dict[str, Any] | None, allow_nonexact: bool,
                          current: dict[str, Any]) -> None:
        """What changes the arithmetic (``current``: thread count, device, kernel path) must be what the checkpoint's
        session recorded."""
        recorded = payload.get("arithmetic") if payload is not None else None
        if not isinstance(recorded, dict):
            return
        changed = [f"{key} {recorded[key]!r} -> {value!r}" for key, value in current.items()
                   if key in recorded and recorded[key] != value]
        if not changed:
            return
        what = "; ".join(changed)
        if not allow_nonexact:
            raise RunError(
                f"cannot resume {self.path} exactly: its checkpoint was written with other arithmetic ({what}), so "
                "the metrics would differ from an uninterrupted run. Resume with the same --threads / --device, or "
                "pass --allow-nonexact to continue anyway"
            )
        print(f"warning: resuming {self.path} with {what} (--allow-nonexact): from here on the metrics will differ "
              "from an uninterrupted run", file=sys.stderr)

    # -- one writer at a time ---------------------------------------------------------------------------------
    def lock(self) -> None:
        """Take the run's lock (``run.lock``) or raise :class:`RunError` naming the process that holds it."""
        lock_path = self.path / LOCK_FILE
        try:
            fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as error:
            raise RunError(f"cannot write in the run directory {self.path}: {error.strerror or error}") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            holder = os.pread(fd, 4096, 0).decode("utf-8", "replace").strip()
            os.close(fd)
            try:
                who = json.loads(holder)
                who = f"pid {who['pid']} on {who['host']}, since {who['since']}"
            except (ValueError, KeyError, TypeError):
                who = "another process"
            raise RunError(
                f"run directory {self.path} is being written by {who}; wait for it to finish or stop it "
                "(Ctrl-C or SIGTERM writes a checkpoint), then --resume"
            ) from None
        info = {"pid": os.getpid(), "host": socket.gethostname(), "since": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
        with contextlib.suppress(OSError):  # who holds it is for messages only (a full disk cannot write it)
            os.ftruncate(fd, 0)
            os.pwrite(fd, (json.dumps(info) + "\n").encode(), 0)
        self._lock_fd = fd

    def release(self) -> None:
        """Give the lock back (also done by the operating system when the process ends)."""
        if self._lock_fd is not None:
            with contextlib.suppress(OSError):
                os.ftruncate(self._lock_fd, 0)
            os.close(self._lock_fd)  # closing the descriptor drops the flock
            self._lock_fd = None

    def discard(self) -> None:
        """Remove a run that this object created and that never wrote a checkpoint, so that the same command can
        simply be run again (a run with a checkpoint is never touched)."""
        if not self.created or self.checkpoint_path.exists():
            return
        self.release()
        if self._made_dir:
            shutil.rmtree(self.path, ignore_errors=True)
        else:  # the directory was empty before the run: empty it again
            for child in self.path.iterdir():
                shutil.rmtree(child, ignore_errors=True) if child.is_dir() else child.unlink(missing_ok=True)

    def _write(self, name: str, text: str) -> None:
        try:
            atomic_write_text(self.path / name, text)
        except OSError as error:
            raise RunError(f"cannot write {self.path / name}: {error.strerror or error}") from None

    def save_checkpoint(self, iteration: int, episodes: int, wall_time: float, trainer_state: dict[str, Any],
                        extra: dict[str, Any] | None = None, metrics: dict[str, Any] | None = None,
                        kernel: str | None = None) -> None:
        """Write the checkpoint of ``iteration``: ``metrics`` is :meth:`MetricsLog.record` of the rows it covers;
        the thread count, device and ``kernel`` path are recorded so a resume can tell whether it is exact. A
        write that fails (disk full) raises :class:`RunError`; the previous checkpoint is left intact."""
        payload = {
            "config": json.dumps(self.config, sort_keys=True),
            "iteration": iteration,
            "episodes": episodes,
            "wall_time": wall_time,
            "trainer": trainer_state,
            "extra": extra or {},
            "arithmetic": {"threads": torch.get_num_threads(), "device": self.config.get("device"),
                           "kernel": kernel},
        }
        if metrics is not None:
            payload["metrics"] = metrics
        try:
            save_checkpoint(self.checkpoint_path, payload)
        except OSError as error:
            previous = "the previous checkpoint is intact" if self.checkpoint_path.exists() else "no checkpoint yet"
            raise RunError(
                f"cannot write the checkpoint {self.checkpoint_path} of iteration {iteration}: "
                f"{error.strerror or error}; {previous}. Free some space, then --resume"
            ) from None

    def load_checkpoint(self, map_location: str | Any = "cpu") -> dict[str, Any] | None:
        """The last checkpoint, checked against ``config.json``; ``None`` when the run has none yet."""
        if not self.checkpoint_path.exists():
            return None
        payload = load_checkpoint(self.checkpoint_path, map_location=map_location)
        for key in ("config", "iteration", "episodes", "wall_time", "trainer"):
            if key not in payload:
                raise CheckpointError(f"checkpoint {self.checkpoint_path} lacks {key!r}; it was not written by a run")
        diff = config_differences(upgrade_config(json.loads(payload["config"])), self.config,
                                  ignore=self.resumable_fields)
        if diff:
            raise CheckpointError(
                f"checkpoint {self.checkpoint_path} was written by a run with another config than {CONFIG_FILE} "
                f"({'; '.join(diff)}); it cannot be used with these settings"
            )
        return payload


class StopSignals:
    """While active, SIGINT and SIGTERM ask the loop to stop after the current iteration instead of killing it.

    The first signal sets :attr:`received` and puts the previous handlers back, so a second Ctrl-C stops at once
    (KeyboardInterrupt). Outside the main thread (where Python allows no handlers) it does nothing.
    """

    SIGNALS = ("SIGINT", "SIGTERM")

    def __init__(self) -> None:
        self.received: str | None = None
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> StopSignals:
        if threading.current_thread() is threading.main_thread():
            for name in self.SIGNALS:
                number = getattr(signal, name)
                self._previous[number] = signal.signal(number, self._handle)
        return self

    def _handle(self, number: int, frame: Any) -> None:
        self.received = signal.Signals(number).name
        self._restore()
        print(f"\n{self.received}: finishing this iteration and writing a checkpoint (again to stop at once)",
              file=sys.stderr, flush=True)

    def _restore(self) -> None:
        for number, handler in self._previous.items():
            signal.signal(number, handler)
        self._previous.clear()

    def __exit__(self, *exc: Any) -> None:
        self._restore()


def train_loop(
    run: RunDir,
    trainer: Trainer,
    iterations: int,
    checkpoint_every: int,
    resume: bool = False,
    progress: bool | None = None,
    reward_key: str = "reward_mean",
    tensorboard: bool = True,
    on_row: Callable[[dict[str, float]], None] | None = None,
) -> list[dict[str, float]]:
    """Train ``trainer`` for ``iterations`` iterations in ``run``; returns the rows logged by this call.

    With ``resume`` the trainer state, iteration and episode counters and wall time come back from the last
    checkpoint (if any), and the metrics logged after it are dropped. A checkpoint is written every
    ``checkpoint_every`` iterations and at the end. ``progress=None`` shows the bar only on a terminal.
    Raises :class:`NonFiniteLossError` when the loss becomes NaN or infinite (no checkpoint is written then), and
    :class:`RunInterrupted` after SIGINT / SIGTERM, once the current iteration is checkpointed. A new run that
    fails before its first checkpoint is removed again (:meth:`RunDir.discard`), so the same command can re-run.
    The run's lock is released on the way out. ``on_row`` (e.g. a Ray Tune reporter) is called with each row right
    after it is logged.
    """
    try:
        with StopSignals() as stop:
            return _train_iterations(run, trainer, iterations, checkpoint_every, resume, progress, reward_key,
                                     tensorboard, stop, on_row)
    except BaseException:
        run.discard()
        raise
    finally:
        run.release()


def _train_iterations(run: RunDir, trainer: Trainer, iterations: int, checkpoint_every: int, resume: bool,
                      progress: bool | None, reward_key: str, tensorboard: bool,
                      stop: StopSignals, on_row: Callable[[dict[str, float]], None] | None = None
                      ) -> list[dict[str, float]]:
    start, episodes, wall_before, last_good = 0, 0, 0.0, None
    payload = (run.resumed_from if run.resumed_from is not None else run.load_checkpoint()) if resume else None
    kernel = _kernel_path(trainer)
    if payload is not None:
        run._check_arithmetic(payload, _policy().allow_nonexact, {"kernel": kernel})
        try:
            trainer.load_state_dict(payload["trainer"])
        except (RuntimeError, KeyError, ValueError, TypeError) as error:
            raise CheckpointError(
                f"checkpoint {run.checkpoint_path} does not fit the trainer of {run.path / CONFIG_FILE} "
                f"({one_line(error)}); it was written by another run or edited"
            ) from None
        start, episodes, wall_before = payload["iteration"], payload["episodes"], payload["wall_time"]
        last_good = start
    rows: list[dict[str, float]] = []
    running = payload["extra"].get("running_reward") if payload is not None else None
    started = time.perf_counter()
    bar = tqdm(total=iterations, initial=start, unit="it", desc=run.path.name, disable=True if progress is False
               else None if progress is None else False, dynamic_ncols=True)
    try:
        log = MetricsLog(run.path, keep_rows=start, tensorboard=tensorboard)
    except OSError as error:
        raise RunError(f"cannot write {run.metrics_path}: {error.strerror or error}; free some space, then "
                       "--resume") from None
    with log:
        try:
            for iteration in range(start, iterations):
                try:
                    stats = trainer.train_iteration(iteration)
                except NonFiniteLossError as error:
                    kept = (f"the last good checkpoint ({run.checkpoint_path}, iteration {last_good}) is kept"
                            if last_good is not None else "no checkpoint had been written yet")
                    raise NonFiniteLossError(
                        f"stopping: {error} at iteration {iteration + 1} (after {episodes} episodes); {kept}. "
                        "Try a lower learning rate or gradient clip."
                    ) from None
                episodes += trainer.episodes_per_iteration
                wall_time = wall_before + time.perf_counter() - started
                row = {"iteration": iteration + 1, "episodes": episodes, **stats, "wall_time": wall_time}
                try:
                    log.write(row)
                except OSError as error:
                    kept = (f"the last checkpoint (iteration {last_good}) is intact" if last_good is not None
                            else "no checkpoint had been written yet")
                    raise RunError(f"cannot write {run.metrics_path}: {error.strerror or error}; {kept}. Free some "
                                   "space, then --resume") from None
                rows.append(row)
                if on_row is not None:
                    on_row(row)
                reward = stats.get(reward_key)
                if reward is not None and math.isfinite(reward):
                    running = reward if running is None else 0.95 * running + 0.05 * reward
                    bar.set_postfix(reward=f"{running:.3g}", refresh=False)
                bar.update(1)
                last = iteration + 1 == iterations
                if (iteration + 1) % checkpoint_every == 0 or last or stop.received:
                    run.save_checkpoint(iteration + 1, episodes, wall_time, trainer.state_dict(),
                                        extra={"running_reward": running}, metrics=log.record(), kernel=kernel)
                    last_good = iteration + 1
                if stop.received and not last:
                    raise RunInterrupted(stop.received, iteration + 1, run.path)
        finally:
            bar.close()
    return rows


def _kernel_path(trainer: Any) -> str | None:
    """"native" / "eager": the kernels the trainer's model runs on (``None`` without a fused core or model)."""
    try:
        from agents.provenance import kernel_path

        return kernel_path(getattr(trainer, "model", None))
    except Exception:  # provenance only: never stops a run
        return None


def load_weights(model: nn.Module, payload: dict[str, Any], run_dir: Path) -> None:
    """Load a checkpoint's ``trainer.model`` weights into ``model``, or a one-line :class:`CheckpointError` when
    they do not fit it (shapes or names that differ from what the run's config builds)."""
    try:
        model.load_state_dict(payload["trainer"]["model"])
    except (RuntimeError, KeyError, ValueError, TypeError) as error:
        raise CheckpointError(
            f"checkpoint {run_dir / CHECKPOINT_FILE} does not fit the model of {run_dir / CONFIG_FILE} "
            f"({one_line(error)}); it was written by another run or edited"
        ) from None
