"""Sessionisation and returning-user statistics on hand-made logs (numbers worked out by hand)."""

import numpy as np
import pandas as pd
import pytest

from recsim_env.calibrate.sessions import (
    session_params,
    session_stats,
    session_table,
    sessionise,
)
from recsim_env.validation import ConfigError


def hand_log() -> pd.DataFrame:
    # user 1: sessions [0, 10, 20], [5000, 5010], [20000]; user 2: [100, 200] (gap 1800 s)
    rows = [(1, 0), (1, 10), (1, 20), (1, 5000), (1, 5010), (1, 20000), (2, 100), (2, 200)]
    df = pd.DataFrame(rows, columns=["user", "timestamp"])
    df["item"] = np.arange(len(df))
    return df.sample(frac=1.0, random_state=0)  # order must not matter


def test_sessionise_by_gap():
    df = sessionise(hand_log(), gap_seconds=1800)
    assert df["session"].tolist() == [0, 0, 0, 1, 1, 2, 3, 3]
    assert df["timestamp"].tolist() == [0, 10, 20, 5000, 5010, 20000, 100, 200]
    # a gap equal to the threshold stays in the session, one above splits it
    assert sessionise(hand_log(), gap_seconds=4980)["session"].nunique() == 3
    assert sessionise(hand_log(), gap_seconds=4979)["session"].nunique() == 4


def test_session_table_and_stats():
    table = session_table(hand_log(), gap_seconds=1800)
    assert table["length"].tolist() == [3, 2, 1, 2]
    assert table["start"].tolist() == [0, 5000, 20000, 100]
    assert table["end"].tolist() == [20, 5010, 20000, 200]
    np.testing.assert_array_equal(table["next_start"].to_numpy(), [5000, 20000, np.nan, np.nan])
    stats = session_stats(hand_log(), gap_seconds=1800, tick_seconds=10, censor_seconds=0)
    # gaps in ticks: (5000 - 20) / 10 - 1 and (20000 - 5010) / 10 - 1 (the last step lasts a tick)
    np.testing.assert_allclose(np.sort(stats["gaps_ticks"]), [497.0, 1498.0])
    assert stats["return_prob"] == pytest.approx(2 / 4)
    assert stats["gap_mean"] == pytest.approx((497 + 1498) / 2)
    # sessions ending within the censoring window of the log's end (20000) are not counted
    censored = session_stats(hand_log(), gap_seconds=1800, tick_seconds=10, censor_seconds=1000)
    assert censored["eligible_sessions"] == 3
    assert censored["return_prob"] == pytest.approx(2 / 3)


def test_session_params_from_quartiles():
    stats = session_stats(hand_log(), gap_seconds=1800, tick_seconds=10, censor_seconds=0)
    params, report = session_params(stats)
    q1, med, q3 = np.quantile([3, 2, 1, 2], [0.25, 0.5, 0.75])
    assert params["budget_min"] == pytest.approx(max(1.0, med - (q3 - q1)))
    assert params["budget_max"] == pytest.approx(med + (q3 - q1))
    assert params["return_prob_min"] <= 0.5 <= params["return_prob_max"]
    assert params["gap_mean_min"] >= 1.0
    assert {"budget", "return_prob", "gap_mean"} <= set(report)


def test_sessionise_matches_a_loop_reference():
    rng = np.random.default_rng(0)
    df = pd.DataFrame(
        {
            "user": rng.integers(0, 20, 500),
            "timestamp": np.cumsum(rng.exponential(300.0, 500)),
            "item": rng.integers(0, 50, 500),
        }
    )
    got = sessionise(df, gap_seconds=600)
    expected, prev, session = [], None, -1
    for user, t in sorted(zip(df["user"], df["timestamp"], strict=True)):
        if prev is None or user != prev[0] or t - prev[1] > 600:
            session += 1
        expected.append(session)
        prev = (user, t)
    assert got["session"].tolist() == expected


def test_rejects_bad_gap():
    with pytest.raises(ConfigError, match="gap_seconds"):
        sessionise(hand_log(), gap_seconds=-1)
