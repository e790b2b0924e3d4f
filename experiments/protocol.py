"""The lifelong run protocol: learn online on a drifting stream, evaluate, checkpoint, resume.

:class:`LifelongProtocol` is a :class:`agents.StepCallback` handed to ``agent.learn(total_steps,
callback)``, so it drives our agents and SB3's alike. At every vector step it turns the step's ground
truth (``info["clicked"]``, ``info["regret"]``, ``info["drift_event"]``, ...) into online metrics,
aggregated over windows of ``log_every`` user-steps. Reward earned while learning is the lifelong
objective; there is no separate "training phase".

Every ``eval_every`` user-steps the agent is evaluated greedily (``explore=False``) on a separate
evaluation env that *follows* the training env's world (same catalogue, same drift, same clock; it
never advances them): ``eval_episodes`` fresh users, one session each, run in parallel. Because the
world keeps drifting, an evaluation measures the agent against today's users.

``eval/ndcg@k`` compares the agent's ranking of the candidates with their true expected reward.
Agents that can rank expose ``scores(obs) -> (B, C)`` (higher = better); in slate mode the slate's
order is the ranking. Every built-in agent can rank (random ranks at random, popularity by the
popularity signal); agents without ``scores`` have no ranking to compare, and ``eval/ndcg@k`` is
left out rather than faked from one chosen item.

Checkpoints (every ``checkpoint_every`` user-steps, on SIGTERM/SIGINT, and at the end) hold the
agent (``agent.save``), the training env's ``state_dict()``, the metric writer's position, the
global RNG states and this protocol's own state (schedules, partial window, totals), each written
into a temporary directory that is renamed into place: a checkpoint either exists whole or not at
all. Resuming from one replays the rest of the run exactly for agents whose ``save``/``load`` keep
their whole state (our ``OnlineAgent``s): the final metrics equal those of an uninterrupted run.
"""

from __future__ import annotations

import inspect
import logging
import math
import os
import pickle
import random
import shutil
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from agents.base import StepCallback, Transition
from experiments.config_validation import ProtocolConfig
from experiments.lifelong_metrics import summarize_lifelong
from experiments.metrics import LIFELONG_KEYS, MetricWriter

log = logging.getLogger(__name__)

CHECKPOINT_PREFIX = "step_"
RATE_KEYS = ("reward", "ctr", "regret")  # online/<key>: per user-step means


class RunInterrupted(Exception):
    """Training stopped on a signal after writing a checkpoint; resume to continue."""

    def __init__(self, signal_name: str, step: int, checkpoint: Path | None) -> None:
        super().__init__(f"interrupted by {signal_name} at step {step}; checkpoint: {checkpoint}")
        self.signal_name = signal_name
        self.step = step
        self.checkpoint = checkpoint


# ---------------------------------------------------------------------------------------- helpers
def ndcg_at_k(scores: np.ndarray, relevance: np.ndarray, k: int) -> np.ndarray:
    """NDCG@k per row of the ranking induced by ``scores`` against graded ``relevance`` (linear gains).

    Negative relevance is clipped to 0. Rows whose ideal DCG is 0 (nothing relevant) give ``nan``.
    """
    scores = np.asarray(scores, dtype=np.float64)
    rel = np.maximum(np.asarray(relevance, dtype=np.float64), 0.0)
    k = min(int(k), rel.shape[1])
    discounts = 1.0 / np.log2(np.arange(2, k + 2))
    order = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    dcg = np.take_along_axis(rel, order, axis=1) @ discounts
    ideal = -np.sort(-rel, axis=1)[:, :k] @ discounts
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(ideal > 0, dcg / np.where(ideal > 0, ideal, 1.0), np.nan)


