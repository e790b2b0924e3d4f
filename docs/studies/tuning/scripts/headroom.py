"""Share of the headroom of each run's evaluations: (R - myopic oracle) / (long-term reference -
myopic oracle), the reference runs read at the same world seed and the nearest evaluation step.

    python docs/studies/tuning/scripts/headroom.py REFS_DIR RUN_DIR_OR_SWEEP... [--by agent.gamma,...]

REFS_DIR holds run dirs of `agent=oracle` and `agent=oracle_longterm` (experiment=study_gamma_refs
with the seeds wanted); each RUN_DIR is a run dir or a sweep dir of run dirs. Prints one line per
group (the `--by` keys of config.yaml, default: agent target + overrides) with the mean share of
the headroom at the last evaluation, per seed, and the same at every evaluation step.
"""

from __future__ import annotations

import argparse
import csv
import json
from collections import defaultdict
from pathlib import Path
from statistics import mean

import yaml


def evals(run: Path) -> dict[int, float]:
    out: dict[int, float] = {}
    with open(run / "metrics.csv") as f:
        for row in csv.DictReader(f):
            if row["key"] == "eval/return":
                out[int(row["step"])] = float(row["value"])
    return out


def run_dirs(paths: list[str]) -> list[Path]:
    found: list[Path] = []
    for p in map(Path, paths):
        if (p / "run.json").is_file():
            found.append(p)
        else:
            found += sorted(d.parent for d in p.glob("*/run.json"))
    return found


def nearest(series: dict[int, float], step: int) -> float | None:
    """The reference's evaluation at ``step`` (within 2 %: runs may overshoot by a vector step)."""
    close = min(series, key=lambda s: abs(s - step))
    return series[close] if abs(close - step) <= 0.02 * step else None


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("refs")
    parser.add_argument("runs", nargs="+")
    parser.add_argument("--by", default="")
    args = parser.parse_args()
    refs: dict[tuple[str, int], dict[int, float]] = {}
    for d in run_dirs([args.refs]):
        job = json.loads((d / "run.json").read_text())
        cfg = yaml.safe_load((d / "config.yaml").read_text())
        refs[(job["choices"]["agent"], int(cfg["seed"]))] = evals(d)
    groups: dict[str, list[tuple[int, dict[int, float]]]] = defaultdict(list)
    for d in run_dirs(args.runs):
        if not (d / "metrics.csv").is_file():
            continue
        job = json.loads((d / "run.json").read_text())
        cfg = yaml.safe_load((d / "config.yaml").read_text())
        seed = int(cfg["seed"])
        if args.by:
            label = ", ".join(f"{k}={_get(cfg, k)}" for k in args.by.split(","))
        else:
            label = " ".join(
                o
                for o in job["overrides"]
                if not o.startswith(("seed=", "protocol.", "progress", "env=", "hydra"))
            )
        series = evals(d)
        if not series:  # still before its first evaluation
            continue
        shares = {}
        for step, value in sorted(series.items()):
            if ("oracle_longterm", seed) not in refs or not refs[("oracle_longterm", seed)]:
                continue
            lo = nearest(refs[("oracle", seed)], step)
            hi = nearest(refs[("oracle_longterm", seed)], step)
            if lo is not None and hi is not None:
                shares[step] = (value - lo) / (hi - lo)
        if not shares:
            continue
        groups[label].append((seed, shares | {-1: series[max(series)]}))
    for label, rows in sorted(groups.items()):
        rows.sort()
        last = [s[max(k for k in s if k >= 0)] for _, s in rows]
        steps = sorted({k for _, s in rows for k in s if k >= 0})
        per_step = " ".join(
            f"{k // 1000}k:{mean(s[k] for _, s in rows if k in s):+.2f}" for k in steps
        )
        seeds = " ".join(
            f"s{seed}:{s[max(k for k in s if k >= 0)]:+.2f}(R={s[-1]:.1f})" for seed, s in rows
        )
        print(f"{mean(last):+.3f}  n={len(rows)}  [{per_step}]  {seeds}  | {label}")


def _get(cfg: dict, key: str) -> object:
    node: object = cfg
    for part in key.split("."):
        node = node.get(part) if isinstance(node, dict) else None
    return node


if __name__ == "__main__":
    main()
