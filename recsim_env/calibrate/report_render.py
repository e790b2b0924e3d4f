"""The human-readable side of the fidelity report: its PNG plots and ``report.md``.

Kept apart from :func:`recsim_env.calibrate.report.validate`, which measures: these functions only
draw and format the result it computed (matplotlib is imported only when plots are drawn).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from recsim_env.calibrate import fidelity as F
from recsim_env.calibrate.log_profiles import DISTANCES, DRIFT

if TYPE_CHECKING:
    from recsim_env.data import InteractionLog

_POLICY_TEXT = {"uniform": "uniform", "popularity": "popularity-proportional"}


_STYLE = {
    "real_test": ("held-out real", "k", "-"),
    "train_split": ("training split (ceiling)", "tab:green", ":"),
    "calibrated": ("calibrated sim", "tab:blue", "-"),
    "default": ("default sim (floor)", "tab:red", "--"),
}


def plots(profiles: dict[str, dict[str, Any]], log: InteractionLog, out: Path) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    written = []

    def save(fig: Any, name: str) -> None:
        fig.tight_layout()
        fig.savefig(out / name, dpi=110)
        plt.close(fig)
        written.append(name)

    fig, ax = plt.subplots(figsize=(5.5, 4))
    for n, p in profiles.items():
        lab, col, ls = _STYLE[n]
        curve = F.rank_frequency(p["item_counts"])
        ax.plot(np.arange(1, curve.size + 1) / curve.size, curve, color=col, ls=ls, label=lab)
    ax.set(xlabel="item rank / catalogue size", ylabel="cumulative share of consumptions")
    ax.set_title("item popularity")
    ax.legend()
    save(fig, "popularity.png")

    with_shares = {n: p for n, p in profiles.items() if "shares" in p}
    if with_shares:
        g = len(next(iter(with_shares.values()))["shares"])
        names = list(log.category_columns) or [f"topic_{i}" for i in range(g)]
        fig, ax = plt.subplots(figsize=(max(6, 0.4 * g), 4))
        width = 0.8 / len(with_shares)
        for j, (n, p) in enumerate(with_shares.items()):
            if p["shares"].size != g:
                continue
            ax.bar(
                np.arange(g) + j * width, p["shares"], width, color=_STYLE[n][1], label=_STYLE[n][0]
            )
        ax.set_xticks(
            np.arange(g) + 0.4 - width / 2, names[:g], rotation=60, ha="right", fontsize=7
        )
        ax.set(ylabel="share of consumptions", title="category shares")
        ax.legend(fontsize=7)
        save(fig, "category_shares.png")

    for key, title, xlabel, fname in (
        ("activity", "user activity", "consumptions per user / mean", "activity.png"),
        ("session_lengths", "session length", "interactions (steps) per session", "sessions.png"),
        ("gaps_ticks", "return gap", "ticks between sessions", "gaps.png"),
    ):
        fig, ax = plt.subplots(figsize=(5.5, 4))
        for n, p in profiles.items():
            v = np.sort(np.asarray(p[key], np.float64))
            if v.size:
                lab, col, ls = _STYLE[n]
                ax.step(
                    v, np.arange(1, v.size + 1) / v.size, where="post", color=col, ls=ls, label=lab
                )
        ax.set(xlabel=xlabel, ylabel="CDF", title=title)
        ax.set_xscale("log")
        ax.legend(fontsize=7)
        save(fig, fname)

    real = profiles["real_test"].get("window_shares")
    if real is not None:
        top = np.argsort(-np.nanmean(real, axis=0))[:4]
        names = list(log.category_columns)
        fig, axes = plt.subplots(1, len(top), figsize=(3.2 * len(top), 3.2), sharey=True)
        for ax, g in zip(np.atleast_1d(axes), top, strict=False):
            for n, p in profiles.items():
                ws = p.get("window_shares")
                if ws is not None and ws.shape == real.shape:
                    lab, col, ls = _STYLE[n]
                    ax.plot(ws[:, g], color=col, ls=ls, label=lab, marker=".")
            ax.set(title=names[g] if g < len(names) else f"topic {g}", xlabel="time window")
        np.atleast_1d(axes)[0].set_ylabel("share of consumptions")
        np.atleast_1d(axes)[0].legend(fontsize=6)
        save(fig, "drift.png")
    return written


def _fmt(x: Any, nd: int = 3) -> str:
    return "n/a" if x is None or (isinstance(x, float) and not np.isfinite(x)) else f"{x:.{nd}f}"


def markdown(r: dict[str, Any]) -> str:
    ch, proto = r["choice"], r["choice"]["_protocol"]
    k = proto["k"]
    lines = [
        f"# Fidelity of the calibrated simulator: {r['log']}",
        "",
        f"Held-out time: each user's last {r['split']['test_frac']:.0%} of interactions "
        f"({r['split']['test_interactions']} rows, {r['split']['test_users']} users); "
        f"the calibration was fitted on the rest ({r['split']['train_interactions']} rows). "
        f"Total {r['seconds']:.1f} s.",
        "",
        f"## Targets: {r['targets_met']} / {r['targets_total']} met",
        "",
        "| target | value | threshold | met | gap | why |",
        "|---|---|---|---|---|---|",
    ]
    for t in r["targets"]:
        met = {True: "met", False: "**not met**", None: "n/a"}[t["met"]]
        lines.append(
            f"| {t['target']} | {_fmt(t['value'])} | {_fmt(t['threshold'])} | {met} | "
            f"{_fmt(t['gap'])} | {t.get('note', '')} |"
        )
    lines += [
        "",
        "## Choice fidelity",
        "",
        f"Each model ranks all {proto['num_items']} items for each of {proto['num_test_users']} test "
        f"users (training items excluded). recall@{k} = {proto['recall']}; AUC = {proto['auc']}. "
        "95 % bootstrap CIs over users.",
        "",
        f"| model | recall@{k} | NDCG@{k} | AUC | seconds |",
        "|---|---|---|---|---|",
    ]
    for n, e in ch.items():
        if n.startswith("_"):
            continue
        cells = [
            f"{_fmt(e[m])} [{_fmt(e[m + '_ci95'][0])}, {_fmt(e[m + '_ci95'][1])}]"
            for m in ("recall", "ndcg", "auc")
        ]
        lines.append(f"| {n} | {' | '.join(cells)} | {e['seconds']:.2f} |")
    for n, p in r["paired_recall"].items():
        lines.append(
            f"\nPaired over users, {n}: {_fmt(p['mean'], 4)} "
            f"[{_fmt(p['ci95'][0], 4)}, {_fmt(p['ci95'][1], 4)}]"
        )
    sim = r["simulation"]
    lines += [
        "",
        "## Distributional fidelity (distance from the held-out real log; 0 = identical)",
        "",
        f"Simulated logs: {sim['num_users']} concurrent users x {sim['steps']} steps, "
        f"{_POLICY_TEXT[sim['policy']]} logging policy, seed {sim['seed']}; sessions split at gaps > "
        f"{sim['gap_seconds']:g} s ({sim['tick_seconds']:g} s per tick); drift over the first "
        f"{sim['num_windows']} trajectory windows ({sim['window_ticks']} ticks = "
        f"{sim['window_seconds']:g} s each; fewer than 2: not measured); popularity curves from "
        f"{sim['popularity_sample']} consumptions of each log. Consumptions: "
        + ", ".join(f"{n} {v}" for n, v in sim["consumed"].items())
        + ".",
        "",
        "The training split is real data of the same users: its distance is what the split itself "
        "costs (the held-out part is each user's later choices, its first session cut at the "
        "split point), a level no simulator of the training period should be expected to beat.",
        "",
        "| distance | calibrated | default (floor) | training split (ceiling) |",
        "|---|---|---|---|",
    ]
    d = r["distributions"]
    for name in (*DISTANCES, DRIFT, "drift_r"):
        lines.append(
            f"| {name} | {_fmt(d['calibrated'][name])} | {_fmt(d['default'][name])} | "
            f"{_fmt(d['train_split'][name])} |"
        )
    if "distributions_in_sample" in r:
        ins = r["distributions_in_sample"]
        lines += [
            "",
            "### In sample: distance from the training split (the period the fit saw)",
            "",
            "What a calibration can reproduce at all; the targets above are on held-out time.",
            "",
            "| distance | calibrated | default |",
            "|---|---|---|",
        ]
        for name in (*DISTANCES, DRIFT):
            lines.append(
                f"| {name} | {_fmt(ins['calibrated'][name])} | {_fmt(ins['default'][name])} |"
            )
    lines += ["", "## Plots", ""]
    lines += [f"![{p}]({p})" for p in r.get("plots", [])]
    return "\n".join(lines) + "\n"
