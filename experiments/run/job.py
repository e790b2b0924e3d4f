"""One run, from a composed config to a finished run dir: the runner's lifecycle.

    config → validate → RunDir (lock, record, config.yaml) → env + agent + sinks
           → LifelongProtocol.run(agent) → summary.json → the optimised metric

:func:`run` is what ``recsim-train`` (through ``@hydra.main``), ``recsim-tune`` (through the compose
API) and the tests call. It returns ``summary[optimize_metric]`` so that sweepers (Optuna,
Nevergrad, ...) can optimise it.

Failures: in a single run the exception propagates (non-zero exit, full message). In a multirun a
failing job writes ``error.txt`` and a ``summary.json`` with ``status: failed``, logs the error and
returns NaN, so that the other jobs still run (the Hydra callback
:class:`experiments.integrations.hydra_callbacks.FailureReport` lists them at the end).

Resume: ``resume=true`` continues the run in the current output dir (a fresh run if it holds none,
e.g. a sweep job that never started), ``resume=<dir>`` the run in ``<dir>`` (the console script
routes Hydra's output dir there; a ``<dir>`` without a run to continue is an error, never a fresh
run). The run continues with its saved ``config.yaml``: a ``protocol.total_steps=`` on the command
line may extend it (never below the step it is at: that is refused, the config left untouched),
secrets (:mod:`experiments.run.secrets`) are taken from the command line, other overrides are
ignored with a warning. A run that was already completed is not trained again. If the newest
checkpoint is damaged, the run continues from the newest intact one (a warning says which).

Nothing that refuses to resume (:class:`~experiments.run.rundir.RunDirError`) writes into the run
dir: its record stays what it was.
"""

from __future__ import annotations

import logging
import math
import random
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import gymnasium
import numpy as np
from omegaconf import DictConfig, OmegaConf

from agents.base import Agent
from experiments.analysis.schema import run_name
from experiments.run import console, resume
from experiments.run.config import (
    CONF_DIR,
    ConfigError,
    EnvConfig,
    instantiate_checked,
    validate,
)
from experiments.run.overrides import PRESET_GROUP
from experiments.run.parts import build_parts
from experiments.run.protocol import LifelongProtocol, RunInterrupted
from experiments.run.rejected import record_rejected
from experiments.run.rundir import (
    INTERRUPTED,
    RUNNING,
    JobRecord,
    RunDir,
    RunDirError,
    clean_choices,
    override_key,
)
from experiments.run.secrets import install_log_filter, redact, redact_overrides, scrub
from experiments.run.sinks import MetricSink, MetricWriter, RunContext
from recsim_env.vector_env import RecSimVectorEnv

log = logging.getLogger("experiments.run")


@dataclass(frozen=True)
class JobInfo:
    """What the launcher knows about this job (empty outside a Hydra job)."""

    output_dir: Path | None = None
    multirun: bool = False
    choices: dict[str, str] = field(default_factory=dict)
    overrides: list[str] = field(default_factory=list)
    sweep_dir: Path | None = None
    job_num: int | None = None

    @classmethod
    def from_hydra(cls) -> JobInfo:
        from hydra.core.hydra_config import HydraConfig
        from hydra.types import RunMode

        if not HydraConfig.initialized():
            return cls()
        hc = HydraConfig.get()
        multirun = hc.mode == RunMode.MULTIRUN
        return cls(
            output_dir=Path(hc.runtime.output_dir),
            multirun=multirun,
            choices=clean_choices(hc.runtime.choices),
            overrides=[str(o) for o in hc.overrides.task],
            sweep_dir=Path(hc.sweep.dir) if multirun else None,
            job_num=cast(Any, hc.job).get("num"),
        )


