"""Loading runs for ``recsim-compare``: local run dirs, offline W&B runs, a W&B project.

Every source becomes a :class:`Run` (config, group choices, overrides, summary, status, lazily
loaded metric rows). Local run dirs are read through :class:`~experiments.run.rundir.RunDir` only;
a sweep's ``multirun.yaml`` says which jobs were expected, so that a job that never started is
reported as ``missing`` instead of silently dropped.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from experiments.analysis.schema import LABEL_KEYS, run_labels
from experiments.run.overrides import PRESET_GROUP
from experiments.run.rundir import COMPLETED, RunDir, same_job

log = logging.getLogger("experiments.compare")


# ---------------------------------------------------------------------------------------- runs
@dataclass
class Run:
    """One run, whatever it was read from."""

    path: str
    source: str  # local | wandb-offline | wandb
    status: str  # completed | failed | interrupted | running | missing
    config: dict[str, Any] = field(default_factory=dict)
    choices: dict[str, str] = field(default_factory=dict)
    overrides: list[str] = field(default_factory=list)
    summary: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    _load_metrics: Callable[[], list[tuple[int, str, float]]] | None = None
    _metrics: dict[str, tuple[np.ndarray, np.ndarray]] | None = None
    _load_recovery: Callable[[], dict[str, Any] | None] | None = None

    @property
    def completed(self) -> bool:
        return self.status == COMPLETED

    @property
    def seed(self) -> Any:
        return self.config.get("seed")

    @property
    def preset(self) -> str | None:
        """The tuned preset the run was composed with (``conf/agent/tuned/<agent>/<env>.yaml``, as
        its ``run.json`` records it); ``None``: the agent's defaults."""
        return self.choices.get(PRESET_GROUP)

    def metric(self, key: str) -> float:
        value = self.summary.get(key)
        try:
            value = float(value)
        except (TypeError, ValueError):
            return math.nan
        return value

    def series(self, key: str) -> tuple[np.ndarray, np.ndarray] | None:
        """``(steps, values)`` of a logged metric (last value wins when a step repeats)."""
        if self._metrics is None:
            rows = self._load_metrics() if self._load_metrics is not None else []
            by_key: dict[str, dict[int, float]] = {}
            for step, k, v in rows:
                by_key.setdefault(k, {})[int(step)] = float(v)
            self._metrics = {}
            for k, d in by_key.items():
                steps = np.array(sorted(d), dtype=np.int64)
                self._metrics[k] = (steps, np.array([d[s] for s in steps], dtype=np.float64))
        return self._metrics.get(key)

    def logged_keys(self) -> list[str]:
        """The keys ``metrics.csv`` (or the W&B history) holds."""
        self.series("")
        return sorted(self._metrics or {})

    def recovery(self) -> dict[str, Any] | None:
        """The run's event-aligned recovery curves (``recovery.npz``: settings, offsets, value,
        best, records, and ``frozen`` with the counterfactual), ``None`` if it has none."""
        if self._load_recovery is None:
            return None
        try:
            return self._load_recovery()
        except (OSError, ValueError) as exc:
            log.warning("%s: unreadable recovery curves (%s)", self.path, exc)
            return None

    def value_of(self, key: str) -> Any:
        """The value of a grouping key: a config-group choice (``agent``), or a config path
        (``agent.gamma``), or a command-line override; ``None`` if the run has none."""
        if key in self.choices:
            return self.choices[key]
        node: Any = self.config
        for part in key.split("."):
            if isinstance(node, Mapping) and part in node:
                node = node[part]
            else:
                node = None
                break
        if node is not None and not isinstance(node, Mapping | list):
            return node
        for override in self.overrides:
            k, _, v = override.partition("=")
            if k.lstrip("+~") == key:
                return v
        if key in LABEL_KEYS:  # a sparse config (a missing job's) may hold `agent: linucb`
            config = {
                k: v
                for k, v in self.config.items()
                if k not in LABEL_KEYS or isinstance(v, Mapping)
            }
            return run_labels(config, self.choices)[key]
        return None

    def drift_event_steps(self) -> list[int]:
        steps = self.summary.get("lifelong/drift_event_steps")
        if isinstance(steps, list):
            return [int(s) for s in steps]
        series = self.series("online/drift_events")  # fallback: windows that saw an event
        if series is None:
            return []
        return [int(s) for s, v in zip(*series, strict=True) if v > 0]


UNREADABLE = "unreadable"  # a run dir whose summary.json or config.yaml cannot be used


