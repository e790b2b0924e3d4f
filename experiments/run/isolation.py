"""A multirun job in a child process of its own: a job killed by a signal fails alone.

Why: Hydra's basic launcher runs every job inside the sweep's process, and joblib's runs them in a
pool of worker processes that loky tears down as a whole when one of them dies
(``TerminatedWorkerError``). So one job killed by the out-of-memory killer (or ``kill -9``) would end
the whole sweep: the job running beside it left at ``status: running``, the later jobs never
started, no ``failures.json``.

With these launchers each job is forked from the launcher's process (the fork inherits Hydra's job
context and logging, so nothing is re-imported or re-serialised) and the launcher's process waits
for it. A child that dies of a signal is recorded in its run dir as failed — ``killed by signal
SIGKILL`` — and returns NaN like any failed job; the sweep goes on and its end-of-sweep report
lists the job. SIGINT/SIGTERM that reach the waiting parent are passed on to the child (which
checkpoints and stops, as a run does on its own); under the basic launcher, whose job loop runs in
this very process, the sweep then stops too (exit code 130, like an interrupted run) instead of
starting the next job — Ctrl-C means "stop the sweep"; `resume=true` continues it.

Other launchers (submitit's SLURM jobs, Ray's ``max_calls=1`` workers) already give every job a
process of its own. ``RECSIM_ISOLATE_JOBS=0`` turns the fork off (e.g. to debug a job in-process).
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import signal
import sys
import threading
import traceback
from collections.abc import Callable, Iterator
from pathlib import Path

from experiments.run.protocol import RunInterrupted
from experiments.run.rundir import MISSING, RUNNING, RunDir, RunDirLocked

log = logging.getLogger("experiments.run")

ISOLATED_LAUNCHERS = (
    "BasicLauncher",
    "JoblibLauncher",
    "BatchedLauncher",
)  # jobs share a process: fork each
ENV_SWITCH = "RECSIM_ISOLATE_JOBS"

__all__ = ["ENV_SWITCH", "JobKilled", "fork_call", "isolate_this_job", "run_in_child"]


class JobKilled(RuntimeError):
    """The job's process was ended by a signal before it could record anything itself."""


def isolate_this_job() -> bool:
    """Whether the current Hydra job runs under a launcher that shares processes between jobs."""
    if not hasattr(os, "fork") or os.environ.get(ENV_SWITCH, "1") == "0":
        return False
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    if not HydraConfig.initialized():
        return False
    hc = HydraConfig.get()
    target = str(hc.launcher.get("_target_", ""))
    return hc.mode == RunMode.MULTIRUN and target.endswith(ISOLATED_LAUNCHERS)


def _flush_all() -> None:
    for handler in logging.getLogger().handlers:
        with contextlib.suppress(Exception):
            handler.flush()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()


@contextlib.contextmanager
def _forward_signals(pid: int, received: list[int] | None = None) -> Iterator[None]:
    """SIGINT/SIGTERM to this process go on to the child (which checkpoints and stops); each
    signal passed on is appended to ``received``."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {}

    def forward(signum: int, frame: object) -> None:
        if received is not None:
            received.append(signum)
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signum)

    for sig in (signal.SIGINT, signal.SIGTERM):
        previous[sig] = signal.signal(sig, forward)
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def fork_call(work: Callable[[], bytes]) -> tuple[bytes, int, list[int]]:
    """``work()`` in a forked child that never returns into this process: the bytes it returned
    (empty if it failed: its traceback is printed), the child's wait status, and the signals
    passed on to it while this process waited (:func:`_forward_signals`)."""
    read_end, write_end = os.pipe()
    _flush_all()
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            os.close(read_end)
            view = memoryview(work())
            while view:
                view = view[os.write(write_end, view) :]
            code = 0
        except RunInterrupted:  # checkpointed and recorded `interrupted`: no traceback
            code = 130
        except BaseException:
            traceback.print_exc()
        finally:
            _flush_all()
            os._exit(code)
    os.close(write_end)
    chunks = []
    received: list[int] = []
    with _forward_signals(pid, received):
        while chunk := os.read(read_end, 1 << 16):
            chunks.append(chunk)
        _, status = os.waitpid(pid, 0)
    os.close(read_end)
    return b"".join(chunks), status, received


def run_in_child(
    job: Callable[[], float], run_dir: str | Path, *, stop_on_signal: bool = False
) -> float:
    """``job()`` in a forked child; its return value, or NaN if it died (recorded in ``run_dir``).

    ``stop_on_signal``: after passing a SIGINT/SIGTERM on to the child, end this process with exit
    code 130 once the child has checkpointed (the basic launcher's loop would otherwise start the
    next job of an interrupted sweep)."""
    data, status, received = fork_call(lambda: json.dumps(float(job())).encode())
    if received and stop_on_signal:
        name = signal.Signals(received[0]).name
        log.warning(
            "sweep stopped by %s: the jobs not yet started were not started; run the same command "
            "with resume=true to continue (interrupted jobs resume from their checkpoints)",
            name,
        )
        if os.WIFSIGNALED(status):
            _record_killed(RunDir(run_dir), signal.Signals(os.WTERMSIG(status)).name)
        raise SystemExit(130)
    if os.WIFSIGNALED(status):
        return _record_killed(RunDir(run_dir), signal.Signals(os.WTERMSIG(status)).name)
    if data:
        return float(json.loads(data))
    return math.nan  # it failed past the runner (which recorded what it could)


def _record_killed(rd: RunDir, signal_name: str) -> float:
    hint = {
        "SIGKILL": " (kill -9, or the out-of-memory killer: see `dmesg`)",
        "SIGSEGV": " (a crash in native code)",
    }.get(signal_name, "")
    error = JobKilled(f"killed by signal {signal_name}{hint}")
    log.error("job failed (%s): %s", rd, error)
    status = rd.state().status
    if status not in (RUNNING, MISSING):
        return math.nan  # it recorded its end itself before the signal came
    try:
        with rd.lock():
            rd.record_failure(error)
    except RunDirLocked as exc:  # not ours to write any more
        log.error("cannot record it: %s", exc)
    return math.nan
