"""Time to a good policy: PQN, our DQN, SB3's DQN and PPO side by side in one run.

Learners are judged by time to a good policy, not steps per second alone (DESIGN §7). Each agent
is trained by the runner exactly as ``recsim-train agent=NAME env=ENV`` configures it (its
defaults, or the env's preset where one exists), with the evaluation part that measures the
references on the same evaluation users (``protocol/parts=with_references``), on the same worlds
(seeds), interleaved agent by agent so that machine load hits every agent alike. Reported per env
and agent (definitions: :mod:`experiments.analysis.time_to_good`):

* the user-steps and the training wall-clock seconds (evaluations and checkpoints excluded, from
  the run's ``time/sps`` windows) to the first evaluation at or above the target: 80 % of the
  myopic oracle's ``eval/return`` on envs without returning users (``Stationary-v0``), 50 % of the
  headroom between the myopic oracle and the long-term reference where users return
  (``LongTerm-v0``); ``> budget`` where never reached;
* across seeds: the Kaplan–Meier median (censored runs count; ``> budget`` when more than half
  never got there) and how many reached it;
* the last evaluation's share (of the oracle, or of the headroom), the measured gap of a censored
  run.

    python -m experiments.bench_train --time-to-good --envs stationary long_term --seeds 0 1 2 \\
        --total-steps 60000 --eval-every 5000
"""

from __future__ import annotations

import csv
import math
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from experiments.analysis.time_to_good import (
    TimeToGood,
    default_target,
    format_time,
    run_time_to_good,
    summarize_time_to_good,
)

AGENTS = ("pqn", "dqn", "sb3_dqn", "sb3_ppo")
ENVS = ("stationary", "long_term")


def _compose(overrides: Sequence[str]) -> tuple[Any, dict[str, str]]:
    """``conf/config.yaml`` with ``overrides`` (Hydra's compose API); (config, group choices)."""
    from hydra import compose, initialize_config_dir
    from omegaconf import open_dict

    from experiments.run.config import CONF_DIR
    from experiments.run.overrides import clean_choices

    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3", job_name="bench"):
        cfg = compose("config", overrides=list(overrides), return_hydra_config=True)
    choices = clean_choices(cfg.hydra.runtime.choices)
    with open_dict(cfg):
        del cfg["hydra"]
    return cfg, choices


def read_series(metrics_csv: Path) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """``metrics.csv`` (long format: step, key, value) as ``key -> (steps, values)``."""
    rows: dict[str, tuple[list[float], list[float]]] = {}
    with metrics_csv.open(newline="") as f:
        for row in csv.DictReader(f):
            steps, values = rows.setdefault(row["key"], ([], []))
            steps.append(float(row["step"]))
            values.append(float(row["value"]))
    return {k: (np.asarray(s), np.asarray(v)) for k, (s, v) in rows.items()}


def final_share(series: dict[str, tuple[np.ndarray, np.ndarray]]) -> float:
    """The last evaluation's share: of the headroom (myopic oracle 0, long-term reference 1) where
    the long-term reference was measured, else of the myopic oracle's return."""
    last = {k: float(v[1][-1]) for k, v in series.items() if k.startswith("eval/") and len(v[1])}
    r, m = last.get("eval/return", math.nan), last.get("eval/ref_oracle_return", math.nan)
    if "eval/ref_longterm_return" in last:
        lt = last["eval/ref_longterm_return"]
        return (r - m) / (lt - m) if lt != m else math.nan
    return r / m if m else math.nan


