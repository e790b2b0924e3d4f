"""The Optuna side of ``recsim-tune``: storage, the trial-seeded sampler, one trial = one run,
the study with its setup checks, and the report of its trials."""

from __future__ import annotations

import json
import logging
import math
import shlex
from collections.abc import Mapping, Sequence
from contextlib import contextmanager, redirect_stdout
from pathlib import Path
from typing import Any

import numpy as np
from omegaconf import DictConfig

from experiments.analysis.schema import optimization_direction, summary_metric_names
from experiments.run.config import ConfigError, validate
from experiments.run.job import run
from experiments.run.overrides import compose_config as _compose
from experiments.run.protocol import RunInterrupted
from experiments.run.rundir import PRUNED, RunDir, override_key
from experiments.tune.space import SearchSpace, _override_value

log = logging.getLogger("experiments.tune")


# ---------------------------------------------------------------------------------------- optuna
def make_storage(storage: str | Path) -> Any:
    """An RDB URL (``sqlite:///...``, ``postgresql://...``) as it is; anything else is a journal
    file (created with its parent dirs), shared by every process that names it."""
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    text = str(storage)
    if "://" in text:
        return text
    path = Path(text).expanduser()
    path.parent.mkdir(parents=True, exist_ok=True)
    return JournalStorage(JournalFileBackend(str(path)))


def make_sampler(seed: int, n_startup_trials: int) -> Any:
    """TPE whose random state, at each trial, is derived from ``(seed, trial.number)``."""
    from optuna.samplers import TPESampler

    class TrialSeededTPESampler(TPESampler):
        def before_trial(self, study: Any, trial: Any) -> None:
            trial_seed = int(np.random.SeedSequence([seed, trial.number]).generate_state(1)[0])
            # TPESampler keeps its random states in `_rng` (TPE) and `_random_sampler` (startup);
            # without them (another Optuna) the sampler stays seeded once per process.
            for rng_owner in (self, getattr(self, "_random_sampler", None)):
                lazy = getattr(rng_owner, "_rng", None)
                if lazy is not None and hasattr(lazy, "rng"):
                    lazy.rng.seed(trial_seed)
            super().before_trial(study, trial)

    return TrialSeededTPESampler(seed=seed, n_startup_trials=n_startup_trials)


class TrialFailed(Exception):
    """A trial's run raised: the trial is recorded as FAIL and the study goes on."""


# ---------------------------------------------------------------------------------------- trials
def compose_config(overrides: Sequence[str]) -> tuple[DictConfig, dict[str, str]]:
    """Compose ``conf/config.yaml`` with ``overrides``; returns (config, group choices)."""
    return _compose(overrides, job_name="tune")


def train_command(overrides: Sequence[str]) -> str:
    return shlex.join(["recsim-train", *overrides])


@contextmanager
def _log_to(path: Path):
    """``train.log`` in the trial dir, as Hydra writes it for ``recsim-train``."""
    handler = logging.FileHandler(path)
    handler.setFormatter(logging.Formatter("[%(asctime)s][%(name)s][%(levelname)s] - %(message)s"))
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        yield
    finally:
        root.removeHandler(handler)
        handler.close()


def _mark_pruned(rd: RunDir, summary: Mapping[str, Any] | None, step: int, reason: str) -> None:
    """The runner recorded the TrialPruned exception as a failure; it is not one."""
    fields = {k: v for k, v in (summary or {}).items() if k != "status"}
    rd.set_status(PRUNED, **fields, pruned_at_step=step, pruned=reason)


