"""The text of a ``recsim-compare`` report: ``report.md``, ``results.json`` and ``runs.csv``."""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from experiments.analysis.compare.aggregate import (
    NO_PRESET,
    Settings,
    _nan_to_none,
    group_label,
)
from experiments.analysis.compare.load import Run
from experiments.analysis.compare.recovery_spread import render_spread
from experiments.analysis.compare.time_to_good import render_time_to_good
from experiments.analysis.schema import arrow, better


# ---------------------------------------------------------------------------------------- report
def _fmt(x: Any, digits: int = 4) -> str:
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "n/a"
    return f"{x:.{digits}g}"


def _fmt_ci(ci: Sequence[float]) -> str:
    if not ci or any(c is None or not math.isfinite(c) for c in ci):
        return "n/a"
    return f"[{_fmt(ci[0])}, {_fmt(ci[1])}]"


def _ci_cell(entry: Mapping[str, Any], key: str) -> str:
    """The CI of a table cell; "1 seed" where there is no CI because one seed is all there is."""
    ci = entry.get(key)
    if ci and all(c is not None and math.isfinite(c) for c in ci):
        return _fmt_ci(ci)
    return str(entry.get("ci_note") or "n/a")


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
        f'{st["seed"]}). A CI needs at least 2 seeds (per task): with one it reads "1 seed". '
        "With few seeds (< 5) bootstrap CIs are optimistic: with 2 seeds a CI cannot reach beyond "
        "[min, max].",
        "",
    ]
    if results.get("split"):
        split = ", ".join(f"`{k}`" for k in results["split"])
        lines += [
            f"Groups are also split by {split}: runs of different "
            f"{' or '.join(results['split'])}s are never pooled as if they were seeds "
            "(`--pool` pools them).",
            "",
        ]
    groups, order, metrics = results["groups"], results["group_order"], results["metrics"]
    if not order:
        lines += ["**No completed runs: nothing to compare.**", ""]
    else:
        lines += ["## Overview: IQM [95 % CI]", ""]
        header = "| group | n | " + " | ".join(f"{m} {arrow(m)}".rstrip() for m in metrics) + " |"
        lines += [header, "|" + "---|" * (2 + len(metrics))]
        for label in order:
            g = groups[label]
            cells = [
                f"{_fmt(g['metrics'][m]['iqm'])} {_ci_cell(g['metrics'][m], 'ci_iqm')}"
                for m in metrics
            ]
            lines.append(f"| {_md_escape(label)} | {g['n_runs']} | " + " | ".join(cells) + " |")
        lines.append("")
        presets = {label: groups[label].get("presets", [NO_PRESET]) for label in order}
        if any(p != [NO_PRESET] for p in presets.values()):  # name them where any was used
            lines += [
                "Hyperparameters (tuned preset `conf/agent/tuned/<agent>/<env>.yaml`, or the defaults):",
                "",
            ]
            lines += [f"- **{_md_escape(label)}**: {', '.join(p)}" for label, p in presets.items()]
            lines.append("")
        notes = [(label, n) for label in order for n in groups[label]["notes"]]
        if notes:
            lines += (
                ["Notes:", ""] + [f"- **{_md_escape(label)}**: {n}" for label, n in notes] + [""]
            )
        for m in metrics:
            lines += [f"### {m} ({better(m, words=True)})", ""]
            lines += [
                "| group | n | mean | 95 % CI (mean) | IQM | 95 % CI (IQM) | min | max | note |"
            ]
            lines += ["|---|---|---|---|---|---|---|---|---|"]
            for label in order:
                e = groups[label]["metrics"][m]
                lines.append(
                    f"| {_md_escape(label)} | {e['n']} | {_fmt(e['mean'])} | {_ci_cell(e, 'ci_mean')} | "
                    f"{_fmt(e['iqm'])} | {_ci_cell(e, 'ci_iqm')} | {_fmt(e.get('min'))} | "
                    f"{_fmt(e.get('max'))} | {e.get('note', '')} |"
                )
            lines.append("")
    for comp in results["comparisons"]:
        a, b = comp["a"], comp["b"]
        lines += [
            f"## Probability of improvement: {a} vs {b}",
            "",
            f"P({a} better than {b}): the chance that a run of {a} beats a run of {b} (ties count ½; "
            "for lower-is-better metrics, better = lower). Paired: runs of the same seed (the same "
            "world) side by side, A − B and A / B averaged over the seeds both have, with a 95 % "
            "bootstrap CI over those seeds (A / B only where every B > 0).",
            "",
            "| metric | P(A better) | 95 % CI | n (A, B) | paired seeds | A − B [95 % CI] | A / B [95 % CI] | A better on | note |",
            "|---|---|---|---|---|---|---|---|---|",
        ]
        for m, row in comp["metrics"].items():
            n = row.get("n", ["", ""])
            pr = row.get("paired") or {}
            one = {"ci_note": "1 seed"} if pr and pr.get("n", 0) < 2 else {}
            paired = (
                f"{pr['n']} | {_fmt(pr['diff'])} {_ci_cell({**pr, **one}, 'ci_diff')} | "
                f"{_fmt(pr['ratio'])} {_ci_cell({**pr, **one}, 'ci_ratio')} | "
                f"{pr['a_better']}/{pr['n']}"
                if pr
                else " | | | "
            )
            lines.append(
                f"| {m} | {_fmt(row['poi'], 3)} | {_ci_cell(row, 'ci')} | {n[0]}, {n[1]} | {paired} | {row.get('note', '')} |"
            )
        lines.append("")
    lines += render_time_to_good(results.get("time_to_good"))
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
    recovery = figures.get("recovery")
    if recovery:
        st = recovery["settings"]
        lines += [
            "## Recovery after drift events",
            "",
            f"![recovery curve]({recovery['file']})",
            "",
        ]
        lines.append(
            "Share of the myopic oracle's expected reward (ground truth) vs user-steps since each "
            "drift event: per run the mean over its events, then the mean over runs with a 95 % "
            f"bootstrap band over runs (bins of {recovery['width']} user-steps). Right: relative "
            f"to each event's pre-event level (the share over the {st['baseline']} user-steps "
            f"before it); recovered = back above {1 - st['tolerance']:g} averaged over "
            f"{st['sustain']} user-steps, until the end of the {st['horizon']}-step horizon or "
            "the next event. Dashed: a copy of the agent frozen at each event (if measured)."
        )
        lines += [
            "",
            "Columns: *events* with a defined pre-event level; *recovered* / *censored*: back "
            "above the threshold by the end of the watch, or not; *share recovered* = recovered / "
            "events; *KM mean* / *median*: user-steps to recover (Kaplan–Meier: a censored event "
            "counts for as long as it was watched); *drop*: 1 − the first sustain window's share / "
            "the pre-event level; *auc*: the post-event share over the watch / the pre-event level "
            "(1 = nothing lost). Every one of them is relative to the agent's **own** pre-event "
            "level: a policy that learns nothing (random) has nothing to lose when the world "
            'jumps, so it "recovers" at once — compare recovery between agents of similar reward.',
        ]
        for key, title in (
            ("pooled", "Pooled over every event of a group's runs"),
            (
                "pooled_hurt",
                f"Only the events that hurt (initial drop > {st['tolerance']:g}; each agent on "
                "the events that hurt *it*: a conditional view)",
            ),
        ):
            lines += [
                "",
                f"{title} — Kaplan–Meier over the pooled events, its 95 % CI from a bootstrap "
                "over runs:",
                "",
                "| group | events | recovered | censored | share recovered | KM mean [95 % CI] | "
                "KM median | drop | auc |",
                "|---|---|---|---|---|---|---|---|---|",
            ]
            for name in recovery["groups"]:
                pooled = recovery[key][name]
                defined = pooled["recovery_recovered"] + pooled["recovery_censored"]
                lines.append(
                    f"| {_md_escape(name)} | {defined:.0f} | {pooled['recovery_recovered']:.0f} | "
                    f"{pooled['recovery_censored']:.0f} | {_fmt(pooled['recovered_share'], 3)} | "
                    f"{_fmt(pooled['recovery_time_km_mean'])} {_fmt_ci(pooled['km_mean_ci'])} | "
                    f"{_fmt(pooled['recovery_time_km_median'])} | "
                    f"{_fmt(pooled['recovery_drop'], 3)} | {_fmt(pooled['recovery_auc'], 3)} |"
                )
        if recovery.get("same_when_frozen"):
            lines.append(
                "- frozen copies identical to the runs themselves (not drawn): "
                + ", ".join(recovery["same_when_frozen"])
            )
        if recovery.get("skipped"):
            lines.append(f"- left out (other recovery settings): {', '.join(recovery['skipped'])}")
        lines.append("")
    lines += render_spread(results.get("recovery_spread"))
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
    lines += [
        "## Runs",
        "",
        "| group | seed | status | source | preset | path |",
        "|---|---|---|---|---|---|",
    ]
    for r in results["runs"]:
        lines.append(
            f"| {_md_escape(r['group'] or '')} | {r['seed'] if r['seed'] is not None else ''} | {r['status']} | "
            f"{r['source']} | {_md_escape(r.get('preset', ''))} | `{_md_escape(r['path'])}` |"
        )
    lines.append("")
    return "\n".join(lines)


def write_outputs(
    runs: list[Run], results: dict[str, Any], settings: Settings, out_dir: Path
) -> None:
    (out_dir / "report.md").write_text(render_markdown(results))
    (out_dir / "results.json").write_text(
        json.dumps(_nan_to_none(results), indent=2, allow_nan=False) + "\n"
    )
    with open(out_dir / "runs.csv", "w", newline="") as f:
        writer = csv.writer(f)
        metrics = results["metrics"]
        writer.writerow(["group", "seed", "status", "source", "path", *metrics, "error", "preset"])
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
                    run.preset or NO_PRESET,
                ]
            )
