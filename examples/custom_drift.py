"""A custom drift schedule: a schedule (*when*) × a process (*what*), composed from plain dicts.

Here: slow Ornstein–Uhlenbeck drift at every tick, plus abrupt jumps of the population's interests
at three change points, each blended in over 200 ticks. The script runs a random and the myopic
oracle policy on the same world and prints at which world ticks the drift events fired and the
expected reward per step of both. The same schedule goes to ``recsim-train`` as an override of the env's
kwargs (printed at the end).

    python examples/custom_drift.py [--ticks 3000] [--users 64]
"""

from __future__ import annotations

import argparse
import json

import gymnasium as gym
import numpy as np

import recsim_env  # noqa: F401  (registers the ids)

DRIFT = [
    {"schedule": "periodic", "period": 1, "process": "ou", "theta": 0.001, "sigma": 0.02},
    {"schedule": "changepoints", "times": [800, 1600, 2400], "process": "jump", "ramp": 200},
]


def run(ticks: int, users: int, seed: int = 0) -> dict[str, float | list[int]]:
    """Mean reward per user-step of the oracle and of a random policy, and the ticks at which a
    drift event fired (one world tick per vector step)."""
    envs = gym.make_vec("recsim_env/Stationary-v0", num_envs=users, drift=DRIFT, num_candidates=10)
    rng = np.random.default_rng(seed)
    obs, info = envs.reset(seed=seed)
    events, oracle, random_reward = [], [], []
    for _ in range(ticks):
        oracle.append(float(info["expected_reward"].max(axis=1).mean()))
        random_reward.append(float(info["expected_reward"].mean()))
        actions = np.where(
            rng.random(users) < 0.5, info["oracle_action"], rng.integers(0, 10, users)
        )
        obs, rewards, terminated, truncated, info = envs.step(actions)
        if info["drift_event"].any():
            events.append(int(info["clock"][0]))  # the world clock after this step
    envs.close()
    return {
        "events": events,
        "oracle_reward": float(np.mean(oracle)),
        "random_reward": float(np.mean(random_reward)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ticks", type=int, default=3000)
    parser.add_argument("--users", type=int, default=64)
    args = parser.parse_args()
    result = run(args.ticks, args.users)
    print(f"drift events at world ticks {result['events']}")
    print(f"expected reward per step: oracle {result['oracle_reward']:.3f}, "
          f"random {result['random_reward']:.3f}")  # fmt: skip
    # the same schedule for recsim-train (JSON is valid Hydra override syntax for lists of dicts)
    print(
        "recsim-train env=stationary 'env.kwargs.drift=" + json.dumps(DRIFT).replace('"', "") + "'"
    )


if __name__ == "__main__":
    main()
