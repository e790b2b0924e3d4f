"""``hydra/launcher=batched`` (``conf/hydra/launcher/batched.yaml``): a multirun's compatible jobs
train together as populations, the others run as ordinary jobs.

Hydra instantiates launchers only from the ``hydra_plugins`` package, so the class lives here; the
launch itself is :mod:`experiments.integrations.batched_launcher` (imported when a sweep launches:
Hydra imports every module of this package at start-up, so this one stays light).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from hydra.core.utils import JobReturn
from hydra.plugins.launcher import Launcher
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig


class BatchedLauncher(Launcher):
    """``n_jobs``: processes that run populations (and ordinary jobs) at the same time (joblib
    workers when > 1); ``max_population``: the most jobs in one population (null: no limit, but
    with ``n_jobs`` > 1 each group is split into ``n_jobs`` populations); ``backend``: where the
    processes run, ``local`` (this machine), ``ray`` (each one a Ray task, options in ``ray``) or
    ``submitit`` (each one a SLURM or local submitit job, options in ``submitit``)."""

    def __init__(
        self,
        *,
        n_jobs: int,
        max_population: int | None,
        backend: str,
        ray: Any = None,
        submitit: Any = None,
        **_: Any,
    ) -> None:
        # no defaults here: conf/hydra/launcher/batched.yaml is their one source
        from experiments.integrations.batched_remote import BACKENDS, check_options
        from recsim_env.validation import check_choice, check_int

        self.config: DictConfig | None = None
        self.task_function: TaskFunction | None = None
        self.hydra_context: HydraContext | None = None
        self.n_jobs = check_int("hydra.launcher.n_jobs", n_jobs, 1)
        self.max_population = check_int(
            "hydra.launcher.max_population", max_population, 1, optional=True
        )
        self.backend = check_choice("hydra.launcher.backend", backend, BACKENDS)
        self.remote = None
        if self.backend != "local":
            self.remote = check_options(self.backend, ray if self.backend == "ray" else submitit)

    def setup(
        self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig
    ) -> None:
        self.config = config
        self.task_function = task_function
        self.hydra_context = hydra_context

    def launch(
        self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int
    ) -> Sequence[JobReturn]:
        from experiments.integrations.batched_launcher import launch

        return launch(
            self,
            job_overrides,
            initial_job_idx,
            n_jobs=self.n_jobs,
            max_population=self.max_population,
            backend=self.backend,
            remote=self.remote,
        )