# ---------------------------------------------------------------------------------------- the run
def run(
    cfg: DictConfig,
    run_dir: str | Path | None = None,
    *,
    multirun: bool | None = None,
    overrides: Sequence[str] | None = None,
    choices: Mapping[str, str] | None = None,
    on_eval: Callable[[int, Mapping[str, Any]], None] | None = None,
    job_info: JobInfo | None = None,
    prepare: Callable[[Agent, LifelongProtocol], Agent] | None = None,
) -> float:
    """Run one job; return ``summary[cfg.optimize_metric]`` (NaN for a failed multirun job).

    Outside ``@hydra.main`` (e.g. with the compose API) pass ``run_dir``; ``multirun``,
    ``overrides`` and the group ``choices`` default to what Hydra says about the current job
    (``job_info``, when given, says it instead of Hydra's global state: a population trains
    several jobs in one process, :mod:`experiments.run.population`).
    ``on_eval(step, summary)`` is called after every evaluation (``recsim-tune`` prunes there).
    ``prepare(agent, protocol)`` sees the built (or restored) agent before training and returns
    the agent to train (population training attaches its members there).
    """
    install_log_filter()  # no secret value reaches train.log or the console through a message
    hydra_job = JobInfo.from_hydra() if job_info is None else job_info
    path = Path(run_dir) if run_dir is not None else hydra_job.output_dir
    if path is None:
        raise ValueError("run(cfg) outside a Hydra app needs run_dir")
    job = JobInfo(
        output_dir=path,
        multirun=hydra_job.multirun if multirun is None else multirun,
        choices=dict(hydra_job.choices if choices is None else clean_choices(choices)),
        overrides=list(hydra_job.overrides if overrides is None else overrides),
        sweep_dir=hydra_job.sweep_dir,
        job_num=hydra_job.job_num,
    )
    if path.exists() and not path.is_dir():
        raise RunDirError(
            f"the output dir {path} is a file: choose a directory (hydra.run.dir=...)"
        )
    rd = RunDir(path).create()
    try:
        with rd.lock():
            try:
                return _run(cfg, rd, job, on_eval, prepare)
            except (RunDirError, RunInterrupted):
                raise  # never overwrite another run's record; an interrupted one is recorded
            except (KeyboardInterrupt, SystemExit) as exc:  # a second Ctrl-C: stop at once
                _record_interrupted(rd, exc)
                raise
            except BaseException as exc:  # the record must say what happened
                rd.record_failure(exc)
                raise
    except RunInterrupted as exc:
        log.warning("%s. Resume with: recsim-train resume=%s", exc, rd)
        if job.multirun:
            return math.nan
        raise
    except Exception as exc:
        if job.multirun:
            log.error("job failed (%s): %s: %s", rd, type(exc).__name__, scrub(str(exc)))
            if isinstance(exc, RunDirError) and job.sweep_dir is not None:
                # the dir is another process's or another run's: record beside it, not in it
                record_rejected(job.sweep_dir, rd.path, job.overrides, exc, job.job_num)
            return math.nan
        raise


def _record_interrupted(rd: RunDir, exc: BaseException) -> None:
    """``status: interrupted`` for a run stopped without a checkpoint of the moment (it resumes
    from its last periodic one)."""
    try:
        rd.set_status(
            INTERRUPTED,
            interrupted=f"{type(exc).__name__}: stopped without a checkpoint of this step; "
            "resume continues from the last periodic checkpoint",
        )
    except OSError as error:
        log.error("cannot record the interruption in %s: %s", rd, error)


def _save_config(rd: RunDir, cfg: DictConfig) -> None:
    """``config.yaml``: the resolved config, secrets redacted."""
    container = OmegaConf.to_container(cfg, resolve=True)
    rd.save_config(OmegaConf.create(redact(container)))


def _record_job(rd: RunDir, cfg: DictConfig, job: JobInfo, resumed: bool) -> JobRecord:
    """``run.json``: on a resume the run keeps its identity; a resumable override is updated."""
    record = rd.job()
    config = cast(dict[str, Any], OmegaConf.to_container(cfg, resolve=True))
    if resumed and (record.overrides or record.choices):
        given = {override_key(o): o for o in job.overrides}
        kept = [
            given.get(override_key(o), o) if override_key(o) in resume.RESUMABLE_OVERRIDES else o
            for o in record.overrides
        ]
        have = {override_key(o) for o in kept}
        kept += [o for k, o in given.items() if k in resume.RESUMABLE_OVERRIDES and k not in have]
        record.overrides = kept
    else:
        record.choices = _applied_choices(job.choices)
        record.overrides = list(job.overrides)
    record.overrides = redact_overrides(record.overrides)
    record.run_id = record.run_id or RunDir.new_run_id()  # created once, kept across resumes
    record.name = run_name(config, record.choices, job.job_num if job.multirun else None)
    record.group = job.sweep_dir.name if job.sweep_dir is not None else ""
    rd.write_job(record)
    return record


