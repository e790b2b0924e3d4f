"""Paired-by-seed ratios from a ``recsim-compare`` ``runs.csv``: each group's metric divided by the
reference group's on the same seed (= the same world), mean over seeds with a 95 % percentile
bootstrap CI over seeds.

Why: on LongTerm-v0 each seed is a different world (catalogue, population, users) and the
long-horizon return differs between worlds by up to 2×; pairing by world removes that spread,
which the unpaired CIs of ``recsim-compare`` keep. Both views are reported.

    python docs/studies/gamma/scripts/paired_ratio.py docs/studies/gamma/gamma/runs.csv \
        --reference 0 [--metric eval/return]
    python docs/studies/gamma/scripts/paired_ratio.py docs/studies/gamma/gamma/runs.csv \
        docs/studies/gamma/refs/runs.csv --reference oracle
"""

from __future__ import annotations

import argparse

import numpy as np
import pandas as pd

from experiments.analysis import stats


def paired_ratios(
    runs: pd.DataFrame, metric: str, reference: str, reps: int = 10_000, seed: int = 0
) -> pd.DataFrame:
    """One row per group: seeds paired, mean ratio, its CI and the per-seed ratios."""
    done = runs[runs["status"] == "completed"].copy()
    done["group"] = done["group"].astype(str)
    table = done.pivot_table(index="seed", columns="group", values=metric, aggfunc="mean")
    if reference not in table:
        raise SystemExit(f"--reference {reference!r} is not a group; groups: {list(table)}")
    rng = np.random.default_rng(seed)  # one stream for all groups, in column order
    rows = []
    for group in table.columns:
        both = table[group].notna() & table[reference].notna()
        a, b = table.loc[both, group].to_numpy(), table.loc[both, reference].to_numpy()
        out = stats.paired_comparison(a, b, reps=reps, rng=rng)
        lo, hi = out["ci_ratio"]
        rows.append(
            dict(
                group=group,
                seeds=out["n"],
                mean_ratio=out["ratio"],
                ci_low=lo,
                ci_high=hi,
                seeds_above_1=out["a_better"],
                per_seed=" ".join(f"{r:.2f}" for r in a / b),
            )
        )
    return pd.DataFrame(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("runs_csv", nargs="+", help="one or more runs.csv (groups pooled)")
    parser.add_argument("--reference", required=True, help="the group every ratio divides by")
    parser.add_argument("--metric", default="eval/return")
    args = parser.parse_args()
    result = paired_ratios(
        pd.concat(pd.read_csv(f, dtype={"group": str}) for f in args.runs_csv),
        args.metric,
        args.reference,
    )
    print(
        f"{args.metric} / the same seed's `{args.reference}`: mean [95 % bootstrap CI over seeds]\n"
    )
    print("| group | seeds | × reference [95 % CI] | seeds > 1 | per seed |")
    print("|---|---|---|---|---|")
    for r in result.itertuples():
        print(
            f"| {r.group} | {r.seeds} | ×{r.mean_ratio:.2f} [{r.ci_low:.2f}, {r.ci_high:.2f}] "
            f"| {r.seeds_above_1}/{r.seeds} | {r.per_seed} |"
        )


if __name__ == "__main__":
    main()
