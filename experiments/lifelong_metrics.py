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

import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
from numpy.typing import ArrayLike

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
# input checks
# --------------------------------------------------------------------------------------------------


def _as_steps(steps: ArrayLike, name: str = "steps") -> np.ndarray:
    """Integer step indices, strictly increasing (a logged stream never repeats a step)."""
    arr = np.asarray(steps)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be 1-D, got shape {arr.shape}")
    if arr.size and not np.issubdtype(arr.dtype, np.integer):
        as_float = arr.astype(np.float64)
        if not np.all(np.isfinite(as_float)) or np.any(as_float != np.round(as_float)):
            raise ValueError(f"{name} must hold integer step indices")
    arr = arr.astype(np.int64)
    if arr.size > 1 and np.any(np.diff(arr) <= 0):
        raise ValueError(f"{name} must be strictly increasing")
    return arr


def _as_values(values: ArrayLike, n: int, name: str) -> np.ndarray:
    arr = np.asarray(values, dtype=np.float64)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be 1-D (one value per step), got shape {arr.shape}")
    if arr.shape[0] != n:
        raise ValueError(f"{name} has {arr.shape[0]} values but steps has {n}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} must be finite")
    return arr


def _as_events(event_steps: ArrayLike | None) -> np.ndarray:
    """Sorted, de-duplicated event steps (B users flag the same population event at once)."""
    if event_steps is None:
        return np.zeros(0, dtype=np.int64)
    arr = np.asarray(event_steps)
    if arr.ndim != 1:
        raise ValueError(f"event_steps must be 1-D, got shape {arr.shape}")
    return np.unique(arr.astype(np.int64))


def _check_window(window: int, name: str = "window") -> int:
    if not np.isfinite(window) or window <= 0:
        raise ValueError(f"{name} must be > 0, got {window}")
    return int(window)


def _nanmean(values: Sequence[float] | np.ndarray) -> float:
    arr = np.asarray(values, dtype=np.float64)
    arr = arr[np.isfinite(arr)]
    return float(arr.mean()) if arr.size else float("nan")


# --------------------------------------------------------------------------------------------------
# regret and windowed means
# --------------------------------------------------------------------------------------------------


def _reduce_users(values: ArrayLike, counts: ArrayLike | None) -> tuple[np.ndarray, np.ndarray]:
    """``(T,)`` or ``(T, B, ...)`` values → per-step means and the user-steps each stands for."""
    arr = np.asarray(values, dtype=np.float64)
    if arr.ndim == 0:
        raise ValueError("values must have a time axis")
    per_row = 1
    if arr.ndim > 1:
        per_row = int(np.prod(arr.shape[1:]))
        arr = arr.reshape(arr.shape[0], -1).mean(axis=1)
    if counts is None:
        weights = np.full(arr.shape[0], float(per_row))
    else:
        weights = np.asarray(counts, dtype=np.float64)
        if weights.shape != arr.shape:
            raise ValueError(f"counts must have shape {arr.shape}, got {weights.shape}")
        if np.any(weights < 0):
            raise ValueError("counts must be >= 0")
        weights = weights * per_row
    if not np.all(np.isfinite(arr)):
        raise ValueError("values must be finite")
    return arr, weights


def cumulative_regret(regrets: ArrayLike, *, counts: ArrayLike | None = None) -> np.ndarray:
    """Running total of regret over the stream, in regret × user-steps.

    ``regrets`` is ``(T,)`` (one value per step) or ``(T, B)`` (the ``info["regret"]`` of each
    vector step: summed over users). When each entry is a logging window's *mean* regret, pass
    ``counts`` (user-steps per entry) so that the total weighs windows by their length. Returns
    ``(T,)``; its last entry is the cumulative (dynamic) regret of the stream.
    """
    means, weights = _reduce_users(regrets, counts)
    return np.cumsum(means * weights)


def windowed_mean(
    steps: ArrayLike, values: ArrayLike, *, window: int, weights: ArrayLike | None = None
) -> np.ndarray:
    """Trailing windowed mean: at each sample, the (weighted) mean over steps ``(s - window, s]``.

    O(T) with cumulative sums. Samples are never padded, so the first window holds fewer samples.
    """
    st = _as_steps(steps)
    val = _as_values(values, st.size, "values")
    window = _check_window(window)
    w = np.ones(st.size) if weights is None else _as_values(weights, st.size, "weights")
    if np.any(w < 0):
        raise ValueError("weights must be >= 0")
    csum = np.concatenate(([0.0], np.cumsum(w * val)))
    wsum = np.concatenate(([0.0], np.cumsum(w)))
    lo = np.searchsorted(st, st - window, side="right")
    hi = np.arange(1, st.size + 1)
    den = wsum[hi] - wsum[lo]
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, (csum[hi] - csum[lo]) / den, np.nan)


