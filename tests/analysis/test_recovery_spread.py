"""Between-world spread of recovery times and which agent differences separate
(experiments.analysis.recovery_spread), on hand-made event tables."""

from __future__ import annotations

import math

import numpy as np
import pytest

from experiments.analysis.recovery_records import EventRecovery, km_restricted_mean
from experiments.analysis.recovery_spread import (
    event_rows,
    events_needed,
    km_means_weighted,
    recovery_spread,
    separation,
    separation_from_means,
    world_spread,
)


def rows(group, world, times, recovered=None):
    recovered = [True] * len(times) if recovered is None else recovered
    return [
        {"group": group, "world": world, "time": t, "recovered": r}
        for t, r in zip(times, recovered, strict=True)
    ]


def test_km_means_weighted_equals_km_on_the_repeated_events():
    rng = np.random.default_rng(1)
    times = np.array([0, 0, 500, 500, 1200, 3000, 3000, 3000.0])
    recovered = np.array([1, 1, 1, 0, 1, 0, 1, 0], bool)  # ties of recovered and censored
    counts = rng.multinomial(times.size, np.full(times.size, 1 / times.size), size=50)
    counts[0] = 0
    counts[0, 3] = 2  # only a censored event: survival stays 1 up to its time
    got = km_means_weighted(times, recovered, counts)
    for c, g in zip(counts, got, strict=True):
        want = km_restricted_mean(np.repeat(times, c), np.repeat(recovered, c))
        assert g == pytest.approx(want)
    assert got[0] == 500.0
    assert math.isnan(km_means_weighted(times, recovered, np.zeros((1, times.size)))[0])


def test_world_spread_per_world_values_and_between_world_statistics():
    # agent A: world 0 fast (KM mean 100), world 1 slow (1,000), world 2 in between: KM survival
    # 3/4 after 0, 1/2 after 400 (the censored 400 counts after the recovered one), 0 after 800:
    # mean 0.75 * 400 + 0.5 * 400 = 500, median 400
    table = (
        rows("A", 0, [0, 200, 100])
        + rows("A", 1, [1000, 1000])
        + rows("A", 2, [0, 800, 400, 400], [True, True, True, False])
    )
    out = world_spread(table, reps=200)["A"]
    assert [w["world"] for w in out["worlds"]] == [0, 1, 2]
    assert out["events"] == [3, 2, 4]
    assert [w["km_mean"] for w in out["worlds"]] == pytest.approx([100, 1000, 500])
    assert [w["km_median"] for w in out["worlds"]] == [100, 1000, 400]
    assert out["median"] == 500 and out["min"] == 100 and out["max"] == 1000
    assert out["range"] == 900 and out["ratio"] == 10
    assert out["iqr"] == pytest.approx(750 - 300)  # percentiles of [100, 500, 1000]
    assert out["sd"] == pytest.approx(np.std([100, 1000, 500], ddof=1))
    # world 1's events agree: no within-world noise there; the others have some
    assert out["worlds"][1]["se"] == 0 and out["worlds"][0]["se"] > 0
    # the spread is mostly between worlds, not noise of the few events
    assert 0 < out["world_var"] < out["sd"] ** 2


def test_a_fastest_world_at_zero_gives_an_infinite_ratio_and_one_world_no_sd():
    out = world_spread(rows("A", 0, [0, 0]) + rows("A", 1, [0, 300]))["A"]
    assert out["ratio"] == math.inf
    one = world_spread(rows("B", 7, [5, 10]))["B"]
    assert one["n_worlds"] == 1 and math.isnan(one["sd"]) and math.isnan(one["world_var"])


def test_events_needed_from_the_variance_split():
    # var(per-world value) = world_var + event_var / n; target SD 100 with world_var 6,400 leaves
    # 3,600 for the events: 360,000 / 3,600 = 100 events
    assert events_needed(360_000, 6_400, 100) == 100
    assert events_needed(360_001, 6_400, 100) == 101
    assert events_needed(1.0, 0.0, 1e6) == 1
    assert events_needed(10.0, 10_000, 100) == math.inf  # the worlds alone spread that much
    assert math.isnan(events_needed(math.nan, 0, 1))


