"""Train several jobs as populations in one process: :func:`run_population`.

The contract with a launcher (``hydra/launcher=batched``)::

    run_population(jobs: Sequence[PopulationJob], *, threads=None) -> list[float | BaseException]

``PopulationJob(cfg, info)``: the job's composed config (a ``DictConfig``, as Hydra hands it to the
task function, ``hydra`` node not needed) and its :class:`~experiments.run.job.JobInfo`
(``output_dir`` = the job's run dir; ``multirun``, ``choices``, ``overrides``, ``sweep_dir``,
``job_num`` as Hydra knows them), optionally ``log_file`` (the job's ``train.log``: its thread's
log records). The result, in the order of ``jobs``, is for each job what
:func:`experiments.run.job.run` returns (``summary[optimize_metric]``, NaN for a failed or
interrupted multirun job) or the exception it raised (outside a multirun).

Jobs are grouped by :func:`agents.population.group_configs` (our DQN or PQN with the same network,
gradient-step structure and env config); each group of two or more trains as one population, the
others (other agents, SB3, a group of one) run one after the other as ordinary jobs.

A population member is an ordinary run: :func:`experiments.run.job.run` with its own config and run
dir, in its own thread, so its run dir (config, ``run.json``, metrics, checkpoints, summary, W&B
run, status, ``error.txt``) is written by the same code as a separate run's. Only its torch work
goes through the population (:mod:`agents.population`). So:

* a member that fails (an invalid ``agent.lr``, a full disk, ...) fails alone, recorded as usual;
* SIGINT / SIGTERM checkpoint every member at its next step and stop them (``status:
  interrupted``); running the same jobs again with ``resume=true`` continues each member from its
  own run dir, exactly as the uninterrupted population would have gone on;
* the global RNG entries of a member's checkpoints hold the process's state (shared by the
  members; our DQN and PQN never draw from it), the only bytes that differ from a separate run's.

Members are built one at a time (the global torch RNG is seeded per run and network
initialisation forks it), then train in lockstep.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

from omegaconf import DictConfig, OmegaConf

from agents.base import Agent
from agents.population import Population, group_configs
from experiments.run.console import DUPLICATE_SIGNAL_S
from experiments.run.job import JobInfo, run
from experiments.run.protocol import LifelongProtocol

log = logging.getLogger("experiments.run")

Result = float | BaseException


@dataclass(frozen=True)
class PopulationJob:
    """One job of a population: its composed config and what the launcher knows about it.
    ``log_file``: where this job's log records go (e.g. ``<run dir>/train.log``, what Hydra's job
    logging writes for a separate job): the records its thread logs, in Hydra's format."""

    cfg: DictConfig
    info: JobInfo
    log_file: Path | None = None


LOG_FORMAT = "[%(asctime)s][%(name)s][%(levelname)s] - %(message)s"  # Hydra's job log format


class _ThisThread(logging.Filter):
    def __init__(self) -> None:
        super().__init__()
        self.ident = threading.get_ident()

    def filter(self, record: logging.LogRecord) -> bool:
        return record.thread == self.ident


@contextmanager
def _job_log(path: Path | None) -> Iterator[None]:
    """Append the current thread's log records to ``path`` (nothing when ``None``)."""
    if path is None:
        yield
        return
    handler = logging.FileHandler(path, delay=True)
    handler.setFormatter(logging.Formatter(LOG_FORMAT))
    handler.addFilter(_ThisThread())
    root = logging.getLogger()
    root.addHandler(handler)  # before job.run: its secrets filter is installed on it too
    try:
        yield
    finally:
        root.removeHandler(handler)
        handler.close()


def population_groups(jobs: Sequence[PopulationJob]) -> list[list[int]]:
    """Indices of ``jobs`` grouped into populations (see :mod:`agents.population.grouping`)."""
    sections = []
    for job in jobs:
        agent = OmegaConf.to_container(job.cfg.agent, resolve=True)
        env = OmegaConf.to_container(job.cfg.env, resolve=True)
        sections.append((cast(dict[str, Any], agent), cast(dict[str, Any], env)))
    return group_configs(sections)


