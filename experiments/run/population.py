"""STAND-IN (drop at merge): the population helper's ``run_population`` lands here.

Same contract as the real one (``run_population(jobs: Sequence[PopulationJob]) -> list[float |
BaseException]``, ``PopulationJob(cfg, info, log_file=None)``): each member writes its own run dir exactly as a
single run; the result per member is what :func:`experiments.run.job.run` returns, or the member's
exception. This stand-in trains the members one after another through the ordinary job path.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from experiments.run.job import JobInfo, run

__all__ = ["PopulationJob", "run_population"]

LOG_FORMAT = "[%(asctime)s][%(name)s][%(levelname)s] - %(message)s"  # Hydra's job log format


@dataclass(frozen=True)
class PopulationJob:
    """One job of a population: its composed config and what the launcher knows about it."""

    cfg: DictConfig
    info: JobInfo
    log_file: Path | None = None  # the job's train.log: the records logged while it runs


def run_population(jobs: Sequence[PopulationJob]) -> list[float | BaseException]:
    """Train ``jobs`` (one after another, in this stand-in); per member its value or exception."""
    results: list[float | BaseException] = []
    original: Any = JobInfo.__dict__["from_hydra"]
    try:
        for job in jobs:
            # the real one passes job.run(job_info=...); this stand-in's job.run reads Hydra's
            setattr(JobInfo, "from_hydra", classmethod(lambda cls, info=job.info: info))  # noqa: B010
            handler = None
            if job.log_file is not None:
                handler = logging.FileHandler(job.log_file, delay=True)
                handler.setFormatter(logging.Formatter(LOG_FORMAT))
                logging.getLogger().addHandler(handler)
            try:
                results.append(run(job.cfg, job.info.output_dir, multirun=job.info.multirun))
            except Exception as exc:
                results.append(exc)
            finally:
                if handler is not None:
                    logging.getLogger().removeHandler(handler)
                    handler.close()
    finally:
        setattr(JobInfo, "from_hydra", original)  # noqa: B010
    return results
