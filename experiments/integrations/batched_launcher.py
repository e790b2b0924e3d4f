"""``hydra/launcher=batched``: a multirun whose compatible jobs train together, as populations.

Why: a sweep's jobs of our DQN or PQN differ only in their seed and a few continuous
hyperparameters, yet each one pays its own per-step Python and PyTorch overhead. This launcher
composes every job of the multirun first, groups the jobs that can share one batched computation
(:func:`agents.population.population_key`: same agent class, network shape, env structure and
protocol) and trains each group in one process with :func:`experiments.run.population.
run_population`. Every other job (other agents, SB3, baselines, a job with ``hydra.job.chdir=true``)
runs as an ordinary job, exactly as the basic launcher runs it.

What a population member leaves behind is what a separate job leaves: its run dir (``config.yaml``,
``run.json``, ``metrics.csv``, ``summary.json``, ``checkpoints/``, ``train.log``, the W&B run) and
``.hydra/`` files, its :class:`~hydra.core.utils.JobReturn` (the optimised metric, NaN when it
failed), and the callbacks ``on_job_start`` / ``on_job_end`` (progress lines, the end-of-sweep
failure report) called once per member with that member's config. Differences, by necessity:
the members of one population start and end together (a member's ``train.log`` holds the records
its own thread logs).

Failures: a member that fails (an invalid hyperparameter, a diverging network) fails alone, with the
usual ``error.txt`` and ``status: failed``; a population is forked from the launcher's process like
an ordinary multirun job (:mod:`experiments.run.isolation`), so a population killed by a signal is
recorded in each unfinished member's run dir and the sweep goes on.

Scale-out: ``n_jobs`` > 1 runs populations (and ordinary jobs) in that many joblib (loky) worker
processes; a group larger than ``max_population`` is split, and with ``n_jobs`` > 1 and no
``max_population`` each group is split into ``n_jobs`` populations so that every worker gets one.
``backend: ray`` / ``submitit`` runs each of these units as a Ray task or a submitit (SLURM) job
instead (:mod:`experiments.integrations.batched_remote`; presets ``hydra/launcher=batched_ray``,
``batched_slurm``).
"""

from __future__ import annotations

import copy
import functools
import logging
import logging.config
import math
import os
import pickle
import signal
import threading
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

from hydra.core.hydra_config import HydraConfig
from hydra.core.singleton import Singleton
from hydra.core.utils import (
    JobReturn,
    JobRuntime,
    JobStatus,
    _flush_loggers,
    _save_config,
    configure_log,
    env_override,
    filter_overrides,
    run_job,
    setup_globals,
)
from hydra.plugins.launcher import Launcher
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig, OmegaConf, open_dict, read_write

from experiments.run.isolation import ENV_SWITCH, _record_killed, fork_call
from experiments.run.job import JobInfo, preload
from experiments.run.rundir import COMPLETED, FAILED, RunDir, RunDirLocked, clean_choices
from experiments.run.secrets import scrub

log = logging.getLogger(__name__)

__all__ = ["PopulationFailed", "Unit", "launch", "plan"]


class PopulationFailed(RuntimeError):
    """The population's process ended without a result for this member."""


@dataclass(frozen=True)
class Unit:
    """What one process runs: ordinary job(s) one by one, or one population (positions into the
    launch's job list)."""

    positions: tuple[int, ...]
    population: bool


# -------------------------------------------------------------------------------- the plan
def _task_cfg(config: DictConfig) -> DictConfig:
    task_cfg = OmegaConf.create(OmegaConf.to_container(config, resolve=False))
    assert isinstance(task_cfg, DictConfig)
    with open_dict(task_cfg):
        del task_cfg["hydra"]
    return task_cfg


