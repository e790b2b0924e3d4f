"""The item catalogue: topics, hidden quality and appeal, length, birth time, churn.

Popularity is exogenous (the platform has far more users than we simulate): an item's true
popularity is the click rate the *population-mean* user would have on it, so it follows drift and
rewards click bait; the observed signal forms as the item matures (a new item has none: cold start)
and carries per-item noise.
"""

from __future__ import annotations

import numpy as np

from recsim_env.choice import sigmoid
from recsim_env.config import SimConfig

LENGTH_MIN, LENGTH_MAX = 0.5, 1.5
QA_CLIP = 3.0


class Catalogue:
    """Arrays over ``M`` items; ``features`` is the observable ``(M, K + 3)`` float32 table."""

    def __init__(self, cfg: SimConfig, rng: np.random.Generator) -> None:
        self.cfg = cfg
        m, k = cfg.num_items, cfg.num_topics
        self.topics = np.empty((m, k), np.float32)
        self.quality = np.empty(m, np.float32)
        self.appeal = np.empty(m, np.float32)
        self.length = np.empty(m, np.float32)
        self.birth = np.empty(m, np.int64)
        self.pop_noise = np.empty(m, np.float32)
        self.true_popularity = np.zeros(m, np.float32)
        self.features = np.zeros((m, k + 3), np.float32)
        # Existing items were born before the clock started, so most have a mature signal.
        self._draw(
            np.arange(m), rng, birth=-rng.integers(0, 4 * int(cfg.popularity_maturity) + 1, m)
        )

    def _draw(self, idx: np.ndarray, rng: np.random.Generator, birth: np.ndarray | int) -> None:
        cfg, n = self.cfg, len(idx)
        self.topics[idx] = rng.dirichlet(np.full(cfg.num_topics, cfg.topic_concentration), n)
        rho = cfg.quality_appeal_corr
        z = rng.standard_normal((n, 2))
        self.quality[idx] = np.clip(z[:, 0], -QA_CLIP, QA_CLIP)
        self.appeal[idx] = np.clip(
            rho * z[:, 0] + np.sqrt(1.0 - rho * rho) * z[:, 1], -QA_CLIP, QA_CLIP
        )
        self.length[idx] = rng.uniform(LENGTH_MIN, LENGTH_MAX, n)
        self.birth[idx] = birth
        self.pop_noise[idx] = rng.normal(0.0, cfg.popularity_noise, n)
        self.features[idx, : cfg.num_topics] = self.topics[idx]
        self.features[idx, cfg.num_topics + 2] = (self.length[idx] - LENGTH_MIN) / (
            LENGTH_MAX - LENGTH_MIN
        )

    def churn(self, clock: int, rng: np.random.Generator) -> np.ndarray:
        """Retire the oldest items (Binomial count) and replace them with newborn ones."""
        n = (
            int(rng.binomial(self.cfg.num_items, self.cfg.item_churn))
            if self.cfg.item_churn > 0
            else 0
        )
        if n == 0:
            return np.empty(0, np.int64)
        oldest = np.argpartition(self.birth, n - 1)[:n] if n < self.cfg.num_items else np.arange(n)
        self._draw(oldest, rng, birth=clock)
        return oldest

    def refresh(self, population_mean: np.ndarray, clock: int) -> None:
        """Recompute popularity and freshness features for the current clock (O(M·K))."""
        cfg, k = self.cfg, self.cfg.num_topics
        score = (
            cfg.interest_weight * (self.topics @ population_mean) + cfg.appeal_weight * self.appeal
        )
        self.true_popularity = sigmoid(score - cfg.click_threshold).astype(np.float32)
        age = np.maximum(clock - self.birth, 0).astype(np.float32)
        maturity = 1.0 - np.exp(-age / cfg.popularity_maturity)
        self.features[:, k] = np.clip(
            maturity * self.true_popularity + maturity * self.pop_noise, 0.0, 1.0
        )
        self.features[:, k + 1] = np.exp(-age / cfg.freshness_scale)

    def state_dict(self) -> dict[str, np.ndarray]:
        return {name: getattr(self, name).copy() for name in _STATE}

    def load_state_dict(self, state: dict[str, np.ndarray]) -> None:
        for name in _STATE:
            getattr(self, name)[...] = state[name]


_STATE = (
    "topics",
    "quality",
    "appeal",
    "length",
    "birth",
    "pop_noise",
    "true_popularity",
    "features",
)
