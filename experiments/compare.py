"""``recsim-compare``: compare agents (or swept hyperparameters) over seeds, honestly.

    recsim-compare multirun/baselines/2025-01-01_12-00-00 --out reports/baselines
    recsim-compare multirun/gamma_eps_lr/... --by agent.gamma,agent.lr --out reports/sweep
    recsim-compare outputs/a outputs/b --compare dqn linucb --metrics online/reward,eval/return
    recsim-compare --wandb multirun/x --out reports/x        # read the offline W&B runs instead
    recsim-compare --wandb-project me/recsim-env --wandb-group baselines-... --out reports/x

Inputs are run dirs written by ``recsim-train`` (``config.yaml``, ``summary.json`` — the source of
truth for final metrics —, ``metrics.csv`` in long format ``step,key,value`` for curves, and
``.hydra/`` for the config-group choices and overrides) or sweep dirs holding them; optionally
offline W&B runs (``--wandb``) and, with an API key, a W&B project (``--wandb-project``).

Output (``--out``): ``report.md``, ``results.json`` (every number in the report), ``runs.csv`` and
PNGs: learning curves (online reward, cumulative regret, eval return) with 95 % CI bands and drift
events marked, final metrics with CIs, and a heat map when ``--by`` names two or more keys.

Statistics are over seeds of *completed* runs: mean, IQM (25 % trimmed mean) and 95 % percentile
bootstrap CIs (stratified by ``--tasks`` when given), and the probability of improvement between
two groups (``--compare A B``); see ``experiments.stats``. Runs that failed, were interrupted, are
still running, lack a ``summary.json``, or were expected by the sweep but never started are listed
as such in the report, never silently dropped.
"""

from __future__ import annotations

import argparse
import csv
import json
import logging
import math
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from experiments import stats

log = logging.getLogger("experiments.compare")

DEFAULT_METRICS = (
    "online/reward",
    "online/reward_final",
    "online/cumulative_regret",
    "eval/return",
    "eval/ctr",
    "eval/regret",
    "eval/ndcg@k",
    "lifelong/recovery_time_mean",
    "lifelong/forgetting_mean",
)
DEFAULT_CURVES = ("online/reward", "online/cumulative_regret", "eval/return")
LOWER_IS_BETTER = ("regret", "recovery_time", "forgetting", "loss")
RUN_MARKERS = ("summary.json", "metrics.csv", "config.yaml", "error.txt")
SKIP_DIRS = {"wandb", "checkpoints", ".hydra", "__pycache__"}
LABEL_CHOICES = ("agent", "env", "drift")


def lower_is_better(metric: str) -> bool:
    return any(word in metric for word in LOWER_IS_BETTER)


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

    @property
    def completed(self) -> bool:
        return self.status == "completed"

    @property
    def seed(self) -> Any:
        return self.config.get("seed")

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
        if key in LABEL_CHOICES:
            from experiments.wandb_sink import run_labels

            return run_labels(self.config, self.choices)[key]
        return None

    def drift_event_steps(self) -> list[int]:
        steps = self.summary.get("lifelong/drift_event_steps")
        if isinstance(steps, list):
            return [int(s) for s in steps]
        series = self.series("online/drift_events")  # fallback: windows that saw an event
        if series is None:
            return []
        return [int(s) for s, v in zip(*series, strict=True) if v > 0]


def _read_yaml(path: Path) -> Any:
    from omegaconf import OmegaConf

    conf = OmegaConf.load(path)
    try:
        return OmegaConf.to_container(conf, resolve=True)
    except Exception:  # an interpolation that needs Hydra's resolvers (${now:...}, ${hydra:...})
        return OmegaConf.to_container(conf, resolve=False)


def _read_metrics_csv(path: Path) -> list[tuple[int, str, float]]:
    """Rows of ``metrics.csv``; a torn last line (a crash mid-write) or a bad value is skipped."""
    rows = []
    if not path.exists():
        return rows
    with open(path, newline="") as f:
        reader = csv.reader(f)
        next(reader, None)  # header
        for row in reader:
            if len(row) != 3:
                continue
            try:
                rows.append((int(row[0]), row[1], float(row[2])))
            except ValueError:
                continue
    return rows


def is_run_dir(path: Path) -> bool:
    return path.is_dir() and (
        any((path / m).exists() for m in RUN_MARKERS) or (path / ".hydra").is_dir()
    )


