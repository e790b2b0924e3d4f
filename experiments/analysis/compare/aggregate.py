"""Grouping runs and the statistics of each group (mean, IQM, bootstrap CIs, P(improvement)).

Only completed runs enter the statistics; the others are listed with their status and error.
Directions (which way is better) come from the metric schema.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from experiments.analysis import stats
from experiments.analysis.compare.load import Run
from experiments.analysis.compare.time_to_good import time_to_good_section
from experiments.analysis.schema import COMPARE_METRICS, lower_is_better

# ---------------------------------------------------------------------------------------- groups
#: what recsim-compare names as the preset of a run composed without one (the agent's defaults)
NO_PRESET = "defaults"


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


SPLIT_KEYS = ("agent", "env")  # never pooled as if they were seeds, unless asked (--pool)


def split_keys(runs: Sequence[Run], by: Sequence[str], pool: bool = False) -> list[str]:
    """The keys of :data:`SPLIT_KEYS` missing from ``by`` whose value differs between ``runs``.

    Why: grouping a sweep by hyperparameters alone (``--by agent.gamma,agent.lr``) would otherwise
    pool our DQN's runs with SB3's as if they were seeds of one thing, and print CIs over the mix.
    These keys are appended to the group key (after ``by``, so heat maps keep ``by``'s first two
    keys as axes and get one panel per agent); ``pool=True`` is the explicit way to mix them.
    """
    if pool:
        return []
    known = [r for r in runs if r.completed]  # the runs that form groups
    return [
        k for k in SPLIT_KEYS if k not in by and len({_fmt_value(r.value_of(k)) for r in known}) > 1
    ]


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
    pool: bool = False
    split: tuple[str, ...] = ()  # keys appended to ``by`` by :func:`split_keys`


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


def _paired(
    runs_a: Sequence[Run], runs_b: Sequence[Run], metric: str, settings: Settings, rng: Any
) -> dict[str, Any]:
    """A vs B on the seeds (and tasks) both have once: see :func:`stats.paired_comparison`."""

    def by_seed(runs: Sequence[Run]) -> dict[tuple[str, str], float]:
        keys = [
            (_fmt_value(r.value_of(settings.tasks)) if settings.tasks else "", _fmt_value(r.seed))
            for r in runs
        ]
        return {
            k: r.metric(metric)
            for k, r in zip(keys, runs, strict=True)
            if keys.count(k) == 1 and math.isfinite(r.metric(metric))
        }

    va, vb = by_seed(runs_a), by_seed(runs_b)
    common = sorted(set(va) & set(vb))
    return stats.paired_comparison(
        np.array([va[k] for k in common]),
        np.array([vb[k] for k in common]),
        reps=settings.reps,
        confidence=settings.confidence,
        rng=rng,
        lower_is_better=lower_is_better(metric),
    )


def analyse(runs: list[Run], settings: Settings, inputs: list[str]) -> dict[str, Any]:
    completed = [r for r in runs if r.completed]
    metrics = settings.metrics
    if metrics is None:
        present = {k for r in completed for k in r.summary if math.isfinite(r.metric(k))}
        metrics = [m for m in COMPARE_METRICS if m in present] or sorted(present)[:8]
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
        mixed = [
            k
            for k in SPLIT_KEYS
            if k not in settings.by
            and k not in varying
            and len({_fmt_value(r.value_of(k)) for r in rs}) > 1
        ]
        varying = sorted(varying + mixed)
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
                if any(len(s) < 2 for s in scores):  # a "CI" of one value would be [x, x]
                    entry["ci_mean"] = [math.nan, math.nan]
                    entry["ci_iqm"] = [math.nan, math.nan]
                    one = "1 seed" + (" in a task" if settings.tasks and n > 1 else "")
                    entry["ci_note"] = one
                    entry["note"] = f"{one}: a CI needs ≥ 2 seeds" + (
                        " per task" if settings.tasks else ""
                    )
                entry["values"] = [float(v) for s in scores for v in s]
            per_metric[metric] = entry
        group_results[label] = {
            "keys": group_values[label],
            "n_runs": len(rs),
            "seeds": seeds,
            "runs": [r.path for r in rs],
            "presets": sorted({r.preset or NO_PRESET for r in rs}),
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
                row["ci"] = [math.nan, math.nan]
                row["ci_note"] = "1 seed"
                row["note"] = "1 seed: a CI needs ≥ 2 seeds on both sides"
            row["paired"] = _paired(groups[a], groups[b], metric, settings, rng)
            rows[metric] = row
        comparisons.append({"a": a, "b": b, "metrics": rows})
    not_ok = [r for r in runs if not r.completed]
    return {
        "inputs": inputs,
        "by": settings.by,
        "split": list(settings.split),
        "pool": settings.pool,
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
        "time_to_good": time_to_good_section(groups, order),
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
                "preset": r.preset or NO_PRESET,
            }
            for r in runs
        ],
    }
