"""Lifelong-learning metrics over a logged reward stream.

Every function here is pure numpy over arrays the runner already has: ``steps`` (user-step indices,
strictly increasing: SB3's ``num_timesteps`` at each logged point), one value per step (a reward or
a regret: either one vector step's mean over its ``B`` users, or one logging window's mean), and the
ground truth about the world (drift-event steps, the regime id ``info["drift_phase"]``). The metrics
answer the three questions a lifelong recommender is judged on:

- **regret**: how much reward was lost against the oracle over the whole stream
  (:func:`cumulative_regret`, :func:`windowed_regret`);
- **recovery**: after each drift event, how many steps until the agent is back within
  ``tolerance`` (10 %) of its pre-event level (:func:`recovery_times`, the definitions of
  :mod:`experiments.analysis.recovery`). An event after which it never recovers before the next
  event or the end of the stream is *censored*: reported with its censoring time, never dropped,
  because dropping the slowest recoveries would flatter an agent. The protocol measures recovery
  on ground truth at every vector step (``lifelong/recovery_*``, from
  :class:`~experiments.analysis.recovery.RecoveryTracker`), not here: :func:`summarize_lifelong`
  has no recovery key;
- **forgetting and plasticity** on recurring regimes (seasonal drift): does the agent still earn
  what it had learned when a regime comes back (:func:`forgetting`), and how fast does reward climb
  in a regime after a change (:func:`plasticity`).

:func:`summarize_lifelong` flattens them into ``lifelong/*`` keys for ``summary.json``. Conventions
shared by all functions:

- a sample at step ``s`` belongs to the regime in force at ``s``; an event at step ``e`` affects the
  samples at steps ``>= e`` (the sample at ``e`` is post-event). For events flagged by
  ``info["drift_event"]`` pass the *attributed* steps (the first sample at or after each onset:
  :func:`experiments.analysis.recovery.attribute_events`), as the protocol does: the sample at the
  flagged step itself still earned pre-event rewards. :func:`recovery_times` is the exception: it
  takes the flagged steps (module :mod:`experiments.analysis.recovery` attributes them);
- windows are in user-steps: the *trailing windowed mean* at step ``s`` is the mean of the samples
  with step in ``(s - window, s]``;
- an undefined value is ``nan``, never a made-up number.
"""

from __future__ import annotations

from dataclasses import dataclass

from numpy.typing import ArrayLike

from experiments.analysis.recovery import (
    EventRecovery,
    summarize_recovery,
    window_recovery_times,
)
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
# recovery after drift events: the corrected computation of experiments.analysis.recovery
# --------------------------------------------------------------------------------------------------

RecoveryRecord = EventRecovery  # the name this module used for one event's record


@dataclass(frozen=True)
class RecoveryReport:
    """Per-event records (:class:`~experiments.analysis.recovery.EventRecovery`) and their summary.

    - ``mean_recovery``: mean recovery time over the *recovered* events only (``nan`` if none).
      Alone it is optimistic: it ignores the events the agent never recovered from.
    - ``censored_mean``: the Kaplan–Meier restricted mean recovery time (censored events count for
      as long as they were watched; if the longest time is censored it is a lower bound). With no
      censoring it equals ``mean_recovery``.
    - ``naive_censored_mean``: the plain mean of recovery and censoring times (a lower bound that
      an event censored early pulls down).
    """

    records: tuple[EventRecovery, ...]

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
        return _nanmean([r.time for r in self.records if r.time is not None])

    @property
    def censored_mean(self) -> float:
        return summarize_recovery(self.records, prefix="")["recovery_time_km_mean"]


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
    """Recovery after each event of a sample series (per vector step, or per logging window).

    The one definition of :mod:`experiments.analysis.recovery` (its module doc), computed by
    :func:`~experiments.analysis.recovery.window_recovery_times`: ``event_steps`` are the step
    counts at which ``info["drift_event"]`` was seen (the sample *at* that step still earned
    pre-event rewards: the world ticks after the action); sample ``i`` covers the user-steps after
    sample ``i - 1`` up to ``steps[i]``; the baseline is the ``baseline_window`` (default
    ``window``) user-steps up to the event, not reaching back past the previous event; the trailing
    mean over ``window`` user-steps of post-event samples (at least ``min_samples``) must be back
    within ``tolerance`` of it at the end of the observation, the recovery time being where that
    final good stretch begins. Raise ``min_samples`` on noisy per-step data.

    For the protocol's runs the ground-truth tracker (``lifelong/recovery_*``) measures this on the
    share of the oracle's expected reward at every vector step; this function serves reward
    series recorded elsewhere.
    """
    window = _check_window(window)
    baseline = window if baseline_window is None else _check_window(baseline_window)
    if tolerance < 0:
        raise ValueError(f"tolerance must be >= 0, got {tolerance}")
    if min_samples < 1:
        raise ValueError(f"min_samples must be >= 1, got {min_samples}")
    st = _as_steps(steps)
    rw = _as_values(rewards, st.size, "rewards")
    records = window_recovery_times(
        st,
        rw,
        _as_events(event_steps),
        baseline_window=baseline,
        tolerance=tolerance,
        window=window,
        min_samples=min_samples,
    )
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
    plasticity_horizon: int | None = None,
    prefix: str = "lifelong/",
) -> dict[str, float]:
    """All lifelong metrics as flat ``lifelong/*`` keys (for ``summary.json``).

    Without ``event_steps`` the events are the regime changes of ``phases`` (if given). Every key is
    always present; a metric the stream cannot define (no events, no recurring regime, no regrets)
    is ``nan``. ``plasticity_horizon`` defaults to ``window``. Keys:
    ``cumulative_regret`` (total regret × user-steps), ``num_drift_events``, ``forgetting_mean``, ``forgetting_returns``, ``plasticity_per_1k`` (post-change segments),
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
    out["num_drift_events"] = float(events.size)
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
