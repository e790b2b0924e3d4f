"""Plain vs drift-adaptive DQN on AbruptShift-v0, paired by world (issue 24).

Exactly the computation of ``tests/agents/test_adaptive_dqn.py`` (its ``_learn`` / ``_recovery``,
its ``LEARN`` and ``ADAPT`` settings, 16 users, 6,500 vector steps: 3 jumps a run): per world seed
the Kaplan–Meier mean recovery time (vector steps) of each agent, then the paired difference
adaptive − plain with a 95 % bootstrap CI over worlds (``experiments.analysis.stats``).
Variants of the drift response (``--variants``) were the re-tune candidates.

    python docs/studies/adaptive/scripts/abrupt_recovery_paired.py --seeds 0-15
    python docs/studies/adaptive/scripts/abrupt_recovery_paired.py --seeds 6-9 --variants adapt,boost,sp,rewarm

About 25 s of CPU per world and agent on one core.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import gymnasium as gym
import numpy as np

ROOT = Path(__file__).resolve().parents[4]
sys.path[:0] = [str(ROOT), str(ROOT / "tests" / "agents")]

import test_adaptive_dqn as T  # noqa: E402

from agents.dqn import DQNAgent  # noqa: E402
from agents.dqn.adaptive import AdaptiveDQNAgent  # noqa: E402
from experiments.analysis import stats  # noqa: E402

B = T.B
VARIANTS = {
    "adapt": dict(T.ADAPT),  # the defaults (conf/agent/adaptive_dqn.yaml)
    "boost": dict(T.ADAPT, epsilon_boost=0.3, boost_steps=300 * B),
    "sp": dict(T.ADAPT, shrink_perturb=True),
    "rewarm": dict(T.ADAPT, reset_optimizer=True, lr_rewarm=3.0, lr_rewarm_steps=300 * B),
}


def seeds_arg(text: str) -> list[int]:
    lo, _, hi = text.partition("-")
    return list(range(int(lo), int(hi or lo) + 1))


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--seeds", type=seeds_arg, default=seeds_arg("0-15"))
    p.add_argument("--variants", default="adapt")
    args = p.parse_args()
    names = args.variants.split(",")
    table = {n: [] for n in ["plain", *names]}
    for seed in args.seeds:
        env = gym.make_vec("recsim_env/AbruptShift-v0", num_envs=B)
        _, rec = T._learn(DQNAgent, env, seed, 6_500)
        table["plain"].append(T._recovery(rec).censored_mean / B)
        line = [f"world {seed}: plain {table['plain'][-1]:.0f}"]
        for n in names:
            env = gym.make_vec("recsim_env/AbruptShift-v0", num_envs=B)
            agent, rec = T._learn(AdaptiveDQNAgent, env, seed, 6_500, **VARIANTS[n])
            table[n].append(T._recovery(rec).censored_mean / B)
            line.append(f"{n} {table[n][-1]:.0f} ({agent.detections} detections)")
        print(", ".join(line), flush=True)
    plain = np.array(table["plain"])
    for n in names:
        out = stats.paired_comparison(
            np.array(table[n]), plain, reps=10_000, rng=0, lower_is_better=True
        )
        print(
            f"{n} − plain over {out['n']} worlds: {out['diff']:.0f} "
            f"[{out['ci_diff'][0]:.0f}, {out['ci_diff'][1]:.0f}], better on {out['a_better']}; "
            f"means plain {plain.mean():.0f}, {n} {np.mean(table[n]):.0f}"
        )


if __name__ == "__main__":
    main()
