"""The recovery-curve figure of a ``recsim-compare`` report: share of the myopic oracle's expected
reward vs user-steps since a drift event, one line per group, mean over seeds with a 95 %
bootstrap band (from each run's ``recovery.npz``, written by ``experiments.run.recovery``).

Per run, the events' curves are re-binned (ratio of sums, exactly) and averaged over its events;
the band is over runs (seeds), the independent unit — events of one run share its agent and
world, so they are not resampled as if independent. A second panel shows the same relative to
each event's pre-event level, with the recovery threshold ``1 - tolerance``. The per-event frozen
copies (``protocol.recovery_counterfactual``) are drawn dashed in their group's colour.

``pooled`` in the returned entry: the recovery summary over all events of a group's runs pooled
(Kaplan–Meier over every event, counts; the KM mean with a bootstrap CI that resamples runs), next
to the per-run statistics of the tables. ``pooled_hurt``: the same over the events that *hurt*
(an initial drop beyond the tolerance): how fast an agent gets back when it does fall. It is a
conditional view — each agent is counted on the events that hurt *it*, so an agent that is rarely
hurt is not credited for that there; the unconditional numbers come first.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from experiments.analysis import stats
from experiments.analysis.compare.figure import new_figure
from experiments.analysis.compare.load import Run
from experiments.analysis.recovery import km_restricted_mean, rebin_curves, summarize_recovery

POINTS = 80  # about this many points per curve after re-binning
REPS = 2000  # bootstrap resamples of the pooled Kaplan–Meier mean


def _hurt(record: Mapping[str, Any], tolerance: float) -> bool:
    """An event that hurt: defined, with an initial drop beyond the tolerance."""
    drop = record.get("drop")
    return record["status"] != "undefined" and drop is not None and drop > tolerance


def pooled_km_ci(
    runs: Sequence[Sequence[Mapping[str, Any]]], confidence: float = 0.95, seed: int = 0
) -> list[float]:
    """Bootstrap CI of the Kaplan–Meier mean of the events pooled over runs, resampling *runs*
    (an event's run is its cluster: events of one run share the agent and the world)."""
    data = [
        (
            np.array(
                [
                    float(r["recovery_steps"] or r["censoring_steps"] or 0)
                    for r in run
                    if r["status"] != "undefined"
                ]
            ),
            np.array([r["status"] == "recovered" for r in run if r["status"] != "undefined"]),
        )
        for run in runs
    ]
    if sum(t.size for t, _ in data) == 0 or len(data) < 2:
        return [float("nan"), float("nan")]
    rng = np.random.default_rng(seed)
    boot = []
    for _ in range(REPS):
        pick = rng.integers(0, len(data), size=len(data))
        times = np.concatenate([data[i][0] for i in pick])
        flags = np.concatenate([data[i][1] for i in pick])
        boot.append(km_restricted_mean(times, flags) if times.size else np.nan)
    alpha = 100 * (1 - confidence) / 2
    lo, hi = np.nanpercentile(boot, [alpha, 100 - alpha])
    return [float(lo), float(hi)]


def _width(settings: Mapping[str, Any]) -> int:
    """Plot bin width: a multiple of the tracker's bin, about ``horizon / POINTS`` user-steps."""
    fine = int(settings["bin_size"])
    return fine * max(1, round(int(settings["horizon"]) / POINTS / fine))


def _per_run(curves: Mapping[str, Any], width: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(offsets, share, relative)``: the run's mean over its events per plot bin."""
    offsets, share = rebin_curves(curves["offsets"], curves["value"], curves["best"], width)
    pre = np.array(
        [r["pre_level"] if r.get("pre_level") is not None else np.nan for r in curves["records"]],
        dtype=np.float64,
    )
    with np.errstate(invalid="ignore", divide="ignore"):
        relative = share / pre[:, None] if pre.size == share.shape[0] else share * np.nan
    with np.errstate(all="ignore"):
        return offsets, _nanmean_rows(share), _nanmean_rows(relative)


def _nanmean_rows(values: np.ndarray) -> np.ndarray:
    finite = np.isfinite(values)
    count = finite.sum(axis=0)
    total = np.where(finite, values, 0.0).sum(axis=0)
    return np.where(count > 0, total / np.maximum(count, 1), np.nan)


def plot_recovery(
    groups: Mapping[str, list[Run]],
    order: Sequence[str],
    colors: Sequence[Any],
    confidence: float,
    seed: int,
    out_dir: Path,
) -> dict[str, Any] | None:
    """Write ``recovery_curve.png``; ``None`` when no run has recovery curves."""
    loaded = {label: [(r, r.recovery()) for r in groups.get(label, [])] for label in order}
    reference = next((c for runs in loaded.values() for _, c in runs if c is not None), None)
    if reference is None:
        return None
    ref_settings = {k: reference["settings"][k] for k in ("horizon", "baseline", "bin_size")}
    width = _width(reference["settings"])
    tolerance = float(reference["settings"]["tolerance"])
    fig, axes = new_figure(1, 2, size=(5.6, 3.9))
    share_ax, rel_ax = axes[0][0], axes[0][1]
    entry: dict[str, Any] = {"file": "recovery_curve.png", "width": width, "groups": {}}
    skipped: list[str] = []
    for i, label in enumerate(order):
        lines: dict[str, list[tuple[np.ndarray, np.ndarray, np.ndarray]]] = {"": [], "frozen": []}
        events = {"": 0, "frozen": 0}
        records: dict[str, list[dict[str, Any]]] = {"": [], "frozen": []}
        per_run: dict[str, list[list[dict[str, Any]]]] = {"": [], "frozen": []}
        for run, curves in loaded[label]:
            if curves is None:
                continue
            if {k: curves["settings"][k] for k in ref_settings} != ref_settings:
                skipped.append(run.path)
                continue
            lines[""].append(_per_run(curves, width))
            events[""] += len(curves["records"])
            records[""] += list(curves["records"])
            per_run[""].append(list(curves["records"]))
            frozen = curves.get("frozen")
            if frozen is not None and len(frozen["records"]):
                part = {"offsets": curves["offsets"], **frozen}
                lines["frozen"].append(_per_run(part, width))
                events["frozen"] += len(frozen["records"])
                records["frozen"] += list(frozen["records"])
                per_run["frozen"].append(list(frozen["records"]))
        if records["frozen"] == records[""]:  # e.g. the oracle, a frozen agent: the copy is it
            lines["frozen"] = []
            entry.setdefault("same_when_frozen", []).append(label)
        for kind, runs in lines.items():
            if not runs:
                continue
            name = label if not kind else f"{label}, frozen at each event"
            offsets = runs[0][0]
            for ax, column in ((share_ax, 1), (rel_ax, 2)):
                values = np.stack([r[column] for r in runs])
                keep = np.all(np.isfinite(values), axis=0)
                if not keep.any():
                    continue
                mean, lo, hi = stats.mean_band(
                    values[:, keep], reps=1000, confidence=confidence, rng=seed
                )
                style = "--" if kind else "-"
                ax.plot(
                    offsets[keep],
                    mean,
                    style,
                    color=colors[i],
                    linewidth=1.5,
                    label=f"{name} (n={len(runs)}, {events[kind]} events)",
                )
                if len(runs) >= 2:
                    ax.fill_between(offsets[keep], lo, hi, color=colors[i], alpha=0.18, lw=0)
            entry["groups"][name] = {"runs": len(runs), "events": events[kind]}
            pooled = entry.setdefault("pooled", {})
            pooled[name] = summarize_recovery(records[kind], prefix="")
            pooled[name]["km_mean_ci"] = pooled_km_ci(per_run[kind], confidence, seed)
            hurt = [[r for r in run if _hurt(r, tolerance)] for run in per_run[kind]]
            entry.setdefault("pooled_hurt", {})[name] = {
                **summarize_recovery([r for run in hurt for r in run], prefix=""),
                "km_mean_ci": pooled_km_ci(hurt, confidence, seed),
            }
    if not entry["groups"]:
        return None
    for ax in (share_ax, rel_ax):
        ax.axvline(0, color="0.3", linestyle=":", linewidth=0.9)
        ax.set_xlabel("user-steps since the drift event")
        ax.grid(alpha=0.3)
    rel_ax.axhline(1 - tolerance, color="0.3", linestyle="--", linewidth=0.8)
    share_ax.set_ylabel("share of the oracle's expected reward")
    rel_ax.set_ylabel("relative to the pre-event level")
    share_ax.set_title(f"mean over seeds, {confidence:.0%} bootstrap band", fontsize=9)
    rel_ax.set_title(f"dashed: recovery threshold 1 - {tolerance:g}", fontsize=9)
    handles, labels = share_ax.get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncol=3, fontsize=7, frameon=False)
    fig.savefig(out_dir / entry["file"], dpi=80)
    entry["skipped"] = skipped
    entry["settings"] = dict(reference["settings"])
    return entry
