"""The distributions of one interaction log and their distances, for the fidelity report.

:func:`log_profile` reduces a log (real or simulated) to the distributions the report compares (item
popularity, category shares, per-user activity, session lengths, return gaps, per-window category
shares); :func:`distances` measures one profile against another. Why these distances:
:mod:`recsim_env.calibrate.report`, which uses them and re-exports both names.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from recsim_env.calibrate import fidelity as F
from recsim_env.calibrate.baselines import positives

if TYPE_CHECKING:
    from recsim_env.data import InteractionLog

__all__ = ["DISTANCES", "DRIFT", "distances", "log_profile"]

DISTANCES = ("popularity_ks", "gini_gap", "category_tv", "activity_ks", "session_ks", "gap_ks")
DRIFT = "drift_1_minus_r"


def _consumed(log: InteractionLog) -> Any:
    return positives(log)


def _category_weights(
    log: InteractionLog, item_ids: np.ndarray, real: InteractionLog, real_items: bool
) -> np.ndarray | None:
    """Category weights of consumed items: the real log's categories when the items are real ones
    (real logs, the calibrated env), else the log's own category columns when they are as many
    (the default env: its topic k stands for category k); ``None`` when neither applies."""
    from recsim_env.calibrate.baselines import item_topics_from_categories

    cats = tuple(real.category_columns)
    if real_items:
        if real.items is None or not cats:
            return None
        return item_topics_from_categories(real, item_ids)[0]
    own = tuple(log.category_columns)
    if log.items is not None and own and (not cats or len(own) == len(cats)):
        return item_topics_from_categories(log, item_ids)[0]
    return None


def log_profile(
    log: InteractionLog,
    real: InteractionLog,
    *,
    num_items: int,
    gap: float,
    tick_seconds: float,
    windows: tuple[float, float, int] | None,
    real_items: bool = True,
    sample: int | None = None,
    rng: np.random.Generator | None = None,
) -> dict[str, Any]:
    """The distributions of one log that the distances compare (arrays, for plots and KS).

    ``gap`` / ``tick_seconds``: in the log's own time unit (seconds for a real log, ticks for a
    simulated one, where ``tick_seconds`` is 1); ``windows``: ``(start, width, count)`` of the drift
    windows in that unit (calendar-aligned: interactions outside are left out), ``None``: no drift
    trajectory; ``real_items``: the log's item ids are the real log's (their categories are the
    real ones); ``sample``: the item-popularity curve is drawn from this many consumptions, sampled
    without replacement (a rank-frequency curve depends on the sample size: with more
    interactions fewer items stay at zero, so curves are compared at the held-out log's size)."""
    pos = _consumed(log)
    item_col = pos["item"].to_numpy()
    if sample is not None and len(item_col) > sample:
        rng = rng if rng is not None else np.random.default_rng(0)
        item_col = item_col[rng.choice(len(item_col), size=sample, replace=False)]
    _, counts = np.unique(item_col, return_counts=True)
    full = np.zeros(max(num_items, counts.size))
    full[: counts.size] = counts
    _, per_user = np.unique(pos["user"].to_numpy(), return_counts=True)
    rows = log.interactions  # sessions: every step (impression) of a simulated log
    lengths, gaps = F.sessions(rows["user"].to_numpy(), rows["timestamp"].to_numpy(), gap)
    gaps_ticks = np.maximum(gaps / tick_seconds - 1.0, 1.0)
    prof: dict[str, Any] = {
        "item_counts": full,
        "activity": per_user / per_user.mean() if per_user.size else per_user,
        "session_lengths": lengths,
        "gaps_ticks": gaps_ticks,
        "num_consumed": len(pos),
        "num_users": int(per_user.size),
    }
    w = _category_weights(log, pos["item"].to_numpy(), real, real_items) if len(pos) else None
    if w is not None:
        prof["shares"] = F.shares(w)
        if windows is not None:
            start, width, count = windows
            t = pos["timestamp"].to_numpy(np.float64)
            prof["window_shares"] = F.window_shares(
                t, w, count, (start, start + width * count), outside="drop"
            )
    return prof


def distances(real: dict[str, Any], other: dict[str, Any]) -> dict[str, float]:
    """Every distributional distance of ``other`` from ``real`` (profiles of :func:`log_profile`)."""
    nan = float("nan")
    d = {
        "popularity_ks": F.popularity_ks(real["item_counts"], other["item_counts"]),
        "gini_gap": abs(F.gini(real["item_counts"]) - F.gini(other["item_counts"])),
        "category_tv": F.total_variation(real["shares"], other["shares"])
        if "shares" in real and "shares" in other and real["shares"].size == other["shares"].size
        else nan,
        "activity_ks": F.ks_distance(real["activity"], other["activity"]),
        "session_ks": F.ks_distance(real["session_lengths"], other["session_lengths"]),
        "gap_ks": F.ks_distance(real["gaps_ticks"], other["gaps_ticks"]),
    }
    r = nan
    ws_real, ws_other = real.get("window_shares"), other.get("window_shares")
    if ws_real is not None and ws_other is not None and ws_real.shape == ws_other.shape:
        r = F.trajectory_correlation(ws_real, ws_other)
    d["drift_r"] = r
    d[DRIFT] = 1.0 - r
    d["gini_real"] = F.gini(real["item_counts"])
    d["gini_other"] = F.gini(other["item_counts"])
    return {key: float(v) for key, v in d.items()}