class Objective:
    """One trial = one in-process ``recsim-train`` run with the trial's overrides."""

    def __init__(
        self,
        space: SearchSpace,
        fixed: Sequence[str],
        metric: str,
        tune_dir: Path,
        prune: bool = True,
    ) -> None:
        self.space = space
        self.fixed = list(fixed)
        self.metric = metric
        self.tune_dir = Path(tune_dir)
        self.prune = prune

    def trial_overrides(self, values: Mapping[str, Any]) -> list[str]:
        return [*self.fixed, *(f"{k}={_override_value(v)}" for k, v in values.items())]

    def __call__(self, trial: Any) -> float:
        import optuna

        values = {name: param.suggest(trial) for name, param in self.space.params.items()}
        overrides = self.trial_overrides(values)
        rd = RunDir(self.tune_dir / f"trial_{trial.number:04d}")
        trial.set_user_attr("overrides", overrides)
        trial.set_user_attr("command", train_command(overrides))
        trial.set_user_attr("run_dir", str(rd))
        print(f"[trial {trial.number}] {train_command(overrides)}", flush=True)

        latest: dict[str, Any] = {}

        def on_eval(step: int, summary: Mapping[str, Any]) -> None:
            latest.clear()
            latest.update(summary, step=step)
            value = summary.get(self.metric)
            if value is None or not math.isfinite(float(value)):
                return
            trial.report(float(value), step)
            final = step >= int(summary.get("total_steps", math.inf))
            if self.prune and not final and trial.should_prune():
                raise optuna.TrialPruned(f"at step {step}: {self.metric}={float(value):.6g}")

        try:
            cfg, choices = compose_config([*overrides, "progress=false"])
            rd.create()
            # the runner's summary table goes to the trial's stdout.txt, not between the trials
            with (
                _log_to(rd.log_path),
                open(rd.stdout_path, "w") as out,
                redirect_stdout(out),
            ):
                value = run(
                    cfg,
                    run_dir=rd.path,
                    multirun=False,
                    overrides=overrides,
                    choices=choices,
                    on_eval=on_eval,
                )
        except optuna.TrialPruned as exc:
            step = int(latest.get("step", -1))
            trial.set_user_attr("pruned_at_step", step)
            _mark_pruned(rd, {k: v for k, v in latest.items() if k != "step"}, step, str(exc))
            print(f"[trial {trial.number}] pruned {exc}", flush=True)
            raise
        except (RunInterrupted, KeyboardInterrupt):
            raise  # stops the study (the trial is recorded as FAIL)
        except Exception as exc:
            message = f"{type(exc).__name__}: {exc}"
            trial.set_user_attr("error", message)
            print(f"[trial {trial.number}] failed: {message}", flush=True)
            raise TrialFailed(message) from exc
        print(f"[trial {trial.number}] {self.metric}={value:.6g} ({rd})", flush=True)
        return value


# ---------------------------------------------------------------------------------------- study
def resolve_setup(
    space: SearchSpace, cli_overrides: Sequence[str], metric: str | None
) -> tuple[SearchSpace, list[str], str]:
    """Merge the space and the command line; check everything before any trial runs.

    Returns the effective space (params fixed on the command line taken out), the fixed overrides
    of every trial (ending with ``optimize_metric=<metric>``) and the metric.
    """
    cli = list(cli_overrides)
    cli_keys = {override_key(o) for o in cli}
    fixed = [o for o in space.overrides if override_key(o) not in cli_keys] + cli
    params = {k: p for k, p in space.params.items() if k not in cli_keys}
    for key in sorted(set(space.params) - set(params)):
        log.info("%s is fixed on the command line: not searched", key)
    if not params:
        raise ConfigError("nothing to search: the search space has no params left")
    fixed_keys = {override_key(o) for o in fixed}
    if metric is None:
        if "optimize_metric" in fixed_keys:
            base, _ = compose_config(fixed)
            metric = str(base.optimize_metric)
        else:
            metric = space.metric or str(compose_config(fixed)[0].optimize_metric)
    if metric not in summary_metric_names():
        raise ConfigError(f"invalid metric {metric!r}: expected one of {summary_metric_names()}")
    fixed = [o for o in fixed if override_key(o) != "optimize_metric"]
    fixed.append(f"optimize_metric={metric}")
    space = SearchSpace(params, tuple(space.overrides), metric, space.direction, space.source)
    # every param at its extreme values must compose and validate (a misspelled key fails here)
    for i in range(max(len(p.bounds()) for p in params.values())):
        values = {k: p.bounds()[min(i, len(p.bounds()) - 1)] for k, p in params.items()}
        trial_overrides = [*fixed, *(f"{k}={_override_value(v)}" for k, v in values.items())]
        try:
            cfg = compose_config(trial_overrides)[0]
        except Exception as exc:  # Hydra's own errors: unknown key, bad group option, syntax
            raise ConfigError(
                f"the search space does not compose with the config ({' '.join(trial_overrides)}): "
                f"{exc}"
            ) from exc
        validate(cfg)
    return space, fixed, metric


