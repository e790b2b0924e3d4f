"""``python -m experiments.bench_train --population``: a sweep through ``hydra/launcher=batched``
against the same sweep through ``hydra/launcher=joblib``, side by side, wall-clock.

The sweep is ``sweep=gamma_eps_lr`` restricted to one agent (our DQN, then PQN): 3 γ × 2 ε × 2 lr
= 12 configurations × ``--seeds`` seeds on ``LongTerm-v0``. Both launchers run it as
``recsim-train`` does (a subprocess of this checkout each, the sweep's own protocol with
``--total-steps`` user-steps per run; ``--total-steps`` below the sweep's 200k scales its
evaluation, logging and checkpoint periods with it), one after the other on the same machine, so
the printed ratio ``joblib / batched`` is the speed-up of the batched launcher. Targets (issue 22):
≥ 8× on 2 CPU cores, the 36-run DQN grid at 200k user-steps in ≤ 20 min on 2 cores.

Each sweep is checked, not just timed: every job must end ``completed``, and the mean of the
optimised metric over the grid is printed for both launchers (a population member equals its
separate run up to floating-point reassociation, so the two means agree closely).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

SWEEP_STEPS = 200_000  # sweep=gamma_eps_lr's protocol.total_steps
SWEEP_EVAL_EPISODES = 1024  # and its protocol.eval_episodes
CONFIGS = 12  # 3 γ × 2 exploration fractions × 2 learning rates
TARGET_RATIO = 8.0
ROOT = Path(__file__).resolve().parents[2]  # the checkout whose recsim-train is measured
TARGET_DQN_GRID_S = 20 * 60


def protocol_overrides(total_steps: int) -> list[str]:
    """The sweep's protocol at ``total_steps`` user-steps: 2 evaluations, 40 log points, one
    checkpoint at the end, as ``sweep=gamma_eps_lr`` has at 200k; its 1024 evaluation episodes
    (whole user lifetimes on LongTerm-v0) scaled with the budget (at least 16), so that training
    and evaluation keep their shares of a run."""
    if total_steps >= SWEEP_STEPS:
        return [f"protocol.total_steps={total_steps}"]
    return [
        f"protocol.total_steps={total_steps}",
        f"protocol.eval_every={max(1, total_steps // 2)}",
        f"protocol.log_every={max(1, total_steps // 40)}",
        f"protocol.checkpoint_every={total_steps}",
        f"protocol.eval_episodes={max(16, SWEEP_EVAL_EPISODES * total_steps // SWEEP_STEPS)}",
    ]


def sweep_command(
    agent: str, launcher: str, seeds: int, total_steps: int, workers: int, sweep_dir: Path
) -> list[str]:
    """``recsim-train`` (this checkout) running the restricted grid through ``launcher``."""
    return [
        sys.executable,
        "-m",
        "experiments.run.cli",
        "sweep=gamma_eps_lr",
        f"hydra.sweeper.params.agent={agent}",
        f"seed={','.join(str(s) for s in range(seeds))}",
        *protocol_overrides(total_steps),
        f"hydra/launcher={launcher}",
        f"hydra.launcher.n_jobs={workers}",
        f"hydra.sweep.dir={sweep_dir}",
        "hydra.callbacks.progress.every_s=0",
    ]


def run_sweep(command: list[str], log_path: Path, nice: int) -> tuple[float, int]:
    """Wall-clock seconds and exit status of one sweep (its output into ``log_path``)."""
    env = dict(os.environ, OMP_NUM_THREADS="1", WANDB_MODE="disabled")
    start = time.perf_counter()
    with open(log_path, "w") as log:
        code = subprocess.call(
            command,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=ROOT,
            preexec_fn=(lambda: os.nice(nice)) if nice else None,
        )
    return time.perf_counter() - start, code


def sweep_outcome(sweep_dir: Path) -> dict[str, Any]:
    """Jobs, completed jobs, user-steps and the mean optimised metric of a finished sweep."""
    from experiments.integrations.hydra_callbacks import scan_sweep

    jobs = scan_sweep(sweep_dir)
    values, steps = [], 0
    for job in jobs:
        try:
            summary = json.loads((Path(job["dir"]) / "summary.json").read_text())
        except (OSError, ValueError):
            continue
        steps += int(summary.get("num_timesteps") or 0)
        value = summary.get("online/reward")
        if job["status"] == "completed" and isinstance(value, int | float):
            values.append(float(value))
    return {
        "jobs": len(jobs),
        "completed": sum(j["status"] == "completed" for j in jobs),
        "user_steps": steps,
        "mean_online_reward": sum(values) / len(values) if values else math.nan,
    }


def bench_population(
    agents: list[str],
    *,
    seeds: int = 3,
    total_steps: int = SWEEP_STEPS,
    workers: int = 2,
    batched_workers: int = 2,
    out_dir: Path,
    nice: int = 0,
) -> list[dict[str, Any]]:
    """For each agent: the grid through joblib (``workers``) then batched (``batched_workers``)."""
    rows = []
    for agent in agents:
        row: dict[str, Any] = {
            "agent": agent,
            "runs": CONFIGS * seeds,
            "total_steps": total_steps,
            "cpu_count": os.cpu_count(),
        }
        for launcher, n in (("joblib", workers), ("batched", batched_workers)):
            sweep_dir = out_dir / f"{agent}-{launcher}"
            command = sweep_command(agent, launcher, seeds, total_steps, n, sweep_dir)
            print(f"[bench] {agent} via {launcher} (n_jobs={n}): {sweep_dir}", flush=True)
            wall, code = run_sweep(command, out_dir / f"{agent}-{launcher}.log", nice)
            row[launcher] = {"wall_s": wall, "exit": code, "n_jobs": n, **sweep_outcome(sweep_dir)}
            print(f"[bench]   {wall:,.0f} s, exit {code}, {row[launcher]}", flush=True)
        row["ratio"] = row["joblib"]["wall_s"] / row["batched"]["wall_s"]
        if total_steps < SWEEP_STEPS:  # the full budget's time, if cost is linear in user-steps
            row["batched_projected_full_s"] = row["batched"]["wall_s"] * SWEEP_STEPS / total_steps
        rows.append(row)
    return rows


def format_rows(rows: list[dict[str, Any]]) -> str:
    """The side-by-side table, the ratios and the targets."""
    lines = [
        f"{'agent':<6} {'runs':>4} {'user-steps/run':>14} {'joblib s':>9} {'batched s':>9} "
        f"{'ratio':>6}  {'mean online/reward joblib | batched':>36}  completed",
    ]
    for row in rows:
        j, b = row["joblib"], row["batched"]
        lines.append(
            f"{row['agent']:<6} {row['runs']:>4} {row['total_steps']:>14,} {j['wall_s']:>9.0f} "
            f"{b['wall_s']:>9.0f} {row['ratio']:>5.2f}x  {j['mean_online_reward']:>17.4f} | "
            f"{b['mean_online_reward']:<17.4f}  {j['completed']}/{row['runs']} | "
            f"{b['completed']}/{row['runs']}"
        )
    for row in rows:
        verdict = "met" if row["ratio"] >= TARGET_RATIO else "NOT met"
        lines.append(
            f"ratio {row['agent']}: batched is {row['ratio']:.2f}x faster than joblib "
            f"(target >= {TARGET_RATIO:.0f}x: {verdict})"
        )
        if row["agent"] == "dqn":
            full = row.get("batched_projected_full_s", row["batched"]["wall_s"])
            kind = "projected" if "batched_projected_full_s" in row else "measured"
            verdict = "met" if full <= TARGET_DQN_GRID_S else "NOT met"
            lines.append(
                f"36-run DQN grid at 200k user-steps, batched: {full / 60:.1f} min {kind} on "
                f"{row['cpu_count']} CPU(s) (target <= 20 min on 2 cores: {verdict})"
            )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> list[dict[str, Any]]:
    parser = argparse.ArgumentParser(
        prog="python -m experiments.bench_train --population", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--population", action="store_true", help="(selects this benchmark)")
    parser.add_argument("--agents", nargs="+", default=["dqn", "pqn"], choices=["dqn", "pqn"])
    parser.add_argument("--seeds", type=int, default=3, help="seeds per configuration (3: 36 runs)")
    parser.add_argument("--total-steps", type=int, default=SWEEP_STEPS,
                        help="user-steps per run (the sweep's 200000; less scales the protocol)")  # fmt: skip
    parser.add_argument("--workers", type=int, default=2, help="joblib's n_jobs")
    parser.add_argument("--batched-workers", type=int, default=2,
                        help="the batched launcher's n_jobs (populations at a time)")  # fmt: skip
    parser.add_argument("--out", type=Path, default=None,
                        help="sweep dirs, logs and bench.json (default: a temporary dir)")  # fmt: skip
    parser.add_argument("--nice", type=int, default=0, help="run the sweeps at this niceness")
    args = parser.parse_args(argv)
    if args.seeds < 1 or args.total_steps < 1 or args.workers < 1 or args.batched_workers < 1:
        parser.error("--seeds, --total-steps, --workers and --batched-workers must be >= 1")
    out_dir = args.out or Path(tempfile.mkdtemp(prefix="bench-population-"))
    out_dir.mkdir(parents=True, exist_ok=True)
    rows = bench_population(
        args.agents,
        seeds=args.seeds,
        total_steps=args.total_steps,
        workers=args.workers,
        batched_workers=args.batched_workers,
        out_dir=out_dir,
        nice=args.nice,
    )
    print(format_rows(rows), flush=True)
    (out_dir / "bench.json").write_text(json.dumps(rows, indent=2))
    print(f"saved {out_dir / 'bench.json'}", flush=True)
    return rows
