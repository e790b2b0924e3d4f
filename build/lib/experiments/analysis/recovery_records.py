"""Per-event recovery records, their Kaplan–Meier summary and the ``lifelong/recovery_*`` keys.

The definitions are :mod:`experiments.analysis.recovery`'s (module doc); this module holds what
both the ground-truth tracker (:mod:`experiments.analysis.recovery_tracker`) and the window-based
computation share: the record of one event and how records are summarised (pooled over the events
of one run, or of several runs and seeds).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any, Literal

import numpy as np
from numpy.typing import ArrayLike

__all__ = [
    "RECOVERY_KEYS",
    "EventRecovery",
    "check_positive_int",
    "kaplan_meier",
    "km_median",
    "km_restricted_mean",
    "summarize_recovery",
]

RECOVERY_KEYS = (
    "lifelong/recovery_time_km_mean",
    "lifelong/recovery_time_km_median",
    "lifelong/recovery_drop",
    "lifelong/recovery_auc",
    "lifelong/recovered_share",
    "lifelong/recovery_recovered",
    "lifelong/recovery_censored",
    "lifelong/recovery_undefined",
    "lifelong/recovery_pre_level",
)


# --------------------------------------------------------------------------------------------------
# Kaplan–Meier
# --------------------------------------------------------------------------------------------------


def kaplan_meier(times: ArrayLike, recovered: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    """Kaplan–Meier estimate of P(recovery takes longer than t).

    ``times``: recovery time of recovered events, censoring time of censored ones;
    ``recovered``: which are observed recoveries. Returns the distinct times and the survival
    just after each (at tied times recoveries count before censorings, the usual convention).
    """
    t = np.asarray(times, dtype=np.float64).reshape(-1)
    e = np.asarray(recovered, dtype=bool).reshape(-1)
    if t.shape != e.shape:
        raise ValueError(f"times has {t.size} entries but recovered has {e.size}")
    if t.size and (not np.all(np.isfinite(t)) or np.any(t < 0)):
        raise ValueError("times must be finite and >= 0")
    grid, inverse = np.unique(t, return_inverse=True)
    at_time = np.bincount(inverse, minlength=grid.size)
    events = np.bincount(inverse, weights=e.astype(np.float64), minlength=grid.size)
    at_risk = t.size - np.concatenate(([0], np.cumsum(at_time)[:-1]))
    return grid, np.cumprod(1.0 - events / np.maximum(at_risk, 1))


def km_restricted_mean(times: ArrayLike, recovered: ArrayLike) -> float:
    """Area under the Kaplan–Meier curve up to the largest time (``nan`` with no event)."""
    grid, survival = kaplan_meier(times, recovered)
    if grid.size == 0:
        return float("nan")
    before = np.concatenate(([1.0], survival[:-1]))  # S on [t_{i-1}, t_i)
    return float(np.sum(before * np.diff(np.concatenate(([0.0], grid)))))


def km_median(times: ArrayLike, recovered: ArrayLike) -> float:
    """Smallest time at which the Kaplan–Meier survival is ``<= 1/2`` (``nan`` if never)."""
    grid, survival = kaplan_meier(times, recovered)
    below = np.flatnonzero(survival <= 0.5)
    return float(grid[below[0]]) if below.size else float("nan")


# --------------------------------------------------------------------------------------------------
# event records and their summary
# --------------------------------------------------------------------------------------------------

RecoveryStatus = Literal["recovered", "censored", "undefined"]


@dataclass(frozen=True)
class EventRecovery:
    """What happened after one drift event (module doc for the definitions).

    ``recovery_steps``: set when recovered; ``censoring_steps``: set when censored;
    ``observed_steps``: post-event user-steps watched (up to the horizon, the next event or the
    end of the run). ``drop``/``auc`` are ``nan`` when undefined.
    """

    event_step: int
    status: RecoveryStatus
    pre_level: float
    recovery_steps: int | None
    censoring_steps: int | None
    drop: float
    auc: float
    observed_steps: int

    @property
    def time(self) -> int | None:
        """Recovery time if recovered, censoring time if censored, else ``None``."""
        return self.recovery_steps if self.recovery_steps is not None else self.censoring_steps

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def summarize_recovery(
    records: Iterable[EventRecovery | Mapping[str, Any]], prefix: str = "lifelong/"
) -> dict[str, float]:
    """The :data:`RECOVERY_KEYS` over event records (one run's, or several runs' pooled).

    Records may be :class:`EventRecovery` objects or their ``to_dict()`` (e.g. read back from
    JSON). Every key is present; ``nan`` where nothing defines it.
    """
    recs = [r if isinstance(r, EventRecovery) else EventRecovery(**r) for r in records]
    defined = [r for r in recs if r.status != "undefined"]
    recovered = [r for r in defined if r.status == "recovered"]
    nan = float("nan")
    times = [float(r.time or 0) for r in defined]  # a defined event always has a time
    flags = [r.status == "recovered" for r in defined]

    def mean(values: Sequence[float]) -> float:
        vals = [v for v in values if math.isfinite(v)]
        return float(np.mean(vals)) if vals else nan

    out = {
        "recovery_time_km_mean": km_restricted_mean(times, flags) if defined else nan,
        "recovery_time_km_median": km_median(times, flags) if defined else nan,
        "recovery_drop": mean([r.drop for r in defined]),
        "recovery_auc": mean([r.auc for r in defined]),
        "recovered_share": len(recovered) / len(defined) if defined else nan,
        "recovery_recovered": float(len(recovered)),
        "recovery_censored": float(len(defined) - len(recovered)),
        "recovery_undefined": float(len(recs) - len(defined)),
        "recovery_pre_level": mean([r.pre_level for r in defined]),
    }
    return {f"{prefix}{k}": v for k, v in out.items()}


def check_positive_int(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
        raise ValueError(f"invalid {name}={value!r} (allowed: an integer >= 1, in user-steps)")
    return int(value)