def run_population(jobs: Sequence[PopulationJob], *, threads: int | None = None) -> list[Result]:
    """Run ``jobs``, grouped into populations; per job its result or exception (module doc).
    ``threads``: torch's intra-op threads while a population trains (``None``: the members'
    ``torch_threads``); see :class:`agents.population.Population`."""
    results: list[Result | None] = [None] * len(jobs)
    for group in population_groups(jobs):
        if len(group) == 1:
            results[group[0]] = _run_alone(jobs[group[0]])
            continue
        for i, result in zip(group, _run_together([jobs[i] for i in group], threads), strict=True):
            results[i] = result
    return cast(list[Result], results)


def _run_one(job: PopulationJob, prepare: Any = None) -> float:
    info = job.info
    with _job_log(job.log_file):
        return run(job.cfg, info.output_dir, multirun=info.multirun, job_info=info, prepare=prepare)


def _run_alone(job: PopulationJob) -> Result:
    try:
        return _run_one(job)
    except Exception as exc:
        return exc


class _Stopper:
    """SIGTERM / first SIGINT: every member checkpoints at its next step and stops (as
    :func:`experiments.run.console.stop_on_signals` does for one run; a member's own thread cannot
    install handlers)."""

    def __init__(self) -> None:
        self.protocols: list[LifelongProtocol] = []
        self.signal: str | None = None
        self._lock = threading.Lock()

    def add(self, protocol: LifelongProtocol) -> None:
        with self._lock:
            self.protocols.append(protocol)
            if self.signal is not None:
                protocol.stop_requested = self.signal

    def stop(self, name: str) -> None:
        with self._lock:
            self.signal = name
            for protocol in self.protocols:
                protocol.stop_requested = name


def _run_together(jobs: Sequence[PopulationJob], threads: int | None) -> list[Result]:
    population = Population(threads)
    slots = [population.join() for _ in jobs]
    setup = threading.Lock()  # members are built one at a time (global RNG seeding)
    stopper = _Stopper()
    results: list[Result] = [float("nan")] * len(jobs)

    def member(i: int) -> None:
        slot = slots[i]
        held = [True]
        setup.acquire()

        def prepare(agent: Agent, protocol: LifelongProtocol) -> Agent:
            stopper.add(protocol)
            try:
                return cast(Agent, population.attach(slot, agent))
            finally:
                held[0] = False
                setup.release()

        try:
            results[i] = _run_one(jobs[i], prepare)
        except BaseException as exc:
            results[i] = exc
        finally:
            if held[0]:
                setup.release()
            population.leave(slot)

    workers = [
        threading.Thread(target=member, args=(i,), name=f"member-{i}", daemon=True)
        for i in range(len(jobs))
    ]
    with _signals(stopper):
        for thread in workers:
            thread.start()
        for thread in workers:
            while thread.is_alive():  # a timeout keeps the main thread responsive to signals
                thread.join(timeout=0.2)
    log.info("population of %d trained in %d rounds", len(jobs), population.rendezvous.rounds)
    return results


class _signals:
    """Install the population's SIGTERM / SIGINT handler (main thread only)."""

    def __init__(self, stopper: _Stopper) -> None:
        self.stopper = stopper
        self.previous: dict[int, Any] = {}
        self.first: float | None = None

    def handler(self, signum: int, frame: Any) -> None:
        now = time.monotonic()
        if self.first is None:
            self.first = now
            name = signal.Signals(signum).name
            log.warning("%s received: checkpointing every member and stopping", name)
            self.stopper.stop(name)
            return
        if now - self.first < DUPLICATE_SIGNAL_S:
            return
        signal.signal(signum, self.previous[signum])
        signal.raise_signal(signum)

    def __enter__(self) -> None:
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGTERM, signal.SIGINT):
                self.previous[sig] = signal.signal(sig, self.handler)

    def __exit__(self, *exc: object) -> None:
        for signum, old in self.previous.items():
            signal.signal(signum, old)
