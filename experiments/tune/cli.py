"""``recsim-tune``: Bayesian hyperparameter search over ``recsim-train`` runs, with Optuna.

    recsim-tune --space dqn --n-trials 40 env=abrupt protocol.total_steps=100000
    recsim-tune --space dqn --study-name dqn-abrupt --storage tune/dqn.journal --n-trials 20 &
    recsim-tune --space dqn --study-name dqn-abrupt --storage tune/dqn.journal --n-trials 20 &
    recsim-tune --space linucb --storage sqlite:///tune.db --metric online/regret

Each trial is one ``recsim-train`` run, composed with Hydra's compose API from the same ``conf/``:
the search space's fixed ``overrides``, then the command line's, then the trial's sampled values
(``agent.lr=0.00031``). It runs in process, in ``<tune dir>/trial_<number>`` with the usual outputs
(``config.yaml``, ``metrics.csv``, ``summary.json``, checkpoints, ``train.log``, and ``run.json``
with the overrides and group choices, so that ``recsim-compare <tune dir>`` reads the trials like a
sweep). The trial's
override list is stored in the study (user attribute ``overrides``, with the ready-made ``command``):
``recsim-train <overrides>`` reproduces it exactly.

Search spaces are YAML files in ``experiments/tune/spaces/`` (``--space dqn``) or anywhere (``--space my.yaml``)::

    overrides: [agent=dqn]                  # fixed overrides that come with the space
    metric: online/reward                   # optional: the summary.json key to optimise
    params:
      agent.lr: {type: float, low: 1.0e-5, high: 1.0e-2, log: true}
      agent.n_step: {type: int, low: 1, high: 5}           # also: step, log
      agent.dueling: {type: categorical, choices: [true, false]}

A key fixed on the command line (``agent.gamma=0.9``) is taken out of the search.

Sampling: TPE with a seed; each trial's random state is derived from (seed, trial number), so a
study is reproducible and parallel workers with the same seed do not propose the same points.
Pruning: the runner calls back after every periodic evaluation (``protocol.eval_every``); the trial
reports the metric so far (``trial.report``) and stops when the median rule says so
(``MedianPruner``: worse than the median of earlier trials at the same step). A pruned trial's
``summary.json`` says ``status: pruned``. A failing trial (any exception) is recorded as FAIL with
its error and the study goes on.

Storage: ``--storage`` is a journal file (``optuna.storages.JournalStorage``; processes on one
machine, or on several over a shared file system, append to it) or an RDB URL (``sqlite:///...``,
``postgresql://...``). Several ``recsim-tune`` processes with the same ``--study-name`` and
``--storage`` share one study (each runs ``--n-trials`` trials); a study remembers its metric and
fixed overrides and refuses to mix in trials of another setup.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import NoReturn

from experiments.run.config import ConfigError
from experiments.run.protocol import RunInterrupted
from experiments.run.rundir import write_json_atomic
from experiments.tune.space import SearchSpace
from experiments.tune.study import best_record, report, tune
from recsim_env.validation import check_int, check_real, fail

BEST_FILE = "best.json"
JOURNAL_FILE = "optuna.journal"


# ---------------------------------------------------------------------------------------- console
def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="recsim-tune",
        description="Bayesian hyperparameter search (Optuna TPE + median pruning) over "
        "recsim-train runs. Positional arguments are recsim-train overrides fixed for every trial.",
    )
    parser.add_argument("overrides", nargs="*", help="fixed overrides, e.g. env=abrupt seed=1")
    parser.add_argument(
        "--space",
        default="dqn",
        help="a search space in experiments/tune/spaces/ (name) or a YAML file (default: dqn)",
    )
    parser.add_argument("--study-name", default=None, help="default: the space's name")
    parser.add_argument(
        "--storage",
        default=None,
        help="journal file or RDB URL (sqlite:///tune.db); default: <tune-dir>/optuna.journal",
    )
    parser.add_argument(
        "--n-trials", type=int, default=20, help="trials run by this process (default: 20)"
    )
    parser.add_argument("--timeout", type=float, default=None, help="stop after this many seconds")
    parser.add_argument("--metric", default=None, help="summary.json key; default: the space's")
    parser.add_argument(
        "--direction", choices=("maximize", "minimize"), default=None, help="default: from metric"
    )
    parser.add_argument("--seed", type=int, default=0, help="the sampler's seed (default: 0)")
    parser.add_argument("--tune-dir", default=None, help="default: tune/<study name>")
    parser.add_argument(
        "--n-startup-trials",
        type=int,
        default=10,
        help="random trials before TPE models (default: 10)",
    )
    parser.add_argument("--no-prune", action="store_true", help="never stop a trial early")
    parser.add_argument(
        "--prune-startup-trials",
        type=int,
        default=5,
        help="no pruning until this many trials have completed (default: 5)",
    )
    parser.add_argument(
        "--prune-warmup-steps",
        type=int,
        default=0,
        help="no pruning before this many user-steps of a trial (default: 0)",
    )
    return parser


MAX_SEED = 2**32 - 1  # Optuna's TPE sampler seeds numpy with it


def check_args(args: argparse.Namespace) -> argparse.Namespace:
    """Every option's value checked with the project's checkers (a :class:`ConfigError` naming
    the option, the value and what is allowed); returns ``args`` with normalised values."""
    args.n_trials = check_int("--n-trials", args.n_trials, 1)
    if args.timeout is not None:
        args.timeout = check_real("--timeout", args.timeout, 0.0, lo_open=True)
    args.seed = check_int("--seed", args.seed, 0, MAX_SEED)
    args.n_startup_trials = check_int("--n-startup-trials", args.n_startup_trials, 0)
    args.prune_startup_trials = check_int("--prune-startup-trials", args.prune_startup_trials, 0)
    args.prune_warmup_steps = check_int("--prune-warmup-steps", args.prune_warmup_steps, 0)
    for option in ("space", "study_name", "storage", "tune_dir", "metric"):
        value = getattr(args, option)
        if value is not None and (not value.strip() or "\x00" in value):
            fail(f"--{option.replace('_', '-')}", value, "a non-empty text without NUL bytes")
    return args


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:  # argparse's own errors: exit 2, no traceback
        self.print_usage(sys.stderr)
        raise ConfigError(f"{message} (see recsim-tune --help)")


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """The command line parsed and checked (:func:`check_args`); raises :class:`ConfigError`."""
    return check_args(build_parser().parse_args(argv))


def _load_space(space: str) -> SearchSpace:
    try:
        return SearchSpace.load(space)
    except ConfigError:
        raise
    except Exception as exc:  # an unreadable file, YAML that does not parse, a bad path
        raise ConfigError(
            f"invalid --space={space!r} (allowed: a name in conf/tune/ or a readable search-space "
            f"YAML file): {type(exc).__name__}: {exc}"
        ) from exc


def main(argv: Sequence[str] | None = None) -> int:
    """Console script ``recsim-tune`` (returns the exit status)."""
    try:
        args = parse_args(argv)
    except ConfigError as exc:
        print(f"recsim-tune: {exc}", file=sys.stderr)
        return 2
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO, format="[%(asctime)s][%(name)s] %(message)s")
    try:
        space = _load_space(args.space)
        study_name = args.study_name or Path(args.space).stem
        tune_dir = Path(args.tune_dir or Path("tune") / study_name)
        storage = args.storage or str(tune_dir / JOURNAL_FILE)
        study = tune(
            space,
            args.overrides,
            study_name=study_name,
            storage=storage,
            n_trials=args.n_trials,
            tune_dir=tune_dir,
            metric=args.metric,
            direction=args.direction,
            seed=args.seed,
            n_startup_trials=args.n_startup_trials,
            prune=not args.no_prune,
            prune_startup_trials=args.prune_startup_trials,
            prune_warmup_steps=args.prune_warmup_steps,
            timeout=args.timeout,
        )
    except ConfigError as exc:
        print(f"recsim-tune: {exc}", file=sys.stderr)
        return 2
    except (RunInterrupted, KeyboardInterrupt) as exc:
        print(f"recsim-tune: interrupted ({exc}); run the same command to go on", file=sys.stderr)
        return 130
    print(report(study), flush=True)
    best = best_record(study)
    if best is None:
        return 1
    write_json_atomic(tune_dir / BEST_FILE, best)
    return 0


if __name__ == "__main__":
    sys.exit(main())
