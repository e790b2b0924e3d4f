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

The Kaplan–Meier estimate (:func:`kaplan_meier`): product-limit, recoveries before censorings at
tied times, restricted mean up to the largest time, plus the median (the tests check it against a
plain loop and hand examples).

**One recovery metric family.** These definitions are the only ones in the project: the protocol's
``lifelong/recovery_*`` keys come from the tracker (``experiments.run.recovery``), and
:func:`experiments.analysis.lifelong.recovery_times` (reward series recorded elsewhere) is
:func:`window_recovery_times`. The modules: :mod:`.recovery_records` (records, Kaplan–Meier,
summary), :mod:`.recovery_tracker` (the tracker), this one (attribution, windows; re-exports all).
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from experiments.analysis.recovery_records import (
    RECOVERY_KEYS,
    EventRecovery,
    RecoveryStatus,
    check_positive_int,
    kaplan_meier,
    km_median,
    km_restricted_mean,
    summarize_recovery,
)
from experiments.analysis.recovery_tracker import RecoveryTracker, chosen_and_best, rebin_curves
from experiments.analysis.series import _as_steps

__all__ = [
    "RECOVERY_KEYS",
    "EventRecovery",
    "RecoveryStatus",
    "RecoveryTracker",
    "attribute_events",
    "chosen_and_best",
    "event_onsets",
    "event_onsets_from_flags",
    "kaplan_meier",
    "km_median",
    "km_restricted_mean",
    "rebin_curves",
    "summarize_recovery",
    "window_recovery_times",
]

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
    any_user = fl.reshape(fl.shape[0], -1).any(axis=1) if fl.ndim > 1 else fl
    return event_onsets(st[any_user])


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
    baseline_window = check_positive_int("baseline_window", baseline_window)
    window = None if window is None else check_positive_int("window", window)
    min_samples = check_positive_int("min_samples", min_samples)
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
