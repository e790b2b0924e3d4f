"""Recovery after drift events, attributed right and measured on ground truth.

**Timing.** The simulator resolves the action of a vector step *before* the world ticks
(``recsim_env.core``: click → user dynamics → world tick → drift), so the vector step whose info
carries ``drift_event = True`` still earned pre-event rewards. With ``s`` the step count
(user-steps, SB3's ``num_timesteps``) at which the flag was seen, the event's **onset**, the first
user-step of the new regime, is ``s + 1`` (:func:`event_onsets`); "steps since the event" of a
later point stamped ``t`` is ``t - s``.

**1. Event attribution for logged samples** (e.g. the protocol's ``log_every`` windows, sample
``t`` covering user-steps after the previous sample up to ``t``). An event **belongs to the first
sample at or after its onset** (:func:`attribute_events`); its pre-event baseline uses only the
samples strictly before that one. Stamping it at ``s`` and counting the sample at ``s`` as
post-event (``experiments.lifelong_metrics`` as of issue 12) made every recovery read 0 on
``AbruptShift-v0``: its jumps fall exactly on logging boundaries, so the "first post-event
window" was the last pre-event one. :func:`window_recovery_times` is the corrected computation:
a sample that holds the onset *and* pre-event user-steps (an event inside a window) belongs to
the event (never to a baseline) but does not count as evidence of recovery either.

**2. Recovery on ground truth, per vector step** (:class:`RecoveryTracker`). Reward levels move with
the world (a jump can make every item less attractive), so "back within 10 % of the pre-event
reward" confounds the agent with the world. The tracker measures the **share of the myopic
oracle's expected reward**: per vector step ``share = Σ_users chosen / Σ_users best`` (the true
expected reward of the recommended candidate and of the best candidate; a ratio of sums, so users
whose best is ≈ 0 do not blow it up). The oracle's share is 1 at every step whatever the drift;
a learner's dips after a jump and climbs back; a frozen policy's dips and stays down. Exact inputs:
:func:`chosen_and_best` (the ``expected_reward`` of the info that came with the observation acted
on, and the actions; ``best - chosen`` is the step's ``info["regret"]``). Single-item mode only:
in slate mode the best slate's value is not in ``info``.

Definitions per event (the tracker's; :func:`window_recovery_times` applies the same ones to
samples):

- ``pre_level``: the share over the ``baseline`` user-steps up to and including ``s``, not reaching
  back past the previous event (the level of the regime that ended);
- the post-event curve: the share per ``bin_size`` user-steps (default one vector step) over
  ``horizon`` user-steps, cut short by the next event or the end of the run;
- **recovery time** (a settling time): the share is smoothed over ``sustain`` user-steps (windows
  starting at each bin); the event is **recovered** if the last window observed is back within
  ``tolerance`` (``>= (1 - tolerance) · pre_level``, one-sided: above the old level counts), and
  its recovery time is where the final run of good windows starts (user-steps since the event; 0 =
  never fell below). "First time back" would not do: after a jump live users drift to the new
  profile gradually (``drift_pull``), so a frozen policy often starts within 10 % and falls out
  of it later. Otherwise **censored** at the start of the last observed window plus one bin (the
  true time is longer); no baseline, or less than ``sustain`` observed → **undefined** (reported,
  not dropped);
- **drop**: ``1 - share(first sustain window) / pre_level`` (relative; < 0 if the share rose);
- **auc**: the post-event share over the observed horizon relative to ``pre_level``
  (``Σ chosen / (pre_level · Σ best)``): the normalised area under the recovery curve, 1 = nothing
  lost, ``1 - auc`` = the area between the curve and the pre-event level, per unit of horizon.

Summary keys (:data:`RECOVERY_KEYS`, prefix ``lifelong/``), over the defined events of a run (or
pooled over runs and seeds with :func:`summarize_recovery`): ``recovery_time_km_mean``
(Kaplan–Meier restricted mean: censored events count as long as they were watched; if the longest
time is censored it is a lower bound), ``recovery_time_km_median`` (``nan`` while the KM survival
stays above 1/2, e.g. a frozen agent), ``recovery_drop`` and ``recovery_auc`` (means over
events), ``recovered_share`` (recovered / defined), ``recovery_recovered``,
``recovery_censored``, ``recovery_undefined`` (counts), ``recovery_pre_level`` (mean pre-event
level: share of the oracle for the tracker). Undefined values are ``nan``, never made up.

The Kaplan–Meier estimate (:func:`kaplan_meier`) is the one of
``experiments.lifelong_metrics`` (``RecoveryReport.censored_mean``: product-limit, recoveries before
censorings at tied times, restricted mean up to the largest time), moved here and vectorised, plus
the median; the tests check it against that loop and that module's hand examples. This module does
not import ``experiments.lifelong_metrics``.
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
    "RecoveryTracker",
    "attribute_events",
    "chosen_and_best",
    "event_onsets",
    "event_onsets_from_flags",
    "kaplan_meier",
    "km_median",
    "km_restricted_mean",
    "summarize_recovery",
    "window_recovery_times",
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
    times = [float(r.time) for r in defined]
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


# --------------------------------------------------------------------------------------------------
# 1. event attribution
# --------------------------------------------------------------------------------------------------


def event_onsets(flagged_steps: ArrayLike) -> np.ndarray:
    """First user-step of each event's new regime: the step count at which ``drift_event`` was
    seen, plus one (sorted, duplicates merged: B users flag one population event at once)."""
    arr = np.asarray(flagged_steps)
    if arr.ndim != 1:
        raise ValueError(f"flagged_steps must be 1-D, got shape {arr.shape}")
    return np.unique(arr.astype(np.int64)) + 1


def event_onsets_from_flags(steps: ArrayLike, flags: ArrayLike) -> np.ndarray:
    """Onsets from per-vector-step flags: ``steps`` ``(T,)`` step counts, ``flags`` ``(T,)`` or
    ``(T, B)`` (``info["drift_event"]``, any user)."""
    st = np.asarray(steps, dtype=np.int64).reshape(-1)
    fl = np.asarray(flags, dtype=bool)
    if fl.shape[0] != st.size:
        raise ValueError(f"flags has {fl.shape[0]} rows but steps has {st.size}")
    if fl.ndim > 1:
        fl = fl.reshape(fl.shape[0], -1).any(axis=1)
    return event_onsets(st[fl])


def attribute_events(sample_steps: ArrayLike, onsets: ArrayLike) -> np.ndarray:
    """The step of the sample each event belongs to: the first sample at or after its onset.

    An onset after the last sample keeps its own value (no sample holds it: the event is then
    ``undefined`` downstream, never dropped). Events attributed to the same sample merge (they
    cannot be told apart at that resolution). Returns sorted, unique steps.
    """
    st = _as_steps(sample_steps, "sample_steps")
    on = np.asarray(onsets, dtype=np.int64).reshape(-1)
    if st.size == 0:
        return np.unique(on)
    idx = np.searchsorted(st, on, side="left")
    return np.unique(np.where(idx < st.size, st[np.minimum(idx, st.size - 1)], on))


def _as_steps(steps: ArrayLike, name: str) -> np.ndarray:
    arr = np.asarray(steps)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be 1-D, got shape {arr.shape}")
    if arr.size and not np.issubdtype(arr.dtype, np.integer):
        as_float = arr.astype(np.float64)
        if not np.all(np.isfinite(as_float)) or np.any(as_float != np.round(as_float)):
            raise ValueError(f"{name} must hold integer step counts")
    arr = arr.astype(np.int64)
    if arr.size > 1 and np.any(np.diff(arr) <= 0):
        raise ValueError(f"{name} must be strictly increasing")
    return arr


def window_recovery_times(
    steps: ArrayLike,
    values: ArrayLike,
    flagged_steps: ArrayLike,
    *,
    baseline_window: int,
    tolerance: float = 0.10,
    window: int | None = None,
    min_samples: int = 1,
) -> list[EventRecovery]:
    """Recovery from logged samples, events attributed right (module doc, part 1).

    ``steps`` ``(T,)``: the step count at the end of each sample; sample ``i`` covers user-steps
    ``(steps[i-1], steps[i]]`` (the first ``(0, steps[0]]``), as the protocol's contiguous
    ``log_every`` windows do; ``values``: its mean (reward, or share of the oracle);
    ``flagged_steps``: step counts at which ``info["drift_event"]`` was seen. Per event ``s``:

    - baseline: the samples entirely before the onset (``steps[i] <= s``) within
      ``baseline_window`` user-steps and entirely after the previous event; their user-step
      weighted mean is the pre-event level;
    - the sample holding the onset is post-event (never in a baseline) but, when it also holds
      pre-event user-steps, it is not used to judge recovery: only samples entirely after the
      event (and entirely before the next one) are;
    - at each judged sample, the trailing mean over judged samples within ``window`` user-steps
      (default: the sample alone; at least ``min_samples`` of them) is compared with
      ``(pre - tolerance·|pre|)``; recovered when the last judged sample is back, the recovery
      time being where the final run of good samples starts (the start of the window of its
      first sample, minus ``s``; 0 = never below), as :class:`RecoveryTracker` defines it; else
      censored at the end of the last judged sample minus ``s``. No judged sample (or none with
      ``min_samples``), or no baseline: undefined.

    ``drop``: ``1 - first judged mean / pre``; ``auc``: the judged samples' user-step weighted
    mean over ``pre``. Returns one :class:`EventRecovery` per event (sorted, duplicates merged).
    """
    st = _as_steps(steps, "steps")
    val = np.asarray(values, dtype=np.float64).reshape(-1)
    if val.size != st.size:
        raise ValueError(f"values has {val.size} entries but steps has {st.size}")
    if not np.all(np.isfinite(val)):
        raise ValueError("values must be finite")
    baseline_window = _check_positive_int("baseline_window", baseline_window)
    window = None if window is None else _check_positive_int("window", window)
    min_samples = _check_positive_int("min_samples", min_samples)
    if not (isinstance(tolerance, int | float | np.floating) and tolerance >= 0.0):
        raise ValueError(f"invalid tolerance={tolerance!r} (allowed: a number >= 0)")
    flagged = np.unique(np.asarray(flagged_steps, dtype=np.int64).reshape(-1))
    starts = np.concatenate(([0], st[:-1])) if st.size else st
    spans = (st - starts).astype(np.float64)
    nan = float("nan")
    out: list[EventRecovery] = []
    for k, s in enumerate(flagged.tolist()):
        prev = int(flagged[k - 1]) if k > 0 else None
        nxt = int(flagged[k + 1]) if k + 1 < flagged.size else None
        base = (st <= s) & (st > s - baseline_window)
        if prev is not None:
            base &= starts >= prev
        post = starts >= s
        if nxt is not None:
            post &= st <= nxt
        idx = np.flatnonzero(post)
        if not base.any() or idx.size == 0:
            out.append(EventRecovery(s, "undefined", nan, None, None, nan, nan, 0))
            continue
        pre = float(np.average(val[base], weights=spans[base]))
        ps, pv, pw, p_starts = st[idx], val[idx], spans[idx], starts[idx]
        if window is None:
            smooth, count, win_start = pv, np.ones(idx.size, np.int64), p_starts
        else:
            lo = np.searchsorted(ps, ps - window, side="right")
            cv = np.concatenate(([0.0], np.cumsum(pv * pw)))
            cw = np.concatenate(([0.0], np.cumsum(pw)))
            hi = np.arange(1, ps.size + 1)
            smooth = (cv[hi] - cv[lo]) / (cw[hi] - cw[lo])
            count = hi - lo
            win_start = p_starts[lo]
        judged = count >= min_samples
        if not judged.any():
            out.append(EventRecovery(s, "undefined", pre, None, None, nan, nan, 0))
            continue
        smooth, ps_j, start_j = smooth[judged], ps[judged], win_start[judged]
        ok = smooth >= pre - tolerance * abs(pre)
        drop = 1.0 - smooth[0] / pre if pre != 0 else nan
        auc = float(np.average(pv, weights=pw)) / pre if pre != 0 else nan
        observed = int(ps[-1] - s)
        if ok[-1]:
            bad = np.flatnonzero(~ok)
            first_good = int(bad[-1]) + 1 if bad.size else 0
            time = int(start_j[first_good] - s)
            out.append(EventRecovery(s, "recovered", pre, time, None, drop, auc, observed))
        else:
            out.append(
                EventRecovery(s, "censored", pre, None, int(ps_j[-1] - s), drop, auc, observed)
            )
    return out


# --------------------------------------------------------------------------------------------------
# 2. recovery on ground truth, per vector step
# --------------------------------------------------------------------------------------------------


def chosen_and_best(
    candidate_info: Mapping[str, Any], actions: ArrayLike
) -> tuple[np.ndarray, np.ndarray]:
    """Expected reward of the recommended candidate and the best one, per user, exactly.

    ``candidate_info``: the info that came with the observation the agent acted on (the previous
    step's, or the reset's): its ``expected_reward`` ``(B, C)`` holds the candidates' true
    expected rewards; ``actions`` ``(B,)``: what the agent chose. (The step's own
    ``info["regret"]`` is ``best - chosen``, rounded to float32.) Single-item mode only.
    """
    expected = np.asarray(candidate_info["expected_reward"], dtype=np.float64)
    acts = np.asarray(actions, dtype=np.int64)
    if acts.ndim != 1:
        raise ValueError(
            "chosen_and_best needs single-item actions (B,): in slate mode the best slate's value "
            f"is not in info; got actions of shape {acts.shape}"
        )
    if expected.ndim != 2 or expected.shape[0] != acts.size:
        raise ValueError(
            f"expected_reward must be (B, C) with B = {acts.size}, got shape {expected.shape}"
        )
    chosen = expected[np.arange(acts.size), acts]
    return chosen, expected.max(axis=1)


def _check_positive_int(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
        raise ValueError(f"invalid {name}={value!r} (allowed: an integer >= 1, in user-steps)")
    return int(value)


class RecoveryTracker:
    """Share of the myopic oracle's expected reward around each drift event, per vector step.

    Feed :meth:`update` once per vector step, in order; read :meth:`records`, :meth:`summary` and
    :meth:`curves` at any time. Settings (user-steps): ``baseline`` (pre-event window),
    ``horizon`` (post-event window), ``sustain`` (how long the share must stay back),
    ``tolerance`` (relative), ``bin_size`` (curve resolution; default the batch size of the first
    update, i.e. one vector step). Per update: O(B) numpy plus O(1); at an event, O(baseline).
    Checkpoint with :meth:`state_dict` / :meth:`load_state_dict` (plain data only).
    """

    def __init__(
        self,
        baseline: int = 4096,
        horizon: int = 16384,
        sustain: int = 512,
        tolerance: float = 0.10,
        bin_size: int | None = None,
    ) -> None:
        self.baseline = _check_positive_int("baseline", baseline)
        self.horizon = _check_positive_int("horizon", horizon)
        self.sustain = _check_positive_int("sustain", sustain)
        if not (isinstance(tolerance, int | float | np.floating) and 0.0 <= tolerance < 1.0):
            raise ValueError(f"invalid tolerance={tolerance!r} (allowed: a number in [0, 1))")
        self.tolerance = float(tolerance)
        self.bin_size = None if bin_size is None else _check_positive_int("bin_size", bin_size)
        self.batch: int | None = None
        self.last_step: int | None = None
        self.prev_event_step: int | None = None
        # ring of the latest vector steps: (step count, Σ chosen, Σ best)
        self._ring_step = np.zeros(0, np.int64)
        self._ring_value = np.zeros(0)
        self._ring_best = np.zeros(0)
        self._ring_pos = 0
        self._ring_len = 0
        # per event (rows), grown at each event
        self._ev_step = np.zeros(0, np.int64)
        self._ev_pre_value = np.zeros((0, 0))
        self._ev_pre_best = np.zeros((0, 0))
        self._ev_post_value = np.zeros((0, 0))
        self._ev_post_best = np.zeros((0, 0))
        self._ev_bins = np.zeros(0, np.int64)  # post bins observed
        self._ev_open = np.zeros(0, bool)

    # ------------------------------------------------------------------ geometry
    @property
    def pre_bins(self) -> int:
        return -(-self.baseline // self.bin_size)

    @property
    def post_bins(self) -> int:
        return -(-self.horizon // self.bin_size)

    @property
    def sustain_bins(self) -> int:
        return -(-self.sustain // self.bin_size)

    def _start(self, batch: int) -> None:
        self.batch = batch
        if self.bin_size is None:
            self.bin_size = batch
        capacity = -(-self.baseline // batch)
        self._ring_step = np.zeros(capacity, np.int64)
        self._ring_value = np.zeros(capacity)
        self._ring_best = np.zeros(capacity)
        self._ev_pre_value = np.zeros((0, self.pre_bins))
        self._ev_pre_best = np.zeros((0, self.pre_bins))
        self._ev_post_value = np.zeros((0, self.post_bins))
        self._ev_post_best = np.zeros((0, self.post_bins))

    # ------------------------------------------------------------------ feeding
    def update(self, step: int, chosen: ArrayLike, best: ArrayLike, event: ArrayLike) -> None:
        """One vector step: ``step`` the step count after it (user-steps), ``chosen``/``best``
        ``(B,)`` expected rewards (:func:`chosen_and_best`), ``event`` its ``info["drift_event"]``
        (bool or ``(B,)``; any user)."""
        chosen = np.asarray(chosen, dtype=np.float64).reshape(-1)
        best = np.asarray(best, dtype=np.float64).reshape(-1)
        if chosen.shape != best.shape or chosen.size == 0:
            raise ValueError(
                f"chosen and best must be non-empty (B,) arrays of one shape, got {chosen.shape} "
                f"and {best.shape}"
            )
        step = int(step)
        if self.batch is None:
            self._start(chosen.size)
        elif chosen.size != self.batch:
            raise ValueError(
                f"batch of {chosen.size} users, but the tracker started with {self.batch}"
            )
        if self.last_step is not None and step <= self.last_step:
            raise ValueError(f"step={step} does not follow the previous step {self.last_step}")
        value_sum, best_sum = float(chosen.sum()), float(best.sum())
        if not (math.isfinite(value_sum) and math.isfinite(best_sum)):
            raise ValueError(f"chosen and best must be finite (step={step})")
        self.last_step = step

        # this step's rewards precede any drift it flags (the world ticks after the action)
        if self._ev_open.size and self._ev_open[-1]:
            d = step - int(self._ev_step[-1])
            j = (d - 1) // self.bin_size
            if j < self.post_bins:
                self._ev_post_value[-1, j] += value_sum
                self._ev_post_best[-1, j] += best_sum
                self._ev_bins[-1] = j + 1
            if d >= self.post_bins * self.bin_size:  # the horizon (whole bins) is complete
                self._ev_open[-1] = False
        cap = self._ring_step.size
        self._ring_step[self._ring_pos] = step
        self._ring_value[self._ring_pos] = value_sum
        self._ring_best[self._ring_pos] = best_sum
        self._ring_pos = (self._ring_pos + 1) % cap
        self._ring_len = min(self._ring_len + 1, cap)

        if np.any(np.asarray(event)):
            self._new_event(step)

    def _new_event(self, step: int) -> None:
        if self._ev_open.size:
            self._ev_open[-1] = False  # censored by this event
        n = self._ring_len
        ring_step, ring_value, ring_best = (
            self._ring_step[:n],
            self._ring_value[:n],
            self._ring_best[:n],
        )
        d = step - ring_step
        keep = d < self.baseline
        if self.prev_event_step is not None:
            keep &= ring_step > self.prev_event_step
        pre_value = np.zeros(self.pre_bins)
        pre_best = np.zeros(self.pre_bins)
        idx = d[keep] // self.bin_size
        np.add.at(pre_value, idx, ring_value[keep])
        np.add.at(pre_best, idx, ring_best[keep])
        self._ev_step = np.append(self._ev_step, step)
        self._ev_pre_value = np.vstack([self._ev_pre_value, pre_value])
        self._ev_pre_best = np.vstack([self._ev_pre_best, pre_best])
        self._ev_post_value = np.vstack([self._ev_post_value, np.zeros(self.post_bins)])
        self._ev_post_best = np.vstack([self._ev_post_best, np.zeros(self.post_bins)])
        self._ev_bins = np.append(self._ev_bins, 0)
        self._ev_open = np.append(self._ev_open, True)
        self.prev_event_step = step

    # ------------------------------------------------------------------ results
    @property
    def num_events(self) -> int:
        return int(self._ev_step.size)

    def _record(self, i: int) -> EventRecovery:
        b, m = self.bin_size, self.sustain_bins
        step = int(self._ev_step[i])
        observed = int(self._ev_bins[i])
        pre_best = float(self._ev_pre_best[i].sum())
        nan = float("nan")
        observed_steps = observed * b
        if pre_best <= 0.0 or observed < m:
            pre = float(self._ev_pre_value[i].sum()) / pre_best if pre_best > 0 else nan
            return EventRecovery(step, "undefined", pre, None, None, nan, nan, observed_steps)
        pre = float(self._ev_pre_value[i].sum()) / pre_best
        value = self._ev_post_value[i, :observed]
        best = self._ev_post_best[i, :observed]
        cv = np.concatenate(([0.0], np.cumsum(value)))
        cb = np.concatenate(([0.0], np.cumsum(best)))
        win_value = cv[m:] - cv[:-m]  # sustain windows starting at bins 0 .. observed - m
        win_best = cb[m:] - cb[:-m]
        with np.errstate(invalid="ignore", divide="ignore"):
            win_share = np.where(win_best > 0, win_value / win_best, np.nan)
        threshold = (1.0 - self.tolerance) * pre
        ok = win_share >= threshold
        drop = 1.0 - win_share[0] / pre if pre > 0 and np.isfinite(win_share[0]) else nan
        auc = cv[-1] / (pre * cb[-1]) if pre > 0 and cb[-1] > 0 else nan
        if ok[-1]:  # back at the end: recovered where the final run of good windows starts
            bad = np.flatnonzero(~ok)
            recovery = (int(bad[-1]) + 1 if bad.size else 0) * b
            return EventRecovery(step, "recovered", pre, recovery, None, drop, auc, observed_steps)
        censoring = (observed - m + 1) * b
        return EventRecovery(step, "censored", pre, None, censoring, drop, auc, observed_steps)

    def records(self) -> list[EventRecovery]:
        """One record per event so far (the open one with what has been observed of it)."""
        return [self._record(i) for i in range(self.num_events)]

    def summary(self, prefix: str = "lifelong/") -> dict[str, float]:
        """:data:`RECOVERY_KEYS` for this run (module doc)."""
        return summarize_recovery(self.records(), prefix=prefix)

    def curves(self) -> dict[str, np.ndarray]:
        """Event-aligned share-of-oracle curves, for plots and for pooling across runs.

        ``offsets`` ``(P + J,)``: user-steps since the event at the end of each bin (``<= 0``:
        the baseline, 0 = the bin that ends with the flagged step; ``> 0``: after the event);
        ``share`` ``(E, P + J)``: each event's share per bin (``nan`` where not observed: before
        the previous event, after the next one or the end of the run); ``relative``: ``share``
        divided by the event's ``pre_level``; ``mean_share``/``mean_relative`` ``(P + J,)``:
        means over the events observed in each bin (``nan`` where none); ``events`` ``(P + J,)``:
        how many.
        """
        if self.bin_size is None:
            empty = np.zeros(0)
            return {
                "offsets": empty,
                "share": np.zeros((0, 0)),
                "relative": np.zeros((0, 0)),
                "mean_share": empty,
                "mean_relative": empty,
                "events": np.zeros(0, np.int64),
            }
        b, p, j = self.bin_size, self.pre_bins, self.post_bins
        offsets = np.concatenate((-np.arange(p - 1, -1, -1) * b, np.arange(1, j + 1) * b))
        value = np.concatenate((self._ev_pre_value[:, ::-1], self._ev_post_value), axis=1)
        best = np.concatenate((self._ev_pre_best[:, ::-1], self._ev_post_best), axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            share = np.where(best > 0, value / np.where(best > 0, best, 1.0), np.nan)
            pre = self._ev_pre_value.sum(axis=1) / self._ev_pre_best.sum(axis=1)
            relative = share / pre[:, None]
        observed = np.arange(j)[None, :] < self._ev_bins[:, None]
        share[:, p:][~observed] = np.nan
        relative[:, p:][~observed] = np.nan
        counts = np.sum(np.isfinite(share), axis=0)
        with np.errstate(invalid="ignore", divide="ignore"):
            mean_share = np.nansum(share, axis=0) / np.where(counts > 0, counts, np.nan)
            mean_rel_counts = np.sum(np.isfinite(relative), axis=0)
            mean_relative = np.nansum(relative, axis=0) / np.where(
                mean_rel_counts > 0, mean_rel_counts, np.nan
            )
        return {
            "offsets": offsets,
            "share": share,
            "relative": relative,
            "mean_share": mean_share,
            "mean_relative": mean_relative,
            "events": counts.astype(np.int64),
        }

    # ------------------------------------------------------------------ checkpoints
    def settings(self) -> dict[str, Any]:
        return {
            "baseline": self.baseline,
            "horizon": self.horizon,
            "sustain": self.sustain,
            "tolerance": self.tolerance,
            "bin_size": self.bin_size,
        }

    def state_dict(self) -> dict[str, Any]:
        """Everything to continue exactly: plain ints/floats/None, dicts and numpy arrays."""
        return {
            "settings": self.settings(),
            "batch": self.batch,
            "last_step": self.last_step,
            "prev_event_step": self.prev_event_step,
            "ring": {
                "step": self._ring_step.copy(),
                "value": self._ring_value.copy(),
                "best": self._ring_best.copy(),
                "pos": self._ring_pos,
                "len": self._ring_len,
            },
            "events": {
                "step": self._ev_step.copy(),
                "pre_value": self._ev_pre_value.copy(),
                "pre_best": self._ev_pre_best.copy(),
                "post_value": self._ev_post_value.copy(),
                "post_best": self._ev_post_best.copy(),
                "bins": self._ev_bins.copy(),
                "open": self._ev_open.copy(),
            },
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore :meth:`state_dict`. The settings must match this tracker's (a resumed run
        measuring differently would mix two definitions in one result)."""
        saved = dict(state["settings"])
        mine = self.settings()
        for key in ("baseline", "horizon", "sustain", "tolerance"):
            if saved[key] != mine[key]:
                raise ValueError(
                    f"RecoveryTracker state has {key}={saved[key]!r} but this tracker "
                    f"{key}={mine[key]!r}"
                )
        if mine["bin_size"] is not None and saved["bin_size"] not in (None, mine["bin_size"]):
            raise ValueError(
                f"RecoveryTracker state has bin_size={saved['bin_size']!r} but this tracker "
                f"bin_size={mine['bin_size']!r}"
            )
        self.bin_size = saved["bin_size"]
        self.batch = None if state["batch"] is None else int(state["batch"])
        self.last_step = None if state["last_step"] is None else int(state["last_step"])
        prev = state["prev_event_step"]
        self.prev_event_step = None if prev is None else int(prev)
        ring, ev = state["ring"], state["events"]
        self._ring_step = np.array(ring["step"], dtype=np.int64)
        self._ring_value = np.array(ring["value"], dtype=np.float64)
        self._ring_best = np.array(ring["best"], dtype=np.float64)
        self._ring_pos, self._ring_len = int(ring["pos"]), int(ring["len"])
        self._ev_step = np.array(ev["step"], dtype=np.int64)
        self._ev_pre_value = np.array(ev["pre_value"], dtype=np.float64)
        self._ev_pre_best = np.array(ev["pre_best"], dtype=np.float64)
        self._ev_post_value = np.array(ev["post_value"], dtype=np.float64)
        self._ev_post_best = np.array(ev["post_best"], dtype=np.float64)
        self._ev_bins = np.array(ev["bins"], dtype=np.int64)
        self._ev_open = np.array(ev["open"], dtype=bool)
