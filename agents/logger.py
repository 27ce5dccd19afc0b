"""Per-iteration metrics: one CSV row per iteration (``metrics.csv``) and the same scalars in TensorBoard.

The CSV is the record that plots and tests read; floats are written with ``repr`` so that two runs can be compared
exactly. On resume the rows after the last checkpoint are dropped (they will be recomputed) and TensorBoard is
told to purge its events past that point.
"""

from __future__ import annotations

import csv
import io
import math
import os
from collections.abc import Mapping
from pathlib import Path

from agents.checkpoint import atomic_write_text

METRICS_FILE = "metrics.csv"
TENSORBOARD_DIR = "tb"
STEP_COLUMN = "episodes"  # x-axis of every curve: episodes seen so far


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
        if tensorboard:
            from torch.utils.tensorboard import SummaryWriter

            purge = self._first_dropped_step() if resuming else None
            self._tb = SummaryWriter(log_dir=str(Path(run_dir) / TENSORBOARD_DIR), purge_step=purge)

    def write(self, row: Mapping[str, float | int]) -> None:
        """Append one row (same columns every time) and flush it to disk."""
        if self._writer is None:
            self.fieldnames = list(row)
            self._writer = csv.DictWriter(self._file, self.fieldnames)
            self._writer.writeheader()
        if set(row) != set(self.fieldnames):
            raise ValueError(f"metrics row has columns {sorted(row)}, the log has {sorted(self.fieldnames)}")
        self._writer.writerow(row)
        self._file.flush()
        if self._tb is not None:
            step = int(row.get(STEP_COLUMN, row.get("iteration", 0)))
            for key, value in row.items():
                if key not in ("iteration", STEP_COLUMN) and isinstance(value, (int, float)):
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

    def _first_dropped_step(self) -> int:
        """TensorBoard events at or after this step belong to the dropped rows."""
        if not self._kept or self.fieldnames is None or STEP_COLUMN not in self.fieldnames:
            return 0
        return int(float(self._kept[-1][self.fieldnames.index(STEP_COLUMN)])) + 1


def _number(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        return math.nan
