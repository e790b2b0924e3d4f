"""The noise calibration behind protocol.recovery_sustain / recovery_baseline (README, "Lifelong
metrics"): how much the share of the oracle's expected reward, averaged over W user-steps, moves
for a *fixed* policy in a world without drift (16 users per vector step, 200k user-steps).

    OMP_NUM_THREADS=1 .venv/bin/python docs/studies/recovery/scripts/noise_calibration.py

Prints, per W, the relative standard deviation of the window share and how often a window falls
below 0.9 x the policy's long-run level (a false "not recovered").
"""

import gymnasium
import numpy as np

import recsim_env  # noqa: F401  (registers the envs)
from agents.base import StepCallback
from agents.baselines import FrozenAgent, LinUCB, RandomAgent
from experiments.analysis.recovery import chosen_and_best

B, WARMUP, STEPS = 16, 30_000, 200_000


class Shares(StepCallback):
    def __init__(self, info):
        self.info, self.chosen, self.best = info, [], []

    def on_step(self, t):
        c, b = chosen_and_best(self.info, t.actions)
        self.chosen.append(c.sum())
        self.best.append(b.sum())
        self.info = t.info
        return True


def measure(name, make_agent):
    env = gymnasium.make_vec("recsim_env/Stationary-v0", num_envs=B)
    obs, info = env.reset(seed=0)
    agent = make_agent(env)
    agent._last_obs, agent._last_info = obs, info  # act on the reset's candidates first
    rec = Shares(info)
    agent.learn(WARMUP + STEPS, rec)
    c, b = np.array(rec.chosen)[WARMUP // B :], np.array(rec.best)[WARMUP // B :]
    level = c.sum() / b.sum()
    row = []
    for w in (128, 256, 512, 1024, 2048, 4096):
        k = w // B
        n = len(c) // k
        share = c[: n * k].reshape(n, k).sum(1) / b[: n * k].reshape(n, k).sum(1)
        row.append(
            f"W={w}: sd {share.std() / level:.3f}, P(<0.9) {np.mean(share < 0.9 * level):.3f}"
        )
    print(f"{name} (level {level:.3f}): " + " | ".join(row), flush=True)


measure("random", lambda env: RandomAgent(env, seed=0))
measure(
    "LinUCB frozen after 30k",
    lambda env: FrozenAgent(env, inner=LinUCB(env, seed=0), learn_steps=WARMUP, seed=0),
)