def load_local_run(path: str | Path) -> Run:
    """Read one ``recsim-train`` run dir (status from ``summary.json`` / ``error.txt``)."""
    path = Path(path)
    run = Run(path=str(path), source="local", status="missing")
    hydra_dir = path / ".hydra"
    try:
        if (path / "config.yaml").exists():
            run.config = _read_yaml(path / "config.yaml") or {}
        elif (hydra_dir / "config.yaml").exists():
            run.config = _read_yaml(hydra_dir / "config.yaml") or {}
        if (hydra_dir / "hydra.yaml").exists():
            hydra_cfg = _read_yaml(hydra_dir / "hydra.yaml") or {}
            choices = ((hydra_cfg.get("hydra") or {}).get("runtime") or {}).get("choices") or {}
            run.choices = {
                str(k): str(v)
                for k, v in choices.items()
                if v is not None and not str(k).startswith("hydra/")
            }
        if (hydra_dir / "overrides.yaml").exists():
            run.overrides = [str(o) for o in _read_yaml(hydra_dir / "overrides.yaml") or []]
    except Exception as exc:
        run.error = f"unreadable config: {exc}"
    error_file = path / "error.txt"
    if (path / "summary.json").exists():
        try:
            run.summary = json.loads((path / "summary.json").read_text())
            run.status = str(run.summary.get("status", "completed"))
        except ValueError as exc:
            run.status, run.error = "failed", f"unreadable summary.json: {exc}"
    elif error_file.exists():
        run.status = "failed"
    else:
        run.error = run.error or "no summary.json (not started, still starting, or killed)"
    if run.status == "failed" and error_file.exists() and not run.summary.get("error"):
        lines = error_file.read_text(errors="replace").strip().splitlines()
        run.error = lines[-1] if lines else "failed (empty error.txt)"
    elif run.summary.get("error"):
        run.error = str(run.summary["error"])
    if run.status == "running":
        run.error = run.error or "incomplete: still running, or killed without a record (resume it)"
    elif run.status == "interrupted":
        run.error = run.error or "interrupted (checkpointed; resume it with resume=true)"
    run._load_metrics = lambda: _read_metrics_csv(path / "metrics.csv")
    return run


def load_offline_wandb_run(path: str | Path) -> Run:
    """A run from an offline W&B run (``run-*.wandb`` or its ``offline-run-*`` dir)."""
    from experiments.wandb_sink import read_offline_run

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
    from experiments.wandb_sink import api_key_configured

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


def _run_dirs_under(root: Path) -> list[Path]:
    if is_run_dir(root):
        return [root]
    found = []
    for child in sorted(root.iterdir(), key=_natural_key):
        if child.is_dir() and child.name not in SKIP_DIRS and not child.is_symlink():
            found.extend(_run_dirs_under(child))
    return found


def _natural_key(path: Path) -> tuple:
    return tuple((0, int(p), "") if p.isdigit() else (1, 0, p) for p in path.parts)


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
    from experiments.wandb_sink import find_offline_run_files

    runs: list[Run] = []
    for p in map(Path, paths):
        if not p.exists():
            runs.append(
                Run(path=str(p), source="local", status="missing", error="path does not exist")
            )
            continue
        if (p.is_file() and p.suffix == ".wandb") or p.name.startswith("offline-run-"):
            runs.append(load_offline_wandb_run(p))
            continue
        dirs = _run_dirs_under(p)
        if not dirs:
            runs.append(
                Run(path=str(p), source="local", status="missing", error="no run dirs found here")
            )
            continue
        found = [load_local_run(d) for d in dirs]
        runs.extend(found)
        expected = expected_sweep_jobs(p)
        if expected:
            have = [sorted(r.overrides) for r in found]
            for job in expected:
                if sorted(job) not in have:
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


