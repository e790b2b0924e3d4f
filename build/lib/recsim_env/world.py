"""The world shared by all users of an env: catalogue, drift and the global clock.

The clock counts world ticks (one per vector step) and survives ``reset()``: that is what makes the
problem lifelong. An evaluation env can share a training env's world as a read-only *follower*: it
sees the same catalogue and drift but never advances them.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from recsim_env import rng as crng
from recsim_env.catalogue import Catalogue
from recsim_env.config import SimConfig
from recsim_env.drift import Drift

_KEY_ITEMS = 11  # hash key of per-item features (signal noise, id embedding)


class World:
    def __init__(self, cfg: SimConfig, seed: int | None) -> None:
        self.cfg = cfg
        self.reset(seed)

    def reset(self, seed: int | None) -> None:
        """Re-create the world in place (so that followers sharing this object follow along)."""
        cfg = self.cfg
        seq = np.random.SeedSequence(seed)
        self.seed = int(seq.entropy) if seed is None else int(seed)
        cat_seq, churn_seq, drift_seq = seq.spawn(3)
        self.churn_rng = np.random.default_rng(churn_seq)
        self.drift_rng = np.random.default_rng(drift_seq)
        self.catalogue = Catalogue(
            cfg, np.random.default_rng(cat_seq), key=crng.derive_key(self.seed, _KEY_ITEMS)
        )
        self.drift = Drift(cfg.drift, cfg.num_topics, self.drift_rng)
        self.clock = 0
        self.last_event = False
        self.catalogue.refresh(self.drift.mean, self.clock)

    def tick(self) -> bool:
        """Advance the clock by one; churn the catalogue and drift. Returns the drift event flag."""
        self.clock += 1
        self.catalogue.churn(self.clock, self.churn_rng)
        event = self.drift.tick(self.clock, self.drift_rng)
        # Popularity depends on μ and item age; refreshing is O(M·K), cheap next to a batched step.
        self.catalogue.refresh(self.drift.mean, self.clock)
        self.last_event = event
        return event

    def state_dict(self) -> dict[str, Any]:
        return {
            "clock": self.clock,
            "seed": self.seed,
            "last_event": self.last_event,
            "churn_rng": self.churn_rng.bit_generator.state,
            "drift_rng": self.drift_rng.bit_generator.state,
            "catalogue": self.catalogue.state_dict(),
            "drift": self.drift.state_dict(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.clock = int(state["clock"])
        self.seed = int(state["seed"])
        self.last_event = bool(state["last_event"])
        self.churn_rng.bit_generator.state = state["churn_rng"]
        self.drift_rng.bit_generator.state = state["drift_rng"]
        self.catalogue.load_state_dict(state["catalogue"])
        self.catalogue.key = crng.derive_key(self.seed, _KEY_ITEMS)
        self.drift.load_state_dict(state["drift"])
