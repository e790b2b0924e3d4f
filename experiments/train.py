"""``recsim-train``: one lifelong run (or a Hydra multirun of them) from the config in ``conf/``.

    recsim-train agent=linucb env=abrupt seed=3 protocol.total_steps=50000
    recsim-train -m agent=dqn,sb3_dqn seed=0,1,2 hydra/launcher=joblib
    recsim-train resume=outputs/2025-01-01/12-00-00        # continue an interrupted run

Each run writes into its Hydra output dir: ``config.yaml`` (resolved), ``metrics.csv`` (long format
``step,key,value``), ``summary.json`` (flat metrics + ``status``), ``checkpoints/``, ``train.log``
and, if the run failed, ``error.txt``. The task function returns ``summary[optimize_metric]`` so that
sweepers (Optuna, Nevergrad, ...) can optimise it.

Failures: in a single run the exception propagates (non-zero exit, full message). In a multirun a
failing job writes ``error.txt`` and a ``summary.json`` with ``status: failed``, logs the error and
returns NaN, so that the other jobs still run; ``experiments.hydra_callbacks.FailureReport`` lists
the failed jobs at the end of the sweep.

Resume: ``resume=true`` continues the run in the current output dir (pass the same
``hydra.run.dir``; in a multirun, the same ``hydra.sweep.dir`` resumes every job), ``resume=<dir>``
continues the run in ``<dir>``. The run continues with its saved ``config.yaml`` (a
``protocol.total_steps=`` on the command line may extend it); other command-line overrides are
ignored with a warning. A run that was already completed is not trained again.
"""

from __future__ import annotations

import json
import logging
import math
import os
import random
import signal
import sys
import threading
import time
import traceback
import uuid
from collections.abc import Callable, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import hydra
import numpy as np
from omegaconf import DictConfig, OmegaConf

from experiments.config_validation import (
    ConfigError,
    EnvConfig,
    explain_unknown_override,
    instantiate_checked,
    validate,
)
from experiments.metrics import MetricWriter, RunContext, write_json_atomic
from experiments.protocol import LifelongProtocol, RunInterrupted, latest_checkpoint

log = logging.getLogger("experiments.train")

CONF_DIR = Path(__file__).resolve().parent.parent / "conf"
CONFIG_FILE = "config.yaml"
SUMMARY_FILE = "summary.json"
ERROR_FILE = "error.txt"
CHECKPOINT_DIR = "checkpoints"
RESUMABLE_OVERRIDES = ("protocol.total_steps",)