def windowed_regret(
    steps: ArrayLike, regrets: ArrayLike, *, window: int, counts: ArrayLike | None = None
) -> np.ndarray:
    """Mean regret per user-step over the trailing ``window`` steps, at every sample.

    ``regrets`` is ``(T,)`` or ``(T, B)``; ``counts`` as in :func:`cumulative_regret`. The dynamic
    regret *rate* a drifting world imposes: it spikes at a drift event, decays as the agent adapts.
    """
    means, weights = _reduce_users(regrets, counts)
    return windowed_mean(steps, means, window=window, weights=weights)


def event_steps_from_flags(steps: ArrayLike, flags: ArrayLike) -> np.ndarray:
    """Steps at which any user's ``info["drift_event"]`` is set (``flags``: ``(T,)``/``(T, B)``)."""
    st = _as_steps(steps)
    fl = np.asarray(flags, dtype=bool)
    if fl.shape[0] != st.size:
        raise ValueError(f"flags has {fl.shape[0]} rows but steps has {st.size}")
    if fl.ndim > 1:
        fl = fl.reshape(fl.shape[0], -1).any(axis=1)
    return st[fl]


def phase_change_steps(steps: ArrayLike, phases: ArrayLike) -> np.ndarray:
    """Steps at which the regime id differs from the previous sample's (never the first sample)."""
    st = _as_steps(steps)
    ph = _as_phases(phases, st.size)
    return st[1:][ph[1:] != ph[:-1]]


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
# regimes: forgetting and plasticity
# --------------------------------------------------------------------------------------------------


def _as_phases(phases: ArrayLike, n: int) -> np.ndarray:
    arr = np.asarray(phases)
    if arr.ndim != 1:
        raise ValueError(
            "phases must be 1-D (one regime id per step); reduce a vector env's (T, B) "
            f"info['drift_phase'] first, e.g. phases[:, 0] for population drift; "
            f"got shape {arr.shape}"
        )
    if arr.shape[0] != n:
        raise ValueError(f"phases has {arr.shape[0]} values but steps has {n}")
    return arr.astype(np.int64)


@dataclass(frozen=True)
class RegimeVisit:
    """A maximal run of consecutive samples with the same regime id.

    ``visit_index`` counts this regime's visits (0 = first visit, k = its k-th return);
    ``start``/``stop`` slice the sample arrays; ``start_step``/``end_step`` are the first and last
    sample steps of the run.
    """

    regime: int
    visit_index: int
    start: int
    stop: int
    start_step: int
    end_step: int


def regime_visits(steps: ArrayLike, phases: ArrayLike) -> list[RegimeVisit]:
    """Split the stream into regime visits (runs of equal ``info["drift_phase"]``), in order."""
    st = _as_steps(steps)
    ph = _as_phases(phases, st.size)
    if st.size == 0:
        return []
    bounds = np.concatenate(([0], np.flatnonzero(ph[1:] != ph[:-1]) + 1, [st.size]))
    seen: dict[int, int] = {}
    visits = []
    for a, b in itertools.pairwise(bounds):
        regime = int(ph[a])
        k = seen.get(regime, 0)
        seen[regime] = k + 1
        visits.append(RegimeVisit(regime, k, int(a), int(b), int(st[a]), int(st[b - 1])))
    return visits


@dataclass(frozen=True)
class ForgettingRecord:
    """One return of a regime compared with its first visit.

    ``reference_level``: mean reward over the last ``window`` steps of the regime's first visit
    (what the agent had learned). ``return_level``: mean reward over the first ``window`` steps of
    its ``return_index``-th return (what it still knew). ``forgetting = reference - return``
    (divided by ``|reference|`` when relative): positive = forgot, ≤ 0 = retained (or transferred).
    """

    regime: int
    return_index: int
    start_step: int
    reference_level: float
    return_level: float
    forgetting: float


@dataclass(frozen=True)
class ForgettingReport:
    """Per-return records; ``mean`` over all returns and ``per_regime`` means (``nan`` if none)."""

    records: tuple[ForgettingRecord, ...]

    @property
    def mean(self) -> float:
        return _nanmean([r.forgetting for r in self.records])

    @property
    def per_regime(self) -> dict[int, float]:
        regimes = sorted({r.regime for r in self.records})
        return {g: _nanmean([r.forgetting for r in self.records if r.regime == g]) for g in regimes}

    @property
    def num_returns(self) -> int:
        return len(self.records)


