"""Time to a good policy: the user-steps and wall-clock seconds a learner needs to reach a target.

Learners are judged by time to a good policy, not steps per second alone (DESIGN §7). "Good" is
defined against references measured on the *same* world and the *same* evaluation users at the
same evaluation (the references are not hard-coded: the world drifts and differs by seed):

* on an env without returning users (``Stationary-v0``): ``oracle_share`` of the myopic oracle's
  evaluation return (default 80 %): ``target = share · myopic``;
* on an env with returning users (``LongTerm-v0``), where the myopic oracle is beatable:
  ``headroom_share`` of the headroom between the myopic oracle (0) and the long-term reference
  ``oracle_longterm`` (1), as the γ study measures it (default 50 %):
  ``target = myopic + share · (longterm − myopic)``.

A run *reaches* the target at its first evaluation whose ``eval/return`` is ``>=`` that
evaluation's target (a value exactly on the target counts); its time to good is that evaluation's
user-step count and the training wall-clock seconds up to it (evaluations excluded). A run that
never reaches it is *censored* at its budget (its last evaluation): reported as ``> budget``, never
as the budget itself. Across seeds the summary is censoring-aware: the Kaplan–Meier median (the
same estimator :mod:`experiments.analysis.recovery_records` uses for recovery times), undefined
(``nan``, shown ``> max budget``) when more than half the runs never reach the target.

Everything here is a pure function of a run's evaluation series and its references.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any, Literal

import numpy as np
from numpy.typing import ArrayLike

from experiments.analysis.recovery_records import km_median
from experiments.analysis.schema import TIME_TO_GOOD_KEYS

__all__ = [
    "DEFAULT_HEADROOM_SHARE",
    "DEFAULT_ORACLE_SHARE",
    "TIME_TO_GOOD_KEYS",
    "Target",
    "TimeToGood",
    "default_target",
    "format_time",
    "run_time_to_good",
    "summarize_time_to_good",
    "target_returns",
    "time_to_good",
    "training_seconds",
]

DEFAULT_ORACLE_SHARE = 0.8
DEFAULT_HEADROOM_SHARE = 0.5


@dataclass(frozen=True)
class Target:
    """What "good" means: ``kind`` ``oracle_share`` (``share`` × the myopic oracle's return) or
    ``headroom_share`` (``share`` of the way from the myopic oracle to the long-term reference)."""

    kind: Literal["oracle_share", "headroom_share"]
    share: float

    def __post_init__(self) -> None:
        if self.kind not in ("oracle_share", "headroom_share"):
            raise ValueError(f"invalid kind={self.kind!r} (allowed: oracle_share, headroom_share)")
        if not (math.isfinite(self.share) and self.share > 0):
            raise ValueError(f"invalid share={self.share!r} (allowed: a finite number > 0)")

    def describe(self) -> str:
        if self.kind == "oracle_share":
            return f"{self.share:.0%} of the myopic oracle's eval return"
        return f"{self.share:.0%} of the headroom (myopic oracle = 0, long-term reference = 1)"


def default_target(has_longterm_reference: bool) -> Target:
    """The issue's targets: 50 % of the headroom where a long-term reference exists (returning
    users), else 80 % of the myopic oracle."""
    if has_longterm_reference:
        return Target("headroom_share", DEFAULT_HEADROOM_SHARE)
    return Target("oracle_share", DEFAULT_ORACLE_SHARE)


def target_returns(
    target: Target, myopic: ArrayLike, longterm: ArrayLike | None = None
) -> np.ndarray:
    """The target return at each evaluation from that evaluation's references (arrays or scalars)."""
    m = np.asarray(myopic, dtype=np.float64)
    if target.kind == "oracle_share":
        return target.share * m
    if longterm is None:
        raise ValueError("a headroom_share target needs the long-term reference's returns")
    lt = np.asarray(longterm, dtype=np.float64)
    return m + target.share * (lt - m)


@dataclass(frozen=True)
class TimeToGood:
    """One run's time to good. ``reached``: at ``user_steps`` / ``seconds``; censored: never within
    ``budget_steps`` / ``budget_seconds`` (then ``user_steps``/``seconds`` are the budget, the
    censoring time of the Kaplan–Meier summary). ``best_ratio``: the best ``return / target`` over
    its evaluations (≥ 1 when reached; how far a censored run stayed from the target)."""

    reached: bool
    user_steps: float
    seconds: float
    budget_steps: float
    budget_seconds: float
    best_ratio: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def time_to_good(
    steps: ArrayLike,
    returns: ArrayLike,
    targets: ArrayLike,
    seconds: ArrayLike | None = None,
) -> TimeToGood:
    """The first evaluation whose return is ``>=`` its target (module doc).

    ``steps``: user-steps at each evaluation (increasing); ``returns``: the agent's
    ``eval/return`` there; ``targets``: the target at each evaluation (:func:`target_returns`) or
    one number; ``seconds``: training wall-clock seconds at each evaluation (``nan`` if not given).
    Evaluations with a non-finite return or target are skipped.
    """
    s = np.asarray(steps, dtype=np.float64).reshape(-1)
    r = np.asarray(returns, dtype=np.float64).reshape(-1)
    t = np.broadcast_to(np.asarray(targets, dtype=np.float64), s.shape)
    sec = (
        np.full(s.shape, np.nan)
        if seconds is None
        else np.asarray(seconds, dtype=np.float64).reshape(-1)
    )
    if not (r.shape == s.shape == sec.shape):
        raise ValueError(
            f"steps, returns and seconds need one entry per evaluation: {s.size}, {r.size}, "
            f"{sec.size}"
        )
    if s.size == 0:
        raise ValueError("no evaluation: time to good needs an eval/return series")
    if np.any(np.diff(s) < 0):
        raise ValueError("steps must be increasing")
    ok = np.isfinite(r) & np.isfinite(t)
    hit = np.flatnonzero(ok & (r >= t))
    with np.errstate(divide="ignore", invalid="ignore"):
        ratios = np.where(ok & (t != 0), r / np.where(t != 0, t, 1.0), np.nan)
    best = float(np.nanmax(ratios)) if np.any(np.isfinite(ratios)) else math.nan
    budget_steps, budget_seconds = float(s[-1]), float(sec[-1])
    if hit.size:
        i = int(hit[0])
        return TimeToGood(True, float(s[i]), float(sec[i]), budget_steps, budget_seconds, best)
    return TimeToGood(False, budget_steps, budget_seconds, budget_steps, budget_seconds, best)


