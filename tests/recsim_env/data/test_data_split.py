"""temporal_split: per-user held-out time, deterministic, vectorised (issue 18)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from recsim_env.data import LogError, load_log, temporal_split


def _reference(df: pd.DataFrame, frac: float, min_n: int) -> np.ndarray:
    """A per-user loop, the obvious way: the mask of test rows."""
    is_test = np.zeros(len(df), bool)
    for _, rows in df.groupby("user", sort=False).indices.items():
        n = len(rows)  # rows are positions in canonical order
        if n >= min_n:
            k = min(max(1, math.floor(n * frac + 1e-9)), n - 1)
            is_test[rows[n - k :]] = True
    return is_test


def _ragged(frame_factory) -> pd.DataFrame:
    """Users with 1 to 30 events, some with tied timestamps."""
    df = frame_factory(num_users=60, events=30, seed=3)
    keep = df.groupby("user").cumcount() < (df["user"] % 30 + 1)
    df = df[keep.to_numpy()].copy()
    df.loc[df["user"] == 7, "timestamp"] = 5_000_000  # one user, every event at the same time
    return df.sort_values("timestamp", kind="stable")


@pytest.mark.parametrize("frac", [0.2, 0.1, 0.5])
def test_split_properties(frame_factory, frac: float) -> None:
    items = pd.DataFrame({"genre": np.arange(100) % 2}, index=np.arange(100))
    log = load_log(_ragged(frame_factory), rating="rating", items=items, category_columns=["genre"])
    train, test = temporal_split(log, test_frac=frac)
    tr, te = train.interactions, test.interactions
    assert len(tr) + len(te) == len(log)
    assert isinstance(tr.index, pd.RangeIndex) and isinstance(te.index, pd.RangeIndex)
    # the halves are the log's rows, in canonical order
    both = pd.concat([tr, te]).sort_values(["timestamp", "user", "item"], kind="stable")
    pd.testing.assert_frame_equal(both.reset_index(drop=True), log.interactions, check_like=False)
    assert tr["timestamp"].is_monotonic_increasing and te["timestamp"].is_monotonic_increasing
    # each user's test events are all at or after each of their train events
    last_train = tr.groupby("user")["timestamp"].max()
    first_test = te.groupby("user")["timestamp"].min()
    assert (first_test >= last_train.reindex(first_test.index)).all()
    # the fraction per user, and users with fewer than 5 events stay in train
    n = log.interactions.groupby("user").size()
    n_test = te.groupby("user").size().reindex(n.index, fill_value=0)
    expect = np.where(n >= 5, np.minimum(np.maximum(1, np.floor(n * frac + 1e-9)), n - 1), 0)
    np.testing.assert_array_equal(n_test.to_numpy(), expect)
    assert (n_test[n < 5] == 0).all() and (n_test[n >= 5] >= 1).all()
    assert (tr.groupby("user").size().reindex(n.index, fill_value=0) >= 1).all()
    # against a plain per-user loop
    ref = log.interactions[_reference(log.interactions, frac, 5)].reset_index(drop=True)
    pd.testing.assert_frame_equal(te, ref)
    # both halves keep the feature tables; names and notes say what they are
    assert train.items is log.items and test.items is log.items
    assert train.category_columns == ("genre",) and test.users is None
    assert (train.name, test.name) == ("log/train", "log/test")
    assert "temporal_split(test_frac=" in test.notes[-1]


def test_ties_broken_by_row_order(frame_factory) -> None:
    log = load_log(_ragged(frame_factory))
    _, test = temporal_split(log)
    rows = log.interactions[log.interactions["user"] == 7]
    assert rows["timestamp"].nunique() == 1 and len(rows) == 8
    # all tied: the last floor(8 * 0.2) = 1 row in canonical order (by item among ties)
    got = test.interactions[test.interactions["user"] == 7]
    pd.testing.assert_frame_equal(got.reset_index(drop=True), rows.tail(1).reset_index(drop=True))


def test_deterministic_and_min_interactions(frame) -> None:
    log = load_log(frame)
    a = temporal_split(log)
    b = temporal_split(log)
    pd.testing.assert_frame_equal(a[1].interactions, b[1].interactions)
    # every user has 30 events: 6 each to test
    assert (a[1].interactions.groupby("user").size() == 6).all()
    train, test = temporal_split(log, min_interactions=31)
    assert len(test) == 0 and len(train) == len(log)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"test_frac": 0.0}, r"invalid test_frac=0\.0 \(allowed: a number in \(0, 1\)\)"),
        ({"test_frac": 1}, "invalid test_frac=1"),
        ({"test_frac": "0.2"}, "invalid test_frac='0.2'"),
        ({"min_interactions": 1}, r"invalid min_interactions=1 \(allowed: an integer >= 2"),
        ({"min_interactions": 5.0}, "invalid min_interactions=5.0"),
    ],
)
def test_invalid_arguments(frame, kwargs, match) -> None:
    with pytest.raises(LogError, match=match):
        temporal_split(load_log(frame), **kwargs)
    with pytest.raises(LogError, match="invalid log=DataFrame"):
        temporal_split(frame)  # type: ignore[arg-type]
