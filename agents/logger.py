"""Per-iteration metrics: one CSV row per iteration (``metrics.csv``) and the same scalars in TensorBoard.

The CSV is the record that plots and tests read; floats are written with ``repr`` so that two runs can be compared
exactly. On resume the rows after the last checkpoint are dropped (they will be recomputed) and TensorBoard is
told to purge its events past that point.

A cell may be blank (read back as NaN): a value that is ``None`` or NaN (e.g. ``eval_reward`` on the iterations
without an evaluation) and a column a row does not have. A row with a column the log has not seen yet (a resumed
run whose trainer logs more, e.g. after ``--eval-every`` was added) extends the header: the file is rewritten once
with that column blank in the earlier rows. NaN and blank values are not sent to TensorBoard.

TensorBoard also gets the run's hyperparameters (the hparams plugin, in the same ``tb/`` folder: no second run
folder): the fields of ``config.json`` beside ``metrics.csv``, with the scalars ``train/<metric>`` of
``HPARAM_METRICS`` that the run logs as its metrics, so the hparams table shows their last value.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from agents.checkpoint import atomic_write_text

METRICS_FILE = "metrics.csv"
TENSORBOARD_DIR = "tb"
STEP_COLUMN = "episodes"  # x-axis of every curve: episodes seen so far
CONFIG_FILE = "config.json"  # the run's settings (agents.run writes it), logged as TensorBoard hparams
HPARAM_METRICS = ("reward_mean", "eval_reward", "loss", "accuracy", "bit_error")


def read_metrics(path: str | os.PathLike) -> list[dict[str, float]]:
    """The rows of a ``metrics.csv`` (or of the one in run directory ``path``), numbers parsed as floats."""
    path = Path(path)
    if path.is_dir():
        path = path / METRICS_FILE
    with open(path, newline="") as f:
        return [{k: _number(v) for k, v in row.items()} for row in csv.DictReader(f)]


class MetricsLog:
    """Append-only metrics of one run directory. ``keep_rows``: rows of an existing CSV to keep (resume)."""

    def __init__(self, run_dir: str | os.PathLike, keep_rows: int = 0, tensorboard: bool = True) -> None:
        self.path = Path(run_dir) / METRICS_FILE
        self.fieldnames: list[str] | None = None
        self._kept: list[list[str]] = []
        resuming = self.path.exists()
        if resuming:
            self.fieldnames = self._truncate(keep_rows)
        elif keep_rows > 0:
            raise ValueError(f"{self.path} is missing but the checkpoint says {keep_rows} rows were logged")
        self._file = open(self.path, "a", newline="")
        self._writer = csv.DictWriter(self._file, self.fieldnames) if self.fieldnames else None
        self._tb = None
        self._hparams_written = False
        if tensorboard:
            from torch.utils.tensorboard import SummaryWriter

            purge = self._first_dropped_step() if resuming else None
            self._tb = SummaryWriter(log_dir=str(Path(run_dir) / TENSORBOARD_DIR), purge_step=purge)

    def write(self, row: Mapping[str, float | int | None]) -> None:
        """Append one row and flush it to disk (None / NaN values and columns the row lacks stay blank)."""
        if self._writer is None:
            self.fieldnames = list(row)
            self._writer = csv.DictWriter(self._file, self.fieldnames)
            self._writer.writeheader()
        else:
            new = [key for key in row if key not in self.fieldnames]
            if new:
                self._extend(new)
        self._writer.writerow({key: _cell(value) for key, value in row.items()})
        self._file.flush()
        if self._tb is not None:
            step = int(row.get(STEP_COLUMN, row.get("iteration", 0)))
            if not self._hparams_written:
                self._write_hparams(step)
            for key, value in row.items():
                if key not in ("iteration", STEP_COLUMN) and isinstance(value, (int, float)) and not _blank(value):
                    self._tb.add_scalar(f"train/{key}", value, global_step=step)

    def close(self) -> None:
        self._file.close()
        if self._tb is not None:
            self._tb.close()

    def __enter__(self) -> MetricsLog:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- resume ---------------------------------------------------------------------------------------------
    def _truncate(self, keep_rows: int) -> list[str] | None:
        """Keep the header and the first ``keep_rows`` rows; return the header (None when there is none)."""
        with open(self.path, newline="") as f:
            rows = list(csv.reader(f))
        if not rows:
            return None
        header, body = rows[0], rows[1:]
        if len(body) < keep_rows:
            raise ValueError(
                f"{self.path} has {len(body)} rows but the checkpoint was written after {keep_rows}: the metrics file "
                "was edited or truncated; cannot resume consistently"
            )
        self._kept = body[:keep_rows]
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\r\n")  # csv.DictWriter's default line ending
        writer.writerow(header)
        writer.writerows(self._kept)
        atomic_write_text(self.path, buffer.getvalue())
        return header

    def _extend(self, columns: list[str]) -> None:
        """Add ``columns`` to the header: rewrite the file with them blank in the rows written so far."""
        self._file.close()
        with open(self.path, newline="") as f:
            rows = list(csv.reader(f))
        self.fieldnames = [*self.fieldnames, *columns]
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\r\n")  # csv.DictWriter's default line ending
        writer.writerow(self.fieldnames)
        writer.writerows(body + [""] * (len(self.fieldnames) - len(body)) for body in rows[1:])
        atomic_write_text(self.path, buffer.getvalue())
        self._file = open(self.path, "a", newline="")
        self._writer = csv.DictWriter(self._file, self.fieldnames)

    # -- TensorBoard hparams ------------------------------------------------------------------------------------
    def _write_hparams(self, step: int) -> None:
        """The run's config as hparams (once per session, with the first row), into this writer's own folder."""
        self._hparams_written = True
        config = _read_config(self.path.parent / CONFIG_FILE)
        if config is None:
            return
        from torch.utils.tensorboard.summary import hparams

        metrics = {f"train/{key}": 0.0 for key in HPARAM_METRICS if key in (self.fieldnames or ())}
        # the metric values are the logged scalars of those tags (their last value): no extra scalar is written;
        # no session-end summary either (it would say "success" while the run goes on)
        experiment, session_start, _ = hparams(hparam_values(config), metrics)
        for summary in (experiment, session_start):
            self._tb.file_writer.add_summary(summary, global_step=step)

    def _first_dropped_step(self) -> int:
        """TensorBoard events at or after this step belong to the dropped rows."""
        if not self._kept or self.fieldnames is None or STEP_COLUMN not in self.fieldnames:
            return 0
        return int(float(self._kept[-1][self.fieldnames.index(STEP_COLUMN)])) + 1


def hparam_values(config: Mapping[str, Any]) -> dict[str, Any]:
    """A config as TensorBoard hparam values: numbers, strings and bools as they are, anything else (dicts,
    lists, None) as its JSON text."""
    return {key: value if isinstance(value, (bool, int, float, str)) else json.dumps(value, sort_keys=True)
            for key, value in config.items()}


def _read_config(path: Path) -> dict[str, Any] | None:
    try:
        config = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return config if isinstance(config, dict) else None


def _blank(value: Any) -> bool:
    """Whether ``value`` is logged as a blank cell: None and NaN."""
    return value is None or (isinstance(value, float) and math.isnan(value))


def _cell(value: Any) -> Any:
    return "" if _blank(value) else value


def _number(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        return math.nan
