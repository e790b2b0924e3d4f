"""Baselines that do not learn: uniform random and most-popular."""

from __future__ import annotations

from typing import Any

import numpy as np

from agents.base import Info
from agents.baselines.scoring import ScoringAgent


class RandomAgent(ScoringAgent):
    """Recommends uniformly random candidates (distinct ones in slate mode): the floor every learner
    must beat. Random with or without ``explore``; reproducible from ``seed``."""

    def __init__(self, env: Any, seed: int | None = None) -> None:
        super().__init__(env, seed=seed)
        self._hparams = {"seed": seed}

    def scores(self, obs: np.ndarray, *, explore: bool, info: Info | None) -> np.ndarray:
        return self.rng.random((obs.shape[0], self.num_candidates))


class PopularityAgent(ScoringAgent):
    """Recommends the candidates with the highest observed (noisy) popularity signal.

    Deterministic; ties go to the lower candidate index."""

    def __init__(self, env: Any, seed: int | None = None) -> None:
        super().__init__(env, seed=seed)
        self._hparams = {"seed": seed}

    def scores(self, obs: np.ndarray, *, explore: bool, info: Info | None) -> np.ndarray:
        return self.layout.popularity(obs)
