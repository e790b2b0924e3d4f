"""Hydra's joblib launcher, made to survive a killed worker process (``hydra/launcher=joblib``).

Why: loky, joblib's process pool, treats the death of one worker (``kill -9``, the out-of-memory
killer) as fatal for the whole pool: ``Parallel`` raises ``TerminatedWorkerError``, the launcher
gives up, the later jobs never run and the sweep ends without ``failures.json``. (A job killed by a
signal is already isolated by :mod:`experiments.run.isolation`, which forks each job from its
worker; this is about the worker itself.)

:func:`launch` (installed as ``JoblibLauncher.launch`` by :func:`install`) runs the same jobs the
same way, and when the pool breaks:

* the jobs that had returned keep their results;
* a job whose run dir says it completed is counted as completed;
* a job that had started (it has a run dir with a record) is recorded as failed in its run dir —
  ``its worker process was killed`` — and listed in ``failures.json`` at the end of the sweep
  (loky ends every worker of the pool, so a job running beside the killed one ends too;
  ``resume=true`` continues them from their last checkpoint);
* the jobs that had not started are launched again on a fresh pool.

:class:`~experiments.integrations.hydra_callbacks.FailureReport` installs it at the start of a
multirun with ``hydra/launcher=joblib`` (same launcher, same options, same jobs).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from hydra.core.utils import JobReturn, JobStatus
from hydra_plugins.hydra_joblib_launcher.joblib_launcher import JoblibLauncher
from omegaconf import open_dict

from experiments.run.rundir import COMPLETED, MISSING, RUNNING, RunDir, RunDirLocked

log = logging.getLogger(__name__)

__all__ = ["WorkerKilled", "install", "launch"]

MAX_RELAUNCHES = 3  # a pool that breaks again and again: record the rest as failed


class WorkerKilled(RuntimeError):
    """The joblib worker process that ran the job died (a signal, the out-of-memory killer)."""


def _broken_pool(exc: BaseException) -> bool:
    names = {type(e).__name__ for e in (exc, exc.__cause__, exc.__context__) if e is not None}
    return bool(names & {"TerminatedWorkerError", "BrokenProcessPool", "ShutdownExecutorError"})


def install() -> None:
    """Give Hydra's ``JoblibLauncher`` the resilient :func:`launch` (idempotent).

    Hydra instantiates launchers only from the ``hydra_plugins`` package, so a launcher class of
    our own cannot be selected by config; :class:`~experiments.integrations.hydra_callbacks.
    FailureReport` calls this at the start of a multirun instead (in the sweep's process only).
    """
    if JoblibLauncher.launch is not launch:
        JoblibLauncher.launch = launch


class _Launch:
    """The launch of a sweep's jobs on a pool that may break (module doc)."""

    def __init__(self, launcher: JoblibLauncher) -> None:
        self.launcher = launcher
        self.hydra_context = launcher.hydra_context
        self.config = launcher.config

    def __call__(
        self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int
    ) -> Sequence[JobReturn]:
        from hydra_plugins.hydra_joblib_launcher import _core

        pending = list(range(len(job_overrides)))
        results: dict[int, JobReturn] = {}
        for attempt in range(MAX_RELAUNCHES + 1):
            for start, stop in _contiguous(pending):
                try:
                    returns = _core.launch(
                        launcher=self.launcher,
                        job_overrides=[job_overrides[i] for i in range(start, stop)],
                        initial_job_idx=initial_job_idx + start,
                    )
                except Exception as exc:
                    if not _broken_pool(exc):
                        raise
                    log.error(
                        "a joblib worker process died (%s: %s); the sweep goes on",
                        type(exc).__name__,
                        exc,
                    )
                    break
                for offset, ret in enumerate(returns):
                    results[start + offset] = ret
            pending = [i for i in range(len(job_overrides)) if i not in results]
            if not pending:
                break
            still = []
            for i in pending:
                ret = self._settle(
                    job_overrides[i], initial_job_idx + i, last=attempt == MAX_RELAUNCHES
                )
                if ret is None:
                    still.append(i)
                else:
                    results[i] = ret
            pending = still
            if not pending:
                break
        return [results[i] for i in range(len(job_overrides))]

    # ------------------------------------------------------------------------------ helpers
    def _job_dir(self, overrides: Sequence[str], idx: int) -> tuple[Path, Any]:
        assert self.hydra_context is not None and self.config is not None
        cfg = self.hydra_context.config_loader.load_sweep_config(self.config, list(overrides))
        with open_dict(cfg):
            cfg.hydra.job.id = f"{cfg.hydra.job.name}_{idx}"
            cfg.hydra.job.num = idx
        return Path(str(cfg.hydra.sweep.dir)) / str(cfg.hydra.sweep.subdir), cfg

    def _settle(self, overrides: Sequence[str], idx: int, *, last: bool) -> JobReturn | None:
        """The outcome of a job whose return was lost with the pool; ``None``: launch it again."""
        try:
            path, cfg = self._job_dir(overrides, idx)
        except Exception as exc:  # its config does not even compose: a failure of its own
            return _failed(overrides, idx, exc)
        rd = RunDir(path)
        state = rd.state()
        if state.status == COMPLETED:
            metric = cfg.get("optimize_metric")
            value = state.summary.get(metric, math.nan) if metric else math.nan
            ret = JobReturn(overrides=list(overrides), cfg=cfg, status=JobStatus.COMPLETED)
            ret.return_value = float(value) if isinstance(value, int | float) else math.nan
            return ret
        started = state.status not in (MISSING,) or rd.job().run_id
        if not started and not last:
            return None  # never ran: launch it again
        error = WorkerKilled(
            "its joblib worker process was killed (kill -9, or the out-of-memory killer: see "
            "`dmesg`); loky ends every worker of the pool with it. Continue it with resume=true"
        )
        if state.status in (RUNNING, MISSING) or started:
            try:
                with rd.lock():
                    if rd.state().status != COMPLETED:
                        rd.record_failure(error)
            except (RunDirLocked, OSError) as exc:  # a job process still holds it: its own
                log.error("cannot record the failure of %s: %s", rd, exc)
        log.error("job failed (%s): %s", rd, error)
        return _failed(overrides, idx, error)


def launch(
    self: JoblibLauncher, job_overrides: Sequence[Sequence[str]], initial_job_idx: int
) -> Sequence[JobReturn]:
    """``JoblibLauncher.launch`` whose sweep goes on when a worker process is killed."""
    return _Launch(self)(job_overrides, initial_job_idx)


def _failed(overrides: Sequence[str], idx: int, error: BaseException) -> JobReturn:
    """A failed job as the runner reports one in a multirun: NaN (the sweeper goes on; the
    failure is in the run dir and in the end-of-sweep report), never a raised error."""
    ret = JobReturn(overrides=list(overrides), status=JobStatus.COMPLETED)
    ret.return_value = math.nan
    return ret


def _contiguous(indices: list[int]) -> list[tuple[int, int]]:
    """``[0, 1, 2, 5, 6]`` → ``[(0, 3), (5, 7)]`` (job numbers stay those of the sweep)."""
    ranges: list[tuple[int, int]] = []
    for i in indices:
        if ranges and ranges[-1][1] == i:
            ranges[-1] = (ranges[-1][0], i + 1)
        else:
            ranges.append((i, i + 1))
    return ranges
