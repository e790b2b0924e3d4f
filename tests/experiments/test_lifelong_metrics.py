"""Lifelong metrics on hand-built reward sequences whose answers are known exactly."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from experiments.analysis.lifelong import (
    cumulative_regret,
    event_steps_from_flags,
    forgetting,
    phase_change_steps,
    plasticity,
    recovery_times,
    regime_visits,
    summarize_lifelong,
    windowed_mean,
    windowed_regret,
)

# --------------------------------------------------------------------------------------------------
# regret and windowed means
# --------------------------------------------------------------------------------------------------


def test_cumulative_regret_per_step_per_user_and_per_window():
    np.testing.assert_allclose(cumulative_regret([1.0, 2.0, 3.0]), [1.0, 3.0, 6.0])
    # (T, B): each vector step's regret summed over its users.
    np.testing.assert_allclose(cumulative_regret([[1.0, 1.0], [0.0, 2.0]]), [2.0, 4.0])
    # Window means weighted by the user-steps each window holds.
    np.testing.assert_allclose(cumulative_regret([0.1, 0.2], counts=[10, 20]), [1.0, 5.0])


def test_windowed_mean_is_trailing_and_handles_gaps():
    steps = np.arange(1, 11)
    out = windowed_mean(steps, steps.astype(float), window=3)
    np.testing.assert_allclose(out[:5], [1.0, 1.5, 2.0, 3.0, 4.0])
    # Irregular steps: window 15 at step 20 holds steps 10 and 20 only.
    np.testing.assert_allclose(windowed_mean([0, 10, 20], [1.0, 2.0, 4.0], window=15), [1, 1.5, 3])


def test_windowed_regret_averages_users():
    regrets = np.array([[0.0, 2.0], [1.0, 1.0], [3.0, 3.0]])
    np.testing.assert_allclose(windowed_regret([1, 2, 3], regrets, window=2), [1.0, 1.0, 2.0])


@settings(max_examples=50, deadline=None)
@given(
    gaps=st.lists(st.integers(1, 20), min_size=1, max_size=40),
    window=st.integers(1, 60),
    seed=st.integers(0, 2**31 - 1),
)
def test_windowed_mean_matches_brute_force(gaps, window, seed):
    steps = np.cumsum(gaps)
    values = np.random.default_rng(seed).normal(size=steps.size)
    got = windowed_mean(steps, values, window=window)
    want = [values[(steps > s - window) & (steps <= s)].mean() for s in steps]
    np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-12)


def test_flags_and_phase_changes_to_event_steps():
    flags = np.array([[False, False], [True, True], [False, False], [False, True]])
    np.testing.assert_array_equal(event_steps_from_flags([4, 8, 12, 16], flags), [8, 16])
    np.testing.assert_array_equal(phase_change_steps([0, 1, 2, 3, 4], [0, 0, 1, 1, 0]), [2, 4])


# --------------------------------------------------------------------------------------------------
# recovery
# --------------------------------------------------------------------------------------------------


def _dip_stream(n=300, event=100, dip_end=150, low=0.4, lucky_first=False):
    steps = np.arange(n)
    rewards = np.ones(n)
    rewards[event:dip_end] = low
    if lucky_first:
        rewards[event] = 1.0
    return steps, rewards


def test_recovery_time_exact():
    # Pre-level 1.0, threshold 0.9. At step 150 + j the window of 10 holds (j + 1) ones and
    # (9 - j) samples of 0.4: mean 0.4 + 0.06 (j + 1) first reaches 0.9 at j = 8 (0.94; j = 7:
    # 0.88).
    steps, rewards = _dip_stream()
    report = recovery_times(steps, rewards, [100], window=10)
    (rec,) = report.records
    assert rec.status == "recovered"
    assert rec.pre_level == pytest.approx(1.0)
    assert rec.threshold == pytest.approx(0.9)
    assert rec.recovery_steps == 58
    assert report.mean_recovery == 58
    assert report.num_censored == 0


def test_recovery_tolerance_changes_the_answer():
    # With tolerance 0.5 the threshold is 0.5: j with 0.4 + 0.06 (j + 1) >= 0.5 is j = 1.
    steps, rewards = _dip_stream()
    (rec,) = recovery_times(steps, rewards, [100], window=10, tolerance=0.5).records
    assert rec.recovery_steps == 51


def test_recovery_ignores_pre_event_samples_in_the_window():
    # A small drop (to 0.85) right at the event must not count as recovered just because the
    # trailing window still holds pre-event rewards (at step 100 the full window would average
    # 0.997): the window only sees post-event samples.
    steps, rewards = _dip_stream(low=0.85, dip_end=125)
    (rec,) = recovery_times(steps, rewards, [100], window=50).records
    # At step 125 + j the post-event samples are 25 of 0.85 and j + 1 ones: the mean
    # (21.25 + j + 1) / (26 + j) first reaches 0.9 at j = 12 (0.901; j = 11: 0.899).
    assert rec.recovery_steps == 37


def test_min_samples_guards_against_a_lucky_first_sample():
    steps, rewards = _dip_stream(lucky_first=True)
    (lucky,) = recovery_times(steps, rewards, [100], window=10).records
    assert lucky.recovery_steps == 0
    (guarded,) = recovery_times(steps, rewards, [100], window=10, min_samples=10).records
    assert guarded.recovery_steps == 58


def test_recovery_censored_at_end_of_stream():
    steps = np.arange(300)
    rewards = np.where(steps < 100, 1.0, 0.5)
    report = recovery_times(steps, rewards, [100], window=10)
    (rec,) = report.records
    assert rec.status == "censored" and rec.censored
    assert rec.recovery_steps is None
    assert rec.censoring_steps == 199  # last sample 299 − event 100
    assert math.isnan(report.mean_recovery)
    assert report.censored_mean == 199  # watched for 199 steps without recovery
    assert report.naive_censored_mean == 199
    assert report.num_censored == 1


def test_recovery_censored_by_next_event_and_summaries():
    steps = np.arange(300)
    rewards = np.where(steps < 100, 1.0, 0.5)
    report = recovery_times(steps, rewards, [200, 100, 100], window=10)  # unsorted, duplicated
    first, second = report.records
    assert (first.event_step, second.event_step) == (100, 200)
    # Event 100 never recovers before event 200: censored after 99 observed steps.
    assert first.censored and first.censoring_steps == 99
    # Event 200's baseline is [190, 200), the level the previous regime settled at (0.5).
    assert second.pre_level == pytest.approx(0.5)
    assert second.recovery_steps == 0
    assert report.num_events == 2
    assert report.num_recovered == 1 and report.num_censored == 1
    assert report.mean_recovery == 0
    # Kaplan–Meier: S = 1/2 after the recovery at 0, the censored event watched until 99:
    # area 0.5 × 99. The naive mean (censored counted at 99) happens to agree here.
    assert report.censored_mean == pytest.approx(49.5)
    assert report.naive_censored_mean == pytest.approx(49.5)


def test_censored_mean_is_not_dragged_down_by_an_event_censored_early():
    # Two dips that recover after 58 steps, then an event 5 steps before the end of the stream.
    steps = np.arange(700)
    rewards = np.ones(700)
    for event in (100, 400):
        rewards[event : event + 50] = 0.4
    rewards[695:] = 0.4
    report = recovery_times(steps, rewards, [100, 400, 695], window=10)
    assert [r.status for r in report.records] == ["recovered", "recovered", "censored"]
    assert report.records[2].censoring_steps == 4
    assert report.mean_recovery == 58
    assert report.naive_censored_mean == pytest.approx((58 + 58 + 4) / 3)  # below 58
    assert report.censored_mean == pytest.approx(58)  # KM: the early censoring carries no weight


def test_censored_mean_counts_failures_to_recover():
    # One event recovers after 58 steps; another is watched for 200 steps without recovering.
    steps = np.arange(600)
    rewards = np.ones(600)
    rewards[100:150] = 0.4
    rewards[400:] = 0.4
    report = recovery_times(steps, rewards, [100, 400], window=10)
    assert report.mean_recovery == 58
    # KM: S = 1 until 58, 1/2 from 58 to 199: 58 + 0.5 × 141 = 128.5 (> the 58 of recovered only).
    assert report.censored_mean == pytest.approx(128.5)
    assert report.naive_censored_mean == pytest.approx((58 + 199) / 2)


def test_recovery_undefined_events_are_reported_not_dropped():
    steps = np.arange(100, 200)
    rewards = np.ones(100)
    report = recovery_times(steps, rewards, [100, 150, 500], window=10)
    statuses = [r.status for r in report.records]
    assert statuses == ["undefined", "recovered", "undefined"]  # no baseline / no data after
    assert report.num_undefined == 2
    assert report.num_recovered + report.num_censored + report.num_undefined == report.num_events
    assert math.isnan(report.records[0].pre_level)


def test_recovery_on_logging_windows():
    steps = np.arange(1000, 8000, 1000)
    rewards = np.array([1.0, 1.0, 1.0, 0.5, 0.7, 0.95, 1.0])
    (rec,) = recovery_times(steps, rewards, [3500], window=1000).records
    assert rec.pre_level == pytest.approx(1.0)  # the window logged at 3000
    assert rec.recovery_steps == 2500  # first window >= 0.9 is logged at 6000


def test_recovery_upward_change_counts_as_recovered_immediately():
    steps = np.arange(200)
    rewards = np.where(steps < 100, 0.5, 0.8)
    (rec,) = recovery_times(steps, rewards, [100], window=10).records
    assert rec.recovery_steps == 0


def _naive_recovery(steps, rewards, events, window, tolerance, min_samples):
    out = []
    events = sorted(set(events))
    for i, e in enumerate(events):
        prev = events[i - 1] if i else -(10**18)
        nxt = events[i + 1] if i + 1 < len(events) else 10**18
        base = rewards[(steps >= max(e - window, prev)) & (steps < e)]
        post_idx = np.flatnonzero((steps >= e) & (steps < nxt))
        if base.size == 0 or post_idx.size == 0:
            out.append(("undefined", None))
            continue
        thr = base.mean() - tolerance * abs(base.mean())
        result = ("censored", int(steps[post_idx[-1]] - e))
        for j in post_idx:
            s = steps[j]
            win = rewards[(steps > s - window) & (steps <= s) & (steps >= e)]
            if win.size >= min_samples and win.mean() >= thr:
                result = ("recovered", int(s - e))
                break
        out.append(result)
    return out


@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, 2**31 - 1),
    n_events=st.integers(0, 5),
    window=st.integers(1, 30),
    min_samples=st.integers(1, 5),
)
def test_recovery_matches_a_naive_reference(seed, n_events, window, min_samples):
    rng = np.random.default_rng(seed)
    steps = np.cumsum(rng.integers(1, 4, size=200))
    rewards = rng.normal(1.0, 0.3, size=steps.size)
    events = rng.integers(0, steps[-1] + 20, size=n_events)
    report = recovery_times(
        steps, rewards, events, window=window, tolerance=0.1, min_samples=min_samples
    )
    want = _naive_recovery(steps, rewards, events, window, 0.1, min_samples)
    got = [(r.status, r.observed_steps) for r in report.records]
    assert got == want
    if report.num_censored == 0 and report.num_recovered > 0:
        assert report.censored_mean == pytest.approx(report.mean_recovery)
    if report.num_recovered + report.num_censored > 0:
        # Failing to recover never helps: the KM mean is at least the naive lower bound.
        assert report.censored_mean >= report.naive_censored_mean - 1e-9


# --------------------------------------------------------------------------------------------------
# forgetting and plasticity
# --------------------------------------------------------------------------------------------------


def _seasonal_stream():
    """Regimes A B A B A, 100 steps each; hand-set reward levels."""
    steps = np.arange(500)
    phases = np.repeat([0, 1, 0, 1, 0], 100)
    rewards = np.empty(500)
    rewards[0:100] = 0.2
    rewards[90:100] = 1.0  # A learned by the end of its first visit: reference 1.0
    rewards[100:200] = 0.5  # B: reference 0.5
    rewards[200:300] = 1.0
    rewards[200:210] = 0.6  # A's first return starts at 0.6: forgot 0.4
    rewards[300:400] = 0.5  # B's return starts at 0.5: forgot nothing
    rewards[400:500] = 1.0
    rewards[400:410] = 0.9  # A's second return starts at 0.9: forgot 0.1
    return steps, rewards, phases


def test_regime_visits_count_returns():
    steps, _, phases = _seasonal_stream()
    visits = regime_visits(steps, phases)
    assert [(v.regime, v.visit_index) for v in visits] == [(0, 0), (1, 0), (0, 1), (1, 1), (0, 2)]
    assert (visits[2].start_step, visits[2].end_step) == (200, 299)


def test_forgetting_per_regime_per_return():
    steps, rewards, phases = _seasonal_stream()
    report = forgetting(steps, rewards, phases, window=10)
    got = [(r.regime, r.return_index, round(r.forgetting, 12)) for r in report.records]
    assert got == [(0, 1, 0.4), (1, 1, 0.0), (0, 2, 0.1)]
    assert report.per_regime == pytest.approx({0: 0.25, 1: 0.0})
    assert report.mean == pytest.approx(0.5 / 3)
    relative = forgetting(steps, rewards, phases, window=10, relative=True)
    assert [r.forgetting for r in relative.records] == pytest.approx([0.4, 0.0, 0.1])


def test_forgetting_needs_a_recurring_regime():
    steps = np.arange(200)
    report = forgetting(steps, np.ones(200), np.repeat([0, 1], 100), window=10)
    assert report.num_returns == 0
    assert math.isnan(report.mean)


def test_plasticity_slopes_exact():
    # Regimes A, B, A of 1000 steps; reward climbs linearly for 500 steps, then stays flat.
    steps = np.arange(3000)
    phases = np.repeat([0, 1, 0], 1000)
    per_step = [0.002, 0.001, 0.0005]
    rewards = np.empty(3000)
    for k, slope in enumerate(per_step):
        x = np.arange(1000)
        rewards[k * 1000 : (k + 1) * 1000] = 0.1 + slope * np.minimum(x, 500)
    report = plasticity(steps, rewards, horizon=500, phases=phases)
    assert [r.slope_per_1k for r in report.records] == pytest.approx([2.0, 1.0, 0.5])
    assert [r.initial for r in report.records] == [True, False, False]
    assert [r.first_visit for r in report.records] == [True, True, False]
    assert report.mean_per_1k == pytest.approx(0.75)  # initial segment excluded
    assert report.fresh_mean_per_1k == pytest.approx(1.0)  # only B is a never-seen regime
    # The same stream cut by event steps instead: every segment is fresh.
    by_events = plasticity(steps, rewards, horizon=500, event_steps=[1000, 2000])
    assert by_events.mean_per_1k == pytest.approx(0.75)
    assert by_events.fresh_mean_per_1k == pytest.approx(0.75)
    # A flat regime (lost plasticity) has slope 0.
    flat = plasticity(steps, np.ones(3000), horizon=500, phases=phases)
    assert flat.mean_per_1k == pytest.approx(0.0)


# --------------------------------------------------------------------------------------------------
# summary and validation
# --------------------------------------------------------------------------------------------------


def test_summarize_lifelong_on_seasonal_stream():
    steps, rewards, phases = _seasonal_stream()
    regrets = np.full((500, 4), 0.25)
    out = summarize_lifelong(steps, rewards, window=10, phases=phases, regrets=regrets)
    assert out["lifelong/cumulative_regret"] == pytest.approx(500.0)
    assert out["lifelong/num_drift_events"] == 4  # derived from phase changes
    rec = recovery_times(steps, rewards, [100, 200, 300, 400], window=10)
    assert out["lifelong/recovery_time_mean"] == pytest.approx(rec.mean_recovery)
    assert out["lifelong/recovery_censored"] == rec.num_censored
    assert out["lifelong/recovery_time_censored_mean"] == pytest.approx(rec.censored_mean)
    assert out["lifelong/forgetting_mean"] == pytest.approx(0.5 / 3)
    assert out["lifelong/forgetting_returns"] == 3
    assert set(out) >= {"lifelong/plasticity_per_1k", "lifelong/plasticity_fresh_per_1k"}
    assert all(k.startswith("lifelong/") for k in out)


def test_summarize_lifelong_stationary_has_every_key_and_nan_where_undefined():
    steps = np.arange(100)
    out = summarize_lifelong(steps, np.ones(100), window=10)
    keys = {
        "cumulative_regret",
        "num_drift_events",
        "recovery_time_mean",
        "recovery_time_censored_mean",
        "recovery_recovered",
        "recovery_censored",
        "forgetting_mean",
        "forgetting_returns",
        "plasticity_per_1k",
        "plasticity_fresh_per_1k",
    }
    assert set(out) == {f"lifelong/{k}" for k in keys}
    assert out["lifelong/num_drift_events"] == 0
    for key in ("cumulative_regret", "recovery_time_mean", "forgetting_mean", "plasticity_per_1k"):
        assert math.isnan(out[f"lifelong/{key}"])


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: recovery_times([0, 2, 1], [1, 1, 1], [1], window=2), "strictly increasing"),
        (lambda: recovery_times([0, 1, 2], [1, 1], [1], window=2), "rewards has 2 values"),
        (lambda: recovery_times([0, 1, 2], [1, 1, 1], [1], window=0), "window must be > 0"),
        (lambda: recovery_times([0, 1], [1, np.nan], [1], window=2), "finite"),
        (lambda: forgetting([0, 1], [1, 1], [[0, 0], [1, 1]], window=2), "phases must be 1-D"),
        (lambda: windowed_mean([0.5, 1.0], [1, 1], window=1), "integer step"),
        (lambda: cumulative_regret([1.0, 2.0], counts=[1.0]), "counts must have shape"),
    ],
)
def test_invalid_inputs_raise(call, match):
    with pytest.raises(ValueError, match=match):
        call()
