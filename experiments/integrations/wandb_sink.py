"""W&B as a :class:`~experiments.run.sinks.MetricSink` (the reader is :mod:`.wandb_reader`).

:class:`WandbSink` opens one W&B run per Hydra job and closes it in :meth:`WandbSink.close`, which
the runner calls in a ``finally`` (also when the run failed). Launchers that reuse worker processes
(joblib, Ray) run many jobs in one process: ``wandb.init(reinit="finish_previous")`` makes sure that
a job never logs into an earlier job's run. Population training (``hydra/launcher=batched``) runs
several jobs in one process *at the same time*: while another run of this process is live, a new one
is created beside it (``reinit="create_new"``) and W&B's service is torn down only after the last.

- **Step axis**: metrics are logged with ``step=`` the user-step count that ``metrics.csv`` uses, so
  W&B's ``_step`` *is* the CSV's ``step`` column, in fresh and resumed runs alike. Several writes at
  one step (window metrics, then an evaluation) are merged into one W&B history row.
- **Resume**: the run id is ``RunContext.run_id`` (stable across resumes) with ``resume="allow"``.
  W&B history is append-only, so rows for steps that W&B already holds (logged after the checkpoint
  by the interrupted attempt) are skipped instead of being sent again. Offline, a resumed run is a
  second ``offline-run-*`` dir with the same id: ``wandb sync`` uploads both, in order.
- **Mode**: ``auto`` (default) is ``online`` when an API key is configured (``WANDB_API_KEY``,
  ``WANDB_IDENTITY_TOKEN_FILE`` or a netrc entry for the W&B host) and ``offline`` otherwise: no
  hang, no network; upload later with ``wandb sync <run dir>/wandb/offline-run-*``. ``online``
  without a key falls back to ``offline`` with a warning; ``disabled`` turns W&B off. If ``online``
  init fails (network down, timeout), the run continues offline. The key is never read into,
  logged or written by this module; config values under secret-looking keys are masked.

Labels (``agent``, ``env``, ``drift`` tags, the job type) come from
:func:`experiments.analysis.schema.run_labels`, the same that ``recsim-compare`` groups by; the
optimised metric and its goal (from the metric schema) go into the run's config.
"""

from __future__ import annotations

import contextlib
import difflib
import logging
import math
import os
import sys
import threading
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from experiments.analysis.schema import optimization_direction, run_labels
from experiments.integrations.wandb_reader import api_key_configured
from experiments.run.secrets import SECRET_KEY_PATTERN, scrub
from experiments.run.sinks import RunContext
from recsim_env.validation import ConfigError

log = logging.getLogger(__name__)

MODES = ("auto", "online", "offline", "disabled")
WANDB_MODES = ("online", "offline", "shared", "disabled", "dryrun", "run")  # what W&B accepts
MAX_TAG_LEN = 64


# ---------------------------------------------------------------------------------------- mode
def resolve_mode(mode: str | None) -> str:
    """``auto`` → ``online`` with credentials, else ``offline``; ``online`` without them → ``offline``."""
    mode = (mode or "auto").strip().lower()
    if mode not in MODES:
        raise ConfigError(f"invalid logger.sinks.wandb.mode={mode!r} (allowed: one of {MODES})")
    if mode == "disabled" or mode == "offline":
        return mode
    has_key = api_key_configured()
    if mode == "online" and not has_key:
        log.warning(
            "wandb mode=online but no API key is configured (WANDB_API_KEY or `wandb login`): "
            "logging offline; upload later with `wandb sync`"
        )
    return "online" if has_key else "offline"


# ---------------------------------------------------------------------------------------- helpers
@contextlib.contextmanager
def _wandb_mode_env(mode: str) -> Iterator[None]:
    """``WANDB_MODE`` as W&B accepts it while W&B reads it: our ``auto`` (which W&B's settings
    reject: "Input should be 'online', 'offline', ...") becomes the mode it resolved to, for this
    call only (a worker process's next job resolves ``auto`` again)."""
    before = os.environ.get("WANDB_MODE")
    if before is None or before.strip().lower() in WANDB_MODES:
        yield
        return
    os.environ["WANDB_MODE"] = mode
    try:
        yield
    finally:
        os.environ["WANDB_MODE"] = before


def check_settings(settings: Mapping[str, Any] | None) -> dict[str, Any]:
    """``settings`` whose keys are ``wandb.Settings`` fields; an unknown key is a
    :class:`ConfigError` naming the key and never its value (it may be a credential)."""
    settings = dict(settings or {})
    try:
        import wandb

        known = set(wandb.Settings.model_fields)
    except Exception:  # wandb missing or another version: W&B checks them itself
        return settings
    unknown = sorted(str(k) for k in settings if str(k) not in known)
    if unknown:
        close = {k: difflib.get_close_matches(k, sorted(known), n=1) for k in unknown}
        hints = "; ".join(f"did you mean {c[0]!r} for {k!r}?" for k, c in close.items() if c)
        raise ConfigError(
            f"unknown key(s) logger.sinks.wandb.settings.{', '.join(unknown)} (allowed: the "
            f"fields of wandb.Settings){'; ' + hints if hints else ''}"
        )
    return settings


