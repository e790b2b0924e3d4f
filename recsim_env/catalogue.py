"""The item catalogue: topics, hidden quality and appeal, length, birth time, churn.

Popularity is exogenous (the platform has far more users than we simulate): an item's true
popularity is the click rate the *population-mean* user would have on it, so it follows drift and
rewards click bait; the observed signal forms as the item matures (a new item has none: cold start)
and carries per-item noise.

With returning users two more observed aggregates per item, formed the same way (world-level, from
the population, never from the simulated slots, so that slots stay independent): the **completion**
ratio (engagement / length of a click) of the population-neutral user, ``sigmoid(γq·q)``, and the
**return-after-consumption rate**, the return probability of a session whose satisfaction equals the
item's value ``tanh(q − c·a)``. Each observed value is
``prior + w(age)·(true − prior + signal_noise·z)``, ``w = 1 − exp(−age / signal_maturity)``, with
the catalogue average as prior and a fixed per-item ``z ~ N(0, 1)``: young items show little, mature
ones a noisy estimate that is never exact. ``item_embedding_dim`` adds fixed random features of the
item id (uniforms hashed from world seed, item slot and birth: a new item gets new ones).

With a calibration (``SimConfig.calibration``, :mod:`recsim_env.grounding`) the items are the log's:
topics, quality, appeal, length and birth come from the calibration (sorted by birth, ``item_ids``
maps a slot to the log's id); popularity and the other observed signals are computed as above, so
the observation layout is unchanged. An item whose birth is after the current clock is never a
candidate until it is born (a real arrival, with no history: cold start); the ``num_candidates``
earliest items are available from the start. There is no churn (``item_churn`` must be 0).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from recsim_env import rng as crng
from recsim_env.choice import satisfaction_value, sigmoid
from recsim_env.config import SimConfig

if TYPE_CHECKING:
    from recsim_env.grounding import Calibration

LENGTH_MIN, LENGTH_MAX = 0.5, 1.5
QA_CLIP = 3.0


def candidate_strides(m: int) -> np.ndarray:
    """Strides coprime with ``m``: an arithmetic progression mod ``m`` with such a stride never
    repeats an item (candidate retrieval, see ``BatchedCore._draw_candidates``)."""
    cand = np.arange(1, max(m, 2))
    return cand[np.gcd(cand, m) == 1] if m > 1 else np.array([1])


class Catalogue:
    """Arrays over ``M`` items; ``features`` is the observable ``(M, item_dim)`` float32 table
    (``K + 3`` columns, + 2 quality signals with returning users, + ``item_embedding_dim``).

    ``key`` (from the world seed) drives the per-item hashes of the signal noise and embedding; they
    never draw from ``rng``, so the catalogue of the default ids is unchanged by them."""

    def __init__(
        self,
        cfg: SimConfig,
        rng: np.random.Generator,
        key: np.uint64 | None = None,
        calibration: Calibration | None = None,
    ) -> None:
        self.cfg = cfg
        m, k = cfg.num_items, cfg.num_topics
        self.signals = cfg.returning_users
        self.embedding_dim = cfg.item_embedding_dim
        self.key = np.uint64(0) if key is None else np.uint64(key)
        if self.signals:
            # columns: completion, return rate (the two names are views, for readability)
            self.signal_true = np.zeros((m, 2), np.float32)
            self.true_completion = self.signal_true[:, 0]
            self.true_return_rate = self.signal_true[:, 1]
            self.signal_z = np.zeros((m, 2), np.float32)
            self._signal_prior = np.zeros(2, np.float32)
            self._signal_offset = np.zeros((m, 2), np.float32)  # true − prior + noise
            self._signal_dirty = True
        self.topics = np.empty((m, k), np.float32)
        self.quality = np.empty(m, np.float32)
        self.appeal = np.empty(m, np.float32)
        self.length = np.empty(m, np.float32)
        self.birth = np.empty(m, np.int64)
        self.pop_noise = np.empty(m, np.float32)
        self.true_popularity = np.zeros(m, np.float32)
        width = k + 3 + 2 * int(self.signals) + self.embedding_dim
        self.features = np.zeros((m, width), np.float32)
        self.calibration = calibration
        # candidates come from the first `available` items (all but a calibration's unborn ones)
        self.available = m
        self.strides = candidate_strides(m)
        self.item_ids: np.ndarray | None = None  # the log's item id per slot (calibrated only)
        if calibration is None:
            # Existing items were born before the clock started, so most have a mature signal.
            self._draw(
                np.arange(m), rng, birth=-rng.integers(0, 4 * int(cfg.popularity_maturity) + 1, m)
            )
        else:
            self._from_calibration(calibration, rng)

    def _from_calibration(self, cal: Calibration, rng: np.random.Generator) -> None:
        """The log's items, in order of birth (so the items born by any tick are a prefix of the
        catalogue); ``item_ids`` maps a catalogue slot to the log's id. Only the popularity
        signal's per-item noise is drawn (from ``rng``); everything observed is computed by the
        same code as for a made-up catalogue, so the observation layout is the same."""
        order = np.argsort(cal.item_birth, kind="stable")
        self.calibration_index = order  # catalogue slot -> row of the calibration's arrays
        self.item_ids = cal.item_ids[order]
        self.topics[:] = cal.item_topics[order]
        self.quality[:] = cal.item_quality[order]
        self.appeal[:] = cal.item_appeal[order]
        self.length[:] = cal.item_length[order]
        self.birth[:] = cal.item_birth[order]
        self.pop_noise[:] = rng.normal(0.0, self.cfg.popularity_noise, self.cfg.num_items)
        self._set_features(np.arange(self.cfg.num_items), self.birth)
        self.set_clock(0)

    def set_clock(self, clock: int) -> None:
        """Items born after ``clock`` are no candidates yet (a calibration's late arrivals); the
        ``num_candidates`` earliest items are always available, so that a step has candidates."""
        if self.calibration is None:
            return
        born = int(np.searchsorted(self.birth, clock, side="right"))
        available = max(born, self.cfg.num_candidates)
        if available != self.available:
            self.available = available
            self.strides = candidate_strides(available)

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
        self._set_features(idx, birth)

    def _set_features(self, idx: np.ndarray, birth: np.ndarray | int) -> None:
        """The static observed features of items ``idx`` (topics, length, extras)."""
        cfg = self.cfg
        self.features[idx, : cfg.num_topics] = self.topics[idx]
        self.features[idx, cfg.num_topics + 2] = (self.length[idx] - LENGTH_MIN) / (
            LENGTH_MAX - LENGTH_MIN
        )
        if self.signals or self.embedding_dim:
            self._draw_extras(idx, np.broadcast_to(np.asarray(birth, np.int64), (len(idx),)))

    def _draw_extras(self, idx: np.ndarray, birth: np.ndarray) -> None:
        """Per-item hidden truths of the quality signals, their fixed noise, the id embedding."""
        cfg, e = self.cfg, self.embedding_dim
        u = crng.uniforms_per_row(self.key, idx, birth, 4 + e)
        if self.signals:
            from recsim_env.returning import return_prob  # late import: no cycle

            q, a = self.quality[idx], self.appeal[idx]
            self.true_completion[idx] = sigmoid(cfg.quality_engagement * q)
            self.true_return_rate[idx] = return_prob(cfg, satisfaction_value(cfg, q, a))
            self.signal_z[idx] = crng.box_muller(u[:, :2], u[:, 2:4])
            self._signal_dirty = True  # the catalogue average (the prior) changed
        if e:
            self.features[idx, -e:] = u[:, 4:]

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
        self.set_clock(clock)
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
        if self.signals:
            if self._signal_dirty:  # only when items were (re)drawn: the rest is per tick
                self._signal_prior = self.signal_true.mean(axis=0)
                self._signal_offset = (
                    self.signal_true - self._signal_prior + cfg.signal_noise * self.signal_z
                )
                self._signal_dirty = False
            w = 1.0 - np.exp(-age / cfg.signal_maturity)
            signals = self._signal_prior + w[:, None] * self._signal_offset
            self.features[:, k + 3 : k + 5] = np.clip(signals, 0.0, 1.0)

    def _state_names(self) -> tuple[str, ...]:
        return _STATE + (_SIGNAL_STATE if self.signals else ())

    def state_dict(self) -> dict[str, np.ndarray]:
        return {name: getattr(self, name).copy() for name in self._state_names()}

    def load_state_dict(self, state: dict[str, np.ndarray]) -> None:
        for name in self._state_names():
            getattr(self, name)[...] = state[name]
        self._signal_dirty = True
        # (the available prefix follows the clock: World.load_state_dict calls set_clock)


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
_SIGNAL_STATE = ("signal_true", "signal_z")
