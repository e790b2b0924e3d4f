"""Where metrics go: a fan-out writer over pluggable sinks.

The protocol computes metrics once and hands them to a :class:`MetricWriter`, which passes them on to
every configured sink (``logger.sinks`` in the config): the local CSV (the source of truth that
``recsim-compare`` reads), W&B (:mod:`experiments.integrations.wandb_sink`), or anything else. A new destination is one class that meets
:class:`MetricSink` and a YAML entry with its ``_target_``.

Sinks are built by the runner as ``hydra.utils.instantiate(sink_cfg, context=run_context)``: every sink
constructor takes a keyword ``context`` (a :class:`RunContext`: run dir, resolved config, a run id
that stays the same when the run is resumed, ...) plus its own settings from the YAML.

Resuming: a sink may implement ``state_dict()`` / ``load_state_dict(state)``. The protocol stores
``MetricWriter.state_dict()`` in every checkpoint; on resume, ``load_state_dict`` rewinds each sink
to that point (the CSV truncates the rows written after the checkpoint), so the resumed run's files
equal those of an uninterrupted run.
"""

from __future__ import annotations

import contextlib
import logging
import math
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Protocol, runtime_checkable

from experiments.run.rundir import RunDir, open_lines
from recsim_env.validation import check_real

log = logging.getLogger(__name__)


@dataclass
class RunContext:
    """What a sink may need to know about the run it records."""

    run_dir: Path
    config: dict[str, Any] = field(default_factory=dict)  # the resolved run config
    run_id: str = ""  # stable across resumes (W&B: ``wandb.init(id=run_id, resume="allow")``)
    name: str = ""  # a human-readable run name (e.g. ``dqn-DriftingUsers-v0-s0``)
    group: str = ""  # the sweep this run belongs to ("" for a single run)
    resumed: bool = False  # continuing an earlier run in the same dir
    choices: dict[str, str] = field(default_factory=dict)  # Hydra config-group choices


@runtime_checkable
class MetricSink(Protocol):
    """A destination for metrics. Optional: ``state_dict``/``load_state_dict``, ``flush``."""

    def write(self, step: int, metrics: Mapping[str, float]) -> None:
        """Record scalar ``metrics`` at ``step`` (user-steps)."""

    def write_summary(self, summary: Mapping[str, Any]) -> None:
        """Record the run's final (or latest) summary."""

    def close(self) -> None:
        """Flush and release resources. Called once, also when the run failed."""


def _format_value(value: float) -> str:
    # repr of a float round-trips exactly: a resumed run's CSV equals the uninterrupted one.
    return repr(float(value))


