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

Every checkpoint records the rows it covers (:meth:`MetricsLog.record`: their count, the SHA-256 of their
canonical text and a copy of them), so that a resume can check that ``metrics.csv`` still holds exactly those rows
(:func:`verify_metrics`) and rebuild them when it does not (:func:`repair_metrics`). A row's canonical text is its
non-blank cells as a JSON object, so adding a column (blank in the earlier rows) leaves it unchanged.
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import io
import json
import math
import os
import threading
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from agents.checkpoint import atomic_write_text

METRICS_FILE = "metrics.csv"
TENSORBOARD_DIR = "tb"
STEP_COLUMN = "episodes"  # x-axis of every curve: episodes seen so far
CONFIG_FILE = "config.json"  # the run's settings (agents.run writes it), logged as TensorBoard hparams
HPARAM_METRICS = ("reward_mean", "eval_reward", "loss", "accuracy", "bit_error")
TB_FLUSH_SECS = 2  # TensorBoard's writer flushes this often (its default, 120 s, is also what close() could wait)
TB_CLOSE_TIMEOUT_S = 2.0  # close() waits at most this long for TensorBoard's last flush


def read_metrics(path: str | os.PathLike) -> list[dict[str, float]]:
    """The rows of a ``metrics.csv`` (or of the one in run directory ``path``), numbers parsed as floats.

    A damaged file (a row cut mid-line, a row with more cells than the header) raises a ``ValueError`` that names
    the file and the line."""
    path = Path(path)
    if path.is_dir():
        path = path / METRICS_FILE
    header, body, partial = parse_metrics(path)
    if partial:
        raise ValueError(f"{path} is damaged: its last row (line {len(body) + 1}) is cut mid-line; resume the run "
                         "with --repair-metrics, or remove that line")
    return [{k: _number(v) for k, v in zip(header, row, strict=False)} for row in body]


def parse_metrics(path: str | os.PathLike) -> tuple[list[str], list[list[str]], bool]:
    """(header, rows, whether the last row is cut mid-line) of a metrics file; an empty file gives ([], [], False).
    A row with more cells than the header raises ``ValueError`` (the file is damaged)."""
    path = Path(path)
    text = path.read_text(encoding="utf-8", errors="replace")
    rows = list(csv.reader(io.StringIO(text, newline="")))
    if not rows:
        return [], [], False
    header, body = rows[0], rows[1:]
    for number, row in enumerate(body, start=2):
        if len(row) > len(header):
            raise ValueError(f"{path} is damaged: line {number} has {len(row)} cells but the header has "
                             f"{len(header)} (a row cut mid-line was continued); resume the run with --repair-metrics")
    partial = bool(body) and not text.endswith(("\n", "\r"))
    return header, body, partial


def canonical_row(header: list[str], row: list[str]) -> str:
    """A row's canonical text: its non-blank cells as a compact JSON object (unchanged when blank columns are
    added)."""
    return json.dumps({key: cell for key, cell in zip(header, row, strict=False) if cell != ""}, sort_keys=True,
                      separators=(",", ":"))


def rows_digest(lines: list[str]) -> str:
    """SHA-256 (hex) of canonical rows."""
    digest = hashlib.sha256()
    for line in lines:
        digest.update(line.encode("utf-8") + b"\n")
    return digest.hexdigest()


def verify_metrics(path: str | os.PathLike, record: dict[str, Any]) -> str | None:
    """What is wrong with ``metrics.csv`` at ``path`` for a checkpoint with metrics ``record`` (see
    :meth:`MetricsLog.record`), or ``None`` when it holds exactly the covered rows first (rows after them, and a
    cut last row after them, belong to iterations the resume recomputes)."""
    path = Path(path)
    rows = int(record["rows"])
    if not path.exists():
        return None if rows == 0 else f"{path} is missing but the checkpoint covers {rows} rows"
    try:
        header, body, partial = parse_metrics(path)
    except ValueError as error:
        return str(error)
    complete = len(body) - (1 if partial else 0)
    if complete < rows:
        cut = " and a row cut mid-line" if partial else ""
        return f"{path} holds {complete} complete rows{cut}, but the checkpoint covers {rows}"
    lines = [canonical_row(header, row) for row in body[:rows]]
    if rows_digest(lines) != record["sha256"]:
        expected = record["lines"].split("\n") if record["lines"] else []
        first = next((i for i, (a, b) in enumerate(zip(lines, expected, strict=False)) if a != b), rows - 1)
        return f"{path} row {first + 1} (line {first + 2}) differs from what the checkpoint recorded"
    return None


