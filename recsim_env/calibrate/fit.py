"""Fit the simulator (catalogue, users, choice weights, sessions, drift) to an interaction log.

The simulator's choice score is ``s = β·(u·x) + α·a − κ·(φ·x) − s0`` with item topics ``x`` on the
simplex (rows sum to 1), interests ``u ∈ [-1, 1]^K`` and appeal ``a`` of unit spread. The fit
estimates, by penalised maximum likelihood, the *utilities* the log identifies:

* per user a topic-utility vector ``w_u`` (the simulator's ``β·u_u − s0``: because ``Σ x = 1`` an
  intercept is a constant added to every ``w_u``), shrunk towards a population mean ``m`` with a
  Gaussian prior of standard deviation ``prior_sd`` (the simulator's users are ``μ + noise`` too);
* per item an effect ``e_i`` (the simulator's ``α·a_i``), shrunk towards 0 with the same prior, so that
  what topics explain goes to the users and only the item's own pull to its appeal.

With impressions (a ``click`` column) the likelihood is the logistic one of every shown item; with
positives only it is the conditional logit of each chosen item against ``negatives`` items drawn
uniformly from the catalogue (McFadden's sampling of alternatives: consistent for the slopes, while
anything common to all alternatives — the intercept ``s0``, a user's overall level — cancels).

``β``, ``α`` and ``s0`` then follow from *scale conventions*, because utilities only identify the
products ``β·u`` and ``α·a``: ``α`` = the standard deviation of the item effects (the simulator's
appeal has unit variance); ``β`` and ``s0`` map the central ``1 − 2q`` of all users' ``w`` entries onto
``[-1, 1]`` (the simulator's interests fill that box and are clipped at its ends), i.e. ``β`` = half the
spread between the ``q`` and ``1 − q`` quantiles and ``−s0`` their midpoint (impressions only; with
positives only ``s0`` is not identified and keeps its default).

Where the parts live: the catalogue's topics in :mod:`recsim_env.calibrate.topics`, the choice
model's maximum likelihood in :mod:`recsim_env.calibrate.choice_model` (both re-exported here); this
module puts them together (:func:`fit`).
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import pandas as pd

from recsim_env.calibrate import sessions as sess
from recsim_env.calibrate.choice_model import choice_mle, fit_utilities
from recsim_env.calibrate.topics import (
    category_topics,
    interaction_matrix,
    nmf_topics,
    topic_count,
)
from recsim_env.config import SimConfig
from recsim_env.validation import check_choice, check_int, check_real, fail

__all__ = [
    "TOPICS",
    "category_topics",
    "choice_mle",
    "fit",
    "fit_utilities",
    "interaction_matrix",
    "nmf_topics",
    "topic_count",
]

TOPICS = ("factorised", "categories")
APPEAL_CLIP = 3.0
RATING_PRIOR = 10.0  # shrinkage of an item's mean rating towards the global mean, in ratings
DEFAULTS = SimConfig()


# ------------------------------------------------------------------------------------- fit
def _window_seconds(window: Any) -> float:
    if isinstance(window, str):
        try:
            seconds = pd.Timedelta(window).total_seconds()
        except ValueError:
            fail("window", window, "a pandas Timedelta string such as '7D' or seconds > 0")
    else:
        seconds = check_real("window", window, 0.0, lo_open=True)
    if not seconds > 0:
        fail("window", window, "a positive duration")
    return float(seconds)


def _json(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json(v) for v in value]
    if isinstance(value, np.ndarray):
        return [_json(v) for v in value.tolist()]
    if isinstance(value, np.generic):
        return value.item()
    return value


def _ids(values: pd.Index) -> np.ndarray:
    arr = np.asarray(values)
    if arr.dtype.kind in "iu":
        return arr.astype(np.int64)
    return arr.astype(str)


def fit(
    log: Any,
    *,
    num_topics: int | str = 16,
    topics: str = "factorised",
    seed: int = 0,
    window: Any = "7D",
    window_ticks: int = 1000,
    session_gap: float = sess.DEFAULT_GAP_SECONDS,
    negatives: int = 32,
    prior_sd: float = 2.0,
    interest_quantile: float = 0.02,
    name: str | None = None,
) -> Any:
    """Fit a :class:`~recsim_env.grounding.Calibration` to an :class:`InteractionLog`.

    ``topics``: ``"factorised"`` (NMF of the user × item matrix of positives, ``num_topics``) or
    ``"categories"`` (the log's category columns; ``num_topics`` is then their number);
    ``num_topics="auto"``: chosen by :func:`topic_count`. Time: the
    simulator's clock runs ``window_ticks`` ticks per ``window`` of log time (one tick =
    ``window / window_ticks`` seconds), clock 0 = the log's first timestamp. ``session_gap``: seconds
    of inactivity that end a session. See the module docstring for the choice model's conventions and
    ``Calibration.report`` for what was fitted from what."""
    from recsim_env.grounding import Calibration

    started = time.perf_counter()
    topics = check_choice("topics", topics, TOPICS)
    count = None
    if num_topics == "auto":
        count = topic_count(log, seed=seed)
        num_topics = count["num_topics"]
    num_topics = check_int("num_topics", num_topics, 1)
    window_ticks = check_int("window_ticks", window_ticks, 1)
    negatives = check_int("negatives", negatives, 1)
    prior_sd = check_real("prior_sd", prior_sd, 0.0, lo_open=True)
    interest_quantile = check_real("interest_quantile", interest_quantile, 0.0, 0.5, hi_open=True)
    session_gap = check_real("session_gap", session_gap, 0.0)
    window_seconds = _window_seconds(window)
    tick_seconds = window_seconds / window_ticks
    df = log.interactions
    if len(df) == 0:
        fail("log", f"<{len(df)} interactions>", "a log with at least one interaction")
    impressions = "click" in df.columns
    uidx, user_index = pd.factorize(df["user"], sort=True)
    iidx, item_index = pd.factorize(df["item"], sort=True)
    n, mi = len(user_index), len(item_index)
    pos = df["click"].to_numpy() == 1 if impressions else np.ones(len(df), bool)
    if not pos.any():
        fail("log", "<no clicks>", "a log with at least one chosen item (click == 1)")
    report: dict[str, Any] = {"log": {"name": getattr(log, "name", "log"), "rows": len(df)}}
    not_identified: dict[str, Any] = {}

    # --- catalogue: topics
    if topics == "factorised":
        mat = interaction_matrix(uidx[pos], iidx[pos], (n, mi))
        x, _, err, nmf_iter = nmf_topics(mat, num_topics, seed)
        report["item_topics"] = {
            "from": "binary user x item matrix of the positives",
            "how": f"scikit-learn NMF (K={num_topics}, nndsvda, seed {seed}); columns of H "
            "normalised to sum 1",
            "estimate": {
                "num_topics": num_topics,
                "relative_reconstruction_error": err,
                "nmf_iterations": nmf_iter,
            },
        }
        if count is not None:
            report["num_topics"] = {
                "from": "singular values of the binary user x item matrix of positives",
                "how": "parallel analysis against degree-preserving null matrices (topic_count)",
                "estimate": count,
            }
    else:
        x = category_topics(log, np.asarray(item_index))
        num_topics = x.shape[1]
        report["item_topics"] = {
            "from": f"category columns {list(log.category_columns)}",
            "how": "multi-hot rows normalised to sum 1 (no category: uniform)",
            "estimate": {"num_topics": num_topics},
        }

    # --- choice model: user utilities and item effects by penalised ML
    if impressions:
        util = fit_utilities(uidx, iidx, df["click"].to_numpy(), x, n, prior_sd=prior_sd, seed=seed)
    else:
        util = fit_utilities(
            uidx[pos], iidx[pos], None, x, n, negatives=negatives, prior_sd=prior_sd, seed=seed
        )
    w, e = util["w"], util["e"]
    shown = np.bincount(iidx, minlength=mi)
    chosen = np.bincount(iidx[pos], minlength=mi)
    e_mean = float(e.mean())
    alpha = float(e.std())
    appeal = np.clip((e - e_mean) / max(alpha, 1e-12), -APPEAL_CLIP, APPEAL_CLIP)
    lo, hi = np.quantile(w, [interest_quantile, 1.0 - interest_quantile])
    beta = float(max((hi - lo) / 2.0, 1e-6))
    mid = float((hi + lo) / 2.0)
    interest = np.clip((w - mid) / beta, -1.0, 1.0)
    params: dict[str, Any] = {"interest_weight": beta, "appeal_weight": alpha}
    log_pop = np.log1p(chosen)
    pop_rank = float(pd.Series(appeal).corr(pd.Series(log_pop), method="spearman"))
    how = (
        "logistic likelihood of every impression"
        if impressions
        else f"conditional logit of each choice against {negatives} uniformly sampled items"
    )
    report["choice_model"] = {
        "from": f"{int(pos.sum())} choices"
        + (f" among {len(df)} impressions" if impressions else ""),
        "how": f"penalised ML (block Newton, prior sd {prior_sd}) of user topic utilities w_u ~ "
        f"N(m, prior_sd^2) and item effects e_i ~ N(0, prior_sd^2): {how}",
        "estimate": {
            "iterations": util["iterations"],
            "converged": util["converged"],
            "neg_log_posterior": util["nll"],
            "population_mean_utility": util["m"],
        },
    }
    report["interest_weight"] = {
        "from": "the fitted user utilities w",
        "how": f"scale convention: half the spread between the {interest_quantile:g} and "
        f"{1 - interest_quantile:g} quantiles of all w entries (interests then fill [-1, 1] like "
        "the simulator's, clipped at the ends)",
        "estimate": beta,
    }
    report["appeal_weight"] = {
        "from": "the fitted item effects e",
        "how": "scale convention: standard deviation of e (the simulator's appeal has unit variance)",
        "estimate": alpha,
    }
    if impressions:
        s0 = float(-(mid + e_mean))
        params["click_threshold"] = s0
        report["click_threshold"] = {
            "from": "the level of the fitted utilities (impressions identify it)",
            "how": "-(midpoint of the interest quantiles + mean item effect)",
            "estimate": s0,
        }
    else:
        not_identified["click_threshold"] = {
            "default": DEFAULTS.click_threshold,
            "why": "with positives only, the choices are scored against sampled non-chosen items: "
            "anything common to all alternatives (the intercept s0, a user's overall level) "
            "cancels from the conditional likelihood",
        }
    report["item_appeal"] = {
        "from": "chosen vs " + ("shown" if impressions else "sampled") + " items",
        "how": "item effects e standardised (mean 0, sd 1), clipped to [-3, 3]: popularity "
        "corrected for exposure"
        + (" (click rate, not count)" if impressions else "")
        + " and for what the items' topics already explain",
        "estimate": {
            "spearman_with_log_popularity": pop_rank,
            "mean_shown": float(shown.mean()),
            "mean_chosen": float(chosen.mean()),
        },
    }
    report["user_interest"] = {
        "from": "the fitted user utilities w",
        "how": "u = clip((w - midpoint) / interest_weight, -1, 1)",
        "estimate": {
            "mean": interest.mean(axis=0),
            "share_clipped": float(np.mean(np.abs((w - mid) / beta) > 1.0)),
        },
    }
    noise = float(np.median(util["posterior_sd"]) / beta)
    params["user_noise"] = float(np.clip(noise, 0.0, 1.0))
    report["user_noise"] = {
        "from": "the fitted users' posterior uncertainty",
        "how": "median Laplace posterior sd of w entries / interest_weight: a new simulated user "
        "drawn from a real one varies as much as that user's interest is uncertain",
        "estimate": params["user_noise"],
    }

    # --- quality from ratings
    if "rating" in df.columns:
        r = df["rating"].to_numpy(np.float64)
        rated = np.isfinite(r) & pos
        r_sum = np.bincount(iidx[rated], weights=r[rated], minlength=mi)
        r_n = np.bincount(iidx[rated], minlength=mi)
        overall = float(r[rated].mean())
        shrunk = (r_sum + RATING_PRIOR * overall) / (r_n + RATING_PRIOR)
        sd = float(shrunk.std())
        quality = np.clip((shrunk - shrunk.mean()) / max(sd, 1e-12), -APPEAL_CLIP, APPEAL_CLIP)
        corr = float(np.corrcoef(quality, appeal)[0, 1]) if mi > 2 else 0.0
        params["quality_appeal_corr"] = float(np.clip(np.nan_to_num(corr), -1.0, 1.0))
        report["item_quality"] = {
            "from": "ratings",
            "how": f"mean rating shrunk towards the global mean ({RATING_PRIOR:g} pseudo-ratings), "
            "standardised, clipped to [-3, 3]",
            "estimate": {"global_mean_rating": overall, "rated_items": int((r_n > 0).sum())},
        }
        report["quality_appeal_corr"] = {
            "from": "fitted quality and appeal",
            "how": "Pearson correlation over items",
            "estimate": params["quality_appeal_corr"],
        }
    else:
        quality = np.zeros(mi)
        not_identified["item_quality"] = {
            "default": 0.0,
            "why": "no ratings in the log: the simulator's mean quality (0) for every item",
        }
        not_identified["quality_appeal_corr"] = {
            "default": DEFAULTS.quality_appeal_corr,
            "why": "no ratings: quality is not observed",
        }
    not_identified["item_length"] = {
        "default": 1.0,
        "why": "no durations in the log: every item the simulator's mean length",
    }

    # --- time: births, sessions, drift
    t = df["timestamp"].to_numpy(np.float64)
    t0 = float(t.min())
    first_seen = pd.Series(t).groupby(iidx).min().reindex(range(mi)).to_numpy()
    birth = np.round((first_seen - t0) / tick_seconds).astype(np.int64)
    in_first_window = first_seen < t0 + window_seconds
    birth[in_first_window] = -window_ticks
    report["item_birth"] = {
        "from": "each item's first appearance in the log",
        "how": f"(first timestamp - log start) / tick_seconds ({tick_seconds:g} s per tick); items "
        f"first seen in the first window are the catalogue the log opens on: born "
        f"{window_ticks} ticks before the clock starts (their popularity already formed)",
        "estimate": {
            "present_at_start": int(in_first_window.sum()),
            "born_later": int((~in_first_window).sum()),
        },
    }
    stats = sess.session_stats(df, gap_seconds=session_gap, tick_seconds=tick_seconds)
    sp, sr = sess.session_params(stats)
    params.update(sp)
    report.update(sr)
    span_ticks = int(np.ceil((float(t.max()) - t0) / tick_seconds)) + 1
    params["lifetime_ticks"] = span_ticks
    report["lifetime_ticks"] = {
        "from": "the log's time span",
        "how": "observation window in ticks (a lifetime is capped where the log ends)",
        "estimate": span_ticks,
    }
    report["sessions"] = {
        "from": "timestamps",
        "how": f"per-user inactivity gap > {session_gap:g} s starts a session",
        "estimate": {
            "num_sessions": stats["num_sessions"],
            "sessions_per_user": stats["sessions_per_user"],
            "length_mean": stats["length_mean"],
            "length_quartiles": stats["length_quartiles"],
        },
    }
    win = np.floor((t[pos] - t0) / window_seconds).astype(np.int64)
    num_windows = int(win.max()) + 1
    from scipy import sparse

    counts = sparse.csr_matrix(
        (np.ones(len(win)), (win, uidx[pos])), shape=(num_windows, n)
    )  # choices per window and user
    weight = np.asarray(counts.sum(axis=1))[:, 0]
    traj = np.asarray(counts @ interest) / np.maximum(weight, 1.0)[:, None]
    for j in range(1, num_windows):  # a window nobody was active in keeps the previous mean
        if weight[j] == 0:
            traj[j] = traj[j - 1]
    report["trajectory"] = {
        "from": "choices per time window",
        "how": f"activity-weighted mean of the fitted interests of the users active in each "
        f"{window!s} window ({window_ticks} ticks each)",
        "estimate": {
            "windows": num_windows,
            "max_change_between_windows": float(np.abs(np.diff(traj, axis=0)).max())
            if num_windows > 1
            else 0.0,
        },
    }
    activity = np.bincount(uidx[pos], minlength=n).astype(np.float64)
    report["user_activity"] = {
        "from": "choices per user",
        "how": "share of all choices: a new simulated user is real user j with this probability",
        "estimate": {"users": n, "max_share": float(activity.max() / activity.sum())},
    }

    for field, why in {
        "fatigue_weight": "the fit has no fatigue state (the log would need the full exposure "
        "sequence and fatigue_decay, neither identified)",
        "fatigue_decay": "see fatigue_weight",
        "exposure_fatigue": "see fatigue_weight",
        "interest_lr": "users are fitted as static over the log (one interest per user)",
        "disappointment_quality": "see interest_lr",
        "drift_pull": "the population path is replayed (trajectory); how fast live users follow it "
        "is not separable from who is active",
        "return_sensitivity": "satisfaction is not in the log: the link of return to satisfaction "
        "is not identified, only the spread of return rates and gaps across users",
        "satisfaction_rate": "satisfaction is not in the log",
        "clickbait_penalty": "satisfaction is not in the log",
        "budget_refund": "session lengths are fitted as budgets directly",
        "quality_engagement": "no engagement / watch time in the log",
        "satisfaction_engagement": "no engagement / watch time in the log",
        "max_session_steps": "a cap, not a behaviour",
        "position_bias": "no positions in the log",
    }.items():
        not_identified[field] = {"default": getattr(DEFAULTS, field), "why": why}
    if not impressions:
        not_identified["budget_min/max (scale)"] = {
            "default": "session lengths in choices",
            "why": "with positives only the steps without a click are not logged: budgets are "
            "lengths in choices, a lower bound on steps",
        }
    report["not_identified"] = not_identified
    elapsed = time.perf_counter() - started
    report["fit_seconds"] = elapsed
    report["time"] = {"tick_seconds": tick_seconds, "window_seconds": window_seconds}

    return Calibration(
        name=str(name or getattr(log, "name", "log")),
        item_ids=_ids(item_index),
        item_topics=x.astype(np.float32),
        item_quality=quality.astype(np.float32),
        item_appeal=appeal.astype(np.float32),
        item_length=np.ones(mi, np.float32),
        item_birth=birth,
        user_ids=_ids(user_index),
        user_interest=interest.astype(np.float32),
        user_activity=activity / activity.sum(),
        trajectory=traj.astype(np.float32),
        window_ticks=int(window_ticks),
        params={k: (float(v) if not isinstance(v, int) else v) for k, v in params.items()},
        report=_json(report),
    )