def training_seconds(window_steps: ArrayLike, sps: ArrayLike, at_steps: ArrayLike) -> np.ndarray:
    """Training wall-clock seconds up to each of ``at_steps``, from the run's ``time/sps`` windows.

    ``time/sps`` at ``window_steps[i]`` is the throughput of the window that ended there (its
    training time, evaluations and checkpoints excluded), so the window took
    ``(window_steps[i] - window_steps[i-1]) / sps[i]`` seconds. Each of ``at_steps`` gets the sum
    over the windows ended by then (an evaluation runs after the window closing at its step).
    """
    w = np.asarray(window_steps, dtype=np.float64).reshape(-1)
    v = np.asarray(sps, dtype=np.float64).reshape(-1)
    if w.shape != v.shape:
        raise ValueError(f"window_steps has {w.size} entries but sps has {v.size}")
    lengths = np.diff(np.concatenate(([0.0], w)))
    with np.errstate(divide="ignore", invalid="ignore"):
        per_window = np.where(v > 0, lengths / np.where(v > 0, v, 1.0), np.nan)
    cumulative = np.concatenate(([0.0], np.cumsum(per_window)))
    ended = np.searchsorted(w, np.asarray(at_steps, dtype=np.float64), side="right")
    return cumulative[ended]


def run_time_to_good(
    series: Mapping[str, tuple[ArrayLike, ArrayLike]], target: Target | None = None
) -> TimeToGood | None:
    """A run's time to good from its logged series (``key -> (steps, values)``): ``eval/return``,
    ``eval/ref_oracle_return`` (and ``eval/ref_longterm_return``) and ``time/sps``. ``target``
    ``None``: :func:`default_target` (headroom where the long-term reference was measured).
    ``None`` when the run has no evaluation with references."""
    if "eval/return" not in series or "eval/ref_oracle_return" not in series:
        return None
    steps, returns = (np.asarray(a, dtype=np.float64) for a in series["eval/return"])
    myopic = _at(series["eval/ref_oracle_return"], steps)
    longterm = (
        _at(series["eval/ref_longterm_return"], steps)
        if "eval/ref_longterm_return" in series
        else None
    )
    target = target or default_target(longterm is not None)
    if not np.any(np.isfinite(myopic)) or steps.size == 0:
        return None
    seconds = training_seconds(*series["time/sps"], steps) if "time/sps" in series else None
    return time_to_good(steps, returns, target_returns(target, myopic, longterm), seconds)


def _at(series: tuple[ArrayLike, ArrayLike], steps: np.ndarray) -> np.ndarray:
    """The series' value at each of ``steps`` (``nan`` where it was not logged)."""
    s, v = (np.asarray(a, dtype=np.float64) for a in series)
    lookup = dict(zip(s.tolist(), v.tolist(), strict=True))
    return np.asarray([lookup.get(x, math.nan) for x in steps.tolist()])


def summarize_time_to_good(results: Sequence[TimeToGood]) -> dict[str, float]:
    """Censoring-aware summary over runs (seeds): Kaplan–Meier medians of the user-steps and the
    seconds (``nan`` when the survival never falls to 1/2: more than half never reached it), the
    number reached and censored, and the largest budget (what ``> budget`` refers to)."""
    nan = math.nan
    if not results:
        return dict.fromkeys(TIME_TO_GOOD_KEYS, nan)
    flags = [r.reached for r in results]
    steps = [r.user_steps for r in results]
    secs = [r.seconds for r in results]
    out = {
        "time_to_good/user_steps_km_median": km_median(steps, flags),
        "time_to_good/seconds_km_median": (
            km_median(secs, flags) if all(math.isfinite(x) for x in secs) else nan
        ),
        "time_to_good/reached": float(sum(flags)),
        "time_to_good/censored": float(len(flags) - sum(flags)),
        "time_to_good/max_budget_steps": max(r.budget_steps for r in results),
        "time_to_good/max_budget_seconds": max(r.budget_seconds for r in results),
    }
    return out


def format_time(value: float | None, budget: float | None, unit: str = "") -> str:
    """``value`` (``,.0f`` user-steps, or ``.1f`` seconds with a ``unit``), or ``> budget`` where
    censored (``nan``; ``None`` as in a report's JSON)."""
    fmt = ",.0f" if unit == "" else ".1f"
    if value is not None and math.isfinite(value):
        return f"{value:{fmt}}{unit}"
    if budget is not None and math.isfinite(budget):
        return f"> {budget:{fmt}}{unit}"
    return "n/a"
