"""``recsim-tune``: Bayesian hyperparameter search over ``recsim-train`` runs, with Optuna.

    recsim-tune --space dqn --n-trials 40 env=abrupt protocol.total_steps=100000
    recsim-tune --space dqn --study-name dqn-abrupt --storage tune/dqn.journal --n-trials 20 &
    recsim-tune --space dqn --study-name dqn-abrupt --storage tune/dqn.journal --n-trials 20 &
    recsim-tune --space linucb --storage sqlite:///tune.db --metric online/regret

Each trial is one ``recsim-train`` run, composed with Hydra's compose API from the same ``conf/``:
the search space's fixed ``overrides``, then the command line's, then the trial's sampled values
(``agent.lr=0.00031``). It runs in process, in ``<tune dir>/trial_<number>`` with the usual outputs
(``config.yaml``, ``metrics.csv``, ``summary.json``, checkpoints, ``train.log``, and ``.hydra/``
with the overrides, so that ``recsim-compare <tune dir>`` reads the trials like a sweep). The trial's
override list is stored in the study (user attribute ``overrides``, with the ready-made ``command``):
``recsim-train <overrides>`` reproduces it exactly.

Search spaces are YAML files in ``conf/tune/`` (``--space dqn``) or anywhere (``--space my.yaml``)::

    overrides: [agent=dqn]                  # fixed overrides that come with the space
    metric: online/reward                   # optional: the summary.json key to optimise
    params:
      agent.lr: {type: float, low: 1.0e-5, high: 1.0e-2, log: true}
      agent.n_step: {type: int, low: 1, high: 5}           # also: step, log
      agent.dueling: {type: categorical, choices: [true, false]}

A key fixed on the command line (``agent.gamma=0.9``) is taken out of the search.

Sampling: TPE with a seed; each trial's random state is derived from (seed, trial number), so a
study is reproducible and parallel workers with the same seed do not propose the same points.
Pruning: the runner calls back after every periodic evaluation (``protocol.eval_every``); the trial
reports the metric so far (``trial.report``) and stops when the median rule says so
(``MedianPruner``: worse than the median of earlier trials at the same step). A pruned trial's
``summary.json`` says ``status: pruned``. A failing trial (any exception) is recorded as FAIL with
its error and the study goes on.

Storage: ``--storage`` is a journal file (``optuna.storages.JournalStorage``; processes on one
machine, or on several over a shared file system, append to it) or an RDB URL (``sqlite:///...``,
``postgresql://...``). Several ``recsim-tune`` processes with the same ``--study-name`` and
``--storage`` share one study (each runs ``--n-trials`` trials); a study remembers its metric and
fixed overrides and refuses to mix in trials of another setup.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import re
import shlex
import sys
from collections.abc import Mapping, Sequence
from contextlib import contextmanager, redirect_stdout
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from omegaconf import DictConfig, OmegaConf, open_dict

from experiments.config_validation import ConfigError, summary_metric_names, validate
from experiments.metrics import write_json_atomic
from experiments.train import CONF_DIR, ERROR_FILE, SUMMARY_FILE, run

log = logging.getLogger("experiments.tune")

SPACE_DIR = CONF_DIR / "tune"
PARAM_TYPES = ("float", "int", "categorical")
# metrics where lower is better (matched against the part after the "/")
MINIMIZE_WORDS = ("regret", "loss", "recovery_time", "forgetting")


# ---------------------------------------------------------------------------------------- space
@dataclass(frozen=True)
class Param:
    """One searched config key."""

    name: str
    type: str
    low: float | None = None
    high: float | None = None
    log: bool = False
    step: float | None = None
    choices: tuple[Any, ...] = ()

    def __post_init__(self) -> None:
        where = f"search space param {self.name!r}"
        if self.type not in PARAM_TYPES:
            raise ConfigError(f"{where}: type={self.type!r}, expected one of {list(PARAM_TYPES)}")
        if self.type == "categorical":
            if not self.choices:
                raise ConfigError(f"{where}: a categorical param needs a non-empty 'choices' list")
            return
        if self.low is None or self.high is None:
            raise ConfigError(f"{where}: a {self.type} param needs 'low' and 'high'")
        if not self.low < self.high:
            raise ConfigError(f"{where}: low={self.low} must be < high={self.high}")
        if self.log and self.low <= 0:
            raise ConfigError(f"{where}: log=true needs low > 0 (got {self.low})")
        if self.log and self.step is not None:
            raise ConfigError(f"{where}: 'step' and log=true cannot be combined")

    def suggest(self, trial: Any) -> Any:
        if self.type == "float":
            return trial.suggest_float(self.name, self.low, self.high, log=self.log, step=self.step)
        if self.type == "int":
            step = 1 if self.step is None else int(self.step)
            return trial.suggest_int(
                self.name, int(self.low), int(self.high), log=self.log, step=step
            )
        return trial.suggest_categorical(self.name, list(self.choices))

    def bounds(self) -> list[Any]:
        """The extreme values (for checking a space before running it)."""
        if self.type == "categorical":
            return list(self.choices)
        if self.type == "int":
            return [int(self.low), int(self.high)]
        return [float(self.low), float(self.high)]


@dataclass(frozen=True)
class SearchSpace:
    params: dict[str, Param]
    overrides: tuple[str, ...] = ()
    metric: str | None = None
    direction: str | None = None
    source: str = ""

    @classmethod
    def load(cls, space: str | Path) -> SearchSpace:
        """``space``: a name in ``conf/tune/`` or the path of a YAML file."""
        path = Path(space)
        if not path.suffix and not path.exists():
            path = SPACE_DIR / f"{space}.yaml"
        if not path.is_file():
            known = sorted(p.stem for p in SPACE_DIR.glob("*.yaml"))
            raise ConfigError(f"no search space {str(space)!r}: give a file or one of {known}")
        node = OmegaConf.to_container(OmegaConf.load(path), resolve=True)
        return cls.from_dict(node, source=str(path))

    @classmethod
    def from_dict(cls, node: Any, source: str = "") -> SearchSpace:
        if not isinstance(node, Mapping):
            raise ConfigError(f"search space {source}: expected a mapping")
        allowed = {"params", "overrides", "metric", "direction"}
        unknown = set(node) - allowed
        if unknown:
            raise ConfigError(
                f"search space {source}: unknown keys {sorted(unknown)}, allowed: {sorted(allowed)}"
            )
        params = {}
        for name, spec in (node.get("params") or {}).items():
            if not isinstance(spec, Mapping):
                raise ConfigError(f"search space param {name!r}: expected a mapping, got {spec!r}")
            spec = dict(spec)
            unknown = set(spec) - {"type", "low", "high", "log", "step", "choices"}
            if unknown:
                raise ConfigError(f"search space param {name!r}: unknown keys {sorted(unknown)}")
            kind = spec.get("type", "categorical" if "choices" in spec else "float")
            choices = tuple(
                c if c is None or isinstance(c, bool | int | float | str) else _override_value(c)
                for c in spec.get("choices") or ()
            )
            params[str(name)] = Param(
                name=str(name),
                type=str(kind),
                low=_number(name, "low", spec.get("low")),
                high=_number(name, "high", spec.get("high")),
                log=bool(spec.get("log", False)),
                step=_number(name, "step", spec.get("step")),
                choices=choices,
            )
        overrides = node.get("overrides") or []
        if isinstance(overrides, str) or not isinstance(overrides, list):
            raise ConfigError(f"search space {source}: 'overrides' must be a list of key=value")
        direction = node.get("direction")
        if direction not in (None, "maximize", "minimize"):
            raise ConfigError(f"search space {source}: direction={direction!r}")
        return cls(
            params=params,
            overrides=tuple(str(o) for o in overrides),
            metric=node.get("metric"),
            direction=direction,
            source=source,
        )


def _number(name: str, key: str, value: Any) -> float | None:
    if value is None:
        return None
    try:  # YAML 1.1 reads 1e-5 (no dot) as a string
        return float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"search space param {name!r}: {key}={value!r} is not a number") from None


def metric_direction(metric: str) -> str:
    """``minimize`` for regret, losses, recovery time and forgetting; ``maximize`` otherwise."""
    leaf = metric.rsplit("/", 1)[-1]
    return "minimize" if any(word in leaf for word in MINIMIZE_WORDS) else "maximize"


_PLAIN = re.compile(r"^[A-Za-z0-9_./:@+-]+$")


def _override_value(value: Any) -> str:
    """A value as Hydra's override grammar reads it back (floats round-trip exactly)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float | np.integer | np.floating):
        return repr(float(value)) if isinstance(value, float | np.floating) else str(int(value))
    if isinstance(value, list | tuple):
        return "[" + ",".join(_override_value(v) for v in value) + "]"
    if isinstance(value, Mapping):
        return "{" + ",".join(f"{k}:{_override_value(v)}" for k, v in value.items()) + "}"
    text = str(value)
    if _PLAIN.match(text) and _parses_back(text):
        return text
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _parses_back(text: str) -> bool:
    """Whether Hydra reads ``text`` unquoted as this very string (not ``true``, ``1``, ``null``)."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    try:
        return OverridesParser.create().parse_override(f"k={text}").value() == text
    except Exception:
        return False


def _override_key(override: str) -> str:
    return override.split("=", 1)[0].lstrip("+~")


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
def compose_config(overrides: Sequence[str]) -> tuple[DictConfig, dict[str, Any]]:
    """Compose ``conf/config.yaml`` with ``overrides``; returns (config, group choices)."""
    from hydra import compose, initialize_config_dir

    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3", job_name="tune"):
        cfg = compose("config", overrides=list(overrides), return_hydra_config=True)
    choices = {
        str(k): v
        for k, v in OmegaConf.to_container(cfg.hydra.runtime.choices).items()
        if not str(k).startswith("hydra/")
    }
    with open_dict(cfg):
        del cfg["hydra"]
    return cfg, choices


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


def _write_hydra_files(run_dir: Path, overrides: Sequence[str], choices: Mapping[str, Any]) -> None:
    """``.hydra/overrides.yaml`` and the group choices, where ``recsim-compare`` looks for them."""
    hydra_dir = run_dir / ".hydra"
    hydra_dir.mkdir(parents=True, exist_ok=True)
    OmegaConf.save(OmegaConf.create(list(overrides)), hydra_dir / "overrides.yaml")
    OmegaConf.save(
        OmegaConf.create({"hydra": {"runtime": {"choices": dict(choices)}}}),
        hydra_dir / "hydra.yaml",
    )


def _mark_pruned(run_dir: Path, summary: Mapping[str, Any] | None, step: int, reason: str) -> None:
    """The runner recorded the TrialPruned exception as a failure; it is not one."""
    (run_dir / ERROR_FILE).unlink(missing_ok=True)
    record = dict(summary or {})
    record.pop("error", None)
    record.update({"status": "pruned", "pruned_at_step": step, "pruned": reason})
    write_json_atomic(run_dir / SUMMARY_FILE, record)


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

        from experiments.protocol import RunInterrupted

        values = {name: param.suggest(trial) for name, param in self.space.params.items()}
        overrides = self.trial_overrides(values)
        run_dir = self.tune_dir / f"trial_{trial.number:04d}"
        trial.set_user_attr("overrides", overrides)
        trial.set_user_attr("command", train_command(overrides))
        trial.set_user_attr("run_dir", str(run_dir))
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
            run_dir.mkdir(parents=True, exist_ok=True)
            _write_hydra_files(run_dir, overrides, choices)
            # the runner's summary table goes to the trial's stdout.txt, not between the trials
            with (
                _log_to(run_dir / "train.log"),
                open(run_dir / "stdout.txt", "w") as out,
                redirect_stdout(out),
            ):
                value = run(
                    cfg, run_dir=run_dir, multirun=False, overrides=overrides, on_eval=on_eval
                )
        except optuna.TrialPruned as exc:
            step = int(latest.get("step", -1))
            trial.set_user_attr("pruned_at_step", step)
            _mark_pruned(run_dir, {k: v for k, v in latest.items() if k != "step"}, step, str(exc))
            print(f"[trial {trial.number}] pruned {exc}", flush=True)
            raise
        except (RunInterrupted, KeyboardInterrupt):
            raise  # stops the study (the trial is recorded as FAIL)
        except Exception as exc:
            message = f"{type(exc).__name__}: {exc}"
            trial.set_user_attr("error", message)
            print(f"[trial {trial.number}] failed: {message}", flush=True)
            raise TrialFailed(message) from exc
        print(f"[trial {trial.number}] {self.metric}={value:.6g} ({run_dir})", flush=True)
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
    cli_keys = {_override_key(o) for o in cli}
    fixed = [o for o in space.overrides if _override_key(o) not in cli_keys] + cli
    params = {k: p for k, p in space.params.items() if k not in cli_keys}
    for key in sorted(set(space.params) - set(params)):
        log.info("%s is fixed on the command line: not searched", key)
    if not params:
        raise ConfigError("nothing to search: the search space has no params left")
    fixed_keys = {_override_key(o) for o in fixed}
    if metric is None:
        if "optimize_metric" in fixed_keys:
            base, _ = compose_config(fixed)
            metric = str(base.optimize_metric)
        else:
            metric = space.metric or str(compose_config(fixed)[0].optimize_metric)
    if metric not in summary_metric_names():
        raise ConfigError(f"invalid metric {metric!r}: expected one of {summary_metric_names()}")
    fixed = [o for o in fixed if _override_key(o) != "optimize_metric"]
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
    direction = direction or space.direction or metric_direction(metric)
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


# ---------------------------------------------------------------------------------------- console
def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="recsim-tune",
        description="Bayesian hyperparameter search (Optuna TPE + median pruning) over "
        "recsim-train runs. Positional arguments are recsim-train overrides fixed for every trial.",
    )
    parser.add_argument("overrides", nargs="*", help="fixed overrides, e.g. env=abrupt seed=1")
    parser.add_argument(
        "--space",
        default="dqn",
        help="a search space in conf/tune/ (name) or a YAML file (default: dqn)",
    )
    parser.add_argument("--study-name", default=None, help="default: the space's name")
    parser.add_argument(
        "--storage",
        default=None,
        help="journal file or RDB URL (sqlite:///tune.db); default: <tune-dir>/optuna.journal",
    )
    parser.add_argument(
        "--n-trials", type=int, default=20, help="trials run by this process (default: 20)"
    )
    parser.add_argument("--timeout", type=float, default=None, help="stop after this many seconds")
    parser.add_argument("--metric", default=None, help="summary.json key; default: the space's")
    parser.add_argument(
        "--direction", choices=("maximize", "minimize"), default=None, help="default: from metric"
    )
    parser.add_argument("--seed", type=int, default=0, help="the sampler's seed (default: 0)")
    parser.add_argument("--tune-dir", default=None, help="default: tune/<study name>")
    parser.add_argument(
        "--n-startup-trials",
        type=int,
        default=10,
        help="random trials before TPE models (default: 10)",
    )
    parser.add_argument("--no-prune", action="store_true", help="never stop a trial early")
    parser.add_argument(
        "--prune-startup-trials",
        type=int,
        default=5,
        help="no pruning until this many trials have completed (default: 5)",
    )
    parser.add_argument(
        "--prune-warmup-steps",
        type=int,
        default=0,
        help="no pruning before this many user-steps of a trial (default: 0)",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Console script ``recsim-tune`` (returns the exit status)."""
    from experiments.protocol import RunInterrupted

    args = build_parser().parse_args(argv)
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO, format="[%(asctime)s][%(name)s] %(message)s")
    try:
        space = SearchSpace.load(args.space)
        study_name = args.study_name or Path(args.space).stem
        tune_dir = Path(args.tune_dir or Path("tune") / study_name)
        storage = args.storage or str(tune_dir / "optuna.journal")
        if args.n_trials < 1:
            raise ConfigError(f"--n-trials={args.n_trials}: expected an integer >= 1")
        study = tune(
            space,
            args.overrides,
            study_name=study_name,
            storage=storage,
            n_trials=args.n_trials,
            tune_dir=tune_dir,
            metric=args.metric,
            direction=args.direction,
            seed=args.seed,
            n_startup_trials=args.n_startup_trials,
            prune=not args.no_prune,
            prune_startup_trials=args.prune_startup_trials,
            prune_warmup_steps=args.prune_warmup_steps,
            timeout=args.timeout,
        )
    except ConfigError as exc:
        print(f"recsim-tune: {exc}", file=sys.stderr)
        return 2
    except (RunInterrupted, KeyboardInterrupt) as exc:
        print(f"recsim-tune: interrupted ({exc}); run the same command to go on", file=sys.stderr)
        return 130
    print(report(study), flush=True)
    best = best_record(study)
    if best is None:
        return 1
    write_json_atomic(tune_dir / "best.json", best)
    return 0


if __name__ == "__main__":
    sys.exit(main())