def world_shifted_table(gap, worlds=6, seed=0):
    """A and B on the same worlds: each world adds the same big offset to both (a world effect),
    B is ``gap`` slower, plus event noise."""
    rng = np.random.default_rng(seed)
    table = []
    for w in range(worlds):
        offset = 3000.0 * w  # worlds differ by up to 15k: far more than the gap
        for group, extra in (("A", 0.0), ("B", gap)):
            times = offset + extra + rng.normal(0, 100, size=20)
            table += rows(group, w, np.maximum(times, 0).tolist())
    return table


def test_pairing_by_world_separates_a_gap_the_world_spread_hides():
    table = world_shifted_table(gap=1000)
    res = separation(table, "A", "B", reps=500)
    assert res["worlds"] == 6 and res["a_faster"] == 6
    assert res["diff"] == pytest.approx(-1000, abs=80)
    assert res["ci_diff"][1] < 0 and res["separable"]
    # but the between-world spread (SD ≈ 5.6k) is far above the gap: the criterion fails,
    # and no number of events per world fixes that (the spread is the worlds', not the events')
    assert res["sd_a"] > 5000 and not res["spread_below_diff"]
    assert res["events_for_spread"] == math.inf
    assert res["events_to_separate"] <= 20  # 20 events per world were enough


def test_no_difference_is_not_separable_and_needs_infinitely_many_events():
    table = world_shifted_table(gap=0, seed=3)
    res = separation(table, "A", "B", reps=500)
    assert res["ci_diff"][0] < 0 < res["ci_diff"][1] and not res["separable"]


def test_few_noisy_events_per_world_do_not_separate_and_more_events_would():
    # the same gap of 2,000 on heavy-tailed events (most 0, some 20k): with 4 events per world
    # the hierarchical bootstrap does not separate it; the computed number of events does
    rng = np.random.default_rng(5)

    def table(n):
        out = []
        for w in range(5):
            for group, p in (("A", 0.2), ("B", 0.3)):
                times = np.where(rng.random(n) < p, 20_000.0, 0.0)
                out += rows(group, w, times.tolist())
        return out

    few = separation(table(4), "A", "B", reps=500)
    assert not few["separable"]
    need = few["events_to_separate"]
    assert 4 < need < math.inf
    many = separation(table(int(2 * max(need, 100))), "A", "B", reps=500)
    assert many["separable"] and many["diff"] < 0


def test_event_rows_from_records_and_the_combined_view():
    recs = [
        EventRecovery(100, "recovered", 0.9, 300, None, 0.2, 0.9, 3000),
        EventRecovery(200, "censored", 0.9, None, 2000, 0.3, 0.8, 2000).to_dict(),
        EventRecovery(300, "undefined", math.nan, None, None, math.nan, math.nan, 0),
    ]
    got = event_rows("linucb", 4, recs)
    assert got == [
        {"group": "linucb", "world": 4, "event": 100, "time": 300.0, "recovered": True},
        {"group": "linucb", "world": 4, "event": 200, "time": 2000.0, "recovered": False},
    ]
    table = world_shifted_table(gap=1000, worlds=3)
    both = recovery_spread(table, reps=200)
    assert sorted(both["groups"]) == ["A", "B"]
    assert [(p["a"], p["b"]) for p in both["pairs"]] == [("A", "B")]
    with pytest.raises(ValueError, match="group='C'"):
        separation(table, "A", "C")
    with pytest.raises(ValueError, match="time"):
        world_spread(rows("A", 0, [-1.0]))


