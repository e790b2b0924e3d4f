"""Between-world spread of each agent's KM mean recovery time in a committed recsim-compare
report (its results.json holds one value per run = per world seed), and each --compare pair
world by world. No events are needed: this is the part of issue 23's analysis the committed
numbers allow; the event-level part (how much of the spread is the sampling of a world's few
events, how many events would separate a pair) is recsim-compare's "Recovery time between
worlds" section, which reads the runs' recovery.npz.

    .venv/bin/python docs/studies/recovery/scripts/world_spread.py \
        docs/studies/recovery/abrupt_current_defaults/results.json
"""

import json
import sys

import numpy as np

KEY = "lifelong/recovery_time_km_mean"
with open(sys.argv[1]) as f:
    results = json.load(f)
per_world = {}
print(
    "| agent | KM mean per world (seeds "
    + ", ".join(map(str, results["groups"]["linucb"]["seeds"]))
    + ") | median | IQR | range | max / min | SD |"
)
print("|---|---|---|---|---|---|---|")
for name in results["group_order"]:
    g = results["groups"][name]
    values = dict(zip(g["seeds"], g["metrics"][KEY]["values"], strict=True))
    per_world[name] = values
    v = np.array([values[s] for s in sorted(values)])
    q25, q75 = np.percentile(v, [25, 75])
    ratio = v.max() / v.min() if v.min() > 0 else float("inf") if v.max() > 0 else float("nan")
    print(
        f"| {name} | {', '.join(f'{x:,.0f}' for x in v)} | {np.median(v):,.0f} | "
        f"{q75 - q25:,.0f} | {v.max() - v.min():,.0f} | {ratio:.2f} | {np.std(v, ddof=1):,.0f} |"
    )
print()
print("| A vs B | A − B per world | mean | A faster on | max SD of A, B | SD < |A − B| |")
print("|---|---|---|---|---|---|")
for comp in results["comparisons"]:
    a, b = per_world[comp["a"]], per_world[comp["b"]]
    seeds = sorted(set(a) & set(b))
    d = np.array([a[s] - b[s] for s in seeds])
    sd = max(np.std([a[s] for s in seeds], ddof=1), np.std([b[s] for s in seeds], ddof=1))
    print(
        f"| {comp['a']} vs {comp['b']} | {', '.join(f'{x:,.0f}' for x in d)} | {d.mean():,.0f} | "
        f"{int((d < 0).sum())}/{d.size} | {sd:,.0f} | {'yes' if sd < abs(d.mean()) else 'no'} |"
    )
