"""recsim-compare's "Time to a good policy" section: per group, the user-steps and training seconds
its runs needed to reach the target, censoring-aware over seeds.

Definitions in :mod:`experiments.analysis.time_to_good`. Only runs that logged the references at
every evaluation (``recsim-train ... protocol/parts=with_references``) have a time to good; the
section is left out when no run did.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from experiments.analysis.compare.load import Run
from experiments.analysis.schema import REFERENCE_KEYS
from experiments.analysis.time_to_good import (
    default_target,
    format_time,
    run_time_to_good,
    summarize_time_to_good,
)

SERIES = ("eval/return", *REFERENCE_KEYS, "time/sps")


def time_to_good_section(
    groups: Mapping[str, Sequence[Run]], order: Sequence[str]
) -> dict[str, Any] | None:
    """``{"groups": {label: {"target", "summary", "runs"}}}`` for the groups with references."""
    out: dict[str, Any] = {}
    for label in order:
        rows, results, targets = [], [], set()
        for run in groups[label]:
            series = {k: s for k in SERIES if (s := run.series(k)) is not None}
            result = run_time_to_good(series)
            if result is None:
                continue
            targets.add(default_target("eval/ref_longterm_return" in series).describe())
            results.append(result)
            rows.append({"seed": run.seed, "path": run.path, **result.to_dict()})
        if results:
            out[label] = {
                "target": " / ".join(sorted(targets)),
                "summary": summarize_time_to_good(results),
                "runs": rows,
            }
    return {"groups": out} if out else None


def render_time_to_good(section: Mapping[str, Any] | None) -> list[str]:
    """Markdown lines of the section (none when ``section`` is ``None``)."""
    if not section:
        return []
    lines = [
        "## Time to a good policy",
        "",
        "The first evaluation whose `eval/return` reaches the target, measured against the "
        "references on the same evaluation users (`protocol/parts=with_references`): user-steps "
        "and training wall-clock seconds (evaluations and checkpoints excluded). `> budget`: never "
        "reached (censored at the run's budget). Across seeds: the Kaplan–Meier median, which "
        "counts censored runs (`> budget` when more than half never reached the target).",
        "",
        "| group | target | reached | user-steps (KM median) | seconds (KM median) | per seed "
        "(user-steps) | best eval/return ÷ target |",
        "|---|---|---|---|---|---|---|",
    ]
    for label, g in section["groups"].items():
        s, runs = g["summary"], g["runs"]
        steps = format_time(
            s["time_to_good/user_steps_km_median"], s["time_to_good/max_budget_steps"]
        )
        secs = format_time(
            s["time_to_good/seconds_km_median"], s["time_to_good/max_budget_seconds"], " s"
        )
        per_seed = ", ".join(
            f"s{r['seed']}: "
            + format_time(r["user_steps"] if r["reached"] else math.nan, r["budget_steps"])
            for r in runs
        )
        best = ", ".join(f"{r['best_ratio']:.2f}" for r in runs)
        lines.append(
            f"| {label} | {g['target']} | {s['time_to_good/reached']:.0f}/{len(runs)} | {steps} | "
            f"{secs} | {per_seed} | {best} |"
        )
    return [*lines, ""]
