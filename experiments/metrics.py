"""Where metrics go: a fan-out writer over pluggable sinks.

The protocol computes metrics once and hands them to a :class:`MetricWriter`, which passes them on to
every configured sink (``logger.sinks`` in the config): the local CSV (the source of truth that
``experiments.compare`` reads), W&B, or anything else. A new destination is one class that meets
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

import json
import logging
import math
import os
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

log = logging.getLogger(__name__)

# The metric schema (DESIGN §4): one namespace for every agent.
ONLINE_KEYS = (
    "online/reward",  # mean reward per user-step
    "online/ctr",  # clicks per user-step
    "online/regret",  # mean per-step (dynamic) regret
    "online/session_length",  # mean length of the sessions that ended
    "online/cumulative_regret",  # sum of regret since the start of the stream
    "online/drift_events",  # drift events (window: in the window; summary: in total)
)
EVAL_KEYS = ("eval/return", "eval/ctr", "eval/regret", "eval/ndcg@k")
TRAIN_KEYS = ("train/loss", "train/epsilon", "train/lr")
TIME_KEYS = ("time/sps",)
# experiments.lifelong_metrics.summarize_lifelong: recovery after drift events, forgetting on
# recurring regimes, plasticity (computed from the logged windows at the end of the run)
LIFELONG_KEYS = (
    "lifelong/cumulative_regret",
    "lifelong/num_drift_events",
    "lifelong/recovery_time_mean",
    "lifelong/recovery_time_censored_mean",
    "lifelong/recovery_recovered",
    "lifelong/recovery_censored",
    "lifelong/forgetting_mean",
    "lifelong/forgetting_returns",
    "lifelong/plasticity_per_1k",
    "lifelong/plasticity_fresh_per_1k",
)
SCHEMA = ONLINE_KEYS + EVAL_KEYS + TRAIN_KEYS + TIME_KEYS


@dataclass
class RunContext:
    """What a sink may need to know about the run it records."""

    run_dir: Path
    config: dict[str, Any] = field(default_factory=dict)  # the resolved run config
    run_id: str = ""  # stable across resumes (W&B: ``wandb.init(id=run_id, resume="allow")``)
    name: str = ""  # a human-readable run name (e.g. ``dqn-DriftingUsers-v0-s0``)
    group: str = ""  # the sweep this run belongs to ("" for a single run)
    resumed: bool = False  # continuing an earlier run in the same dir


@runtime_checkable
class MetricSink(Protocol):
    """A destination for metrics. Optional: ``state_dict``/``load_state_dict``, ``flush``."""

    def write(self, step: int, metrics: Mapping[str, float]) -> None:
        """Record scalar ``metrics`` at ``step`` (user-steps)."""

    def write_summary(self, summary: Mapping[str, Any]) -> None:
        """Record the run's final (or latest) summary."""

    def close(self) -> None:
        """Flush and release resources. Called once, also when the run failed."""


def write_json_atomic(path: str | Path, obj: Any) -> None:
    """Write ``obj`` as JSON so that readers never see a half-written file (write + rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "w") as f:
        json.dump(_jsonable(obj), f, indent=2, sort_keys=True, allow_nan=True)
        f.write("\n")
        f.flush()
        os.fsync(f.fileno())
    tmp.replace(path)


def _jsonable(obj: Any) -> Any:
    """numpy scalars/arrays → Python; leaves NaN as NaN (JSON readers of pandas/json accept it)."""
    if isinstance(obj, Mapping):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_jsonable(v) for v in obj]
    if hasattr(obj, "tolist"):  # numpy scalar or array
        return _jsonable(obj.tolist())
    return obj


def _format_value(value: float) -> str:
    # repr of a float round-trips exactly: a resumed run's CSV equals the uninterrupted one.
    return repr(float(value))


class CsvSink:
    """``metrics.csv`` in long format (``step,key,value``), one row per metric.

    Rows are buffered and written as whole lines at most every ``flush_every_s`` seconds (and at
    every checkpoint and on close), so a crash at any moment leaves a file that parses, missing at
    most the last few seconds. On resume it appends, after truncating the rows written after the
    checkpoint it resumes from.
    """

    HEADER = "step,key,value\n"

    def __init__(
        self,
        context: RunContext,
        filename: str = "metrics.csv",
        flush_every_s: float = 2.0,
    ) -> None:
        if flush_every_s < 0:
            raise ValueError(f"invalid flush_every_s={flush_every_s!r}: expected a number >= 0")
        self.path = Path(context.run_dir) / filename
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.flush_every_s = float(flush_every_s)
        mode = "ab" if context.resumed and self.path.exists() else "wb"
        self._file = open(self.path, mode)  # noqa: SIM115 — lives as long as the sink
        if self._file.tell() == 0:
            self._file.write(self.HEADER.encode())
            self._file.flush()
        self._rows: list[str] = []
        self._last_flush = time.monotonic()

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
            self._file.write("".join(self._rows).encode())  # whole lines in one write
            self._rows.clear()
        self._file.flush()
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

    def __init__(self, sinks: Iterable[MetricSink] = (), summary_path: str | Path | None = None):
        self.sinks = list(sinks)
        self.summary_path = Path(summary_path) if summary_path is not None else None
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
        if self.summary_path is not None:
            write_json_atomic(self.summary_path, summary)
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