# ---------------------------------------------------------------------------------------- hydra glue
def _hydra_runtime() -> dict[str, Any]:
    """Output dir, mode, choices and overrides of the current Hydra job ({} outside Hydra)."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    if not HydraConfig.initialized():
        return {}
    hc = HydraConfig.get()
    return {
        "output_dir": Path(hc.runtime.output_dir),
        "multirun": hc.mode == RunMode.MULTIRUN,
        "choices": dict(hc.runtime.choices),
        "overrides": list(hc.overrides.task),
        "sweep_dir": Path(hc.sweep.dir) if hc.mode == RunMode.MULTIRUN else None,
        "job_num": hc.job.get("num"),
    }


# ---------------------------------------------------------------------------------------- the run
def run(
    cfg: DictConfig,
    run_dir: str | Path | None = None,
    *,
    multirun: bool | None = None,
    overrides: list[str] | None = None,
    on_eval: Callable[[int, Mapping[str, Any]], None] | None = None,
) -> float:
    """Run one job; return ``summary[cfg.optimize_metric]`` (NaN for a failed multirun job).

    Outside ``@hydra.main`` (e.g. with the compose API) pass ``run_dir``; ``multirun`` and
    ``overrides`` default to what Hydra says about the current job. ``on_eval(step, summary)`` is
    called after every evaluation (see :class:`LifelongProtocol`; ``recsim-tune`` prunes there).
    """
    hydra_rt = _hydra_runtime()
    run_dir = Path(run_dir) if run_dir is not None else hydra_rt.get("output_dir")
    if run_dir is None:
        raise ValueError("run(cfg) outside a Hydra app needs run_dir")
    run_dir.mkdir(parents=True, exist_ok=True)
    multirun = hydra_rt.get("multirun", False) if multirun is None else multirun
    overrides = hydra_rt.get("overrides", []) if overrides is None else overrides
    try:
        return _run(cfg, run_dir, hydra_rt, overrides, on_eval)
    except RunInterrupted as exc:
        log.warning("%s. Resume with: recsim-train resume=%s", exc, run_dir)
        if multirun:
            return math.nan
        raise
    except BaseException as exc:  # KeyboardInterrupt too: the job record must say what happened
        if not isinstance(exc, RunDirInUse):  # never overwrite another run's record
            _record_failure(run_dir, exc)
        if multirun and isinstance(exc, Exception):
            log.error("job failed (%s): %s: %s", run_dir, type(exc).__name__, exc)
            return math.nan
        raise


class RunDirInUse(ConfigError):
    """The output dir already holds a run and ``resume`` was not asked for."""


def _record_failure(run_dir: Path, exc: BaseException) -> None:
    (run_dir / ERROR_FILE).write_text("".join(traceback.format_exception(exc)))
    summary_path = run_dir / SUMMARY_FILE
    summary: dict[str, Any] = {}
    if summary_path.exists():  # keep the partial metrics of a run that failed mid-way
        try:
            summary = json.loads(summary_path.read_text())
        except ValueError:
            summary = {}
    summary.update({"status": "failed", "error": f"{type(exc).__name__}: {exc}"})
    write_json_atomic(summary_path, summary)


def _resolve_resume(
    cfg: DictConfig, run_dir: Path, overrides: list[str]
) -> tuple[DictConfig, Path | None]:
    """Decide the config and the checkpoint of this run (see module doc)."""
    resume = cfg.get("resume", False)
    if isinstance(resume, str) and resume.lower() in ("true", "false"):
        resume = resume.lower() == "true"
    checkpoint = latest_checkpoint(run_dir / CHECKPOINT_DIR)
    if not resume:
        if checkpoint is not None:
            raise RunDirInUse(
                f"{run_dir} already holds a run (checkpoint {checkpoint.name}); pass resume=true to "
                "continue it, or choose another output dir (hydra.run.dir=...)"
            )
        return cfg, None
    if isinstance(resume, str) and Path(resume).resolve() != run_dir.resolve():
        raise ConfigError(
            f"resume={resume} but this job writes to {run_dir}: run `recsim-train resume={resume}` "
            f"(the console script routes the output dir) or add hydra.run.dir={resume}"
        )
    saved_path = run_dir / CONFIG_FILE
    if checkpoint is None or not saved_path.exists():
        log.warning("resume: nothing to resume in %s; starting a fresh run", run_dir)
        return cfg, None
    saved = OmegaConf.load(saved_path)
    given = {o.split("=", 1)[0].lstrip("+~"): o for o in overrides}
    ignored = [
        o
        for k, o in given.items()
        if k != "resume" and k not in RESUMABLE_OVERRIDES and not k.startswith("hydra")
    ]
    if ignored:
        log.warning(
            "resume: the run continues with its saved config; ignoring overrides %s", ignored
        )
    for key in RESUMABLE_OVERRIDES:
        if key in given:
            OmegaConf.update(saved, key, OmegaConf.select(cfg, key), merge=False)
    saved.resume = True
    return saved, checkpoint


def _run(
    cfg: DictConfig,
    run_dir: Path,
    hydra_rt: Mapping[str, Any],
    overrides: list[str],
    on_eval: Callable[[int, Mapping[str, Any]], None] | None = None,
) -> float:
    import recsim_env

    cfg, checkpoint = _resolve_resume(cfg, run_dir, overrides)
    typed = validate(cfg)
    top, env_cfg, protocol_cfg = typed["top"], typed["env"], typed["protocol"]
    if (
        checkpoint is None
        or not (run_dir / CONFIG_FILE).exists()
        or any(k in overrides_keys(overrides) for k in RESUMABLE_OVERRIDES)
    ):
        OmegaConf.save(cfg, run_dir / CONFIG_FILE, resolve=True)
    (run_dir / ERROR_FILE).unlink(missing_ok=True)
    _remove_stale_temporaries(run_dir)

    seed_everything(top.seed, top.torch_threads)
    env_kwargs = env_cfg.make_kwargs()
    train_env = _make_env(env_cfg, env_kwargs)
    writer: MetricWriter | None = None
    try:
        core = train_env.unwrapped
        train_env.reset(seed=top.seed)  # a seeded world even for agents that reset without a seed
        agent = instantiate_checked(cfg.agent, "agent", env=train_env)
        context = RunContext(
            run_dir=run_dir,
            config=OmegaConf.to_container(cfg, resolve=True),
            run_id=_run_id(run_dir),
            name=_run_name(cfg, hydra_rt),
            group=hydra_rt["sweep_dir"].name if hydra_rt.get("sweep_dir") else "",
            resumed=checkpoint is not None,
        )
        writer = MetricWriter(_build_sinks(cfg, context), summary_path=run_dir / SUMMARY_FILE)

        def make_eval_env() -> Any:
            return recsim_env.RecSimVectorEnv(
                num_envs=protocol_cfg.eval_episodes, world=core.world, **core.config.to_dict()
            )

        protocol = LifelongProtocol(
            train_env,
            make_eval_env,
            writer,
            protocol_cfg,
            checkpoint_dir=run_dir / CHECKPOINT_DIR,
            on_eval=on_eval,
        )
        if checkpoint is not None:
            log.info("resuming from %s", checkpoint)
            agent = protocol.restore(checkpoint, type(agent))
        log.info(
            "run dir %s | agent %s | env %s x%d | %d user-steps",
            run_dir,
            cfg.agent._target_,
            env_cfg.id,
            env_cfg.num_envs,
            protocol_cfg.total_steps,
        )
        # summary.json is readable from the start (status "running"), updated at every checkpoint
        writer.write_summary(protocol.summary(status="running"), sinks=False)
        start = time.perf_counter()
        with (
            _progress(top.progress and not hydra_rt.get("multirun", False), protocol),
            _stop_on_signals(protocol),
        ):
            summary = protocol.run(agent)
        summary["wall_time_s"] = time.perf_counter() - start
        summary["run_dir"] = str(run_dir)
        writer.write_summary(summary)
        if hydra_rt.get("multirun", False):
            log.info(
                "done: online/reward=%.4g eval/return=%.4g (%s)",
                summary["online/reward"],
                summary["eval/return"],
                run_dir,
            )
        else:
            _print_summary(summary, run_dir)
        value = summary.get(top.optimize_metric, math.nan)
        return float(value) if value is not None else math.nan
    finally:
        if writer is not None:
            writer.close()
        train_env.close()


def _remove_stale_temporaries(run_dir: Path) -> None:
    """Half-written files of a killed earlier attempt (they were never renamed into place)."""
    import shutil

    for tmp in run_dir.glob(".*.tmp"):
        tmp.unlink(missing_ok=True)
    for tmp in (run_dir / CHECKPOINT_DIR).glob(".tmp-*"):
        shutil.rmtree(tmp, ignore_errors=True)


def overrides_keys(overrides: list[str]) -> set[str]:
    return {o.split("=", 1)[0].lstrip("+~") for o in overrides}


def seed_everything(seed: int, torch_threads: int) -> None:
    """Seed the global RNGs (some libraries, e.g. SB3, draw from them) and set torch's threads."""
    import torch

    random.seed(seed)
    np.random.seed(seed)  # noqa: NPY002 — SB3 draws from the global numpy RNG
    torch.manual_seed(seed)
    torch.set_num_threads(torch_threads)