def mask_secrets(obj: Any) -> Any:
    """A copy of a config with values under secret-looking keys (``api_key``, ``token``...) masked."""
    if isinstance(obj, Mapping):
        return {
            str(k): (
                "***" if SECRET_KEY_PATTERN.search(str(k)) and v is not None else mask_secrets(v)
            )
            for k, v in obj.items()
        }
    if isinstance(obj, list | tuple):
        return [mask_secrets(v) for v in obj]
    return obj


def _hydra_choices() -> dict[str, str]:
    """The config-group choices of the current Hydra job ({} outside Hydra)."""
    try:
        from hydra.core.hydra_config import HydraConfig

        if HydraConfig.initialized():
            choices = HydraConfig.get().runtime.choices.items()
            return {
                str(k): str(v)
                for k, v in choices
                if v is not None and not str(k).startswith("hydra/")
            }
    except Exception:  # Hydra absent or not a job: the config still names everything
        pass
    return {}


def _hydra_sweep_dir() -> Path | None:
    """The sweep dir of the current Hydra multirun job (None otherwise)."""
    try:
        from hydra.core.hydra_config import HydraConfig
        from hydra.types import RunMode

        if HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN:
            return Path(HydraConfig.get().sweep.dir)
    except Exception:
        pass
    return None


def _tag(text: str) -> str:
    return text[:MAX_TAG_LEN]