def _applied_choices(choices: Mapping[str, str]) -> dict[str, str]:
    """The group choices, without the tuned preset where ``conf/`` has none for the pair: Hydra
    records the interpolated, optional ``agent/tuned: ${agent}/${env}`` even when no file matched
    (the defaults were used), and ``run.json`` must name only a preset that was applied."""
    kept = dict(choices)
    preset = kept.get(PRESET_GROUP)
    if preset is not None and not (CONF_DIR / PRESET_GROUP / f"{preset}.yaml").is_file():
        del kept[PRESET_GROUP]
    return kept


def _run(
    cfg: DictConfig,
    rd: RunDir,
    job: JobInfo,
    on_eval: Callable[[int, Mapping[str, Any]], None] | None,
    prepare: Callable[[Agent, LifelongProtocol], Agent] | None = None,
) -> float:
    saved = rd.load_config()
    cfg, checkpoint = resume.resolve(cfg, rd, job.overrides)
    try:
        typed = validate(cfg)
    except ConfigError as exc:
        if checkpoint is None:
            raise
        raise RunDirError(f"cannot resume {rd}: {exc}") from exc  # its record stays as it was
    top, env_cfg, protocol_cfg = typed.top, typed.env, typed.protocol
    if checkpoint is None or any(
        OmegaConf.select(cfg, k) != OmegaConf.select(saved, k) for k in resume.RESUMABLE_OVERRIDES
    ):
        _save_config(rd, cfg)
    record = _record_job(rd, cfg, job, resumed=checkpoint is not None)
    rd.clear_error()
    rd.remove_stale_temporaries()

    seed_everything(top.seed, top.torch_threads)
    train_env = make_env(env_cfg)
    writer: MetricWriter | None = None
    failed = True
    try:
        train_env.reset(seed=top.seed)  # a seeded world even for agents that reset without a seed
        try:
            agent: Agent = instantiate_checked(cfg.agent, "agent", env=train_env)
        except ConfigError as exc:
            if checkpoint is None:
                raise
            # the saved config no longer builds its agent (edited?): the record stays as it was
            raise RunDirError(f"cannot resume {rd}: config.yaml: {exc}") from exc
        config = redact(cast(dict[str, Any], OmegaConf.to_container(cfg, resolve=True)))
        context = RunContext(
            run_dir=rd.path,
            config=config,
            run_id=record.run_id,
            name=record.name,
            group=record.group,
            resumed=checkpoint is not None,
            choices=dict(record.choices),
        )
        writer = MetricWriter(build_sinks(cfg, context), run_dir=rd)
        core = train_env.unwrapped
        assert isinstance(core, RecSimVectorEnv)

        def make_eval_env() -> RecSimVectorEnv:
            return RecSimVectorEnv(
                num_envs=protocol_cfg.eval_episodes, world=core.world, **core.config.to_dict()
            )

        try:
            parts = build_parts(cfg.protocol.get("parts"), protocol_cfg, make_eval_env)
        except ConfigError as exc:
            if checkpoint is None:
                raise
            raise RunDirError(f"cannot resume {rd}: config.yaml: {exc}") from exc
        protocol = LifelongProtocol(
            train_env, make_eval_env, writer, protocol_cfg, rd, on_eval=on_eval, parts=parts
        )
        if checkpoint is not None:
            agent = resume.restore(
                protocol,
                rd,
                checkpoint,
                type(agent),
                template=agent,
                trust_checkpoints=top.trust_checkpoints,
            )
        if prepare is not None:
            agent = prepare(agent, protocol)
        log.info(
            "run dir %s | agent %s | env %s x%d | %d user-steps",
            rd,
            cfg.agent._target_,
            env_cfg.id,
            env_cfg.num_envs,
            protocol_cfg.total_steps,
        )
        finished_before = None  # a completed run resumed without more steps: not trained again
        if checkpoint is not None and protocol.completed:
            finished_before = rd.state().summary
        else:
            # summary.json is readable from the start (status "running"), updated at checkpoints
            writer.write_summary(protocol.summary(status=RUNNING), sinks=False)
        start = time.perf_counter()
        with (
            console.progress(top.progress and not job.multirun, protocol),
            console.stop_on_signals(protocol),
        ):
            summary = protocol.run(agent)
        summary["wall_time_s"] = time.perf_counter() - start
        summary["run_dir"] = str(rd)
        if finished_before is not None and "wall_time_s" in finished_before:
            summary["wall_time_s"] = finished_before["wall_time_s"]  # the training's, kept
        writer.write_summary(summary)
        if job.multirun:
            log.info(
                "done: online/reward=%.4g eval/return=%.4g (%s)",
                summary["online/reward"],
                summary["eval/return"],
                rd,
            )
        else:
            console.print_summary(summary, rd.path)
        value = summary.get(top.optimize_metric, math.nan)
        failed = False
        return float(value) if value is not None else math.nan
    finally:
        try:
            if writer is not None:
                writer.close()
            train_env.close()
        except Exception:
            if not failed:
                raise
            # the error in flight is the one to report (e.g. a full disk: closing fails again)
            log.exception("closing the run's sinks after the failure failed too")


