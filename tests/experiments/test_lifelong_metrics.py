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
from experiments.analysis.recovery import window_recovery_times

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


# One definition (experiments.analysis.recovery): events are the steps at which drift_event was
# flagged, the sample at that step is still pre-event; recovered = the trailing mean is back at the
# end of the observation, the time being where that final good stretch begins.


def _dip_stream(n=300, flagged=99, dip_end=150, low=0.4):
    """One sample per user-step (sample i covers user-step i); the dip starts right after the
    flagged step and lasts until ``dip_end``."""
    steps = np.arange(n)
    rewards = np.ones(n)
    rewards[flagged + 1 : dip_end] = low
    return steps, rewards


def test_recovery_time_is_where_the_final_good_stretch_begins():
    # Full windows of 10 post-event samples: the window ending at 150 + j holds j + 1 ones, mean
    # 0.4 + 0.06 (j + 1) >= 0.9 from j = 8 (window 149..158) on. Its first sample covers user-step
    # 149, which starts at 148: recovered 148 - 99 = 49 user-steps after the flag.
    steps, rewards = _dip_stream()
    report = recovery_times(steps, rewards, [99], window=10, min_samples=10)
    (rec,) = report.records
    assert rec.status == "recovered"
    assert rec.pre_level == pytest.approx(1.0)
    assert rec.recovery_steps == 49
    assert rec.drop == pytest.approx(0.6)  # the first full window: all 0.4
    assert report.mean_recovery == 49 and report.censored_mean == 49
    assert report.num_censored == 0
    again = window_recovery_times(
        steps, rewards, [99], baseline_window=10, window=10, min_samples=10
    )
    assert list(report.records) == again


def test_the_sample_at_the_flagged_step_is_pre_event():
    # The step that flags the event earned its rewards before the world ticked: it is part of the
    # baseline, and a stream that falls only after it is censored, not "recovered at 0".
    steps = np.arange(300)
    rewards = np.where(steps <= 99, 1.0, 0.5)
    (rec,) = recovery_times(steps, rewards, [99], window=10).records
    assert rec.pre_level == pytest.approx(1.0)
    assert rec.status == "censored"
    assert rec.censoring_steps == 299 - 99


def test_event_on_a_logging_boundary_is_not_recovered_at_zero():
    # issue 12: jumps fall on log-window boundaries. The window logged at 3000 (flag at 3000) is
    # pre-event; the reward drops in the next windows and comes back in the one logged at 6000.
    steps = np.arange(1000, 8000, 1000)
    rewards = np.array([1.0, 1.0, 1.0, 0.5, 0.7, 0.95, 1.0])
    (rec,) = recovery_times(steps, rewards, [3000], window=1000).records
    assert rec.pre_level == pytest.approx(1.0)
    assert rec.status == "recovered" and rec.recovery_steps == 2000  # window (5000, 6000]


def test_upward_change_counts_as_recovered_immediately():
    steps = np.arange(200)
    rewards = np.where(steps <= 99, 0.5, 0.8)
    (rec,) = recovery_times(steps, rewards, [99], window=10).records
    assert rec.recovery_steps == 0


def test_censored_by_next_event_and_kaplan_meier_counts_failures():
    steps = np.arange(600)
    rewards = np.ones(600)
    rewards[100:150] = 0.4  # event flagged at 99: recovered
    rewards[400:] = 0.4  # event flagged at 399: never recovered, watched until 599
    report = recovery_times(steps, rewards, [399, 99, 99], window=10, min_samples=10)
    first, second = report.records  # sorted, duplicates merged
    assert (first.event_step, second.event_step) == (99, 399)
    assert first.status == "recovered" and first.recovery_steps == 49
    assert second.status == "censored" and second.censoring_steps == 200
    assert report.mean_recovery == 49
    # KM: S = 1 until 49, 1/2 from 49 to 200: 49 + 0.5 × 151 (> the 49 of recovered events only)
    assert report.censored_mean == pytest.approx(49 + 0.5 * 151)
    assert report.naive_censored_mean == pytest.approx((49 + 200) / 2)


def test_recovery_undefined_events_are_reported_not_dropped():
    steps = np.arange(100, 200)
    rewards = np.ones(100)
    report = recovery_times(steps, rewards, [99, 150, 500], window=10)
    assert [r.status for r in report.records] == ["undefined", "recovered", "undefined"]
    assert report.num_undefined == 2
    assert report.num_recovered + report.num_censored + report.num_undefined == report.num_events
    assert math.isnan(report.records[0].pre_level)


def _naive_recovery(steps, values, flagged, window, tolerance, min_samples):
    """The definition, written as a plain loop over contiguous samples of known spans."""
    starts = np.concatenate(([0], steps[:-1]))
    out = []
    flagged = sorted(set(int(f) for f in flagged))
    for i, s in enumerate(flagged):
        prev = flagged[i - 1] if i else None
        nxt = flagged[i + 1] if i + 1 < len(flagged) else None
        base = [j for j in range(steps.size) if s - window < steps[j] <= s]
        base = [j for j in base if prev is None or starts[j] >= prev]
        post = [j for j in range(steps.size) if starts[j] >= s and (nxt is None or steps[j] <= nxt)]
        if not base or not post:
            out.append(("undefined", None))
            continue
        w = steps - starts
        pre = sum(values[j] * w[j] for j in base) / sum(w[j] for j in base)
        judged = []
        for k, j in enumerate(post):
            win = [q for q in post[: k + 1] if steps[q] > steps[j] - window]
            if len(win) >= min_samples:
                mean = sum(values[q] * w[q] for q in win) / sum(w[q] for q in win)
                judged.append((mean >= pre - tolerance * abs(pre), starts[win[0]], steps[j]))
        if not judged:
            out.append(("undefined", None))
        elif judged[-1][0]:
            k = len(judged) - 1
            while k > 0 and judged[k - 1][0]:
                k -= 1
            out.append(("recovered", int(judged[k][1] - s)))
        else:
            out.append(("censored", int(judged[-1][2] - s)))
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
    steps = np.cumsum(rng.integers(1, 4, size=120))
    rewards = rng.normal(1.0, 0.3, size=steps.size)
    events = rng.integers(0, steps[-1] + 20, size=n_events)
    report = recovery_times(
        steps, rewards, events, window=window, tolerance=0.1, min_samples=min_samples
    )
    want = _naive_recovery(steps, rewards, events, window, 0.1, min_samples)
    got = [(r.status, r.time) for r in report.records]
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
    assert not any("recovery" in k for k in out)  # recovery: experiments.run.recovery only
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
        "forgetting_mean",
        "forgetting_returns",
        "plasticity_per_1k",
        "plasticity_fresh_per_1k",
    }
    assert set(out) == {f"lifelong/{k}" for k in keys}
    assert out["lifelong/num_drift_events"] == 0
    for key in ("cumulative_regret", "forgetting_mean", "plasticity_per_1k"):
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
