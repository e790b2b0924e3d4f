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

Output (``--out``; default: ``report/`` inside the first input, so each sweep keeps its own): ``report.md``, ``results.json``
(every number in the report), ``runs.csv`` and PNGs: learning curves (online reward, cumulative
regret, eval return) with 95 % CI bands and drift events marked, final metrics with CIs, and a
heat map when ``--by`` names two or more keys. Runs of different agents (or envs) are never
pooled as if they were seeds: when ``--by`` leaves ``agent`` / ``env`` out and the runs differ in
them, they are added to the group key (``--pool`` mixes them on purpose). The parts: :mod:`.load`, :mod:`.aggregate`,
:mod:`.plots`, :mod:`.report`.

Statistics are over seeds of *completed* runs: mean, IQM (25 % trimmed mean) and 95 % percentile
bootstrap CIs (stratified by ``--tasks`` when given), and the probability of improvement between
two groups (``--compare A B``); see :mod:`experiments.analysis.stats`. Runs that failed, were
interrupted, are still running, lack a ``summary.json``, or were expected by the sweep but never
started are listed as such in the report, never silently dropped.
"""

from __future__ import annotations

import argparse
import difflib
import logging
import math
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from experiments.analysis.compare.aggregate import Settings, _nan_to_none, analyse, split_keys
from experiments.analysis.compare.load import Run, discover_runs
from experiments.analysis.compare.plots import plot_all
from experiments.analysis.compare.recovery_spread import spread_from_runs
from experiments.analysis.compare.report import write_outputs
from experiments.analysis.schema import COMPARE_CURVES, LABEL_KEYS
from recsim_env.validation import ConfigError, check_bool, check_int, check_real

REPORT_DIR = "report"


def default_out_dir(inputs: Sequence[str | Path]) -> Path | None:
    """``report/`` inside the first input (``multirun/gamma_eps_lr/<date>`` → ``…/<date>/report``).

    Inside, not beside: every sweep of one config shares its parent dir (``multirun/gamma_eps_lr``),
    so a report beside it would be overwritten by the next sweep's. ``RunDir.find`` never takes the
    report dir for a run (it holds none of a run's files).
    """
    if not inputs:
        return None
    first = Path(inputs[0]).resolve()
    if first.is_file():  # an offline W&B run file
        first = first.parent
    return first / REPORT_DIR


def _split_list(value: str | Sequence[str] | None) -> list[str]:
    if value is None:
        return []
    items = value.split(",") if isinstance(value, str) else [str(v) for v in value]
    return [k.strip() for k in items if k.strip()]


def _flat_keys(node: Any, prefix: str = "") -> list[str]:
    """Dotted paths of a config's scalar leaves (what ``Run.value_of`` can group by)."""
    if not isinstance(node, Mapping):
        return [prefix] if prefix and not isinstance(node, list) else []
    keys: list[str] = []
    for k, v in node.items():
        keys += _flat_keys(v, f"{prefix}.{k}" if prefix else str(k))
    return keys


def _unknown_key_error(option: str, key: str, known: Sequence[str]) -> ConfigError:
    """``invalid --by='agent.gama' (allowed: …)``, with the closest names first."""
    close = difflib.get_close_matches(key, known, n=3, cutoff=0.6)
    shown = list(known)
    if len(shown) > 40:  # a whole config: list the section the key names, else the labels
        section = [k for k in shown if k.split(".")[0] == key.split(".")[0]]
        shown = section or [k for k in shown if "." not in k]
    hint = f"did you mean {', '.join(close)}? " if close else ""
    return ConfigError(
        f"invalid {option}={key!r} (no run has it; {hint}allowed: {', '.join(shown) or '(none)'})"
    )


def check_group_keys(option: str, keys: Sequence[str], runs: Sequence[Run]) -> None:
    """Every key of ``--by`` / ``--tasks`` must have a value in at least one run (else the
    report would be one group labelled ``None``, with no error)."""
    known_runs = [r for r in runs if r.config or r.choices]
    if not known_runs:
        return  # nothing to group: the report says there is no completed run
    for key in keys:
        if any(r.value_of(key) is not None for r in known_runs):
            continue
        known: set[str] = set(LABEL_KEYS)
        for r in known_runs:
            known.update(r.choices)
            known.update(o.partition("=")[0].lstrip("+~") for o in r.overrides)
            known.update(_flat_keys(r.config))
        raise _unknown_key_error(
            option, key, sorted(k for k in known if k and not k.startswith("hydra"))
        )


def compare_runs(
    paths: Sequence[str | Path],
    out_dir: str | Path,
    *,
    by: str | Sequence[str] = "agent",
    metrics: str | Sequence[str] | None = None,
    compare: Sequence[str] | Sequence[Sequence[str]] | None = None,
    curves: str | Sequence[str] | None = None,
    tasks: str | None = None,
    wandb_paths: Sequence[str | Path] = (),
    wandb_project: str | None = None,
    wandb_group: str | None = None,
    reps: int = 10_000,
    seed: int = 0,
    confidence: float = 0.95,
    heatmap_metric: str | None = None,
    plots: bool = True,
    pool: bool = False,
) -> dict[str, Any]:
    """Compare the runs under ``paths``; write the report into ``out_dir``; return its numbers.

    ``by``: grouping keys (``"agent"``, ``"agent.gamma,agent.lr"``): a config-group choice or a
    dotted config path. Runs of different agents or envs are never pooled: when ``by`` leaves
    them out and they differ, ``agent`` / ``env`` are appended to the group key
    (``pool=True`` pools them, as seeds of one group, on purpose). ``compare``: a pair ``(A, B)``
    of group labels (or a list of pairs) for the probability of improvement. ``tasks``: a key
    whose values are tasks (strata) of the bootstrap, e.g. ``env``. ``curves``: ``metrics.csv``
    keys to plot (``None``: the default curves, those the runs have). The returned dict is what
    ``results.json`` holds (NaN as ``None``). Bad options raise :class:`ConfigError` naming the
    option, the value and what is allowed.
    """
    by_keys = _split_list(by)
    if not by_keys:
        raise ConfigError(f"invalid --by={by!r} (allowed: one or more keys, e.g. agent)")
    # a percentile interval from fewer resamples is noise (with 1 it is a point that may miss the mean)
    reps = check_int("--reps", reps, 100, note="bootstrap resamples")
    seed = check_int("--seed", seed, 0, 2**32 - 1)
    confidence = check_real("--confidence", confidence, 0.0, 1.0, lo_open=True, hi_open=True)
    check_bool("--pool", pool)
    metrics = _split_list(metrics) or None
    user_curves = _split_list(curves)
    tasks = tasks.strip() if isinstance(tasks, str) and tasks.strip() else None
    pairs: list[tuple[str, str]] = []
    if compare:
        if isinstance(compare[0], str):
            compare = [compare]  # type: ignore[list-item]
        for pair in compare:  # type: ignore[union-attr]
            if isinstance(pair, str) or len(pair) != 2:
                raise ConfigError(
                    f"invalid --compare={pair!r} (allowed: a pair of group labels A B)"
                )
            pairs.append((str(pair[0]), str(pair[1])))
    runs = discover_runs(
        paths, wandb_paths=wandb_paths, wandb_project=wandb_project, wandb_group=wandb_group
    )
    check_group_keys("--by", by_keys, runs)
    if tasks:
        check_group_keys("--tasks", [tasks], runs)
    completed = [r for r in runs if r.completed]
    if heatmap_metric is not None:
        present = sorted({k for r in completed for k in r.summary if math.isfinite(r.metric(k))})
        if completed and heatmap_metric not in present:
            raise _unknown_key_error("--heatmap-metric", heatmap_metric, present)
    if user_curves and plots and completed:
        logged = sorted({k for r in completed for k in r.logged_keys()})
        for key in user_curves:
            if key not in logged:
                raise _unknown_key_error("--curves", key, logged)
    split = split_keys(runs, by_keys, pool)
    settings = Settings(
        by=by_keys + split,
        metrics=metrics,
        compare=pairs,
        curves=user_curves or list(COMPARE_CURVES),
        tasks=tasks,
        reps=reps,
        seed=seed,
        confidence=confidence,
        heatmap_metric=heatmap_metric,
        pool=pool,
        split=tuple(split),
    )
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    inputs = [str(p) for p in (*paths, *wandb_paths)] + ([wandb_project] if wandb_project else [])
    results = _nan_to_none(analyse(runs, settings, inputs))  # JSON-ready: "not measured" is None
    if plots:
        results["figures"] = plot_all(runs, results, settings, out_dir)
    else:
        results["figures"] = {}
    spread = spread_from_runs(runs, settings)  # recovery time between worlds (issue 23)
    if spread is not None:
        results["recovery_spread"] = spread
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
        f"(default: {REPORT_DIR}/ inside the first input: each sweep keeps its own report)",
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
        default=None,
        help="metrics.csv keys to plot as learning curves, comma-separated "
        f"(default: {','.join(COMPARE_CURVES)}, those the runs logged)",
    )
    p.add_argument(
        "--pool",
        action="store_true",
        help="pool runs of different agents or envs into one group when --by leaves them out "
        "(default: agent and env are added to the group key whenever they differ)",
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
            pool=args.pool,
        )
    except (ValueError, RuntimeError, FileNotFoundError) as exc:
        print(f"recsim-compare: {exc}", file=sys.stderr)
        return 2
    if results["split"]:
        print(
            f"groups also split by {', '.join(results['split'])}: runs of different "
            f"{' or '.join(results['split'])}s are never pooled as seeds (--pool to pool them)"
        )
    counts = ", ".join(f"{n} {s}" for s, n in results["counts"].items())
    print(f"{len(results['group_order'])} group(s) from {counts}; report: {out / 'report.md'}")
    for r in results["not_completed"]:
        print(f"  [{r['status']}] {r['path']} {' '.join(r['overrides'])}: {r['error']}")
    return 0 if results["group_order"] else 1


if __name__ == "__main__":
    sys.exit(main())
