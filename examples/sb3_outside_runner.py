"""Stable-Baselines3 on the simulator, outside the runner: no Hydra, no run dir.

``RecSimVecEnv`` is an SB3 ``VecEnv`` over the batched core (one numpy step for all users, no
Python copies of the env), so SB3's own ``learn`` trains on it unmodified. The script trains SB3's
DQN, evaluates its greedy policy and a random one on fresh users of another world, then saves and
loads the model.

    python examples/sb3_outside_runner.py [--steps 20000] [--users 16] [--out sb3_dqn.zip]
"""

from __future__ import annotations

import argparse

import gymnasium as gym
import numpy as np

import recsim_env  # noqa: F401  (registers the ids)

ENV_ID = "recsim_env/Stationary-v0"


def evaluate(policy, users: int = 64, steps: int = 100, seed: int = 1) -> float:
    """Mean reward per user-step of ``policy(obs) -> actions`` on ``users`` fresh users."""
    envs = gym.make_vec(ENV_ID, num_envs=users)
    obs, _ = envs.reset(seed=seed)
    total = 0.0
    for _ in range(steps):
        obs, rewards, _, _, _ = envs.step(policy(obs))
        total += float(rewards.mean())
    envs.close()
    return total / steps


def main() -> None:
    from stable_baselines3 import DQN

    from recsim_env.sb3_vec_env import RecSimVecEnv

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20_000, help="user-steps to train")
    parser.add_argument("--users", type=int, default=16, help="users per vector step")
    parser.add_argument("--out", default="sb3_dqn.zip")
    args = parser.parse_args()

    venv = RecSimVecEnv(gym.make_vec(ENV_ID, num_envs=args.users))
    model = DQN(
        "MlpPolicy", venv, learning_starts=min(1_000, args.steps // 4), exploration_fraction=0.2,
        train_freq=1, gradient_steps=1, seed=0, verbose=0,
    )  # fmt: skip
    model.learn(total_timesteps=args.steps)
    model.save(args.out)
    loaded = DQN.load(args.out)  # an SB3 zip: load only files you trust (cloudpickle)

    rng = np.random.default_rng(0)
    n_actions = venv.action_space.n
    trained = evaluate(lambda obs: loaded.predict(obs, deterministic=True)[0])
    random = evaluate(lambda obs: rng.integers(0, n_actions, len(obs)))
    print(f"greedy SB3 DQN: {trained:.3f} reward per user-step; random: {random:.3f}")
    venv.close()


if __name__ == "__main__":
    main()