def _make_env(env_cfg: EnvConfig, env_kwargs: dict[str, Any]) -> Any:
    import gymnasium

    import recsim_env  # noqa: F401 — registers the ids

    try:
        return gymnasium.make_vec(env_cfg.id, num_envs=env_cfg.num_envs, **env_kwargs)
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"invalid env config for {env_cfg.id} (env.kwargs): {exc}") from exc


def _build_sinks(cfg: DictConfig, context: RunContext) -> list[Any]:
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


def _run_id(run_dir: Path) -> str:
    """A short id that stays the same when the run is resumed (stored in ``run_dir/.run_id``)."""
    path = run_dir / ".run_id"
    if path.exists():
        return path.read_text().strip()
    run_id = uuid.uuid4().hex[:12]
    path.write_text(run_id + "\n")
    return run_id


def _run_name(cfg: DictConfig, hydra_rt: Mapping[str, Any]) -> str:
    choices = hydra_rt.get("choices", {})
    agent = choices.get("agent") or str(cfg.agent._target_).rsplit(".", 1)[-1]
    env = choices.get("env") or str(cfg.env.id).rsplit("/", 1)[-1]
    name = f"{agent}-{env}-s{cfg.seed}"
    if hydra_rt.get("job_num") is not None and hydra_rt.get("multirun"):
        name = f"{hydra_rt['job_num']}-{name}"
    return name


