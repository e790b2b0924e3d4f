"""Returning users: each slot hosts one user's *lifetime*, a sequence of sessions with gaps between.

Why this shape: a replay-based learner needs the (s, a, r, s') of a session end to lead to the same
user's next session, so a user's sessions are contiguous in its slot's stream; slots stay
independent of one another (vector ≡ single, counter-based randomness), because a user's return is
drawn from its own slot's stream and the world is never changed by users.

The model (``returning_users=True``; every formula is vectorised over the slots that need it):

* A session ends when the time budget runs out or at ``max_session_steps``. With ``σ`` the user's
  satisfaction at that moment (a peak-end judgement: ``σ`` is an average over the last few clicks),
  the user comes back with probability
  ``p_return(σ) = p_min + (p_max − p_min) · sigmoid(k · σ)`` after a gap of
  ``g ~ Geometric({1, 2, …})`` ticks with mean ``m(σ) = g_min + (g_max − g_min) · sigmoid(−k · σ)``:
  satisfied users come back more often and sooner (return-time / retention models of long-term
  engagement, e.g. Cai et al. 2023, "Reinforcing User Retention in a Billion Scale Short Video
  Recommender System").
* **User time** counts the steps served plus the gaps away. The lifetime ends when the user does not
  come back (churn) or when user time reaches ``lifetime_ticks`` (the observation window). The cap is
  in user time, not in sessions, so that users who come back sooner fit more sessions into it: this
  is what makes retention worth something.
* **While away** for ``g`` ticks the user keeps drifting and resting, in closed form: interest
  ``u ← μ + (1 − drift_pull)^g (u − μ)`` (pulled towards the current population mean μ), fatigue
  ``φ ← ρ^g φ``, satisfaction ``σ ← (1 − satisfaction_rate/4)^g σ`` (the idle rates of a session);
  the new session gets a fresh time budget. The world clock does not jump (other slots go on);
  μ is the population mean at the moment of return.
* ``horizon="session"``: an RL episode is one session (terminated at its end, as without returning
  users), the user still comes back in the next episode of the slot. ``horizon="lifetime"``: the
  episode is the lifetime; ``terminated`` on churn, ``truncated`` at the lifetime cap.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from recsim_env.choice import sigmoid
from recsim_env.config import SimConfig

_FIELDS = (
    "user_time",
    "visits",
    "last_gap",
    "completion",
    "lifetime_return",
    "lifetime_steps",
    "pending",
    "pending_gap",
    "pending_budget",
)

USER_FEATURES = ("recent_completion", "recency", "visits", "lifetime")
VISITS_SCALE = 10.0  # visits feature: 1 − exp(−(sessions before this one) / VISITS_SCALE)


def return_prob(cfg: SimConfig, satisfaction: np.ndarray) -> np.ndarray:
    """Probability that a user whose session ends with satisfaction ``σ`` comes back."""
    s = sigmoid(cfg.return_sensitivity * np.asarray(satisfaction, np.float64))
    return cfg.return_prob_min + (cfg.return_prob_max - cfg.return_prob_min) * s


def gap_mean(cfg: SimConfig, satisfaction: np.ndarray) -> np.ndarray:
    """Mean gap (ticks away, ≥ 1) before a return: falls with satisfaction."""
    s = sigmoid(-cfg.return_sensitivity * np.asarray(satisfaction, np.float64))
    return cfg.gap_mean_min + (cfg.gap_mean_max - cfg.gap_mean_min) * s


def geometric_gap(mean: np.ndarray, u: np.ndarray) -> np.ndarray:
    """Geometric gaps on {1, 2, …} with the given means, by inversion of uniforms ``u`` in (0, 1)."""
    mean = np.asarray(mean, np.float64)
    q = np.clip(1.0 - 1.0 / np.maximum(mean, 1.0), 0.0, 1.0 - 1e-12)  # P(gap > n) = q^n
    with np.errstate(divide="ignore"):
        n = np.ceil(np.log(u) / np.log(np.where(q > 0, q, 0.5)))
    return np.where(q > 0, np.maximum(n, 1.0), 1.0).astype(np.int64)


class Lifetimes:
    """Per-slot lifetime bookkeeping (arrays over the batch), next to :class:`~recsim_env.users.Users`.

    ``pending*`` hold a return decided at a session end that is applied at the start of the next
    episode (``horizon="session"`` in a single env, where ``reset()`` starts it).
    """

    def __init__(self, cfg: SimConfig, batch: int) -> None:
        self.cfg = cfg
        self.user_time = np.zeros(batch, np.int64)  # steps served + gaps away
        self.visits = np.zeros(batch, np.int64)  # sessions started, this one included
        self.last_gap = np.zeros(batch, np.int64)  # ticks away before this session (0: new user)
        self.completion = np.zeros(batch, np.float32)  # observed: EMA of consumed items' completion
        self.lifetime_return = np.zeros(batch, np.float64)
        self.lifetime_steps = np.zeros(batch, np.int64)
        self.pending = np.zeros(batch, bool)
        self.pending_gap = np.zeros(batch, np.int64)
        self.pending_budget = np.zeros(batch, np.float64)  # uniform for the next session's budget

    def start(self, rows: np.ndarray) -> None:
        """A new user's lifetime starts in ``rows``."""
        self.user_time[rows] = 0
        self.visits[rows] = 1
        self.last_gap[rows] = 0
        self.completion[rows] = 0.0
        self.lifetime_return[rows] = 0.0
        self.lifetime_steps[rows] = 0
        self.pending[rows] = False

    def served(self, reward: np.ndarray, clicked: np.ndarray, completion: np.ndarray) -> None:
        """One step served to every slot: the user clock, the lifetime return, observed completion."""
        self.user_time += 1
        self.lifetime_steps += 1
        self.lifetime_return += reward
        self.completion += (self.cfg.completion_rate * clicked) * (completion - self.completion)

    def come_back(self, users: Any, rows: np.ndarray, population_mean: np.ndarray) -> None:
        """Apply the pending returns of ``rows``: ``g`` ticks away in closed form, a new session."""
        cfg = self.cfg
        gap = self.pending_gap[rows]
        g = gap[:, None].astype(np.float64)
        keep = (1.0 - cfg.drift_pull) ** g
        users.interest[rows] = np.clip(
            population_mean + keep * (users.interest[rows] - population_mean), -1.0, 1.0
        )
        users.fatigue[rows] *= (cfg.fatigue_decay**g).astype(np.float32)
        users.satisfaction[rows] *= ((1.0 - 0.25 * cfg.satisfaction_rate) ** gap).astype(np.float32)
        users.budget[rows] = (
            cfg.budget_min + (cfg.budget_max - cfg.budget_min) * (self.pending_budget[rows])
        )
        users.session_step[rows] = 0
        users.session_return[rows] = 0.0
        self.user_time[rows] += gap
        self.visits[rows] += 1
        self.last_gap[rows] = gap
        self.pending[rows] = False

    def features(self, rows: np.ndarray) -> np.ndarray:
        """The observed per-user features ``(len(rows), 4)``, all in [0, 1] (see USER_FEATURES)."""
        cfg = self.cfg
        out = np.empty((len(rows), len(USER_FEATURES)), np.float32)
        out[:, 0] = self.completion[rows]
        out[:, 1] = 1.0 - np.exp(-self.last_gap[rows] / cfg.gap_mean_max)
        out[:, 2] = 1.0 - np.exp(-np.maximum(self.visits[rows] - 1, 0) / VISITS_SCALE)
        out[:, 3] = np.minimum(self.user_time[rows] / cfg.lifetime_ticks, 1.0)
        return out

    def state_dict(self) -> dict[str, Any]:
        return {name: getattr(self, name).copy() for name in _FIELDS}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for name in _FIELDS:
            getattr(self, name)[...] = state[name]
