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
    Subclasses follow another ground-truth reference by naming its keys.
    """

    action_key = "oracle_action"  # info key of the reference's chosen candidate(s)
    value_key = "expected_reward"  # info key of the per-candidate value it ranks by
    needs = ""  # what provides those keys, for the error message

    def __init__(self, env: Any, seed: int | None = None) -> None:
        super().__init__(env, seed=seed)
        self._hparams = {"seed": seed}

    def act_batch(self, obs: np.ndarray, *, explore: bool, info: Info | None) -> np.ndarray:
        name = type(self).__name__
        if info is None:
            raise ValueError(
                f"{name}.act needs the ground-truth `info` that came with `obs` "
                "(call act(obs, info=info) with the info of the reset()/step() that returned obs)"
            )
        obs = np.asarray(obs)
        if self.action_key in info:
            actions = np.asarray(info[self.action_key], dtype=np.int64)
        elif self.value_key in info:
            actions = top_candidates(np.asarray(info[self.value_key]), self.slate_size)
        else:
            raise KeyError(
                f"{name}.act needs info[{self.action_key!r}] or info[{self.value_key!r}]"
                f"{self.needs} (got keys {sorted(info)})"
            )
        expected = obs.shape[:-1] + ((self.slate_size,) if self.slate_size else ())
        if actions.shape != expected:
            raise ValueError(
                f"info[{self.action_key!r}] has shape {actions.shape}, expected {expected} "
                "for these observations: is `info` the one that came with `obs`?"
            )
        return actions.copy()

    def scores(self, obs: np.ndarray, *, explore: bool, info: Info | None) -> np.ndarray:
        if info is None or self.value_key not in info:
            raise ValueError(f"{type(self).__name__}.scores needs info[{self.value_key!r}]")
        return np.asarray(info[self.value_key], dtype=np.float64)

    def click_probability(self, obs: np.ndarray, *, info: Info | None = None) -> np.ndarray:
        """The ground truth ``info["click_prob"]``: the ceiling any click model can reach."""
        if info is None or "click_prob" not in info:
            raise ValueError(
                "OracleAgent.click_probability needs info['click_prob'] "
                "(the info that came with `obs`)"
            )
        return np.asarray(info["click_prob"], dtype=np.float64)
