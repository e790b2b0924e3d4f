"""What ``recsim-train`` shows and hears on the terminal: a progress bar, the final table, signals."""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from experiments.analysis.schema import SUMMARY_TABLE, table_rows
from experiments.run.protocol import LifelongProtocol

log = logging.getLogger("experiments.run")


@contextmanager
def progress(enabled: bool, protocol: LifelongProtocol) -> Iterator[None]:
    """A rich progress bar (steps, steps/s, latest windowed reward) on an interactive terminal."""
    from rich.console import Console

    console = Console(stderr=True)
    if not enabled or not console.is_terminal:
        yield
        return
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    bar = Progress(
        TextColumn("[bold]train"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[sps]} steps/s"),
        TextColumn("reward {task.fields[reward]}"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=False,
    )
    total = protocol.settings.total_steps
    task = bar.add_task("train", total=total, completed=protocol.num_timesteps, sps="-", reward="-")
    last = {"t": time.perf_counter(), "step": float(protocol.num_timesteps)}

    def update(step: int, window: Mapping[str, float]) -> None:
        now = time.perf_counter()
        if now - last["t"] < 0.2 and step < total:
            return
        sps = (step - last["step"]) / max(now - last["t"], 1e-9)
        last.update(t=now, step=step)
        reward = window.get("online/reward")
        bar.update(
            task,
            completed=step,
            sps=f"{sps:,.0f}",
            reward="-" if reward is None else f"{reward:.3f}",
        )

    protocol.on_progress = update
    with bar:
        yield
    protocol.on_progress = None


DUPLICATE_SIGNAL_S = 1.0  # a repeat this soon is the same signal delivered twice


@contextmanager
def stop_on_signals(protocol: LifelongProtocol) -> Iterator[None]:
    """SIGTERM / first SIGINT: checkpoint at the next step and stop (preemption-friendly).

    A second signal acts as usual (Ctrl-C twice stops at once), unless it comes within
    :data:`DUPLICATE_SIGNAL_S` of the first: then it is the same signal delivered twice (to the
    process group by the terminal or SLURM, and passed on by a launcher's process that waits for
    this one, :mod:`experiments.run.isolation`) and is ignored.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous: dict[int, Any] = {}
    first: dict[str, float] = {}

    def handler(signum: int, frame: Any) -> None:
        name = signal.Signals(signum).name
        now = time.monotonic()
        if "t" not in first:
            first["t"] = now
            protocol.stop_requested = name
            log.warning("%s received: checkpointing and stopping", name)
            return
        if now - first["t"] < DUPLICATE_SIGNAL_S:
            return
        signal.signal(signum, previous[signum])  # act as usual from now on
        signal.raise_signal(signum)

    for sig in (signal.SIGTERM, signal.SIGINT):
        previous[sig] = signal.signal(sig, handler)
    try:
        yield
    finally:
        for signum, old in previous.items():
            signal.signal(signum, old)


def print_summary(summary: Mapping[str, Any], run_dir: Path) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"summary ({summary.get('num_timesteps')} user-steps)")
    table.add_column("metric")
    table.add_column("value", justify="right")
    for key, shown in table_rows(summary, SUMMARY_TABLE):
        table.add_row(key, shown)
    console = Console()
    console.print(table)
    console.print(f"results in [bold]{run_dir}[/bold]")
