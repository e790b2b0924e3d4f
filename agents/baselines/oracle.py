"""The oracle: an upper reference that reads the ground truth, never a learner."""

from __future__ import annotations

from typing import Any

import numpy as np

from agents.base import Info
from agents.baselines.scoring import ScoringAgent, top_candidates


class OracleAgent(ScoringAgent):
    """Recommends the candidates with the highest true *expected immediate* reward.

    Reads ``info["oracle_action"]`` (or, failing that, ranks ``info["expected_reward"]``) from the
    info that came with ``obs`` — ``OnlineAgent.learn`` and the evaluation loop pass it as
    ``act(obs, info=info)``. It is myopic (best next reward, not best return) and never learns.
    """

    def __init__(self, env: Any, seed: int | None = None) -> None:
        super().__init__(env, seed=seed)
        self._hparams = {"seed": seed}

    def act_batch(self, obs: np.ndarray, *, explore: bool, info: Info | None) -> np.ndarray:
        if info is None:
            raise ValueError(
                "OracleAgent.act needs the ground-truth `info` that came with `obs` "
                "(call act(obs, info=info) with the info of the reset()/step() that returned obs)"
            )
        obs = np.asarray(obs)
        batch_shape = obs.shape[:-1]
        if "oracle_action" in info:
            actions = np.asarray(info["oracle_action"], dtype=np.int64)
        elif "expected_reward" in info:
            actions = top_candidates(np.asarray(info["expected_reward"]), self.slate_size)
        else:
            raise KeyError(
                "OracleAgent.act needs info['oracle_action'] or info['expected_reward'] "
                f"(got keys {sorted(info)})"
            )
        expected = batch_shape + ((self.slate_size,) if self.slate_size else ())
        if actions.shape != expected:
            raise ValueError(
                f"info['oracle_action'] has shape {actions.shape}, expected {expected} "
                "for these observations: is `info` the one that came with `obs`?"
            )
        return actions.copy()

    def scores(self, obs: np.ndarray, *, explore: bool, info: Info | None) -> np.ndarray:
        if info is None or "expected_reward" not in info:
            raise ValueError("OracleAgent.scores needs info['expected_reward']")
        return np.asarray(info["expected_reward"], dtype=np.float64)

    def click_probability(self, obs: np.ndarray, *, info: Info | None = None) -> np.ndarray:
        """The ground truth ``info["click_prob"]``: the ceiling any click model can reach."""
        if info is None or "click_prob" not in info:
            raise ValueError(
                "OracleAgent.click_probability needs info['click_prob'] "
                "(the info that came with `obs`)"
            )
        return np.asarray(info["click_prob"], dtype=np.float64)