def bench_time_to_good(
    out_dir: Path,
    *,
    envs: Sequence[str] = ENVS,
    agents: Sequence[str] = AGENTS,
    seeds: Sequence[int] = (0, 1, 2),
    total_steps: int = 60_000,
    eval_every: int = 5_000,
    eval_episodes: int = 128,
    extra_overrides: Sequence[str] = (),
) -> dict[str, Any]:
    """Train every (env, seed, agent) with the runner into ``out_dir`` and summarise (module doc)."""
    from experiments.run.job import run

    report: dict[str, Any] = {
        "settings": dict(
            envs=list(envs), agents=list(agents), seeds=list(seeds), total_steps=total_steps,
            eval_every=eval_every, eval_episodes=eval_episodes, extra=list(extra_overrides),
        ),
        "envs": {},
    }  # fmt: skip
    started = time.perf_counter()
    for env in envs:
        per_agent: dict[str, dict[str, Any]] = {a: {"runs": []} for a in agents}
        for seed in seeds:
            for agent in agents:  # interleaved: load on a shared machine hits every agent alike
                overrides = [
                    f"agent={agent}", f"env={env}", f"seed={seed}",
                    f"protocol.total_steps={total_steps}", f"protocol.eval_every={eval_every}",
                    f"protocol.eval_episodes={eval_episodes}", "protocol/parts=with_references",
                    "protocol.checkpoint_every=0", "protocol.checkpoint_replay=false",
                    "logger=csv", "progress=false", *extra_overrides,
                ]  # fmt: skip
                cfg, choices = _compose(overrides)
                run_dir = out_dir / env / agent / f"seed{seed}"
                run(cfg, run_dir=run_dir, multirun=False, overrides=overrides, choices=choices)
                series = read_series(run_dir / "metrics.csv")
                ttg = run_time_to_good(series)
                per_agent[agent]["runs"].append(
                    dict(
                        seed=seed,
                        run_dir=str(run_dir),
                        final_share=final_share(series),
                        **(ttg.to_dict() if ttg is not None else {}),
                    )
                )
        longterm = any("eval/ref_longterm_return" in read_series(Path(r["run_dir"]) / "metrics.csv")
                       for a in per_agent.values() for r in a["runs"][:1])  # fmt: skip
        for entry in per_agent.values():
            done = [TimeToGood(**_ttg_fields(r)) for r in entry["runs"] if "reached" in r]
            entry["summary"] = summarize_time_to_good(done)
        report["envs"][env] = {
            "target": default_target(longterm).describe(),
            "agents": per_agent,
        }
    report["wall_seconds"] = time.perf_counter() - started
    return report


def _ttg_fields(row: dict[str, Any]) -> dict[str, Any]:
    return {k: row[k] for k in TimeToGood.__dataclass_fields__}


def format_report(report: dict[str, Any]) -> str:
    """Markdown tables, one per env: agent, reached, KM medians, per seed, last share."""
    s = report["settings"]
    lines = [
        f"Time to a good policy: {s['total_steps']:,} user-steps per run, evaluation every "
        f"{s['eval_every']:,} on {s['eval_episodes']} users, seeds {s['seeds']}"
        + (f", {' '.join(s['extra'])}" if s["extra"] else "")
    ]
    for env, block in report["envs"].items():
        lines += [
            "",
            f"### {env}: target {block['target']}",
            "",
            "| agent | reached | user-steps (KM median) | seconds (KM median) | per seed "
            "(user-steps) | last eval share (per seed) |",
            "|---|---|---|---|---|---|",
        ]
        for agent, entry in block["agents"].items():
            summary, runs = entry["summary"], entry["runs"]
            per_seed = ", ".join(
                format_time(r["user_steps"] if r.get("reached") else math.nan, r.get("budget_steps", math.nan))
                for r in runs
            )  # fmt: skip
            shares = ", ".join(f"{r['final_share']:.2f}" for r in runs)
            lines.append(
                f"| {agent} | {summary['time_to_good/reached']:.0f}/{len(runs)} | "
                f"{format_time(summary['time_to_good/user_steps_km_median'], summary['time_to_good/max_budget_steps'])} | "
                f"{format_time(summary['time_to_good/seconds_km_median'], summary['time_to_good/max_budget_seconds'], ' s')} | "
                f"{per_seed} | {shares} |"
            )  # fmt: skip
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """``python -m experiments.bench_train --time-to-good ...``: run, print the tables, save JSON."""
    import argparse
    import json

    parser = argparse.ArgumentParser(
        prog="python -m experiments.bench_train --time-to-good", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--envs", nargs="+", default=list(ENVS), help="env config names")
    parser.add_argument("--agents", nargs="+", default=list(AGENTS), help="agent config names")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--total-steps", type=int, default=60_000)
    parser.add_argument("--eval-every", type=int, default=5_000)
    parser.add_argument("--eval-episodes", type=int, default=128)
    parser.add_argument("--out", type=Path, default=Path("bench_results/time_to_good"),
                        help="run dirs and time_to_good.json go here")  # fmt: skip
    parser.add_argument("overrides", nargs="*", help="more recsim-train overrides for every run")
    args = parser.parse_args(argv)
    report = bench_time_to_good(
        args.out, envs=args.envs, agents=args.agents, seeds=args.seeds,
        total_steps=args.total_steps, eval_every=args.eval_every,
        eval_episodes=args.eval_episodes, extra_overrides=args.overrides,
    )  # fmt: skip
    print(format_report(report), flush=True)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "time_to_good.json").write_text(json.dumps(report, indent=2, default=str))
    return report
