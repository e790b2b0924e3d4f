"""Wall time of a recsim-train run with and without the recovery tracker (protocol.recovery),
alternating in one process; AbruptShift-v0, 64k user-steps, median of 3 after a warm-up.

    OMP_NUM_THREADS=1 PYTHONPATH=. .venv/bin/python docs/studies/recovery/scripts/tracker_overhead.py linucb
"""

import json
import pathlib
import sys
import tempfile

import numpy as np

from experiments.run.job import run
from tests.conftest import compose_config

agent = sys.argv[1]
t = {"true": [], "false": []}
for _rep in range(4):
    for rec in ("false", "true"):
        d = pathlib.Path(tempfile.mkdtemp())
        run(
            compose_config(
                "progress=false",
                f"agent={agent}",
                "env=abrupt",
                "logger=csv",
                "protocol.total_steps=64000",
                "protocol.eval_every=0",
                "protocol.checkpoint_every=0",
                f"protocol.recovery={rec}",
            ),
            run_dir=d,
        )
        t[rec].append(json.loads((d / "summary.json").read_text())["wall_time_s"])
on, off = np.median(t["true"][1:]), np.median(t["false"][1:])
print(
    f"{agent}, AbruptShift-v0, 64k user-steps: {off:.2f} s without, {on:.2f} s with the recovery tracker (median of 3): ratio {on / off:.3f}"
)
