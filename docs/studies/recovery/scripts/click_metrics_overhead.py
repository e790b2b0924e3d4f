"""Cost of the click and ranking metrics in the periodic evaluation (their fixed batch): evaluate()
of a trained greedy agent on 32 fresh users with and without them, alternating in one process
(median of 8).

    OMP_NUM_THREADS=1 .venv/bin/python docs/studies/recovery/scripts/click_metrics_overhead.py
"""

import time

import gymnasium
import numpy as np

import experiments.run.evaluation as ev
from agents.baselines import GreedyAgent
from recsim_env.vector_env import RecSimVectorEnv

train = gymnasium.make_vec("recsim_env/DriftingUsers-v0", num_envs=16)
train.reset(seed=0)
agent = GreedyAgent(train, seed=0)
agent.learn(20000)
core = train.unwrapped


def make():
    return RecSimVectorEnv(num_envs=32, world=core.world, **core.config.to_dict())


orig = ev.draw_fixed_batch
ev.evaluate(agent, make(), seed=1)  # warm-up (sklearn import)
t = {"with": [], "without": []}
for rep in range(8):
    for mode in ("without", "with"):
        ev.draw_fixed_batch = orig if mode == "with" else (lambda env, **kw: None)
        t0 = time.perf_counter()
        m = ev.evaluate(agent, make(), seed=100 + rep)
        t[mode].append(time.perf_counter() - t0)
        assert ("eval/auc" in m) == (mode == "with")
w, wo = np.median(t["with"]), np.median(t["without"])
print(
    f"evaluate, 32 users, greedy: without click metrics {wo * 1e3:.1f} ms, with {w * 1e3:.1f} ms (median of 8): ratio {w / wo:.2f}"
)
