"""Hydra callbacks of ``recsim-train`` (configured under ``hydra.callbacks`` in ``conf/config.yaml``).

:class:`FailureReport`: a failing job in a multirun does not stop the others (the runner catches
the error, writes ``error.txt`` and a ``summary.json`` with ``status: failed``, and returns NaN). At
the end of the multirun this callback scans the sweep dir and prints which jobs failed, with their
overrides and the error, and writes the list to ``<sweep dir>/failures.json``.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from experiments.run.rundir import COMPLETED, MISSING, RUNNING, RunDir, write_json_atomic

log = logging.getLogger("experiments.run")

FAILURES_FILE = "failures.json"


def scan_sweep(sweep_dir: str | Path) -> list[dict[str, Any]]:
    """One record per job dir under ``sweep_dir``: ``dir``, ``status``, ``overrides``, ``error``."""
    sweep_dir = Path(sweep_dir)
    if not sweep_dir.is_dir():
        return []
    jobs = []
    for rd in RunDir.find(sweep_dir):
        state = rd.state()
        if state.status == MISSING:  # a dir with a config but no record yet
            continue
        jobs.append(
            {
                "dir": str(rd.path),
                "status": state.status,
                "overrides": rd.job().overrides,
                "error": state.error if state.status not in (COMPLETED, RUNNING) else None,
            }
        )
    return jobs


class FailureReport(Callback):
    """At the end of a multirun, list the failed (and interrupted) jobs."""

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        sweep_dir = Path(config.hydra.sweep.dir)
        jobs = scan_sweep(sweep_dir)
        bad = [j for j in jobs if j["status"] not in (COMPLETED, RUNNING)]
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