def tune(
    space: SearchSpace,
    overrides: Sequence[str] = (),
    *,
    study_name: str,
    storage: str | Path,
    n_trials: int,
    tune_dir: str | Path,
    metric: str | None = None,
    direction: str | None = None,
    seed: int = 0,
    n_startup_trials: int = 10,
    prune: bool = True,
    prune_startup_trials: int = 5,
    prune_warmup_steps: int = 0,
    timeout: float | None = None,
) -> Any:
    """Run ``n_trials`` trials of the study (created or joined); returns the ``optuna.Study``."""
    import optuna

    space, fixed, metric = resolve_setup(space, overrides, metric)
    direction = direction or space.direction or optimization_direction(metric)
    pruner = (
        optuna.pruners.MedianPruner(
            n_startup_trials=prune_startup_trials, n_warmup_steps=prune_warmup_steps
        )
        if prune
        else optuna.pruners.NopPruner()
    )
    study = optuna.create_study(
        storage=make_storage(storage),
        study_name=study_name,
        sampler=make_sampler(seed, n_startup_trials),
        pruner=pruner,
        direction=direction,
        load_if_exists=True,
    )
    if study.direction.name.lower() != direction:
        raise ConfigError(
            f"study {study_name!r} in {storage} was created to {study.direction.name.lower()}, "
            f"not {direction}: choose another --study-name"
        )
    setup = {"metric": metric, "fixed_overrides": fixed, "space": _space_record(space)}
    for key, value in setup.items():
        stored = study.user_attrs.get(key)
        if stored is None:
            study.set_user_attr(key, value)
        elif stored != value:
            raise ConfigError(
                f"study {study_name!r} in {storage} was created with {key}={stored!r}, this run "
                f"has {value!r}: its trials would not be comparable; choose another --study-name"
            )
    log.info(
        "study %s (%s %s) in %s: %d trial(s)", study_name, direction, metric, storage, n_trials
    )
    objective = Objective(space, fixed, metric, Path(tune_dir), prune=prune)
    study.optimize(objective, n_trials=n_trials, timeout=timeout, catch=(TrialFailed,))
    return study


def _space_record(space: SearchSpace) -> dict[str, Any]:
    """The space as stored in the study (JSON)."""
    record = {}
    for name, p in space.params.items():
        entry: dict[str, Any] = {"type": p.type}
        if p.type == "categorical":
            entry["choices"] = list(p.choices)
        else:
            entry.update(low=p.low, high=p.high, log=p.log, step=p.step)
        record[name] = entry
    return record


def best_record(study: Any) -> dict[str, Any] | None:
    """The best complete trial: number, value, params, overrides, command, run dir."""
    from optuna.trial import TrialState

    if not study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
        return None
    best = study.best_trial
    return {
        "study": study.study_name,
        "metric": study.user_attrs.get("metric"),
        "direction": study.direction.name.lower(),
        "number": best.number,
        "value": best.value,
        "params": best.params,
        "overrides": best.user_attrs.get("overrides", []),
        "command": best.user_attrs.get("command", ""),
        "run_dir": best.user_attrs.get("run_dir", ""),
    }


def report(study: Any) -> str:
    """A plain-text table of every trial in the study, then the best one and how to rerun it."""
    trials = study.get_trials(deepcopy=False)
    metric = study.user_attrs.get("metric", "value")
    names = sorted({k for t in trials for k in t.params})
    lines = [f"study {study.study_name}: {len(trials)} trial(s), {metric} ({study.direction.name})"]
    header = ["#", "state", metric, *names]
    rows = [header]
    for t in trials:
        value = t.value if t.value is not None else None
        if value is None and t.intermediate_values:
            value = t.intermediate_values[max(t.intermediate_values)]
        rows.append(
            [
                str(t.number),
                t.state.name
                + (f"@{t.user_attrs['pruned_at_step']}" if t.state.name == "PRUNED" else ""),
                "-" if value is None else f"{value:.6g}",
                *(_short(t.params.get(n)) for n in names),
            ]
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    lines += ["  " + "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in rows]
    best = best_record(study)
    if best is None:
        lines.append("no trial completed")
    else:
        lines += [
            f"best trial: #{best['number']}  {metric}={best['value']:.6g}",
            f"  params: {json.dumps(best['params'])}",
            f"  run dir: {best['run_dir']}",
            f"  reproduce: {best['command']}",
        ]
    return "\n".join(lines)


def _short(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)
