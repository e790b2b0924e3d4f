"""Sweep jobs that could not write their own run dir.

A multirun job whose dir is held by another live process (two multiruns into one sweep dir), or
already holds another run, must not write a single byte there: the dir is someone else's. Its
failure is recorded beside the job dirs instead, in ``<sweep dir>/.rejected/`` (one JSON file per
rejected job), so that the end-of-sweep failure report and ``failures.json`` list it like any
other failed job.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from experiments.run.files import write_json_atomic

REJECTED_DIR = ".rejected"


def record_rejected(
    sweep_dir: str | Path,
    job_dir: str | Path,
    overrides: Sequence[str],
    error: BaseException,
    job_num: int | None = None,
) -> Path:
    """Write the record of one rejected job; returns its path."""
    folder = Path(sweep_dir) / REJECTED_DIR
    folder.mkdir(parents=True, exist_ok=True)
    path = (
        folder
        / f"{job_num if job_num is not None else 'job'}-{os.getpid()}-{uuid.uuid4().hex[:8]}.json"
    )
    write_json_atomic(
        path,
        {
            "dir": str(job_dir),
            "status": "failed",
            "overrides": list(overrides),
            "error": f"{type(error).__name__}: {error}",
        },
    )
    return path


def rejected_jobs(sweep_dir: str | Path) -> list[dict[str, Any]]:
    """The records under ``<sweep dir>/.rejected/`` (oldest first); unreadable ones are skipped."""
    folder = Path(sweep_dir) / REJECTED_DIR
    if not folder.is_dir():
        return []
    records = []
    for path in sorted(folder.glob("*.json"), key=lambda p: p.stat().st_mtime):
        try:
            records.append(json.loads(path.read_text()))
        except (OSError, ValueError):
            continue
    return records
