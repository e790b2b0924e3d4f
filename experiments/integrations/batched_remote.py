"""Scale-out of ``hydra/launcher=batched``: each population (and each ordinary job) as one Ray task
or one submitit job (SLURM, or local processes).

Why not Hydra's Ray and submitit launchers: they run one *job* per task, and a population is many
jobs in one process. Here the batched launcher plans its units as on one machine
(:func:`experiments.integrations.batched_launcher.plan`: a group split into ``n_jobs``
populations, "populations per worker") and hands each unit, with the Hydra context and the
composed sweep config, to a worker process that runs it exactly as a local worker does
(``_run_unit_in_worker``). The run dirs are written by the workers (a cluster needs a file system
shared with the launcher's machine, as for Hydra's own Ray and SLURM launchers); the launcher gets
back every member's ``JobReturn``.

Each unit already has a process of its own there (a Ray task with ``max_calls: 1``, a submitit
job), so the worker does not fork its jobs again (``RECSIM_ISOLATE_JOBS=0`` in the worker): forking
a Ray worker's process, with its gRPC threads, is unsafe. A worker that dies (killed, out of memory,
a lost node, a SLURM time limit) loses its unit's returns, not the sweep: each member that had not
recorded its end is recorded as failed in its run dir (``resume=true`` continues it from its last
checkpoint) and returns NaN, like a failed job of the other launchers.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from hydra.core.utils import JobReturn, JobStatus
from omegaconf import DictConfig, OmegaConf

from experiments.run.isolation import ENV_SWITCH
from experiments.run.rundir import COMPLETED, FAILED, RunDir, RunDirLocked
from recsim_env.validation import ConfigError, check_keys

log = logging.getLogger(__name__)

__all__ = ["BACKENDS", "WorkerLost", "lost_job", "run_remote"]

BACKENDS = ("local", "ray", "submitit")
RAY_KEYS = ("init", "remote")
SUBMITIT_KEYS = ("cluster", "folder", "parameters")

# one unit of work (a batched_launcher.Unit) and its jobs as (job number, overrides);
# payload(unit, jobs) runs them in the worker
Jobs = list[tuple[int, list[str]]]
Payload = Callable[[Any, Jobs], list[JobReturn]]


class WorkerLost(RuntimeError):
    """The Ray task or submitit job that ran a population (or an ordinary job) ended without its
    results."""


def run_remote(
    backend: str,
    options: dict[str, Any],
    payload: Payload,
    units: Sequence[tuple[Any, Jobs]],
    n_jobs: int,
) -> list[list[JobReturn] | BaseException]:
    """Each unit's returns, or the error that lost them, in the order of ``units``."""
    if backend == "ray":
        return _on_ray(options, payload, units)
    if backend == "submitit":
        return _on_submitit(options, payload, units, n_jobs)
    raise ConfigError(f"invalid hydra.launcher.backend={backend!r} (allowed: ray, submitit)")


def in_worker(payload: Payload, unit: Any, jobs: Jobs) -> list[JobReturn]:
    """What a remote worker runs: the unit, without forking (module doc). The switch is put back
    afterwards (submitit's ``debug`` cluster runs this in the launcher's own process)."""
    previous = os.environ.get(ENV_SWITCH)
    os.environ[ENV_SWITCH] = "0"
    try:
        return payload(unit, jobs)
    finally:
        if previous is None:
            del os.environ[ENV_SWITCH]
        else:
            os.environ[ENV_SWITCH] = previous


def check_options(backend: str, options: Any) -> dict[str, Any]:
    """``hydra.launcher.<backend>`` as a plain dict, with a clear error for a missing section,
    an unknown key or a missing library."""
    key = f"hydra.launcher.{backend}"
    if options is None:
        raise ConfigError(
            f"invalid {key}=None (allowed: a section; use the preset "
            f"hydra/launcher=batched_{'ray' if backend == 'ray' else 'slurm'})"
        )
    plain = (
        OmegaConf.to_container(options, resolve=True) if OmegaConf.is_config(options) else options
    )
    if not isinstance(plain, dict):
        raise ConfigError(f"invalid {key}={plain!r} (allowed: a mapping)")
    section = {str(k): v for k, v in plain.items()}
    check_keys(key, section, RAY_KEYS if backend == "ray" else SUBMITIT_KEYS)
    module = "ray" if backend == "ray" else "submitit"
    try:
        __import__(module)
    except ImportError as exc:
        extra = "ray" if backend == "ray" else "slurm"
        raise ConfigError(
            f"invalid hydra.launcher.backend={backend} (needs the library {module}: "
            f"pip install 'recsim-env[{extra}]')"
        ) from exc
    return section


