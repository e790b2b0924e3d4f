"""Training throughput: our DQN vs SB3's DQN on the same env at the same update-to-data ratio.

Both learn ``total_steps`` user-steps on ``num_envs`` users of the same env and seed, with the same
hidden sizes, batch size, ``train_freq`` (vector steps), ``gradient_steps``, replay size,
``learning_starts``, exploration schedule, target-update interval, learning rate and number of torch
threads. Reported per agent:

* ``sps``: user-steps per second of wall-clock time for the whole ``learn`` (acting, simulating,
  storing and learning), median over ``repeats`` interleaved runs;
* ``cpu_sps``: the same over this process's CPU time (less sensitive to other processes on a
  shared machine; every run is single-threaded, so it is the cost of the run itself);
* ``reward_final``: mean reward per user-step over the last quarter of training (online, ε-greedy);
* ``eval_reward``: mean reward per user-step of the greedy policy afterwards, on fresh users of
  the training world (an evaluation follower, as in the protocol).

Agents: ``dqn`` (ours, default config: per-candidate network, Double DQN), ``dqn_mlp`` (ours with
the same flat MLP as SB3's ``MlpPolicy`` and Double DQN off: the like-for-like algorithm) and
``sb3_dqn`` (``stable_baselines3.DQN`` with ``MlpPolicy``). Ratios are ours over SB3's.

    python -m experiments.bench_train   # headline: B=16 and B=256, updates/user-step 1/16
    python -m experiments.bench_train --num-envs 16 64 --total-steps 64000 --repeats 3
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch

import recsim_env  # registers the ids
from agents.base import StepCallback, Transition
from agents.dqn import DQNAgent

AGENTS = ("dqn", "dqn_mlp", "sb3_dqn")


class _RewardLog(StepCallback):
    def __init__(self) -> None:
        self.rewards: list[float] = []

    def on_step(self, transition: Transition) -> bool:
        self.rewards.append(float(transition.rewards.mean()))
        return True


def _sb3_vec_env(env_id: str, num_envs: int) -> Any:
    try:
        from recsim_env.sb3_vec_env import RecSimVecEnv
    except ImportError:  # fall back to B separate envs
        from stable_baselines3.common.env_util import make_vec_env

        return make_vec_env(env_id, n_envs=num_envs)
    return RecSimVecEnv(gym.make_vec(env_id, num_envs=num_envs))


def _evaluate(policy: Callable[[np.ndarray], np.ndarray], world: Any, s: dict[str, Any]) -> float:
    """Mean reward per user-step of a greedy policy on fresh users of the training world (an
    evaluation follower sharing catalogue, drift and clock, as the protocol evaluates)."""
    num_envs = s["num_envs"]
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
    env = gym.make_vec(s["env_id"], num_envs=s["num_envs"])
    extra = dict(network="mlp", double=False) if name == "dqn_mlp" else {}
    agent = DQNAgent(
        env,
        seed=s["seed"],
        gamma=s["gamma"],
        lr=s["lr"],
        batch_size=s["batch_size"],
        buffer_size=s["buffer_size"],
        hidden_sizes=list(s["hidden_sizes"]),
        learning_starts=s["learning_starts"],
        train_freq=s["train_freq"],
        gradient_steps=s["gradient_steps"],
        target_update_interval=s["target_update_interval"],
        exploration_fraction=s["exploration_fraction"],
        epsilon_end=s["epsilon_end"],
        torch_threads=s["torch_threads"],
        device="cpu",
        **extra,
    )
    log = _RewardLog()
    wall, cpu = time.perf_counter(), time.process_time()
    agent.learn(s["total_steps"], log)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    return dict(wall=wall, cpu=cpu, rewards=log.rewards, act=agent.act, world=env.unwrapped.world)


def _run_sb3(s: dict[str, Any]) -> dict[str, Any]:
    from stable_baselines3 import DQN
    from stable_baselines3.common.callbacks import BaseCallback

    class RewardLog(BaseCallback):
        def __init__(self) -> None:
            super().__init__()
            self.rewards: list[float] = []

        def _on_step(self) -> bool:
            self.rewards.append(float(np.mean(self.locals["rewards"])))
            return True

    torch.set_num_threads(s["torch_threads"])
    model = DQN(
        "MlpPolicy",
        _sb3_vec_env(s["env_id"], s["num_envs"]),
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
        policy_kwargs=dict(net_arch=list(s["hidden_sizes"])),
        seed=s["seed"],
        device="cpu",
        verbose=0,
    )
    log = RewardLog()
    venv = model.get_env()
    wall, cpu = time.perf_counter(), time.process_time()
    model.learn(s["total_steps"], callback=log)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu

    def act(obs: np.ndarray) -> np.ndarray:
        return model.predict(obs, deterministic=True)[0]

    vector_env = getattr(venv, "vector_env", None)  # RecSimVecEnv; else B separate envs
    world = vector_env.unwrapped.world if vector_env is not None else venv.envs[0].unwrapped.world
    return dict(wall=wall, cpu=cpu, rewards=log.rewards, act=act, world=world)


def bench_training(
    total_steps: int = 48_000,
    num_envs: int = 16,
    seed: int = 0,
    *,
    env_id: str = "recsim_env/Stationary-v0",
    hidden_sizes: Sequence[int] = (64, 64),
    batch_size: int = 64,
    train_freq: int = 1,
    gradient_steps: int = 1,
    buffer_size: int = 100_000,
    learning_starts: int = 1_000,
    lr: float = 1e-3,
    gamma: float = 0.99,
    exploration_fraction: float = 0.2,
    epsilon_end: float = 0.05,
    target_update_interval: int = 1_000,
    torch_threads: int = 1,
    eval_steps: int = 8_000,
    repeats: int = 1,
    warmup_steps: int = 0,
    agents: Sequence[str] = AGENTS,
) -> dict[str, Any]:
    """Run each agent ``repeats`` times (interleaved) and return settings, results and ratios."""
    unknown = set(agents) - set(AGENTS)
    if unknown:
        raise ValueError(f"unknown agents {sorted(unknown)}: allowed {AGENTS}")
    settings = dict(
        env_id=env_id, total_steps=total_steps, num_envs=num_envs, seed=seed,
        hidden_sizes=list(hidden_sizes), batch_size=batch_size, train_freq=train_freq,
        gradient_steps=gradient_steps, buffer_size=buffer_size, learning_starts=learning_starts,
        lr=lr, gamma=gamma, exploration_fraction=exploration_fraction, epsilon_end=epsilon_end,
        target_update_interval=target_update_interval, torch_threads=torch_threads,
        eval_steps=eval_steps, repeats=repeats,
    )  # fmt: skip
    grad = gradient_steps if gradient_steps > 0 else train_freq * num_envs
    settings["update_to_data"] = grad / (train_freq * num_envs)
    previous_threads = torch.get_num_threads()
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name in agents}
    try:
        if warmup_steps > 0:  # untimed: lazy imports, allocator and kernel caches of both sides
            warm = dict(settings, total_steps=warmup_steps)
            for name in agents:
                _run_sb3(warm) if name == "sb3_dqn" else _run_ours(name, warm)
        for _ in range(repeats):
            for name in agents:
                run = _run_sb3(settings) if name == "sb3_dqn" else _run_ours(name, settings)
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
    if "sb3_dqn" in results:
        ref = results["sb3_dqn"]
        for name in results:
            if name != "sb3_dqn":
                ratios[f"{name}/sb3_dqn"] = {
                    key: results[name][key] / ref[key] if ref[key] else float("nan")
                    for key in ("sps", "cpu_sps", "reward_final", "eval_reward")
                }
    return {"settings": settings, "results": results, "ratios": ratios}


def format_table(report: dict[str, Any]) -> str:
    s = report["settings"]
    lines = [
        f"B={s['num_envs']} steps={s['total_steps']} hidden={s['hidden_sizes']} "
        f"batch={s['batch_size']} train_freq={s['train_freq']} gradient_steps={s['gradient_steps']} "
        f"(updates/user-step {s['update_to_data']:.4g}) threads={s['torch_threads']} "
        f"repeats={s['repeats']}",
        f"{'agent':<10}{'sps':>10}{'cpu_sps':>10}{'x sb3':>8}{'x cpu':>8}"
        f"{'reward_final':>14}{'eval_reward':>13}",
    ]
    ref = report["results"].get("sb3_dqn")
    for name, r in report["results"].items():
        x = f"{r['sps'] / ref['sps']:.2f}" if ref else "-"
        xc = f"{r['cpu_sps'] / ref['cpu_sps']:.2f}" if ref else "-"
        lines.append(
            f"{name:<10}{r['sps']:>10.0f}{r['cpu_sps']:>10.0f}{x:>8}{xc:>8}"
            f"{r['reward_final']:>14.3f}{r['eval_reward']:>13.3f}"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> list[dict[str, Any]]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--total-steps", type=int, default=48_000)
    parser.add_argument("--num-envs", type=int, nargs="+", default=[16, 256])
    parser.add_argument("--gradient-steps", type=int, nargs="+", default=None,
                        help="one per --num-envs (default: keep updates/user-step = 1/16)")  # fmt: skip
    parser.add_argument("--hidden-sizes", type=int, nargs="+", default=[64, 64])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--warmup-steps", type=int, default=4_000,
                        help="an untimed run of each agent first (0: none)")  # fmt: skip
    parser.add_argument("--torch-threads", type=int, default=1)
    parser.add_argument("--json", type=Path, default=None, help="also save the reports here")
    args = parser.parse_args(argv)
    grads = args.gradient_steps or [max(1, b // 16) for b in args.num_envs]
    if len(grads) != len(args.num_envs):
        parser.error("--gradient-steps needs one value per --num-envs")
    reports = []
    for num_envs, grad in zip(args.num_envs, grads, strict=True):
        report = bench_training(
            args.total_steps, num_envs, args.seed, gradient_steps=grad,
            hidden_sizes=args.hidden_sizes,
            repeats=args.repeats, torch_threads=args.torch_threads,
            warmup_steps=args.warmup_steps,
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
