"""load_movielens_100k on a tiny hand-written copy of the files; the real data set in slow tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from recsim_env.data import LogError, load_movielens_100k, temporal_split
from recsim_env.data.movielens import GENRES

INTER = (
    "user_id:token\titem_id:token\trating:float\ttimestamp:float\n"
    "2\t1\t4\t881250949\n1\t267\t3\t881250000\n1\t1\t5\t881250000\n2\t1412\t1\t881260000\n"
)
ITEM = (
    "item_id:token\tmovie_title:token_seq\trelease_year:token\tclass:token_seq\n"
    "1\tToy Story\t1995\tAnimation Children's Comedy\n"
    "267\tunkonwn\tunkonwn\tunknown\n"
    "1412\tLand Before Time III: The Time of the Great Giving (1995)\tV\tAnimation Children's\n"
)
USER = (
    "user_id:token\tage:token\tgender:token\toccupation:token\tzip_code:token\n"
    "1\t24\tM\ttechnician\t85711\n2\t53\tF\tother\t05201\n"
)


def _write(d: Path, inter: str = INTER, item: str = ITEM, user: str = USER) -> Path:
    d.mkdir(parents=True, exist_ok=True)
    (d / "ml-100k.inter").write_text(inter, encoding="utf-8")
    (d / "ml-100k.item").write_text(item, encoding="utf-8")
    (d / "ml-100k.user").write_text(user, encoding="utf-8")
    return d


def test_tiny_copy(tmp_path: Path) -> None:
    log = load_movielens_100k(_write(tmp_path / "ml"))
    df = log.interactions
    assert log.name == "movielens-100k" and log.notes == (
        "rows sorted by timestamp (sort=True, stable)",
    )
    assert df[["user", "item", "timestamp"]].values.tolist() == [
        [1, 1, 881250000],
        [1, 267, 881250000],
        [2, 1, 881250949],
        [2, 1412, 881260000],
    ]
    assert df["rating"].tolist() == [5.0, 3.0, 4.0, 1.0]
    assert log.category_columns == GENRES and len(GENRES) == 19 and GENRES[0] == "unknown"
    items = log.items
    assert list(items.columns) == [*GENRES, "title", "year"]
    assert items.loc[1, ["Animation", "Children's", "Comedy"]].tolist() == [1, 1, 1]
    assert items.loc[1, list(GENRES)].sum() == 3 and items.loc[267, "unknown"] == 1
    assert (items[list(GENRES)].dtypes == np.int8).all()
    assert items.loc[267, "title"] == "unknown" and pd.isna(items.loc[267, "year"])
    assert items.loc[1, "year"] == 1995 and pd.isna(items.loc[1412, "year"])
    users = log.users
    assert users.loc[2].tolist() == [53, "F", "other", "05201"]
    assert users["age"].dtype == np.int64


def test_missing_files_name_the_command(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(LogError, match="recsim-data fetch movielens-100k"):
        load_movielens_100k(tmp_path / "nowhere")
    monkeypatch.setenv("RECSIM_DATA_DIR", str(tmp_path / "home"))
    with pytest.raises(LogError, match=r"missing ml-100k\.inter, ml-100k\.item, ml-100k\.user"):
        load_movielens_100k(fetch_if_missing=False)


def test_unknown_genre_and_bad_checksums(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    d = _write(tmp_path / "ml", item=ITEM.replace("Comedy", "Anime"))
    with pytest.raises(LogError, match=r"unknown genre\(s\) \['Anime'\]"):
        load_movielens_100k(d)
    # in the default location the files must be the verified ones
    monkeypatch.setenv("RECSIM_DATA_DIR", str(tmp_path))
    _write(tmp_path / "movielens-100k")
    with pytest.raises(LogError, match=r"do not match their SHA-256.*--force"):
        load_movielens_100k(fetch_if_missing=False)


@pytest.fixture(scope="module")
def ml100k():
    try:
        return load_movielens_100k()
    except LogError as e:
        pytest.skip(f"MovieLens-100K is not available: {e}")


@pytest.mark.slow
def test_real_movielens_100k(ml100k) -> None:
    log = ml100k
    assert (len(log), log.num_users, log.num_items) == (100_000, 943, 1682)
    assert log.time_span() == (
        874724710,
        893286638,
    )  # 1997-09-20 03:05:10 .. 1998-04-22 23:10:38 UTC
    assert sorted(log.interactions["rating"].unique()) == [1.0, 2.0, 3.0, 4.0, 5.0]
    assert log.items.shape == (1682, 21) and log.users.shape == (943, 4)
    genre_counts = log.items[list(GENRES)].sum()
    assert (genre_counts["Drama"], genre_counts["Comedy"], genre_counts["unknown"]) == (725, 505, 2)
    assert set(log.users["gender"]) == {"F", "M"} and log.users["occupation"].nunique() == 21
    train, test = temporal_split(log)
    # every user has >= 20 ratings, so every user is in test with floor(n / 5) of them
    assert test.num_users == 943 and len(train) + len(test) == 100_000
    n = log.interactions.groupby("user").size()
    assert len(test) == int((n // 5).sum())
