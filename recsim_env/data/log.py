"""Interaction logs as data: one validated, canonical table the calibration and fidelity code trust.

Every consumer of a log (the fit, the held-out split, the fidelity metrics) assumes the same things:
columns ``user, item, timestamp`` (+ ``rating``, ``click``), numeric finite timestamps, rows in time
order, no silent duplicates, and feature tables that cover every id. Checking them once, here, with
errors that name the column and the problem, means a malformed log fails at load time and never as a
wrong number in a fidelity report.

Sources: a pandas DataFrame, or a path to a CSV, a TSV, a Parquet file (needs a parquet engine such
as ``pyarrow``) or a RecBole atomic file (``.inter`` / ``.item`` / ``.user``: tab-separated with a
typed header such as ``user_id:token``).
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from recsim_env.validation import ConfigError

ATOMIC_SUFFIXES = (".inter", ".item", ".user")
_PARQUET_SUFFIXES = (".parquet", ".pq")
_TSV_SUFFIXES = (".tsv", ".tab")
# an integer written the one way str(int) writes it: such a token column converts to int64 losslessly
# (a zip code such as "05201" does not match and stays a string)
_CANONICAL_INT = re.compile(r"^(?:0|-?[1-9][0-9]*)$")
_SHOW = 5  # how many offending ids / rows an error message lists


class LogError(ConfigError):
    """An interaction log (or one of its feature tables) that cannot be used as given.

    The message names the column and the problem, and where it helps the rows or ids at fault.
    """


@dataclass(frozen=True)
class InteractionLog:
    """A validated interaction log in canonical form (what :func:`load_log` returns).

    ``interactions`` has columns ``user, item, timestamp`` (+ ``rating`` float64, + ``click`` int8
    0/1), is sorted by ``(timestamp, user, item)`` (stable) and has a RangeIndex. Without ``click``
    every row is a positive (a consumption, as in ML-100K); with it rows are impressions (1 = chosen,
    0 = shown and not chosen). ``items`` is indexed by item id; ``category_columns`` names its
    multi-hot category columns (int8 0/1). ``users`` is indexed by user id. ``notes`` records what
    loading changed in the data (e.g. duplicate rows dropped), so nothing is changed silently.
    """

    interactions: pd.DataFrame
    items: pd.DataFrame | None = None
    category_columns: tuple[str, ...] = ()
    users: pd.DataFrame | None = None
    name: str = "log"
    notes: tuple[str, ...] = ()

    def __len__(self) -> int:
        return len(self.interactions)

    @property
    def num_users(self) -> int:
        """Distinct users with at least one interaction."""
        return int(self.interactions["user"].nunique())

    @property
    def num_items(self) -> int:
        """Distinct items with at least one interaction."""
        return int(self.interactions["item"].nunique())

    @property
    def has_rating(self) -> bool:
        return "rating" in self.interactions.columns

    @property
    def has_click(self) -> bool:
        return "click" in self.interactions.columns

    def time_span(self) -> tuple[float, float]:
        """(first, last) timestamp in the log's own units (seconds for ML-100K)."""
        ts = self.interactions["timestamp"]
        return (ts.iloc[0].item(), ts.iloc[-1].item())

    def summary(self) -> dict[str, Any]:
        """Counts and time span, as plain Python values (JSON-ready)."""
        first, last = self.time_span()
        return {
            "name": self.name,
            "interactions": len(self),
            "users": self.num_users,
            "items": self.num_items,
            "first_timestamp": first,
            "last_timestamp": last,
            "has_rating": self.has_rating,
            "has_click": self.has_click,
            "category_columns": list(self.category_columns),
            "notes": list(self.notes),
        }


# --------------------------------------------------------------------------------------- reading