def _key(config: DictConfig) -> Hashable | None:
    """The population a job may join; ``None``: an ordinary job."""
    from agents.population import population_key

    if OmegaConf.select(config, "hydra.job.chdir"):
        return None  # one working dir per job: only a process of its own can give it
    try:
        HydraConfig.instance().set_config(config)
        plain = OmegaConf.to_container(_task_cfg(config), resolve=True)
    except Exception as exc:  # the job itself will report it the usual way
        log.debug("job config does not resolve, an ordinary job: %s", exc)
        return None
    assert isinstance(plain, dict)
    agent, env = plain.get("agent"), plain.get("env")
    if not isinstance(agent, dict) or not isinstance(env, dict):
        return None
    return population_key(agent, env)


def plan(
    keys: Sequence[Hashable | None], n_jobs: int = 1, max_population: int | None = None
) -> list[Unit]:
    """Group job positions by population key (in sweep order); split a group larger than
    ``max_population`` (with ``n_jobs`` > 1 and no ``max_population``: into ``n_jobs`` parts);
    a part of one job, and every job without a key, is an ordinary job."""
    if max_population is not None and max_population < 1:
        raise ValueError(f"invalid max_population={max_population} (allowed: null or >= 1)")
    groups: dict[Hashable, list[int]] = {}
    units: list[Unit] = []
    for pos, key in enumerate(keys):
        if key is None:
            units.append(Unit((pos,), population=False))
        else:
            groups.setdefault(key, []).append(pos)
    for members in groups.values():
        parts = max(1, n_jobs) if max_population is None else -(-len(members) // max_population)
        parts = min(parts, len(members))
        size, extra = divmod(len(members), parts)
        start = 0
        for i in range(parts):
            chunk = tuple(members[start : start + size + (i < extra)])
            start += len(chunk)
            units.append(Unit(chunk, population=len(chunk) > 1))
    return sorted(units, key=lambda u: (-len(u.positions), u.positions[0]))


# -------------------------------------------------------------------------------- the launch
def compose(
    hydra_context: HydraContext, config: DictConfig, overrides: Sequence[str], idx: int
) -> DictConfig:
    """A job's composed config, numbered as the joblib launcher numbers it."""
    sweep_config = hydra_context.config_loader.load_sweep_config(config, list(overrides))
    with open_dict(sweep_config):
        sweep_config.hydra.job.id = f"{sweep_config.hydra.job.name}_{idx}"
        sweep_config.hydra.job.num = idx
    return sweep_config


def launch(
    launcher: Launcher,
    job_overrides: Sequence[Sequence[str]],
    initial_job_idx: int,
    *,
    n_jobs: int,
    max_population: int | None,
    backend: str,
    remote: dict[str, Any] | None,
) -> list[JobReturn]:
    """The launch of a sweep's jobs (module doc); the returns in the order of ``job_overrides``.
    ``backend``: ``local`` (this machine), ``ray`` or ``submitit`` with ``remote`` its options
    (:mod:`experiments.integrations.batched_remote`)."""
    setup_globals()
    hydra_context = cast(HydraContext, launcher.hydra_context)  # type: ignore[attr-defined]
    config = cast(DictConfig, launcher.config)  # type: ignore[attr-defined]
    task_function = cast(TaskFunction, launcher.task_function)  # type: ignore[attr-defined]
    configure_log(config.hydra.hydra_logging, config.hydra.verbose)
    sweep_dir = Path(str(config.hydra.sweep.dir))
    sweep_dir.mkdir(parents=True, exist_ok=True)
    orig = HydraConfig.instance().cfg
    try:
        configs = [
            compose(hydra_context, config, overrides, initial_job_idx + i)
            for i, overrides in enumerate(job_overrides)
        ]
        units = plan([_key(c) for c in configs], n_jobs, max_population)
    finally:
        HydraConfig.instance().cfg = orig
    populations = [u for u in units if u.population]
    log.info(
        "Batched launcher: %d job(s) into %s: %d population(s) of %s job(s), %d ordinary job(s), "
        "%d at a time (%s)",
        len(job_overrides),
        sweep_dir,
        len(populations),
        "+".join(str(len(u.positions)) for u in populations) or "0",
        sum(not u.population for u in units),
        max(1, n_jobs),
        backend,
    )
    for unit in units:
        jobs = " | ".join(
            f"#{initial_job_idx + p} {' '.join(filter_overrides(job_overrides[p]))}"
            for p in unit.positions
        )
        log.info("\t%s: %s", "population" if unit.population else "job", jobs)
    returns: dict[int, JobReturn] = {}

    def jobs_of(unit: Unit) -> list[tuple[int, list[str]]]:
        return [(initial_job_idx + p, list(job_overrides[p])) for p in unit.positions]

    if backend != "local":
        from experiments.integrations.batched_remote import lost_job, run_remote

        payload = functools.partial(
            _run_unit_in_worker, hydra_context, config, task_function, Singleton.get_state()
        )
        outcomes = run_remote(
            backend, remote or {}, payload, [(u, jobs_of(u)) for u in units], n_jobs
        )
        for unit, outcome in zip(units, outcomes, strict=True):
            if isinstance(outcome, BaseException):
                outcome = [lost_job(configs[p], job_overrides[p], outcome) for p in unit.positions]
            returns.update(zip(unit.positions, outcome, strict=True))
    elif n_jobs <= 1:
        for unit in units:
            rets = run_unit(
                hydra_context, task_function, [configs[p] for p in unit.positions], unit
            )
            returns.update(zip(unit.positions, rets, strict=True))
            configure_log(config.hydra.hydra_logging, config.hydra.verbose)
    else:
        from joblib import Parallel, delayed  # type: ignore[import-untyped]

        state = Singleton.get_state()
        stop = _StopOnSignals()
        started: list[Unit] = []

        def tasks() -> Any:
            for unit in units:
                if stop.signal is not None:
                    return  # Ctrl-C: running jobs checkpoint and stop, no new one starts
                started.append(unit)
                yield delayed(_run_unit_in_worker)(
                    hydra_context,
                    config,
                    task_function,
                    state,
                    unit,
                    jobs_of(unit),
                )

        with stop:
            results = Parallel(n_jobs=n_jobs, backend="loky", pre_dispatch="n_jobs")(tasks())
        for unit, rets in zip(started, cast(list[list[JobReturn]], results), strict=True):
            returns.update(zip(unit.positions, rets, strict=True))
        for p in range(len(job_overrides)):  # never started (the sweep was stopped)
            if p not in returns:
                returns[p] = JobReturn(overrides=list(job_overrides[p]), status=JobStatus.COMPLETED)
                returns[p].return_value = math.nan
    return [returns[p] for p in range(len(job_overrides))]


class _StopOnSignals:
    """SIGINT / SIGTERM while joblib workers run: the launcher's process waits for them instead of
    raising (loky would kill the workers, and the populations in them, before they checkpoint).
    A Ctrl-C reaches every process of the terminal's process group: each running job checkpoints
    and stops as in a basic multirun; no further job starts."""

    def __init__(self) -> None:
        self.signal: str | None = None
        self._previous: dict[int, Any] = {}

    def _handle(self, signum: int, frame: object) -> None:
        if self.signal is None:
            self.signal = signal.Signals(signum).name
            log.warning("%s: running jobs checkpoint and stop; no new job starts", self.signal)

    def __enter__(self) -> _StopOnSignals:
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)