# ---------------------------------------------------------------------------------------- groups
def _fmt_value(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def group_label(run: Run, by: Sequence[str]) -> str:
    values = [run.value_of(k) for k in by]
    if len(by) == 1:
        return _fmt_value(values[0])
    return ", ".join(f"{k}={_fmt_value(v)}" for k, v in zip(by, values, strict=True))


def _sort_key(value: Any) -> tuple:
    try:
        return (0, float(value), "")
    except (TypeError, ValueError):
        return (1, 0.0, str(value))


def _varying_keys(runs: Sequence[Run]) -> set[str]:
    """Override keys whose values differ between ``runs`` (seed and hydra.* left out)."""
    seen: dict[str, set[str]] = {}
    for run in runs:
        for o in run.overrides:
            k, _, v = o.partition("=")
            k = k.lstrip("+~")
            if k in ("seed",) or k.startswith("hydra"):
                continue
            seen.setdefault(k, set()).add(v)
    keys = {k for k, vs in seen.items() if len(vs) > 1}
    for k in seen:  # set in some runs, absent (default) in others
        if any(k not in {o.partition("=")[0].lstrip("+~") for o in r.overrides} for r in runs):
            keys.add(k)
    return keys


# ---------------------------------------------------------------------------------------- curves
def align_curves(
    series: Sequence[tuple[np.ndarray, np.ndarray]],
) -> tuple[np.ndarray, np.ndarray, str]:
    """Put runs' curves on one step grid: ``(steps (T,), values (runs, T), how)``.

    Identical step arrays are used as they are. Otherwise the grid is the union of the logged steps
    within the range every run covers (from the latest first step to the earliest last step), each
    run linearly interpolated onto it; longer runs are cut at the shortest run's end.
    """
    if not series:
        return np.zeros(0, dtype=np.int64), np.zeros((0, 0)), "no data"
    first = series[0][0]
    if all(len(s) == len(first) and np.array_equal(s, first) for s, _ in series):
        return (
            first,
            np.stack([v for _, v in series]),
            f"exact: all runs logged the same {len(first)} steps",
        )
    lo = max(int(s[0]) for s, _ in series)
    hi = min(int(s[-1]) for s, _ in series)
    ends = sorted({int(s[-1]) for s, _ in series})
    if hi < lo:
        return np.zeros(0, dtype=np.int64), np.zeros((len(series), 0)), "no common step range"
    grid = np.unique(np.concatenate([s[(s >= lo) & (s <= hi)] for s, _ in series]))
    values = np.stack([np.interp(grid, s, v) for s, v in series])
    how = (
        f"interpolated: the runs log different steps (runs end at {ends[0]}–{ends[-1]}); "
        f"each run is linearly interpolated onto the union of logged steps in the common range "
        f"[{lo}, {hi}]"
    )
    if len(ends) > 1:
        how += f"; steps after {hi} are not shown"
    return grid, values, how


# ---------------------------------------------------------------------------------------- compare
@dataclass
class Settings:
    by: list[str]
    metrics: list[str] | None
    compare: list[tuple[str, str]]
    curves: list[str]
    tasks: str | None
    reps: int
    seed: int
    confidence: float
    heatmap_metric: str | None


def _nan_to_none(obj: Any) -> Any:
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, Mapping):
        return {str(k): _nan_to_none(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_nan_to_none(v) for v in obj]
    if isinstance(obj, np.generic):
        return _nan_to_none(obj.item())
    return obj


def _scores_by_task(
    runs: Sequence[Run], metric: str, tasks: str | None
) -> tuple[list[np.ndarray], list[str]]:
    by_task: dict[str, list[float]] = {}
    for run in runs:
        value = run.metric(metric)
        if math.isfinite(value):
            task = _fmt_value(run.value_of(tasks)) if tasks else "all"
            by_task.setdefault(task, []).append(value)
    names = sorted(by_task, key=_sort_key)
    return [np.asarray(by_task[t]) for t in names], names


def compare_runs(
    paths: Sequence[str | Path],
    out_dir: str | Path,
    *,
    by: str | Sequence[str] = "agent",
    metrics: str | Sequence[str] | None = None,
    compare: Sequence[str] | Sequence[Sequence[str]] | None = None,
    curves: str | Sequence[str] = DEFAULT_CURVES,
    tasks: str | None = None,
    wandb_paths: Sequence[str | Path] = (),
    wandb_project: str | None = None,
    wandb_group: str | None = None,
    reps: int = 10_000,
    seed: int = 0,
    confidence: float = 0.95,
    heatmap_metric: str | None = None,
    plots: bool = True,
) -> dict[str, Any]:
    """Compare the runs under ``paths``; write the report into ``out_dir``; return its numbers.

    ``by``: grouping keys (``"agent"``, ``"agent.gamma,agent.lr"``): a config-group choice or a
    dotted config path. ``compare``: a pair ``(A, B)`` of group labels (or a list of pairs) for the
    probability of improvement. ``tasks``: a key whose values are tasks (strata) of the bootstrap,
    e.g. ``env``. The returned dict is what ``results.json`` holds (NaN as ``None``).
    """
    by_keys = [k.strip() for k in (by.split(",") if isinstance(by, str) else by) if k.strip()]
    if not by_keys:
        raise ValueError("by: give at least one grouping key, e.g. 'agent'")
    if isinstance(metrics, str):
        metrics = [m.strip() for m in metrics.split(",") if m.strip()]
    if isinstance(curves, str):
        curves = [c.strip() for c in curves.split(",") if c.strip()]
    pairs: list[tuple[str, str]] = []
    if compare:
        if isinstance(compare[0], str):
            compare = [compare]  # type: ignore[list-item]
        for pair in compare:  # type: ignore[union-attr]
            if len(pair) != 2:
                raise ValueError(f"compare: expected pairs (A, B), got {pair!r}")
            pairs.append((str(pair[0]), str(pair[1])))
    settings = Settings(
        by=by_keys,
        metrics=list(metrics) if metrics else None,
        compare=pairs,
        curves=list(curves),
        tasks=tasks,
        reps=int(reps),
        seed=int(seed),
        confidence=float(confidence),
        heatmap_metric=heatmap_metric,
    )
    runs = discover_runs(
        paths, wandb_paths=wandb_paths, wandb_project=wandb_project, wandb_group=wandb_group
    )
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    inputs = [str(p) for p in (*paths, *wandb_paths)] + ([wandb_project] if wandb_project else [])
    results = _nan_to_none(_analyse(runs, settings, inputs))  # JSON-ready: "not measured" is None
    if plots:
        results["figures"] = _plot_all(runs, results, settings, out_dir)
    else:
        results["figures"] = {}
    _write_outputs(runs, results, settings, out_dir)
    return results


def _analyse(runs: list[Run], settings: Settings, inputs: list[str]) -> dict[str, Any]:
    completed = [r for r in runs if r.completed]
    metrics = settings.metrics
    if metrics is None:
        present = {k for r in completed for k in r.summary if math.isfinite(r.metric(k))}
        metrics = [m for m in DEFAULT_METRICS if m in present] or sorted(present)[:8]
    groups: dict[str, list[Run]] = {}
    for run in completed:
        groups.setdefault(group_label(run, settings.by), []).append(run)
    group_values = {
        label: {k: rs[0].value_of(k) for k in settings.by} for label, rs in groups.items()
    }
    order = sorted(groups, key=lambda g: tuple(_sort_key(group_values[g][k]) for k in settings.by))
    rng = np.random.default_rng(settings.seed)
    group_results: dict[str, Any] = {}
    for label in order:
        rs = groups[label]
        seeds = [r.seed for r in rs]
        notes = []
        varying = sorted(_varying_keys(rs) - set(settings.by))
        if varying:
            notes.append(
                f"runs differ in {', '.join(varying)} (not in --by): they are pooled as if they were seeds"
            )
        dup = sorted({s for s in seeds if seeds.count(s) > 1}, key=_sort_key)
        if dup:
            notes.append(f"seed(s) {', '.join(map(str, dup))} appear more than once")
        per_metric = {}
        for metric in metrics:
            scores, task_names = _scores_by_task(rs, metric, settings.tasks)
            n = int(sum(len(s) for s in scores))
            entry: dict[str, Any] = {
                "n": n,
                "tasks": task_names,
                "lower_is_better": lower_is_better(metric),
            }
            if n == 0:
                entry.update(
                    mean=math.nan,
                    iqm=math.nan,
                    ci_mean=[math.nan, math.nan],
                    ci_iqm=[math.nan, math.nan],
                )
                entry["note"] = "not measured in any run"
            else:
                entry["mean"] = stats.aggregate(scores, "mean")
                entry["iqm"] = stats.aggregate(scores, "iqm")
                entry["std"] = float(np.std(np.concatenate(scores), ddof=1)) if n > 1 else math.nan
                entry["min"] = float(np.min(np.concatenate(scores)))
                entry["max"] = float(np.max(np.concatenate(scores)))
                entry["ci_mean"] = list(
                    stats.stratified_bootstrap_ci(
                        scores, "mean", reps=settings.reps, confidence=settings.confidence, rng=rng
                    )
                )
                entry["ci_iqm"] = list(
                    stats.stratified_bootstrap_ci(
                        scores, "iqm", reps=settings.reps, confidence=settings.confidence, rng=rng
                    )
                )
                if any(len(s) < 2 for s in scores):
                    entry["note"] = "CI needs ≥ 2 seeds" + (" per task" if settings.tasks else "")
                entry["values"] = [float(v) for s in scores for v in s]
            per_metric[metric] = entry
        group_results[label] = {
            "keys": group_values[label],
            "n_runs": len(rs),
            "seeds": seeds,
            "runs": [r.path for r in rs],
            "notes": notes,
            "metrics": per_metric,
        }
    comparisons = []
    for a, b in settings.compare:
        known = {group_label(r, settings.by) for r in runs if r.config or r.choices}
        unknown = [g for g in (a, b) if g not in known]
        if unknown:
            raise ValueError(
                f"compare: no group named {unknown}; groups are: {sorted(known) or '(none)'}"
            )
        empty = [g for g in (a, b) if g not in groups]
        if empty:
            note = f"no completed runs in {', '.join(empty)}"
            rows = {m: {"poi": math.nan, "ci": [math.nan, math.nan], "note": note} for m in metrics}
            comparisons.append({"a": a, "b": b, "metrics": rows})
            continue
        rows = {}
        for metric in metrics:
            xa, ta = _scores_by_task(groups[a], metric, settings.tasks)
            xb, tb = _scores_by_task(groups[b], metric, settings.tasks)
            common = [t for t in ta if t in tb]
            xa = [xa[ta.index(t)] for t in common]
            xb = [xb[tb.index(t)] for t in common]
            if not common:
                rows[metric] = {
                    "poi": math.nan,
                    "ci": [math.nan, math.nan],
                    "note": "not measured in both",
                }
                continue
            sign = -1.0 if lower_is_better(metric) else 1.0
            xa_s, xb_s = [sign * x for x in xa], [sign * x for x in xb]
            row = {
                "poi": stats.probability_of_improvement(xa_s, xb_s),
                "ci": list(
                    stats.probability_of_improvement_ci(
                        xa_s,
                        xb_s,
                        reps=min(settings.reps, 5000),
                        confidence=settings.confidence,
                        rng=rng,
                    )
                ),
                "n": [int(sum(map(len, xa))), int(sum(map(len, xb)))],
                "lower_is_better": lower_is_better(metric),
            }
            if any(len(x) < 2 for x in (*xa, *xb)):
                row["note"] = "CI needs ≥ 2 seeds on both sides"
            rows[metric] = row
        comparisons.append({"a": a, "b": b, "metrics": rows})
    not_ok = [r for r in runs if not r.completed]
    return {
        "inputs": inputs,
        "by": settings.by,
        "tasks": settings.tasks,
        "metrics": metrics,
        "statistics": {
            "aggregates": "mean (mean over tasks of the mean over seeds), IQM (25 % trimmed mean over all runs)",
            "ci": f"{settings.confidence:.0%} percentile stratified bootstrap over seeds"
            + (f", strata = values of {settings.tasks}" if settings.tasks else ""),
            "reps": settings.reps,
            "seed": settings.seed,
        },
        "counts": {s: sum(r.status == s for r in runs) for s in sorted({r.status for r in runs})},
        "groups": group_results,
        "group_order": order,
        "comparisons": comparisons,
        "not_completed": [
            {
                "path": r.path,
                "status": r.status,
                "overrides": r.overrides,
                "error": r.error,
                "source": r.source,
            }
            for r in not_ok
        ],
        "runs": [
            {
                "path": r.path,
                "source": r.source,
                "status": r.status,
                "group": group_label(r, settings.by) if r.config or r.choices else None,
                "seed": r.seed,
            }
            for r in runs
        ],
    }


# ---------------------------------------------------------------------------------------- plots
def _figure(
    nrows: int = 1, ncols: int = 1, size: tuple[float, float] = (7.0, 4.2)
) -> tuple[Any, Any]:
    from matplotlib.figure import Figure  # no pyplot: no global state, the Agg canvas by default

    fig = Figure(figsize=(size[0] * ncols, size[1] * nrows), layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False)
    return fig, axes


def _slug(text: str) -> str:
    return "".join(c if c.isalnum() else "_" for c in text).strip("_")


def _plot_all(
    runs: list[Run], results: dict[str, Any], settings: Settings, out_dir: Path
) -> dict[str, Any]:
    completed = [r for r in runs if r.completed]
    groups: dict[str, list[Run]] = {}
    for run in completed:
        groups.setdefault(group_label(run, settings.by), []).append(run)
    figures: dict[str, Any] = {"curves": {}, "final_metrics": None, "heatmaps": []}
    colors = _colors(len(results["group_order"]))
    for key in settings.curves:
        entry = _plot_curve(key, groups, results["group_order"], colors, settings, out_dir)
        if entry:
            figures["curves"][key] = entry
    if results["group_order"] and results["metrics"]:
        figures["final_metrics"] = _plot_final(results, colors, out_dir)
    if len(settings.by) >= 2 and results["group_order"]:
        figures["heatmaps"] = _plot_heatmaps(results, settings, out_dir)
    return figures


def _colors(n: int) -> list[Any]:
    from matplotlib import colormaps

    cmap = colormaps["tab10" if n <= 10 else "tab20"]
    return [cmap(i % cmap.N) for i in range(max(n, 1))]


def _plot_curve(
    key: str,
    groups: Mapping[str, list[Run]],
    order: Sequence[str],
    colors: Sequence[Any],
    settings: Settings,
    out_dir: Path,
) -> dict[str, Any] | None:
    fig, axes = _figure()
    ax = axes[0][0]
    grids: dict[str, str] = {}
    events: dict[int, int] = {}
    n_runs = 0
    plotted = False
    for i, label in enumerate(order):
        series = [s for s in (r.series(key) for r in groups[label]) if s is not None and len(s[0])]
        if not series:
            continue
        steps, values, how = align_curves(series)
        grids[label] = how
        if len(steps) == 0:
            continue
        mean, lo, hi = stats.mean_band(
            values, reps=1000, confidence=settings.confidence, rng=settings.seed
        )
        ax.plot(steps, mean, color=colors[i], label=f"{label} (n={len(series)})", linewidth=1.6)
        if len(series) >= 2:
            ax.fill_between(steps, lo, hi, color=colors[i], alpha=0.2, linewidth=0)
        plotted = True
        for run in groups[label]:
            n_runs += 1
            for s in set(run.drift_event_steps()):
                events[s] = events.get(s, 0) + 1
    if not plotted:
        return None
    for j, (step, count) in enumerate(sorted(events.items())):
        ax.axvline(
            step,
            color="0.3",
            linestyle="--",
            linewidth=0.8,
            alpha=0.15 + 0.6 * count / max(n_runs, 1),
            label="drift event (darker: in more runs)" if j == 0 else None,
        )
    ax.set_xlabel("user-steps")
    ax.set_ylabel(key)
    ax.set_title(f"{key}: mean over seeds, {settings.confidence:.0%} bootstrap CI band")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="best")
    name = f"curve_{_slug(key)}.png"
    fig.savefig(out_dir / name, dpi=110)
    return {"file": name, "grid": grids, "drift_events": len(events)}