def load_local_run(path: str | Path) -> Run:
    """Read one ``recsim-train`` run dir (through :class:`RunDir`: status, record, config).

    A run dir is data someone else may have damaged: a ``summary.json`` that is not a JSON object,
    or a ``config.yaml`` that does not parse, make the run ``unreadable`` (listed with the reason
    and a warning naming the file, never in the statistics), not a crash or a "missing" job.
    """
    rd = RunDir(path)
    job = None
    try:
        job = rd.job()
    except Exception as exc:  # run.json / .hydra unreadable: the run has no known identity
        log.warning("%s: unreadable job record (%s)", rd.path, exc)
    try:
        loaded = rd.read_summary()
    except ValueError:
        loaded = None  # RunDir.state reports the parse error itself
    except OSError as exc:
        loaded = None
        log.warning("%s: cannot read %s (%s)", rd.path, RunDir.SUMMARY, exc)
    if loaded is not None and not isinstance(loaded, dict):
        reason = f"{rd.summary_path} is not a JSON object (a {type(loaded).__name__}): skipped"
        log.warning("recsim-compare: %s", reason)
        run = Run(path=str(rd.path), source="local", status=UNREADABLE, error=reason)
    else:
        state = rd.state()
        run = Run(path=str(rd.path), source="local", status=state.status, summary=state.summary)
        run.error = state.error
    if job is not None:
        run.choices, run.overrides = dict(job.choices), list(job.overrides)
    try:
        config = rd.read_config()
        if not isinstance(config, dict):
            raise ValueError(f"a {type(config).__name__}, not a mapping")
        run.config = config
    except Exception as exc:
        reason = f"corrupt {RunDir.CONFIG}: {str(exc).splitlines()[0] if str(exc) else exc!r}"
        log.warning("recsim-compare: %s: %s", rd.path, reason)
        run.status, run.error, run.summary = UNREADABLE, reason, {}
    run._load_metrics = rd.read_metrics
    run._load_recovery = lambda: _read_recovery(rd)
    return run


def _read_recovery(rd: RunDir) -> dict[str, Any] | None:
    from recsim_env.state_io import load_tree  # plain data, never pickle

    return load_tree(rd.recovery_path) if rd.recovery_path.exists() else None


def load_offline_wandb_run(path: str | Path) -> Run:
    """A run from an offline W&B run (``run-*.wandb`` or its ``offline-run-*`` dir)."""
    from experiments.integrations.wandb_reader import read_offline_run

    rec = read_offline_run(path)
    config = dict(rec.config)
    choices = config.pop("choices", None) or {}
    summary = {k: v for k, v in rec.summary.items() if not k.startswith("_")}
    if rec.exit_code is None:
        status = "running"
        error = "the W&B run has no exit record (still running, or killed)"
    else:
        status = str(summary.get("status") or ("completed" if rec.exit_code == 0 else "failed"))
        error = summary.get("error") or (
            None if rec.exit_code == 0 else f"exit code {rec.exit_code}"
        )
    return Run(
        path=str(rec.path.parent),
        source="wandb-offline",
        status=status,
        config=config,
        choices={str(k): str(v) for k, v in choices.items()},
        summary=summary,
        error=error,
        _load_metrics=rec.metric_rows,
    )


def load_wandb_project(
    project: str, *, group: str | None = None, filters: Mapping[str, Any] | None = None
) -> list[Run]:
    """Runs of an online W&B project (``entity/project``) via the public API. Needs an API key."""
    from experiments.integrations.wandb_reader import api_key_configured

    if not api_key_configured():
        raise RuntimeError(
            f"--wandb-project {project}: no W&B API key configured (WANDB_API_KEY or `wandb login`)"
        )
    import wandb

    api = wandb.Api(timeout=60)
    query = dict(filters or {})
    if group:
        query["group"] = group
    runs = []
    for r in api.runs(project, filters=query or None):
        config = {k: v for k, v in dict(r.config).items() if not k.startswith("_")}
        choices = config.pop("choices", None) or {}
        summary = {k: v for k, v in dict(r.summary).items() if not k.startswith("_")}
        state = str(r.state)
        status = {"finished": "completed", "running": "running"}.get(state, "failed")
        status = str(summary.get("status") or status) if state == "finished" else status

        def load(r: Any = r) -> list[tuple[int, str, float]]:
            rows = []
            for row in r.scan_history():
                step = int(row.get("_step", 0))
                for k, v in row.items():
                    if (
                        not k.startswith("_")
                        and isinstance(v, int | float)
                        and not isinstance(v, bool)
                    ):
                        rows.append((step, k, float(v)))
            return rows

        runs.append(
            Run(
                path=f"wandb:{project}/{r.id}",
                source="wandb",
                status=status,
                config=config,
                choices={str(k): str(v) for k, v in choices.items()},
                summary=summary,
                error=None if status == "completed" else f"W&B state: {state}",
                _load_metrics=load,
            )
        )
    return runs