# ---------------------------------------------------------------------------------------- console
@contextmanager
def _progress(enabled: bool, protocol: LifelongProtocol):
    """A rich progress bar (steps, steps/s, latest windowed reward) on an interactive terminal."""
    from rich.console import Console

    console = Console(stderr=True)
    if not enabled or not console.is_terminal:
        yield
        return
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    progress = Progress(
        TextColumn("[bold]train"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[sps]} steps/s"),
        TextColumn("reward {task.fields[reward]}"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=False,
    )
    total = protocol.settings.total_steps
    task = progress.add_task(
        "train", total=total, completed=protocol.num_timesteps, sps="-", reward="-"
    )
    last = {"t": time.perf_counter(), "step": protocol.num_timesteps}

    def update(step: int, window: Mapping[str, float]) -> None:
        now = time.perf_counter()
        if now - last["t"] < 0.2 and step < total:
            return
        sps = (step - last["step"]) / max(now - last["t"], 1e-9)
        last.update(t=now, step=step)
        reward = window.get("online/reward")
        progress.update(
            task,
            completed=step,
            sps=f"{sps:,.0f}",
            reward="-" if reward is None else f"{reward:.3f}",
        )

    protocol.on_progress = update
    with progress:
        yield
    protocol.on_progress = None


@contextmanager
def _stop_on_signals(protocol: LifelongProtocol):
    """SIGTERM / first SIGINT: checkpoint at the next step and stop (preemption-friendly)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {}

    def handler(signum: int, frame: Any) -> None:
        name = signal.Signals(signum).name
        protocol.stop_requested = name
        signal.signal(signum, previous[signum])  # a second signal acts as usual
        log.warning("%s received: checkpointing and stopping", name)

    for sig in (signal.SIGTERM, signal.SIGINT):
        previous[sig] = signal.signal(sig, handler)
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


SUMMARY_TABLE_KEYS = (
    "online/reward",
    "online/ctr",
    "online/regret",
    "online/session_length",
    "online/cumulative_regret",
    "online/drift_events",
    "online/reward_final",
    "eval/return",
    "eval/ctr",
    "eval/regret",
    "eval/ndcg@k",
    "lifelong/recovery_time_mean",
    "lifelong/forgetting_mean",
    "time/sps",
)


def _print_summary(summary: Mapping[str, Any], run_dir: Path) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"summary ({summary.get('num_timesteps')} user-steps)")
    table.add_column("metric")
    table.add_column("value", justify="right")
    for key in SUMMARY_TABLE_KEYS:
        value = summary.get(key)
        if isinstance(value, int | float) and not (isinstance(value, float) and math.isnan(value)):
            table.add_row(key, f"{value:,.4g}")
    console = Console()
    console.print(table)
    console.print(f"results in [bold]{run_dir}[/bold]")


# ---------------------------------------------------------------------------------------- entry
# The conf dir by absolute path: "../conf" would be looked up as a Python package ("conf") when
# this module is imported by the console script rather than run as a file.
@hydra.main(version_base="1.3", config_path=str(CONF_DIR), config_name="config")
def _hydra_main(cfg: DictConfig) -> float:
    try:
        return run(cfg)
    except RunInterrupted:
        sys.exit(130)  # SystemExit passes through Hydra: the shell sees "interrupted", not a crash
    except ConfigError as exc:  # a clear message, not a traceback (error.txt has the traceback)
        print(f"recsim-train: {exc}", file=sys.stderr)
        sys.exit(2)


def route_resume_argv(argv: list[str]) -> list[str]:
    """``resume=<dir>`` → also ``hydra.run.dir=<dir>`` so that the run continues in its own dir.

    Hydra picks the output dir before the task function runs; without this, a resumed run would get
    a fresh timestamped dir. Also keeps Hydra from overwriting the run's ``.hydra/`` files.
    """
    args = list(argv)
    resume = [a.split("=", 1)[1] for a in args[1:] if a.startswith("resume=")]
    given = {a.split("=", 1)[0] for a in args[1:] if "=" in a}
    if (
        not resume
        or resume[-1].lower() in ("true", "false")
        or "-m" in args
        or "--multirun" in args
    ):
        return args
    if "hydra.run.dir" not in given:
        args.append(f"hydra.run.dir={resume[-1]}")
    if "hydra.output_subdir" not in given:
        args.append("hydra.output_subdir=null")
    return args


def main() -> None:
    """Console script ``recsim-train``."""
    sys.argv = route_resume_argv(sys.argv)
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    flags = {a for a in sys.argv[1:] if a.startswith("-")}
    overrides = [a for a in sys.argv[1:] if not a.startswith("-")]
    # only for the plain command line (flags like --config-name change what would be composed)
    message = (
        explain_unknown_override(CONF_DIR, "config", overrides)
        if flags <= {"-m", "--multirun"}
        else None
    )
    if message is not None:
        print(f"recsim-train: {message}", file=sys.stderr)
        sys.exit(2)
    _hydra_main()


if __name__ == "__main__":
    main()
