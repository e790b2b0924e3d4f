"""DQN in the 25-jump recovery study on all five worlds (seeds 100-104), against the bandits.

Inputs (all committed beside the report, so this reruns without any run dir):
- ``events/events_dqn.csv``: the event table of the DQN runs rerun for issue 23 (seeds 102-104,
  ``scripts/event_table.py`` over their sweep dir);
- ``events/dqn_seeds_100_101.json``: per-world KM mean and SE of the two DQN worlds of the first
  25-jump sweep (their run dirs, and so their events, are gone);
- ``events/results.json``: the bandits' per-world KM means and SEs (``recovery_spread``), from
  the committed LinUCB / SW-UCB / D-UCB report (their events are gone too);
- optionally ``--events`` tables of regenerated bandit runs: then the pairs on those worlds are
  also computed from the events, paired jump by jump (the exact hierarchical bootstrap).

    PYTHONPATH=. python docs/studies/recovery/scripts/dqn_five_worlds.py [--events events/events_bandits.csv]

Prints the DQN per-world spread (5 worlds) and the pairs with DQN by
``recovery_spread.separation_from_means`` (5 worlds; events as independent: conservative).
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import numpy as np
from event_table import read_table

from experiments.analysis.recovery_spread import (
    events_needed,
    separation,
    separation_from_means,
    world_spread,
)

HERE = Path(__file__).resolve().parent.parent / "events"
PAIRS = (("swucb", "dqn"), ("ducb", "dqn"), ("dqn", "linucb"))
NAMES = {"dqn": "DQN", "linucb": "LinUCB", "swucb": "SW-UCB", "ducb": "D-UCB"}


def f(x: float) -> str:
    return "∞" if math.isinf(x) else "n/a" if math.isnan(x) else f"{x:,.0f}"


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--events", nargs="*", type=Path, default=[], help="bandit event tables")
    p.add_argument("--reps", type=int, default=4000)
    args = p.parse_args()
    dqn_rows = read_table(HERE / "events_dqn.csv")
    new = world_spread(dqn_rows, reps=1000)["dqn"]["worlds"]
    old = json.loads((HERE / "dqn_seeds_100_101.json").read_text())["worlds"]
    dqn = {w["world"]: w for w in [*old, *new]}
    bandits = json.loads((HERE / "results.json").read_text())["recovery_spread"]["groups"]
    means = {
        g: {w["world"]: (w["km_mean"], w["se"]) for w in v["worlds"]} for g, v in bandits.items()
    }
    means["dqn"] = {w: (v["km_mean"], v["se"]) for w, v in dqn.items()}

    worlds = sorted(dqn, key=int)
    m = np.array([dqn[w]["km_mean"] for w in worlds])
    se2 = np.array([dqn[w]["se"] ** 2 for w in worlds])
    n = np.array([dqn[w]["events"] for w in worlds])
    sd = float(np.std(m, ddof=1))
    event_var = float(np.mean(se2 * n))
    world_var = max(0.0, sd**2 - float(se2.mean()))
    q25, q75 = np.percentile(m, [25, 75])
    print(f"DQN worlds {', '.join(worlds)}: events {n.tolist()}, recovered "
          f"{[dqn[w]['recovered'] for w in worlds]}")  # fmt: skip
    print("| agent | KM mean per world (seeds 100–104) | median | IQR | range | max / min | SD "
          "| SD from the events alone | world part |")  # fmt: skip
    print(
        f"| DQN | {', '.join(f(x) for x in m)} | {f(np.median(m))} | {f(q75 - q25)} | "
        f"{f(m.max() - m.min())} | {m.max() / m.min():.2f} | {f(sd)} | "
        f"{f(math.sqrt(event_var / n.mean()))} | {f(math.sqrt(world_var))} |"
    )
    print(f"one event's SD (sqrt event_var): {f(math.sqrt(event_var))}")
    print()
    print("| A vs B | worlds | A − B [95 % CI] | A faster on | separable? | SD of A, B | "
          "SD < \\|A − B\\|? | events per world to separate / for the spread |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|")
    for a, b in PAIRS:
        r = separation_from_means(means[a], means[b], reps=args.reps)
        ev = {g: bandits[g]["event_var"] if g in bandits else event_var for g in (a, b)}
        wv = {g: bandits[g]["world_var"] if g in bandits else world_var for g in (a, b)}
        spread_n = max(events_needed(ev[g], wv[g], abs(r["diff"])) for g in (a, b))
        # the paired difference's variance split as in separation(), events independent
        d = np.array([means[a][w][0] - means[b][w][0] for w in worlds if w in means[a]])
        s2 = np.array([means[a][w][1] ** 2 + means[b][w][1] ** 2 for w in worlds if w in means[a]])
        wv_d = max(0.0, float(np.var(d, ddof=1)) - float(s2.mean()))
        z = 1.959963984540054
        sep_n = events_needed(float(np.mean(s2)) * 25, wv_d, abs(r["diff"]) * math.sqrt(d.size) / z)
        print(
            f"| {NAMES[a]} vs {NAMES[b]} | {r['worlds']} | {f(r['diff'])} [{f(r['ci_diff'][0])}, "
            f"{f(r['ci_diff'][1])}] | {r['a_faster']}/{r['worlds']} | "
            f"{'**yes**' if r['separable'] else 'no'} | {f(r['sd_a'])}, {f(r['sd_b'])} | "
            f"{'yes' if r['spread_below_diff'] else 'no'} | {f(sep_n)} / {f(spread_n)} |"
        )
    extra = [row for t in args.events for row in read_table(t)]
    if extra:
        rows = dqn_rows + extra
        print("\nFrom the events, paired jump by jump, on the worlds both have:")
        for a, b in PAIRS:
            if {a, b} <= {r["group"] for r in rows}:
                r = separation(rows, a, b, reps=args.reps)
                print(
                    f"| {NAMES[a]} vs {NAMES[b]} | {r['worlds']} | {f(r['diff'])} "
                    f"[{f(r['ci_diff'][0])}, {f(r['ci_diff'][1])}] | {r['a_faster']}/{r['worlds']} "
                    f"| {'**yes**' if r['separable'] else 'no'} | "
                    f"{f(r['events_to_separate'])} |"
                )


if __name__ == "__main__":
    main()