class CsvSink:
    """``metrics.csv`` in long format (``step,key,value``), one row per metric.

    Rows are buffered and written as whole lines, in one system call per batch, at most every
    ``flush_every_s`` seconds (and at every checkpoint and on close), so a crash at any moment
    leaves a file that parses, missing at most the last few seconds. A write that fails half-way
    (a full disk: ``ENOSPC``) is cut back to the last whole line before the error is raised, and a
    torn last line left by a crash is dropped when the file is opened to append. On resume it
    appends, after truncating the rows written after the checkpoint it resumes from.
    """

    HEADER = "step,key,value\n"

    def __init__(
        self,
        context: RunContext,
        filename: str | None = None,
        flush_every_s: float = 2.0,
    ) -> None:
        check_real("logger.sinks.csv.flush_every_s", flush_every_s, 0.0)
        run_dir = RunDir(context.run_dir)
        self._file: IO[bytes]
        if filename is not None and filename != RunDir.METRICS:
            log.warning("metrics go to %s; recsim-compare reads %s", filename, RunDir.METRICS)
            self.path = run_dir.path / filename
            run_dir.create()
            self._file = open_lines(self.path, append=context.resumed)
        else:
            self.path = run_dir.metrics_path
            self._file = run_dir.open_metrics(append=context.resumed)
        self.flush_every_s = float(flush_every_s)
        if self._file.tell() == 0:
            self._write(self.HEADER.encode())
        self._rows: list[str] = []
        self._last_flush = time.monotonic()

    def _write(self, data: bytes) -> None:
        """Append whole lines, or nothing: a failed write leaves no partial line behind."""
        start = self._file.tell()
        view = memoryview(data)
        try:
            while view:  # an unbuffered write may be partial: finish the lines
                written = self._file.write(view)
                view = view[written or 0 :]
        except OSError:
            with contextlib.suppress(OSError):  # truncating frees space: it works on a full disk
                self._file.truncate(start)
                self._file.seek(start)
            raise

    def write(self, step: int, metrics: Mapping[str, float]) -> None:
        step = int(step)
        for key, value in metrics.items():
            if "," in key or "\n" in key:
                raise ValueError(f"metric key {key!r} must not contain commas or newlines")
            self._rows.append(f"{step},{key},{_format_value(value)}\n")
        if time.monotonic() - self._last_flush >= self.flush_every_s:
            self.flush()

    def write_summary(self, summary: Mapping[str, Any]) -> None:
        self.flush()  # summary.json itself is written by MetricWriter

    def flush(self) -> None:
        if self._file.closed:
            return
        if self._rows:
            data = "".join(self._rows).encode()
            self._rows.clear()  # written or lost with the error: never written twice
            self._write(data)  # whole lines in one write
        self._last_flush = time.monotonic()

    def state_dict(self) -> dict[str, Any]:
        self.flush()
        return {"offset": self._file.tell()}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Drop everything written after ``state`` was taken (rows of the interrupted attempt)."""
        self.flush()
        offset = int(state["offset"])
        size = self.path.stat().st_size
        if offset > size:
            raise ValueError(
                f"{self.path} is shorter ({size} bytes) than at the checkpoint ({offset} bytes): "
                "it was modified since; cannot resume it exactly"
            )
        self._file.truncate(offset)
        self._file.seek(offset)

    def close(self) -> None:
        if not self._file.closed:
            self.flush()
            self._file.close()


class MetricWriter:
    """Fans metrics out to every sink; writes ``summary.json`` (atomically) itself.

    Non-finite values are dropped from per-step metrics (a NaN loss before the first update would
    only clutter every sink); the summary keeps them (NaN says "not measured").
    """

    def __init__(self, sinks: Iterable[MetricSink] = (), run_dir: RunDir | None = None) -> None:
        self.sinks = list(sinks)
        self.run_dir = run_dir
        self._closed = False

    def write(self, step: int, metrics: Mapping[str, float]) -> None:
        clean = {}
        for key, value in metrics.items():
            try:
                value = float(value)
            except (TypeError, ValueError):
                continue  # strings and the like are not scalar metrics
            if math.isfinite(value):
                clean[key] = value
        if clean:
            for sink in self.sinks:
                sink.write(step, clean)

    def write_summary(self, summary: Mapping[str, Any], *, sinks: bool = True) -> None:
        """``summary.json`` always; the sinks' ``write_summary`` unless ``sinks=False`` (interim)."""
        if self.run_dir is not None:
            self.run_dir.write_summary(summary)
        if sinks:
            for sink in self.sinks:
                sink.write_summary(summary)

    def flush(self) -> None:
        for sink in self.sinks:
            if hasattr(sink, "flush"):
                sink.flush()

    def state_dict(self) -> dict[str, Any]:
        return {
            str(i): sink.state_dict()
            for i, sink in enumerate(self.sinks)
            if hasattr(sink, "state_dict")
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        for i, sink in enumerate(self.sinks):
            if str(i) in state and hasattr(sink, "load_state_dict"):
                sink.load_state_dict(state[str(i)])

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        errors = []
        for sink in self.sinks:
            try:
                sink.close()
            except Exception as exc:  # one broken sink must not lose the others' data
                log.exception("closing metric sink %r failed", sink)
                errors.append(exc)
        if errors:
            raise errors[0]
