"""``recsim-compare``: compare agents (or swept hyperparameters) over seeds, honestly.

    recsim-compare multirun/baselines/2025-01-01_12-00-00 --out reports/baselines
    recsim-compare multirun/gamma_eps_lr/... --by agent.gamma,agent.lr --out reports/sweep
    recsim-compare outputs/a outputs/b --compare dqn linucb --metrics online/reward,eval/return
    recsim-compare --wandb multirun/x --out reports/x        # read the offline W&B runs instead
    recsim-compare --wandb-project me/recsim-env --wandb-group baselines-... --out reports/x

Inputs are run dirs written by ``recsim-train`` (read through ``RunDir``: ``summary.json`` — the
source of truth for final metrics —, ``metrics.csv`` for curves, ``config.yaml`` and ``run.json``
for the config-group choices and overrides) or sweep dirs holding them; optionally offline W&B
runs (``--wandb``) and, with an API key, a W&B project (``--wandb-project``).

Output (``--out``; default: ``report/`` beside the first input): ``report.md``, ``results.json``
(every number in the report), ``runs.csv`` and PNGs: learning curves (online reward, cumulative
regret, eval return) with 95 % CI bands and drift events marked, final metrics with CIs, and a
heat map when ``--by`` names two or more keys. The parts: :mod:`.load`, :mod:`.aggregate`,
:mod:`.plots`, :mod:`.report`.

Statistics are over seeds of *completed* runs: mean, IQM (25 % trimmed mean) and 95 % percentile
bootstrap CIs (stratified by ``--tasks`` when given), and the probability of improvement between
two groups (``--compare A B``); see :mod:`experiments.analysis.stats`. Runs that failed, were
interrupted, are still running, lack a ``summary.json``, or were expected by the sweep but never
started are listed as such in the report, never silently dropped.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from experiments.analysis.compare.aggregate import Settings, _nan_to_none, analyse
from experiments.analysis.compare.load import discover_runs
from experiments.analysis.compare.plots import plot_all
from experiments.analysis.compare.report import write_outputs
from experiments.analysis.schema import COMPARE_CURVES

REPORT_DIR = "report"


def default_out_dir(inputs: Sequence[str | Path]) -> Path | None:
    """``report/`` beside the first input (``sweeps/a`` → ``sweeps/report``)."""
    if not inputs:
        return None
    first = Path(inputs[0])
    return first.resolve().parent / REPORT_DIR


def compare_runs(
    paths: Sequence[str | Path],
    out_dir: str | Path,
    *,
    by: str | Sequence[str] = "agent",
    metrics: str | Sequence[str] | None = None,
    compare: Sequence[str] | Sequence[Sequence[str]] | None = None,
    curves: str | Sequence[str] = COMPARE_CURVES,
    tasks: str | None = None,
    wandb_paths: Sequence[str | Path] = (),
    wandb_project: str | None = None,
    wandb_group: str | None = None,
    reps: int = 10_000,
    seed: int = 0,
    confidence: float = 0.95,
    heatmap_metric: str | None = None,
    plots: bool = True,
) -> dict[str, Any]:
    """Compare the runs under ``paths``; write the report into ``out_dir``; return its numbers.

    ``by``: grouping keys (``"agent"``, ``"agent.gamma,agent.lr"``): a config-group choice or a
    dotted config path. ``compare``: a pair ``(A, B)`` of group labels (or a list of pairs) for the
    probability of improvement. ``tasks``: a key whose values are tasks (strata) of the bootstrap,
    e.g. ``env``. The returned dict is what ``results.json`` holds (NaN as ``None``).
    """
    by_keys = [k.strip() for k in (by.split(",") if isinstance(by, str) else by) if k.strip()]
    if not by_keys:
        raise ValueError("by: give at least one grouping key, e.g. 'agent'")
    if isinstance(metrics, str):
        metrics = [m.strip() for m in metrics.split(",") if m.strip()]
    if isinstance(curves, str):
        curves = [c.strip() for c in curves.split(",") if c.strip()]
    pairs: list[tuple[str, str]] = []
    if compare:
        if isinstance(compare[0], str):
            compare = [compare]  # type: ignore[list-item]
        for pair in compare:  # type: ignore[union-attr]
            if len(pair) != 2:
                raise ValueError(f"compare: expected pairs (A, B), got {pair!r}")
            pairs.append((str(pair[0]), str(pair[1])))
    settings = Settings(
        by=by_keys,
        metrics=list(metrics) if metrics else None,
        compare=pairs,
        curves=list(curves),
        tasks=tasks,
        reps=int(reps),
        seed=int(seed),
        confidence=float(confidence),
        heatmap_metric=heatmap_metric,
    )
    runs = discover_runs(
        paths, wandb_paths=wandb_paths, wandb_project=wandb_project, wandb_group=wandb_group
    )
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    inputs = [str(p) for p in (*paths, *wandb_paths)] + ([wandb_project] if wandb_project else [])
    results = _nan_to_none(analyse(runs, settings, inputs))  # JSON-ready: "not measured" is None
    if plots:
        results["figures"] = plot_all(runs, results, settings, out_dir)
    else:
        results["figures"] = {}
    write_outputs(runs, results, settings, out_dir)
    return results


# ---------------------------------------------------------------------------------------- console
def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="recsim-compare",
        description="Compare recsim-train runs over seeds: tables (mean, IQM, 95 % bootstrap CIs), "
        "probability of improvement, learning curves, heat maps (Markdown + PNG + JSON).",
    )
    p.add_argument("paths", nargs="*", help="run dirs or sweep (multirun) dirs")
    p.add_argument(
        "--out",
        default=None,
        help="output dir for report.md, results.json, runs.csv, PNGs "
        f"(default: {REPORT_DIR}/ beside the first input)",
    )
    p.add_argument(
        "--by",
        default="agent",
        help="grouping keys, comma-separated (default: agent), e.g. agent.gamma,agent.lr",
    )
    p.add_argument(
        "--metrics",
        default=None,
        help="summary metrics, comma-separated (default: the main schema keys present)",
    )
    p.add_argument(
        "--compare",
        nargs=2,
        action="append",
        metavar=("A", "B"),
        help="probability that group A beats group B (repeatable)",
    )
    p.add_argument(
        "--curves",
        default=",".join(COMPARE_CURVES),
        help="metrics.csv keys to plot as learning curves",
    )
    p.add_argument(
        "--tasks", default=None, help="a key whose values are tasks (bootstrap strata), e.g. env"
    )
    p.add_argument(
        "--heatmap-metric", default=None, help="metric of the heat map (default: the first metric)"
    )
    p.add_argument(
        "--wandb",
        action="append",
        default=[],
        metavar="DIR",
        help="offline W&B runs under DIR (repeatable)",
    )
    p.add_argument(
        "--wandb-project",
        default=None,
        metavar="ENTITY/PROJECT",
        help="online W&B project (needs an API key)",
    )
    p.add_argument("--wandb-group", default=None, help="only this W&B group of --wandb-project")
    p.add_argument("--reps", type=int, default=10_000, help="bootstrap resamples (default 10000)")
    p.add_argument("--seed", type=int, default=0, help="bootstrap seed (default 0)")
    p.add_argument("--confidence", type=float, default=0.95)
    p.add_argument("--no-plots", action="store_true")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Console script ``recsim-compare``. Exit 0: report written; 1: no completed run; 2: bad input."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    if not args.paths and not args.wandb and not args.wandb_project:
        print(
            "recsim-compare: give run/sweep dirs, --wandb DIR or --wandb-project", file=sys.stderr
        )
        return 2
    out = Path(args.out) if args.out else default_out_dir([*args.paths, *args.wandb])
    if out is None:
        print("recsim-compare: --out is needed with --wandb-project alone", file=sys.stderr)
        return 2
    try:
        results = compare_runs(
            args.paths,
            out,
            by=args.by,
            metrics=args.metrics,
            compare=args.compare,
            curves=args.curves,
            tasks=args.tasks,
            wandb_paths=args.wandb,
            wandb_project=args.wandb_project,
            wandb_group=args.wandb_group,
            reps=args.reps,
            seed=args.seed,
            confidence=args.confidence,
            heatmap_metric=args.heatmap_metric,
            plots=not args.no_plots,
        )
    except (ValueError, RuntimeError, FileNotFoundError) as exc:
        print(f"recsim-compare: {exc}", file=sys.stderr)
        return 2
    counts = ", ".join(f"{n} {s}" for s, n in results["counts"].items())
    print(f"{len(results['group_order'])} group(s) from {counts}; report: {out / 'report.md'}")
    for r in results["not_completed"]:
        print(f"  [{r['status']}] {r['path']} {' '.join(r['overrides'])}: {r['error']}")
    return 0 if results["group_order"] else 1


if __name__ == "__main__":
    sys.exit(main())
