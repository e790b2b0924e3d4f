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
  run;
* with ``--references DIR ...`` (run or sweep dirs of ``agent=oracle`` and ``agent=oracle_longterm``
  with the same env, seed, ``eval_every`` and ``eval_episodes``, e.g. ``experiment=study_gamma_refs``):
  the references are read from those runs instead of being evaluated again in every run. They do
  not depend on the agent (the same users of the same world at the same evaluation: the
  evaluation seed is drawn from the run's seed and the evaluation's index), so measuring them
  once per world saves two of the three evaluations of every run on ``LongTerm-v0``. A run whose
  (env, seed, schedule) has no complete reference set is evaluated with its own references;
* the hyperparameters each run used: the tuned preset ``conf/agent/tuned/<agent>/<env>.yaml``
  where one exists for the pair (composed through ``conf/config.yaml`` exactly as
  ``recsim-train`` does, so ``agent=sb3_dqn env=long_term`` gets its preset), else
  ``defaults``; read back from the run's ``run.json``, which names only a preset that was applied.

    python -m experiments.bench_train --time-to-good --envs stationary long_term --seeds 0 1 2 \\
        --total-steps 60000 --eval-every 5000
    python -m experiments.bench_train --time-to-good --envs long_term --seeds 11 12 13 \\
        --total-steps 300000 --eval-every 50000 --eval-episodes 1024 --references <refs sweep>
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
from experiments.run.overrides import compose_config
from recsim_env.validation import fail

AGENTS = ("pqn", "dqn", "sb3_dqn", "sb3_ppo")
ENVS = ("stationary", "long_term")
#: the reference agents and the key their ``eval/return`` stands in for
REFERENCE_AGENTS = {
    "oracle": "eval/ref_oracle_return",
    "oracle_longterm": "eval/ref_longterm_return",
}

Series = dict[str, tuple[np.ndarray, np.ndarray]]
RefKey = tuple[str, int, int, int]  # env id, seed, eval_every, eval_episodes


def read_series(metrics_csv: Path) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """``metrics.csv`` (long format: step, key, value) as ``key -> (steps, values)``."""
    rows: dict[str, tuple[list[float], list[float]]] = {}
    with metrics_csv.open(newline="") as f:
        for row in csv.DictReader(f):
            steps, values = rows.setdefault(row["key"], ([], []))
            steps.append(float(row["step"]))
            values.append(float(row["value"]))
    return {k: (np.asarray(s), np.asarray(v)) for k, (s, v) in rows.items()}


def load_references(paths: Sequence[Path]) -> dict[RefKey, Series]:
    """The reference runs under ``paths`` (run dirs, or dirs holding them at any depth): per
    (env id, seed, ``eval_every``, ``eval_episodes``), ``eval/ref_oracle_return`` and
    ``eval/ref_longterm_return`` as the ``eval/return`` series of ``agent=oracle`` and
    ``agent=oracle_longterm``. Other agents' runs and unfinished runs (no ``metrics.csv``) are
    left out."""
    import json

    from omegaconf import OmegaConf

    refs: dict[RefKey, Series] = {}
    for path in paths:
        if not Path(path).is_dir():
            fail("--references", str(path), "run or sweep dirs of agent=oracle / oracle_longterm")
        for record in sorted(Path(path).rglob("run.json")):
            run_dir = record.parent
            agent = json.loads(record.read_text()).get("choices", {}).get("agent")
            if agent not in REFERENCE_AGENTS or not (run_dir / "metrics.csv").is_file():
                continue
            cfg: Any = OmegaConf.load(run_dir / "config.yaml")
            key = _ref_key(cfg)
            series = read_series(run_dir / "metrics.csv").get("eval/return")
            if series is not None:
                refs.setdefault(key, {})[REFERENCE_AGENTS[agent]] = series
    return refs


def _ref_key(cfg: Any) -> RefKey:
    p = cfg.protocol
    return (str(cfg.env.id), int(cfg.seed), int(p.eval_every), int(p.eval_episodes))


def _returning_users(cfg: Any) -> bool:
    """Whether the env's users return (then the long-term reference is part of the target)."""
    import gymnasium as gym

    import recsim_env  # noqa: F401  (registers the ids)

    given = (cfg.env.get("kwargs") or {}).get("returning_users")
    if given is not None:
        return bool(given)
    return bool(gym.spec(str(cfg.env.id)).kwargs.get("returning_users", False))


def usable_references(refs: dict[RefKey, Series], cfg: Any) -> Series | None:
    """The reference series for this run's config, if complete (the myopic oracle, and the
    long-term reference where users return); else ``None`` (the run measures its own)."""
    found = refs.get(_ref_key(cfg))
    if not found or "eval/ref_oracle_return" not in found:
        return None
    if _returning_users(cfg) and "eval/ref_longterm_return" not in found:
        return None
    return found


def applied_preset(run_dir: Path) -> str:
    """The tuned preset a run was composed with (``run.json``'s ``agent/tuned`` choice, kept only
    where the preset file exists), or ``"defaults"``."""
    import json

    from experiments.run.overrides import PRESET_GROUP

    record = json.loads((run_dir / "run.json").read_text())
    return str(record.get("choices", {}).get(PRESET_GROUP, "defaults"))


