"""Analyse the sim-to-real study's scores (``python -m experiments.sim2real ... --per-user``).

    python docs/studies/sim2real/scripts/analyse.py SCORES.json --out docs/studies/sim2real/results

Writes ``runs.csv`` (one row per run), ``results.json`` (every number of the report), ``table.md``
and two figures. Statistics (experiments/analysis/stats.py, percentile bootstrap, 10,000 reps):

(a) transfer: per agent, calibrated − uncalibrated real-log metric paired by seed
    (``paired_comparison``: CI over seeds); and the same difference with a CI over *users*
    (the per-user metrics of a seed's two runs are paired by user; users resampled).
(b) rank agreement: Kendall τ (scipy.stats.kendalltau, τ-b) between the agents' mean eval/return
    in a simulator and their mean real recall@10; CI by resampling seeds (the same resampled seeds
    for every agent: a seed is a world) and recomputing both means and τ.
"""

from __future__ import annotations

import argparse
import csv
import json
from pathlib import Path
from typing import Any

import numpy as np
from scipy.stats import kendalltau

from experiments.analysis.stats import paired_comparison, stratified_bootstrap_ci

AGENTS = ("dqn", "pqn", "linucb", "swucb", "greedy", "popularity")  # the study's six (issue 18)
NON_LEARNERS = {"popularity", "random"}  # identical on both simulators' real rows by construction
ENVS = {"movielens": "calibrated", "stationary": "uncalibrated"}
REAL = ("real/recall@10", "real/auc", "real/recall@1", "real/recall@5", "real/ndcg@10")
SIM = "eval/return"
SIM_SECONDARY = ("eval/ctr", "eval/ndcg@k")  # τ also against these (closer to a one-step choice)
REPS = 10_000


def load(path: Path) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    data = json.loads(path.read_text())
    runs = []
    for r in data["runs"]:
        sim_keys = {k: r["summary"].get(k, np.nan) for k in (SIM, *SIM_SECONDARY)}
        runs.append({**r, "sim": ENVS.get(r["env"], r["env"]), **sim_keys})
    return runs, data


def by(runs: list[dict[str, Any]], sim: str, agent: str) -> dict[int, dict[str, Any]]:
    return {r["seed"]: r for r in runs if r["sim"] == sim and r["agent"] == agent}


