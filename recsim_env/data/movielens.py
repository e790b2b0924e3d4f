"""MovieLens-100K as an :class:`InteractionLog`: the project's reference real log.

100,000 ratings (1-5) by 943 users of 1,682 movies, Sept 1997 - Apr 1998, each movie tagged with
some of 19 genres, each user with age, gender, occupation and zip code. Read from the RecBole atomic
files that :func:`recsim_env.data.fetch.fetch` writes (and verifies) under
``data_home()/movielens-100k/``; the data itself is never part of the project (GroupLens' terms).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd

from recsim_env.data.fetch import (
    DATASETS,
    ML100K_GENRES,
    FetchError,
    dataset_dir,
    fetch,
    is_present,
)
from recsim_env.data.log import InteractionLog, LogError, load_log, read_atomic

NAME = "movielens-100k"
GENRES: tuple[str, ...] = ML100K_GENRES


def load_movielens_100k(
    path: str | os.PathLike[str] | None = None, fetch_if_missing: bool = True
) -> InteractionLog:
    """ML-100K as a canonical log: ``rating`` (float 1-5), ``timestamp`` (int64 seconds, UTC);
    ``items`` indexed by item id with the 19 genre columns multi-hot (int8, ``category_columns``,
    in u.item's order, ``unknown`` first) plus ``title`` and ``year`` (nullable Int64: two items
    have none); ``users`` indexed by user id with ``age`` (int64), ``gender``, ``occupation``,
    ``zip_code``.

    ``path``: the directory holding ``ml-100k.{inter,item,user}`` (default
    ``data_home()/movielens-100k``). When the files are missing there and ``path`` is the default,
    they are fetched if ``fetch_if_missing``; otherwise the error names the command that fetches
    them. u.data is not in time order, so the log is loaded with ``sort=True``.
    """
    directory = Path(path) if path is not None else dataset_dir(NAME)
    files = DATASETS[NAME].files
    missing = [f for f in files if not (directory / f).is_file()]
    if missing:
        if path is None and fetch_if_missing:
            try:
                directory = fetch(NAME)
            except FetchError as e:
                raise LogError(
                    f"MovieLens-100K is not in {directory} and fetching it failed:\n{e}"
                ) from None
        else:
            raise LogError(
                f"MovieLens-100K is not in {directory} (missing {', '.join(missing)}); run "
                f"`recsim-data fetch {NAME}` (it goes to $RECSIM_DATA_DIR or "
                "~/.local/share/recsim-env), or pass path= to the directory holding "
                f"{', '.join(files)}"
            )
    elif path is None and not is_present(NAME, directory):
        raise LogError(
            f"MovieLens-100K files in {directory} do not match their SHA-256 checksums; run "
            f"`recsim-data fetch {NAME} --force`"
        )

    inter = read_atomic(directory / "ml-100k.inter")
    raw_items = read_atomic(directory / "ml-100k.item")
    raw_users = read_atomic(directory / "ml-100k.user")

    genres = raw_items["class"].str.get_dummies(sep=" ")
    unexpected = sorted(set(genres.columns) - set(GENRES))
    if unexpected:
        raise LogError(f"ml-100k.item: unknown genre(s) {unexpected} in column 'class'")
    genres = genres.reindex(columns=list(GENRES), fill_value=0).astype(np.int8)
    # RecBole writes "unkonwn" (sic) for the one untitled item; item 1412's year reads "V" (video)
    title = raw_items["movie_title"].replace("unkonwn", "unknown")
    year = pd.to_numeric(raw_items["release_year"], errors="coerce").astype("Int64")
    items = pd.concat(
        [raw_items[["item_id"]], genres, title.rename("title"), year.rename("year")], axis=1
    )
    users = raw_users.rename(columns={"user_id": "user"})
    users["age"] = users["age"].astype(np.int64)
    return load_log(
        inter,
        user="user_id",
        item="item_id",
        timestamp="timestamp",
        rating="rating",
        items=items,
        users=users,
        category_columns=GENRES,
        sort=True,
        name=NAME,
    )