def preload(cfg: DictConfig) -> None:
    """Import what a job of ``cfg`` needs: torch, the simulator, the agent's and sinks' modules.

    Called before a job is forked (:mod:`experiments.run.isolation`), so that every child starts
    with them loaded (shared copy-on-write) instead of importing them again. Import errors are left
    for the job itself to report.
    """
    import importlib

    import torch  # noqa: F401

    import recsim_env  # noqa: F401

    sinks = (cfg.get("logger") or {}).get("sinks") or {}
    targets = [OmegaConf.select(cfg, "agent._target_")]
    targets += [OmegaConf.select(s, "_target_") for s in sinks.values() if s is not None]
    for target in targets:
        if isinstance(target, str) and "." in target:
            try:
                importlib.import_module(target.rpartition(".")[0])
            except Exception:
                continue


def seed_everything(seed: int, torch_threads: int) -> None:
    """Seed the global RNGs (some libraries, e.g. SB3, draw from them) and set torch's threads."""
    import torch

    random.seed(seed)
    np.random.seed(seed)  # noqa: NPY002 — SB3 draws from the global numpy RNG
    torch.manual_seed(seed)
    torch.set_num_threads(torch_threads)


def make_env(env_cfg: EnvConfig) -> gymnasium.vector.VectorEnv:
    """The training env (``gymnasium.make_vec`` of a registered recsim id)."""
    import recsim_env  # noqa: F401 — registers the ids

    try:
        return gymnasium.make_vec(
            env_cfg.id,
            num_envs=env_cfg.num_envs,
            autoreset_mode=env_cfg.autoreset_mode,  # the runner's default: same_step
            **env_cfg.make_kwargs(),
        )
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"invalid env config for {env_cfg.id} (env.kwargs): {exc}") from exc


def build_sinks(cfg: DictConfig, context: RunContext) -> list[MetricSink]:
    """The metric sinks of ``logger.sinks``; one whose package is missing is skipped (a warning)."""
    from hydra.utils import get_class

    sinks = []
    for name, sink_cfg in (cfg.logger.get("sinks") or {}).items():
        if sink_cfg is None:
            continue
        try:
            get_class(sink_cfg._target_)
        except Exception as exc:  # an optional sink (e.g. W&B) whose module is not installed
            log.warning(
                "metric sink %r (%s) is not available, skipping it: %s",
                name,
                sink_cfg._target_,
                exc,
            )
            continue
        try:
            sinks.append(instantiate_checked(sink_cfg, f"logger.sinks.{name}", context=context))
        except ImportError as exc:  # e.g. the W&B sink without wandb installed
            log.warning("metric sink %r needs a missing package, skipping it: %s", name, exc)
    return sinks
