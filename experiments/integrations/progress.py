"""Progress of a multirun on the console: no silent minutes (configured under ``hydra.callbacks``).

A single run has its rich progress bar; a multirun's jobs run without one (several jobs share the
terminal), so before this a sweep printed nothing for many minutes. :class:`SweepProgress` prints:

* at the start, how many jobs the sweep has (from the sweeper's params and the command line, as
  Hydra's basic sweeper expands them) and where it writes;
* per job, a line when it starts (its overrides, and an ETA from the jobs finished so far) and one
  when it ends (status, wall time, user-steps per second);
* while a job runs, a heartbeat every ``every_s`` seconds: user-steps done (the last step in its
  ``metrics.csv``), rate and the job's ETA;
* after each job, the sweep's line: jobs done / total, elapsed, ETA
  (elapsed / done × remaining: with n parallel jobs that is already the wall-clock estimate).

Jobs of the basic and joblib launchers run in other processes (joblib workers, and each job in a
child forked for it, :mod:`experiments.run.isolation`), so the sweep's shared state is one small
file, ``<sweep dir>/.progress`` (its start time, the total, then one appended line per finished
job; a file, not a dir, so that every dir of a sweep dir stays a job's); the heartbeat
thread writes with ``os.write`` (no Python-level lock that a fork could leave held). Nothing here
can fail a job: every error is swallowed after a debug log.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import threading
import time
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

log = logging.getLogger("experiments.run")

STATE_FILE = ".progress"
PREFIX = "[sweep]"


def format_duration(seconds: float) -> str:
    """``42s``, ``3m05s``, ``1h02m``; ``?`` when unknown."""
    if not math.isfinite(seconds) or seconds < 0:
        return "?"
    seconds = round(seconds)
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"


def count_sweep_jobs(config: DictConfig) -> int | None:
    """Jobs of a basic-sweeper multirun: its params first, then the command line (as
    ``BasicSweeper.sweep`` combines them); ``None`` for other sweepers (Optuna, ...)."""
    try:
        from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
        from hydra.core.override_parser.overrides_parser import OverridesParser

        target = str(OmegaConf.select(config, "hydra.sweeper._target_") or "")
        if not target.endswith("BasicSweeper"):
            return None
        task = [str(o) for o in OmegaConf.select(config, "hydra.overrides.task") or []]
        node = OmegaConf.select(config, "hydra.sweeper.params")
        params: dict[Any, Any] = {}
        if isinstance(node, DictConfig):
            params = dict(OmegaConf.to_container(node, resolve=False))  # type: ignore[arg-type]
        arguments = [f"{k}={v}" for k, v in params.items()] + task
        parsed = OverridesParser.create().parse_overrides(arguments)
        batches = BasicSweeper.split_arguments(parsed, None)
        return sum(len(batch) for batch in batches)
    except Exception as exc:  # an exotic sweep: progress without a total
        log.debug("cannot count the sweep's jobs: %s", exc)
        return None


def _emit(line: str) -> None:
    """One whole line to stdout with a single ``write`` system call (safe from any thread)."""
    with contextlib.suppress(OSError, ValueError):
        os.write(1, (line + "\n").encode("utf-8", "replace"))


def last_logged_step(metrics_csv: Path) -> int | None:
    """The step of the last whole line of ``metrics.csv`` (reads its tail only)."""
    try:
        with open(metrics_csv, "rb") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            f.seek(max(0, size - 4096))
            tail = f.read().decode("utf-8", "replace")
    except OSError:
        return None
    for line in reversed(tail.splitlines()[:-1] if not tail.endswith("\n") else tail.splitlines()):
        head = line.split(",", 1)[0]
        if head.isdigit():
            return int(head)
    return None


class _Heartbeat(threading.Thread):
    """Every ``every_s`` seconds, one line on a running job: steps done, rate, ETA."""

    def __init__(self, label: str, metrics_csv: Path, total_steps: int | None, every_s: float):
        super().__init__(name="recsim-progress", daemon=True)
        self.label, self.metrics_csv = label, metrics_csv
        self.total_steps, self.every_s = total_steps, every_s
        self.start_time = time.monotonic()
        self.stopped = threading.Event()

    def run(self) -> None:
        while not self.stopped.wait(self.every_s):
            elapsed = time.monotonic() - self.start_time
            step = last_logged_step(self.metrics_csv)
            if not step:
                _emit(f"{self.label} running for {format_duration(elapsed)} (no step logged yet)")
                continue
            rate = step / elapsed
            line = f"{self.label} {step:,}"
            if self.total_steps:
                left = (self.total_steps - step) / rate if rate > 0 else math.inf
                line += (
                    f"/{self.total_steps:,} user-steps, {rate:,.0f}/s, ETA {format_duration(left)}"
                )
            else:
                line += f" user-steps, {rate:,.0f}/s"
            _emit(line)

    def stop(self) -> None:
        self.stopped.set()


class SweepProgress(Callback):
    """Console progress of a multirun (see the module doc). ``every_s``: heartbeat period of a
    running job (seconds; 0 turns the heartbeat off)."""

    def __init__(self, every_s: float = 30.0) -> None:
        self.every_s = float(every_s)
        # per job output dir: the batched launcher's population members run at the same time
        self._heartbeats: dict[str, _Heartbeat] = {}
        self._job_starts: dict[str, float] = {}

    # ------------------------------------------------------------------------------ helpers
    @staticmethod
    def _state_file(config: DictConfig) -> Path:
        return Path(str(config.hydra.sweep.dir)) / STATE_FILE

    @staticmethod
    def _multirun(config: DictConfig) -> bool:
        from hydra.types import RunMode

        mode = OmegaConf.select(config, "hydra.mode")
        return mode == RunMode.MULTIRUN or str(mode) in ("MULTIRUN", "RunMode.MULTIRUN")

    def _read_state(self, state: Path) -> tuple[float | None, int | None, list[float]]:
        """Sweep start (epoch s), total jobs, and the wall time of every finished job."""
        start: float | None = None
        total: int | None = None
        durations: list[float] = []
        try:
            lines = state.read_text().splitlines()
        except OSError:
            return start, total, durations
        for line in lines:
            parts = line.split()
            with contextlib.suppress(ValueError, IndexError):
                if parts[0] == "start":
                    start = float(parts[1])
                elif parts[0] == "total":
                    total = int(parts[1])
                elif parts[0] == "done":
                    durations.append(float(parts[2]))
        return start, total, durations

    @staticmethod
    def _job_label(config: DictConfig, total: int | None) -> str:
        num = OmegaConf.select(config, "hydra.job.num")
        num = int(num) if num is not None else 0
        return f"{PREFIX} job {num + 1}/{total if total else '?'}"

    # ------------------------------------------------------------------------------ hooks
    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        try:
            state = self._state_file(config)
            state.parent.mkdir(parents=True, exist_ok=True)
            total = count_sweep_jobs(config)
            # written afresh: a resumed sweep counts its own jobs
            state.write_text(
                f"start {time.time():.3f}\ntotal {total if total is not None else '?'}\n"
            )
            launcher = str(OmegaConf.select(config, "hydra.launcher._target_") or "")
            n_jobs = OmegaConf.select(config, "hydra.launcher.n_jobs")
            parallel = f", {n_jobs} at a time" if n_jobs else ""
            _emit(
                f"{PREFIX} {total if total is not None else 'an unknown number of'} job(s) "
                f"({launcher.rsplit('.', 1)[-1] or 'launcher'}{parallel}) into "
                f"{config.hydra.sweep.dir}; a line per job start/end, a heartbeat every "
                f"{format_duration(self.every_s) if self.every_s > 0 else '(off)'} while one runs"
            )
        except Exception as exc:
            log.debug("progress: %s", exc)

    def on_job_start(self, config: DictConfig, **kwargs: Any) -> None:
        try:
            if not self._multirun(config):
                return
            out = Path(str(config.hydra.runtime.output_dir))
            self._job_starts[str(out)] = time.monotonic()
            _, total, durations = self._read_state(self._state_file(config))
            label = self._job_label(config, total)
            overrides = " ".join(
                str(o) for o in OmegaConf.select(config, "hydra.overrides.task") or []
            )
            eta = (
                f"; ETA ~{format_duration(sum(durations) / len(durations))} "
                f"(mean of {len(durations)} finished job(s))"
                if durations
                else ""
            )
            _emit(f"{label} started: {overrides or '(no overrides)'}{eta}")
            if self.every_s > 0:
                total_steps = OmegaConf.select(config, "protocol.total_steps")
                heartbeat = _Heartbeat(
                    label,
                    out / "metrics.csv",
                    int(total_steps) if isinstance(total_steps, int) else None,
                    self.every_s,
                )
                self._heartbeats[str(out)] = heartbeat
                heartbeat.start()
        except Exception as exc:
            log.debug("progress: %s", exc)

    def on_job_end(self, config: DictConfig, job_return: Any = None, **kwargs: Any) -> None:
        try:
            if not self._multirun(config):
                return
            out = str(Path(str(config.hydra.runtime.output_dir)))
            heartbeat = self._heartbeats.pop(out, None)
            if heartbeat is not None:
                heartbeat.stop()
            job_start = self._job_starts.pop(out, None)
            wall = time.monotonic() - job_start if job_start else math.nan
            state = self._state_file(config)
            start, total, _ = self._read_state(state)
            label = self._job_label(config, total)
            status, steps = self._job_outcome(config, job_return)
            num = OmegaConf.select(config, "hydra.job.num")
            with open(state, "a") as f:  # one short line: an atomic append (O_APPEND)
                f.write(f"done {num} {wall:.3f} {status}\n")
            _, _, durations = self._read_state(state)
            rate = f", {steps / wall:,.0f} user-steps/s" if steps and wall > 0 else ""
            _emit(f"{label} {status} in {format_duration(wall)}{rate}")
            done = len(durations)
            elapsed = time.time() - start if start else math.nan
            if total:
                left = elapsed / done * (total - done) if done else math.nan
                _emit(
                    f"{PREFIX} {done}/{total} jobs done, {format_duration(elapsed)} elapsed, "
                    f"ETA {format_duration(left) if done < total else '0s'}"
                )
            else:
                _emit(f"{PREFIX} {done} job(s) done, {format_duration(elapsed)} elapsed")
        except Exception as exc:
            log.debug("progress: %s", exc)

    @staticmethod
    def _job_outcome(config: DictConfig, job_return: Any) -> tuple[str, int | None]:
        """The run's status and user-steps from its ``summary.json`` (the runner's record)."""
        import json

        status, steps = "finished", None
        path = Path(str(config.hydra.runtime.output_dir)) / "summary.json"
        with contextlib.suppress(OSError, ValueError, AttributeError, TypeError):
            summary = json.loads(path.read_text())
            status = str(summary.get("status") or status)
            steps = int(summary.get("num_timesteps") or 0) or None
        if status == "finished" and job_return is not None:
            status = str(getattr(job_return, "status", status)).rsplit(".", 1)[-1].lower()
        return status, steps
