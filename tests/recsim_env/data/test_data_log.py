"""load_log: canonical output, every source format, and every validation error (issue 18)."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from recsim_env.data import InteractionLog, LogError, load_log
from recsim_env.validation import ConfigError


def test_canonical_form(frame: pd.DataFrame) -> None:
    src = frame.rename(columns={"user": "uid", "item": "iid", "timestamp": "t", "rating": "r"})
    src["extra"] = "dropped"
    log = load_log(src, user="uid", item="iid", timestamp="t", rating="r", name="toy")
    df = log.interactions
    assert isinstance(log, InteractionLog) and log.name == "toy" and log.notes == ()
    assert list(df.columns) == ["user", "item", "timestamp", "rating"]
    assert [str(t) for t in df.dtypes] == ["int64", "int64", "int64", "float64"]
    assert isinstance(df.index, pd.RangeIndex) and df.index.start == 0
    expect = frame.sort_values(["timestamp", "user", "item"], kind="stable").reset_index(drop=True)
    pd.testing.assert_frame_equal(df, expect, check_dtype=False)
    assert (len(log), log.num_users, log.num_items) == (1500, 50, frame["item"].nunique())
    assert log.time_span() == (frame["timestamp"].min(), frame["timestamp"].max())
    assert log.summary()["interactions"] == 1500 and not log.has_click and log.has_rating
    # the caller's frame is not modified
    assert "extra" in src.columns and src.index.equals(frame.index)


def test_sorted_by_timestamp_user_item_stable() -> None:
    df = pd.DataFrame(
        {"user": [2, 1, 1, 2, 1], "item": [5, 9, 3, 5, 3], "timestamp": [10, 10, 10, 11, 12]}
    )
    out = load_log(df).interactions
    assert out[["user", "item", "timestamp"]].values.tolist() == [
        [1, 3, 10],
        [1, 9, 10],
        [2, 5, 10],
        [2, 5, 11],
        [1, 3, 12],
    ]
    # a float timestamp column that holds whole numbers becomes int64; fractions stay float
    assert load_log(df.astype({"timestamp": float})).interactions["timestamp"].dtype == np.int64
    frac = df.assign(timestamp=df["timestamp"] + 0.5)
    assert load_log(frac).interactions["timestamp"].dtype == np.float64


def test_string_ids_kept_and_datetime_timestamps() -> None:
    df = pd.DataFrame(
        {
            "user": ["a", "b", "a"],
            "item": ["x", "y", "z"],
            "timestamp": pd.to_datetime(
                ["1998-01-01 00:00:00", "1998-01-01 00:00:01", "1998-01-02 00:00:00"]
            ),
        }
    )
    out = load_log(df).interactions
    assert out["user"].tolist() == ["a", "b", "a"] and out["item"].tolist() == ["x", "y", "z"]
    assert out["timestamp"].tolist() == [883612800, 883612801, 883699200]


def test_files_csv_tsv_atomic_equal_the_frame(frame: pd.DataFrame, tmp_path) -> None:
    ref = load_log(frame, rating="rating").interactions
    frame.to_csv(tmp_path / "log.csv", index=False)
    frame.to_csv(tmp_path / "log.tsv", index=False, sep="\t")
    frame.to_csv(tmp_path / "log.txt", index=False, sep=";")
    atomic = frame.rename(
        columns={
            "user": "user_id:token",
            "item": "item_id:token",
            "rating": "rating:float",
            "timestamp": "timestamp:float",
        }
    )
    atomic.to_csv(tmp_path / "toy.inter", index=False, sep="\t")
    for path, kw in [
        ("log.csv", {}),
        ("log.tsv", {}),
        ("log.txt", {"sep": ";"}),
        ("toy.inter", {"user": "user_id", "item": "item_id"}),
    ]:
        log = load_log(tmp_path / path, rating="rating", **kw)
        pd.testing.assert_frame_equal(log.interactions, ref)
        assert log.name == path.split(".")[0]


def test_atomic_types(tmp_path) -> None:
    from recsim_env.data import read_atomic

    (tmp_path / "t.user").write_text(
        "user_id:token\tage:token\tzip:token\tscore:float\n1\t24\t05201\t1.5\n2\t53\t94043\t2\n"
    )
    df = read_atomic(tmp_path / "t.user")
    assert df["user_id"].dtype == np.int64 and df["age"].dtype == np.int64
    assert df["zip"].tolist() == ["05201", "94043"]  # a leading zero stays a string
    assert df["score"].tolist() == [1.5, 2.0]
    (tmp_path / "bad.user").write_text("user_id\tage:token\n1\t2\n")
    with pytest.raises(LogError, match="header field 'user_id' has no type"):
        read_atomic(tmp_path / "bad.user")
    (tmp_path / "bad2.user").write_text("user_id:token\tscore:float\n1\thigh\n")
    with pytest.raises(LogError, match=r"'score' is typed float but holds 'high' \(data row 0"):
        read_atomic(tmp_path / "bad2.user")


def test_parquet(frame: pd.DataFrame, tmp_path) -> None:
    path = tmp_path / "log.parquet"
    try:
        frame.to_parquet(path)
    except ImportError:
        path.write_bytes(b"PAR1")  # no engine: reading must say so and how to fix it
        with pytest.raises(LogError, match=r"parquet engine.*pip install pyarrow"):
            load_log(path)
        return
    pd.testing.assert_frame_equal(load_log(path).interactions, load_log(frame).interactions)


def test_log_error_is_a_config_error() -> None:
    assert issubclass(LogError, ConfigError) and issubclass(LogError, ValueError)


def test_missing_columns_listed(frame: pd.DataFrame) -> None:
    with pytest.raises(LogError) as e:
        load_log(frame, item="movie", rating="stars")
    msg = str(e.value)
    assert "missing column(s) item='movie', rating='stars'" in msg
    assert "['user', 'item', 'timestamp', 'rating']" in msg


def test_empty_log(tmp_path) -> None:
    with pytest.raises(LogError, match="empty log"):
        load_log(pd.DataFrame({"user": [], "item": [], "timestamp": []}))
    (tmp_path / "e.csv").write_text("")
    with pytest.raises(LogError, match="empty file"):
        load_log(tmp_path / "e.csv")
    (tmp_path / "h.csv").write_text("user,item,timestamp\n")
    with pytest.raises(LogError, match="empty log"):
        load_log(tmp_path / "h.csv")
    with pytest.raises(LogError, match="no such file"):
        load_log(tmp_path / "absent.csv")
    with pytest.raises(LogError, match=r"invalid source=list"):
        load_log([1, 2, 3])  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("value", "match"),
    [
        ("yesterday", r"1 non-numeric timestamp\(s\), e.g. 'yesterday' at row 2"),
        (np.nan, r"1 NaN or infinite timestamp\(s\), first a NaN/missing value at row 2"),
        (np.inf, r"1 NaN or infinite timestamp\(s\), first an infinite value at row 2"),
    ],
)
def test_bad_timestamps(value, match) -> None:
    df = pd.DataFrame({"user": [1, 1, 2, 2], "item": [1, 2, 3, 4], "timestamp": [1, 2, 3, 4]})
    df["timestamp"] = df["timestamp"].astype(object if isinstance(value, str) else float)
    df.loc[2, "timestamp"] = value
    with pytest.raises(LogError, match=r"column 'timestamp' has " + match):
        load_log(df)


def test_nullable_columns_with_missing_values() -> None:
    df = pd.DataFrame(
        {
            "user": [1, 1, 2],
            "item": [1, 2, 3],
            "timestamp": pd.array([1, None, 3], dtype="Int64"),
            "rating": pd.array([1, 2, None], dtype="Int64"),
        }
    )
    with pytest.raises(LogError, match="first a NaN/missing value at row 1"):
        load_log(df)
    df["timestamp"] = pd.array([1, 2, 3], dtype="Int64")
    assert load_log(df).interactions["timestamp"].dtype == np.int64
    with pytest.raises(LogError, match=r"'rating' \(rating\) has 1 NaN or infinite value.*row 2"):
        load_log(df, rating="rating")


def test_bool_timestamps_and_missing_ids_rejected() -> None:
    df = pd.DataFrame({"user": [1, 2], "item": [1, 2], "timestamp": [True, False]})
    with pytest.raises(LogError, match="'timestamp' holds booleans"):
        load_log(df)
    df = pd.DataFrame({"user": [1.0, np.nan], "item": [1, 2], "timestamp": [1, 2]})
    with pytest.raises(LogError, match=r"column 'user' has 1 missing id\(s\), first at row\(s\) 1"):
        load_log(df)
    df = pd.DataFrame({"user": [1.5, 2], "item": [1, 2], "timestamp": [1, 2]})
    with pytest.raises(LogError, match="'user' holds non-integral numbers"):
        load_log(df)


def test_time_going_back_within_a_user(frame: pd.DataFrame) -> None:
    df = frame.reset_index(drop=True)
    rows = np.flatnonzero(df["user"].to_numpy() == df["user"].iloc[0])
    # swap two of the first user's timestamps: the later row now goes back in time
    a, b = rows[3], rows[4]
    df.loc[[a, b], "timestamp"] = df.loc[[b, a], "timestamp"].to_numpy()
    with pytest.raises(LogError) as e:
        load_log(df)
    msg = str(e.value)
    assert f"within user {df['user'].iloc[0]}'s rows: row {b} has" in msg
    assert "pass sort=True" in msg
    # other users' rows going back does not matter: only within a user
    assert len(load_log(frame.sort_values("user", kind="stable")))
    log = load_log(df, sort=True)
    assert log.interactions["timestamp"].is_monotonic_increasing
    assert "sorted" in log.notes[0]
    by_time = df.sort_values("timestamp", kind="stable")
    pd.testing.assert_frame_equal(log.interactions, load_log(by_time).interactions)


def test_duplicates_error_or_drop(frame: pd.DataFrame) -> None:
    df = frame.reset_index(drop=True)
    dup = pd.concat([df, df.iloc[[5, 7, 9]]]).sort_values("timestamp", kind="stable")
    with pytest.raises(LogError) as e:
        load_log(dup)
    msg = str(e.value)
    assert "3 duplicate row(s) (same user, item and timestamp" in msg
    u, i, t = (int(df.loc[5, c]) for c in ("user", "item", "timestamp"))
    assert f"user={u}, item={i}, timestamp={t}" in msg and "duplicates='drop'" in msg
    log = load_log(dup, duplicates="drop")
    assert len(log) == len(df)
    assert log.notes == ("dropped 3 duplicate row(s) (same user, item, timestamp), kept the first",)
    pd.testing.assert_frame_equal(log.interactions, load_log(df).interactions)
    with pytest.raises(LogError, match=r"invalid duplicates='keep' \(allowed: 'error' or 'drop'\)"):
        load_log(df, duplicates="keep")  # type: ignore[arg-type]


def test_ratings_must_be_numbers(frame: pd.DataFrame) -> None:
    df = frame.reset_index(drop=True).astype({"rating": object})
    df.loc[4, "rating"] = "five"
    with pytest.raises(LogError, match=r"'rating' \(rating\) is not numeric: 1 .* 'five' at row 4"):
        load_log(df, rating="rating")
    df.loc[4, "rating"] = np.nan
    with pytest.raises(LogError, match=r"'rating' \(rating\) has 1 NaN or infinite value"):
        load_log(df, rating="rating")
    df = frame.assign(rating=frame["rating"] > 3)
    with pytest.raises(LogError, match="not numeric"):
        load_log(df, rating="rating")
    # numeric strings (as a CSV of quoted numbers gives) are fine
    ok = load_log(frame.assign(rating=frame["rating"].astype(str)), rating="rating")
    assert ok.interactions["rating"].dtype == np.float64


def test_clicks_must_be_0_or_1(frame: pd.DataFrame) -> None:
    df = frame.reset_index(drop=True)
    df["clicked"] = (df["rating"] > 3).astype(int)
    log = load_log(df, click="clicked")
    assert log.interactions["click"].dtype == np.int8 and log.has_click
    assert load_log(df.assign(clicked=df["clicked"].astype(bool)), click="clicked").has_click
    df.loc[6, "clicked"] = 2
    with pytest.raises(
        LogError, match=r"'clicked' \(click\) must hold only 0 or 1; 1 row.*2 at row 6"
    ):
        load_log(df, click="clicked")


def test_items_and_users_tables(frame: pd.DataFrame) -> None:
    items = pd.DataFrame(
        {
            "item": np.arange(100),
            "Drama": np.arange(100) % 2,
            "Comedy": (np.arange(100) % 3 == 0).astype(float),
            "title": [f"m{i}" for i in range(100)],
        }
    )
    users = pd.DataFrame({"age": np.arange(50) + 18}, index=pd.Index(np.arange(50)))
    log = load_log(frame, items=items, users=users, category_columns=("Drama", "Comedy"))
    assert log.items.index.name == "item" and log.items.index.dtype == np.int64
    assert log.category_columns == ("Drama", "Comedy")
    assert (log.items[["Drama", "Comedy"]].dtypes == np.int8).all()
    assert log.users.index.name == "user" and log.users.loc[3, "age"] == 21
    used = sorted(frame["item"].unique())
    with pytest.raises(LogError) as e:
        load_log(frame, items=items[~items["item"].isin(used[:7])])
    assert f"items table: its index misses 7 item id(s) used in the log, e.g. {used[0]}" in str(
        e.value
    )
    assert "(7 in all)" in str(e.value)
    with pytest.raises(LogError, match=r"users table: its index misses 1 user id\(s\).*49"):
        load_log(frame, users=users.iloc[:49])
    with pytest.raises(LogError, match=r"missing category column\(s\) \['Horror'\]"):
        load_log(frame, items=items, category_columns=("Horror",))
    bad = items.assign(Drama=items["Drama"] * 2)
    with pytest.raises(LogError, match="category column 'Drama' must be multi-hot 0/1"):
        load_log(frame, items=bad, category_columns=("Drama",))
    with pytest.raises(LogError, match="appear more than once"):
        load_log(frame, items=pd.concat([items, items.iloc[:2]]))
    with pytest.raises(LogError, match="without an items table"):
        load_log(frame, category_columns=("Drama",))


def test_items_table_from_a_file(frame: pd.DataFrame, tmp_path) -> None:
    pd.DataFrame({"item": np.arange(100), "Drama": np.arange(100) % 2}).to_csv(
        tmp_path / "items.csv", index=False
    )
    log = load_log(frame, items=tmp_path / "items.csv", category_columns=["Drama"])
    assert log.items.shape == (100, 1) and log.items.loc[3, "Drama"] == 1


def test_import_recsim_env_does_not_import_pandas() -> None:
    code = (
        "import sys, recsim_env, recsim_env.data, recsim_env.data.cli\n"
        "assert 'pandas' not in sys.modules, 'pandas imported'\n"
        "from recsim_env.data import load_log\n"
        "assert 'pandas' in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
