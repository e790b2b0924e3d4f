"""The run directory: the one place that knows its file names, its status values and how it is
written, so that a crash at any moment leaves every file readable.

Every writer (the runner, the protocol's checkpoints, ``recsim-tune``) and every reader
(``recsim-compare``, the Hydra failure report, ``make run``) goes through :class:`RunDir`. A run
dir holds::

    config.yaml        the resolved config (what a resume continues with)
    run.json           the run's record: stable id, name, group, Hydra group choices, overrides
    metrics.csv        long format step,key,value (appended in whole lines)
    summary.json       flat metrics + status (running | completed | failed | interrupted | pruned)
    error.txt          the traceback of a failed run
    checkpoints/step_<012d>/   agent + state.npz (plain data, no pickle)
    train.log, stdout.txt, .hydra/, wandb/     written by Hydra / recsim-tune / W&B
    .lock              held (flock) by the process that writes the run

JSON files are written to a temporary file and renamed into place; a checkpoint is assembled in a
temporary directory and renamed whole. :meth:`RunDir.lock` makes a second writer fail fast instead
of interleaving two runs in one directory; a lock held by a process that died is released by the
kernel, so a killed run can always be resumed.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import traceback
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import IO, Any, Final

from experiments.run import lock as dir_lock
from experiments.run.files import (  # noqa: F401 — re-exported: the run dir's writers and readers
    DISK_FULL,
    open_lines,
    read_metrics_csv,
    to_jsonable,
    truncate_torn_line,
    write_json_atomic,
    write_text_atomic,
)
from experiments.run.overrides import clean_choices, override_key, same_job  # noqa: F401
from recsim_env.validation import ConfigError

log = logging.getLogger(__name__)

# Status values of summary.json (what a writer records) ...
RUNNING: Final = "running"
COMPLETED: Final = "completed"
FAILED: Final = "failed"
INTERRUPTED: Final = "interrupted"
PRUNED: Final = "pruned"  # stopped early by recsim-tune's pruner: not a failure
STATUSES = (RUNNING, COMPLETED, FAILED, INTERRUPTED, PRUNED)
# ... and what a reader may find besides
MISSING: Final = "missing"  # no record at all (never started, or only expected by a sweep)


class RunDirError(ConfigError):
    """The run dir cannot be used as asked (a user error: the message says what to do)."""


class RunDirInUse(RunDirError):
    """The output dir already holds a run and ``resume`` was not asked for."""


class RunDirLocked(RunDirError):
    """Another live process is writing this run dir."""


class NotARunDir(RunDirError):
    """``resume=<path>`` names something that holds no run to continue."""


@dataclass
class JobRecord:
    """``run.json``: who the run is. ``choices``/``overrides`` are what ``recsim-compare`` groups by
    and matches against a sweep's expected jobs; ``run_id`` stays the same across resumes."""

    run_id: str = ""
    name: str = ""
    group: str = ""
    choices: dict[str, str] = field(default_factory=dict)
    overrides: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        """``run.json`` is data from the run dir: each field must have its type."""
        for name in ("run_id", "name", "group"):
            if not isinstance(getattr(self, name), str):
                raise TypeError(f"run.json: {name} is not a string")
        if not isinstance(self.choices, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in self.choices.items()
        ):
            raise TypeError("run.json: choices is not a mapping of strings")
        if not isinstance(self.overrides, list) or not all(
            isinstance(o, str) for o in self.overrides
        ):
            raise TypeError("run.json: overrides is not a list of strings")


@dataclass(frozen=True)
class RunState:
    """What a reader makes of a run dir: its status and, if it did not complete, why."""

    status: str
    error: str | None = None
    summary: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Checkpoint:
    """One complete checkpoint directory and the names inside it."""

    path: Path

    @property
    def step(self) -> int:
        return int(self.path.name[len(RunDir.CHECKPOINT_PREFIX) :])

    @property
    def agent(self) -> Path:
        return self.path / "agent"

    @property
    def state(self) -> Path:
        """Everything but the agent, as one plain data tree (:mod:`recsim_env.state_io`)."""
        return self.path / "state.npz"

    @property
    def manifest(self) -> Path:
        """Size and SHA-256 of every other file: a damaged checkpoint is detected before loading."""
        return self.path / "manifest.json"

    @property
    def legacy(self) -> bool:
        """Written before checkpoints dropped pickle (``state.pkl``): not resumable any more."""
        return (self.path / "state.pkl").exists() and not self.state.exists()


