"""Population training vs one separate run, side by side in one process.

K members of ``sweep=gamma_eps_lr`` (γ × exploration_fraction × lr, our DQN or PQN, seeds
``0, 1, ...`` once the 12 grid points are used up) on LongTerm-v0 at B = 16, each a full run
through :func:`experiments.run.population.run_population` into its own run dir; then (or first:
``--order``) one separate run of the first member's config through
:func:`experiments.run.job.run`. Reported: user-steps per second of wall-clock time, all members
together, and per second of this process's CPU time (on a shared machine the wall-clock ratio
depends on what else runs; the CPU ratio is the cost). Evaluation is off (``eval_every=0``, no
final evaluation) so that the figures are training throughput.

    python -m experiments.bench.population --agent dqn --members 12 --steps 20000
    python -m experiments.bench.population --agent pqn --threads 2
"""

from __future__ import annotations

import argparse
import itertools
import json
import tempfile
import time
from pathlib import Path
from typing import Any

GRID = list(itertools.product((0.0, 0.9, 0.99), (0.1, 0.5), (1e-4, 1e-3)))


def member_config(agent: str, index: int, steps: int) -> Any:
    """The composed config of grid point ``index % 12`` with seed ``index // 12``."""
    from hydra import compose, initialize_config_dir

    from experiments.run.config import CONF_DIR

    gamma, fraction, lr = GRID[index % len(GRID)]
    overrides = [
        "sweep=gamma_eps_lr", "hydra.sweeper.params={}", f"agent={agent}",
        f"agent.gamma={gamma}", f"agent.exploration_fraction={fraction}", f"agent.lr={lr}",
        f"seed={index // len(GRID)}", f"protocol.total_steps={steps}", "protocol.eval_every=0",
        "protocol.final_eval=false", "progress=false",
    ]  # fmt: skip
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return compose("config", overrides=overrides)


def measure(agent: str, members: int, steps: int, order: str, threads: int | None) -> dict:
    from experiments.run.job import JobInfo, run
    from experiments.run.population import PopulationJob, run_population

    root = Path(tempfile.mkdtemp(prefix="bench_population_"))
    out: dict[str, Any] = {"agent": agent, "members": members, "steps": steps, "threads": threads}
    for what in order:
        wall, cpu = time.perf_counter(), time.process_time()
        if what == "s":
            run(member_config(agent, 0, steps), run_dir=root / "separate", multirun=True)
            done = steps
        else:
            jobs = [
                PopulationJob(
                    member_config(agent, i, steps),
                    JobInfo(output_dir=root / f"m{i}", multirun=True),
                )
                for i in range(members)
            ]
            results = run_population(jobs, threads=threads)
            failed = [r for r in results if not isinstance(r, float) or r != r]
            if failed:
                raise RuntimeError(f"population members failed: {failed} (run dirs in {root})")
            done = members * steps
        name = "separate" if what == "s" else "population"
        out[f"{name}_sps"] = done / (time.perf_counter() - wall)
        out[f"{name}_cpu_sps"] = done / (time.process_time() - cpu)
    if "separate_sps" in out and "population_sps" in out:
        out["ratio"] = out["population_sps"] / out["separate_sps"]
        out["cpu_ratio"] = out["population_cpu_sps"] / out["separate_cpu_sps"]
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m experiments.bench.population", description=__doc__
    )
    parser.add_argument("--agent", choices=("dqn", "pqn"), default="dqn")
    parser.add_argument("--members", type=int, default=12)
    parser.add_argument("--steps", type=int, default=20_000, help="user-steps per run")
    parser.add_argument("--order", default="sp", help="s: the separate run, p: the population")
    parser.add_argument("--threads", type=int, default=None, help="torch threads of the population")
    args = parser.parse_args(argv)
    result = measure(args.agent, args.members, args.steps, args.order, args.threads)
    print(json.dumps(result))
    if "ratio" in result:
        print(
            f"{args.agent} B=16 LongTerm-v0, {args.steps} user-steps per run: separate "
            f"{result['separate_sps']:.0f} user-steps/s, population of {args.members} "
            f"{result['population_sps']:.0f} in total ({result['ratio']:.2f}x wall-clock, "
            f"{result['cpu_ratio']:.2f}x per CPU second)"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