def forgetting(
    steps: ArrayLike,
    rewards: ArrayLike,
    phases: ArrayLike,
    *,
    window: int,
    relative: bool = False,
) -> ForgettingReport:
    """Forgetting on recurring regimes: end of first visit vs start of each later return.

    ``phases`` is the regime id per sample (``info["drift_phase"]``). For every regime visited more
    than once and every return ``k >= 1``, see :class:`ForgettingRecord`. Comparing the *start* of a
    return with the *end* of the first visit isolates what was kept: an agent that retains its
    knowledge earns its old level at once; one that overwrote it must relearn.
    """
    st = _as_steps(steps)
    rw = _as_values(rewards, st.size, "rewards")
    window = _check_window(window)
    visits = regime_visits(st, phases)
    first: dict[int, float] = {}
    records = []
    for v in visits:
        vs, vr = st[v.start : v.stop], rw[v.start : v.stop]
        if v.visit_index == 0:
            first[v.regime] = float(vr[vs > v.end_step - window].mean())
            continue
        ref = first[v.regime]
        ret = float(vr[vs < v.start_step + window].mean())
        value = ref - ret
        if relative:
            value = value / abs(ref) if ref != 0 else float("nan")
        records.append(ForgettingRecord(v.regime, v.visit_index, v.start_step, ref, ret, value))
    return ForgettingReport(tuple(records))


@dataclass(frozen=True)
class PlasticityRecord:
    """Reward slope over the first ``horizon`` steps of one segment (a regime visit).

    ``regime`` is ``None`` when segments come from event steps rather than regime ids. ``initial``:
    the segment that opens the stream (learning from scratch, not adaptation after a change).
    ``first_visit``: the regime had not been seen before (always true for event segments).
    ``slope_per_1k``: OLS slope of reward against step × ``per`` (``nan`` with < 2 samples).
    """

    regime: int | None
    start_step: int
    initial: bool
    first_visit: bool
    num_samples: int
    slope_per_1k: float


@dataclass(frozen=True)
class PlasticityReport:
    """``mean_per_1k``: mean slope over the segments that start at a change (``initial`` excluded);
    ``fresh_mean_per_1k``: the same over first visits only (regimes never seen before)."""

    records: tuple[PlasticityRecord, ...]

    @property
    def mean_per_1k(self) -> float:
        return _nanmean([r.slope_per_1k for r in self.records if not r.initial])

    @property
    def fresh_mean_per_1k(self) -> float:
        return _nanmean([r.slope_per_1k for r in self.records if not r.initial and r.first_visit])


def _ols_slope(x: np.ndarray, y: np.ndarray) -> float:
    if x.size < 2:
        return float("nan")
    xc = x - x.mean()
    den = float(np.dot(xc, xc))
    return float(np.dot(xc, y - y.mean()) / den) if den > 0 else float("nan")


def plasticity(
    steps: ArrayLike,
    rewards: ArrayLike,
    *,
    horizon: int,
    phases: ArrayLike | None = None,
    event_steps: ArrayLike | None = None,
    per: int = 1000,
) -> PlasticityReport:
    """Reward gained per ``per`` (1k) steps early in each regime: how fast the agent still learns.

    Segments are the regime visits of ``phases`` if given, else the stretches between
    ``event_steps`` (else the whole stream). In each, the OLS slope of reward against step is fitted
    over the samples with step in ``[start, start + horizon)``. A plastic agent climbs fast after a
    change; one that has lost plasticity (saturated units, an exploration rate decayed to zero)
    stays flat.
    """
    st = _as_steps(steps)
    rw = _as_values(rewards, st.size, "rewards")
    horizon = _check_window(horizon, "horizon")
    if st.size == 0:
        return PlasticityReport(())
    segments: list[tuple[int | None, int, int, bool]] = []  # (regime, start, stop, first_visit)
    if phases is not None:
        for v in regime_visits(st, phases):
            segments.append((v.regime, v.start, v.stop, v.visit_index == 0))
    else:
        events = _as_events(event_steps)
        cuts = np.searchsorted(st, events, side="left")
        cuts = np.unique(np.concatenate(([0], cuts[(cuts > 0) & (cuts < st.size)], [st.size])))
        for a, b in itertools.pairwise(cuts):
            segments.append((None, int(a), int(b), True))
    records = []
    for regime, a, b, first in segments:
        seg_s, seg_r = st[a:b], rw[a:b]
        keep = seg_s < seg_s[0] + horizon
        x = (seg_s[keep] - seg_s[0]).astype(np.float64)
        slope = _ols_slope(x, seg_r[keep]) * per
        records.append(PlasticityRecord(regime, int(seg_s[0]), a == 0, first, int(x.size), slope))
    return PlasticityReport(tuple(records))


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