def repair_metrics(path: str | os.PathLike, record: dict[str, Any] | None) -> int:
    """Rewrite ``metrics.csv`` at ``path`` as the rows checkpoint metrics ``record`` covers (``None``: no
    checkpoint, no rows); returns their number. Rows after them are dropped (a resume recomputes them)."""
    path = Path(path)
    if record is None or int(record["rows"]) == 0:
        atomic_write_text(path, "")
        return 0
    header = list(record["columns"])
    cells = (json.loads(line) for line in record["lines"].split("\n"))
    write_csv(path, header, ([row.get(key, "") for key in header] for row in cells))
    return int(record["rows"])


def write_csv(path: Path, header: list[str], rows: Iterable[list[str]]) -> None:
    """Replace the metrics file at ``path`` (atomically) by ``header`` and ``rows``, with csv.DictWriter's line
    ending, as MetricsLog appends them."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(header)
    writer.writerows(rows)
    atomic_write_text(path, buffer.getvalue())


class MetricsLog:
    """Append-only metrics of one run directory. ``keep_rows``: rows of an existing CSV to keep (resume)."""

    def __init__(self, run_dir: str | os.PathLike, keep_rows: int = 0, tensorboard: bool = True) -> None:
        self.path = Path(run_dir) / METRICS_FILE
        self.fieldnames: list[str] | None = None
        self._kept: list[list[str]] = []
        self._lines: list[str] = []  # canonical text of every row in the file (see record())
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
            self._tb = SummaryWriter(log_dir=str(Path(run_dir) / TENSORBOARD_DIR), purge_step=purge,
                                     flush_secs=TB_FLUSH_SECS)

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
        cells = {key: _cell(value) for key, value in row.items()}
        self._writer.writerow(cells)
        self._file.flush()
        buffer = io.StringIO()
        csv.DictWriter(buffer, self.fieldnames).writerow(cells)  # the cells as the file holds them
        self._lines.append(canonical_row(self.fieldnames, next(csv.reader(io.StringIO(buffer.getvalue())))))
        if self._tb is not None:
            step = int(row.get(STEP_COLUMN, row.get("iteration", 0)))
            if not self._hparams_written:
                self._write_hparams(step)
            for key, value in row.items():
                if key not in ("iteration", STEP_COLUMN) and isinstance(value, (int, float)) and not _blank(value):
                    self._tb.add_scalar(f"train/{key}", value, global_step=step)

    def record(self) -> dict[str, Any]:
        """What a checkpoint keeps of the rows logged so far: their number, digest, columns and canonical text."""
        return {"rows": len(self._lines), "sha256": rows_digest(self._lines), "columns": list(self.fieldnames or []),
                "lines": "\n".join(self._lines)}

    def close(self) -> None:
        """Close the CSV and TensorBoard (waiting at most ``TB_CLOSE_TIMEOUT_S`` for its last flush)."""
        try:
            self._file.close()
        finally:
            if self._tb is not None:
                tb, self._tb = self._tb, None
                closer = threading.Thread(target=_close_quietly, args=(tb,), daemon=True)
                closer.start()
                closer.join(TB_CLOSE_TIMEOUT_S)

    def __enter__(self) -> MetricsLog:
        return self

    def __exit__(self, *exc) -> None:
        if exc[0] is None:
            self.close()
        else:  # the error that stops the run is the one to report (a full disk fails the last flush too)
            with contextlib.suppress(OSError):
                self.close()

    # -- resume ---------------------------------------------------------------------------------------------
    def _truncate(self, keep_rows: int) -> list[str] | None:
        """Keep the header and the first ``keep_rows`` rows; return the header (None when there is none)."""
        with open(self.path, newline="") as f:
            rows = list(csv.reader(f))
        if not rows:
            if keep_rows > 0:
                raise ValueError(f"{self.path} is empty but the checkpoint was written after {keep_rows} rows: the "
                                 "metrics file was emptied; cannot resume consistently (--repair-metrics rebuilds it)")
            return None
        header, body = rows[0], rows[1:]
        if len(body) < keep_rows:
            raise ValueError(
                f"{self.path} has {len(body)} rows but the checkpoint was written after {keep_rows}: the metrics file "
                "was edited or truncated; cannot resume consistently"
            )
        self._kept = body[:keep_rows]
        self._lines = [canonical_row(header, row) for row in self._kept]
        write_csv(self.path, header, self._kept)
        return header

    def _extend(self, columns: list[str]) -> None:
        """Add ``columns`` to the header: rewrite the file with them blank in the rows written so far."""
        self._file.close()
        with open(self.path, newline="") as f:
            rows = list(csv.reader(f))
        self.fieldnames = [*self.fieldnames, *columns]
        write_csv(self.path, self.fieldnames, (body + [""] * (len(self.fieldnames) - len(body)) for body in rows[1:]))
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


def _close_quietly(writer: Any) -> None:
    with contextlib.suppress(Exception):
        writer.close()


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
