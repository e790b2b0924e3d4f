"""Per agent: how many events hurt (initial drop > 0.1), pooled recovery over those events
(the same numbers as recsim-compare's "Only the events that hurt" table, without CIs).

    .venv/bin/python docs/studies/recovery/scripts/hurt_events.py multirun/study_recovery/<date>
"""

import collections
import json
import sys
from pathlib import Path

from experiments.analysis.recovery import summarize_recovery
from recsim_env.state_io import load_tree

root = Path(sys.argv[1])
by = collections.defaultdict(lambda: {"": [], "frozen": []})
for job in sorted(root.iterdir(), key=lambda p: p.name):
    if not (job / "recovery.npz").exists():
        continue
    agent = json.loads((job / "run.json").read_text())["choices"]["agent"]
    tree = load_tree(job / "recovery.npz")
    by[agent][""] += tree["records"]
    by[agent]["frozen"] += tree["frozen"]["records"]
for agent, d in by.items():
    for kind, recs in d.items():
        defined = [r for r in recs if r["status"] != "undefined"]
        hurt = [r for r in defined if r["drop"] > 0.1]
        s = summarize_recovery(hurt, prefix="")
        print(
            f"{agent:13s} {kind or 'learning':7s} defined {len(defined)} hurt(drop>0.1) {len(hurt)} "
            f"recovered {s['recovery_recovered']:.0f} KM mean {s['recovery_time_km_mean']:.0f} median {s['recovery_time_km_median']:.0f}"
        )
