"""Hydra callbacks of ``recsim-train`` (configured under ``hydra.callbacks`` in ``conf/config.yaml``).

:class:`RunDirLock`: a single run locks its output dir *before* Hydra writes into it (``.hydra/``,
``train.log``), so that a second ``recsim-train`` into a dir that a live run holds stops at once
(exit 2, naming the dir and the holder's pid) without touching any of the first run's files. The
runner takes the same lock again (a no-op in the holding process); the kernel releases it when
the process ends, however it ends.

:class:`FailureReport`: a failing job in a multirun does not stop the others (the runner catches
the error, writes ``error.txt`` and a ``summary.json`` with ``status: failed``, and returns NaN; a
job killed by a signal is recorded by :mod:`experiments.run.isolation`). At the end of the multirun
this callback scans the sweep dir and prints which jobs failed, with their overrides and the
error, and writes the list to ``<sweep dir>/failures.json``. A job still marked ``running`` whose
dir nobody holds any more died without a record and is listed too, and so is a job that could
not write its own dir (another process held it, or it held another run:
:mod:`experiments.run.rejected`).
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

from experiments.run.overrides import same_job
from experiments.run.rejected import rejected_jobs
from experiments.run.rundir import (
    COMPLETED,
    MISSING,
    RUNNING,
    RunDir,
    RunDirError,
    write_json_atomic,
)

log = logging.getLogger("experiments.run")

FAILURES_FILE = "failures.json"
KILLED = "killed"  # what the report calls a job left at "running" by a process that died


def scan_sweep(sweep_dir: str | Path) -> list[dict[str, Any]]:
    """One record per job dir under ``sweep_dir``: ``dir``, ``status``, ``overrides``, ``error``.

    ``status`` is the run's own (``summary.json``), except ``killed`` for a run still marked
    ``running`` that no process holds any more.
    """
    sweep_dir = Path(sweep_dir)
    if not sweep_dir.is_dir():
        return []
    jobs = []
    for rd in RunDir.find(sweep_dir):
        state = rd.state()
        if state.status == MISSING:  # a dir with a config but no record yet
            continue
        status = state.status
        if status == RUNNING and (rd.path / RunDir.LOCK).exists() and rd.lock_holder() is None:
            status = KILLED
        jobs.append(
            {
                "dir": str(rd.path),
                "status": status,
                "overrides": rd.job().overrides,
                "error": state.error if status not in (COMPLETED, RUNNING) else None,
            }
        )
    return jobs


class RunDirLock(Callback):
    """Lock a single run's output dir before Hydra writes into it (see module doc)."""

    def on_run_start(self, config: DictConfig, **kwargs: Any) -> None:
        try:
            run_dir = OmegaConf.select(config, "hydra.run.dir")
        except Exception:  # an interpolation only Hydra's job context resolves: the runner locks
            return
        if not run_dir:
            return
        path = Path(str(run_dir))
        try:
            if path.exists() and not path.is_dir():
                raise RunDirError(
                    f"the output dir {path} is a file: choose a directory (hydra.run.dir=...)"
                )
            RunDir(path).acquire_lock()  # held until the process ends
        except RunDirError as exc:
            print(f"recsim-train: {exc}", file=sys.stderr)
            sys.exit(2)

    def on_run_end(self, config: DictConfig, **kwargs: Any) -> None:
        try:
            run_dir = OmegaConf.select(config, "hydra.run.dir")
        except Exception:
            return
        if run_dir:
            RunDir(str(run_dir)).release_lock()


JOBLIB_LAUNCHER = "hydra_plugins.hydra_joblib_launcher.joblib_launcher.JoblibLauncher"


class FailureReport(Callback):
    """At the end of a multirun, list the failed (and interrupted) jobs.

    At its start, with ``hydra/launcher=joblib``, the launcher's sweep is made to survive a killed
    worker process (:mod:`experiments.integrations.joblib_launcher`).
    """

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        if OmegaConf.select(config, "hydra.launcher._target_") == JOBLIB_LAUNCHER:
            from experiments.integrations import joblib_launcher

            joblib_launcher.install()

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        sweep_dir = Path(config.hydra.sweep.dir)
        jobs = scan_sweep(sweep_dir)
        bad = [j for j in jobs if j["status"] not in (COMPLETED, RUNNING)]
        completed = [j["overrides"] for j in jobs if j["status"] == COMPLETED]
        bad += [  # jobs that could not write their own dir, unless the job has completed since
            r
            for r in rejected_jobs(sweep_dir)
            if not any(same_job(r["overrides"], done) for done in completed)
        ]
        done = sum(j["status"] == COMPLETED for j in jobs)
        if not bad:
            log.info("multirun finished: %d job(s) completed in %s", done, sweep_dir)
            return
        write_json_atomic(sweep_dir / FAILURES_FILE, bad)
        lines = [
            f"multirun finished: {done} completed, {len(bad)} failed or interrupted ({sweep_dir}):"
        ]
        for job in bad:
            overrides = " ".join(job["overrides"]) or "(no overrides)"
            lines.append(f"  [{job['status']}] {overrides}")
            error = job["error"] or "stopped before the end; resume it with resume=true"
            lines.append(f"      {error}")
            lines.append(f"      see {job['dir']}/{RunDir.ERROR}")
        print("\n".join(lines), flush=True)  # stdout: the end of a sweep's console output
