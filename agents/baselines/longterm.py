"""Long-term references for returning users (``recsim_env/LongTerm-v0``, ``returning_users=True``).

* :class:`OracleLongTermAgent` (``agent=oracle_longterm``) reads the simulator's long-term reference
  from the ground truth: it recommends ``info["longterm_action"]``, the argmax over candidates of
  ``p·(e + λ·v)`` — click probability × (engagement if clicked + λ × the item's satisfaction value
  ``v = tanh(q − c·a)``), ``λ = longterm_weight``. A click on a satisfying item refunds session time
  and raises satisfaction, and end-of-session satisfaction drives whether and how soon the user
  comes back, so ``v`` prices the future that the myopic oracle (``p·e``) ignores. ``λ`` was tuned
  on held-out world seeds for the lifetime return (docs/user-model.md, "Returning users and long-term value"); this policy defines
  the long-term regret (``info["longterm_regret"]``). It never learns.
* :class:`LongTermRuleAgent` (``agent=longterm_rule``) is the same rule computed from observations
  only: the population click rate (observed popularity) for ``p``, ``2·length·completion`` from the
  observed completion signal for ``e``, the standardised observed return-after-consumption rate for
  ``v``. It shows how much of the long-term headroom the observable signals carry; with
  ``return_weight=0`` it is the observation-only myopic rule.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from agents.base import Info
from agents.baselines.oracle import OracleAgent
from agents.baselines.scoring import ScoringAgent
from recsim_env.catalogue import LENGTH_MAX, LENGTH_MIN


class OracleLongTermAgent(OracleAgent):
    """Recommends the long-term reference's choice ``info["longterm_action"]`` (or ranks
    ``info["longterm_value"]``) from the info that came with ``obs``. An upper reference."""

    action_key = "longterm_action"
    value_key = "longterm_value"
    needs = ", which only an env with returning_users=True (e.g. recsim_env/LongTerm-v0) provides"


class LongTermRuleAgent(ScoringAgent):
    """``score = popularity · (2·length·completion + return_weight · (return_rate − return_center)
    / return_scale)`` from the observed candidate features; never reads ``info``, never learns.

    ``return_center`` / ``return_scale`` standardise the observed return rate (defaults: the
    LongTerm-v0 return model, whose return probability at neutral satisfaction is 0.84 and whose
    item return rates spread over ≈ ±0.1); ``return_weight=0`` gives the myopic rule
    (observed expected engagement).
    """

    def __init__(
        self,
        env: Any,
        return_weight: float = 2.0,
        return_center: float = 0.84,
        return_scale: float = 0.1,
        seed: int | None = None,
    ) -> None:
        super().__init__(env, seed=seed)
        for name, value in (("return_weight", return_weight), ("return_scale", return_scale)):
            if not np.isfinite(value) or value < 0 or (name == "return_scale" and value == 0):
                allowed = "> 0" if name == "return_scale" else ">= 0"
                raise ValueError(f"invalid {name}={value!r}: expected a finite number {allowed}")
        if not 0.0 <= return_center <= 1.0:
            raise ValueError(
                f"invalid return_center={return_center!r}: expected a number in [0, 1]"
            )
        if not self.layout.item_signals:
            raise ValueError(
                "LongTermRuleAgent needs the observed item quality signals (completion, "
                "return_rate), which only an env with returning_users=True provides "
                "(e.g. recsim_env/LongTerm-v0, env=long_term)"
            )
        self._hparams = {
            "return_weight": return_weight,
            "return_center": return_center,
            "return_scale": return_scale,
            "seed": seed,
        }
        self.return_weight = float(return_weight)
        self.return_center = float(return_center)
        self.return_scale = float(return_scale)

    def scores(self, obs: np.ndarray, *, explore: bool, info: Info | None) -> np.ndarray:
        layout = self.layout
        popularity = layout.item_feature(obs, "popularity")
        length = LENGTH_MIN + (LENGTH_MAX - LENGTH_MIN) * layout.item_feature(obs, "length")
        engagement = 2.0 * length * layout.item_feature(obs, "completion")
        value = (layout.item_feature(obs, "return_rate") - self.return_center) / self.return_scale
        return popularity * (engagement + self.return_weight * value)
