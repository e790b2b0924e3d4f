"""``recsim-calibrate``: fit the simulator to an interaction log, write an env config, and (with
``--validate``) the fidelity report on held-out time.

    recsim-calibrate movielens-100k                 # -> data_home()/calibrations/movielens-100k/
    recsim-calibrate movielens-100k --validate --out DIR
    recsim-calibrate log.csv --user uid --item iid --timestamp ts --click clicked --out DIR

The fit always uses each user's first 80 % of interactions by time (the training split of
:func:`recsim_env.data.temporal_split`): the held-out 20 % stays unseen, so ``--validate`` and the
sim-to-real study measure on data the calibration never saw (and the default output for
``movielens-100k`` is exactly what ``gymnasium.make("recsim_env/MovieLens-v0")`` loads).

Writes into ``--out``: the calibration (``calibration.npz`` + ``calibration.json``,
:meth:`Calibration.save`), ``env.yaml`` in the shape of ``conf/env/*.yaml`` (the calibrated id with
``kwargs.calibration`` = the absolute path of this directory; copy it to ``conf/env/`` to train on it
with ``recsim-train env=<name>``), and with ``--validate`` ``fidelity/`` (``fidelity.json``,
``report.md``, plots). Exit codes: 0 done; 1 the data could not be loaded or fitted (the message
says why); 2 a usage error (argparse).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

DATASETS = {"movielens-100k": "recsim_env/MovieLens-v0"}
GENERIC_ID = "recsim_env/Stationary-v0"  # any id takes calibration=<dir>; the drift is the fit's
TOPICS = ("factorised", "categories")


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="recsim-calibrate",
        description="Fit the simulator (catalogue, users, choice weights, sessions, drift) to an "
        "interaction log on each user's first 80 % of interactions by time; write the "
        "calibration, an env config and, with --validate, the fidelity report on the last 20 %.",
    )
    p.add_argument(
        "source",
        metavar="SOURCE",
        help=f"a data set name ({', '.join(DATASETS)}) or a path to a log (CSV / Parquet / TSV)",
    )
    p.add_argument(
        "--out",
        type=Path,
        default=None,
        help="output directory (default: <data home>/calibrations/<name> for a data set, "
        "./calibrations/<file stem> for a log file)",
    )
    p.add_argument("--validate", action="store_true", help="also write the fidelity report")
    p.add_argument(
        "--num-topics",
        type=_positive_int,
        default=16,
        metavar="K",
        help="number of topics with --topics factorised (default 16)",
    )
    p.add_argument(
        "--topics",
        choices=TOPICS,
        default="factorised",
        help="item topics from a low-rank factorisation of the log, or from its item categories",
    )
    p.add_argument("--seed", type=_nonneg_int, default=0, help="seed of the fit and the report")
    v = p.add_argument_group("--validate: the simulated logs")
    v.add_argument(
        "--sim-users",
        type=_positive_int,
        default=None,
        metavar="N",
        help="concurrent simulated users (default: the test users, at most 128)",
    )
    v.add_argument(
        "--sim-steps",
        type=_positive_int,
        default=None,
        metavar="T",
        help="simulated steps (default: the fitted drift trajectory's length, in [200, 40000])",
    )
    v.add_argument(
        "--logging-policy",
        choices=("uniform", "popularity"),
        default=None,
        help="how the simulated envs pick what to show (default: uniform for a log of "
        "consumptions only, popularity-proportional for a log with impressions)",
    )
    g = p.add_argument_group("columns of a log given as a path")
    g.add_argument("--user", default="user", help="user id column (default: user)")
    g.add_argument("--item", default="item", help="item id column (default: item)")
    g.add_argument("--timestamp", default="timestamp", help="timestamp column (seconds)")
    g.add_argument("--rating", default=None, help="rating column, if any")
    g.add_argument("--click", default=None, help="click column (1 chosen / 0 shown), if any")
    g.add_argument("--items", default=None, help="item table (path), indexed by the item id")
    g.add_argument(
        "--categories",
        default="",
        help="comma-separated multi-hot category columns of --items (e.g. genres)",
    )
    g.add_argument("--sep", default=None, help="field separator of a CSV-like file")
    g.add_argument("--sort", action="store_true", help="sort rows by timestamp before checking")
    return p


def _int_at_least(lo: int) -> Callable[[str], int]:
    """An argparse ``type``: an integer ``>= lo``, else argparse's own usage error (exit 2)."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"invalid int value: {text!r}") from None
        if value < lo:
            raise argparse.ArgumentTypeError(f"{value}: at least {lo}")
        return value

    return parse


