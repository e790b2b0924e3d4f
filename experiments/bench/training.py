"""Training throughput and learning: our PQN and DQN against SB3's DQN and PPO on the same env.

Every agent learns ``total_steps`` user-steps on ``num_envs`` users of the same env and seed, with
the same hidden sizes, discount, exploration schedule (the ε-greedy learners) and number of torch
threads, then is evaluated greedily. Reported per agent:

* ``sps``: user-steps per second of wall-clock time for the whole ``learn`` (acting, simulating,
  storing and learning), median over ``repeats`` interleaved runs;
* ``cpu_sps``: the same over this process's CPU time (less sensitive to other processes on a
  shared machine; every run is single-threaded, so it is the cost of the run itself);
* ``reward_final``: mean reward per user-step over the last quarter of training (online);
* ``eval_reward``: mean reward per user-step of the greedy policy afterwards: ``eval_envs`` fresh
  users of the training world (an evaluation follower, as in the protocol), the same number of
  users and steps whatever ``num_envs`` was, so that figures compare across sizes.

Agents:

* ``pqn``: our PQN (:mod:`agents.pqn`), its default configuration (per-candidate LayerNorm
  network, rollouts of 16 vector steps, Q(λ), 2 epochs of at most 32 minibatches);
* ``dqn``: our DQN, per-candidate network, Double DQN, with SB3's head and loss (no dueling head,
  Huber loss; the defaults add a dueling head, which costs ≈ 1.75× CPU time per user-step, and
  the squared loss, which costs nothing: see the README's DQN paragraph);
* ``dqn_defaults``: our DQN exactly as ``agent=dqn`` configures it (dueling head, squared loss);
* ``dqn_mlp``: as ``dqn`` with SB3's flat MLP and Double DQN off (the like-for-like algorithm);
* ``sb3_dqn``: ``stable_baselines3.DQN`` (``MlpPolicy``) — the reference of every ratio;
* ``sb3_ppo``: ``stable_baselines3.PPO`` (``MlpPolicy``) with PQN's rollout shape: 16 vector
  steps per rollout, 4 epochs of at most 32 minibatches of at least 64.

The three DQNs share the update-to-data ratio (``gradient_steps / (train_freq · B)``, default
1/16), batch size, replay size, ``learning_starts``, target-update interval and learning rate.
PQN and PPO learn on-policy from rollouts, without replay: their update-to-data ratio is their
own, which is the point of comparing them. ``total_steps`` defaults to ``max(48,000, 96·B)`` (at
B = 2,048 a rollout learner sees 96 vector steps).

    python -m experiments.bench_train                     # B = 16, 256, 2,048, every agent
    python -m experiments.bench_train --num-envs 256 --agents pqn sb3_dqn --repeats 1
    python -m experiments.bench_train --device cuda       # our agents and SB3 on the GPU

Time to a good policy (user-steps and seconds to a target return, per agent, censoring-aware):
``python -m experiments.bench_train --time-to-good --help`` (:mod:`experiments.bench.time_to_good`).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch

import recsim_env  # registers the ids
from agents.base import StepCallback, Transition

AGENTS = ("pqn", "dqn", "dqn_defaults", "dqn_mlp", "sb3_dqn", "sb3_ppo")
SIZES = (16, 256, 2_048)
REFERENCE = "sb3_dqn"


def default_total_steps(num_envs: int) -> int:
    """``max(48,000, 96·B)``: enough vector steps for the rollout learners at large ``B``."""
    return max(48_000, 96 * num_envs)


class _RewardLog(StepCallback):
    def __init__(self) -> None:
        self.rewards: list[float] = []

    def on_step(self, transition: Transition) -> bool:
        self.rewards.append(float(transition.rewards.mean()))
        return True


def _sb3_vec_env(env_id: str, num_envs: int) -> Any:
    from recsim_env.sb3_vec_env import RecSimVecEnv

    return RecSimVecEnv(gym.make_vec(env_id, num_envs=num_envs, autoreset_mode="same_step"))


def _evaluate(policy: Callable[[np.ndarray], np.ndarray], world: Any, s: dict[str, Any]) -> float:
    """Mean reward per user-step of a greedy policy on ``eval_envs`` fresh users of the training
    world (an evaluation follower sharing catalogue, drift and clock, as the protocol evaluates)."""
    num_envs = s["eval_envs"]
    env = recsim_env.RecSimVectorEnv(num_envs, world=world, **gym.spec(s["env_id"]).kwargs)
    obs, _ = env.reset(seed=s["seed"] + 10_000)
    steps = max(1, s["eval_steps"] // num_envs)
    total = 0.0
    for _ in range(steps):
        obs, reward, *_ = env.step(policy(obs))
        total += float(reward.mean())
    env.close()
    return total / steps


def _run_ours(name: str, s: dict[str, Any]) -> dict[str, Any]:
    env = gym.make_vec(s["env_id"], num_envs=s["num_envs"], autoreset_mode="same_step")
    common = dict(
        seed=s["seed"], gamma=s["gamma"], lr=s["lr"], hidden_sizes=list(s["hidden_sizes"]),
        exploration_fraction=s["exploration_fraction"], epsilon_end=s["epsilon_end"],
        torch_threads=s["torch_threads"], device=s["device"],
    )  # fmt: skip
    if name == "pqn":
        from agents.pqn import PQNAgent

        agent: Any = PQNAgent(env, **common)
    else:
        from agents.dqn import DQNAgent

        extra: dict[str, Any] = dict(dueling=False, loss="huber")  # as SB3 (see the docstring)
        if name == "dqn_defaults":
            extra = {}
        elif name == "dqn_mlp":
            extra.update(network="mlp", double=False)
        agent = DQNAgent(
            env,
            batch_size=s["batch_size"],
            buffer_size=s["buffer_size"],
            learning_starts=s["learning_starts"],
            train_freq=s["train_freq"],
            gradient_steps=s["gradient_steps"],
            target_update_interval=s["target_update_interval"],
            **common,
            **extra,
        )
    log = _RewardLog()
    wall, cpu = time.perf_counter(), time.process_time()
    agent.learn(s["total_steps"], log)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    return dict(wall=wall, cpu=cpu, rewards=log.rewards, act=agent.act, world=env.unwrapped.world)


def sb3_ppo_settings(num_envs: int) -> dict[str, int]:
    """PQN's rollout shape for PPO: 16 vector steps, 4 epochs, ≤ 32 minibatches of ≥ 64."""
    n_steps = 16
    batch = max(64, n_steps * num_envs // 32)
    return dict(n_steps=n_steps, batch_size=batch, n_epochs=4)


def _run_sb3(name: str, s: dict[str, Any]) -> dict[str, Any]:
    from stable_baselines3 import DQN, PPO
    from stable_baselines3.common.callbacks import BaseCallback

    class RewardLog(BaseCallback):
        def __init__(self) -> None:
            super().__init__()
            self.rewards: list[float] = []

        def _on_step(self) -> bool:
            self.rewards.append(float(np.mean(self.locals["rewards"])))
            return True

    torch.set_num_threads(s["torch_threads"])
    venv = _sb3_vec_env(s["env_id"], s["num_envs"])
    policy_kwargs = dict(net_arch=list(s["hidden_sizes"]))
    if name == "sb3_ppo":
        model: Any = PPO(
            "MlpPolicy", venv, gamma=s["gamma"], policy_kwargs=policy_kwargs, seed=s["seed"],
            device=s["device"], verbose=0, **sb3_ppo_settings(s["num_envs"]),
        )  # fmt: skip
    else:
        model = DQN(
            "MlpPolicy",
            venv,
            learning_rate=s["lr"],
            buffer_size=s["buffer_size"],
            learning_starts=s["learning_starts"],
            batch_size=s["batch_size"],
            tau=1.0,
            gamma=s["gamma"],
            train_freq=s["train_freq"],
            gradient_steps=s["gradient_steps"],
            target_update_interval=s["target_update_interval"],
            exploration_fraction=s["exploration_fraction"],
            exploration_initial_eps=1.0,
            exploration_final_eps=s["epsilon_end"],
            max_grad_norm=10.0,
            policy_kwargs=policy_kwargs,
            seed=s["seed"],
            device=s["device"],
            verbose=0,
        )
    log = RewardLog()
    wall, cpu = time.perf_counter(), time.process_time()
    model.learn(s["total_steps"], callback=log)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu

    def act(obs: np.ndarray) -> np.ndarray:
        return model.predict(obs, deterministic=True)[0]

    return dict(
        wall=wall, cpu=cpu, rewards=log.rewards, act=act, world=venv.vector_env.unwrapped.world
    )


def _run(name: str, s: dict[str, Any]) -> dict[str, Any]:
    return _run_sb3(name, s) if name.startswith("sb3_") else _run_ours(name, s)


def bench_training(
    total_steps: int | None = None,
    num_envs: int = 16,
    seed: int = 0,
    *,
    env_id: str = "recsim_env/Stationary-v0",
    hidden_sizes: Sequence[int] = (64, 64),
    batch_size: int = 64,
    train_freq: int = 1,
    gradient_steps: int | None = None,
    buffer_size: int = 100_000,
    learning_starts: int = 1_000,
    lr: float = 1e-3,
    gamma: float = 0.99,
    exploration_fraction: float = 0.2,
    epsilon_end: float = 0.05,
    target_update_interval: int = 1_000,
    torch_threads: int = 1,
    device: str = "cpu",
    eval_steps: int = 8_000,
    eval_envs: int = 64,
    repeats: int = 1,
    warmup_steps: int = 0,
    agents: Sequence[str] = AGENTS,
) -> dict[str, Any]:
    """Run each agent ``repeats`` times (interleaved) and return settings, results and ratios.

    ``total_steps`` ``None``: :func:`default_total_steps`; ``gradient_steps`` ``None``: keep the
    DQNs' update-to-data ratio at 1/16 (``max(1, B // 16)``)."""
    unknown = set(agents) - set(AGENTS)
    if unknown:
        raise ValueError(f"unknown agents {sorted(unknown)}: allowed {AGENTS}")
    total_steps = default_total_steps(num_envs) if total_steps is None else total_steps
    gradient_steps = max(1, num_envs // 16) if gradient_steps is None else gradient_steps
    settings = dict(
        env_id=env_id, total_steps=total_steps, num_envs=num_envs, seed=seed,
        hidden_sizes=list(hidden_sizes), batch_size=batch_size, train_freq=train_freq,
        gradient_steps=gradient_steps, buffer_size=buffer_size, learning_starts=learning_starts,
        lr=lr, gamma=gamma, exploration_fraction=exploration_fraction, epsilon_end=epsilon_end,
        target_update_interval=target_update_interval, torch_threads=torch_threads,
        device=device, eval_steps=eval_steps, eval_envs=eval_envs, repeats=repeats,
    )  # fmt: skip
    grad = gradient_steps if gradient_steps > 0 else train_freq * num_envs
    settings["update_to_data"] = grad / (train_freq * num_envs)
    previous_threads = torch.get_num_threads()
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name in agents}
    try:
        if warmup_steps > 0:  # untimed: lazy imports, allocator and kernel caches of every side
            warm = dict(settings, total_steps=max(warmup_steps, 32 * num_envs))
            for name in agents:
                _run(name, warm)
        for _ in range(repeats):
            for name in agents:
                run = _run(name, settings)
                if runs[name]:  # keep the first run's policy and rewards (same seed)
                    run.pop("act")
                    run.pop("world")
                runs[name].append(run)
    finally:
        torch.set_num_threads(previous_threads)

    results: dict[str, dict[str, float]] = {}
    for name, name_runs in runs.items():
        first = name_runs[0]
        rewards = np.asarray(first["rewards"])
        window = max(1, len(rewards) // 4)
        results[name] = dict(
            sps=total_steps / statistics.median(r["wall"] for r in name_runs),
            cpu_sps=total_steps / statistics.median(r["cpu"] for r in name_runs),
            reward_final=float(rewards[-window:].mean()),
            eval_reward=_evaluate(first["act"], first["world"], settings),
        )
    ratios: dict[str, dict[str, float]] = {}
    if REFERENCE in results:
        ref = results[REFERENCE]
        for name in results:
            if name != REFERENCE:
                ratios[f"{name}/{REFERENCE}"] = {
                    key: results[name][key] / ref[key] if ref[key] else float("nan")
                    for key in ("sps", "cpu_sps", "reward_final", "eval_reward")
                }
    return {"settings": settings, "results": results, "ratios": ratios}


def format_table(report: dict[str, Any]) -> str:
    s = report["settings"]
    lines = [
        f"B={s['num_envs']} steps={s['total_steps']} hidden={s['hidden_sizes']} device={s['device']} "
        f"DQNs: batch={s['batch_size']} train_freq={s['train_freq']} "
        f"gradient_steps={s['gradient_steps']} (updates/user-step {s['update_to_data']:.4g}) "
        f"threads={s['torch_threads']} repeats={s['repeats']}",
        f"{'agent':<10}{'sps':>10}{'cpu_sps':>10}{'x sb3':>8}{'x cpu':>8}"
        f"{'reward_final':>14}{'eval_reward':>13}",
    ]
    ref = report["results"].get(REFERENCE)
    for name, r in report["results"].items():
        x = f"{r['sps'] / ref['sps']:.2f}" if ref else "-"
        xc = f"{r['cpu_sps'] / ref['cpu_sps']:.2f}" if ref else "-"
        lines.append(
            f"{name:<10}{r['sps']:>10.0f}{r['cpu_sps']:>10.0f}{x:>8}{xc:>8}"
            f"{r['reward_final']:>14.3f}{r['eval_reward']:>13.3f}"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> Any:
    """The throughput benchmark; ``--time-to-good [...]``: time to a good policy instead
    (:mod:`experiments.bench.time_to_good`, its own options)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if "--time-to-good" in argv:
        from experiments.bench.time_to_good import main as time_to_good_main

        return time_to_good_main([a for a in argv if a != "--time-to-good"])
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--num-envs", type=int, nargs="+", default=list(SIZES))
    parser.add_argument("--total-steps", type=int, nargs="+", default=None,
                        help="one per --num-envs, or one for all (default: max(48000, 96*B))")  # fmt: skip
    parser.add_argument("--gradient-steps", type=int, nargs="+", default=None,
                        help="the DQNs', one per --num-envs (default: keep updates/user-step = 1/16)")  # fmt: skip
    parser.add_argument("--agents", nargs="+", default=list(AGENTS), choices=AGENTS)
    parser.add_argument("--hidden-sizes", type=int, nargs="+", default=[64, 64])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--warmup-steps", type=int, default=4_000,
                        help="an untimed run of each agent first, at least 32*B steps (0: none)")  # fmt: skip
    parser.add_argument("--torch-threads", type=int, default=1)
    parser.add_argument("--device", default="cpu", help="cpu | cuda | cuda:<index> (ours and SB3)")
    parser.add_argument("--json", type=Path, default=None, help="also save the reports here")
    args = parser.parse_args(argv)

    def per_size(values: list[int] | None, flag: str) -> list[int | None]:
        if values is None:
            return [None] * len(args.num_envs)
        if len(values) == 1:
            return values * len(args.num_envs)
        if len(values) != len(args.num_envs):
            parser.error(f"{flag} needs one value, or one per --num-envs")
        return list(values)

    totals = per_size(args.total_steps, "--total-steps")
    grads = per_size(args.gradient_steps, "--gradient-steps")
    reports = []
    for num_envs, total, grad in zip(args.num_envs, totals, grads, strict=True):
        report = bench_training(
            total, num_envs, args.seed, gradient_steps=grad, hidden_sizes=args.hidden_sizes,
            repeats=args.repeats, torch_threads=args.torch_threads, device=args.device,
            warmup_steps=args.warmup_steps, agents=args.agents,
        )  # fmt: skip
        print(format_table(report), flush=True)
        for key, ratio in report["ratios"].items():
            print(f"ratio {key}: {ratio['sps']:.2f}x wall, {ratio['cpu_sps']:.2f}x cpu, "
                  f"eval reward {ratio['eval_reward']:.2f}x")  # fmt: skip
        print(flush=True)
        reports.append(report)
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(reports, indent=2))
    return reports


if __name__ == "__main__":
    main()
