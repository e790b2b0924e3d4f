"""The returning users' part of one step of :class:`recsim_env.core.BatchedCore` (mixed into it).

With ``returning_users`` (see :mod:`recsim_env.returning`) a step also decides, for every session
that ended, whether and after which gap the user comes back, where episodes end (``horizon``), what
``final_info`` says about an ended lifetime, and the long-term reference (``oracle_longterm``) that
long-term regret is measured against. Kept here, apart from the step itself, so that the core reads
as the order of one step; these are the same methods on the same object (no extra call per step).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from recsim_env import rng as crng
from recsim_env.choice import slate_click_probs
from recsim_env.config import SimConfig
from recsim_env.returning import Lifetimes, gap_mean, geometric_gap, return_prob
from recsim_env.users import Users

_RETURN_STREAM = 3  # index of the return stream in BatchedCore._keys (_KEY_RETURN's)


class LifetimeSteps:
    """Returning users and the long-term reference; state lives on the core (set up there)."""

    cfg: SimConfig
    batch: int
    counter: int
    slots: np.ndarray
    users: Users
    lifetimes: Lifetimes
    _keys: list[Any]
    _rows: np.ndarray
    _scores: np.ndarray
    _lt_value: np.ndarray
    _lt_gain: np.ndarray
    _lt_action: np.ndarray
    _lt_best: np.ndarray

    def _lifetime_step(self, terminated, truncated, reward, clicked, engagement, item_length):
        """Returning users: after a step, decide who comes back, when, and where episodes end."""
        cfg, lt, users = self.cfg, self.lifetimes, self.users
        session_end = terminated | truncated
        completion = np.where(clicked, engagement / (2.0 * item_length), 0.0)
        lt.served(reward, clicked, completion.astype(np.float32))
        cap = lt.user_time >= cfg.lifetime_ticks
        n = self.batch
        comes_back = np.zeros(n, bool)
        gap = np.zeros(n, np.int64)
        p_return = np.zeros(n, np.float32)
        ended = np.flatnonzero(session_end)
        if len(ended):
            u = crng.uniforms(self._keys[_RETURN_STREAM], self.slots[ended], self.counter, 3)
            sigma = users.satisfaction[ended]
            p = return_prob(cfg, sigma)
            p_return[ended] = p
            comes_back[ended] = u[:, 0] < p
            gap[ended] = geometric_gap(gap_mean(cfg, sigma), u[:, 1])
            lt.pending_budget[ended] = u[:, 2]
        returned = comes_back & (lt.user_time + gap < cfg.lifetime_ticks)
        churned = session_end & ~comes_back
        lifetime_end = churned | cap | (comes_back & ~returned)
        gap = np.where(returned, gap, 0)
        lt.pending_gap[returned] = gap[returned]
        lt.pending[returned] = True
        if cfg.horizon == "session":
            truncated = (truncated | cap) & ~terminated
        else:
            terminated = churned
            truncated = lifetime_end & ~churned
        info = {
            "session_end": session_end,
            "returned": returned,
            "churned": churned,
            "lifetime_end": lifetime_end,
            "gap": gap,
            "return_prob": p_return,
            "user_time": lt.user_time.copy(),
            "session_index": lt.visits.copy(),
            "lifetime_return": lt.lifetime_return.copy(),
        }
        return terminated, truncated, info

    def _lifetime_final_info(self, lifetime_end: np.ndarray) -> dict[str, np.ndarray]:
        lt = self.lifetimes
        return {
            "lifetime_end": lifetime_end.copy(),
            "lifetime_return": np.where(lifetime_end, lt.lifetime_return, 0.0),
            "lifetime_length": np.where(lifetime_end, lt.lifetime_steps, 0),
            "lifetime_sessions": np.where(lifetime_end, lt.visits, 0),
            "lifetime_time": np.where(
                lifetime_end, np.minimum(lt.user_time, self.cfg.lifetime_ticks), 0
            ),
        }

    def _longterm_regret(self, actions: np.ndarray, chosen: np.ndarray) -> np.ndarray:
        """Long-term regret of the action just taken under the reference score (≥ 0)."""
        rows = self._rows
        if not self.cfg.slate_mode:
            value = self._lt_value[rows, chosen]
        else:
            probs = slate_click_probs(self.cfg, np.take_along_axis(self._scores, actions, axis=1))
            value = (probs * np.take_along_axis(self._lt_gain, actions, axis=1)).sum(axis=1)
        return np.maximum(self._lt_best - value, 0.0).astype(np.float32)

    def _longterm_rows(self, rows, s, p, gain, every) -> None:
        """The long-term reference (``oracle_longterm``): score ``p·(e + λ·v)`` per candidate, its
        best action and value; the slate version mirrors :meth:`_oracle_rows`."""
        cfg = self.cfg
        value = p * gain
        if not cfg.slate_mode:
            action = value.argmax(axis=1)
            best = value[np.arange(len(rows)), action]
        else:
            k = cfg.slate_size
            top = np.argpartition(-value, k - 1, axis=1)[:, :k]
            order = np.argsort(-np.take_along_axis(value, top, axis=1), axis=1, kind="stable")
            action = np.take_along_axis(top, order, axis=1)
            probs = slate_click_probs(cfg, np.take_along_axis(s, action, axis=1))
            best = (probs * np.take_along_axis(gain, action, axis=1)).sum(axis=1)
        if every:
            self._lt_value, self._lt_gain, self._lt_action, self._lt_best = (
                value,
                gain,
                action,
                best,
            )
        else:
            self._lt_value[rows], self._lt_gain[rows] = value, gain
            self._lt_action[rows], self._lt_best[rows] = action, best