def tau_with_ci(
    sim_scores: np.ndarray, real_scores: np.ndarray, rng: np.random.Generator
) -> dict[str, Any]:
    """τ of the agents' seed-mean scores; ``sim_scores``/``real_scores``: (agents, seeds)."""
    point = kendalltau(sim_scores.mean(axis=1), real_scores.mean(axis=1))
    per_seed = [
        float(kendalltau(sim_scores[:, s], real_scores[:, s]).statistic)
        for s in range(sim_scores.shape[1])
    ]
    n = sim_scores.shape[1]
    boot = []
    for _ in range(REPS if n > 1 else 0):
        idx = rng.integers(0, n, n)
        t = kendalltau(sim_scores[:, idx].mean(axis=1), real_scores[:, idx].mean(axis=1)).statistic
        boot.append(t)
    boot_arr = np.asarray(boot, float)
    ok = boot_arr[np.isfinite(boot_arr)]
    ci = [float(v) for v in np.percentile(ok, [2.5, 97.5])] if len(ok) else [np.nan, np.nan]
    return {
        "tau": float(point.statistic),
        "p_value": float(point.pvalue),
        "ci95_over_seeds": ci,
        "tau_per_seed": per_seed,
        "agents": int(sim_scores.shape[0]),
        "seeds": int(n),
        "share_of_bootstrap_tau_above_0": float(np.mean(ok > 0)) if len(ok) else np.nan,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("scores")
    parser.add_argument("--out", required=True)
    parser.add_argument(
        "--agents", default=",".join(AGENTS), help="comma-separated agents to analyse (in order)"
    )
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    runs, data = load(Path(args.scores))
    rng = np.random.default_rng(0)
    wanted = [a for a in args.agents.split(",") if a]
    runs = [r for r in runs if r["agent"] in wanted]
    agents = [a for a in wanted if any(r["agent"] == a for r in runs)]
    seeds = sorted(
        set.intersection(
            *[set(by(runs, s, a)) for s in ENVS.values() for a in agents]
        )  # seeds where every agent finished on both simulators
    )
    results: dict[str, Any] = {
        "rows": data["rows"],
        "references": {
            "log_popularity": {
                k: v for k, v in data["references"]["log_popularity"].items() if k != "per_user"
            },
            "random": {"real/recall@10": 10 / data["rows"]["candidates"], "real/auc": 0.5},
        },
        "agents": agents,
        "complete_seeds": seeds,
        "per_agent": {},
        "transfer": {},
        "rank_agreement": {},
    }

    # runs.csv
    with open(out / "runs.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["simulator", "agent", "seed", SIM, *REAL, "wall_time_s"])
        for r in sorted(runs, key=lambda r: (r["sim"], agents.index(r["agent"]), r["seed"])):
            w.writerow(
                [
                    r["sim"],
                    r["agent"],
                    r["seed"],
                    r[SIM],
                    *(r[k] for k in REAL),
                    r["summary"].get("wall_time_s"),
                ]
            )

    # per agent and simulator: means and CIs over seeds
    for sim in ENVS.values():
        for a in agents:
            rs = [by(runs, sim, a)[s] for s in sorted(by(runs, sim, a))]
            entry: dict[str, Any] = {"seeds": [r["seed"] for r in rs]}
            for k in (SIM, *SIM_SECONDARY, *REAL):
                v = np.array([r[k] for r in rs], float)
                entry[k] = {
                    "mean": float(v.mean()),
                    "ci95": list(stratified_bootstrap_ci(v, reps=REPS, rng=rng)),
                    "values": v.tolist(),
                }
            results["per_agent"].setdefault(sim, {})[a] = entry

    # (a) transfer, paired by seed; and by user
    for a in agents:
        cal, unc = by(runs, "calibrated", a), by(runs, "uncalibrated", a)
        res: dict[str, Any] = {}
        for k in ("real/recall@10", "real/auc", "real/recall@1"):
            x = np.array([cal[s][k] for s in seeds])
            y = np.array([unc[s][k] for s in seeds])
            res[k] = paired_comparison(x, y, reps=REPS, rng=rng)
            name = k.split("/")[1]
            if all("per_user" in cal[s] and name in cal[s]["per_user"] for s in seeds):
                d = np.mean(
                    [
                        np.asarray(cal[s]["per_user"][name]) - np.asarray(unc[s]["per_user"][name])
                        for s in seeds
                    ],
                    axis=0,
                )  # (users,) seed-mean difference per user
                idx = rng.integers(0, len(d), (2000, len(d)))
                res[k]["ci_diff_over_users"] = [
                    float(v) for v in np.percentile(d[idx].mean(axis=1), [2.5, 97.5])
                ]
        results["transfer"][a] = res
    # pooled over the learning agents (popularity does not learn: identical by construction)
    learners = [a for a in agents if a not in NON_LEARNERS]
    for k in ("real/recall@10", "real/auc"):
        diffs = np.array(
            [
                [by(runs, "calibrated", a)[s][k] - by(runs, "uncalibrated", a)[s][k] for s in seeds]
                for a in learners
            ]
        )  # (agents, seeds)
        idx = rng.integers(0, len(seeds), (REPS, len(seeds)))
        boot = diffs[:, idx].mean(axis=(0, 2))
        results["transfer"].setdefault("_pooled_learners", {})[k] = {
            "diff": float(diffs.mean()),
            "ci95_over_seeds": [float(v) for v in np.percentile(boot, [2.5, 97.5])],
            "pairs_calibrated_better": int((diffs > 0).sum()),
            "pairs": int(diffs.size),
        }

    # (b) rank agreement
    for sim in ENVS.values():
        s_scores = np.array([[by(runs, sim, a)[s][SIM] for s in seeds] for a in agents])
        for k in ("real/recall@10", "real/auc"):
            r_scores = np.array([[by(runs, sim, a)[s][k] for s in seeds] for a in agents])
            results["rank_agreement"].setdefault(sim, {})[k] = tau_with_ci(s_scores, r_scores, rng)
        for key in SIM_SECONDARY:
            sec = np.array([[by(runs, sim, a)[s][key] for s in seeds] for a in agents])
            r10 = np.array([[by(runs, sim, a)[s]["real/recall@10"] for s in seeds] for a in agents])
            results["rank_agreement"][sim][f"{key} vs real/recall@10"] = tau_with_ci(sec, r10, rng)
        results["rank_agreement"][sim]["sim_order"] = [
            agents[i] for i in np.argsort(-s_scores.mean(axis=1))
        ]
        r10 = np.array([[by(runs, sim, a)[s]["real/recall@10"] for s in seeds] for a in agents])
        results["rank_agreement"][sim]["real_order"] = [
            agents[i] for i in np.argsort(-r10.mean(axis=1))
        ]
    (out / "results.json").write_text(json.dumps(results, indent=1) + "\n")
    write_table(results, out / "table.md")
    figures(results, out)


def fmt(e: dict[str, Any], digits: int = 3) -> str:
    lo, hi = e["ci95"]
    if np.isnan(lo):
        return f"{e['mean']:.{digits}f}"
    return f"{e['mean']:.{digits}f} [{lo:.{digits}f}, {hi:.{digits}f}]"


def write_table(results: dict[str, Any], path: Path) -> None:
    lines = [
        "| agent | simulator | eval/return (sim) | real recall@10 | real AUC | real recall@1 |",
        "|---|---|---|---|---|---|",
    ]
    for a in results["agents"]:
        for sim in ENVS.values():
            e = results["per_agent"][sim][a]
            lines.append(
                f"| {a} | {sim} | {fmt(e[SIM], 1)} | {fmt(e['real/recall@10'])} | "
                f"{fmt(e['real/auc'])} | {fmt(e['real/recall@1'])} |"
            )
    pop = results["references"]["log_popularity"]
    lines.append(
        f"| log popularity (reference) | — | — | {pop['real/recall@10']:.3f} | "
        f"{pop['real/auc']:.3f} | {pop['real/recall@1']:.3f} |"
    )
    lines.append("| random (reference) | — | — | 0.500 | 0.500 | 0.050 |")
    lines += [
        "",
        "| agent | Δ recall@10 (cal − uncal) [CI seeds] [CI users] | seeds cal better | "
        "Δ AUC [CI seeds] [CI users] |",
        "|---|---|---|---|",
    ]
    for a in results["agents"]:
        t = results["transfer"][a]
        r, u = t["real/recall@10"], t["real/auc"]

        def ci(x: dict[str, Any], key: str) -> str:
            v = x.get(key)
            return "—" if v is None or np.isnan(v[0]) else f"[{v[0]:+.3f}, {v[1]:+.3f}]"

        lines.append(
            f"| {a} | {r['diff']:+.3f} {ci(r, 'ci_diff')} {ci(r, 'ci_diff_over_users')} | "
            f"{r['a_better']}/{r['n']} | {u['diff']:+.3f} {ci(u, 'ci_diff')} "
            f"{ci(u, 'ci_diff_over_users')} |"
        )
    path.write_text("\n".join(lines) + "\n")


def figures(results: dict[str, Any], out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    agents = results["agents"]
    colors = {"calibrated": "tab:blue", "uncalibrated": "tab:orange"}
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.8))
    for ax, k, rand in zip(axes, ("real/recall@10", "real/auc"), (0.5, 0.5), strict=True):
        x = np.arange(len(agents))
        for j, sim in enumerate(ENVS.values()):
            es = [results["per_agent"][sim][a][k] for a in agents]
            means = np.array([e["mean"] for e in es])
            lo = np.array([e["ci95"][0] for e in es])
            hi = np.array([e["ci95"][1] for e in es])
            err = np.nan_to_num(np.vstack([means - lo, hi - means]))
            ax.bar(
                x + (j - 0.5) * 0.38,
                means,
                0.38,
                yerr=err,
                label=f"trained {sim}",
                color=colors[sim],
                capsize=3,
            )
            for i, a in enumerate(agents):  # the seeds
                vals = results["per_agent"][sim][a][k]["values"]
                ax.scatter(np.full(len(vals), i + (j - 0.5) * 0.38), vals, s=8, c="k", zorder=3)
        ax.axhline(
            results["references"]["log_popularity"][k], color="g", ls="--", label="log popularity"
        )
        ax.axhline(rand, color="gray", ls=":", label="random")
        ax.set_xticks(x, agents)
        ax.set_title(f"held-out MovieLens-100K: {k.split('/')[1]}")
        means = [results["per_agent"][s][a][k]["mean"] for s in ENVS.values() for a in agents]
        top = max(results["references"]["log_popularity"][k], *means)
        ax.set_ylim(max(min(rand, *means) - 0.05, 0), top + 0.03)
    axes[0].legend(fontsize=7, loc="lower left", framealpha=0.9)
    fig.tight_layout()
    fig.savefig(out / "transfer.png", dpi=120)
    plt.close(fig)

    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for ax, sim in zip(axes, ENVS.values(), strict=True):
        for a in agents:
            e = results["per_agent"][sim][a]
            ax.errorbar(
                e[SIM]["mean"],
                e["real/recall@10"]["mean"],
                xerr=np.nan_to_num(
                    [[e[SIM]["mean"] - e[SIM]["ci95"][0]], [e[SIM]["ci95"][1] - e[SIM]["mean"]]]
                ),
                yerr=np.nan_to_num(
                    [
                        [e["real/recall@10"]["mean"] - e["real/recall@10"]["ci95"][0]],
                        [e["real/recall@10"]["ci95"][1] - e["real/recall@10"]["mean"]],
                    ]
                ),
                fmt="o",
                capsize=3,
            )
            ax.annotate(
                a,
                (e[SIM]["mean"], e["real/recall@10"]["mean"]),
                fontsize=8,
                xytext=(4, 4),
                textcoords="offset points",
            )
        t = results["rank_agreement"][sim]["real/recall@10"]
        ax.set_title(
            f"trained on the {sim} sim: Kendall τ = {t['tau']:+.2f} "
            f"[{t['ci95_over_seeds'][0]:+.2f}, {t['ci95_over_seeds'][1]:+.2f}]",
            fontsize=9,
        )
        ax.set_xlabel(f"eval/return in the {sim} simulator")
        ax.set_ylabel("recall@10 on the held-out real log")
    fig.tight_layout()
    fig.savefig(out / "rank_agreement.png", dpi=120)
    plt.close(fig)


if __name__ == "__main__":
    main()
