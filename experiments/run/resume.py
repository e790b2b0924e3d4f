"""Continuing a run (``resume=``): which run, which config, which checkpoint, what may change.

* ``resume=<path>`` must name a run to continue (:func:`resumable`): a mistyped path, an empty dir,
  a file, a sweep dir or a run without a checkpoint is an error that says what the path is —
  never a fresh run. ``resume=true`` in a dir without a run starts one (a sweep's jobs that never
  started run when the sweep is resumed).
* The run continues with its saved ``config.yaml`` (:func:`resolve`). ``protocol.total_steps`` may
  extend it, never below the step it is at (refused, the config left untouched); secrets (saved as
  ``***``, :mod:`experiments.run.secrets`) come from this command line; other overrides are
  ignored with a warning (the run's own overrides and groups, which a sweep's resume repeats, are
  not warned about).
* The newest intact checkpoint is restored (:func:`restore`): a damaged one is moved aside with a
  warning and the one before is tried.

Everything here raises :class:`~experiments.run.rundir.RunDirError` (never recorded in the run dir:
a refused resume leaves the run's record as it was).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf, open_dict

from agents.base import Agent
from experiments.run.checkpoint import CorruptCheckpoint, UnusableCheckpoint, load_kwargs
from experiments.run.protocol import LifelongProtocol
from experiments.run.rundir import (
    Checkpoint,
    NotARunDir,
    RunDir,
    RunDirError,
    RunDirInUse,
    natural_key,
    override_key,
)
from experiments.run.secrets import REDACTED, is_secret_key
from experiments.run.trust import check_saved_config

log = logging.getLogger("experiments.run")

RESUMABLE_OVERRIDES = ("protocol.total_steps",)
MAX_SCAN = 10_000  # entries of a dir looked at when telling what a non-run path is

__all__ = ["RESUMABLE_OVERRIDES", "resolve", "restore", "resumable"]


def resumable(path: str | Path) -> RunDir:
    """The run dir at ``path`` if it holds a run to continue (``resume=<path>``).

    Raises :class:`NotARunDir` saying what ``path`` is instead (missing, a file, an empty or
    foreign dir, a sweep dir, a run without a checkpoint): resuming never starts a fresh run.
    """
    path = Path(path)
    hint = (
        "give the dir of an earlier run (outputs/<date>/<time>, or a sweep's job dir "
        "multirun/<...>/<job>)"
    )
    if not path.exists():
        raise NotARunDir(f"resume={path}: no such directory; {hint}")
    if not path.is_dir():
        raise NotARunDir(f"resume={path} is a file, not a run directory; {hint}")
    if path.resolve() == Path(path.resolve().anchor):
        raise NotARunDir(f"resume={path} is the filesystem root, not a run directory; {hint}")
    if not RunDir.is_run_dir(path):
        jobs = _runs_below(path)
        if jobs:
            raise NotARunDir(
                f"resume={path} is a sweep dir ({len(jobs)} runs under it), not one run: "
                f"resume every job with `recsim-train -m <the sweep's overrides> "
                f"hydra.sweep.dir={path} resume=true`, or one with resume={jobs[0].path}"
            )
        try:
            empty = not any(path.iterdir())
        except OSError as exc:
            raise NotARunDir(f"resume={path}: cannot read it ({exc.strerror}); {hint}") from exc
        what = "an empty directory" if empty else "not a run directory"
        markers = f"{RunDir.CONFIG}, {RunDir.SUMMARY} or {RunDir.CHECKPOINTS}/"
        raise NotARunDir(f"resume={path} is {what} (no {markers}); {hint}")
    rd = RunDir(path)
    if not rd.config_path.exists():
        raise NotARunDir(f"resume={path}: the run has no {RunDir.CONFIG}, nothing to continue")
    if not rd.checkpoints():
        state = rd.state()
        why = f" ({state.status}: {state.error})" if state.error else f" ({state.status})"
        raise NotARunDir(
            f"resume={path}: the run has no checkpoint to continue from{why}; start it "
            f"again without resume= (hydra.run.dir={path} reuses the dir)"
        )
    return rd


def _runs_below(path: Path, depth: int = 2) -> list[RunDir]:
    """Run dirs at most ``depth`` levels under ``path`` (a sweep's jobs: ``<sweep>/<job>``); dirs
    that cannot be read are passed over (``resume=/`` must not walk the whole filesystem)."""
    found: list[RunDir] = []
    if depth <= 0:
        return found
    try:
        children = sorted(
            (c for c in path.iterdir() if c.is_dir() and not c.is_symlink()), key=natural_key
        )
    except OSError:
        return found
    for child in children[:MAX_SCAN]:  # a sweep dir holds jobs; a huge dir is no sweep
        try:
            if child.name in RunDir.NOT_RUNS:
                continue
            if RunDir.is_run_dir(child):
                found.append(RunDir(child))
            else:
                found.extend(_runs_below(child, depth - 1))
        except OSError:
            continue
    return found


def _resume_arg(cfg: DictConfig) -> bool | str:
    resume = cfg.get("resume", False)
    if isinstance(resume, str) and resume.lower() in ("true", "false"):
        return resume.lower() == "true"
    return resume


def resolve(
    cfg: DictConfig, rd: RunDir, overrides: Sequence[str]
) -> tuple[DictConfig, Checkpoint | None]:
    """Decide the config and the checkpoint of this run (see module doc)."""
    resume = _resume_arg(cfg)
    checkpoint = rd.latest_checkpoint()
    if not resume:
        if checkpoint is not None:
            raise RunDirInUse(
                f"{rd} already holds a run (checkpoint {checkpoint.path.name}); pass resume=true "
                "to continue it, or choose another output dir (hydra.run.dir=...)"
            )
        return cfg, None
    if isinstance(resume, str):
        if Path(resume).resolve() != rd.path.resolve():
            raise RunDirError(
                f"resume={resume} but this job writes to {rd}: run `recsim-train resume={resume}` "
                f"(the console script routes the output dir) or add hydra.run.dir={resume}"
            )
        resumable(rd.path)  # a path that holds no run: an error, never a fresh run
    saved = rd.load_config()
    if checkpoint is None or saved is None:
        log.warning("resume: nothing to resume in %s; starting a fresh run", rd)
        return cfg, None
    # the saved config is data: it names only code the project or this command line chose
    check_saved_config(saved, cfg, rd)
    if OmegaConf.select(saved, "env") is not None and "autoreset_mode" not in saved.env:
        with open_dict(saved):  # saved before the key existed (issue 20): those runs were same_step
            saved.env.autoreset_mode = "same_step"
    given = {override_key(o): o for o in overrides}
    record = rd.job()
    own = set(record.overrides) | {f"{g}={c}" for g, c in record.choices.items()}
    ignored = [
        o
        for k, o in given.items()
        if k != "resume"
        and k not in RESUMABLE_OVERRIDES
        and k != "trust_checkpoints"
        and not k.startswith("hydra")
        and not is_secret_key(k)
        and o
        not in own  # the run's own overrides and config groups (a sweep's resume repeats them)
    ]
    if ignored:
        log.warning(
            "resume: the run continues with its saved config; ignoring overrides %s", ignored
        )
    if "protocol.total_steps" in given:
        total = OmegaConf.select(cfg, "protocol.total_steps")
        if isinstance(total, int) and total < checkpoint.step:
            finished = "a finished run" if rd.state().status == "completed" else "a run"
            raise RunDirError(
                f"resume: protocol.total_steps={total} but the run in {rd} is already at step "
                f"{checkpoint.step}: {finished} can only be continued or extended "
                f"(protocol.total_steps >= {checkpoint.step}); its config.yaml is left as it "
                "was. To train a shorter run, start a new one in another dir"
            )
    for key in RESUMABLE_OVERRIDES:
        if key in given:
            OmegaConf.update(saved, key, OmegaConf.select(cfg, key), merge=False)
    _restore_secrets(saved, cfg, given)
    saved.resume = True
    # whether to load cloudpickled checkpoints is this command line's decision, never the run's
    saved.trust_checkpoints = bool(cfg.get("trust_checkpoints", False))
    return saved, checkpoint


def _restore_secrets(saved: DictConfig, cfg: DictConfig, given: Mapping[str, str]) -> None:
    """Secrets are saved as ``***``: take them from this command line (or warn they are gone)."""
    plain = OmegaConf.to_container(saved, resolve=False)

    def walk(node: Any, prefix: str) -> None:
        if isinstance(node, Mapping):
            for k, v in node.items():
                key = f"{prefix}{k}"
                if v == REDACTED and is_secret_key(str(k)):
                    if key in given:
                        OmegaConf.update(saved, key, OmegaConf.select(cfg, key), merge=False)
                    else:
                        log.warning(
                            "resume: %s was not saved (a secret); pass it again (%s=...) if the "
                            "run needs it",
                            key,
                            key,
                        )
                else:
                    walk(v, f"{key}.")

    walk(plain, "")


def restore(
    protocol: LifelongProtocol,
    rd: RunDir,
    latest: Checkpoint,
    agent_cls: type[Agent],
    *,
    template: Agent | None = None,
    trust_checkpoints: bool = False,
) -> Agent:
    """Restore from ``latest``, or the newest usable checkpoint before it (a warning says why).

    A damaged checkpoint (its files are not as written) is moved aside
    (``checkpoints/damaged-step_...``) so that it is neither loaded nor counted by
    ``keep_checkpoints`` again; nothing is deleted. An intact checkpoint that does not fit (another
    run's, another ``num_envs``) is skipped and left where it is; one written by another agent
    than the config builds is an error (fix the config): it is never moved aside. ``template`` is
    the agent the config built (its inner agent's class for a frozen agent's checkpoint).
    """
    kwargs = load_kwargs(agent_cls, template, trust=trust_checkpoints)
    candidates = [c for c in reversed(rd.checkpoints()) if c.step <= latest.step]
    problems = []
    for ckpt in candidates:
        try:
            log.info("resuming from %s", ckpt.path)
            agent = protocol.restore(ckpt, agent_cls, **kwargs)
        except UnusableCheckpoint as exc:
            problems.append(str(exc))
            log.warning("checkpoint %s skipped (left as it is): %s", ckpt.path.name, exc)
            continue
        except CorruptCheckpoint as exc:
            problems.append(str(exc))
            if ckpt.legacy:  # not damaged: written by an earlier version (left as it is)
                continue
            aside = ckpt.path.with_name(f"damaged-{ckpt.path.name}")
            n = 1
            while aside.exists():  # damaged at the same step before
                n += 1
                aside = ckpt.path.with_name(f"damaged{n}-{ckpt.path.name}")
            log.warning("checkpoint damaged, moved aside to %s: %s", aside.name, exc)
            ckpt.path.rename(aside)
            continue
        except RunDirError:
            raise
        except Exception as exc:  # never a traceback that rewrites the run's record
            raise RunDirError(
                f"cannot resume {rd} from {ckpt.path.name}: {type(exc).__name__}: {exc}"
            ) from exc
        if problems:
            log.warning(
                "resumed from the older checkpoint %s (step %d) instead of step %d",
                ckpt.path.name,
                ckpt.step,
                latest.step,
            )
        return agent
    raise RunDirError(
        f"no intact checkpoint to resume in {rd}: "
        + "; ".join(problems)
        + ". (protocol.keep_checkpoints=2 or more keeps older checkpoints to fall back on.) "
        "Start the run again in another dir"
    )
