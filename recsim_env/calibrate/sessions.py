"""Sessions and returning users from timestamps.

A *session* is a maximal run of one user's interactions whose consecutive timestamps are at most
``gap_seconds`` apart (the usual inactivity-threshold definition; 30 minutes by default, as in most
web-log studies). From the sessions the returning-user model of :mod:`recsim_env.returning` is fitted
as far as a log identifies it:

* session length (interactions per session) → the time budget ``budget_min/max`` (one logged
  interaction = one simulator step);
* return probability = share of a user's sessions followed by another session of the same user,
  counted only on sessions that end at least ``censor`` before the log ends (a later return could not
  be seen); its spread across users → ``return_prob_min/max``;
* the gap between sessions in ticks (the time from a session's last interaction to the next session's
  first, minus the tick the last step itself lasts) → ``gap_mean_min/max``.

Everything is vectorised pandas/numpy (sort, diff, cumsum, groupby): no loop over users.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from recsim_env.validation import check_real

DEFAULT_GAP_SECONDS = 1800.0
SHRINK_SESSIONS = 5.0  # prior strength (in sessions) of the per-user rates' shrinkage


def _frame(log_or_frame: Any) -> pd.DataFrame:
    return getattr(log_or_frame, "interactions", log_or_frame)


def sessionise(log_or_frame: Any, gap_seconds: float = DEFAULT_GAP_SECONDS) -> pd.DataFrame:
    """The interactions sorted by (user, timestamp) with a ``session`` column: a global session id
    (0, 1, ... in user then time order), a new one whenever the user changes or the time since the
    user's previous interaction exceeds ``gap_seconds``."""
    gap_seconds = check_real("gap_seconds", gap_seconds, 0.0)
    df = _frame(log_or_frame)
    df = df.sort_values(["user", "timestamp"], kind="stable").reset_index(drop=True)
    t = df["timestamp"].to_numpy(np.float64)
    user = df["user"].to_numpy()
    start = np.ones(len(df), bool)
    if len(df) > 1:
        start[1:] = (user[1:] != user[:-1]) | (np.diff(t) > gap_seconds)
    df["session"] = np.cumsum(start) - 1
    return df


def session_table(log_or_frame: Any, gap_seconds: float = DEFAULT_GAP_SECONDS) -> pd.DataFrame:
    """One row per session: ``user``, ``start``, ``end`` (timestamps), ``length`` (interactions),
    ``clicks`` (when the log has a click column), and ``next_start`` (the same user's next session,
    NaN for a user's last one)."""
    df = sessionise(log_or_frame, gap_seconds)
    agg: dict[str, Any] = {
        "user": ("user", "first"),
        "start": ("timestamp", "min"),
        "end": ("timestamp", "max"),
        "length": ("timestamp", "size"),
    }
    if "click" in df.columns:
        agg["clicks"] = ("click", "sum")
    table = df.groupby("session", sort=True).agg(**agg)
    same_user = table["user"].to_numpy()[1:] == table["user"].to_numpy()[:-1]
    nxt = np.full(len(table), np.nan)
    nxt[:-1] = np.where(same_user, table["start"].to_numpy(np.float64)[1:], np.nan)
    table["next_start"] = nxt
    return table


def _spread(values: np.ndarray, noise_var: np.ndarray, center: float) -> float:
    """Between-user standard deviation: observed variance minus the mean sampling variance (method of
    moments), 0 when sampling noise explains all of it."""
    if len(values) < 2:
        return 0.0
    excess = float(np.var(values)) - float(np.mean(noise_var))
    return float(np.sqrt(max(excess, 0.0)))


