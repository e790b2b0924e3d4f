"""Main effects of γ, ε and lr in the grid, paired by world seed (runs.csv of recsim-compare).

    python docs/studies/gamma/grid/scripts/effects.py docs/studies/gamma/grid/runs.csv [--refs REFS_SWEEP]

For each factor and pair of levels: the difference in eval/return between the two levels, averaged
over the other factors' 4 (or 6) settings within each world seed, then the mean over the 5 seeds with
a 95 % bootstrap CI over seeds (10,000 resamples, seed 0) and the number of seeds where it is > 0.
Why paired: every seed is a different world (eval/return ranges 66-174 across worlds for one
setting), so unpaired CIs over seeds hide effects that every world shows. With --refs (run dirs of
agent=oracle and agent=oracle_longterm on the same seeds, evaluated at 200k), the share of the
headroom per setting: (eval/return - myopic oracle) / (long-term reference - myopic oracle).
"""

from __future__ import annotations

import argparse
import csv
import json
import re
from pathlib import Path

import numpy as np
import yaml

FACTORS = {"gamma": "agent.gamma", "eps": "agent.exploration_fraction", "lr": "agent.lr"}
PAIRS = {
    "gamma": [("0.99", "0"), ("0.9", "0"), ("0.99", "0.9")],
    "eps": [("0.5", "0.1")],
    "lr": [("0.001", "0.0001")],
}


def read(path: Path) -> dict[tuple[str, str, str, int], float]:
    out = {}
    with open(path) as f:
        for row in csv.DictReader(f):
            levels = dict(re.findall(r"([\w.]+)=([\w.]+)", row["group"]))
            key = (*tuple(levels[FACTORS[k]] for k in FACTORS), int(row["seed"]))
            out[key] = float(row["eval/return"])
    return out


def boot(x: np.ndarray, reps: int = 10_000) -> tuple[float, float]:
    rng = np.random.default_rng(0)
    means = x[rng.integers(0, len(x), (reps, len(x)))].mean(1)
    return float(np.percentile(means, 2.5)), float(np.percentile(means, 97.5))


def refs_at(sweep: Path, step: int) -> dict[tuple[str, int], float]:
    out = {}
    for run in sorted(p.parent for p in sweep.glob("*/run.json")):
        agent = json.loads((run / "run.json").read_text())["choices"]["agent"]
        seed = int(yaml.safe_load((run / "config.yaml").read_text())["seed"])
        with open(run / "metrics.csv") as f:
            for row in csv.DictReader(f):
                if row["key"] == "eval/return" and int(row["step"]) == step:
                    out[(agent, seed)] = float(row["value"])
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("runs_csv", type=Path)
    parser.add_argument("--refs", type=Path)
    parser.add_argument("--step", type=int, default=200_000)
    args = parser.parse_args()
    runs = read(args.runs_csv)
    seeds = sorted({k[-1] for k in runs})
    names = list(FACTORS)
    print("| factor | levels | paired difference in eval/return, mean [95 % CI] | seeds > 0 |")
    print("|---|---|---|---|")
    for i, factor in enumerate(names):
        for hi, lo in PAIRS[factor]:
            per_seed = []
            for s in seeds:
                diffs = [
                    runs[(*k[:i], hi, *k[i + 1 : -1], s)] - runs[(*k[:i], lo, *k[i + 1 : -1], s)]
                    for k in runs
                    if k[-1] == s and k[i] == lo
                ]
                per_seed.append(np.mean(diffs))
            d = np.array(per_seed)
            lo_ci, hi_ci = boot(d)
            print(
                f"| {factor} | {hi} vs {lo} | {d.mean():+.1f} [{lo_ci:+.1f}, {hi_ci:+.1f}] | {(d > 0).sum()}/{len(d)} |"
            )
    if args.refs:
        refs = refs_at(args.refs, args.step)
        print(
            f"\n| γ | ε | lr | share of the headroom at {args.step // 1000}k, mean [95 % CI] "
            "| per seed |"
        )
        print("|---|---|---|---|---|")
        settings = sorted({k[:-1] for k in runs}, key=lambda k: tuple(float(v) for v in k))
        for setting in settings:
            share = np.array(
                [
                    (runs[(*setting, s)] - refs[("oracle", s)])
                    / (refs[("oracle_longterm", s)] - refs[("oracle", s)])
                    for s in seeds
                ]
            )
            lo_ci, hi_ci = boot(share)
            cells = " / ".join(f"{v:+.2f}" for v in share)
            print(
                f"| {setting[0]} | {setting[1]} | {setting[2]} | {share.mean():+.2f} [{lo_ci:+.2f}, {hi_ci:+.2f}] | {cells} |"
            )


if __name__ == "__main__":
    main()
