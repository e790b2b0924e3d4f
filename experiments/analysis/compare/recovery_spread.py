"""The "recovery time between worlds" section of a ``recsim-compare`` report (issue 23).

From each completed run's ``recovery.npz`` records (the main stream's events; the frozen copies
are left out), an event table with ``world`` = the run's seed (``task/seed`` with ``--tasks``),
then :func:`experiments.analysis.recovery_spread.recovery_spread`: per group the per-world spread
of the KM mean recovery time, and per pair (the ``--compare`` pairs; without them every pair when
there are at most :data:`ALL_PAIRS_UP_TO` groups) whether the data separate the two (a
hierarchical bootstrap over worlds and events, paired by world) and how many events per world
would. Present only when some run has recovery records; computed
whether or not figures are drawn.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from experiments.analysis.compare.aggregate import Settings, _fmt_value, group_label
from experiments.analysis.compare.load import Run
from experiments.analysis.recovery_spread import event_rows, recovery_spread

REPS = 2000  # hierarchical bootstrap resamples (each resamples every world's events)
ALL_PAIRS_UP_TO = 3  # groups; with more, only the --compare pairs (a few seconds each)


def spread_from_runs(runs: Sequence[Run], settings: Settings) -> dict[str, Any] | None:
    """The section's numbers (JSON-ready but for ``inf``/``nan``), ``None`` without records."""
    table: list[dict[str, Any]] = []
    for run in runs:
        if not run.completed:
            continue
        curves = run.recovery()
        if curves is None or not len(curves.get("records", [])):
            continue
        world = _fmt_value(run.seed)
        if settings.tasks:
            world = f"{_fmt_value(run.value_of(settings.tasks))}/{world}"
        table += event_rows(group_label(run, settings.by), world, curves["records"])
    if not table:
        return None
    groups = {r["group"] for r in table}
    pairs: list[tuple[str, str]] | None = [
        (a, b) for a, b in settings.compare if a in groups and b in groups
    ]
    if not pairs and len(groups) <= ALL_PAIRS_UP_TO:
        pairs = None  # every pair
    reps = min(REPS, settings.reps)
    out = recovery_spread(
        table, pairs, reps=reps, confidence=settings.confidence, seed=settings.seed
    )
    return _json_ready(out)


def _json_ready(obj: Any) -> Any:
    """``inf`` (no number of events will do; max / min over a world at 0) as the string "inf",
    ``nan`` as ``None``: ``results.json`` allows neither, and they mean different things."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return "inf" if obj > 0 else None
    if isinstance(obj, Mapping):
        return {str(k): _json_ready(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_json_ready(v) for v in obj]
    return obj.item() if hasattr(obj, "item") else obj


def _n(x: Any, digits: int = 3) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "n/a"
    if x == "inf" or (isinstance(x, float) and math.isinf(x)):
        return "∞"
    return f"{x:,.0f}" if abs(x) >= 10**digits else f"{x:.{digits}g}"


def render_spread(entry: Mapping[str, Any] | None) -> list[str]:
    """Markdown lines of the section (none without an entry)."""
    if not entry:
        return []
    conf = f"{entry['confidence']:.0%}"
    lines = [
        "## Recovery time between worlds",
        "",
        "Per group, the Kaplan–Meier mean recovery time of each world (seed) over its own "
        "events, and how much it varies between worlds: median, IQR and range over worlds, "
        "max / min, SD. *Event part*: the SD the per-world value would have from the sampling "
        "of its events alone (bootstrap over each world's events); *world part*: what is left of "
        "the between-world SD (worlds that really differ; more events do not remove it).",
        "",
        "| group | worlds | events per world | KM mean per world | median | IQR | range "
        "| max / min | SD | event part | world part |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, g in entry["groups"].items():
        per_world = ", ".join(_n(w["km_mean"]) for w in g["worlds"])
        ev = sorted(g["events"])
        events = f"{ev[0]}" if ev[0] == ev[-1] else f"{ev[0]}–{ev[-1]}"
        event_sd = math.sqrt(g["event_var"] / max(1.0, float(sum(ev)) / len(ev)))
        world_sd = math.sqrt(g["world_var"]) if g["world_var"] is not None else None
        lines.append(
            f"| {name} | {g['n_worlds']} | {events} | {per_world} | {_n(g['median'])} | "
            f"{_n(g['iqr'])} [{_n(g['q25'])}, {_n(g['q75'])}] | {_n(g['range'])} | "
            f"{_n(g['ratio'])} | {_n(g['sd'])} | {_n(event_sd)} | {_n(world_sd)} |"
        )
    if not entry["pairs"]:
        lines += ["", "Which pairs the data separate: pass `--compare A B`."]
    else:
        lines += [
            "",
            f"Pairs, by world (the same seed is the same world for both): A − B = mean over worlds "
            f"of the difference of KM means (< 0: A recovers faster), {conf} CI from a "
            "hierarchical bootstrap (worlds, then each world's events; conservative). "
            "*Separable?*: the CI excludes 0. *Spread < |A − B|*: both groups' between-world SD "
            "is below the difference. *Events to separate* / *for spread*: events per world "
            "that would make a CI exclude 0 at this many worlds (counting the event noise once; "
            "this bootstrap may need up to twice as many) / bring both SDs below the "
            "difference, from the measured event and world parts (∞: the world part alone is "
            "too large, or there is no difference).",
            "",
            "| A vs B | worlds | A − B [CI] | A faster on | separable? | SD A, SD B "
            "| spread < \\|A − B\\| | events per world now | events to separate | for spread |",
            "|---|---|---|---|---|---|---|---|---|---|",
        ]
        for p in entry["pairs"]:
            ci = p["ci_diff"]
            lines.append(
                f"| {p['a']} vs {p['b']} | {p['worlds']} | {_n(p['diff'])} "
                f"[{_n(ci[0])}, {_n(ci[1])}] | {p.get('a_faster', 0)}/{p['worlds']} | "
                f"{'**yes**' if p['separable'] else 'no'} | "
                f"{_n(p.get('sd_a'))}, {_n(p.get('sd_b'))} | "
                f"{'yes' if p.get('spread_below_diff') else 'no'} | {_n(p.get('events'))} | "
                f"{_n(p.get('events_to_separate'))} | {_n(p.get('events_for_spread'))} |"
            )
    lines.append("")
    return lines