def final_share(series: Series) -> float:
    """The last evaluation's share: of the headroom (myopic oracle 0, long-term reference 1) where
    the long-term reference was measured, else of the myopic oracle's return. The references are
    taken at the step of the agent's last evaluation (reference runs may go on beyond it)."""
    if "eval/return" not in series or not len(series["eval/return"][0]):
        return math.nan
    steps, returns = series["eval/return"]
    step, r = float(steps[-1]), float(returns[-1])

    def ref(key: str) -> float:
        s, v = series.get(key, (np.empty(0), np.empty(0)))
        hit = np.flatnonzero(np.asarray(s, dtype=np.float64) == step)
        return float(v[hit[-1]]) if hit.size else math.nan

    m = ref("eval/ref_oracle_return")
    if "eval/ref_longterm_return" in series:
        lt = ref("eval/ref_longterm_return")
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
    references: Sequence[Path] = (),
    reuse: bool = False,
) -> dict[str, Any]:
    """Train every (env, seed, agent) with the runner into ``out_dir`` and summarise (module doc).
    ``references``: dirs of reference runs to read instead of evaluating them in every run;
    ``reuse``: a run dir already holding a completed run of the same overrides is read, not
    trained again (a benchmark stopped part-way, or run in parts, is summarised whole)."""
    from experiments.run.job import run

    refs = load_references(references)

    report: dict[str, Any] = {
        "settings": dict(
            envs=list(envs), agents=list(agents), seeds=list(seeds), total_steps=total_steps,
            eval_every=eval_every, eval_episodes=eval_episodes, extra=list(extra_overrides),
            references=[str(p) for p in references],
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
                    f"protocol.eval_episodes={eval_episodes}",
                    "protocol.checkpoint_every=0", "protocol.checkpoint_replay=false",
                    "logger=csv", "progress=false", *extra_overrides,
                ]  # fmt: skip
                cfg, choices = compose_config(overrides, job_name="bench")
                given = usable_references(refs, cfg)
                if given is None:  # measure them in the run, on the same users
                    overrides.insert(6, "protocol/parts=with_references")
                    cfg, choices = compose_config(overrides, job_name="bench")
                run_dir = out_dir / env / agent / f"seed{seed}"
                if not (reuse and _completed(run_dir, overrides)):
                    run(cfg, run_dir=run_dir, multirun=False, overrides=overrides, choices=choices)
                series = {**read_series(run_dir / "metrics.csv"), **(given or {})}
                ttg = run_time_to_good(series)
                per_agent[agent]["runs"].append(
                    dict(
                        seed=seed,
                        run_dir=str(run_dir),
                        preset=applied_preset(run_dir),
                        references="given" if given is not None else "measured",
                        final_share=final_share(series),
                        longterm_reference="eval/ref_longterm_return" in series,
                        **(ttg.to_dict() if ttg is not None else {}),
                    )
                )
        longterm = any(r.get("longterm_reference") for a in per_agent.values() for r in a["runs"])
        for entry in per_agent.values():
            done = [TimeToGood(**_ttg_fields(r)) for r in entry["runs"] if "reached" in r]
            entry["summary"] = summarize_time_to_good(done)
            entry["presets"] = sorted({r["preset"] for r in entry["runs"]})
        report["envs"][env] = {
            "target": default_target(longterm).describe(),
            "agents": per_agent,
        }
    report["wall_seconds"] = time.perf_counter() - started
    return report


def _completed(run_dir: Path, overrides: Sequence[str]) -> bool:
    """A completed run of exactly these overrides is in ``run_dir``."""
    import json

    try:
        status = json.loads((run_dir / "summary.json").read_text()).get("status")
        given = json.loads((run_dir / "run.json").read_text()).get("overrides")
    except (OSError, ValueError):
        return False
    return status == "completed" and list(given or []) == list(overrides)


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
            "| agent | preset | reached | user-steps (KM median) | seconds (KM median) | per seed "
            "(user-steps) | best eval ÷ target (per seed) | last eval share (per seed) |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for agent, entry in block["agents"].items():
            summary, runs = entry["summary"], entry["runs"]
            per_seed = ", ".join(
                format_time(r["user_steps"] if r.get("reached") else math.nan, r.get("budget_steps", math.nan))
                for r in runs
            )  # fmt: skip
            shares = ", ".join(f"{r['final_share']:.2f}" for r in runs)
            best = ", ".join(f"{r.get('best_ratio', math.nan):.2f}" for r in runs)
            presets = ", ".join(entry.get("presets", [])) or "defaults"
            lines.append(
                f"| {agent} | {presets} | {summary['time_to_good/reached']:.0f}/{len(runs)} | "
                f"{format_time(summary['time_to_good/user_steps_km_median'], summary['time_to_good/max_budget_steps'])} | "
                f"{format_time(summary['time_to_good/seconds_km_median'], summary['time_to_good/max_budget_seconds'], ' s')} | "
                f"{per_seed} | {best} | {shares} |"
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
    parser.add_argument("--references", type=Path, nargs="*", default=[],
                        help="run/sweep dirs of agent=oracle and oracle_longterm (same env, seed, "
                        "eval schedule) to read the references from instead of evaluating them")  # fmt: skip
    parser.add_argument("--reuse", action="store_true",
                        help="read the completed runs of the same settings already under --out")  # fmt: skip
    parser.add_argument("overrides", nargs="*", help="more recsim-train overrides for every run")
    args = parser.parse_args(argv)
    report = bench_time_to_good(
        args.out, envs=args.envs, agents=args.agents, seeds=args.seeds,
        total_steps=args.total_steps, eval_every=args.eval_every,
        eval_episodes=args.eval_episodes, extra_overrides=args.overrides,
        references=args.references, reuse=args.reuse,
    )  # fmt: skip
    print(format_report(report), flush=True)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "time_to_good.json").write_text(json.dumps(report, indent=2, default=str))
    return report
