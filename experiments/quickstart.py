"""``make run``: a first comparison in a few minutes on a laptop.

Runs ``recsim-train experiment=quickstart`` — our DQN, SB3's DQN, a random floor and LinUCB on
DriftingUsers-v0, two jobs at a time (joblib) — then prints a comparison table, writes the
``recsim-compare`` report (Markdown + plots) into ``<sweep dir>/compare`` and says where the
results are. Extra arguments are passed on as overrides, e.g.
``python -m experiments.quickstart protocol.total_steps=20000 hydra.launcher.n_jobs=4``.
"""

from __future__ import annotations

import math
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from experiments.analysis.schema import QUICKSTART_COLUMNS, run_labels
from experiments.run.rundir import MISSING, RunDir


def collect_summaries(sweep_dir: str | Path) -> list[dict[str, Any]]:
    """One row per job dir under ``sweep_dir``: agent/env/seed, status and the summary metrics."""
    rows = []
    root = Path(sweep_dir)
    for rd in RunDir.find(root) if root.is_dir() else []:
        state = rd.state()
        if state.status == MISSING or not state.summary:
            continue
        config = rd.read_config()
        labels = run_labels(config, rd.job().choices)
        row: dict[str, Any] = {"job": rd.path.name, "agent": labels["agent"], "env": labels["env"]}
        row["seed"] = config.get("seed")
        row["status"] = state.status
        for key in QUICKSTART_COLUMNS:
            row[key] = state.summary.get(key, math.nan)
        rows.append(row)
    return rows


# What each column of the table means, printed under it: a first table must not need the README.
COLUMN_MEANINGS = {
    "online/reward": "mean reward per user-step over the whole stream, learning included "
    "(the lifelong objective; higher is better)",
    "online/regret": "mean gap per user-step to the myopic oracle's expected reward (lower is better)",
    "online/ctr": "click rate over the whole stream",
    "online/reward_final": "mean reward in the last log window (where learning ended up)",
    "eval/return": "return of the greedy policy on fresh users at the last evaluation",
    "eval/ndcg@k": "how well the agent ranks the candidates against their true expected reward",
    "lifelong/recovery_time_km_mean": "user-steps until the agent's share of the oracle's reward "
    "is back within 10 % of its own pre-event level after a drift event (Kaplan–Meier mean: "
    "events never recovered count for as long as they were watched; lower is better)",
    "time/sps": "user-steps per second of the run",
}
RECOVERY_CAVEAT = (
    "Recovery is measured against each agent's OWN pre-event level: a policy that learns nothing "
    "(random) has nothing to lose when the users jump, so it 'recovers' at once (recovery time ~0, "
    "recovered share near 1). Read recovery only between agents of similar online/reward."
)


def print_legend(columns: list[str]) -> None:
    """One line per metric column: what it means (and why random can look good at recovery)."""
    print("\nwhat the columns mean:")
    for key in columns:
        if key in COLUMN_MEANINGS:
            print(f"  {key}: {COLUMN_MEANINGS[key]}")
    if any(k.startswith("lifelong/recovery") for k in columns):
        print(f"  note: {RECOVERY_CAVEAT}")


def print_table(rows: list[dict[str, Any]]) -> None:
    import pandas as pd

    if not rows:
        print("no results found")
        return
    frame = pd.DataFrame(rows)
    frame = frame.sort_values("online/reward", ascending=False, na_position="last")
    with pd.option_context("display.width", 160, "display.max_columns", 20, "display.precision", 3):
        print(frame.to_string(index=False))
    print_legend([c for c in frame.columns if "/" in c])


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    given = {a.split("=", 1)[0] for a in argv}
    sweep_dir = Path("multirun") / "quickstart" / time.strftime("%Y-%m-%d_%H-%M-%S")
    if "hydra.sweep.dir" not in given:
        argv.append(f"hydra.sweep.dir={sweep_dir}")
    else:
        sweep_dir = Path(next(a.split("=", 1)[1] for a in argv if a.startswith("hydra.sweep.dir=")))
    command = [sys.executable, "-m", "experiments.train", "experiment=quickstart", *argv]
    print("running:", " ".join(command[1:]), flush=True)
    start = time.perf_counter()
    code = subprocess.call(command)
    print(f"\nquickstart finished in {time.perf_counter() - start:.0f} s (exit code {code})\n")
    print_table(collect_summaries(sweep_dir))
    report = sweep_dir / "compare"
    # the full report: IQM and bootstrap CIs, learning curves with drift events (Markdown + PNG)
    compared = subprocess.call(
        [sys.executable, "-m", "experiments.compare", str(sweep_dir), "--out", str(report)]
    )
    if compared == 0:
        print(f"comparison report: {(report / 'report.md').resolve()} (+ PNG plots)")
    print(
        f"\nresults (config.yaml, metrics.csv, summary.json, checkpoints per job) in "
        f"{sweep_dir.resolve()}"
    )
    return code


if __name__ == "__main__":
    sys.exit(main())