_positive_int, _nonneg_int = _int_at_least(1), _int_at_least(0)


def load_source(args: argparse.Namespace) -> Any:
    """The :class:`~recsim_env.data.InteractionLog` named by SOURCE (a data set or a path)."""
    from recsim_env.validation import fail

    if args.source in DATASETS:
        from recsim_env.data.movielens import load_movielens_100k

        return load_movielens_100k()
    path = Path(args.source)
    if not path.exists():
        fail(
            "SOURCE",
            args.source,
            f"a data set name ({', '.join(DATASETS)}) or the path of an existing log file",
        )
    from recsim_env.data.log import load_log

    cats = tuple(c for c in (s.strip() for s in args.categories.split(",")) if c)
    if cats and args.items is None:
        fail("--categories", args.categories, "category columns of an item table given by --items")
    kwargs: dict[str, Any] = {
        "user": args.user,
        "item": args.item,
        "timestamp": args.timestamp,
        "rating": args.rating,
        "click": args.click,
        "sep": args.sep,
        "sort": args.sort,
        "name": path.stem,
    }
    if args.items is not None:
        kwargs.update(items=args.items, category_columns=cats)
    return load_log(path, **kwargs)


def default_out(source: str) -> Path:
    """``data_home()/calibrations/<name>`` for a data set (where its registered id looks), else
    ``./calibrations/<file stem>``."""
    if source in DATASETS:
        from recsim_env.data.fetch import data_home

        return data_home() / "calibrations" / source
    return Path("calibrations") / Path(source).stem


def env_yaml(source: str, calibration_dir: Path, num_envs: int = 16) -> str:
    """An env config in the shape of ``conf/env/*.yaml`` that makes the calibrated env."""
    env_id = DATASETS.get(source, GENERIC_ID)
    path = str(calibration_dir.resolve())
    return (
        f"# Calibrated by `recsim-calibrate {source}` on each user's first 80 % of interactions.\n"
        "# kwargs: any recsim_env.SimConfig field; the calibration's fitted parameters are the\n"
        "# defaults (an explicit kwarg overrides them, except num_items / num_topics).\n"
        f"id: {env_id}\n"
        f"num_envs: {num_envs} # users served in parallel\n"
        "kwargs:\n"
        f"  calibration: {_yaml_str(path)}\n"
        "  returning_users: true\n"
        "  horizon: lifetime\n"
    )


def _yaml_str(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Load, split, fit, save, write the env config and (``--validate``) the report."""
    from recsim_env.calibrate.fit import fit
    from recsim_env.data import temporal_split

    t0 = time.perf_counter()
    log = load_source(args)
    out = Path(args.out) if args.out is not None else default_out(args.source)
    train, _ = temporal_split(log)
    cal = fit(train, num_topics=args.num_topics, topics=args.topics, seed=args.seed)
    cal_dir = Path(cal.save(out))
    (out / "env.yaml").write_text(env_yaml(args.source, cal_dir))
    done: dict[str, Any] = {
        "calibration": str(cal_dir),
        "env_config": str(out / "env.yaml"),
        "fit_seconds": round(time.perf_counter() - t0, 2),
    }
    if args.validate:
        from recsim_env.calibrate.report import validate

        result = validate(
            log,
            cal_dir,
            out / "fidelity",
            seed=args.seed,
            num_sim_users=args.sim_users,
            sim_steps=args.sim_steps,
            policy=args.logging_policy,
        )
        done["report"] = str(out / "fidelity" / "report.md")
        done["targets"] = f"{result['targets_met']} / {result['targets_total']} met"
    return done


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        done = run(args)
    except (ValueError, RuntimeError, OSError) as exc:  # ConfigError / LogError / FetchError
        print(f"recsim-calibrate: error: {exc}", file=sys.stderr)
        return 1
    for key, value in done.items():
        print(f"{key}: {value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
