"""How much the horizon matters on ``recsim_env/LongTerm-v0``.

Run: ``python docs/studies/longterm/scripts/measure_longterm.py`` (from the repository root).

For each world seed, every policy serves the same ``users`` users (same world, same user streams:
a paired comparison) from ``reset(seed)`` until each user's *first lifetime* has ended (churn or the
``lifetime_ticks`` cap); the long-horizon return of a policy is the mean reward per user over that
lifetime. Policies: the myopic oracle (``agent=oracle``), the long-term reference
(``agent=oracle_longterm``), the observation-only long-term rule (``agent=longterm_rule``) and the
observation-only myopic rule (``longterm_rule`` with ``return_weight=0``). Printed per seed and as
mean ± 95 % CI (Student t over seeds) of

* ``gain`` = longterm_ref / myopic − 1 (target ≥ 0.30), and
* ``capture`` = (obs_rule − myopic) / (longterm_ref − myopic) (target ≥ 0.5).
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from typing import Any

import gymnasium as gym
import numpy as np

import recsim_env  # noqa: F401  (registers the ids)
from agents.baselines.longterm import LongTermRuleAgent, OracleLongTermAgent
from agents.baselines.oracle import OracleAgent

ENV_ID = "recsim_env/LongTerm-v0"
# two-sided 95 % Student t quantiles by degrees of freedom (no scipy dependency)
_T95 = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306, 9: 2.262}

POLICIES: dict[str, Callable[[Any], Any]] = {
    "myopic_oracle": OracleAgent,
    "oracle_longterm": OracleLongTermAgent,
    "longterm_rule": LongTermRuleAgent,
    "myopic_rule": lambda env: LongTermRuleAgent(env, return_weight=0.0),
}


def first_lifetimes(
    make_agent: Callable[[Any], Any], seed: int, users: int, **env_kwargs: Any
) -> dict[str, float]:
    """Mean return, sessions and steps per user over each slot's first lifetime."""
    env = gym.make_vec(ENV_ID, num_envs=users, **env_kwargs)
    if env.config.horizon != "lifetime":
        raise ValueError("measure the lifetime return with horizon='lifetime'")
    agent = make_agent(env)
    obs, info = env.reset(seed=seed)
    active = np.ones(users, bool)
    returns = np.zeros(users)
    sessions = np.zeros(users)
    steps = 0
    while active.any():
        obs, rewards, terminated, truncated, info = env.step(agent.act(obs, info=info))
        returns[active] += rewards[active]
        steps += int(active.sum())
        ended = active & (terminated | truncated)
        if ended.any():
            sessions[ended] = info["final_info"]["lifetime_sessions"][ended]
        active &= ~ended
    env.close()
    return {
        "return": float(returns.mean()),
        "sessions": float(sessions.mean()),
        "steps": steps / users,
    }


def mean_ci(values: list[float]) -> tuple[float, float]:
    """Mean and the half-width of its 95 % Student t interval."""
    x = np.asarray(values, np.float64)
    if len(x) < 2:
        return float(x.mean()), float("nan")
    t = _T95.get(len(x) - 1, 1.96)
    return float(x.mean()), float(t * x.std(ddof=1) / np.sqrt(len(x)))


def measure(seeds: list[int], users: int, **env_kwargs: Any) -> dict[str, Any]:
    per_seed = []
    for seed in seeds:
        row = {name: first_lifetimes(p, seed, users, **env_kwargs) for name, p in POLICIES.items()}
        myopic = row["myopic_oracle"]["return"]
        ref = row["oracle_longterm"]["return"]
        row["gain"] = ref / myopic - 1.0
        row["capture"] = (row["longterm_rule"]["return"] - myopic) / (ref - myopic)
        row["seed"] = seed
        per_seed.append(row)
    summary = {name: mean_ci([r[name]["return"] for r in per_seed]) for name in POLICIES} | {
        key: mean_ci([r[key] for r in per_seed]) for key in ("gain", "capture")
    }
    return {"per_seed": per_seed, "summary": summary, "users": users, "env_kwargs": env_kwargs}


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5, help="number of world seeds")
    parser.add_argument("--first-seed", type=int, default=0, help="world seeds start here")
    parser.add_argument("--users", type=int, default=1024, help="users (first lifetimes) per seed")
    parser.add_argument(
        "--longterm-weight",
        type=float,
        default=None,
        help="λ of the long-term reference (default: the env's); tune it on other seeds",
    )
    parser.add_argument("--json", default=None, help="also write the results to this file")
    args = parser.parse_args(argv)
    env_kwargs = {} if args.longterm_weight is None else {"longterm_weight": args.longterm_weight}
    seeds = list(range(args.first_seed, args.first_seed + args.seeds))
    result = measure(seeds, args.users, **env_kwargs)
    for row in result["per_seed"]:
        returns = "  ".join(f"{name} {row[name]['return']:7.2f}" for name in POLICIES)
        print(
            f"seed {row['seed']}: {returns}  gain {row['gain']:+.3f}  capture {row['capture']:.3f}"
        )
    print(f"over seeds {seeds} × {args.users} users (mean ± 95 % CI):")
    for name, (m, h) in result["summary"].items():
        print(f"  {name:16s} {m:8.3f} ± {h:.3f}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=2)
    return result


if __name__ == "__main__":
    main()