def slate_ndcg_at_k(slates: np.ndarray, relevance: np.ndarray, k: int) -> np.ndarray:
    """NDCG@k of slates (``(B, s)`` candidate indices, best first) against ``relevance``."""
    rel = np.maximum(np.asarray(relevance, dtype=np.float64), 0.0)
    slates = np.asarray(slates)[:, :k]
    k = slates.shape[1]
    discounts = 1.0 / np.log2(np.arange(2, k + 2))
    dcg = np.take_along_axis(rel, slates, axis=1) @ discounts
    ideal = -np.sort(-rel, axis=1)[:, :k] @ discounts
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(ideal > 0, dcg / np.where(ideal > 0, ideal, 1.0), np.nan)


def batched_info(info: Any) -> Mapping[str, Any]:
    """Accept both the batched info dict and SB3's list of per-env dicts."""
    if isinstance(info, Mapping):
        return info
    if isinstance(info, list | tuple) and info and isinstance(info[0], Mapping):
        keys = set(info[0]).intersection(*info[1:])
        return {k: np.asarray([d[k] for d in info]) for k in keys}
    return {}


def _global_rng_state() -> dict[str, Any]:
    import torch

    numpy_state = np.random.get_state()  # noqa: NPY002 — SB3 draws from the global numpy RNG
    return {"python": random.getstate(), "numpy": numpy_state, "torch": torch.get_rng_state()}


def _set_global_rng_state(state: Mapping[str, Any]) -> None:
    import torch

    random.setstate(state["python"])
    np.random.set_state(state["numpy"])  # noqa: NPY002
    torch.set_rng_state(state["torch"])


def latest_checkpoint(checkpoint_dir: str | Path) -> Path | None:
    """The most recent complete checkpoint directory, or ``None``."""
    checkpoint_dir = Path(checkpoint_dir)
    if not checkpoint_dir.is_dir():
        return None
    complete = [
        p
        for p in checkpoint_dir.iterdir()
        if p.is_dir()
        and p.name.startswith(CHECKPOINT_PREFIX)
        and p.name[len(CHECKPOINT_PREFIX) :].isdigit()
    ]
    return max(complete, key=lambda p: int(p.name[len(CHECKPOINT_PREFIX) :]), default=None)


