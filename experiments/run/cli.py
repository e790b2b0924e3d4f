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
import re
import sys
from pathlib import Path
from typing import Any

import hydra
from omegaconf import DictConfig

from experiments.run.config import CONF_DIR, ConfigError, explain_unknown_override
from experiments.run.isolation import isolate_this_job, run_in_child
from experiments.run.job import preload, run
from experiments.run.protocol import RunInterrupted
from experiments.run.resume import resumable
from experiments.run.secrets import hide_secret_overrides, scrub

__all__ = ["CONF_DIR", "main", "route_resume_argv", "run"]

# config groups that a resumed run composes as it was composed (not `sweep`/`local`: a sweep's
# grid would start a multirun, and machine-local settings belong to this machine)
RESUMED_GROUPS = ("env", "agent", "logger", "protocol", "experiment")


@hydra.main(version_base="1.3", config_path=str(CONF_DIR), config_name="config")
def _hydra_main(cfg: DictConfig) -> float:
    if isolate_this_job():  # a job killed by a signal must not take the sweep down with it
        from hydra.core.hydra_config import HydraConfig

        preload(cfg)  # imported once here, not again in every forked job
        hc = HydraConfig.get()
        in_sweep_loop = str(hc.launcher.get("_target_", "")).endswith("BasicLauncher")
        return run_in_child(lambda: run(cfg), hc.runtime.output_dir, stop_on_signal=in_sweep_loop)
    try:
        return run(cfg)
    except RunInterrupted:
        sys.exit(130)  # SystemExit passes through Hydra: the shell sees "interrupted", not a crash
    except ConfigError as exc:  # a clear message, not a traceback (error.txt has the traceback)
        print(f"recsim-train: {scrub(str(exc))}", file=sys.stderr)
        sys.exit(2)


def _given_groups(args: list[str]) -> set[str]:
    keys = {a.split("=", 1)[0] for a in args if "=" in a and not a.startswith("-")}
    return {k.removeprefix("override ").lstrip("+~") for k in keys}


def hydra_quote(value: str) -> str:
    """``value`` as one quoted Hydra override value: a path with spaces, ``,`` (a sweep), ``=``,
    quotes, ``$`` (an interpolation) or non-ASCII characters reaches the config as it is."""
    escaped = re.sub(r"(\\*)'", lambda m: m.group(1) * 2 + "\\'", value)  # \ before ' doubled
    escaped = re.sub(r"(\\+)$", lambda m: m.group(1) * 2, escaped).replace("${", "\\${")
    return f"'{escaped}'"


def _unquote(value: str) -> str:
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
        return value[1:-1]
    return value


_OPTION = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*(/[A-Za-z0-9_][A-Za-z0-9_.-]*)*")


def _conf_option(group: str, choice: Any, run_dir: str) -> str:
    """A group choice read from a run's ``run.json``: it must name an option of this project's
    ``conf/<group>/`` (a run dir never chooses a config file outside it)."""
    if (
        not isinstance(choice, str)
        or not _OPTION.fullmatch(choice)
        or ".." in choice
        or not (CONF_DIR / group / f"{choice}.yaml").is_file()
    ):
        options = sorted(p.stem for p in (CONF_DIR / group).glob("*.yaml"))
        raise ConfigError(
            f"invalid {group}={choice!r} in {run_dir}/run.json (allowed: an option of conf/{group}/, "
            f"one of {options}); a run dir never chooses config files: pass {group}=<option> "
            "yourself to resume it"
        )
    return choice


def route_resume_argv(argv: list[str]) -> list[str]:
    """``resume=<dir>`` → also ``hydra.run.dir=<dir>`` so that the run continues in its own dir.

    Hydra picks the output dir before the task function runs; without this, a resumed run would get
    a fresh timestamped dir. Also keeps Hydra from overwriting the run's ``.hydra/`` files, and
    composes the run's own config groups (``agent=linucb`` for a LinUCB run), so that overrides
    on the command line are checked against the run's agent rather than the default one. The path
    is passed on quoted (:func:`hydra_quote`): quote ``resume=<path>`` for the shell only.

    Raises :class:`~experiments.run.rundir.NotARunDir` if ``<dir>`` holds no run to continue, and
    a :class:`ConfigError` if its ``run.json`` names a config option that ``conf/`` lacks.
    """
    args = list(argv)
    resume = [_unquote(a.split("=", 1)[1]) for a in args[1:] if a.startswith("resume=")]
    given = _given_groups(args[1:])
    if (
        not resume
        or resume[-1].lower() in ("true", "false")
        or "-m" in args
        or "--multirun" in args
    ):
        return args
    path = resume[-1]
    if not path:
        raise ConfigError("invalid resume='' (allowed: true, false or the path of a run directory)")
    if "${" in path:  # Hydra stores the output dir in its config, where "${" starts a reference
        raise ConfigError(
            f"invalid resume={path!r} (allowed: a path without '${{', which Hydra would read as an "
            "interpolation in its output dir): rename the dir, or resume through a symlink "
            "(ln -s <dir> run && recsim-train resume=run)"
        )
    rd = resumable(path)
    choices = rd.job().choices
    routed = [
        f"{group}={_conf_option(group, choices[group], path)}"
        for group in RESUMED_GROUPS
        if group in choices and group not in given
    ]
    if "experiment" in choices and "hydra.mode" not in given:
        routed.append("hydra.mode=RUN")  # an experiment's multirun grid: this is one of its jobs
    args = [a if not a.startswith("resume=") else f"resume={hydra_quote(path)}" for a in args]
    args[1:1] = routed
    if "hydra.run.dir" not in given:
        args.append(f"hydra.run.dir={hydra_quote(str(Path(path)))}")
    if "hydra.output_subdir" not in given:
        args.append("hydra.output_subdir=null")
    return args


def check_local_option(argv: list[str]) -> None:
    """``local=<name>``: Hydra skips a missing option of the optional ``local`` group silently;
    a name given on the command line must exist (unless ``hydra.searchpath`` adds config dirs)."""
    if any(a.lstrip("+").startswith("hydra.searchpath") for a in argv):
        return
    for arg in argv:
        key, sep, value = arg.partition("=")
        if (
            sep
            and key.lstrip("+~").removeprefix("override ") == "local"
            and not key.startswith("~")
        ):
            value = _unquote(value)
            if value in ("null", "default"):
                continue
            if not (CONF_DIR / "local" / f"{value}.yaml").is_file():
                options = sorted(p.stem for p in (CONF_DIR / "local").glob("*.yaml"))
                raise ConfigError(
                    f"invalid local={value!r} (allowed: an option of conf/local/, one of "
                    f"{options}; copy conf/local/example.yaml to conf/local/{value}.yaml)"
                )


def main() -> None:
    """Console script ``recsim-train``."""
    # secrets first: nothing after this (Hydra's files, W&B's record of argv) sees their values
    sys.argv = hide_secret_overrides(sys.argv)
    try:
        check_local_option(sys.argv[1:])
        sys.argv = route_resume_argv(sys.argv)
    except ConfigError as exc:
        print(f"recsim-train: {scrub(str(exc))}", file=sys.stderr)
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
        print(f"recsim-train: {scrub(message)}", file=sys.stderr)
        sys.exit(2)
    _hydra_main()


if __name__ == "__main__":
    main()
