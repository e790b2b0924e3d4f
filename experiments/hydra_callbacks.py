"""Hydra callbacks of ``recsim-train`` (configured under ``hydra.callbacks`` in ``conf/config.yaml``).

:class:`FailureReport`: a failing job in a multirun does not stop the others (``experiments.train``
catches the error, writes ``error.txt`` and a ``summary.json`` with ``status: failed``, and returns
NaN). At the end of the multirun this callback scans the sweep dir and prints which jobs failed,
with their overrides and the error, and writes the list to ``<sweep dir>/failures.json``.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

log = logging.getLogger("experiments.train")


def scan_sweep(sweep_dir: str | Path) -> list[dict[str, Any]]:
    """One record per job dir under ``sweep_dir``: ``dir``, ``status``, ``overrides``, ``error``."""
    sweep_dir = Path(sweep_dir)
    jobs = []
    if not sweep_dir.is_dir():
        return jobs
    dirs = {p.parent for p in sweep_dir.rglob("summary.json")} | {
        p.parent for p in sweep_dir.rglob("error.txt")
    }
    for job_dir in sorted(dirs, key=_job_sort_key):
        summary: dict[str, Any] = {}
        if (job_dir / "summary.json").exists():
            try:
                summary = json.loads((job_dir / "summary.json").read_text())
            except ValueError:
                summary = {"status": "unreadable"}
        status = summary.get("status", "failed" if (job_dir / "error.txt").exists() else "unknown")
        error = summary.get("error")
        if error is None and (job_dir / "error.txt").exists():
            lines = (job_dir / "error.txt").read_text().strip().splitlines()
            error = lines[-1] if lines else "unknown error"
        jobs.append(
            {
                "dir": str(job_dir),
                "status": status,
                "overrides": _overrides(job_dir),
                "error": error,
            }
        )
    return jobs


def _job_sort_key(path: Path) -> tuple:
    return tuple((0, int(p), "") if p.isdigit() else (1, 0, p) for p in path.parts)


def _overrides(job_dir: Path) -> list[str]:
    path = job_dir / ".hydra" / "overrides.yaml"
    if not path.exists():
        return []
    from omegaconf import OmegaConf

    return [str(o) for o in OmegaConf.load(path)]


class FailureReport(Callback):
    """At the end of a multirun, list the failed (and interrupted) jobs."""

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        sweep_dir = Path(config.hydra.sweep.dir)
        jobs = scan_sweep(sweep_dir)
        bad = [j for j in jobs if j["status"] not in ("completed", "running")]
        done = sum(j["status"] == "completed" for j in jobs)
        if not bad:
            log.info("multirun finished: %d job(s) completed in %s", done, sweep_dir)
            return
        (sweep_dir / "failures.json").write_text(json.dumps(bad, indent=2) + "\n")
        lines = [
            f"multirun finished: {done} completed, {len(bad)} failed or interrupted ({sweep_dir}):"
        ]
        for job in bad:
            overrides = " ".join(job["overrides"]) or "(no overrides)"
            lines.append(f"  [{job['status']}] {overrides}")
            error = job["error"] or "stopped before the end; resume it with resume=true"
            lines.append(f"      {error}")
            lines.append(f"      see {job['dir']}/error.txt")
        print("\n".join(lines), flush=True)  # stdout: the end of a sweep's console output
