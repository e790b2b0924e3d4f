"""Lifelong-learning metrics over a logged reward stream.

Every function here is pure numpy over arrays the runner already has: ``steps`` (user-step indices,
strictly increasing: SB3's ``num_timesteps`` at each logged point), one value per step (a reward or
a regret: either one vector step's mean over its ``B`` users, or one logging window's mean), and the
ground truth about the world (drift-event steps, the regime id ``info["drift_phase"]``). The metrics
answer the three questions a lifelong recommender is judged on:

- **regret**: how much reward was lost against the oracle over the whole stream
  (:func:`cumulative_regret`, :func:`windowed_regret`);
- **recovery**: after each drift event, how many steps until the windowed reward is back within
  ``tolerance`` (10 %) of its pre-event level (:func:`recovery_times`). An event after which the
  reward never recovers before the next event or the end of the stream is *censored*: reported with
  its censoring time, never dropped, because dropping the slowest recoveries would flatter an agent;
- **forgetting and plasticity** on recurring regimes (seasonal drift): does the agent still earn
  what it had learned when a regime comes back (:func:`forgetting`), and how fast does reward climb
  in a regime after a change (:func:`plasticity`).

:func:`summarize_lifelong` flattens them into ``lifelong/*`` keys for ``summary.json``. Conventions
shared by all functions:

- a sample at step ``s`` belongs to the regime in force at ``s``; an event at step ``e`` affects the
  samples at steps ``>= e`` (the sample at ``e`` is post-event);
- windows are in user-steps: the *trailing windowed mean* at step ``s`` is the mean of the samples
  with step in ``(s - window, s]``;
- an undefined value is ``nan``, never a made-up number.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
from numpy.typing import ArrayLike

from experiments.analysis.regimes import (
    ForgettingRecord,
    ForgettingReport,
    PlasticityRecord,
    PlasticityReport,
    RegimeVisit,
    forgetting,
    phase_change_steps,
    plasticity,
    regime_visits,
)
from experiments.analysis.series import (
    _as_events,
    _as_steps,
    _as_values,
    _check_window,
    _nanmean,
    cumulative_regret,
    event_steps_from_flags,
    windowed_mean,
    windowed_regret,
)

__all__ = [
    "ForgettingRecord",
    "ForgettingReport",
    "PlasticityRecord",
    "PlasticityReport",
    "RecoveryRecord",
    "RecoveryReport",
    "RegimeVisit",
    "cumulative_regret",
    "event_steps_from_flags",
    "forgetting",
    "phase_change_steps",
    "plasticity",
    "recovery_times",
    "regime_visits",
    "summarize_lifelong",
    "windowed_mean",
    "windowed_regret",
]


# --------------------------------------------------------------------------------------------------
# recovery after drift events
# --------------------------------------------------------------------------------------------------

RecoveryStatus = Literal["recovered", "censored", "undefined"]


@dataclass(frozen=True)
class RecoveryRecord:
    """What happened after one drift event.

    ``recovery_steps``: steps from the event to the first sample at which the post-event windowed
    reward is ``>= threshold`` (``None`` unless recovered). ``censoring_steps``: for a censored
    event, the steps observed without recovery (last post-event sample before the next event or the
    end, minus the event step): the true recovery time is known only to exceed it. ``pre_level`` is
    ``nan`` and the event ``undefined`` when there is no sample before it (in its baseline window)
    or none after it (before the next event).
    """

    event_step: int
    pre_level: float
    threshold: float
    recovery_steps: int | None
    censored: bool
    censoring_steps: int | None

    @property
    def status(self) -> RecoveryStatus:
        if self.recovery_steps is not None:
            return "recovered"
        return "censored" if self.censored else "undefined"

    @property
    def observed_steps(self) -> int | None:
        """Recovery time if recovered, censoring time if censored, else ``None``."""
        return self.recovery_steps if self.recovery_steps is not None else self.censoring_steps


@dataclass(frozen=True)
class RecoveryReport:
    """Per-event records and their summary.

    - ``mean_recovery``: mean recovery time over the *recovered* events only (``nan`` if none).
      Alone it is optimistic: it ignores the events the agent never recovered from.
    - ``censored_mean``: the Kaplan–Meier restricted mean recovery time, ∫₀^τ S(t) dt, with S the
      Kaplan–Meier estimate of P(recovery takes longer than t) from recovered events (observed) and
      censored events (censored at their censoring time), τ the largest observed time. Censored
      events count for as long as they were watched, so failing to recover never lowers it, and an
      event censored early (e.g. just before the end of the stream) does not drag it down. With no
      censoring it equals ``mean_recovery``; if the longest time is censored it is a lower bound.
    - ``naive_censored_mean``: the plain mean of ``observed_steps`` (censored events counted at
      their censoring time). Simpler, also a lower bound, but an event censored after a few steps
      pulls it below ``mean_recovery``.
    - ``num_censored``: how many events were censored; report it next to the means.
    """

    records: tuple[RecoveryRecord, ...]

    @property
    def num_events(self) -> int:
        return len(self.records)

    @property
    def num_recovered(self) -> int:
        return sum(r.status == "recovered" for r in self.records)

    @property
    def num_censored(self) -> int:
        return sum(r.status == "censored" for r in self.records)

    @property
    def num_undefined(self) -> int:
        return sum(r.status == "undefined" for r in self.records)

    @property
    def mean_recovery(self) -> float:
        return _nanmean([r.recovery_steps for r in self.records if r.recovery_steps is not None])

    @property
    def naive_censored_mean(self) -> float:
        return _nanmean([r.observed_steps for r in self.records if r.observed_steps is not None])

    @property
    def censored_mean(self) -> float:
        obs = [(r.observed_steps, not r.censored) for r in self.records if r.status != "undefined"]
        return _km_restricted_mean(obs)


def _km_restricted_mean(observations: list[tuple[int | None, bool]]) -> float:
    """Area under the Kaplan–Meier survival curve up to the largest time (events before censorings
    at tied times, the usual convention). ``observations``: ``(time, is_event)`` pairs."""
    if not observations:
        return float("nan")
    times = np.asarray([t for t, _ in observations], dtype=np.float64)
    events = np.asarray([e for _, e in observations], dtype=bool)
    survival, area, t_prev = 1.0, 0.0, 0.0
    for t in np.unique(times):
        area += survival * (t - t_prev)
        t_prev = t
        at_risk = np.count_nonzero(times >= t)
        recovered = np.count_nonzero((times == t) & events)
        survival *= 1.0 - recovered / at_risk
    return float(area)


def recovery_times(
    steps: ArrayLike,
    rewards: ArrayLike,
    event_steps: ArrayLike,
    *,
    window: int,
    tolerance: float = 0.10,
    baseline_window: int | None = None,
    min_samples: int = 1,
) -> RecoveryReport:
    """Steps until the windowed reward is back within ``tolerance`` of its pre-event level.

    For each event ``e`` (sorted, duplicates merged):

    - ``pre_level`` = mean reward of the samples with step in ``[e - baseline_window, e)``, the
      start clipped to the previous event so that the baseline is the level of the regime ``e``
      ended (``baseline_window`` defaults to ``window``);
    - recovered at the first sample ``s`` (``e <= s <`` next event) whose trailing windowed mean
      over *post-event* samples only (steps in ``(s - window, s] ∩ [e, ∞)``, at least
      ``min_samples`` of them) is ``>= pre_level - tolerance * |pre_level|``; recovery time
      ``s - e``. The criterion is one-sided: a reward *above* the old level counts as recovered
      (higher reward is better). Raise ``min_samples`` on noisy per-step data so that one lucky
      sample right after the event does not count as recovery;
    - otherwise censored at the last post-event sample before the next event (or the end).
    """
    st = _as_steps(steps)
    rw = _as_values(rewards, st.size, "rewards")
    events = _as_events(event_steps)
    window = _check_window(window)
    baseline_window = window if baseline_window is None else _check_window(baseline_window)
    if tolerance < 0:
        raise ValueError(f"tolerance must be >= 0, got {tolerance}")
    if min_samples < 1:
        raise ValueError(f"min_samples must be >= 1, got {min_samples}")

    records: list[RecoveryRecord] = []
    for i, e in enumerate(events):
        e = int(e)
        base_lo = e - baseline_window
        if i > 0:
            base_lo = max(base_lo, int(events[i - 1]))
        ia = int(np.searchsorted(st, base_lo, side="left"))
        ib = int(np.searchsorted(st, e, side="left"))
        jb = (
            int(np.searchsorted(st, events[i + 1], side="left")) if i + 1 < events.size else st.size
        )
        if ib == ia or jb == ib:
            records.append(RecoveryRecord(e, float("nan"), float("nan"), None, False, None))
            continue
        pre_level = float(rw[ia:ib].mean())
        threshold = pre_level - tolerance * abs(pre_level)
        seg_steps, seg_rewards = st[ib:jb], rw[ib:jb]
        smooth = windowed_mean(seg_steps, seg_rewards, window=window)
        lo = np.searchsorted(seg_steps, seg_steps - window, side="right")
        count = np.arange(1, seg_steps.size + 1) - lo
        ok = (count >= min_samples) & (smooth >= threshold)
        if ok.any():
            k = int(np.argmax(ok))
            records.append(
                RecoveryRecord(e, pre_level, threshold, int(seg_steps[k] - e), False, None)
            )
        else:
            censoring = int(seg_steps[-1] - e)
            records.append(RecoveryRecord(e, pre_level, threshold, None, True, censoring))
    return RecoveryReport(tuple(records))


# --------------------------------------------------------------------------------------------------
# summary
# --------------------------------------------------------------------------------------------------


def summarize_lifelong(
    steps: ArrayLike,
    rewards: ArrayLike,
    *,
    window: int,
    event_steps: ArrayLike | None = None,
    phases: ArrayLike | None = None,
    regrets: ArrayLike | None = None,
    regret_counts: ArrayLike | None = None,
    tolerance: float = 0.10,
    baseline_window: int | None = None,
    min_samples: int = 1,
    plasticity_horizon: int | None = None,
    prefix: str = "lifelong/",
) -> dict[str, float]:
    """All lifelong metrics as flat ``lifelong/*`` keys (for ``summary.json``).

    Without ``event_steps`` the events are the regime changes of ``phases`` (if given). Every key is
    always present; a metric the stream cannot define (no events, no recurring regime, no regrets)
    is ``nan``. ``plasticity_horizon`` defaults to ``window``. Keys:
    ``cumulative_regret`` (total regret × user-steps), ``num_drift_events``,
    ``recovery_time_mean`` (recovered events only), ``recovery_time_censored_mean`` (Kaplan–Meier
    restricted mean, see :class:`RecoveryReport`), ``recovery_recovered``, ``recovery_censored``,
    ``forgetting_mean``, ``forgetting_returns``, ``plasticity_per_1k`` (post-change segments),
    ``plasticity_fresh_per_1k`` (never-seen regimes only).
    """
    st = _as_steps(steps)
    rw = _as_values(rewards, st.size, "rewards")
    if event_steps is None and phases is not None:
        events = phase_change_steps(st, phases)
    else:
        events = _as_events(event_steps)
    out: dict[str, float] = {}
    if regrets is not None:
        cum = cumulative_regret(regrets, counts=regret_counts)
        out["cumulative_regret"] = float(cum[-1]) if cum.size else 0.0
    else:
        out["cumulative_regret"] = float("nan")
    rec = recovery_times(
        st,
        rw,
        events,
        window=window,
        tolerance=tolerance,
        baseline_window=baseline_window,
        min_samples=min_samples,
    )
    out["num_drift_events"] = float(events.size)
    out["recovery_time_mean"] = rec.mean_recovery
    out["recovery_time_censored_mean"] = rec.censored_mean
    out["recovery_recovered"] = float(rec.num_recovered)
    out["recovery_censored"] = float(rec.num_censored)
    if phases is not None:
        fg = forgetting(st, rw, phases, window=window)
        out["forgetting_mean"] = fg.mean
        out["forgetting_returns"] = float(fg.num_returns)
    else:
        out["forgetting_mean"] = float("nan")
        out["forgetting_returns"] = 0.0
    horizon = window if plasticity_horizon is None else plasticity_horizon
    pl = plasticity(st, rw, horizon=horizon, phases=phases, event_steps=events)
    out["plasticity_per_1k"] = pl.mean_per_1k
    out["plasticity_fresh_per_1k"] = pl.fresh_mean_per_1k
    return {f"{prefix}{k}": v for k, v in out.items()}