def _run_unit_in_worker(
    hydra_context: HydraContext,
    config: DictConfig,
    task_function: TaskFunction,
    singleton_state: dict[Any, Any],
    unit: Unit,
    jobs: list[tuple[int, list[str]]],
) -> list[JobReturn]:
    """A unit in a joblib worker process (as the joblib launcher's ``execute_job``)."""
    setup_globals()
    Singleton.set_state(singleton_state)
    configs = [compose(hydra_context, config, overrides, idx) for idx, overrides in jobs]
    return run_unit(hydra_context, task_function, configs, unit)


def run_unit(
    hydra_context: HydraContext,
    task_function: TaskFunction,
    configs: list[DictConfig],
    unit: Unit,
) -> list[JobReturn]:
    """Run a unit's jobs in this process: ordinary ones through Hydra's ``run_job``."""
    if unit.population:
        return run_population_job(hydra_context, task_function, configs)
    return [
        run_job(
            hydra_context=hydra_context,
            task_function=task_function,
            config=c,
            job_dir_key="hydra.sweep.dir",
            job_subdir_key="hydra.sweep.subdir",
        )
        for c in configs
    ]


# -------------------------------------------------------------------------------- a population
@dataclass
class _Member:
    config: DictConfig  # the full composed config, hydra.runtime.output_dir set
    task_cfg: DictConfig
    ret: JobReturn
    output_dir: Path


