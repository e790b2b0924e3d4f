"""``recsim-train``: one lifelong run (or a Hydra multirun of them) from the config in ``conf/``.

    recsim-train agent=linucb env=abrupt seed=3 protocol.total_steps=50000
    recsim-train -m agent=dqn,sb3_dqn seed=0,1,2 hydra/launcher=joblib
    recsim-train resume=outputs/2025-01-01/12-00-00        # continue an interrupted run

Each run writes into its Hydra output dir (:class:`experiments.run.rundir.RunDir`): ``config.yaml``
(resolved), ``run.json``, ``metrics.csv`` (long format ``step,key,value``), ``summary.json`` (flat
metrics + ``status``), ``checkpoints/``, ``train.log`` and, if the run failed, ``error.txt``. What a
run does is :func:`experiments.run.job.run`; this module is the command line around it.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import hydra
from omegaconf import DictConfig

from experiments.run.config import CONF_DIR, ConfigError, explain_unknown_override
from experiments.run.isolation import isolate_this_job, run_in_child
from experiments.run.job import preload, run
from experiments.run.protocol import RunInterrupted
from experiments.run.resume import resumable
from experiments.run.secrets import hide_secret_overrides

__all__ = ["CONF_DIR", "main", "route_resume_argv", "run"]

# config groups that a resumed run composes as it was composed (not `sweep`/`local`: a sweep's
# grid would start a multirun, and machine-local settings belong to this machine)
RESUMED_GROUPS = ("env", "agent", "logger", "protocol", "experiment")


@hydra.main(version_base="1.3", config_path=str(CONF_DIR), config_name="config")
def _hydra_main(cfg: DictConfig) -> float:
    if isolate_this_job():  # a job killed by a signal must not take the sweep down with it
        from hydra.core.hydra_config import HydraConfig

        preload(cfg)  # imported once here, not again in every forked job
        return run_in_child(lambda: run(cfg), HydraConfig.get().runtime.output_dir)
    try:
        return run(cfg)
    except RunInterrupted:
        sys.exit(130)  # SystemExit passes through Hydra: the shell sees "interrupted", not a crash
    except ConfigError as exc:  # a clear message, not a traceback (error.txt has the traceback)
        print(f"recsim-train: {exc}", file=sys.stderr)
        sys.exit(2)


def _given_groups(args: list[str]) -> set[str]:
    keys = {a.split("=", 1)[0] for a in args if "=" in a and not a.startswith("-")}
    return {k.removeprefix("override ").lstrip("+~") for k in keys}


def route_resume_argv(argv: list[str]) -> list[str]:
    """``resume=<dir>`` → also ``hydra.run.dir=<dir>`` so that the run continues in its own dir.

    Hydra picks the output dir before the task function runs; without this, a resumed run would get
    a fresh timestamped dir. Also keeps Hydra from overwriting the run's ``.hydra/`` files, and
    composes the run's own config groups (``agent=linucb`` for a LinUCB run), so that overrides
    on the command line are checked against the run's agent rather than the default one.

    Raises :class:`~experiments.run.rundir.NotARunDir` if ``<dir>`` holds no run to continue.
    """
    args = list(argv)
    resume = [a.split("=", 1)[1] for a in args[1:] if a.startswith("resume=")]
    given = _given_groups(args[1:])
    if (
        not resume
        or resume[-1].lower() in ("true", "false")
        or "-m" in args
        or "--multirun" in args
    ):
        return args
    rd = resumable(resume[-1])
    choices = rd.job().choices
    routed = [
        f"{group}={choices[group]}"
        for group in RESUMED_GROUPS
        if group in choices and group not in given
    ]
    if "experiment" in choices and "hydra.mode" not in given:
        routed.append("hydra.mode=RUN")  # an experiment's multirun grid: this is one of its jobs
    args[1:1] = routed
    if "hydra.run.dir" not in given:
        args.append(f"hydra.run.dir={Path(resume[-1])}")
    if "hydra.output_subdir" not in given:
        args.append("hydra.output_subdir=null")
    return args


def main() -> None:
    """Console script ``recsim-train``."""
    # secrets first: nothing after this (Hydra's files, W&B's record of argv) sees their values
    sys.argv = hide_secret_overrides(sys.argv)
    try:
        sys.argv = route_resume_argv(sys.argv)
    except ConfigError as exc:
        print(f"recsim-train: {exc}", file=sys.stderr)
        sys.exit(2)
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    flags = {a for a in sys.argv[1:] if a.startswith("-")}
    overrides = [a for a in sys.argv[1:] if not a.startswith("-")]
    # only for the plain command line (flags like --config-name change what would be composed)
    message = (
        explain_unknown_override(CONF_DIR, "config", overrides)
        if flags <= {"-m", "--multirun"}
        else None
    )
    if message is not None:
        print(f"recsim-train: {message}", file=sys.stderr)
        sys.exit(2)
    _hydra_main()


if __name__ == "__main__":
    main()
