"""The recovery study's event table, kept beside its report, and the between-world analysis over
any mix of run dirs and committed event tables (issue 23).

Why: ``recsim-compare``'s "Recovery time between worlds" section reads the runs' ``recovery.npz``,
and run dirs do not survive a session: the 25-jump bandit runs behind ``events/report.md`` were
lost, so a later agent's runs could not be paired with them event by event without rerunning
them. The table (one row per defined event: group, world = seed, event = its step, time,
recovered) is small (25 rows a run) and is all :mod:`experiments.analysis.recovery_spread` needs.

    # write the table of the runs under some sweep dirs (and/or add committed tables), print the
    # per-world spread and the pairs, and save the table and the numbers
    PYTHONPATH=. python docs/studies/recovery/scripts/event_table.py <sweep dir> ... [--events events.csv ...] \
        --out docs/studies/recovery/events/events.csv --json spread.json \
        --compare swucb dqn --compare dqn linucb
"""

from __future__ import annotations

import argparse
import csv
import json
from pathlib import Path
from typing import Any

from experiments.analysis.compare.load import discover_runs
from experiments.analysis.compare.recovery_spread import _json_ready, render_spread
from experiments.analysis.recovery_spread import event_rows, recovery_spread

FIELDS = ("group", "world", "event", "time", "recovered")


def rows_from_runs(paths: list[Path]) -> list[dict[str, Any]]:
    """Event rows of every completed run under ``paths`` with recovery records (group = agent)."""
    rows: list[dict[str, Any]] = []
    for run in discover_runs(paths):
        if not run.completed:
            continue
        curves = run.recovery()
        if curves is None or not len(curves.get("records", [])):
            continue
        rows += event_rows(str(run.choices.get("agent")), str(run.seed), curves["records"])
    return rows


def read_table(path: Path) -> list[dict[str, Any]]:
    with path.open(newline="") as f:
        return [
            {
                "group": r["group"],
                "world": r["world"],
                "event": int(r["event"]),
                "time": float(r["time"]),
                "recovered": r["recovered"] in ("1", "True", "true"),
            }
            for r in csv.DictReader(f)
        ]


def write_table(rows: list[dict[str, Any]], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=FIELDS)
        w.writeheader()
        for r in sorted(rows, key=lambda r: (r["group"], int(r["world"]), r["event"])):
            w.writerow({**r, "recovered": int(r["recovered"])})


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("runs", nargs="*", type=Path, help="run or sweep dirs")
    p.add_argument("--events", nargs="*", type=Path, default=[], help="event tables (CSV)")
    p.add_argument("--out", type=Path, help="write the combined event table here")
    p.add_argument("--json", type=Path, help="write the spread and pairs here")
    p.add_argument("--compare", nargs=2, action="append", default=[], metavar=("A", "B"))
    p.add_argument("--reps", type=int, default=2000)
    args = p.parse_args()
    rows = rows_from_runs(args.runs) if args.runs else []
    have = {(r["group"], r["world"]) for r in rows}
    for table in args.events:  # a run present as a run dir is not counted twice
        rows += [r for r in read_table(table) if (r["group"], r["world"]) not in have]
    seen = {(r["group"], r["world"]) for r in rows}
    print(
        f"{len(rows)} events, {len(seen)} runs: " + ", ".join(f"{g}/{w}" for g, w in sorted(seen))
    )
    if args.out:
        write_table(rows, args.out)
    pairs = [tuple(c) for c in args.compare] or None
    out = _json_ready(recovery_spread(rows, pairs, reps=args.reps))  # type: ignore[arg-type]
    print("\n".join(render_spread(out)))
    if args.json:
        args.json.write_text(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