def session_stats(
    log_or_frame: Any,
    *,
    gap_seconds: float = DEFAULT_GAP_SECONDS,
    tick_seconds: float = 1.0,
    censor_seconds: float | None = None,
) -> dict[str, Any]:
    """Session lengths, return probability and gap distribution (in ticks) of a log.

    ``censor_seconds``: sessions ending later than this before the log's end are left out of the
    return estimate (their return may lie beyond the log); default: the 90th percentile of the
    observed gaps. Returns plain numbers and arrays (``lengths``, ``gaps_ticks``) for plots and KS
    distances."""
    tick_seconds = check_real("tick_seconds", tick_seconds, 0.0, lo_open=True)
    table = session_table(log_or_frame, gap_seconds)
    t_end = float(table["end"].max())
    returned = table["next_start"].notna().to_numpy()
    gap_sec = (table["next_start"] - table["end"]).to_numpy(np.float64)
    gaps = np.maximum(gap_sec[returned] / tick_seconds - 1.0, 1.0)  # a step lasts one tick
    if censor_seconds is None:
        censor_seconds = float(np.quantile(gap_sec[returned], 0.9)) if returned.any() else 0.0
    eligible = table["end"].to_numpy(np.float64) <= t_end - censor_seconds
    lengths = table["length"].to_numpy()
    out: dict[str, Any] = {
        "num_sessions": len(table),
        "sessions_per_user": float(len(table) / max(table["user"].nunique(), 1)),
        "lengths": lengths,
        "length_mean": float(lengths.mean()) if len(lengths) else float("nan"),
        "length_quartiles": [float(q) for q in np.quantile(lengths, [0.25, 0.5, 0.75])]
        if len(lengths)
        else [float("nan")] * 3,
        "gaps_ticks": gaps,
        "censor_seconds": float(censor_seconds),
        "eligible_sessions": int(eligible.sum()),
    }
    if eligible.any():
        per_user = (
            pd.DataFrame({"user": table["user"].to_numpy()[eligible], "r": returned[eligible]})
            .groupby("user")["r"]
            .agg(["sum", "size"])
        )
        p = float(per_user["sum"].sum() / per_user["size"].sum())
        n = per_user["size"].to_numpy(np.float64)
        rate = per_user["sum"].to_numpy(np.float64) / n
        out["return_prob"] = p
        out["return_prob_spread"] = _spread(rate, p * (1.0 - p) / n, p)
    else:
        out["return_prob"], out["return_prob_spread"] = float("nan"), 0.0
    if len(gaps):
        g = pd.DataFrame({"user": table["user"].to_numpy()[returned], "g": gaps})
        per_user = g.groupby("user")["g"].agg(["mean", "size"])
        mean = float(gaps.mean())
        within = float(np.var(gaps))
        out["gap_mean"] = mean
        out["gap_median"] = float(np.median(gaps))
        out["gap_mean_spread"] = _spread(
            per_user["mean"].to_numpy(), within / per_user["size"].to_numpy(np.float64), mean
        )
    else:
        out["gap_mean"], out["gap_median"], out["gap_mean_spread"] = float("nan"), float("nan"), 0.0
    return out


def session_params(stats: dict[str, Any]) -> tuple[dict[str, float], dict[str, Any]]:
    """SimConfig fields from :func:`session_stats`, and the report entries saying how.

    Budget: the simulator draws it uniformly in [budget_min, budget_max]; a uniform's interquartile
    range is half its width, so [median − IQR, median + IQR] (at least 1). Return probability and gap
    mean: the pooled value ± 2 between-user standard deviations (the simulator spreads both with each
    user's satisfaction; which users are satisfied is not in the log)."""
    params: dict[str, float] = {}
    report: dict[str, Any] = {}
    q1, med, q3 = stats["length_quartiles"]
    if np.isfinite(med):
        iqr = q3 - q1
        params["budget_min"] = float(max(1.0, med - iqr))
        params["budget_max"] = float(max(params["budget_min"], med + iqr))
        report["budget"] = {
            "from": "session lengths (interactions per session)",
            "how": "uniform budget matched by quartiles: [median - IQR, median + IQR], >= 1",
            "estimate": [params["budget_min"], params["budget_max"]],
            "sessions": stats["num_sessions"],
        }
    p, sd = stats["return_prob"], stats["return_prob_spread"]
    if np.isfinite(p):
        params["return_prob_min"] = float(np.clip(p - 2 * sd, 0.0, 1.0))
        params["return_prob_max"] = float(np.clip(p + 2 * sd, params["return_prob_min"], 1.0))
        report["return_prob"] = {
            "from": "share of a user's sessions followed by another session of the same user",
            "how": (
                "pooled over sessions ending at least censor_seconds before the log's end; "
                "min/max = pooled -/+ 2 between-user sd (method of moments)"
            ),
            "estimate": p,
            "between_user_sd": sd,
            "censor_seconds": stats["censor_seconds"],
            "eligible_sessions": stats["eligible_sessions"],
        }
    g, gsd = stats["gap_mean"], stats["gap_mean_spread"]
    if np.isfinite(g):
        params["gap_mean_min"] = float(max(1.0, g - 2 * gsd))
        params["gap_mean_max"] = float(max(params["gap_mean_min"], g + 2 * gsd))
        report["gap_mean"] = {
            "from": "gaps between a user's consecutive sessions, in ticks",
            "how": "mean gap; min/max = mean -/+ 2 between-user sd of users' mean gaps, >= 1",
            "estimate": g,
            "median": stats["gap_median"],
            "between_user_sd": gsd,
        }
    return params, report
