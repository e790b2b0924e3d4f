"""TorchRL on the simulator: ``GymEnv`` on a registered id, a random-policy rollout, batched.

TorchRL's ``GymEnv`` builds the env itself from the id. With ``num_envs=B`` it builds Gymnasium's
``AsyncVectorEnv`` of B single envs in spawned subprocesses (not the simulator's native batched
env), and those processes have not imported ``recsim_env``: the ``"recsim_env:<id>"`` form makes
Gymnasium import it there first. Needs ``pip install torchrl`` (tested with TorchRL 0.14.1;
``GymWrapper(gym.make(id))`` works with any version).

    python examples/torchrl_loop.py [--users 8] [--steps 50]
"""

from __future__ import annotations

import argparse


def main() -> None:
    from torchrl.envs import GymEnv

    import recsim_env  # noqa: F401  (registers the ids with Gymnasium)

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=8, help="num_envs: users per step")
    parser.add_argument("--steps", type=int, default=50, help="vector steps to roll out")
    args = parser.parse_args()

    env = GymEnv("recsim_env:recsim_env/DriftingUsers-v0", num_envs=args.users)
    env.set_seed(0)
    rollout = env.rollout(max_steps=args.steps)  # a random policy (the action spec's samples)
    reward = rollout["next", "reward"]
    print(f"rollout {tuple(rollout.batch_size)}; mean reward per user-step {reward.mean():.3f}")
    env.close()


if __name__ == "__main__":
    main()
