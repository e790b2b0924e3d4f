"""The lifelong run protocol: learn online on a drifting stream, evaluate, checkpoint, resume.

:class:`LifelongProtocol` is a :class:`agents.StepCallback` handed to ``agent.learn(total_steps,
callback)``, so it drives our agents and SB3's alike. It keeps the clock (user-steps so far) and
the observation the stream continues from, and delegates every concern to its parts
(:mod:`experiments.run.steps`; listed in ``conf/protocol/parts/``, a user's own part added from
config): online metrics over windows of ``log_every`` user-steps, greedy
evaluation every ``eval_every``, checkpoints every ``checkpoint_every``, the lifelong summary.
Reward earned while learning is the lifelong objective; there is no separate "training phase".

Checkpoints (periodic, on SIGTERM/SIGINT, and at the end) are written by
:mod:`experiments.run.checkpoint`; resuming from one replays the rest of the run exactly for agents
whose ``save``/``load`` keep their whole state: the final metrics equal those of an uninterrupted
run.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gymnasium
import numpy as np

from agents.base import Agent, Info, StepCallback, Transition
from experiments.run import checkpoint as checkpoints
from experiments.run.config import ProtocolConfig
from experiments.run.evaluation import batched_info
from experiments.run.parts import default_parts
from experiments.run.rundir import COMPLETED, INTERRUPTED, RUNNING, Checkpoint, RunDir
from experiments.run.sinks import MetricWriter
from experiments.run.steps import (
    CallbackList,
    OnlineMetrics,
    PeriodicCheckpoint,
    ProtocolCallback,
    TrainTimer,
    Window,
)
from recsim_env.state_io import is_plain

log = logging.getLogger(__name__)

__all__ = ["LifelongProtocol", "ProtocolState", "RunInterrupted"]


class RunInterrupted(Exception):
    """Training stopped on a signal after writing a checkpoint; resume to continue."""

    def __init__(self, signal_name: str, step: int, checkpoint: Path | None) -> None:
        super().__init__(f"interrupted by {signal_name} at step {step}; checkpoint: {checkpoint}")
        self.signal_name = signal_name
        self.step = step
        self.checkpoint = checkpoint


@dataclass
class ProtocolState:
    """The protocol's own state: the clock and what the agent sees next (for exact resume)."""

    num_timesteps: int = 0
    completed: bool = False
    last_obs: np.ndarray | None = None
    last_info: Info | None = None