def read_atomic(path: str | os.PathLike[str]) -> pd.DataFrame:
    """Read a RecBole atomic file: tab-separated, header fields ``name:type`` (token, token_seq,
    float, float_seq). The types are stripped from the column names; ``float`` columns become
    float64; ``token`` columns whose every value is a canonically written integer become int64 (ids
    such as ``196``), the others stay strings; ``*_seq`` columns stay space-separated strings."""
    path = Path(path)
    with open(path, encoding="utf-8") as f:
        header = f.readline().rstrip("\r\n")
    if not header:
        raise LogError(f"{path}: empty file (expected a typed header such as 'user_id:token')")
    fields = header.split("\t")
    names, types = [], []
    for field in fields:
        name, sep, ftype = field.rpartition(":")
        if not sep or not name:
            raise LogError(
                f"{path}: header field {field!r} has no type (RecBole atomic files type every "
                "column, e.g. 'user_id:token', 'rating:float', 'class:token_seq')"
            )
        names.append(name)
        types.append(ftype)
    df = pd.read_csv(
        path,
        sep="\t",
        header=0,
        names=names,
        dtype=str,
        keep_default_na=False,
        quoting=3,  # csv.QUOTE_NONE: titles may contain quotes
        encoding="utf-8",
    )
    for name, ftype in zip(names, types, strict=True):
        col = df[name]
        if ftype == "float":
            num = pd.to_numeric(col.replace("", np.nan), errors="coerce")
            bad = num.isna() & col.ne("")
            if bad.any():
                row = int(np.flatnonzero(bad.to_numpy())[0])
                raise LogError(
                    f"{path}: column {name!r} is typed float but holds {col.iloc[row]!r} "
                    f"(data row {row}, file line {row + 2})"
                )
            df[name] = num.astype(np.float64)
        elif ftype == "token" and len(col) and col.str.fullmatch(_CANONICAL_INT).all():
            df[name] = col.astype(np.int64)
    return df


def _read_table(path: Path, sep: str | None) -> pd.DataFrame:
    if not path.exists():
        raise LogError(f"no such file: {path}")
    suffix = path.suffix.lower()
    if suffix in ATOMIC_SUFFIXES:
        return read_atomic(path)
    if suffix in _PARQUET_SUFFIXES:
        try:
            return pd.read_parquet(path)
        except ImportError:
            raise LogError(
                f"{path}: reading Parquet needs a parquet engine (pyarrow or fastparquet) and none "
                "is installed; install one with `pip install pyarrow`, or pass a CSV or a DataFrame"
            ) from None
    if sep is None:
        sep = "\t" if suffix in _TSV_SUFFIXES else ","
    try:
        return pd.read_csv(path, sep=sep)
    except pd.errors.EmptyDataError:
        raise LogError(f"{path}: empty file (no header, no rows)") from None


def _as_frame(source: Any, what: str, sep: str | None) -> tuple[pd.DataFrame, str | None]:
    """A DataFrame (copied) and, for a path, its stem (the default log name)."""
    if isinstance(source, pd.DataFrame):
        return source.copy(), None
    if isinstance(source, str | os.PathLike):
        path = Path(source)
        return _read_table(path, sep), path.stem
    raise LogError(
        f"invalid {what}={type(source).__name__} (allowed: a pandas DataFrame or a path to a "
        "CSV, TSV, Parquet or RecBole atomic file)"
    )


# ------------------------------------------------------------------------------------ validation


def _fail(key: str, value: Any, allowed: str) -> None:
    raise LogError(f"invalid {key}={value!r} (allowed: {allowed})")


def _py(value: Any) -> Any:
    """A numpy scalar as the Python value, so messages read ``2``, not ``np.int64(2)``."""
    return value.item() if isinstance(value, np.generic) else value


def _show(values: Iterable[Any]) -> str:
    vals = list(values)
    shown = ", ".join(repr(_py(v)) for v in vals[:_SHOW])
    return shown + (f", ... ({len(vals)} in all)" if len(vals) > _SHOW else "")


def _require_columns(df: pd.DataFrame, wanted: dict[str, str], what: str) -> None:
    missing = [f"{role}={col!r}" for role, col in wanted.items() if col not in df.columns]
    if missing:
        raise LogError(
            f"{what}: missing column(s) {', '.join(missing)}; the columns present are "
            f"{[str(c) for c in df.columns]} (pass user=/item=/timestamp=/rating=/click= to name them)"
        )