def _start_member(
    hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig
) -> _Member:
    """What Hydra's ``run_job`` does before it calls the task function: the output dir, the
    ``.hydra/`` files, the JobReturn's fields, ``on_job_start``."""
    HydraConfig.instance().set_config(config)
    output_dir = os.path.join(
        str(OmegaConf.select(config, "hydra.sweep.dir")),
        str(OmegaConf.select(config, "hydra.sweep.subdir")),
    )
    with read_write(config.hydra.runtime), open_dict(config.hydra.runtime):
        config.hydra.runtime.output_dir = os.path.abspath(output_dir)
    HydraConfig.instance().set_config(config)
    ret = JobReturn()
    task_cfg = _task_cfg(config)
    ret.cfg = task_cfg
    hydra_cfg = copy.deepcopy(HydraConfig.instance().cfg)
    assert isinstance(hydra_cfg, DictConfig)
    ret.hydra_cfg = hydra_cfg
    ret.overrides = cast(list[str], OmegaConf.to_container(config.hydra.overrides.task))
    Path(output_dir).mkdir(parents=True, exist_ok=True)
    ret.working_dir = os.getcwd()
    if config.hydra.output_subdir is not None:
        hydra_output = Path(config.hydra.runtime.output_dir) / Path(config.hydra.output_subdir)
        _save_config(task_cfg, "config.yaml", hydra_output)
        _save_config(hydra_cfg, "hydra.yaml", hydra_output)
        _save_config(config.hydra.overrides.task, "overrides.yaml", hydra_output)
    hydra_context.callbacks.on_job_start(config=config, task_function=task_function)
    return _Member(config, task_cfg, ret, Path(config.hydra.runtime.output_dir))


def _configure_population_log(members: list[_Member]) -> list[Path | None]:
    """Hydra's job logging without its file handler; each member's ``train.log`` (that handler's
    file for the member) is returned: :func:`run_population` writes each member's own records
    there."""
    first = members[0].config
    HydraConfig.instance().set_config(first)
    conf = cast(dict[str, Any], OmegaConf.to_container(first.hydra.job_logging, resolve=True))
    handlers = conf.get("handlers") or {}
    root = conf.get("root") or {}
    file = handlers.get("file")
    if not isinstance(file, dict) or "file" not in (root.get("handlers") or []):
        configure_log(first.hydra.job_logging, first.hydra.verbose)
        return [None] * len(members)
    paths: list[Path | None] = []
    for member in members:
        HydraConfig.instance().set_config(member.config)
        path = OmegaConf.select(member.config, "hydra.job_logging.handlers.file.filename")
        paths.append(Path(str(path)) if path else None)
    del handlers["file"]
    root["handlers"] = [h for h in root["handlers"] if h != "file"]
    logging.config.dictConfig(conf)
    verbose = first.hydra.verbose
    if verbose is True:
        logging.getLogger().setLevel(logging.DEBUG)
    elif isinstance(verbose, str) or OmegaConf.is_list(verbose):
        for name in [verbose] if isinstance(verbose, str) else list(verbose):
            logging.getLogger(str(name)).setLevel(logging.DEBUG)
    return paths


