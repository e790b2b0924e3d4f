"""The arithmetic floor of a DQN sweep on CPU: what batching members could at best save.

A population removes per-call costs (Python, PyTorch dispatch), not arithmetic. This measures our
DQN's gradient step (its defaults, on LongTerm-v0 at B = 16) in CPU time, once at its own batch
(one run's step) and once on ``K`` batches in one call divided by ``K`` (every per-call cost
amortised: a lower bound for ``K`` members' stacked step), and projects the floor of the
``sweep=gamma_eps_lr`` grid (36 runs × 200k user-steps) on ``--cores`` cores: no launcher can train
that grid faster on this CPU without changing the algorithm (fewer or smaller gradient steps).

    python -m experiments.bench.update_floor
    python -m experiments.bench.update_floor --members 36 --runs 36 --total-steps 200000 --cores 2
"""

from __future__ import annotations

import argparse
import time
from typing import Any


def step_cpu_seconds(agent: Any, size: int, calls: int) -> float:
    """CPU seconds of one gradient step on ``size`` transitions (mean of ``calls``)."""
    batch = agent._round_batch(size)
    for _ in range(3):  # warm-up (allocations, lazy init)
        agent._step(*batch)
    start = time.process_time()
    for _ in range(calls):
        agent._step(*batch)
    return (time.process_time() - start) / calls


def main(argv: list[str] | None = None) -> dict[str, float]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--members", type=int, default=18, help="batches in the amortised call")
    parser.add_argument("--calls", type=int, default=100, help="timed calls at the run's batch")
    parser.add_argument("--runs", type=int, default=36)
    parser.add_argument("--total-steps", type=int, default=200_000, help="user-steps per run")
    parser.add_argument("--cores", type=int, default=2)
    args = parser.parse_args(argv)

    import gymnasium as gym
    import torch

    import recsim_env  # noqa: F401 — registers the ids
    from agents.dqn import DQNAgent

    torch.set_num_threads(1)
    env = gym.make_vec("recsim_env/LongTerm-v0", num_envs=16)
    obs, _ = env.reset(seed=0)
    agent = DQNAgent(env, seed=0, total_steps=args.total_steps)
    for _ in range(max(100, 4 * agent.config.batch_size * args.members // 16)):
        actions = agent.act(obs, explore=True)
        next_obs, rewards, terminated, truncated, info = env.step(actions)
        agent.observe(obs, actions, rewards, next_obs, terminated, truncated, info)
        obs = next_obs
    size = agent.config.batch_size
    one = step_cpu_seconds(agent, size, args.calls)
    amortised = step_cpu_seconds(agent, size * args.members, max(20, args.calls // args.members))
    amortised /= args.members
    cfg = agent.config
    steps_per_run = args.total_steps / (16 * cfg.train_freq) * max(cfg.gradient_steps, 1)
    floor_min = args.runs * steps_per_run * amortised / args.cores / 60
    print(f"our DQN gradient step ({size} transitions x 20 candidates, CPU, 1 thread):")
    print(f"  one run's call:                 {one * 1e3:.2f} ms")
    print(f"  {args.members} batches in one call, per batch: {amortised * 1e3:.2f} ms (the floor)")
    print(
        f"  floor of {args.runs} runs x {args.total_steps:,} user-steps "
        f"({steps_per_run:,.0f} gradient steps each) on {args.cores} cores: {floor_min:.1f} min"
    )
    env.close()
    return {"one_ms": one * 1e3, "amortised_ms": amortised * 1e3, "floor_min": floor_min}


if __name__ == "__main__":
    main()
