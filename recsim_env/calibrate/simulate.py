"""Interaction logs written by the simulator itself, in the shape of a real log.

Why: a calibration is only trustworthy if it recovers the parameters of a world whose truth is known,
and the fidelity of a calibrated simulator is measured by comparing *its* logs with the real one. So
the simulator must be able to produce a log exactly like the ones :func:`recsim_env.calibrate.fit`
reads: users served by a logging policy that resembles a platform's (popularity-proportional over the
retrieved candidates, or uniform), one row per impression with ``click`` 1 / 0.

Ids: a new user id whenever a slot hosts a new simulated user (a returning user keeps its id); item ids
are catalogue slots (a new id when churn replaces the item in a slot), or ``info["item_id"]`` when the
env says which real item a candidate is. Timestamps are each user's own clock: the world clock when the
user arrives, + 1 per step served, + the gap of each return (with returning users the world clock does
not jump while a user is away, the user's clock does), times ``tick_seconds``.

The hidden truth (topics, appeal, quality of items; interest of users at arrival) is exported in the
``items`` / ``users`` frames as ``true_*`` columns for tests; the item topics are also the log's
``category_columns`` (``topic_0`` ...), so a fit with ``topics="categories"`` can use them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from recsim_env.validation import check_choice, check_int, check_real

POLICIES = ("popularity", "uniform")
POPULARITY_FLOOR = 0.01  # every candidate keeps a chance: a log must show unpopular items too


def _make_env(env_or_kwargs: Any, num_users: int) -> Any:
    from recsim_env.vector_env import RecSimVectorEnv

    if isinstance(env_or_kwargs, Mapping):
        return RecSimVectorEnv(num_envs=num_users, **dict(env_or_kwargs))
    env = getattr(env_or_kwargs, "unwrapped", env_or_kwargs)
    if not (hasattr(env, "core") and hasattr(env, "num_envs")):
        raise TypeError(
            "simulate_log needs a vector env of this project (gymnasium.make_vec(...)) or a dict "
            f"of make kwargs, got {type(env_or_kwargs).__name__}"
        )
    return env


def _choose(policy: str, popularity: np.ndarray, u: np.ndarray, num_candidates: int) -> np.ndarray:
    """One candidate per row: popularity-proportional (with a floor) or uniform; vectorised."""
    if policy == "uniform":
        return np.minimum((u * num_candidates).astype(np.int64), num_candidates - 1)
    w = np.maximum(popularity.astype(np.float64), 0.0) + POPULARITY_FLOOR
    cum = np.cumsum(w, axis=1)
    return np.minimum((u[:, None] * cum[:, -1:] >= cum).sum(axis=1), num_candidates - 1)


def simulate_log(
    env_or_kwargs: Any = None,
    *,
    policy: str = "popularity",
    num_users: int = 64,
    steps: int = 200,
    seed: int = 0,
    tick_seconds: float = 1.0,
    name: str = "simulated",
) -> Any:
    """Serve the simulator's users with a logging policy for ``steps`` steps and record the log.

    ``env_or_kwargs``: an env built by this project (its batch is the number of concurrent users) or
    a dict of ``make`` kwargs (a vector env of ``num_users`` slots is built). Returns an
    :class:`~recsim_env.data.InteractionLog` with ``click`` (impressions); use :func:`clicks_only` for
    a positives-only log like ML-100K. Vectorised over the batch: the loop is over steps only.
    """
    from recsim_env.data import InteractionLog

    policy = check_choice("policy", policy, POLICIES)
    num_users = check_int("num_users", num_users, 1)
    steps = check_int("steps", steps, 1)
    tick_seconds = check_real("tick_seconds", tick_seconds, 0.0, lo_open=True)
    env = _make_env({} if env_or_kwargs is None else env_or_kwargs, num_users)
    core = env.core
    cfg, batch, rows = core.cfg, core.batch, np.arange(core.batch)
    rng = np.random.default_rng(seed)
    obs, info = env.reset(seed=seed)
    cat = core.world.catalogue
    m = cfg.num_items
    generation = np.zeros(m, np.int64)  # per slot: how many times churn replaced its item
    births = cat.birth.copy()
    user_id = np.arange(batch, dtype=np.int64)
    next_id = batch
    user_clock = np.full(batch, core.world.clock, np.int64)
    cols: dict[str, list[np.ndarray]] = {k: [] for k in ("user", "item", "t", "click")}
    item_rows: list[tuple[np.ndarray, ...]] = []
    user_rows: list[tuple[Any, ...]] = []
    new_user = np.ones(batch, bool)
    for _ in range(steps):
        if new_user.any():
            new = np.flatnonzero(new_user)
            extra = info["user_id"][new] if "user_id" in info else None
            user_rows.append((user_id[new], core.users.interest[new].copy(), extra))
        popularity = core.layout.popularity(obs)
        action = _choose(policy, popularity, rng.random(batch), cfg.num_candidates)
        slot = core.candidates[rows, action]
        if "item_id" in info:
            item = np.asarray(info["item_id"])[rows, action]
        else:
            item = slot + m * generation[slot]
        item_rows.append(
            (item, cat.topics[slot].copy(), cat.appeal[slot], cat.quality[slot], cat.birth[slot])
        )
        cols["user"].append(user_id.copy())
        cols["item"].append(item)
        cols["t"].append(user_clock.copy())
        obs, _, terminated, truncated, info = env.step(action)
        cols["click"].append(info["clicked"].astype(np.int8))
        user_clock += 1
        done = terminated | truncated
        returned = info.get("returned", np.zeros(batch, bool)).astype(bool)
        user_clock += np.where(returned, info.get("gap", 0), 0)
        new_user = done & ~returned
        n_new = int(new_user.sum())
        user_id[new_user] = np.arange(next_id, next_id + n_new)
        next_id += n_new
        user_clock[new_user] = core.world.clock
        changed = cat.birth != births  # churn replaced these slots' items
        generation[changed] += 1
        births = cat.birth.copy()
    inter = pd.DataFrame(
        {
            "user": np.concatenate(cols["user"]),
            "item": np.concatenate(cols["item"]).astype(np.int64),
            "timestamp": np.concatenate(cols["t"]) * tick_seconds,
            "click": np.concatenate(cols["click"]),
        }
    )
    if float(tick_seconds).is_integer():
        inter["timestamp"] = inter["timestamp"].astype(np.int64)
    inter = inter.sort_values(["timestamp", "user", "item"], kind="stable").reset_index(drop=True)
    items = _items_frame(item_rows, cfg.num_topics)
    users = _users_frame(user_rows, cfg.num_topics)
    topic_cols = tuple(f"topic_{k}" for k in range(cfg.num_topics))
    return InteractionLog(inter, items=items, category_columns=topic_cols, users=users, name=name)


def _items_frame(rows: list[tuple[np.ndarray, ...]], k: int) -> pd.DataFrame:
    ids, topics, appeal, quality, birth = (
        np.concatenate(parts) for parts in zip(*rows, strict=True)
    )
    first = np.unique(ids, return_index=True)[1]
    frame = pd.DataFrame(topics[first], columns=[f"topic_{j}" for j in range(k)], index=ids[first])
    frame["true_appeal"] = appeal[first]
    frame["true_quality"] = quality[first]
    frame["true_birth"] = birth[first]
    frame.index.name = "item"
    return frame


def _users_frame(rows: list[tuple[Any, ...]], k: int) -> pd.DataFrame:
    ids = np.concatenate([r[0] for r in rows])
    interest = np.concatenate([r[1] for r in rows])
    frame = pd.DataFrame(interest, columns=[f"true_interest_{j}" for j in range(k)], index=ids)
    if all(r[2] is not None for r in rows):
        frame["source_user_id"] = np.concatenate([r[2] for r in rows])
    frame.index.name = "user"
    return frame


def clicks_only(log: Any) -> Any:
    """The positives-only view of an impression log (rows with ``click == 1``, no click column):
    what a consumption log such as ML-100K records."""
    from recsim_env.data import InteractionLog

    inter = log.interactions
    if "click" not in inter.columns:
        return log
    kept = inter.loc[inter["click"] == 1].drop(columns="click").reset_index(drop=True)
    return InteractionLog(
        kept,
        items=log.items,
        category_columns=tuple(log.category_columns),
        users=log.users,
        name=f"{log.name}-clicks",
    )
