"""Typed, validated simulator parameters.

Every ``gymnasium.make`` kwarg of the registered ids is a field of :class:`SimConfig`; an invalid value
raises ``ValueError`` (:class:`~recsim_env.validation.ConfigError`) naming the parameter, the value
and what is allowed, before anything is built; an unknown kwarg raises
:class:`UnknownParameterError` (also a ``TypeError``). Ranges include numeric bounds (below) that
keep every derived float32 quantity finite, and a size cap that turns a would-be ``MemoryError``
into such an error.

``calibration`` (a directory written by ``recsim-calibrate`` / ``Calibration.save``, or a known name
such as ``"movielens-100k"``; see :mod:`recsim_env.grounding`): the calibration's fitted ``params``
are the defaults of the other fields (explicit kwargs override them), ``num_items``/``num_topics``
are the calibration's, and ``item_churn`` must be 0 (the log's items arrive at their birth ticks).
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, fields
from typing import TYPE_CHECKING, Any

import numpy as np

from recsim_env.validation import (
    ConfigError,
    check_bool,
    check_choice,
    check_int,
    check_real,
    fail,
    is_int,
    is_real,
)

if TYPE_CHECKING:
    from recsim_env.grounding import Calibration

REWARDS = ("engagement", "click")
OBSERVABILITY = ("partial", "full")
HORIZONS = ("session", "lifetime")

# Numeric bounds. Why: the simulator computes in float32 (largest value ≈ 3.4e38) and must never
# produce inf or NaN (``inf · 0`` is NaN: a weight of 1e39 times a zero fatigue already is one).
# Every weight multiplies a bounded quantity: |u·x| ≤ 1, |appeal|, |quality| ≤ 3, φ·x ≤ 2,
# |σ| ≤ 1, |tanh(·)| ≤ 1; so with weights ≤ WEIGHT_MAX every score β·(u·x) + α·a − κ·(φ·x) − s0,
# engagement exponent γq·q + γσ·σ and long-term gain e + λ·v stays below ~1e7, far inside float32.
# Nothing is lost: from |s − s0| ≈ 40 on every click probability is already exactly 0 or 1.
WEIGHT_MAX = 1e6
# Time constants (ticks): float32 ages (at most ~4e9 ticks) are divided by them. Below TICKS_MIN the
# divisor would round towards 0 in float32 (1e-300 is 0: 0/0 = NaN); above TICKS_MAX a signal
# would take longer than any run to form (and 4·maturity, the oldest initial item, must fit int64).
TICKS_MIN, TICKS_MAX = 1e-6, 1e9
# The time budget is a float32 that loses 1 per step: above 2^24 ≈ 1.7e7 a step no longer changes it.
BUDGET_MAX = 1e6
POSITION_BIAS_MAX = 100.0
COUNT_MAX = 10**12  # step / tick counts: they meet int64 counters in numpy (np.minimum, ...)
# The catalogue's arrays take about num_items · (16·num_topics + 4·item_embedding_dim + 100) bytes
# (topics, their float64 Dirichlet draw, the feature table, per-item scalars, candidate strides);
# a size beyond this cap is a typo (num_items=10**12), not a simulation: it is refused up front
# instead of failing later with a MemoryError.
CATALOGUE_MAX_BYTES = 64 * 2**30  # beyond the memory of the machines this runs on

_WEIGHT_NOTE = (
    "it multiplies bounded model quantities (|u·x| <= 1, |appeal|, |quality| <= 3) and products "
    "must stay far inside float32; beyond ~50 click probabilities are already 0 or 1"
)
_NOISE_NOTE = "a std far beyond the [0, 1] range of the signal it perturbs"
_TICKS_NOTE = "in ticks; float32 ages are divided by it (smaller rounds to 0, larger never forms)"
_COUNT_NOTE = "a count of steps, used with int64 counters"
_BUDGET_NOTE = "float32 budgets lose 1 per step, which above ~1.7e7 rounds away"


class UnknownParameterError(ConfigError, TypeError):
    """A ``make`` kwarg that is no simulator parameter. A ``TypeError`` as for any function called
    with an unexpected keyword (what TorchRL's ``GymEnv`` and Python callers expect) and a
    :class:`~recsim_env.validation.ConfigError` (``ValueError``) as for every other bad input."""


def catalogue_bytes(num_items: int, num_topics: int, item_embedding_dim: int = 0) -> int:
    """Approximate peak memory of building the catalogue (see ``CATALOGUE_MAX_BYTES``)."""
    return int(num_items) * (16 * int(num_topics) + 4 * int(item_embedding_dim) + 100)


def _check_catalogue_size(cfg: SimConfig) -> None:
    need = catalogue_bytes(cfg.num_items, cfg.num_topics, cfg.item_embedding_dim)
    if need > CATALOGUE_MAX_BYTES:
        fail(
            "num_items",
            cfg.num_items,
            f"a catalogue of at most {CATALOGUE_MAX_BYTES / 2**30:g} GiB: num_items · "
            f"(16·num_topics + 4·item_embedding_dim + 100) bytes; with num_topics="
            f"{cfg.num_topics} that is {need:.3g} bytes, so num_items <= "
            f"{CATALOGUE_MAX_BYTES // catalogue_bytes(1, cfg.num_topics, cfg.item_embedding_dim)}",
        )


def _plain(value: Any) -> Any:
    """numpy / OmegaConf values of a drift spec → plain Python (YAML, JSON, equality)."""
    if isinstance(value, str):
        return value
    if isinstance(value, Mapping):
        return {_plain(k): _plain(v) for k, v in value.items()}
    if isinstance(value, tuple):
        return tuple(_plain(v) for v in value)
    if isinstance(value, Sequence | np.ndarray):
        return [_plain(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value


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
    # grounding (recsim_env/grounding.py): a calibration directory or a known name
    # ("movielens-100k"); None: the made-up world of the default ids
    calibration: str | None = None

    def __post_init__(self) -> None:
        check_int("num_items", self.num_items, 1)
        check_int("num_topics", self.num_topics, 1)
        check_int("item_embedding_dim", self.item_embedding_dim, 0, 64)
        _check_catalogue_size(self)
        check_real("topic_concentration", self.topic_concentration, 0.0, lo_open=True)
        check_real("quality_appeal_corr", self.quality_appeal_corr, -1.0, 1.0)
        check_real("item_churn", self.item_churn, 0.0, 1.0)
        for name in ("popularity_noise", "signal_noise"):
            check_real(name, getattr(self, name), 0.0, WEIGHT_MAX, note=_NOISE_NOTE)
        for name in ("popularity_maturity", "freshness_scale", "signal_maturity"):
            check_real(name, getattr(self, name), TICKS_MIN, TICKS_MAX, note=_TICKS_NOTE)
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
        check_real(
            "position_bias",
            self.position_bias,
            0.0,
            POSITION_BIAS_MAX,
            note="position j is weighted 1/(1+j)^position_bias, already < 1e-30 at the maximum",
        )
        for name in (
            "interest_weight",
            "appeal_weight",
            "fatigue_weight",
            "quality_engagement",
            "satisfaction_engagement",
            "clickbait_penalty",
            "budget_refund",
            "user_noise",
            "longterm_weight",
            "return_sensitivity",
        ):
            check_real(name, getattr(self, name), 0.0, WEIGHT_MAX, note=_WEIGHT_NOTE)
        for name in ("click_threshold", "disappointment_quality"):
            check_real(name, getattr(self, name), -WEIGHT_MAX, WEIGHT_MAX, note=_WEIGHT_NOTE)
        check_choice("reward", self.reward, REWARDS)
        check_real("interest_lr", self.interest_lr, 0.0, 0.5)
        check_real("fatigue_decay", self.fatigue_decay, 0.0, 1.0, hi_open=True)
        check_real("exposure_fatigue", self.exposure_fatigue, 0.0, 1.0)
        check_real("satisfaction_rate", self.satisfaction_rate, 0.0, 1.0)
        check_real("budget_min", self.budget_min, 0.0, BUDGET_MAX, lo_open=True, note=_BUDGET_NOTE)
        check_real("budget_max", self.budget_max, self.budget_min, BUDGET_MAX, note=_BUDGET_NOTE)
        check_int("max_session_steps", self.max_session_steps, 1, COUNT_MAX, note=_COUNT_NOTE)
        check_real("drift_pull", self.drift_pull, 0.0, 1.0)
        check_choice("observability", self.observability, OBSERVABILITY)
        check_bool("notify_drift", self.notify_drift)
        check_real("history_decay", self.history_decay, 0.0, 1.0, hi_open=True)
        check_bool("returning_users", self.returning_users)
        check_choice("horizon", self.horizon, HORIZONS)
        if self.horizon == "lifetime" and not self.returning_users:
            fail("horizon", self.horizon, "'session' unless returning_users=True")
        check_int("lifetime_ticks", self.lifetime_ticks, 1, COUNT_MAX, note=_COUNT_NOTE)
        check_real("return_prob_min", self.return_prob_min, 0.0, 1.0)
        check_real("return_prob_max", self.return_prob_max, self.return_prob_min, 1.0)
        check_real("gap_mean_min", self.gap_mean_min, 1.0)
        check_real("gap_mean_max", self.gap_mean_max, self.gap_mean_min)
        check_real("completion_rate", self.completion_rate, 0.0, 1.0, lo_open=True)
        from recsim_env.drift import parse_drift  # validates drift specs (late import: no cycle)

        parse_drift(self.drift)
        self._check_calibration()
        # numpy / OmegaConf scalars (sweeps, Optuna) → plain Python numbers: YAML, JSON, equality
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name == "drift":
                value = _plain(value)
            elif isinstance(value, bool | np.bool_):
                value = bool(value)
            elif is_int(value):
                value = int(value)
            elif is_real(value):
                value = float(value)
            object.__setattr__(self, f.name, value)

    def _check_calibration(self) -> None:
        """With a calibration the catalogue is the log's: its size and topic count, no churn."""
        if self.calibration is None:
            return
        if isinstance(self.calibration, os.PathLike):
            object.__setattr__(self, "calibration", os.fspath(self.calibration))
        if not isinstance(self.calibration, str) or not self.calibration:
            fail(
                "calibration",
                self.calibration,
                "null, a known name such as 'movielens-100k', or a directory written by "
                "Calibration.save",
            )
        cal = self.resolved_calibration
        assert cal is not None
        for name, size in (("num_items", cal.num_items), ("num_topics", cal.num_topics)):
            if getattr(self, name) != size:
                fail(name, getattr(self, name), f"{size}, the {name} of calibration {cal.name!r}")
        if self.item_churn != 0:
            fail(
                "item_churn",
                self.item_churn,
                "0 with a calibration: the catalogue is the log's items, which arrive at their "
                "fitted birth ticks instead of by churn",
            )

    @property
    def resolved_calibration(self) -> Calibration | None:
        """The :class:`~recsim_env.grounding.Calibration` of ``calibration`` (cached per path)."""
        if self.calibration is None:
            return None
        from recsim_env.grounding import resolve_calibration

        return resolve_calibration(self.calibration)

    @classmethod
    def from_kwargs(cls, **kwargs: Any) -> SimConfig:
        """Build from ``make`` kwargs; unknown names raise :class:`UnknownParameterError` (a
        ``TypeError`` and a ``ValueError``) with a suggestion and the list of known ones.

        With ``calibration``: the calibration's fitted ``params`` are the defaults and the
        kwargs given override them; ``num_items``/``num_topics`` come from the calibration (a
        different explicit value is an error naming both)."""
        known = sorted(f.name for f in fields(cls))
        unknown = sorted(set(kwargs) - set(known), key=str)
        if unknown:
            close = [difflib.get_close_matches(str(k), known, n=1) for k in unknown]
            hints = [
                f"{c[0]!r}" + (f" for {k!r}" if len(unknown) > 1 else "")
                for k, c in zip(unknown, close, strict=True)
                if c
            ]
            hint = f" (did you mean {', '.join(hints)}?)" if hints else ""
            # Python's own wording first: callers such as TorchRL's GymEnv match on it (it
            # retries without `frameskip` only when the error reads like this)
            more = f" (and {unknown[1:]})" if len(unknown) > 1 else ""
            raise UnknownParameterError(
                f"{cls.__name__}.__init__() got an unexpected keyword argument {unknown[0]!r}"
                f"{more}: unknown simulator parameter(s) {unknown}{hint}; known parameters: {known}"
            )
        if kwargs.get("calibration") is not None:
            from recsim_env.grounding import resolve_calibration

            cal = resolve_calibration(kwargs["calibration"])
            sizes = {"num_items": cal.num_items, "num_topics": cal.num_topics}
            for name, size in sizes.items():
                given = kwargs.get(name, size)
                if not (is_int(given) and int(given) == size):
                    fail(
                        name,
                        given,
                        f"{size}, the {name} of calibration {kwargs['calibration']!r} "
                        f"({cal.name!r}); leave {name} out to take it from the calibration",
                    )
            kwargs = {**cal.params, **sizes, **kwargs}
        return cls(**kwargs)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def fatigue_max(self) -> float:
        return 1.0 + self.exposure_fatigue

    @property
    def slate_mode(self) -> bool:
        return self.slate_size > 0