def run_population_job(
    hydra_context: HydraContext, task_function: TaskFunction, configs: list[DictConfig]
) -> list[JobReturn]:
    """Train ``configs`` as one population; per member the JobReturn Hydra's ``run_job`` gives."""
    from experiments.run.population import PopulationJob

    callbacks = hydra_context.callbacks
    orig = HydraConfig.instance().cfg
    try:
        members = [_start_member(hydra_context, task_function, c) for c in configs]
        log_files = _configure_population_log(members)
        jobs = []
        for m, log_file in zip(members, log_files, strict=True):
            HydraConfig.instance().set_config(m.config)
            hc = HydraConfig.get()
            info = JobInfo(
                output_dir=m.output_dir,
                multirun=True,
                choices=clean_choices(hc.runtime.choices),
                overrides=[str(o) for o in hc.overrides.task],
                sweep_dir=Path(hc.sweep.dir),
                job_num=cast(Any, hc.job).get("num"),
            )
            jobs.append(PopulationJob(cfg=m.task_cfg, info=info, log_file=log_file))
        HydraConfig.instance().set_config(members[0].config)
        with env_override(cast(dict[str, str], members[0].ret.hydra_cfg.hydra.job.env_set)):  # type: ignore[union-attr]
            outcomes = _population_in_child(jobs, [m.output_dir for m in members])
        for member, outcome in zip(members, outcomes, strict=True):
            member.ret.return_value = _settle(member.output_dir, outcome)
            member.ret.status = JobStatus.COMPLETED
            member.ret.task_name = JobRuntime.instance().get("name")
            _flush_loggers()
            HydraConfig.instance().set_config(member.config)
            callbacks.on_job_end(config=member.config, job_return=member.ret)
        return [m.ret for m in members]
    finally:
        HydraConfig.instance().cfg = orig


def _settle(run_dir: Path, outcome: float | BaseException) -> float:
    """A member's value; a member's exception is recorded in its run dir (if the population did
    not record it) and becomes NaN, as a failed job of the basic launcher does."""
    if not isinstance(outcome, BaseException):
        return float(outcome)
    rd = RunDir(run_dir)
    log.error("job failed (%s): %s: %s", rd, type(outcome).__name__, scrub(str(outcome)))
    if rd.state().status not in (COMPLETED, FAILED):
        try:
            with rd.lock():
                rd.record_failure(outcome)
        except (RunDirLocked, OSError) as exc:
            log.error("cannot record the failure of %s: %s", rd, exc)
    return math.nan


def _population_in_child(jobs: list[Any], run_dirs: list[Path]) -> list[float | BaseException]:
    """``run_population(jobs)`` in a forked child (:mod:`experiments.run.isolation`'s reasons);
    a child killed by a signal: every unfinished member recorded as killed."""
    from experiments.run.population import run_population

    return _in_child(lambda: run_population(jobs), run_dirs, preload_cfg=jobs[0].cfg)


def _picklable(outcome: Any) -> Any:
    try:
        pickle.dumps(outcome)
        return outcome
    except Exception:
        return PopulationFailed(f"{type(outcome).__name__}: {outcome}")


def _in_child(
    work: Callable[[], Sequence[float | BaseException]],
    run_dirs: list[Path],
    preload_cfg: DictConfig | None = None,
) -> list[float | BaseException]:
    if not hasattr(os, "fork") or os.environ.get(ENV_SWITCH, "1") == "0":
        return list(work())
    if preload_cfg is not None:
        preload(preload_cfg)
    data, status, _ = fork_call(lambda: pickle.dumps([_picklable(o) for o in work()]))
    if os.WIFSIGNALED(status):
        name = signal.Signals(os.WTERMSIG(status)).name
        for run_dir in run_dirs:
            _record_killed(RunDir(run_dir), name)
        return [math.nan] * len(run_dirs)
    if data:
        return cast(list[float | BaseException], pickle.loads(data))
    error = PopulationFailed("the population's process failed before any result: see train.log")
    return [error] * len(run_dirs)
