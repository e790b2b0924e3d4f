"""Time to a good policy on hand-made evaluation series: reached, censored, the target hit exactly,
targets from per-evaluation references, and the Kaplan–Meier summary across seeds."""

from __future__ import annotations

import math

import pytest

from experiments.analysis.time_to_good import (
    Target,
    default_target,
    format_time,
    run_time_to_good,
    summarize_time_to_good,
    target_returns,
    time_to_good,
    training_seconds,
)

STEPS = [10_000, 20_000, 30_000, 40_000]
SECONDS = [5.0, 11.0, 18.0, 26.0]


def test_reached_at_the_first_evaluation_at_or_above_the_target():
    r = time_to_good(STEPS, [1.0, 3.0, 2.0, 5.0], 2.5, SECONDS)
    assert r.reached and r.user_steps == 20_000 and r.seconds == 11.0  # not 40k: first crossing
    assert r.budget_steps == 40_000 and r.budget_seconds == 26.0
    assert r.best_ratio == pytest.approx(5.0 / 2.5)


def test_a_return_exactly_on_the_target_counts_as_reached():
    r = time_to_good(STEPS, [1.0, 2.0, 4.0, 4.0], [3.0, 2.0, 5.0, 5.0], SECONDS)
    assert r.reached and r.user_steps == 20_000 and r.seconds == 11.0


def test_never_reached_is_censored_at_the_budget():
    r = time_to_good(STEPS, [1.0, 1.5, 1.8, 1.9], 2.0, SECONDS)
    assert not r.reached
    assert (r.user_steps, r.seconds) == (40_000, 26.0)  # the censoring time is the budget
    assert r.best_ratio == pytest.approx(0.95)
    assert format_time(math.nan, r.budget_steps) == "> 40,000"
    assert format_time(math.nan, r.budget_seconds, " s") == "> 26.0 s"
    assert format_time(20_000.0, 40_000.0) == "20,000"


def test_targets_from_the_references_of_each_evaluation():
    # Stationary: 80 % of the myopic oracle measured at each evaluation (the world drifts)
    stationary = default_target(has_longterm_reference=False)
    assert stationary == Target("oracle_share", 0.8)
    assert list(target_returns(stationary, [10.0, 20.0])) == pytest.approx([8.0, 16.0])
    # LongTerm: halfway between the myopic oracle (0) and the long-term reference (1)
    longterm = default_target(has_longterm_reference=True)
    targets = target_returns(longterm, [100.0, 90.0], [200.0, 150.0])
    assert list(targets) == pytest.approx([150.0, 120.0])
    # 130 is below the first evaluation's target (150) and above the second's (120)
    r = time_to_good([1_000, 2_000], [130.0, 125.0], targets)
    assert r.reached and r.user_steps == 2_000 and math.isnan(r.seconds)
    with pytest.raises(ValueError, match="long-term reference"):
        target_returns(longterm, [100.0])
    with pytest.raises(ValueError, match="invalid share"):
        Target("oracle_share", 0.0)


def test_bad_series_are_refused():
    with pytest.raises(ValueError, match="one entry per evaluation"):
        time_to_good([1, 2], [1.0], 1.0)
    with pytest.raises(ValueError, match="increasing"):
        time_to_good([2, 1], [1.0, 1.0], 1.0)
    with pytest.raises(ValueError, match="no evaluation"):
        time_to_good([], [], 1.0)


def test_kaplan_meier_median_across_seeds_counts_censored_runs():
    reached = [time_to_good(STEPS, [0, 9, 9, 9], 5.0, SECONDS)]  # 20k, 11 s
    reached.append(time_to_good(STEPS, [0, 0, 9, 9], 5.0, SECONDS))  # 30k, 18 s
    censored = time_to_good(STEPS, [0, 0, 0, 0], 5.0, SECONDS)  # > 40k
    out = summarize_time_to_good([*reached, censored])
    # survival: 1 → 2/3 at 20k → 1/3 at 30k: the median is 30k, the censored run kept at risk
    assert out["time_to_good/user_steps_km_median"] == 30_000
    assert out["time_to_good/seconds_km_median"] == 18.0
    assert (out["time_to_good/reached"], out["time_to_good/censored"]) == (2.0, 1.0)
    # a naive median of the reached runs only would say 25k; with two censored runs of three the
    # median is undefined (more than half never got there): shown as "> budget"
    two_censored = summarize_time_to_good([reached[0], censored, censored])
    assert math.isnan(two_censored["time_to_good/user_steps_km_median"])
    assert two_censored["time_to_good/max_budget_steps"] == 40_000
    assert math.isnan(summarize_time_to_good([])["time_to_good/reached"])


def test_training_seconds_add_up_the_time_sps_windows():
    # windows of 1,000 user-steps at 100, 200, 50 steps/s: 10 s, 5 s, 20 s
    secs = training_seconds([1_000, 2_000, 3_000], [100.0, 200.0, 50.0], [0, 1_000, 2_500, 3_000])
    assert list(secs) == pytest.approx([0.0, 10.0, 15.0, 35.0])


def test_a_run_s_series_with_references_give_its_time_to_good():
    series = {
        "eval/return": ([1_000, 2_000, 3_000], [90.0, 140.0, 160.0]),
        "eval/ref_oracle_return": ([1_000, 2_000, 3_000], [100.0, 100.0, 100.0]),
        "eval/ref_longterm_return": ([1_000, 2_000, 3_000], [200.0, 200.0, 200.0]),
        "time/sps": ([1_000, 2_000, 3_000], [100.0, 100.0, 100.0]),
    }
    r = run_time_to_good(series)  # headroom: 150 needed, first at 3k
    assert r is not None and r.reached and r.user_steps == 3_000 and r.seconds == 30.0
    del series["eval/ref_longterm_return"]  # no long-term reference: 80 % of the oracle = 80
    r = run_time_to_good(series)
    assert r is not None and r.reached and r.user_steps == 1_000 and r.seconds == 10.0
    assert run_time_to_good({"eval/return": series["eval/return"]}) is None  # no references