def _plot_final(results: Mapping[str, Any], colors: Sequence[Any], out_dir: Path) -> str:
    metrics = results["metrics"]
    order = results["group_order"]
    ncols = min(3, len(metrics))
    nrows = math.ceil(len(metrics) / ncols)
    fig, axes = _figure(nrows, ncols, size=(4.6, 0.45 * len(order) + 1.6))
    for idx, metric in enumerate(metrics):
        ax = axes[idx // ncols][idx % ncols]
        for i, label in enumerate(order):
            entry = results["groups"][label]["metrics"][metric]
            y = len(order) - 1 - i
            if entry["n"] == 0:
                continue
            lo, hi = entry["ci_iqm"]
            if lo is not None and hi is not None:
                ax.plot(
                    [lo, hi],
                    [y, y],
                    color=colors[i],
                    linewidth=5,
                    alpha=0.45,
                    solid_capstyle="butt",
                )
            ax.plot([entry["iqm"]], [y], "o", color=colors[i], markersize=5)
            ax.plot(entry["values"], [y] * len(entry["values"]), "|", color="0.2", markersize=8)
        ax.set_yticks(range(len(order)), list(reversed(order)), fontsize=8)
        arrow = "↓ better" if lower_is_better(metric) else "↑ better"
        ax.set_title(f"{metric} ({arrow})", fontsize=9)
        ax.grid(axis="x", alpha=0.3)
    for idx in range(len(metrics), nrows * ncols):
        axes[idx // ncols][idx % ncols].set_visible(False)
    fig.suptitle("IQM (dot), 95 % bootstrap CI (bar), seeds (ticks)", fontsize=10)
    name = "final_metrics.png"
    fig.savefig(out_dir / name, dpi=110)
    return name


def _plot_heatmaps(
    results: Mapping[str, Any], settings: Settings, out_dir: Path
) -> list[dict[str, Any]]:
    metric = settings.heatmap_metric or results["metrics"][0]
    kx, ky, rest = settings.by[0], settings.by[1], settings.by[2:]
    groups = results["groups"]
    facets: dict[tuple, list[str]] = {}
    for label in results["group_order"]:
        facet = tuple(_fmt_value(groups[label]["keys"][k]) for k in rest)
        facets.setdefault(facet, []).append(label)
    out = []
    for facet, labels in facets.items():
        xs = sorted({groups[g]["keys"][kx] for g in labels}, key=_sort_key)
        ys = sorted({groups[g]["keys"][ky] for g in labels}, key=_sort_key)
        grid = np.full((len(ys), len(xs)), np.nan)
        counts = np.zeros((len(ys), len(xs)), dtype=int)
        for g in labels:
            entry = groups[g]["metrics"].get(metric)
            if entry is None:
                continue
            j, i = xs.index(groups[g]["keys"][kx]), ys.index(groups[g]["keys"][ky])
            grid[i, j] = np.nan if entry["iqm"] is None else entry["iqm"]
            counts[i, j] = entry["n"]
        fig, axes = _figure(size=(1.2 * len(xs) + 3, 0.8 * len(ys) + 2))
        ax = axes[0][0]
        cmap = "viridis_r" if lower_is_better(metric) else "viridis"
        image = ax.imshow(np.ma.masked_invalid(grid), cmap=cmap, aspect="auto", origin="lower")
        for i in range(len(ys)):
            for j in range(len(xs)):
                if not np.isfinite(grid[i, j]):
                    ax.text(j, i, "–", ha="center", va="center", fontsize=8)
                    continue
                r, g, b, _ = image.cmap(image.norm(grid[i, j]))
                color = (
                    "k" if 0.299 * r + 0.587 * g + 0.114 * b > 0.5 else "w"
                )  # readable on the cell
                text = f"{grid[i, j]:.3g}\nn={counts[i, j]}"
                ax.text(j, i, text, ha="center", va="center", fontsize=8, color=color)
        ax.set_xticks(range(len(xs)), [_fmt_value(x) for x in xs])
        ax.set_yticks(range(len(ys)), [_fmt_value(y) for y in ys])
        ax.set_xlabel(kx)
        ax.set_ylabel(ky)
        title = f"IQM {metric} over seeds"
        if rest:
            title += " | " + ", ".join(f"{k}={v}" for k, v in zip(rest, facet, strict=True))
        ax.set_title(title, fontsize=9)
        fig.colorbar(image, ax=ax)
        name = f"heatmap_{_slug(metric)}" + ("_" + _slug("_".join(facet)) if facet else "") + ".png"
        fig.savefig(out_dir / name, dpi=110)
        out.append(
            {
                "file": name,
                "metric": metric,
                "x": kx,
                "y": ky,
                "facet": dict(zip(rest, facet, strict=True)),
            }
        )
    return out


# ---------------------------------------------------------------------------------------- report
def _fmt(x: Any, digits: int = 4) -> str:
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "n/a"
    return f"{x:.{digits}g}"


def _fmt_ci(ci: Sequence[float]) -> str:
    if not ci or any(c is None or not math.isfinite(c) for c in ci):
        return "n/a"
    return f"[{_fmt(ci[0])}, {_fmt(ci[1])}]"


def _md_escape(text: Any) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def render_markdown(results: Mapping[str, Any]) -> str:
    by = ", ".join(f"`{k}`" for k in results["by"])
    lines = [f"# Agent comparison (grouped by {by})", ""]
    lines.append("Inputs: " + ", ".join(f"`{p}`" for p in results["inputs"]))
    counts = results["counts"]
    lines.append(
        "Runs: "
        + ", ".join(f"{n} {s}" for s, n in counts.items())
        + (
            " (only completed runs enter the statistics; the others are listed below)"
            if len(counts) > 1 or "completed" not in counts
            else ""
        )
    )
    st = results["statistics"]
    lines += [
        "",
        f"Statistics over seeds: {st['aggregates']}; CIs: {st['ci']} ({st['reps']} resamples, seed "
        f"{st['seed']}). A CI needs at least 2 seeds (per task): with fewer it reads n/a. With few "
        "seeds (< 5) bootstrap CIs are optimistic: with 2 seeds a CI cannot reach beyond [min, max].",
        "",
    ]
    groups, order, metrics = results["groups"], results["group_order"], results["metrics"]
    if not order:
        lines += ["**No completed runs: nothing to compare.**", ""]
    else:
        lines += ["## Overview: IQM [95 % CI]", ""]
        header = (
            "| group | n | "
            + " | ".join(f"{m} {'↓' if lower_is_better(m) else '↑'}" for m in metrics)
            + " |"
        )
        lines += [header, "|" + "---|" * (2 + len(metrics))]
        for label in order:
            g = groups[label]
            cells = [
                f"{_fmt(g['metrics'][m]['iqm'])} {_fmt_ci(g['metrics'][m]['ci_iqm'])}"
                for m in metrics
            ]
            lines.append(f"| {_md_escape(label)} | {g['n_runs']} | " + " | ".join(cells) + " |")
        lines.append("")
        notes = [(label, n) for label in order for n in groups[label]["notes"]]
        if notes:
            lines += (
                ["Notes:", ""] + [f"- **{_md_escape(label)}**: {n}" for label, n in notes] + [""]
            )
        for m in metrics:
            arrow = "lower is better" if lower_is_better(m) else "higher is better"
            lines += [f"### {m} ({arrow})", ""]
            lines += [
                "| group | n | mean | 95 % CI (mean) | IQM | 95 % CI (IQM) | min | max | note |"
            ]
            lines += ["|---|---|---|---|---|---|---|---|---|"]
            for label in order:
                e = groups[label]["metrics"][m]
                lines.append(
                    f"| {_md_escape(label)} | {e['n']} | {_fmt(e['mean'])} | {_fmt_ci(e['ci_mean'])} | "
                    f"{_fmt(e['iqm'])} | {_fmt_ci(e['ci_iqm'])} | {_fmt(e.get('min'))} | "
                    f"{_fmt(e.get('max'))} | {e.get('note', '')} |"
                )
            lines.append("")
    for comp in results["comparisons"]:
        a, b = comp["a"], comp["b"]
        lines += [
            f"## Probability of improvement: {a} vs {b}",
            "",
            f"P({a} better than {b}): the chance that a run of {a} beats a run of {b} (ties count ½; "
            "for lower-is-better metrics, better = lower).",
            "",
            "| metric | P(A better) | 95 % CI | n (A, B) | note |",
            "|---|---|---|---|---|",
        ]
        for m, row in comp["metrics"].items():
            n = row.get("n", ["", ""])
            lines.append(
                f"| {m} | {_fmt(row['poi'], 3)} | {_fmt_ci(row['ci'])} | {n[0]}, {n[1]} | {row.get('note', '')} |"
            )
        lines.append("")
    figures = results.get("figures") or {}
    if figures.get("curves"):
        lines += ["## Learning curves", ""]
        for key, entry in figures["curves"].items():
            lines += [f"### {key}", "", f"![{key}]({entry['file']})", ""]
            lines.append(
                f"Mean over seeds with a 95 % bootstrap band; dashed lines: drift events "
                f"({entry['drift_events']} distinct steps). Step grid:"
            )
            lines += [f"- {_md_escape(label)}: {how}" for label, how in entry["grid"].items()] + [
                ""
            ]
    if figures.get("final_metrics"):
        lines += ["## Final metrics", "", f"![final metrics]({figures['final_metrics']})", ""]
    for hm in figures.get("heatmaps") or []:
        facet = ", ".join(f"{k}={v}" for k, v in hm["facet"].items())
        lines += [
            f"## Heat map: {hm['metric']} over {hm['x']} × {hm['y']}"
            + (f" ({facet})" if facet else ""),
            "",
        ]
        lines += [f"![heat map]({hm['file']})", ""]
    bad = results["not_completed"]
    lines += ["## Failed, interrupted and missing runs", ""]
    if not bad:
        lines += ["None: every run completed.", ""]
    else:
        lines += ["| run | status | overrides | error |", "|---|---|---|---|"]
        for r in bad:
            lines.append(
                f"| `{_md_escape(r['path'])}` | **{r['status']}** | {_md_escape(' '.join(r['overrides']))} | "
                f"{_md_escape(r['error'] or '')} |"
            )
        lines.append("")
    lines += ["## Runs", "", "| group | seed | status | source | path |", "|---|---|---|---|---|"]
    for r in results["runs"]:
        lines.append(
            f"| {_md_escape(r['group'] or '')} | {r['seed'] if r['seed'] is not None else ''} | {r['status']} | "
            f"{r['source']} | `{_md_escape(r['path'])}` |"
        )
    lines.append("")
    return "\n".join(lines)


def _write_outputs(
    runs: list[Run], results: dict[str, Any], settings: Settings, out_dir: Path
) -> None:
    (out_dir / "report.md").write_text(render_markdown(results))
    (out_dir / "results.json").write_text(
        json.dumps(_nan_to_none(results), indent=2, allow_nan=False) + "\n"
    )
    with open(out_dir / "runs.csv", "w", newline="") as f:
        writer = csv.writer(f)
        metrics = results["metrics"]
        writer.writerow(["group", "seed", "status", "source", "path", *metrics, "error"])
        for run in runs:
            label = group_label(run, settings.by) if run.config or run.choices else ""
            writer.writerow(
                [
                    label,
                    run.seed,
                    run.status,
                    run.source,
                    run.path,
                    *(run.metric(m) for m in metrics),
                    run.error or "",
                ]
            )


# ---------------------------------------------------------------------------------------- console
def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="recsim-compare",
        description="Compare recsim-train runs over seeds: tables (mean, IQM, 95 % bootstrap CIs), "
        "probability of improvement, learning curves, heat maps (Markdown + PNG + JSON).",
    )
    p.add_argument("paths", nargs="*", help="run dirs or sweep (multirun) dirs")
    p.add_argument(
        "--out", required=True, help="output dir for report.md, results.json, runs.csv, PNGs"
    )
    p.add_argument(
        "--by",
        default="agent",
        help="grouping keys, comma-separated (default: agent), e.g. agent.gamma,agent.lr",
    )
    p.add_argument(
        "--metrics",
        default=None,
        help="summary metrics, comma-separated (default: the main schema keys present)",
    )
    p.add_argument(
        "--compare",
        nargs=2,
        action="append",
        metavar=("A", "B"),
        help="probability that group A beats group B (repeatable)",
    )
    p.add_argument(
        "--curves",
        default=",".join(DEFAULT_CURVES),
        help="metrics.csv keys to plot as learning curves",
    )
    p.add_argument(
        "--tasks", default=None, help="a key whose values are tasks (bootstrap strata), e.g. env"
    )
    p.add_argument(
        "--heatmap-metric", default=None, help="metric of the heat map (default: the first metric)"
    )
    p.add_argument(
        "--wandb",
        action="append",
        default=[],
        metavar="DIR",
        help="offline W&B runs under DIR (repeatable)",
    )
    p.add_argument(
        "--wandb-project",
        default=None,
        metavar="ENTITY/PROJECT",
        help="online W&B project (needs an API key)",
    )
    p.add_argument("--wandb-group", default=None, help="only this W&B group of --wandb-project")
    p.add_argument("--reps", type=int, default=10_000, help="bootstrap resamples (default 10000)")
    p.add_argument("--seed", type=int, default=0, help="bootstrap seed (default 0)")
    p.add_argument("--confidence", type=float, default=0.95)
    p.add_argument("--no-plots", action="store_true")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Console script ``recsim-compare``. Exit 0: report written; 1: no completed run; 2: bad input."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    if not args.paths and not args.wandb and not args.wandb_project:
        print(
            "recsim-compare: give run/sweep dirs, --wandb DIR or --wandb-project", file=sys.stderr
        )
        return 2
    try:
        results = compare_runs(
            args.paths,
            args.out,
            by=args.by,
            metrics=args.metrics,
            compare=args.compare,
            curves=args.curves,
            tasks=args.tasks,
            wandb_paths=args.wandb,
            wandb_project=args.wandb_project,
            wandb_group=args.wandb_group,
            reps=args.reps,
            seed=args.seed,
            confidence=args.confidence,
            heatmap_metric=args.heatmap_metric,
            plots=not args.no_plots,
        )
    except (ValueError, RuntimeError, FileNotFoundError) as exc:
        print(f"recsim-compare: {exc}", file=sys.stderr)
        return 2
    out = Path(args.out)
    counts = ", ".join(f"{n} {s}" for s, n in results["counts"].items())
    print(f"{len(results['group_order'])} group(s) from {counts}; report: {out / 'report.md'}")
    for r in results["not_completed"]:
        print(f"  [{r['status']}] {r['path']} {' '.join(r['overrides'])}: {r['error']}")
    return 0 if results["group_order"] else 1


if __name__ == "__main__":
    sys.exit(main())
