"""The figures of a ``recsim-compare`` report: learning curves with drift events, the recovery
curve after drift events (:mod:`.recovery_plot`), final metrics, heat maps over two swept keys
(matplotlib's object API, no pyplot: no global state)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from experiments.analysis import stats
from experiments.analysis.compare.aggregate import (
    Settings,
    _fmt_value,
    _sort_key,
    align_curves,
    group_label,
)
from experiments.analysis.compare.figure import new_figure as _figure
from experiments.analysis.compare.load import Run
from experiments.analysis.compare.recovery_plot import plot_recovery
from experiments.analysis.schema import better, lower_is_better

# ---------------------------------------------------------------------------------------- plots
PANEL_GROUPS = 10  # more groups than this in one curve plot: one panel per agent


def display_label(keys: Mapping[str, Any], drop: Sequence[str] = ()) -> str:
    """A group's label for a plot: the values alone for one key, else ``name=value`` with the
    last part of each dotted name (``gamma=0.9, lr=0.001, agent=dqn``), ``drop`` left out (a
    panel's title already says it)."""
    items = [(k, v) for k, v in keys.items() if k not in drop]
    if not items:
        return ", ".join(_fmt_value(v) for v in keys.values())
    if len(items) == 1 and len(keys) == 1:
        return _fmt_value(items[0][1])
    return ", ".join(f"{k.rsplit('.', 1)[-1]}={_fmt_value(v)}" for k, v in items)


def curve_panels(
    order: Sequence[str], keys: Mapping[str, Mapping[str, Any]], by: Sequence[str]
) -> list[tuple[str | None, list[str]]]:
    """``(agent or None, group labels)`` per panel: one panel, or — when there are more than
    :data:`PANEL_GROUPS` groups and they span several agents — one panel per agent, so that no
    legend has to hold every group of a sweep."""
    agents = [_fmt_value(keys[g].get("agent")) for g in order] if "agent" in by else []
    if len(order) <= PANEL_GROUPS or len(set(agents)) < 2:
        return [(None, list(order))]
    panels: dict[str, list[str]] = {}
    for label, agent in zip(order, agents, strict=True):
        panels.setdefault(agent, []).append(label)
    return list(panels.items())


def _slug(text: str) -> str:
    return "".join(c if c.isalnum() else "_" for c in text).strip("_")


def plot_all(
    runs: list[Run], results: dict[str, Any], settings: Settings, out_dir: Path
) -> dict[str, Any]:
    completed = [r for r in runs if r.completed]
    groups: dict[str, list[Run]] = {}
    for run in completed:
        groups.setdefault(group_label(run, settings.by), []).append(run)
    figures: dict[str, Any] = {"curves": {}, "final_metrics": None, "heatmaps": []}
    colors = _colors(len(results["group_order"]))
    keys = {g: results["groups"][g]["keys"] for g in results["group_order"]}
    for key in settings.curves:
        entry = _plot_curve(key, groups, results["group_order"], colors, settings, out_dir, keys)
        if entry:
            figures["curves"][key] = entry
    recovery = plot_recovery(
        groups, results["group_order"], colors, settings.confidence, settings.seed, out_dir
    )
    if recovery is not None:
        figures["recovery"] = recovery
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
    keys: Mapping[str, Mapping[str, Any]] | None = None,
) -> dict[str, Any] | None:
    keys = keys or {g: {"group": g} for g in order}
    panels = curve_panels(order, keys, settings.by)
    fig, axes = _figure(
        len(panels), 1, size=(7.0, 3.6 if len(panels) > 1 else 4.2), extra_width=3.0
    )
    grids: dict[str, str] = {}
    events: dict[int, int] = {}
    n_runs = 0
    plotted = False
    for row, (agent, labels) in enumerate(panels):
        ax = axes[row][0]
        panel_colors = colors if agent is None else _colors(len(labels))
        for i, label in enumerate(labels):
            color = panel_colors[order.index(label) if agent is None else i]
            series = [
                s for s in (r.series(key) for r in groups[label]) if s is not None and len(s[0])
            ]
            if not series:
                continue
            steps, values, how = align_curves(series)
            grids[label] = how
            if len(steps) == 0:
                continue
            mean, lo, hi = stats.mean_band(
                values, reps=1000, confidence=settings.confidence, rng=settings.seed
            )
            name = display_label(keys[label], drop=("agent",) if agent is not None else ())
            ax.plot(steps, mean, color=color, label=f"{name} (n={len(series)})", linewidth=1.6)
            if len(series) >= 2:
                ax.fill_between(steps, lo, hi, color=color, alpha=0.2, linewidth=0)
            plotted = True
            for run in groups[label]:
                n_runs += 1
                for s in set(run.drift_event_steps()):
                    events[s] = events.get(s, 0) + 1
        ax.set_xlabel("user-steps")
        ax.set_ylabel(key)
        title = f"{key}: mean over seeds, {settings.confidence:.0%} bootstrap CI band"
        ax.set_title(title if agent is None else f"agent={agent} — {title}", fontsize=9)
        ax.grid(alpha=0.3)
    if not plotted:
        return None
    for row in range(len(panels)):
        ax = axes[row][0]
        for j, (step, count) in enumerate(sorted(events.items())):
            ax.axvline(
                step,
                color="0.3",
                linestyle="--",
                linewidth=0.8,
                alpha=0.15 + 0.6 * min(count / max(n_runs, 1), 1.0),
                label="drift event (darker: in more runs)" if j == 0 else None,
            )
        # outside the axes, right: a sweep's many groups never cover the curves
        ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0.0)
    name = f"curve_{_slug(key)}.png"
    fig.savefig(out_dir / name, dpi=110)
    return {"file": name, "grid": grids, "drift_events": len(events), "panels": len(panels)}


def _plot_final(results: Mapping[str, Any], colors: Sequence[Any], out_dir: Path) -> str:
    name = "final_metrics.png"
    final_metrics_figure(results, colors).savefig(out_dir / name, dpi=110)
    return name


def final_metrics_figure(results: Mapping[str, Any], colors: Sequence[Any]) -> Any:
    """IQM, CI and seeds of each metric per group, one panel per metric (a matplotlib Figure)."""
    metrics = results["metrics"]
    order = results["group_order"]
    from matplotlib.ticker import MaxNLocator

    ncols = min(3, len(metrics))
    nrows = math.ceil(len(metrics) / ncols)
    names = [display_label(results["groups"][g]["keys"]) for g in order]
    # one set of group labels (shared y, left column only), a few compact x ticks per panel
    fig, axes = _figure(
        nrows,
        ncols,
        size=(3.4, 0.32 * len(order) + 1.4),
        sharey=True,
        extra_width=0.065 * max(map(len, names), default=0),
    )
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
        if idx % ncols == 0:
            ax.set_yticks(range(len(order)), list(reversed(names)), fontsize=7)
        ax.xaxis.set_major_locator(MaxNLocator(nbins=4))
        ax.ticklabel_format(axis="x", style="sci", scilimits=(-3, 4), useMathText=True)
        ax.tick_params(axis="x", labelsize=7)
        ax.set_title(f"{metric}\n({better(metric)})", fontsize=8)
        ax.grid(axis="x", alpha=0.3)
    for idx in range(len(metrics), nrows * ncols):
        axes[idx // ncols][idx % ncols].set_visible(False)
    fig.suptitle("IQM (dot), 95 % bootstrap CI (bar), seeds (ticks)", fontsize=10)
    return fig


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
