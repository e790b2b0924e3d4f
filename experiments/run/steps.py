"""The parts of the lifelong protocol, one concern each, composed like SB3's ``CallbackList``.

Each part is a :class:`ProtocolCallback`: it sees every vector step (``on_step``) and every closed
logging window (``on_window``), finishes at the end of the run (``on_end``), contributes its keys to
``summary.json`` (``summary``) and keeps its state in a dataclass that it hands to checkpoints as
plain data (``state_dict`` / ``load_state_dict``: the :class:`agents.base.Resumable` contract).

- :class:`LifelongSummary`: drift events, regimes and the window series → ``lifelong/*``
  (forgetting, plasticity);
- :class:`experiments.run.recovery.DriftRecovery`: recovery after drift events on ground truth,
  at every vector step → ``lifelong/recovery_*``;
- :class:`OnlineMetrics`: ground truth of every step → windowed ``online/*``, ``train/*``,
  ``time/sps``;
- :class:`Evaluation`: periodic greedy evaluation → ``eval/*``;
- :class:`PeriodicCheckpoint`: a checkpoint every ``checkpoint_every`` user-steps.

The set and its order come from the config (``conf/protocol/parts/default.yaml``, built by
:mod:`experiments.run.parts`); :class:`PeriodicCheckpoint` is not listed there: it always runs
last, so that a checkpoint holds every other part's state after the step.

Parts run in list order at every step; observers come before the parts that act on a schedule
(``LifelongSummary`` records the step's regime before ``OnlineMetrics`` closes a window with it).
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import asdict, dataclass, field, fields
from typing import Any, Protocol

import numpy as np

from agents.base import Agent, Transition, reset_rows
from experiments.analysis.lifelong import summarize_lifelong
from experiments.analysis.recovery import attribute_events, event_onsets
from experiments.analysis.schema import CLICK_KEYS, LIFELONG_KEYS, RANKING_KEYS
from experiments.run.config import ProtocolConfig
from experiments.run.evaluation import evaluate
from experiments.run.rundir import RunDir
from experiments.run.sinks import MetricWriter


# ---------------------------------------------------------------------------------------- the run
class TrainTimer:
    """Training time between windows, not counting evaluations and checkpoints (``time/sps``)."""

    def __init__(self) -> None:
        self.restart()

    def restart(self) -> None:
        self._start = time.perf_counter()
        self._excluded = 0.0

    @contextlib.contextmanager
    def paused(self) -> Iterator[None]:
        t0 = time.perf_counter()
        try:
            yield
        finally:
            self._excluded += time.perf_counter() - t0

    def lap(self) -> float:
        """Seconds of training since the last lap."""
        now = time.perf_counter()
        elapsed = max(now - self._start - self._excluded, 1e-9)
        self._start, self._excluded = now, 0.0
        return elapsed


class Run(Protocol):
    """What a part may use of the protocol that drives it."""

    settings: ProtocolConfig
    writer: MetricWriter
    timer: TrainTimer
    agent: Agent | None
    train_env: Any  # the (vector) env the agent learns on
    run_dir: RunDir

    @property
    def num_timesteps(self) -> int: ...

    def emit_window(self, window: Window) -> None: ...

    def evaluated(self) -> None: ...

    def save_checkpoint(self) -> Any: ...


@dataclass(frozen=True)
class Window:
    """One closed logging window: its end step, its length in user-steps and its metrics."""

    step: int
    steps: int
    metrics: dict[str, float]


class ProtocolCallback:
    """One part of the protocol (see the module doc): subclass it to add your own.

    The part protocol: a part overrides the hooks it needs (the others do nothing) —
    ``on_training_start``, ``on_step``, ``on_window``, ``on_end`` — each given the :class:`Run` that
    drives it (``run.writer.write(step, metrics)`` logs a metric); ``summary`` adds its keys to
    ``summary.json``; ``state_dict`` / ``load_state_dict`` (optional: plain data only, see
    :mod:`recsim_env.state_io`) put its state in every checkpoint, so a resumed run continues it.

    Parts are listed in ``conf/protocol/parts/`` as ``NAME: {_target_: pkg.Class, param: ...}``
    and built by :func:`experiments.run.parts.build_parts`: the YAML's params are the constructor's
    keywords, plus ``settings`` (the :class:`ProtocolConfig`) and ``make_eval_env`` where the
    constructor names them; ``NAME`` becomes ``key``, the name of the part's state in checkpoints.
    """

    key: str = ""

    def on_training_start(self, run: Run) -> None:
        """Called at every (re)start of ``agent.learn``."""

    def on_step(self, run: Run, t: Transition, info: Mapping[str, Any]) -> None:
        """After every vector step; ``info`` is the step's batched info."""

    def on_window(self, run: Run, window: Window) -> None:
        """After a logging window closed (its metrics already written)."""

    def on_end(self, run: Run) -> None:
        """Once, when the stream is done (before the final checkpoint)."""

    def summary(self) -> dict[str, Any]:
        return {}

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore what :meth:`state_dict` returned."""


class CallbackList(ProtocolCallback):
    """Parts called in order; their states keyed by ``key``, their summaries merged."""

    def __init__(self, callbacks: list[ProtocolCallback]) -> None:
        keys = [c.key for c in callbacks]
        if len(set(keys)) != len(keys) or not all(keys):
            raise ValueError(f"protocol parts need distinct, non-empty keys, got {keys}")
        self.callbacks = callbacks

    def on_training_start(self, run: Run) -> None:
        for c in self.callbacks:
            c.on_training_start(run)

    def on_step(self, run: Run, t: Transition, info: Mapping[str, Any]) -> None:
        for c in self.callbacks:
            c.on_step(run, t, info)

    def on_window(self, run: Run, window: Window) -> None:
        for c in self.callbacks:
            c.on_window(run, window)

    def on_end(self, run: Run) -> None:
        for c in self.callbacks:
            c.on_end(run)

    def summary(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for c in self.callbacks:
            out.update(c.summary())
        return out

    def state_dict(self) -> dict[str, Any]:
        return {c.key: c.state_dict() for c in self.callbacks}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        for c in self.callbacks:
            if c.key in state:
                c.load_state_dict(state[c.key])


def _next_multiple(step: int, every: int) -> int:
    return (step // every + 1) * every


def _from_dict(cls: type[Any], state: Mapping[str, Any]) -> Any:
    return cls(**{f.name: state[f.name] for f in fields(cls) if f.name in state})


# ---------------------------------------------------------------------------------------- online
@dataclass
class Totals:
    """Sums over user-steps (a window's, or the whole stream's)."""

    steps: int = 0
    reward: float = 0.0
    ctr: float = 0.0  # clicks
    regret: float = 0.0
    sessions: int = 0  # sessions that ended
    session_steps: int = 0  # their total length
    drift_events: int = 0

    def add(self, other: Totals) -> None:
        for f in fields(self):
            setattr(self, f.name, getattr(self, f.name) + getattr(other, f.name))


@dataclass
class OnlineState:
    next_log: int
    stream: Totals = field(default_factory=Totals)
    window: Totals = field(default_factory=Totals)
    window_train: dict[str, list[float]] = field(default_factory=dict)  # key -> [sum, count]
    session_len: np.ndarray | None = None  # (B,) steps into each user's current session
    train_time: float = 0.0
    last_window: dict[str, float] = field(default_factory=dict)
    last_train: dict[str, float] = field(default_factory=dict)


class OnlineMetrics(ProtocolCallback):
    """The step's ground truth (``info["clicked"]``, ``info["regret"]``, ...) turned into online
    metrics, aggregated over windows of ``log_every`` user-steps. Reward earned while learning is
    the lifelong objective: ``online/*`` in the summary is the mean over the whole stream."""

    key = "online"

    def __init__(self, settings: ProtocolConfig) -> None:
        self.settings = settings
        self.state = OnlineState(next_log=settings.log_every)

    @property
    def last_window(self) -> dict[str, float]:
        return self.state.last_window

    def on_step(self, run: Run, t: Transition, info: Mapping[str, Any]) -> None:
        st, w = self.state, self.state.window
        rewards = np.asarray(t.rewards, dtype=np.float64).reshape(-1)
        n = rewards.shape[0]
        reset = reset_rows(info)  # NEXT_STEP reset steps (reward, click, regret 0): no user-steps
        w.steps += n if reset is None else n - int(reset.sum())
        w.reward += float(rewards.sum())
        if "clicked" in info:
            w.ctr += float(np.sum(info["clicked"]))
        if "regret" in info:
            w.regret += float(np.sum(info["regret"]))
        done = np.logical_or(t.terminated, t.truncated).reshape(-1)
        if st.session_len is None or len(st.session_len) != n:
            st.session_len = np.zeros(n, dtype=np.int64)
        lengths = st.session_len
        lengths += 1 if reset is None else ~reset
        if done.any():
            w.sessions += int(done.sum())
            w.session_steps += int(lengths[done].sum())
            lengths[done] = 0
        if "drift_event" in info and np.any(info["drift_event"]):
            w.drift_events += 1
        for key, value in (t.metrics or {}).items():
            try:
                value = float(value)
            except (TypeError, ValueError):
                continue
            if math.isfinite(value):
                acc = st.window_train.setdefault(key, [0.0, 0])
                acc[0] += value
                acc[1] += 1
        step = run.num_timesteps
        if step >= st.next_log:
            self.flush(run)
            st.next_log = _next_multiple(step, self.settings.log_every)

    def on_end(self, run: Run) -> None:
        if self.state.window.steps > 0:
            self.flush(run)

    def flush(self, run: Run) -> None:
        """Close the window: write its metrics, add it to the stream, tell the other parts."""
        st, w = self.state, self.state.window
        elapsed = run.timer.lap()
        st.train_time += elapsed
        st.stream.add(w)
        steps = max(w.steps, 1)
        metrics = {
            "online/reward": w.reward / steps,
            "online/ctr": w.ctr / steps,
            "online/regret": w.regret / steps,
            "online/cumulative_regret": st.stream.regret,
            "online/drift_events": float(w.drift_events),
        }
        if w.sessions:
            metrics["online/session_length"] = w.session_steps / w.sessions
        train = {key: total / count for key, (total, count) in st.window_train.items()}
        st.last_window = metrics
        st.last_train.update(train)
        window = Window(step=run.num_timesteps, steps=w.steps, metrics=metrics)
        st.window, st.window_train = Totals(), {}
        run.writer.write(run.num_timesteps, {**metrics, **train, "time/sps": w.steps / elapsed})
        run.emit_window(window)

    def summary(self) -> dict[str, Any]:
        st, s = self.state, self.state.stream
        nan = math.nan
        out: dict[str, Any] = {
            "online/reward": s.reward / s.steps if s.steps else nan,
            "online/ctr": s.ctr / s.steps if s.steps else nan,
            "online/regret": s.regret / s.steps if s.steps else nan,
            "online/session_length": s.session_steps / s.sessions if s.sessions else nan,
            "online/cumulative_regret": s.regret,
            "online/drift_events": s.drift_events + st.window.drift_events,
        }
        for key in ("reward", "ctr", "regret", "session_length", "drift_events"):
            out[f"online/{key}_final"] = st.last_window.get(f"online/{key}", nan)
        out.update(st.last_train)
        out["time/sps"] = s.steps / st.train_time if st.train_time > 0 else nan
        return out

    def state_dict(self) -> dict[str, Any]:
        return asdict(self.state)

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        st = _from_dict(OnlineState, state)
        st.stream, st.window = _from_dict(Totals, st.stream), _from_dict(Totals, st.window)
        st.window_train = {k: list(v) for k, v in st.window_train.items()}
        if st.session_len is not None:
            st.session_len = np.array(st.session_len, dtype=np.int64)
        self.state = st


# ---------------------------------------------------------------------------------------- lifelong
@dataclass
class LifelongState:
    drift_event_steps: list[int] = field(default_factory=list)  # where drift_event was flagged
    phase: int | None = None  # info["drift_phase"] of the latest step (the population regime)
    acting_phase: int | None = None  # the regime in force while the latest step was acted on
    # one entry per logged window: what the lifelong metrics are computed from
    steps: list[int] = field(default_factory=list)
    rewards: list[float] = field(default_factory=list)
    regrets: list[float] = field(default_factory=list)
    counts: list[int] = field(default_factory=list)
    phases: list[int] = field(default_factory=list)


class LifelongSummary(ProtocolCallback):
    """Drift events and regimes as they happen; ``lifelong/*`` (forgetting, plasticity, regret)
    from the window series (:func:`experiments.analysis.lifelong.summarize_lifelong`).

    Attribution (issue 12): the world ticks *after* a step's action, so the step that flags
    ``drift_event`` (and the window it closes) still earned pre-event rewards. A window is labelled
    with the regime in force while its last step was acted on (the previous step's
    ``drift_phase``), and the events handed to the window metrics are the windows they belong to
    (:func:`~experiments.analysis.recovery.attribute_events`: the first window at or after the
    onset). Recovery is not computed from windows: :mod:`experiments.run.recovery`."""

    key = "lifelong"

    def __init__(self, settings: ProtocolConfig) -> None:
        self.settings = settings
        self.state = LifelongState()

    def on_step(self, run: Run, t: Transition, info: Mapping[str, Any]) -> None:
        if "drift_phase" in info:
            phase = int(np.asarray(info["drift_phase"]).reshape(-1)[0])
            st = self.state
            st.acting_phase = st.phase if st.phase is not None else phase
            st.phase = phase
        if "drift_event" in info and np.any(info["drift_event"]):
            self.state.drift_event_steps.append(int(t.num_timesteps))

    def on_window(self, run: Run, window: Window) -> None:
        st = self.state
        st.steps.append(window.step)
        st.rewards.append(window.metrics["online/reward"])
        st.regrets.append(window.metrics["online/regret"])
        st.counts.append(window.steps)
        if st.acting_phase is not None:
            st.phases.append(st.acting_phase)

    def summary(self) -> dict[str, Any]:
        st = self.state
        out: dict[str, Any]
        if not st.steps:
            out = dict.fromkeys(LIFELONG_KEYS, math.nan)
        else:
            out = dict(
                summarize_lifelong(
                    st.steps,
                    st.rewards,
                    window=self.settings.lifelong_window,
                    event_steps=attribute_events(st.steps, event_onsets(st.drift_event_steps)),
                    phases=st.phases if len(st.phases) == len(st.steps) else None,
                    regrets=st.regrets,
                    regret_counts=st.counts,
                )
            )
        out["lifelong/drift_event_steps"] = list(st.drift_event_steps)
        return out

    def state_dict(self) -> dict[str, Any]:
        return asdict(self.state)

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.state = _from_dict(LifelongState, state)


# ---------------------------------------------------------------------------------------- eval
@dataclass
class EvalState:
    next_eval: int | None  # None: no periodic evaluation
    eval_index: int = 0
    last_eval_step: int = -1
    last_eval: dict[str, float] = field(default_factory=dict)


class Evaluation(ProtocolCallback):
    """Greedy evaluation every ``eval_every`` user-steps (and at the end) on fresh users of the
    live world (see :mod:`experiments.run.evaluation`); ``make_eval_env`` is called each time so
    that the evaluation env follows the world as it is now."""

    key = "eval"

    def __init__(self, settings: ProtocolConfig, make_eval_env: Callable[[], Any] | None) -> None:
        self.settings = settings
        self.make_eval_env = make_eval_env
        self.state = EvalState(next_eval=settings.eval_every or None)

    def on_step(self, run: Run, t: Transition, info: Mapping[str, Any]) -> None:
        step = run.num_timesteps
        if self.state.next_eval is not None and step >= self.state.next_eval:
            self.evaluate(run)
            self.state.next_eval = _next_multiple(step, self.settings.eval_every)

    def on_end(self, run: Run) -> None:
        if self.settings.final_eval and self.state.last_eval_step != run.num_timesteps:
            self.evaluate(run)

    def evaluate(self, run: Run) -> None:
        if self.make_eval_env is None or run.agent is None:
            return
        st = self.state
        seed = int(
            np.random.SeedSequence([self.settings.eval_seed, st.eval_index]).generate_state(1)[0]
        )
        with run.timer.paused():
            metrics = evaluate(
                run.agent, self.make_eval_env(), seed=seed, ndcg_k=self.settings.ndcg_k
            )
            st.eval_index += 1
            st.last_eval_step = run.num_timesteps
            st.last_eval = metrics
            run.writer.write(run.num_timesteps, metrics)
            run.evaluated()

    def summary(self) -> dict[str, Any]:
        last = self.state.last_eval
        out: dict[str, Any] = {
            key: last.get(key, math.nan)
            for key in ("eval/return", "eval/ctr", "eval/regret", "eval/ndcg@k")
        }
        out.update({k: last[k] for k in (*CLICK_KEYS, *RANKING_KEYS) if k in last})  # if defined
        out["eval/ndcg_k"] = self.settings.ndcg_k
        return out

    def state_dict(self) -> dict[str, Any]:
        return asdict(self.state)

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.state = _from_dict(EvalState, state)


# ---------------------------------------------------------------------------------------- checkpoint
@dataclass
class CheckpointState:
    next_checkpoint: int | None  # None: only at the end (and on a signal)


class PeriodicCheckpoint(ProtocolCallback):
    """A complete checkpoint every ``checkpoint_every`` user-steps (the writing itself is
    :mod:`experiments.run.checkpoint`'s)."""

    key = "checkpoint"

    def __init__(self, settings: ProtocolConfig) -> None:
        self.settings = settings
        self.state = CheckpointState(next_checkpoint=settings.checkpoint_every or None)

    def on_step(self, run: Run, t: Transition, info: Mapping[str, Any]) -> None:
        step = run.num_timesteps
        if self.state.next_checkpoint is not None and step >= self.state.next_checkpoint:
            self.state.next_checkpoint = _next_multiple(step, self.settings.checkpoint_every)
            run.save_checkpoint()

    def state_dict(self) -> dict[str, Any]:
        return asdict(self.state)

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.state = _from_dict(CheckpointState, state)
