"""Drift recovery on ground truth, fed at every vector step: the protocol part behind
``lifelong/recovery_*`` (definitions: :mod:`experiments.analysis.recovery`).

:class:`DriftRecovery` hands :class:`~experiments.analysis.recovery.RecoveryTracker` the true
expected reward of the recommended candidate and of the best candidate of every user at every
vector step. Both come from the ``expected_reward`` of the info that came with the observation the
agent acted on — the *previous* step's info (the candidates of its ``next_obs``), which this part
keeps, and checkpoints, for that reason. The first vector step of a run is not measured: the
reset's info does not reach the callback (it only shortens the baseline of an event in the first
``recovery_baseline`` user-steps).

Why ground truth: the share of the myopic oracle's expected reward is drift-invariant (the oracle
is at 1 whatever the world does), so a dip is the agent's, not the world's. Why per vector step:
recovery times of a few hundred user-steps are invisible in ``log_every`` windows, and windows
aligned with the jumps mis-attribute events (the bug of issue 12).

Not measured (every ``lifelong/recovery_*`` key ``nan``, the reason logged once and written as
``lifelong/recovery_skipped``): slate mode (the value of the best slate is not in ``info``: the
env's own ``regret`` there is against a top-k approximation, not an exact oracle) and envs
without ``expected_reward`` in ``info``.

**Frozen at each event** (``protocol.recovery_counterfactual``): at every drift event a copy of
the agent (``save``/``load`` of its checkpoint, without replay) on a copy of the training env goes
on acting with the behaviour policy it had at the event (``act(explore=True)``, so its level
before the event is the agent's own) but never learns, for ``recovery_horizon`` user-steps; a copy
of the tracker measures it against the same pre-event level. This is the counterfactual "what if
the agent had stopped adapting at this event", event by event: a learn-then-freeze agent
(``agent=frozen``) is frozen at *one* time and is, after its first event, foreign to every later
regime. The main stream is untouched (the copy has its own env, RNGs and agent); the results are
part of this part's state, so resume stays exact. Cost: ``recovery_horizon`` user-steps of acting
per event. Keys ``lifelong/frozen_recovery_*``.

At the end the curves go into the run dir (``RunDir.recovery_path``, ``recovery.npz``, a plain
data tree: :mod:`recsim_env.state_io`) for ``recsim-compare``'s recovery plot.
"""

from __future__ import annotations

import copy
import logging
import math
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from agents.base import Transition, agent_traits
from experiments.analysis.recovery import (
    RECOVERY_KEYS,
    EventRecovery,
    RecoveryTracker,
    chosen_and_best,
    summarize_recovery,
)
from experiments.run.config import ProtocolConfig
from experiments.run.steps import ProtocolCallback, Run
from recsim_env.state_io import save_tree

log = logging.getLogger(__name__)

__all__ = ["FROZEN_PREFIX", "DriftRecovery", "frozen_copy"]

FROZEN_PREFIX = "lifelong/frozen_"
FORMAT = 1


