"""Hidden user state over a batch and its endogenous dynamics (what recommendations cause).

All arrays have a leading batch axis ``B``; every update is one vectorised expression.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from recsim_env.config import SimConfig

_FIELDS = (
    "interest",
    "fatigue",
    "satisfaction",
    "budget",
    "history",
    "ctr",
    "session_step",
    "session_return",
)


class Users:
    """``real_index`` (calibrated envs only): which real user of the calibration each slot's user
    was drawn from (a row of its ``user_ids``), kept for the user's whole lifetime; ``centre``:
    that user's own interest (real vector + its noise) in the trajectory's starting frame."""

    def __init__(self, cfg: SimConfig, batch: int, *, calibrated: bool = False) -> None:
        k = cfg.num_topics
        self.cfg = cfg
        self.fields = _FIELDS + (("real_index", "centre") if calibrated else ())
        self.real_index: np.ndarray | None = np.zeros(batch, np.int64) if calibrated else None
        # the user's own interest in the trajectory's starting frame (drift moves it, see core)
        self.centre: np.ndarray | None = np.zeros((batch, k), np.float32) if calibrated else None
        self.interest = np.zeros((batch, k), np.float32)  # u ∈ [-1, 1]^K
        self.fatigue = np.zeros((batch, k), np.float32)  # φ ∈ [0, 1 + exposure_fatigue]
        self.satisfaction = np.zeros(batch, np.float32)  # σ ∈ [-1, 1]
        self.budget = np.zeros(batch, np.float32)  # remaining time budget b
        self.history = np.zeros((batch, k), np.float32)  # observed: EMA of clicked topics
        self.ctr = np.zeros(batch, np.float32)  # observed: EMA of clicks
        self.session_step = np.zeros(batch, np.int64)
        self.session_return = np.zeros(batch, np.float64)

    def spawn(
        self,
        rows: np.ndarray,
        mean: np.ndarray,
        noise: np.ndarray,
        budget_u: np.ndarray,
        real_index: np.ndarray | None = None,
        centre: np.ndarray | None = None,
    ) -> None:
        """New users in ``rows``: interests around ``mean`` (the population mean ``(K,)``, or one
        centre per row ``(len(rows), K)``: the real users they are drawn from), fresh session
        state."""
        cfg = self.cfg
        self.interest[rows] = np.clip(mean + cfg.user_noise * noise, -1.0, 1.0)
        if real_index is not None:
            assert self.real_index is not None and self.centre is not None, "Users(calibrated=True)"
            self.real_index[rows] = real_index
            self.centre[rows] = centre
        self.fatigue[rows] = 0.0
        self.satisfaction[rows] = 0.0
        self.budget[rows] = cfg.budget_min + (cfg.budget_max - cfg.budget_min) * budget_u
        self.history[rows] = 0.0
        self.ctr[rows] = 0.0
        self.session_step[rows] = 0
        self.session_return[rows] = 0.0

    def consume(
        self,
        clicked: np.ndarray,
        shown_topics: np.ndarray,
        topics: np.ndarray,
        quality: np.ndarray,
        appeal: np.ndarray,
        reward: np.ndarray,
    ) -> None:
        """Apply one step's consequences for every user at once.

        ``topics``/``quality``/``appeal`` describe the clicked item (any item where nobody clicked:
        ``clicked`` masks it); ``shown_topics`` the exposure (the shown item or the slate's mean).
        """
        cfg = self.cfg
        c = clicked.astype(np.float32)
        value = np.tanh(quality - cfg.clickbait_penalty * appeal)  # >0 satisfying, <0 click bait
        # Interest: pulled towards consumed topics, pushed away when quality disappoints; the step
        # is bounded by interest_lr and shrinks near saturation through (1 − u²) (stays in [-1, 1]).
        direction = np.tanh(2.0 * (quality - cfg.disappointment_quality)) * c
        self.interest += cfg.interest_lr * topics * (1.0 - self.interest**2) * direction[:, None]
        np.clip(self.interest, -1.0, 1.0, out=self.interest)
        # Fatigue grows on exposed and (more) on consumed topics, decays otherwise.
        rho = cfg.fatigue_decay
        self.fatigue *= rho
        self.fatigue += (1.0 - rho) * (cfg.exposure_fatigue * shown_topics + c[:, None] * topics)
        # Satisfaction tracks the value of what was consumed; idles back to neutral slowly.
        rate = np.where(clicked, cfg.satisfaction_rate, 0.25 * cfg.satisfaction_rate)
        self.satisfaction += rate * (value * c - self.satisfaction)
        # Time budget: every step costs 1; satisfying content refunds, click bait costs extra.
        self.budget += -1.0 + cfg.budget_refund * value * c
        h = cfg.history_decay
        self.history *= h
        self.history += (1.0 - h) * c[:, None] * topics
        self.ctr += 0.1 * (c - self.ctr)
        self.session_step += 1
        self.session_return += reward

    def pull_towards(self, target: np.ndarray, strength: float) -> None:
        """Exogenous drift reaches live users: interests move a share towards ``target`` (the
        population mean ``(K,)``, or one target per user ``(B, K)``)."""
        if strength > 0:
            self.interest += strength * (target - self.interest)

    def state_dict(self) -> dict[str, Any]:
        return {name: getattr(self, name).copy() for name in self.fields}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for name in self.fields:
            getattr(self, name)[...] = state[name]