def test_events_shared_by_both_agents_are_resampled_together():
    # in every world the same jumps hurt both agents (times 20k), the others neither (0); B takes
    # 1,000 longer on every event. Jointly resampled, the per-world difference is exactly -1,000;
    # resampled apart, the shared jumps' noise swamps it.
    rng = np.random.default_rng(2)
    table = []
    for w in range(5):
        hard = rng.random(10) < 0.3
        for group, extra in (("A", 0.0), ("B", 1000.0)):
            times = np.where(hard, 20_000.0, 0.0) + extra
            table += [
                {"group": group, "world": w, "event": 100 * k, "time": t, "recovered": True}
                for k, t in enumerate(times)
            ]
    paired = separation(table, "A", "B", reps=300)
    assert paired["paired_events"] and paired["separable"]
    assert paired["ci_diff"] == pytest.approx([-1000, -1000])
    apart = separation([{**r, "event": None} for r in table], "A", "B", reps=300)
    assert not apart["paired_events"] and not apart["separable"]


def test_separation_from_means_without_event_noise_is_the_bootstrap_over_worlds():
    a = {0: (1000.0, 0.0), 1: (2000.0, 0.0), 2: (1500.0, 0.0), 9: (7.0, 1.0)}
    b = {0: (4000.0, 0.0), 1: (3000.0, 0.0), 2: (5000.0, 0.0)}
    res = separation_from_means(a, b, reps=500)
    d = [-3000.0, -1000.0, -3500.0]  # world 9 is A's only: left out
    assert res["worlds"] == 3 and res["diff"] == pytest.approx(np.mean(d))
    assert min(d) <= res["ci_diff"][0] < res["ci_diff"][1] <= max(d)
    assert res["separable"] and res["a_faster"] == 3 and not res["paired_events"]
    assert res["sd_a"] == pytest.approx(500.0) and res["sd_b"] == pytest.approx(1000.0)
    assert res["spread_below_diff"]  # both SDs below |A − B| = 2,500


def test_separation_from_means_widens_with_the_worlds_event_noise():
    a = {w: (1000.0 + 100 * w, 0.0) for w in range(5)}
    b = {w: (2500.0 + 50 * w, 0.0) for w in range(5)}
    tight = separation_from_means(a, b, reps=2000)
    noisy = separation_from_means(
        {w: (m, 1500.0) for w, (m, _) in a.items()}, {w: (m, 1500.0) for w, (m, _) in b.items()}
    )
    assert tight["separable"] and not noisy["separable"]
    assert noisy["diff"] == tight["diff"]
    width = noisy["ci_diff"][1] - noisy["ci_diff"][0]
    # the mean of 5 draws with SD sqrt(2) * 1500: a 95 % interval about 2 * 1.96 * 949 wide
    assert width == pytest.approx(2 * 1.96 * math.sqrt(2) * 1500 / math.sqrt(5), rel=0.15)


def test_separation_from_means_is_close_to_the_event_bootstrap_for_independent_events():
    """Built from the per-world KM means and SEs that world_spread measures, its CI is about as
    wide as the hierarchical event bootstrap's when A's and B's events are independent."""
    rng = np.random.default_rng(3)
    table = []
    for w in range(5):
        table += rows("a", w, list(rng.choice([0.0, 30000.0], 25, p=[0.85, 0.15])))
        table += rows("b", w, list(rng.choice([0.0, 30000.0], 25, p=[0.7, 0.3])))
    exact = separation(table, "a", "b", reps=2000)
    spread = world_spread(table, reps=2000)
    means = {g: {x["world"]: (x["km_mean"], x["se"]) for x in spread[g]["worlds"]} for g in "ab"}
    approx = separation_from_means(means["a"], means["b"], reps=2000)
    assert approx["diff"] == pytest.approx(exact["diff"])
    w_exact = exact["ci_diff"][1] - exact["ci_diff"][0]
    w_approx = approx["ci_diff"][1] - approx["ci_diff"][0]
    assert w_approx == pytest.approx(w_exact, rel=0.3)


def test_separation_from_means_refuses_a_bad_se():
    with pytest.raises(ValueError, match=r"invalid b\[0\]="):
        separation_from_means({0: (1.0, 0.0)}, {0: (1.0, -1.0)})