def expected_sweep_jobs(sweep_dir: Path) -> list[list[str]] | None:
    """The override lists of every job a basic-sweeper multirun in ``sweep_dir`` was to run
    (from ``multirun.yaml``); ``None`` when that cannot be known."""
    path = sweep_dir / "multirun.yaml"
    if not path.exists():
        return None
    try:
        from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
        from hydra.core.override_parser.overrides_parser import OverridesParser
        from omegaconf import OmegaConf

        cfg = OmegaConf.load(path)
        target = str(OmegaConf.select(cfg, "hydra.sweeper._target_") or "")
        if not target.endswith("BasicSweeper"):
            return None
        task = [str(o) for o in OmegaConf.select(cfg, "hydra.overrides.task") or []]
        params = OmegaConf.select(cfg, "hydra.sweeper.params")
        params = OmegaConf.to_container(params, resolve=False) if params else {}
        # as BasicSweeper.sweep does: the sweeper's params first, the command line after them
        arguments = [f"{k}={v}" for k, v in params.items()] + task
        parsed = OverridesParser.create().parse_overrides(arguments)
        batches = BasicSweeper.split_arguments(parsed, None)
        return [list(job) for batch in batches for job in batch]
    except Exception as exc:  # best effort: an exotic sweep is compared without this check
        log.debug("cannot expand the sweep in %s: %s", sweep_dir, exc)
        return None


def discover_runs(
    paths: Sequence[str | Path] = (),
    *,
    wandb_paths: Sequence[str | Path] = (),
    wandb_project: str | None = None,
    wandb_group: str | None = None,
) -> list[Run]:
    """Every run under ``paths`` (run dirs or sweep dirs), offline W&B runs under ``wandb_paths``
    and the runs of ``wandb_project``; sweep jobs that never started become ``missing`` runs."""
    from experiments.integrations.wandb_reader import find_offline_run_files

    runs: list[Run] = []
    inputs_seen: set[Path] = set()
    loaded: dict[Path, Run] = {}  # a dir given twice (or a job dir and its sweep) counts once
    for p in map(Path, paths):
        if not p.exists():
            runs.append(
                Run(path=str(p), source="local", status="missing", error="path does not exist")
            )
            continue
        if p.resolve() in inputs_seen:
            log.warning("recsim-compare: %s given twice: counted once", p)
            continue
        inputs_seen.add(p.resolve())
        if (p.is_file() and p.suffix == ".wandb") or p.name.startswith("offline-run-"):
            runs.append(load_offline_wandb_run(p))
            continue
        dirs = RunDir.find(p)
        if not dirs:
            runs.append(
                Run(path=str(p), source="local", status="missing", error="no run dirs found here")
            )
            continue
        found = []
        for d in dirs:
            key = d.path.resolve()
            if key in loaded:
                log.warning("recsim-compare: %s given twice: counted once", d.path)
            else:
                loaded[key] = load_local_run(d.path)
                runs.append(loaded[key])
            found.append(loaded[key])
        expected = expected_sweep_jobs(p)
        if expected:
            for job in expected:
                if not any(same_job(job, r.overrides) for r in found):
                    runs.append(
                        Run(
                            path=str(p),
                            source="local",
                            status="missing",
                            overrides=job,
                            config=_config_from_overrides(job),
                            error="expected by the sweep (multirun.yaml) but has no job dir",
                        )
                    )
    for p in map(Path, wandb_paths):
        files = find_offline_run_files(p)
        if not files:
            runs.append(
                Run(
                    path=str(p),
                    source="wandb-offline",
                    status="missing",
                    error="no run-*.wandb files",
                )
            )
        runs.extend(load_offline_wandb_run(f) for f in files)
    if wandb_project:
        runs.extend(load_wandb_project(wandb_project, group=wandb_group))
    return runs


def _config_from_overrides(overrides: Iterable[str]) -> dict[str, Any]:
    """A sparse config from ``k=v`` overrides, so that a missing job still has its group and seed."""
    import yaml

    config: dict[str, Any] = {}
    for o in overrides:
        key, _, value = o.partition("=")
        key = key.lstrip("+~")
        if "/" in key or key.startswith("hydra"):
            continue
        try:
            parsed = yaml.safe_load(value)
        except Exception:
            parsed = value
        node = config
        parts = key.split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                break
        else:
            node[parts[-1]] = parsed
    return config
