"""Typed, validated simulator parameters.

Every ``gymnasium.make`` kwarg of the registered ids is a field of :class:`SimConfig`; an invalid value
raises ``ValueError`` naming the parameter, the value and what is allowed, before anything is built.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any

from recsim_env.validation import (
    check_bool,
    check_choice,
    check_int,
    check_real,
    fail,
    is_int,
    is_real,
)

REWARDS = ("engagement", "click")
OBSERVABILITY = ("partial", "full")
HORIZONS = ("session", "lifetime")


@dataclass(frozen=True)
class SimConfig:
    """All model parameters (DESIGN §2.2). Defaults are starting points, tests pin properties."""

    # catalogue
    num_items: int = 1000
    num_topics: int = 10
    topic_concentration: float = 0.3  # Dirichlet α of item topics: small → sparse, focused items
    quality_appeal_corr: float = -0.6  # clickbait: appealing items tend to be of lower quality
    item_churn: float = 0.0  # per-tick probability that an item retires (replaced by a new one)
    popularity_noise: float = 0.05  # std of the observed popularity signal's per-item noise
    popularity_maturity: float = 200.0  # ticks until a new item's popularity signal is ~63 % formed
    freshness_scale: float = 500.0  # ticks over which the freshness feature decays by e
    # candidates / actions
    num_candidates: int = 20
    slate_size: int = 0  # 0: pick one candidate (Discrete); k ≥ 1: a slate of k distinct ones
    position_bias: float = 0.5  # slate: attention weight of position j is 1 / (1 + j)^position_bias
    # choice model: s = β·(u·x) + α·a − κ·(φ·x); click prob sigmoid(s − s0)
    interest_weight: float = 4.0  # β
    appeal_weight: float = 1.0  # α
    fatigue_weight: float = 2.0  # κ
    click_threshold: float = 1.5  # s0
    # engagement on click: length · 2·sigmoid(γq·q + γσ·σ)
    quality_engagement: float = 1.0  # γq
    satisfaction_engagement: float = 0.5  # γσ
    reward: str = "engagement"
    # endogenous user dynamics
    interest_lr: float = 0.1  # bounded step of the interest pull towards consumed topics (≤ 0.5)
    disappointment_quality: float = -0.5  # clicks on items below this quality push interest away
    fatigue_decay: float = 0.8  # φ ← ρφ + (1−ρ)·x·(click + exposure)
    exposure_fatigue: float = 0.2  # fatigue from being shown a topic without clicking it
    satisfaction_rate: float = 0.2
    clickbait_penalty: float = 0.5  # c in satisfaction target tanh(q − c·a)
    budget_min: float = 15.0
    budget_max: float = 25.0
    budget_refund: float = 0.8  # budget change per click: −1 + refund·tanh(q − c·a)
    max_session_steps: int = 200
    user_noise: float = 0.5  # spread of new users' interests around the population mean
    # exogenous drift
    drift: Any = "none"  # preset name or list of {schedule..., process...} dicts (see drift.py)
    drift_pull: float = 0.02  # per tick, live users move this share towards the population mean
    # observation
    observability: str = "partial"
    notify_drift: bool = False
    history_decay: float = 0.8
    item_embedding_dim: int = 0  # fixed random features of the item id (0: none)
    # returning users (recsim_env/returning.py); off: every session is a new user (the default ids)
    returning_users: bool = False
    horizon: str = "session"  # RL episode: one session, or a user's whole lifetime ("lifetime")
    lifetime_ticks: int = 1000  # lifetime cap in user time (steps served + gaps away)
    return_prob_min: float = 0.7  # p_return(σ_end) as σ_end → −1 ...
    return_prob_max: float = 0.98  # ... and as σ_end → +1
    return_sensitivity: float = 2.0  # slope k of p_return and of the gap mean in σ_end
    gap_mean_min: float = 10.0  # mean gap (ticks away) of a fully satisfied user ...
    gap_mean_max: float = 60.0  # ... and of a fully dissatisfied one
    completion_rate: float = 0.3  # observed per-user completion: EMA rate over clicks
    signal_noise: float = 0.02  # std of the per-item noise of the observed quality signals
    signal_maturity: float = 300.0  # ticks until an item's quality signals are ~63 % formed
    longterm_weight: float = 3.0  # λ of the long-term reference score p·(e + λ·v)

    def __post_init__(self) -> None:
        check_int("num_items", self.num_items, 1)
        check_int("num_topics", self.num_topics, 1)
        check_real("topic_concentration", self.topic_concentration, 0.0, lo_open=True)
        check_real("quality_appeal_corr", self.quality_appeal_corr, -1.0, 1.0)
        check_real("item_churn", self.item_churn, 0.0, 1.0)
        check_real("popularity_noise", self.popularity_noise, 0.0)
        check_real("popularity_maturity", self.popularity_maturity, 0.0, lo_open=True)
        check_real("freshness_scale", self.freshness_scale, 0.0, lo_open=True)
        check_int("num_candidates", self.num_candidates, 1)
        if self.num_candidates > self.num_items:
            fail("num_candidates", self.num_candidates, f"at most num_items={self.num_items}")
        check_int("slate_size", self.slate_size, 0)
        if self.slate_size > self.num_candidates:
            fail(
                "slate_size",
                self.slate_size,
                f"0 (single item) or 1..num_candidates={self.num_candidates}",
            )
        check_real("position_bias", self.position_bias, 0.0)
        for name in (
            "interest_weight",
            "appeal_weight",
            "fatigue_weight",
            "quality_engagement",
            "satisfaction_engagement",
            "clickbait_penalty",
            "budget_refund",
            "user_noise",
        ):
            check_real(name, getattr(self, name), 0.0)
        check_real("click_threshold", self.click_threshold)
        check_choice("reward", self.reward, REWARDS)
        check_real("interest_lr", self.interest_lr, 0.0, 0.5)
        check_real("disappointment_quality", self.disappointment_quality)
        check_real("fatigue_decay", self.fatigue_decay, 0.0, 1.0, hi_open=True)
        check_real("exposure_fatigue", self.exposure_fatigue, 0.0, 1.0)
        check_real("satisfaction_rate", self.satisfaction_rate, 0.0, 1.0)
        check_real("budget_min", self.budget_min, 0.0, lo_open=True)
        check_real("budget_max", self.budget_max, self.budget_min)
        check_int("max_session_steps", self.max_session_steps, 1)
        check_real("drift_pull", self.drift_pull, 0.0, 1.0)
        check_choice("observability", self.observability, OBSERVABILITY)
        check_bool("notify_drift", self.notify_drift)
        check_real("history_decay", self.history_decay, 0.0, 1.0, hi_open=True)
        check_int("item_embedding_dim", self.item_embedding_dim, 0, 64)
        check_bool("returning_users", self.returning_users)
        check_choice("horizon", self.horizon, HORIZONS)
        if self.horizon == "lifetime" and not self.returning_users:
            fail("horizon", self.horizon, "'session' unless returning_users=True")
        check_int("lifetime_ticks", self.lifetime_ticks, 1)
        check_real("return_prob_min", self.return_prob_min, 0.0, 1.0)
        check_real("return_prob_max", self.return_prob_max, self.return_prob_min, 1.0)
        check_real("return_sensitivity", self.return_sensitivity, 0.0)
        check_real("gap_mean_min", self.gap_mean_min, 1.0)
        check_real("gap_mean_max", self.gap_mean_max, self.gap_mean_min)
        check_real("completion_rate", self.completion_rate, 0.0, 1.0, lo_open=True)
        check_real("signal_noise", self.signal_noise, 0.0)
        check_real("signal_maturity", self.signal_maturity, 0.0, lo_open=True)
        check_real("longterm_weight", self.longterm_weight, 0.0)
        from recsim_env.drift import parse_drift  # validates drift specs (late import: no cycle)

        parse_drift(self.drift)
        # numpy / OmegaConf scalars (sweeps, Optuna) → plain Python numbers: YAML, JSON, equality
        for f in fields(self):
            value = getattr(self, f.name)
            if is_int(value) and type(value) is not int:
                object.__setattr__(self, f.name, int(value))
            elif is_real(value) and not isinstance(value, int | float):
                object.__setattr__(self, f.name, float(value))

    @classmethod
    def from_kwargs(cls, **kwargs: Any) -> SimConfig:
        """Build from ``make`` kwargs, rejecting unknown names with the list of known ones."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(kwargs) - known)
        if unknown:
            raise ValueError(
                f"unknown simulator parameter(s) {unknown}; known parameters: {sorted(known)}"
            )
        return cls(**kwargs)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def fatigue_max(self) -> float:
        return 1.0 + self.exposure_fatigue

    @property
    def slate_mode(self) -> bool:
        return self.slate_size > 0