# ---------------------------------------------------------------------------------------- protocol
class LifelongProtocol(StepCallback):
    """Online metrics, periodic greedy evaluation and checkpoints around ``agent.learn``.

    Parameters
    ----------
    train_env: the (vector) env the agent learns on; its ``state_dict`` goes into checkpoints.
    make_eval_env: builds the evaluation env (a follower of ``train_env``'s current world; called at
        every evaluation so that it always follows the live world). ``None``: no evaluation.
    writer: where metrics go.
    settings: the ``protocol`` config section.
    checkpoint_dir: where checkpoints live.
    on_progress: called as ``on_progress(num_timesteps, latest_window_metrics)`` after every step.
    on_eval: called as ``on_eval(num_timesteps, summary)`` after every evaluation, with the summary
        so far (the keys of ``summary.json``; ``eval/*`` from this evaluation). It may raise to
        stop the run (e.g. ``optuna.TrialPruned`` in ``recsim-tune``).
    """

    def __init__(
        self,
        train_env: Any,
        make_eval_env: Callable[[], Any] | None,
        writer: MetricWriter,
        settings: ProtocolConfig,
        checkpoint_dir: str | Path,
        on_progress: Callable[[int, Mapping[str, float]], None] | None = None,
        on_eval: Callable[[int, Mapping[str, Any]], None] | None = None,
    ) -> None:
        self.train_env = train_env
        self.make_eval_env = make_eval_env
        self.writer = writer
        self.settings = settings
        self.checkpoint_dir = Path(checkpoint_dir)
        self.on_progress = on_progress
        self.on_eval = on_eval
        self.agent: Any = None
        self.stop_requested: str | None = None  # set by a signal handler: checkpoint and stop
        self._window_clock = time.perf_counter()
        self._excluded = 0.0  # time inside eval/checkpoint during the current window
        self.state = self._initial_state()

    def _initial_state(self) -> dict[str, Any]:
        s = self.settings
        return {
            "num_timesteps": 0,
            "completed": False,
            "next_log": s.log_every,
            "next_eval": s.eval_every if s.eval_every > 0 else math.inf,
            "next_checkpoint": s.checkpoint_every if s.checkpoint_every > 0 else math.inf,
            "eval_index": 0,
            "last_eval_step": -1,
            # stream totals
            "steps": 0,
            "reward": 0.0,
            "ctr": 0.0,
            "regret": 0.0,
            "sessions": 0,
            "session_steps": 0,
            "train_time": 0.0,
            # current window
            "window": self._empty_window(),
            "session_len": None,  # (B,) steps into each user's current session
            "drift_event_steps": [],
            # one entry per logged window: what the lifelong metrics are computed from
            "window_steps": [],
            "window_rewards": [],
            "window_regrets": [],
            "window_counts": [],
            "window_phases": [],
            "phase": None,  # info["drift_phase"] of the latest step
            "last_window": {},
            "last_eval": {},
            "last_train": {},
            "last_obs": None,
            "last_info": None,
        }

    @staticmethod
    def _empty_window() -> dict[str, Any]:
        return {
            "steps": 0,
            "reward": 0.0,
            "ctr": 0.0,
            "regret": 0.0,
            "sessions": 0,
            "session_steps": 0,
            "drift_events": 0,
            "train": {},  # key -> [sum, count]
        }

    @property
    def num_timesteps(self) -> int:
        return int(self.state["num_timesteps"])

    @property
    def completed(self) -> bool:
        return bool(self.state["completed"])

    # ------------------------------------------------------------------------------ the run
    def run(self, agent: Any) -> dict[str, Any]:
        """Train ``agent`` for the rest of ``total_steps``, then evaluate, checkpoint, summarise."""
        self.agent = agent
        remaining = self.settings.total_steps - self.num_timesteps
        if not self.completed and remaining > 0:
            agent.learn(remaining, callback=self)
        if self.stop_requested:
            ckpt = self.save_checkpoint()
            self.writer.write_summary(self.summary(status="interrupted"), sinks=False)
            raise RunInterrupted(self.stop_requested, self.num_timesteps, ckpt)
        if not self.completed:
            self._finish()
        return self.summary(status="completed")

    def _finish(self) -> None:
        if self.state["window"]["steps"] > 0:
            self._flush_window()
        if self.settings.final_eval and self.state["last_eval_step"] != self.num_timesteps:
            self._evaluate()
        self.state["completed"] = True
        self.save_checkpoint()

    # ------------------------------------------------------------------------------ callback
    def on_training_start(self, agent: Any) -> None:
        self.agent = agent
        self._window_clock = time.perf_counter()
        self._excluded = 0.0

    def on_step(self, transition: Transition) -> bool:
        st = self.state
        info = batched_info(transition.info)
        rewards = np.asarray(transition.rewards, dtype=np.float64).reshape(-1)
        n = rewards.shape[0]
        w = st["window"]
        w["steps"] += n
        w["reward"] += float(rewards.sum())
        if "clicked" in info:
            w["ctr"] += float(np.sum(info["clicked"]))
        if "regret" in info:
            w["regret"] += float(np.sum(info["regret"]))
        done = np.logical_or(transition.terminated, transition.truncated).reshape(-1)
        if st["session_len"] is None or len(st["session_len"]) != n:
            st["session_len"] = np.zeros(n, dtype=np.int64)
        lengths = st["session_len"]
        lengths += 1
        if done.any():
            w["sessions"] += int(done.sum())
            w["session_steps"] += int(lengths[done].sum())
            lengths[done] = 0
        st["num_timesteps"] = int(transition.num_timesteps)
        if "drift_phase" in info:
            st["phase"] = int(np.asarray(info["drift_phase"]).reshape(-1)[0])  # population regime
        if "drift_event" in info and np.any(info["drift_event"]):
            w["drift_events"] += 1
            st["drift_event_steps"].append(self.num_timesteps)
        for key, value in (transition.metrics or {}).items():
            try:
                value = float(value)
            except (TypeError, ValueError):
                continue
            if math.isfinite(value):
                acc = w["train"].setdefault(key, [0.0, 0])
                acc[0] += value
                acc[1] += 1
        # what the agent sees next: needed to resume an OnlineAgent without resetting the env
        st["last_obs"], st["last_info"] = transition.next_obs, transition.info

        step = self.num_timesteps
        if step >= st["next_log"]:
            self._flush_window()
            st["next_log"] = (step // self.settings.log_every + 1) * self.settings.log_every
        if step >= st["next_eval"]:
            self._evaluate()
            st["next_eval"] = (step // self.settings.eval_every + 1) * self.settings.eval_every
        if step >= st["next_checkpoint"]:
            every = self.settings.checkpoint_every
            st["next_checkpoint"] = (step // every + 1) * every
            self.save_checkpoint()
        if self.on_progress is not None:
            self.on_progress(step, st["last_window"])
        if self.stop_requested:
            return False
        return step < self.settings.total_steps

    def on_log(self, scalars: dict[str, float], num_timesteps: int) -> None:
        """Scalars logged outside ``on_step`` (e.g. SB3's at each logger dump, which the SB3
        adapters already alias onto our schema: ``train/learning_rate`` → ``train/lr``, ...)."""
        self.writer.write(int(num_timesteps), scalars)

    # ------------------------------------------------------------------------------ metrics
    def _flush_window(self) -> None:
        st, w = self.state, self.state["window"]
        now = time.perf_counter()
        elapsed = max(now - self._window_clock - self._excluded, 1e-9)
        self._window_clock, self._excluded = now, 0.0
        st["train_time"] += elapsed
        steps = max(w["steps"], 1)
        st["steps"] += w["steps"]
        for key in RATE_KEYS:
            st[key] += w[key]
        st["sessions"] += w["sessions"]
        st["session_steps"] += w["session_steps"]
        metrics = {
            "online/reward": w["reward"] / steps,
            "online/ctr": w["ctr"] / steps,
            "online/regret": w["regret"] / steps,
            "online/cumulative_regret": st["regret"],
            "online/drift_events": float(w["drift_events"]),
        }
        if w["sessions"]:
            metrics["online/session_length"] = w["session_steps"] / w["sessions"]
        train = {key: total / count for key, (total, count) in w["train"].items()}
        st["last_window"] = metrics
        st["last_train"].update(train)
        st["window_steps"].append(self.num_timesteps)
        st["window_rewards"].append(metrics["online/reward"])
        st["window_regrets"].append(metrics["online/regret"])
        st["window_counts"].append(w["steps"])
        if st["phase"] is not None:
            st["window_phases"].append(st["phase"])
        st["window"] = self._empty_window()
        self.writer.write(
            self.num_timesteps, {**metrics, **train, "time/sps": w["steps"] / elapsed}
        )

    def _evaluate(self) -> None:
        if self.make_eval_env is None:
            return
        t0 = time.perf_counter()
        st = self.state
        seed = int(
            np.random.SeedSequence([self.settings.eval_seed, st["eval_index"]]).generate_state(1)[0]
        )
        metrics = evaluate(self.agent, self.make_eval_env(), seed=seed, ndcg_k=self.settings.ndcg_k)
        st["eval_index"] += 1
        st["last_eval_step"] = self.num_timesteps
        st["last_eval"] = metrics
        self.writer.write(self.num_timesteps, metrics)
        if self.on_eval is not None:
            self.on_eval(self.num_timesteps, self.summary(status="running"))
        self._excluded += time.perf_counter() - t0

    # ------------------------------------------------------------------------------ summary
    def summary(self, status: str = "completed") -> dict[str, Any]:
        """Flat summary: ``online/*`` over the whole stream, ``*_final`` last window, ``eval/*`` last eval."""
        st = self.state
        steps = st["steps"]
        out: dict[str, Any] = {
            "status": status,
            "num_timesteps": self.num_timesteps,
            "total_steps": self.settings.total_steps,
        }
        nan = math.nan
        out["online/reward"] = st["reward"] / steps if steps else nan
        out["online/ctr"] = st["ctr"] / steps if steps else nan
        out["online/regret"] = st["regret"] / steps if steps else nan
        out["online/session_length"] = (
            st["session_steps"] / st["sessions"] if st["sessions"] else nan
        )
        out["online/cumulative_regret"] = st["regret"]
        out["online/drift_events"] = len(st["drift_event_steps"])
        last = st["last_window"]
        for key in ("reward", "ctr", "regret", "session_length", "drift_events"):
            out[f"online/{key}_final"] = last.get(f"online/{key}", nan)
        for key in ("eval/return", "eval/ctr", "eval/regret", "eval/ndcg@k"):
            out[key] = st["last_eval"].get(key, nan)
        out["eval/ndcg_k"] = self.settings.ndcg_k
        out.update(st["last_train"])
        out["time/sps"] = steps / st["train_time"] if st["train_time"] > 0 else nan
        out.update(self.lifelong_metrics())
        out["lifelong/drift_event_steps"] = list(st["drift_event_steps"])
        return out

    def lifelong_metrics(self) -> dict[str, float]:
        """``lifelong/*`` from the logged windows (recovery, forgetting, plasticity)."""
        st = self.state
        if not st["window_steps"]:
            return dict.fromkeys(LIFELONG_KEYS, math.nan)
        return summarize_lifelong(
            st["window_steps"],
            st["window_rewards"],
            window=self.settings.lifelong_window,
            event_steps=st["drift_event_steps"],
            phases=st["window_phases"]
            if len(st["window_phases"]) == len(st["window_steps"])
            else None,
            regrets=st["window_regrets"],
            regret_counts=st["window_counts"],
        )

    # ------------------------------------------------------------------------------ checkpoints
    def save_checkpoint(self) -> Path:
        """Write a complete checkpoint for the current step; keep the newest ``keep_checkpoints``."""
        t0 = time.perf_counter()
        step = self.num_timesteps
        final = self.checkpoint_dir / f"{CHECKPOINT_PREFIX}{step:012d}"
        tmp = self.checkpoint_dir / f".tmp-{final.name}-{os.getpid()}"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        save_params = inspect.signature(self.agent.save).parameters
        if self.settings.checkpoint_replay and "include_replay" in save_params:
            self.agent.save(tmp / "agent", include_replay=True)  # exact resume needs the buffer
        else:
            self.agent.save(tmp / "agent")
        payload = {
            "agent_class": f"{type(self.agent).__module__}.{type(self.agent).__qualname__}",
            "protocol": self.state,
            "settings": asdict(self.settings),
            "env": self.train_env.state_dict(),
            "writer": self.writer.state_dict(),
            "rng": _global_rng_state(),
        }
        with open(tmp / "state.pkl", "wb") as f:
            pickle.dump(payload, f, protocol=pickle.HIGHEST_PROTOCOL)
            f.flush()
            os.fsync(f.fileno())
        if (
            final.exists()
        ):  # the same step checkpointed twice (e.g. stop right after a periodic one)
            shutil.rmtree(final)
        tmp.rename(final)  # atomic: the checkpoint appears whole
        self.writer.write_summary(self.summary(status="running"), sinks=False)
        for old in self._checkpoints()[: -self.settings.keep_checkpoints]:
            shutil.rmtree(old, ignore_errors=True)
        self._excluded += time.perf_counter() - t0
        log.debug("checkpoint %s", final)
        return final

    def _checkpoints(self) -> list[Path]:
        return sorted(
            (
                p
                for p in self.checkpoint_dir.iterdir()
                if p.is_dir() and p.name.startswith(CHECKPOINT_PREFIX)
            ),
            key=lambda p: int(p.name[len(CHECKPOINT_PREFIX) :]),
        )

    def restore(self, checkpoint: str | Path, agent_cls: type) -> Any:
        """Load a checkpoint: returns the restored agent; env, writer, RNGs and state are restored."""
        checkpoint = Path(checkpoint)
        with open(checkpoint / "state.pkl", "rb") as f:
            payload = pickle.load(f)
        agent = agent_cls.load(checkpoint / "agent", env=self.train_env)
        self.train_env.load_state_dict(payload["env"])
        self.writer.load_state_dict(payload["writer"])
        _set_global_rng_state(payload["rng"])
        self.state = payload["protocol"]
        if self.state["completed"] and self.settings.total_steps > self.num_timesteps:
            self.state["completed"] = False  # a finished run extended with a larger total_steps
        self.agent = agent
        # Hand the agent the observation (and info) it was about to act on: an OnlineAgent or SB3
        # model without one would reset, i.e. re-seed and re-create, the world at the next learn().
        if hasattr(agent, "_last_obs") and self.state["last_obs"] is not None:
            agent._last_obs = self.state["last_obs"]
            agent._last_info = self.state["last_info"]
        return agent


# ---------------------------------------------------------------------------------------- evaluation
def ranking_function(agent: Any) -> Callable[[np.ndarray, Any], np.ndarray] | None:
    """How to get the agent's greedy score of every candidate, ``(B, C)``, if it has one.

    ``scores(obs, *, explore, info)`` (the baselines), ``scores(obs)`` (plug-ins) or
    ``q_values(obs)`` (our DQN). ``None``: the agent cannot rank candidates.
    """
    scores = getattr(agent, "scores", None)
    if callable(scores):
        params = inspect.signature(scores).parameters
        if "explore" in params or "info" in params:
            return lambda obs, info: scores(obs, explore=False, info=info)
        return lambda obs, info: scores(obs)
    q_values = getattr(agent, "q_values", None)
    if callable(q_values):
        return lambda obs, info: q_values(obs)
    return None


def evaluate(
    agent: Any, env: Any, *, seed: int, ndcg_k: int = 5, max_steps: int = 1_000_000
) -> dict[str, float]:
    """Greedy evaluation: one session per user of ``env`` (all in parallel), from ``reset(seed)``.

    Returns ``eval/return`` (mean session return), ``eval/ctr`` and ``eval/regret`` (per step, over
    all steps of those sessions) and ``eval/ndcg@k`` when the agent can rank (see module doc).
    """
    obs, info = env.reset(seed=seed)
    num = int(env.num_envs)
    active = np.ones(num, dtype=bool)
    returns = np.zeros(num)
    steps = clicks = regret = 0.0
    ndcg_sum, ndcg_n = 0.0, 0
    scores_fn = ranking_function(agent)
    for _ in range(max_steps):
        actions = agent.act(obs, explore=False, info=info)
        relevance = info.get("expected_reward") if isinstance(info, Mapping) else None
        if relevance is not None:
            rel = np.asarray(relevance)[active]
            if scores_fn is not None:
                values = ndcg_at_k(np.asarray(scores_fn(obs, info))[active], rel, ndcg_k)
            elif np.ndim(actions) == 2:  # slate mode: the slate is a ranking
                values = slate_ndcg_at_k(np.asarray(actions)[active], rel, ndcg_k)
            else:
                values = None
            if values is not None:
                ok = ~np.isnan(values)
                ndcg_sum += float(values[ok].sum())
                ndcg_n += int(ok.sum())
        obs, rewards, terminated, truncated, info = env.step(actions)
        returns[active] += np.asarray(rewards)[active]
        steps += float(active.sum())
        if "clicked" in info:
            clicks += float(np.sum(np.asarray(info["clicked"])[active]))
        if "regret" in info:
            regret += float(np.sum(np.asarray(info["regret"])[active]))
        active &= ~np.logical_or(terminated, truncated)
        if not active.any():
            break
    else:
        raise RuntimeError(f"evaluation sessions did not end within {max_steps} steps")
    metrics = {
        "eval/return": float(returns.mean()),
        "eval/ctr": clicks / steps,
        "eval/regret": regret / steps,
    }
    if ndcg_n:
        metrics["eval/ndcg@k"] = ndcg_sum / ndcg_n
    return metrics