class RunDir:
    """A run's output directory (see the module doc for its layout)."""

    CONFIG = "config.yaml"
    RECORD = "run.json"
    METRICS = "metrics.csv"
    SUMMARY = "summary.json"
    ERROR = "error.txt"
    CHECKPOINTS = "checkpoints"
    CHECKPOINT_PREFIX = "step_"
    LOG = "train.log"
    STDOUT = "stdout.txt"
    RECOVERY = "recovery.npz"  # event-aligned drift-recovery curves (experiments/run/recovery.py)
    LOCK = ".lock"
    HYDRA = ".hydra"
    LEGACY_RUN_ID = ".run_id"  # run dirs written before run.json
    MARKERS = (SUMMARY, METRICS, CONFIG, ERROR, RECORD)
    NOT_RUNS = frozenset({"wandb", CHECKPOINTS, HYDRA, "__pycache__"})  # never hold a run

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    def __repr__(self) -> str:
        return f"RunDir({str(self.path)!r})"

    def __str__(self) -> str:
        return str(self.path)

    # ------------------------------------------------------------------------------ paths
    @property
    def config_path(self) -> Path:
        return self.path / self.CONFIG

    @property
    def metrics_path(self) -> Path:
        return self.path / self.METRICS

    @property
    def summary_path(self) -> Path:
        return self.path / self.SUMMARY

    @property
    def error_path(self) -> Path:
        return self.path / self.ERROR

    @property
    def checkpoint_dir(self) -> Path:
        return self.path / self.CHECKPOINTS

    @property
    def log_path(self) -> Path:
        return self.path / self.LOG

    @property
    def stdout_path(self) -> Path:
        return self.path / self.STDOUT

    @property
    def recovery_path(self) -> Path:
        return self.path / self.RECOVERY

    # ------------------------------------------------------------------------------ discovery
    @classmethod
    def is_run_dir(cls, path: str | Path) -> bool:
        path = Path(path)
        return path.is_dir() and (
            any((path / m).exists() for m in cls.MARKERS) or (path / cls.HYDRA).is_dir()
        )

    @classmethod
    def find(cls, root: str | Path) -> list[RunDir]:
        """Run dirs at or under ``root`` (natural order: job ``10`` after job ``9``)."""
        root = Path(root)
        if cls.is_run_dir(root):
            return [cls(root)]
        found: list[RunDir] = []
        for child in sorted(root.iterdir(), key=natural_key):
            if child.is_dir() and child.name not in cls.NOT_RUNS and not child.is_symlink():
                found.extend(cls.find(child))
        return found

    # ------------------------------------------------------------------------------ lifecycle
    def create(self) -> RunDir:
        self.path.mkdir(parents=True, exist_ok=True)
        return self

    @contextlib.contextmanager
    def lock(self) -> Iterator[RunDir]:
        """Hold the run dir for this process (an OS lock, released when the process dies).

        A second writer raises :class:`RunDirLocked` naming the dir and the holder's pid. Nested
        ``lock()`` calls of one process (the Hydra callback that locks the dir before Hydra writes
        into it, then the runner) share the one lock.
        """
        acquired = self.acquire_lock()
        try:
            yield self
        finally:
            if acquired:
                self.release_lock()

    def acquire_lock(self) -> bool:
        """Take the run dir's lock; ``False`` if this process already holds it (nothing to do).

        Raises :class:`RunDirLocked` (naming the dir and the holder's pid) if another process
        does. A lock whose holder died is free: the kernel released it with the process.
        """
        try:
            return dir_lock.acquire(self.path, self.LOCK)
        except dir_lock.LockHeld as held:
            raise RunDirLocked(
                f"{self.path} is being written by another process (pid {held.holder}): wait for "
                "it to end (or stop it), or choose another output dir"
            ) from None

    def release_lock(self) -> None:
        """Release the lock this process holds (no-op if it holds none)."""
        dir_lock.release(self.path)

    def lock_holder(self) -> int | None:
        """The pid of the live process that holds the run dir (``None``: nobody writes it now).

        A run whose ``summary.json`` says ``running`` but that nobody holds was killed without a
        record (SIGKILL, out of memory, a lost node).
        """
        return dir_lock.holder(self.path, self.LOCK)

    def remove_stale_temporaries(self) -> None:
        """Half-written files of a killed earlier attempt (they were never renamed into place)."""
        for tmp in self.path.glob(".*.tmp"):
            tmp.unlink(missing_ok=True)
        if self.checkpoint_dir.is_dir():
            for tmp in self.checkpoint_dir.glob(".tmp-*"):
                shutil.rmtree(tmp, ignore_errors=True)

    # ------------------------------------------------------------------------------ config
    def save_config(self, cfg: Any) -> None:
        """The resolved config (an OmegaConf node), written atomically."""
        from omegaconf import OmegaConf

        write_text_atomic(self.config_path, OmegaConf.to_yaml(cfg, resolve=True))

    def load_config(self) -> Any:
        """The saved config as an OmegaConf node (``None`` if there is none)."""
        from omegaconf import OmegaConf

        return OmegaConf.load(self.config_path) if self.config_path.exists() else None

    def read_config(self) -> dict[str, Any]:
        """The saved config as plain data (Hydra's ``.hydra/config.yaml`` if ours is absent)."""
        for path in (self.config_path, self.path / self.HYDRA / "config.yaml"):
            if path.exists():
                return _read_yaml(path) or {}
        return {}

    # ------------------------------------------------------------------------------ record
    @property
    def run_id(self) -> str:
        """The run's id ("" before the runner recorded one); it stays the same across resumes."""
        return self.job().run_id

    @staticmethod
    def new_run_id() -> str:
        return uuid.uuid4().hex[:12]

    def job(self) -> JobRecord:
        """``run.json``; for run dirs without one, what Hydra's ``.hydra/`` files say."""
        path = self.path / self.RECORD
        if path.exists():
            try:
                data = json.loads(path.read_text())
                if not isinstance(data, dict):
                    raise TypeError("run.json is not an object")
                return JobRecord(**{k: data[k] for k in asdict(JobRecord()) if k in data})
            except (ValueError, TypeError) as exc:
                log.warning("unreadable %s: %s", path, exc)
        record = JobRecord()
        legacy_id = self.path / self.LEGACY_RUN_ID
        if legacy_id.exists():
            record.run_id = legacy_id.read_text().strip()
        hydra_dir = self.path / self.HYDRA
        if (hydra_dir / "hydra.yaml").exists():
            hydra_cfg = _read_yaml(hydra_dir / "hydra.yaml") or {}
            choices = ((hydra_cfg.get("hydra") or {}).get("runtime") or {}).get("choices") or {}
            record.choices = clean_choices(choices)
        if (hydra_dir / "overrides.yaml").exists():
            record.overrides = [str(o) for o in _read_yaml(hydra_dir / "overrides.yaml") or []]
        return record

    def write_job(self, record: JobRecord) -> None:
        write_json_atomic(self.path / self.RECORD, asdict(record))

    # ------------------------------------------------------------------------------ summary
    def write_summary(self, summary: Mapping[str, Any]) -> None:
        write_json_atomic(self.summary_path, summary)

    def read_summary(self) -> dict[str, Any] | None:
        """``summary.json`` (``None`` if absent); raises ``ValueError`` if it does not parse."""
        if not self.summary_path.exists():
            return None
        return json.loads(self.summary_path.read_text())

    def record_failure(self, exc: BaseException) -> None:
        """``status: failed`` with the error in ``summary.json`` (partial metrics kept), and the
        traceback in ``error.txt``.

        Never raises: it runs while another exception propagates, which must stay the one the
        caller sees. On a full disk each file is written in place if its temporary cannot be
        (see :func:`write_text_atomic`); what cannot be written at all is logged.
        """
        from experiments.run.secrets import scrub

        message = scrub(f"{type(exc).__name__}: {exc}")  # a message may echo a secret input
        try:
            self.create()
            try:
                summary = self.read_summary() or {}
            except ValueError:
                summary = {}
            summary.update(status=FAILED, error=message)
            text = json.dumps(to_jsonable(summary), indent=2, sort_keys=True) + "\n"
            write_text_atomic(self.summary_path, text, in_place_fallback=True)
        except OSError as write_error:
            log.error("cannot record the failure in %s: %s", self.summary_path, write_error)
        try:
            trace = scrub("".join(traceback.format_exception(exc)))
            write_text_atomic(self.error_path, trace, in_place_fallback=True)
        except OSError as write_error:
            log.error("cannot write %s: %s", self.error_path, write_error)

    def set_status(self, status: str, **fields: Any) -> dict[str, Any]:
        """Update the status (and ``fields``) of ``summary.json``, keeping its metrics."""
        if status not in STATUSES:
            raise ValueError(f"status={status!r}; allowed: {STATUSES}")
        try:
            summary = self.read_summary() or {}
        except ValueError:
            summary = {}
        if status != FAILED:
            summary.pop("error", None)
            self.clear_error()
        summary.update(fields, status=status)
        self.write_summary(summary)
        return summary

    def clear_error(self) -> None:
        self.error_path.unlink(missing_ok=True)

    def state(self) -> RunState:
        """The run's status as a reader sees it, with a reason when it did not complete."""
        summary: dict[str, Any] = {}
        error: str | None = None
        try:
            loaded = self.read_summary()
        except ValueError as exc:
            return RunState(FAILED, f"unreadable {self.SUMMARY}: {exc}")
        if loaded is not None:
            summary = loaded
            status = str(summary.get("status", COMPLETED))
        elif self.error_path.exists():
            status = FAILED
        else:
            return RunState(
                MISSING, f"no {self.SUMMARY} (not started, still starting, or killed)", {}
            )
        if summary.get("error"):
            error = str(summary["error"])
        elif status == FAILED and self.error_path.exists():
            lines = self.error_path.read_text(errors="replace").strip().splitlines()
            error = lines[-1] if lines else f"failed (empty {self.ERROR})"
        if status == RUNNING:
            if self.lock_holder() is None and (self.path / self.LOCK).exists():
                error = error or (
                    "killed: the process ended without a record (a signal such as SIGKILL, out "
                    "of memory, a lost node); resume it from its last checkpoint"
                )
            else:
                error = error or "incomplete: still running, or killed without a record (resume it)"
        elif status == INTERRUPTED:
            error = error or "interrupted (checkpointed; resume it with resume=true)"
        return RunState(status, error, summary)

    # ------------------------------------------------------------------------------ metrics
    def open_metrics(self, *, append: bool) -> IO[bytes]:
        """``metrics.csv`` unbuffered: every ``write`` is one system call of whole lines.

        Appending first drops a torn last line (a write cut short by a crash or a full disk), so
        every line of the file stays a whole row.
        """
        self.create()
        return open_lines(self.metrics_path, append=append)

    def read_metrics(self) -> list[tuple[int, str, float]]:
        """Rows of ``metrics.csv``; a torn last line (a crash mid-write) or a bad value is skipped."""
        return read_metrics_csv(self.metrics_path)

    # ------------------------------------------------------------------------------ checkpoints
    def checkpoints(self) -> list[Checkpoint]:
        """Complete checkpoints, oldest first."""
        if not self.checkpoint_dir.is_dir():
            return []
        prefix = self.CHECKPOINT_PREFIX
        found = [
            Checkpoint(p)
            for p in self.checkpoint_dir.iterdir()
            if p.is_dir() and p.name.startswith(prefix) and p.name[len(prefix) :].isdigit()
        ]
        return sorted(found, key=lambda c: c.step)

    def latest_checkpoint(self) -> Checkpoint | None:
        found = self.checkpoints()
        return found[-1] if found else None

    def checkpoint_path(self, step: int) -> Path:
        return self.checkpoint_dir / f"{self.CHECKPOINT_PREFIX}{int(step):012d}"

    @contextlib.contextmanager
    def new_checkpoint(self, step: int) -> Iterator[Checkpoint]:
        """Yield a temporary checkpoint to fill; it is renamed into place whole on success."""
        final = self.checkpoint_path(step)
        tmp = self.checkpoint_dir / f".tmp-{final.name}-{os.getpid()}"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        try:
            yield Checkpoint(tmp)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        if final.exists():  # the same step checkpointed twice (a stop just after a periodic one)
            shutil.rmtree(final)
        tmp.rename(final)  # atomic: the checkpoint appears whole

    def prune_checkpoints(self, keep: int) -> None:
        for old in self.checkpoints()[:-keep]:
            shutil.rmtree(old.path, ignore_errors=True)


# ---------------------------------------------------------------------------------------- helpers
def natural_key(path: Path) -> tuple:
    return tuple((0, int(p), "") if p.isdigit() else (1, 0, p) for p in path.parts)


def _read_yaml(path: Path) -> Any:
    from omegaconf import OmegaConf

    conf = OmegaConf.load(path)
    try:
        return OmegaConf.to_container(conf, resolve=True)
    except Exception:  # an interpolation that needs Hydra's resolvers (${now:...}, ${hydra:...})
        return OmegaConf.to_container(conf, resolve=False)