# ------------------------------------------------------------------------------------------ Ray
def _on_ray(
    options: dict[str, Any], payload: Payload, units: Sequence[tuple[Any, Jobs]]
) -> list[list[JobReturn] | BaseException]:
    import ray

    started = not ray.is_initialized()
    if started:
        # no address: a private Ray instance on this machine; "auto" or <head>:6379: a cluster
        ray.init(**(options.get("init") or {}))
    try:
        remote = options.get("remote") or {}
        try:
            task = ray.remote(**remote)(in_worker)
        except (TypeError, ValueError) as exc:  # Ray's own message names the option
            raise ConfigError(f"invalid hydra.launcher.ray.remote={remote} ({exc})") from exc
        refs = [task.remote(payload, unit, jobs) for unit, jobs in units]
        outcomes: list[list[JobReturn] | BaseException] = []
        for ref in refs:
            try:
                outcomes.append(ray.get(ref))
            except Exception as exc:  # the task's process died, or its unit raised
                outcomes.append(WorkerLost(f"its Ray task ended without results: {exc}"))
        return outcomes
    finally:
        if started:
            ray.shutdown()


# ------------------------------------------------------------------------------------- submitit
def _on_submitit(
    options: dict[str, Any], payload: Payload, units: Sequence[tuple[Any, Jobs]], n_jobs: int
) -> list[list[JobReturn] | BaseException]:
    import submitit

    cluster = options.get("cluster")
    if cluster not in ("slurm", "local", "debug"):
        raise ConfigError(
            f"invalid hydra.launcher.submitit.cluster={cluster!r} (allowed: slurm, local, debug)"
        )
    executor = submitit.AutoExecutor(folder=str(options.get("folder")), cluster=cluster)
    parameters = dict(options.get("parameters") or {})
    parameters.setdefault("slurm_array_parallelism", n_jobs)  # units at once, on SLURM
    try:
        executor.update_parameters(**parameters)
    except (NameError, AssertionError) as exc:  # submitit's own message lists the valid names
        raise ConfigError(
            f"invalid hydra.launcher.submitit.parameters={parameters} (allowed: {exc})"
        ) from exc
    jobs = executor.map_array(
        in_worker, [payload] * len(units), [u for u, _ in units], [j for _, j in units]
    )
    log.info("submitit (%s): %d job(s) in %s", cluster, len(jobs), options.get("folder"))
    outcomes: list[list[JobReturn] | BaseException] = []
    for job in jobs:
        try:
            outcomes.append(job.result())
        except Exception as exc:  # its process died, or SLURM ended it (time limit, node lost)
            outcomes.append(
                WorkerLost(f"its submitit job {job.job_id} ended without results: {exc}")
            )
    return outcomes


# ------------------------------------------------------------------------------ a lost member
def lost_job(config: DictConfig, overrides: Sequence[str], error: BaseException) -> JobReturn:
    """The return of a job whose worker was lost: what its run dir says if it completed, else
    recorded there as failed (unless it recorded its own end) and NaN."""
    ret = JobReturn(overrides=list(overrides), status=JobStatus.COMPLETED)
    ret.return_value = math.nan
    run_dir = Path(str(config.hydra.sweep.dir)) / str(config.hydra.sweep.subdir)
    rd = RunDir(run_dir)
    state = rd.state()
    if state.status == COMPLETED:
        metric = OmegaConf.select(config, "optimize_metric")
        value = state.summary.get(metric, math.nan) if metric else math.nan
        ret.return_value = float(value) if isinstance(value, int | float) else math.nan
        return ret
    log.error("job failed (%s): %s", rd, error)
    if state.status != FAILED:
        try:
            with rd.lock():
                if rd.state().status not in (COMPLETED, FAILED):
                    rd.record_failure(error)
        except (RunDirLocked, OSError) as exc:  # a process still holds it: its own to record
            log.error("cannot record the failure of %s: %s", rd, exc)
    return ret