class LifelongProtocol(StepCallback):
    """Online metrics, periodic greedy evaluation and checkpoints around ``agent.learn``.

    Parameters
    ----------
    train_env: the (vector) env the agent learns on; its ``state_dict`` goes into checkpoints.
    make_eval_env: builds the evaluation env (a follower of ``train_env``'s current world; called at
        every evaluation so that it always follows the live world). ``None``: no evaluation.
    writer: where metrics go.
    settings: the ``protocol`` config section.
    run_dir: where checkpoints (and the interim ``summary.json``) go.
    on_progress: called as ``on_progress(num_timesteps, latest_window_metrics)`` after every step.
    on_eval: called as ``on_eval(num_timesteps, summary)`` after every evaluation, with the summary
        so far (the keys of ``summary.json``; ``eval/*`` from this evaluation). It may raise to
        stop the run (e.g. ``optuna.TrialPruned`` in ``recsim-tune``).
    parts: the parts (:class:`~experiments.run.steps.ProtocolCallback`), in order; ``None``: the
        default set (``conf/protocol/parts/default.yaml``). ``recsim-train`` builds them from
        ``protocol.parts`` (:func:`experiments.run.parts.build_parts`).
    extra: more parts, run after ``parts``. A :class:`PeriodicCheckpoint` always runs last, so that
        a checkpoint holds every other part's state after the step.
    """

    def __init__(
        self,
        train_env: gymnasium.vector.VectorEnv,
        make_eval_env: Callable[[], Any] | None,
        writer: MetricWriter,
        settings: ProtocolConfig,
        run_dir: RunDir | str | Path,
        on_progress: Callable[[int, Mapping[str, float]], None] | None = None,
        on_eval: Callable[[int, Mapping[str, Any]], None] | None = None,
        extra: Sequence[ProtocolCallback] = (),
        parts: Sequence[ProtocolCallback] | None = None,
    ) -> None:
        self.train_env = train_env
        self.writer = writer
        self.settings = settings
        self.run_dir = run_dir if isinstance(run_dir, RunDir) else RunDir(run_dir)
        self.on_progress = on_progress
        self.on_eval = on_eval
        self.agent: Agent | None = None
        self.stop_requested: str | None = None  # set by a signal handler: checkpoint and stop
        self.timer = TrainTimer()
        self.state = ProtocolState()
        if parts is None:
            parts = default_parts(settings, make_eval_env)
        self.parts = CallbackList([*parts, *extra, PeriodicCheckpoint(settings)])
        # the windowed metrics handed to on_progress (none if the config switched them off)
        self.online = next((p for p in self.parts.callbacks if isinstance(p, OnlineMetrics)), None)

    @property
    def num_timesteps(self) -> int:
        return self.state.num_timesteps

    @property
    def completed(self) -> bool:
        return self.state.completed

    # ------------------------------------------------------------------------------ the run
    def run(self, agent: Agent) -> dict[str, Any]:
        """Train ``agent`` for the rest of ``total_steps``, then evaluate, checkpoint, summarise."""
        self.agent = agent
        remaining = self.settings.total_steps - self.num_timesteps
        if not self.completed and remaining > 0:
            agent.learn(remaining, callback=self)
        if self.stop_requested:
            ckpt = self.save_checkpoint()
            self.writer.write_summary(self.summary(status=INTERRUPTED), sinks=False)
            raise RunInterrupted(self.stop_requested, self.num_timesteps, ckpt)
        if not self.completed:
            self.parts.on_end(self)
            self.state.completed = True
            self.save_checkpoint()
        return self.summary(status=COMPLETED)

    # ------------------------------------------------------------------------------ StepCallback
    def on_training_start(self, agent: Any) -> None:
        self.agent = agent
        self.timer.restart()
        self.parts.on_training_start(self)

    def on_step(self, transition: Transition) -> bool:
        self.state.num_timesteps = int(transition.num_timesteps)
        # what the agent sees next: needed to resume an agent without resetting the env
        self.state.last_obs, self.state.last_info = transition.next_obs, transition.info
        self.parts.on_step(self, transition, batched_info(transition.info))
        if self.on_progress is not None:
            self.on_progress(self.num_timesteps, self.online.last_window if self.online else {})
        if self.stop_requested:
            return False
        return self.num_timesteps < self.settings.total_steps

    def on_log(self, scalars: dict[str, float], num_timesteps: int) -> None:
        """Scalars logged outside ``on_step`` (e.g. SB3's at each logger dump, which the SB3
        adapters already alias onto our schema: ``train/learning_rate`` → ``train/lr``, ...)."""
        self.writer.write(int(num_timesteps), scalars)

    # ------------------------------------------------------------------------------ for the parts
    def emit_window(self, window: Window) -> None:
        self.parts.on_window(self, window)

    def evaluated(self) -> None:
        if self.on_eval is not None:
            self.on_eval(self.num_timesteps, self.summary(status=RUNNING))

    def save_checkpoint(self) -> Path:
        """Write a complete checkpoint for the current step; keep the newest ``keep_checkpoints``."""
        if self.agent is None:
            raise RuntimeError("save_checkpoint() before the run started")
        with self.timer.paused():
            path = checkpoints.save(self.run_dir, self, self.agent)
            self.writer.write_summary(self.summary(status=RUNNING), sinks=False)
            self.run_dir.prune_checkpoints(self.settings.keep_checkpoints)
        log.debug("checkpoint %s", path)
        return path

    def restore(
        self, checkpoint: Checkpoint | str | Path, agent_cls: type[Agent], **load_kwargs: Any
    ) -> Agent:
        """Load a checkpoint: returns the restored agent; env, writer, RNGs and state are restored.
        ``load_kwargs`` go to ``agent_cls.load`` (:func:`experiments.run.checkpoint.load_kwargs`)."""
        ckpt = checkpoint if isinstance(checkpoint, Checkpoint) else Checkpoint(Path(checkpoint))
        self.agent = checkpoints.restore(ckpt, self, agent_cls, **load_kwargs)
        if self.completed and self.settings.total_steps > self.num_timesteps:
            self.state.completed = False  # a finished run extended with a larger total_steps
        return self.agent

    # ------------------------------------------------------------------------------ state
    def summary(self, status: str = COMPLETED) -> dict[str, Any]:
        """Flat summary: ``online/*`` over the whole stream, ``*_final`` last window, ``eval/*``
        last evaluation, ``lifelong/*`` from the windows."""
        out: dict[str, Any] = {
            "status": status,
            "num_timesteps": self.num_timesteps,
            "total_steps": self.settings.total_steps,
        }
        out.update(self.parts.summary())
        return out

    def state_dict(self) -> dict[str, Any]:
        return {
            "num_timesteps": self.state.num_timesteps,
            "completed": self.state.completed,
            "last_obs": self.state.last_obs,
            "last_info": _plain_info(self.state.last_info),
            "parts": self.parts.state_dict(),
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.state = ProtocolState(
            num_timesteps=int(state["num_timesteps"]),
            completed=bool(state["completed"]),
            last_obs=state.get("last_obs"),
            last_info=state.get("last_info"),
        )
        self.parts.load_state_dict(state["parts"])


def _plain_info(info: Any) -> Any:
    """The entries of an info dict that a checkpoint can hold without pickle (others dropped)."""
    if not isinstance(info, Mapping):
        return None
    kept = {}
    for key, value in info.items():
        if is_plain(value):
            kept[key] = value
        else:
            log.debug("info[%r] is not plain data: left out of the checkpoint", key)
    return kept