# ---------------------------------------------------------------------------------------- sink
class WandbSink:
    """One W&B run per job (see module doc). Built by the runner as
    ``instantiate(cfg.logger.sinks.wandb, context=run_context)``.

    Parameters
    ----------
    context: the run (dir, resolved config, stable id, name, sweep group).
    project, entity: where the run goes.
    mode: ``auto`` | ``online`` | ``offline`` | ``disabled`` (see module doc).
    group: W&B group; default: the sweep or experiment name (+ the sweep dir's name), so that one
        sweep's runs are one group. ``job_type``: default the agent name. ``tags``: added to
        ``env:<env>``, ``drift:<drift>`` and ``agent:<agent>``.
    subdir: where under the run dir W&B writes (``<run dir>/<subdir>/wandb/...``); "" = the run dir.
    init_timeout: seconds ``wandb.init`` may take before the run falls back to offline.
    settings: extra ``wandb.Settings`` fields (e.g. ``{console: wrap}``).
    teardown: after ``finish()``, shut W&B's service process down (it restarts at the next
        ``init``), which waits until the run's files are complete on disk.
    """

    def __init__(
        self,
        context: RunContext,
        project: str = "recsim-env",
        entity: str | None = None,
        mode: str | None = "auto",
        group: str | None = None,
        job_type: str | None = None,
        name: str | None = None,
        tags: Sequence[str] = (),
        notes: str | None = None,
        subdir: str = "",
        init_timeout: float = 30.0,
        settings: Mapping[str, Any] | None = None,
        teardown: bool = True,
    ) -> None:
        os.environ.setdefault("WANDB_SILENT", "true")
        self.context = context
        self.mode = resolve_mode(mode)
        settings = check_settings(settings)
        self.teardown = bool(teardown)
        self.run: Any = None
        self._last_step = -1
        self._min_step = 0
        self._skipped = 0
        self._closed = False
        if self.mode == "disabled":
            return
        import wandb

        config = dict(context.config or {})
        choices = dict(context.choices) or _hydra_choices()
        labels = run_labels(config, choices)
        metric = config.get("optimize_metric")
        all_choices = {**labels, **choices}
        self.run_dir = Path(context.run_dir) / subdir if subdir else Path(context.run_dir)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.init_kwargs: dict[str, Any] = {
            "project": project,
            "entity": entity,
            "dir": str(self.run_dir),
            "id": context.run_id or None,
            "resume": "allow",
            "name": name or context.name or None,
            "group": group or self._default_group(context, choices),
            "job_type": job_type or labels["agent"],
            "tags": list(
                dict.fromkeys(
                    _tag(t)
                    for t in (
                        f"env:{labels['env']}",
                        f"drift:{labels['drift']}",
                        f"agent:{labels['agent']}",
                        *map(str, tags),
                    )
                )
            ),
            "notes": notes,
            "config": {
                **mask_secrets(config),
                "choices": all_choices,
                "run_dir": str(context.run_dir),
                **(
                    {"optimize": {"metric": metric, "goal": optimization_direction(metric)}}
                    if isinstance(metric, str)
                    else {}
                ),
            },
            "allow_val_change": True,  # a resumed run may extend protocol.total_steps
            # a reused worker process must not log into the last job's run; population members
            # (jobs training together in one process) each keep their own live run
            "reinit": "create_new" if _live_runs() else "finish_previous",
        }
        self._settings = {
            "silent": True,
            "console": "off",  # train.log already has the output; no stdout capture in workers
            "x_disable_stats": True,  # no system-metrics sampler thread
            "init_timeout": float(init_timeout),
            **dict(settings or {}),
        }
        self.run = self._init(wandb, self.mode)
        if self.run is not None:
            _count_live(+1)
        if self.run is not None and getattr(self.run, "resumed", False):
            self._min_step = int(getattr(self.run, "step", 0) or 0)

    @staticmethod
    def _default_group(context: RunContext, choices: Mapping[str, str]) -> str | None:
        """``<sweep or experiment>_<sweep dir>``: one group per sweep, unique across days (Hydra's
        default sweep dir ends in ``<date>/<time>``, so its last two parts are used)."""
        base = context.group
        sweep_dir = _hydra_sweep_dir()
        if sweep_dir is not None and sweep_dir.name == context.group:
            base = "_".join(sweep_dir.parts[-2:])
        study = choices.get("sweep") or choices.get("experiment")
        if study and study not in base:
            base = f"{study}_{base}" if base else study
        return base or None

    def _init(self, wandb: Any, mode: str) -> Any:
        try:
            with _wandb_mode_env(mode):
                return wandb.init(
                    mode=mode, settings=wandb.Settings(**self._settings), **self.init_kwargs
                )
        except Exception as exc:
            if mode == "online":
                log.warning(
                    "wandb.init (online) failed: %s; logging offline instead (upload later with "
                    "`wandb sync %s/wandb/offline-run-*`)",
                    scrub(str(exc)),
                    self.run_dir,
                )
                self.mode = "offline"
                # the failed online attempt still holds the run id in W&B's service process:
                # without a fresh service the offline run is refused ("run ID ... is in use")
                with contextlib.suppress(Exception):
                    wandb.teardown()
                return self._init(wandb, "offline")
            # Tracking must not kill a training run: the CSV is the source of truth.
            log.error(
                "wandb.init (%s) failed: %s; W&B logging is off for this run",
                mode,
                scrub(str(exc)),
            )
            self.mode = "disabled"
            return None

    @property
    def run_id(self) -> str | None:
        return None if self.run is None else self.run.id

    def write(self, step: int, metrics: Mapping[str, float]) -> None:
        if self.run is None or self._closed:
            return
        step = int(step)
        if step < self._min_step or step < self._last_step:
            # W&B history only grows: a resumed run re-writes steps it already holds.
            self._skipped += 1
            return
        self.run.log({str(k): float(v) for k, v in metrics.items()}, step=step)
        self._last_step = step

    def write_summary(self, summary: Mapping[str, Any]) -> None:
        if self.run is None or self._closed:
            return
        if self._last_step >= 0:
            # Commit the pending history row first, or its values would overwrite these in the summary.
            self.run.log({}, step=self._last_step, commit=True)
        self.run.summary.update({str(k): _summary_value(v) for k, v in summary.items()})

    def close(self) -> None:
        """Finish the run (exit code 1 if an exception is propagating: the run failed)."""
        if self._closed:
            return
        self._closed = True
        if self.run is None:
            return
        exc = sys.exc_info()[1]  # close() runs in the runner's `finally`: the run's error, if any
        exit_code = 0
        try:
            if exc is not None:
                interrupted = type(exc).__name__ in ("RunInterrupted", "KeyboardInterrupt")
                status = "interrupted" if interrupted else "failed"
                exit_code = 255 if interrupted else 1
                if interrupted and hasattr(self.run, "mark_preempting"):
                    self.run.mark_preempting()
                self.run.summary.update(
                    {"status": status, "error": scrub(f"{type(exc).__name__}: {exc}")}
                )
            if self._skipped:
                log.info("wandb: skipped %d writes for steps W&B already holds", self._skipped)
        finally:
            self.run.finish(exit_code=exit_code)
            self.run = None
            if _count_live(-1) == 0 and self.teardown:  # not under another live run's feet
                # finish() can return before wandb-core has written the run's files (seen with
                # wandb 0.31: an offline log still empty right after finish); tearing the service
                # down waits for it, so a job's W&B files are complete when the job ends.
                import wandb

                wandb.teardown()


_LIVE = [0]  # W&B runs of this process not finished yet (population members run side by side)
_LIVE_LOCK = threading.Lock()


def _live_runs() -> int:
    with _LIVE_LOCK:
        return _LIVE[0]


def _count_live(delta: int) -> int:
    with _LIVE_LOCK:
        _LIVE[0] = max(0, _LIVE[0] + delta)
        return _LIVE[0]


def _summary_value(value: Any) -> Any:
    if hasattr(value, "tolist"):
        value = value.tolist()
    if isinstance(value, float) and not math.isfinite(value):
        return None  # NaN/inf are not JSON: W&B shows "not measured" as empty
    return value