class DriftRecovery(ProtocolCallback):
    """The protocol part that feeds the recovery tracker (module doc); ``"recovery"`` in
    checkpoints."""

    key = "recovery"

    def __init__(self, settings: ProtocolConfig) -> None:
        self.settings = settings
        self.tracker = self._new_tracker()
        self.candidates: np.ndarray | None = None  # expected_reward (B, C) of the latest info
        self.skipped: str | None = None if settings.recovery else "protocol.recovery=false"
        self.frozen: list[dict[str, Any]] = []  # per event: record, value and best rows

    def _new_tracker(self) -> RecoveryTracker:
        s = self.settings
        return RecoveryTracker(
            baseline=s.recovery_baseline,
            horizon=s.recovery_horizon,
            sustain=s.recovery_sustain,
            tolerance=s.recovery_tolerance,
        )

    # ------------------------------------------------------------------ the hooks
    def on_step(self, run: Run, t: Transition, info: Mapping[str, Any]) -> None:
        if self.skipped is not None:
            return
        expected = info.get("expected_reward")
        actions = np.asarray(t.actions)
        if expected is None:
            return self._skip("the env's info has no 'expected_reward' (no ground truth)")
        if actions.ndim != 1:
            return self._skip(
                "slate mode: the value of the best slate is not in info, so the share of the "
                "oracle is not exact"
            )
        if self.candidates is not None and self.candidates.shape[0] == actions.shape[0]:
            chosen, best = chosen_and_best({"expected_reward": self.candidates}, actions)
            event = np.asarray(info.get("drift_event", False))
            self.tracker.update(t.num_timesteps, chosen, best, event)
            if self.settings.recovery_counterfactual and np.any(event):
                with run.timer.paused():  # measurement, not training (time/sps)
                    self._frozen_at_event(run, t, info)
        self.candidates = np.array(expected, dtype=np.float64)

    def on_end(self, run: Run) -> None:
        if self.skipped is None and self.tracker.num_events:
            save_tree(run.run_dir.recovery_path, self.curves())

    def _skip(self, reason: str) -> None:
        self.skipped = reason
        log.warning("drift recovery not measured: %s", reason)

    # ------------------------------------------------------------------ frozen at each event
    def _frozen_at_event(self, run: Run, t: Transition, info: Mapping[str, Any]) -> None:
        if run.agent is None:
            return
        tracker = copy.deepcopy(self.tracker)
        index = tracker.num_events - 1
        agent, env = frozen_copy(run.agent, run.train_env)
        uses_info = agent_traits(agent).act_uses_info
        obs, candidates, step = t.next_obs, info, int(t.num_timesteps)
        batch = int(np.asarray(t.actions).shape[0])
        steps = tracker.post_bins * tracker.bin // batch  # the horizon ...
        steps = min(steps, (self.settings.total_steps - step) // batch)  # ... within the run
        for _ in range(steps):
            if uses_info:
                actions = agent.act(obs, explore=True, info=candidates)
            else:
                actions = agent.act(obs, explore=True)
            obs, _, _, _, next_info = env.step(actions)
            step += batch
            chosen, best = chosen_and_best(candidates, actions)
            flag = np.asarray(next_info.get("drift_event", False))
            tracker.update(step, chosen, best, flag)
            candidates = next_info
            if np.any(flag):  # the next event: censored there, as in the main stream
                break
        curves = tracker.curves()
        self.frozen.append(
            {
                "record": tracker.records()[index].to_dict(),
                "value": curves["value"][index],
                "best": curves["best"][index],
            }
        )

    # ------------------------------------------------------------------ results
    def summary(self) -> dict[str, Any]:
        nan = math.nan
        if self.skipped is not None:
            out: dict[str, Any] = dict.fromkeys(RECOVERY_KEYS, nan)
            out["lifelong/recovery_skipped"] = self.skipped
            return out
        out = dict(self.tracker.summary())
        if self.settings.recovery_counterfactual:
            records = [EventRecovery(**f["record"]) for f in self.frozen]
            out.update(summarize_recovery(records, prefix=FROZEN_PREFIX))
        return out

    def curves(self) -> dict[str, Any]:
        """What ``recovery.npz`` holds: settings, per-event records and curves (and those of the
        frozen copies), all plain data."""
        c = self.tracker.curves()
        tree: dict[str, Any] = {
            "format": FORMAT,
            "settings": self.tracker.settings(),
            "offsets": c["offsets"],
            "value": c["value"],
            "best": c["best"],
            "records": [r.to_dict() for r in self.tracker.records()],
        }
        if self.settings.recovery_counterfactual:
            width = c["value"].shape[1] if c["value"].ndim == 2 else 0
            tree["frozen"] = {
                "value": np.array([f["value"] for f in self.frozen]).reshape(-1, width),
                "best": np.array([f["best"] for f in self.frozen]).reshape(-1, width),
                "records": [f["record"] for f in self.frozen],
            }
        return tree

    # ------------------------------------------------------------------ checkpoints
    def state_dict(self) -> dict[str, Any]:
        return {
            "tracker": self.tracker.state_dict(),
            "candidates": self.candidates,
            "skipped": self.skipped,
            "frozen": list(self.frozen),
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.tracker = self._new_tracker()
        self.tracker.load_state_dict(state["tracker"])
        cand = state.get("candidates")
        self.candidates = None if cand is None else np.array(cand, dtype=np.float64)
        self.skipped = state.get("skipped")
        self.frozen = [
            {
                "record": dict(f["record"]),
                "value": np.array(f["value"], dtype=np.float64),
                "best": np.array(f["best"], dtype=np.float64),
            }
            for f in state.get("frozen", [])
        ]


def frozen_copy(agent: Any, env: Any) -> tuple[Any, Any]:
    """A copy of ``agent`` (through its own ``save``/``load``, without replay) acting on a deep
    copy of ``env``: the original and its env are untouched."""
    env_copy = copy.deepcopy(env)
    with tempfile.TemporaryDirectory(prefix="recsim-frozen-") as tmp:
        path = Path(tmp) / "agent"
        agent.save(path)
        from experiments.run.checkpoint import load_kwargs

        kwargs = load_kwargs(type(agent), agent, trust=True)  # our own file, just written
        try:
            clone = type(agent).load(path, env=env_copy, **kwargs)
        except TypeError:  # a plug-in whose load takes no env
            clone = type(agent).load(path)
    return clone, env_copy
