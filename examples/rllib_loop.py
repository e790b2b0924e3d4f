"""RLlib (new API stack) on the simulator: PPO for a few iterations on a registered id.

RLlib builds the env itself from its id in every env runner; a runner is a fresh process
(``num_env_runners >= 1``) in which nothing has imported ``recsim_env``, so the id is given in
Gymnasium's ``"module:id"`` form, which imports ``recsim_env`` (registering the ids) before making
it. Needs ``pip install "ray[rllib]"`` (tested with Ray 2.60, whose ``ray[rllib]`` installs
gymnasium 1.2.2; exact episode statistics need the project's fix of issue 20).

    python examples/rllib_loop.py [--iterations 2] [--env-runners 0] [--vectorize-mode sync]

``--vectorize-mode vector_entry_point`` makes RLlib sample from the simulator's native batched env
(one numpy step for all users) instead of ``num_envs_per_env_runner`` copies of the single env.
"""

from __future__ import annotations

import argparse

ENV = "recsim_env:recsim_env/DriftingUsers-v0"


def main() -> None:
    from ray.rllib.algorithms.ppo import PPOConfig

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=2)
    parser.add_argument("--env-runners", type=int, default=0, help="0: sample in this process")
    parser.add_argument("--envs-per-runner", type=int, default=4)
    parser.add_argument(
        "--vectorize-mode", default="sync", choices=["sync", "async", "vector_entry_point"]
    )
    args = parser.parse_args()

    config = (
        PPOConfig()
        .environment(ENV)
        .env_runners(num_env_runners=args.env_runners, num_envs_per_env_runner=args.envs_per_runner)
        .training(train_batch_size_per_learner=512, minibatch_size=128, num_epochs=1)
        .debugging(seed=0)
    )
    algo = config.build_algo()
    try:
        for iteration in range(args.iterations):
            result = algo.train()
            runners = result["env_runners"]
            print(
                f"iteration {iteration}: {runners.get('num_episodes', 0)} episodes, "
                f"mean return {runners.get('episode_return_mean', float('nan')):.3f}"
            )
    finally:
        algo.stop()


if __name__ == "__main__":
    main()