def _ids(col: pd.Series, role: str, source: str) -> pd.Series:
    """Ids as given; integral numbers (e.g. floats read from a CSV) become int64."""
    missing = col.isna().to_numpy()
    if missing.any():
        rows = np.flatnonzero(missing)
        raise LogError(
            f"{source}: column {role!r} has {len(rows)} missing id(s), first at row(s) {_show(rows)}"
        )
    if pd.api.types.is_bool_dtype(col):
        raise LogError(f"{source}: column {role!r} holds booleans, not ids")
    if pd.api.types.is_integer_dtype(col):
        return col.astype(np.int64)
    if pd.api.types.is_float_dtype(col):
        vals = col.astype(np.float64).to_numpy()  # nullable dtypes: NA -> NaN
        if np.isfinite(vals).all() and (vals == np.round(vals)).all():
            return col.astype(np.int64)
        raise LogError(
            f"{source}: column {role!r} holds non-integral numbers; ids must be integers or strings"
        )
    return col


def _timestamps(col: pd.Series, name: str, source: str) -> pd.Series:
    """Finite numeric seconds; datetime64 columns are converted to seconds since the epoch."""
    if pd.api.types.is_datetime64_any_dtype(col):
        if col.isna().any():
            rows = np.flatnonzero(col.isna().to_numpy())
            raise LogError(
                f"{source}: column {name!r} has missing timestamps at row(s) {_show(rows)}"
            )
        if getattr(col.dt, "tz", None) is not None:
            col = col.dt.tz_convert("UTC").dt.tz_localize(None)
        ns = col.to_numpy(dtype="datetime64[ns]").astype(np.int64)
        secs = ns / 1e9
        return pd.Series(ns // 10**9 if (ns % 10**9 == 0).all() else secs, index=col.index)
    if pd.api.types.is_bool_dtype(col):
        raise LogError(f"{source}: column {name!r} holds booleans, not timestamps")
    if not pd.api.types.is_numeric_dtype(col):
        num = pd.to_numeric(col, errors="coerce")
        bad = (num.isna() & col.notna()).to_numpy()
        if bad.any():
            rows = np.flatnonzero(bad)
            raise LogError(
                f"{source}: column {name!r} has {len(rows)} non-numeric timestamp(s), e.g. "
                f"{col.iloc[rows[0]]!r} at row {rows[0]} (timestamps must be numbers, e.g. "
                "seconds since the epoch, or a datetime64 column)"
            )
        col = num
    vals = col.astype(np.float64).to_numpy()  # nullable dtypes: NA -> NaN
    bad = ~np.isfinite(vals)
    if bad.any():
        rows = np.flatnonzero(bad)
        kind = "a NaN/missing" if np.isnan(vals[rows[0]]) else "an infinite"
        raise LogError(
            f"{source}: column {name!r} has {len(rows)} NaN or infinite timestamp(s), first "
            f"{kind} value at row {rows[0]}"
        )
    if pd.api.types.is_integer_dtype(col):
        return col.astype(np.int64)
    if (vals == np.round(vals)).all() and np.abs(vals).max() < 2**53:
        return pd.Series(vals.astype(np.int64), index=col.index)
    return col.astype(np.float64)


def _ratings(col: pd.Series, name: str, source: str) -> pd.Series:
    """Finite float64 ratings (rows are positions: the caller passes a RangeIndex)."""
    num = None if pd.api.types.is_bool_dtype(col) else pd.to_numeric(col, errors="coerce")
    bad = np.ones(len(col), bool) if num is None else (num.isna() & col.notna()).to_numpy()
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise LogError(
            f"{source}: column {name!r} (rating) is not numeric: {int(bad.sum())} value(s) are "
            f"not numbers, e.g. {_py(col.iloc[row])!r} at row {row}"
        )
    assert num is not None
    vals = num.astype(np.float64).to_numpy()
    bad = ~np.isfinite(vals)
    if bad.any():
        rows = np.flatnonzero(bad)
        raise LogError(
            f"{source}: column {name!r} (rating) has {len(rows)} NaN or infinite value(s), first at "
            f"row {rows[0]}"
        )
    return pd.Series(vals, index=col.index)


def _clicks(col: pd.Series, name: str, source: str) -> pd.Series:
    if pd.api.types.is_bool_dtype(col):
        return col.astype(np.int8)
    num = pd.to_numeric(col, errors="coerce")
    ok = num.isin([0, 1]).to_numpy()
    if not ok.all():
        rows = np.flatnonzero(~ok)
        raise LogError(
            f"{source}: column {name!r} (click) must hold only 0 or 1; {len(rows)} row(s) do not, "
            f"e.g. {_py(col.iloc[rows[0]])!r} at row {rows[0]}"
        )
    return num.astype(np.int8)


def _table(
    source: Any, key_column: str, role: str, sep: str | None, used: pd.Series
) -> pd.DataFrame:
    """An items/users table indexed by id: its ``key_column`` (the log's column name) becomes the
    index when present, else the index is taken as the ids. Every id the log uses must be there."""
    df, _ = _as_frame(source, f"{role}s", sep)
    if key_column in df.columns:
        df = df.set_index(key_column)
    elif role in df.columns:
        df = df.set_index(role)
    df.index = _ids(df.index.to_series(), f"{role}s.index", f"{role}s table").to_numpy()
    df.index.name = role
    if df.index.has_duplicates:
        dup = df.index[df.index.duplicated()].unique()
        raise LogError(f"{role}s table: {len(dup)} id(s) appear more than once: {_show(dup)}")
    log_ids = pd.Index(used.unique())
    try:
        missing = log_ids.difference(df.index, sort=False)
    except TypeError:  # ids of types that do not compare (int in the log, str in the table)
        missing = log_ids[~log_ids.isin(df.index)]
    if len(missing):
        with contextlib.suppress(TypeError):  # ids that do not compare stay in log order
            missing = missing.sort_values()
        raise LogError(
            f"{role}s table: its index misses {len(missing)} {role} id(s) used in the log, e.g. "
            f"{_show(missing)} (index dtype {df.index.dtype}, log ids dtype {used.dtype})"
        )
    return df


def load_log(
    source: pd.DataFrame | str | os.PathLike[str],
    *,
    user: str = "user",
    item: str = "item",
    timestamp: str = "timestamp",
    rating: str | None = None,
    click: str | None = None,
    items: pd.DataFrame | str | os.PathLike[str] | None = None,
    users: pd.DataFrame | str | os.PathLike[str] | None = None,
    category_columns: Sequence[str] = (),
    sep: str | None = None,
    sort: bool = False,
    duplicates: Literal["error", "drop"] = "error",
    name: str | None = None,
) -> InteractionLog:
    """Load, validate and canonicalise an interaction log.

    ``user``/``item``/``timestamp``/``rating``/``click`` name the source's columns (renamed to
    ``user, item, timestamp, rating, click``; other columns are dropped). Timestamps must be finite
    numbers (or datetime64, converted to seconds) and must not go back in time within a user's rows
    as given, because a log whose order contradicts its clock usually means a wrong column or a
    broken export; ``sort=True`` sorts the rows stably by timestamp first. Rows with the same user,
    item and timestamp are an error (``duplicates="error"``, the count and the first few are
    reported) or dropped keeping the first, with the count recorded in ``log.notes``
    (``duplicates="drop"``). ``items``/``users`` are tables (DataFrame or path) indexed by id, or
    holding the id in the log's column of that name; ``category_columns`` names the items' multi-hot
    category columns (0/1). ``sep`` overrides the separator for CSV-like files.

    Raises :class:`LogError` (a ``ConfigError``, hence a ``ValueError``) naming the problem.
    """
    if duplicates not in ("error", "drop"):
        _fail("duplicates", duplicates, "'error' or 'drop'")
    if not isinstance(sort, bool):
        _fail("sort", sort, "true or false")
    if isinstance(category_columns, str):
        category_columns = (category_columns,)
    df, stem = _as_frame(source, "source", sep)
    log_name = name if name is not None else (stem or "log")
    where = f"log {log_name!r}"
    wanted = {"user": user, "item": item, "timestamp": timestamp}
    if rating is not None:
        wanted["rating"] = rating
    if click is not None:
        wanted["click"] = click
    _require_columns(df, wanted, where)
    if len(df) == 0:
        raise LogError(f"{where}: empty log (no rows)")

    out = pd.DataFrame(index=pd.RangeIndex(len(df)))
    df = df.reset_index(drop=True)
    out["user"] = _ids(df[user], user, where)
    out["item"] = _ids(df[item], item, where)
    out["timestamp"] = _timestamps(df[timestamp], timestamp, where)
    if rating is not None:
        out["rating"] = _ratings(df[rating], rating, where)
    if click is not None:
        out["click"] = _clicks(df[click], click, where)

    notes: list[str] = []
    if sort:
        order = np.argsort(out["timestamp"].to_numpy(), kind="stable")
        if (order != np.arange(len(order))).any():
            notes.append("rows sorted by timestamp (sort=True, stable)")
        out = out.iloc[order].reset_index(drop=True)
    else:
        back = (out.groupby("user", sort=False)["timestamp"].diff() < 0).to_numpy()
        if back.any():
            row = int(np.flatnonzero(back)[0])
            u = out["user"].iloc[row]
            prev = out["timestamp"].iloc[:row][out["user"].iloc[:row] == u].iloc[-1]
            raise LogError(
                f"{where}: column {timestamp!r} goes back in time within user {_show([u])}'s "
                f"rows: row {row} has {_py(out['timestamp'].iloc[row])!r} after {_py(prev)!r} "
                f"({int(back.sum())} such row(s) in all); pass sort=True to sort the rows by "
                "timestamp"
            )

    dup = out.duplicated(["user", "item", "timestamp"], keep="first").to_numpy()
    if dup.any():
        n = int(dup.sum())
        if duplicates == "error":
            first = out.loc[dup, ["user", "item", "timestamp"]].head(_SHOW)
            shown = "; ".join(
                f"row {r}: user={_py(row.user)!r}, item={_py(row.item)!r}, "
                f"timestamp={_py(row.timestamp)!r}"
                for r, row in zip(first.index, first.itertuples(index=False), strict=True)
            )
            raise LogError(
                f"{where}: {n} duplicate row(s) (same user, item and timestamp as an earlier row): "
                f"{shown}; pass duplicates='drop' to drop them (recorded in log.notes)"
            )
        out = out.loc[~dup]
        notes.append(f"dropped {n} duplicate row(s) (same user, item, timestamp), kept the first")

    try:
        out = out.sort_values(["timestamp", "user", "item"], kind="stable")
    except TypeError as e:
        raise LogError(f"{where}: ids of mixed types cannot be ordered ({e})") from None
    out = out.reset_index(drop=True)

    items_df = None
    cats = tuple(str(c) for c in category_columns)
    if items is not None:
        items_df = _table(items, item, "item", sep, out["item"])
        missing = [c for c in cats if c not in items_df.columns]
        if missing:
            raise LogError(
                f"items table: missing category column(s) {missing}; its columns are "
                f"{[str(c) for c in items_df.columns]}"
            )
        for c in cats:
            vals = pd.to_numeric(items_df[c], errors="coerce")
            ok = vals.isin([0, 1]).to_numpy()
            if not ok.all():
                bad = items_df.index[~ok]
                raise LogError(
                    f"items table: category column {c!r} must be multi-hot 0/1; item(s) "
                    f"{_show(bad)} hold {items_df[c].loc[bad[0]]!r}..."
                )
            items_df[c] = vals.astype(np.int8)
    elif cats:
        raise LogError(f"category_columns={list(cats)} given without an items table")
    users_df = None if users is None else _table(users, user, "user", sep, out["user"])
    return InteractionLog(
        interactions=out,
        items=items_df,
        category_columns=cats,
        users=users_df,
        name=log_name,
        notes=tuple(notes),
    )
