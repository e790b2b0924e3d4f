"""How far simulated users are from real ones: ranking metrics and distributional distances.

Two families of pure, vectorised numpy functions (scipy for ranks and KS), used by
:mod:`recsim_env.calibrate.report` and testable on their own against scikit-learn / scipy:

**Choice fidelity** (:func:`ranking_metrics`): a scorer's ``(U, I)`` score matrix ranks every item
of the catalogue for each test user (a *full* ranking, not sampled negatives); the user's training
items are excluded from the ranking (they are not candidates: a recommender does not re-recommend
what was consumed), the held-out items are the positives. Metrics per user, averaged over users
with at least one held-out item:

- ``recall@k = hits@k / min(k, |test|)``: the definition that reproduces the issue's seed numbers
  on ML-100K (popularity 0.119, TruncatedSVD(16) 0.194; ``hits / |test|`` gives 0.07 / 0.11, see
  ``RECALL_DEFINITIONS``), and the one whose maximum is 1 whatever the size of the test set;
- ``NDCG@k`` with binary relevance (as ``sklearn.metrics.ndcg_score(..., k)`` on the candidates);
- ``AUC``: P(score of a held-out item > score of a non-consumed item), ties counted ½ (as
  ``sklearn.metrics.roc_auc_score`` on the candidates), computed from average ranks.

Ties in the top-k are broken by item position (the lower column index first), deterministically.

**Distributional fidelity** between a real and a simulated log, each on its own numbers:
item-popularity curve (:func:`popularity_ks` of the rank-frequency curves, :func:`gini` of counts),
category shares (:func:`total_variation`), user activity, session length and return gap
(:func:`ks_distance`, scipy's two-sample KS statistic), and the drift of category shares over time
windows (:func:`trajectory_correlation`). Every distance lies in [0, 1] (0 = identical), except the
drift correlation, whose distance is ``1 − r`` in [0, 2].
"""

from __future__ import annotations

from typing import Any

import numpy as np

RECALL_DEFINITIONS = ("min", "all")  # hits/min(k, |test|)  |  hits/|test|


def _index_pairs(pairs: Any, shape: tuple[int, int], what: str) -> tuple[np.ndarray, np.ndarray]:
    """``(rows, cols)`` int arrays from a pair of index arrays or a boolean ``(U, I)`` mask."""
    if isinstance(pairs, np.ndarray) and pairs.dtype == bool:
        if pairs.shape != shape:
            raise ValueError(f"{what}: a boolean mask of shape {shape}, got {pairs.shape}")
        rows, cols = np.nonzero(pairs)
        return rows, cols
    rows, cols = (np.asarray(a, dtype=np.int64).reshape(-1) for a in pairs)
    if rows.shape != cols.shape:
        raise ValueError(f"{what}: row and column index arrays differ in length")
    if rows.size and (
        rows.min() < 0 or rows.max() >= shape[0] or cols.min() < 0 or cols.max() >= shape[1]
    ):
        raise ValueError(f"{what}: indices outside the score matrix of shape {shape}")
    return rows, cols


def _mask(pairs: tuple[np.ndarray, np.ndarray], shape: tuple[int, int]) -> np.ndarray:
    m = np.zeros(shape, dtype=bool)
    m[pairs] = True
    return m


def ranking_metrics(
    scores: np.ndarray,
    train: Any,
    test: Any,
    *,
    k: int = 10,
    recall: str = "min",
) -> dict[str, Any]:
    """Recall@k, NDCG@k and AUC of ``scores`` ``(U, I)`` at ranking each user's held-out items.

    ``train`` / ``test``: ``(user_rows, item_cols)`` index arrays into ``scores`` (or boolean masks
    of its shape). Training items are removed from the candidates; a test item the user already had
    in training is not a positive (it could not be recommended). Users without a positive are
    skipped. Returns the means (``recall``, ``ndcg``, ``auc``), ``num_users`` evaluated and the
    per-user arrays (``per_user``: for bootstrap CIs over users) with their row indices.
    """
    scores = np.asarray(scores, dtype=np.float64)
    if scores.ndim != 2:
        raise ValueError(f"scores: a (users, items) matrix, got shape {scores.shape}")
    if not np.isfinite(scores).all():
        raise ValueError("scores: every score must be finite (no NaN / inf)")
    if recall not in RECALL_DEFINITIONS:
        raise ValueError(f"recall={recall!r}: one of {RECALL_DEFINITIONS}")
    n_users, n_items = scores.shape
    k = int(k)
    if k < 1:
        raise ValueError(f"k={k}: at least 1")
    seen = _mask(_index_pairs(train, scores.shape, "train"), scores.shape)
    pos = _mask(_index_pairs(test, scores.shape, "test"), scores.shape) & ~seen
    n_pos = pos.sum(axis=1)
    n_cand = n_items - seen.sum(axis=1)
    n_neg = n_cand - n_pos
    rows = np.flatnonzero(n_pos > 0)
    s, seen, pos = scores[rows], seen[rows], pos[rows]
    n_pos, n_neg, n_cand = n_pos[rows], n_neg[rows], n_cand[rows]
    # top-k among candidates: training items sink below every candidate
    masked = np.where(seen, -np.inf, s)
    kk = min(k, n_items)
    order = np.argsort(-masked, axis=1, kind="stable")[:, :kk]  # ties: lower column first
    valid = np.arange(kk)[None, :] < n_cand[:, None]  # fewer candidates than k
    hit = np.take_along_axis(pos, order, axis=1) & valid
    hits = hit.sum(axis=1)
    denom = np.minimum(k, n_pos) if recall == "min" else n_pos
    rec = hits / denom
    disc = 1.0 / np.log2(np.arange(2, kk + 2))
    dcg = (hit * disc).sum(axis=1)
    idcg = np.cumsum(disc)[np.minimum(n_pos, kk) - 1]
    ndcg = dcg / idcg
    # AUC from average ranks among candidates (training items get rank below all of them)
    from scipy.stats import rankdata

    ranks = rankdata(masked, axis=1, method="average")  # -inf (training) ranks first
    n_seen = seen.sum(axis=1)
    pos_rank_sum = np.where(pos, ranks, 0.0).sum(axis=1) - n_seen * n_pos
    with np.errstate(invalid="ignore", divide="ignore"):
        auc = (pos_rank_sum - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg)
    auc = np.where(n_neg > 0, auc, np.nan)  # every candidate is a positive: AUC undefined
    return {
        "k": k,
        "recall_definition": "hits/min(k,|test|)" if recall == "min" else "hits/|test|",
        "num_users": int(rows.size),
        "recall": float(rec.mean()) if rows.size else float("nan"),
        "ndcg": float(ndcg.mean()) if rows.size else float("nan"),
        "auc": float(np.nanmean(auc)) if np.isfinite(auc).any() else float("nan"),
        "per_user": {"rows": rows, "recall": rec, "ndcg": ndcg, "auc": auc},
    }


# ----------------------------------------------------------------------------- distributions
def gini(counts: np.ndarray) -> float:
    """Gini coefficient of non-negative counts (0: all equal; → 1: one item takes everything).

    ``Σ_i (2i − n − 1)·x_(i) / (n·Σx)`` over the ascending order statistics; include the zero
    counts of never-consumed items to measure the whole catalogue."""
    x = np.sort(np.asarray(counts, dtype=np.float64).reshape(-1))
    if x.size == 0 or x.sum() <= 0:
        return float("nan")
    if x[0] < 0:
        raise ValueError("gini: counts must be non-negative")
    n = x.size
    i = np.arange(1, n + 1)
    return float(((2 * i - n - 1) * x).sum() / (n * x.sum()))


def rank_frequency(counts: np.ndarray) -> np.ndarray:
    """The normalised rank-frequency curve: cumulative share of the top-r items, r = 1..M."""
    x = np.sort(np.asarray(counts, dtype=np.float64).reshape(-1))[::-1]
    total = x.sum()
    if total <= 0:
        raise ValueError("rank_frequency: no interactions")
    return np.cumsum(x) / total


def popularity_ks(counts_a: np.ndarray, counts_b: np.ndarray) -> float:
    """KS distance between two item-popularity curves on normalised rank ``x = r / M`` ∈ (0, 1].

    ``C(x)`` = share of interactions taken by the top ``⌈x·M⌉`` items; the distance is
    ``sup_x |C_a(x) − C_b(x)|`` (exact: both are step functions, compared at the union of their
    steps with integer arithmetic). With equal catalogue sizes it is the two-sample KS statistic of
    the interactions' item ranks. Pass zero counts for never-consumed items: the catalogue's size
    is part of the curve."""
    ca, cb = rank_frequency(counts_a), rank_frequency(counts_b)
    ma, mb = ca.size, cb.size
    ra = np.arange(1, ma + 1, dtype=np.int64)
    rb = np.arange(1, mb + 1, dtype=np.int64)
    # at x = r/ma: curve a is at rank r, curve b at rank ceil(r·mb/ma); and symmetrically
    rb_at_a = -((-ra * mb) // ma)
    ra_at_b = -((-rb * ma) // mb)
    d1 = np.abs(ca - cb[rb_at_a - 1]).max()
    d2 = np.abs(ca[ra_at_b - 1] - cb).max()
    return float(max(d1, d2))


def shares(weights: np.ndarray) -> np.ndarray:
    """Category shares of a log: rows are interactions' category weights (e.g. multi-hot genres);
    each row is first normalised to sum 1 (an interaction counts once whatever its genre count),
    rows without a category are ignored."""
    w = np.asarray(weights, dtype=np.float64)
    if w.ndim != 2:
        raise ValueError("shares: an (interactions, categories) matrix")
    if (w < 0).any():
        raise ValueError("shares: category weights must be non-negative")
    tot = w.sum(axis=1, keepdims=True)
    w = np.divide(w, tot, out=np.zeros_like(w), where=tot > 0)
    s = w.sum(axis=0)
    return s / s.sum() if s.sum() > 0 else s


def total_variation(p: np.ndarray, q: np.ndarray) -> float:
    """Total-variation distance ``½ Σ |p − q|`` of two share vectors (each normalised to sum 1)."""
    p = np.asarray(p, dtype=np.float64).reshape(-1)
    q = np.asarray(q, dtype=np.float64).reshape(-1)
    if p.shape != q.shape:
        raise ValueError(f"total_variation: shares of {p.size} and {q.size} categories")
    if (p < 0).any() or (q < 0).any() or p.sum() <= 0 or q.sum() <= 0:
        raise ValueError("total_variation: shares must be non-negative with a positive sum")
    return float(0.5 * np.abs(p / p.sum() - q / q.sum()).sum())


def ks_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Two-sample KS statistic (``scipy.stats.ks_2samp``) of two samples, e.g. per-user counts."""
    from scipy.stats import ks_2samp

    a = np.asarray(a, dtype=np.float64).reshape(-1)
    b = np.asarray(b, dtype=np.float64).reshape(-1)
    if a.size == 0 or b.size == 0:
        return float("nan")
    return float(ks_2samp(a, b).statistic)


def sessions(
    users: np.ndarray, timestamps: np.ndarray, gap: float
) -> tuple[np.ndarray, np.ndarray]:
    """Session lengths (interactions per session) and return gaps (time between one session's
    last interaction and the same user's next session's first) of a log, sessionised as the fit
    does it (:func:`recsim_env.calibrate.sessions.session_table`: a new session when a user's
    previous interaction is more than ``gap`` ago)."""
    import pandas as pd

    from recsim_env.calibrate.sessions import session_table

    frame = pd.DataFrame(
        {
            "user": np.asarray(users).reshape(-1),
            "timestamp": np.asarray(timestamps, dtype=np.float64).reshape(-1),
        }
    )
    table = session_table(frame, gap)
    gaps = (table["next_start"] - table["end"]).dropna()
    return table["length"].to_numpy(np.int64), gaps.to_numpy(np.float64)


def window_shares(
    timestamps: np.ndarray,
    weights: np.ndarray,
    num_windows: int,
    span: tuple[float, float],
    *,
    outside: str = "clip",
) -> np.ndarray:
    """``(T, G)`` category shares of interactions in ``T`` equal-width time windows of ``span``
    (a window without interactions is all-NaN). Interactions outside ``span`` go to the first /
    last window (``outside="clip"``) or are left out (``"drop"``: windows aligned to a calendar)."""
    t = np.asarray(timestamps, dtype=np.float64).reshape(-1)
    lo, hi = span
    width = (hi - lo) / num_windows if hi > lo else 1.0
    raw = np.floor((t - lo) / width)
    keep = np.ones(t.size, bool) if outside == "clip" else (raw >= 0) & (raw < num_windows)
    win = np.clip(raw[keep], 0, num_windows - 1).astype(np.int64)
    w = np.asarray(weights, dtype=np.float64)[keep]
    tot = w.sum(axis=1, keepdims=True)
    w = np.divide(w, tot, out=np.zeros_like(w), where=tot > 0)
    out = np.zeros((num_windows, w.shape[1]))
    np.add.at(out, win, w)
    s = out.sum(axis=1, keepdims=True)
    return np.divide(out, s, out=np.full_like(out, np.nan), where=s > 0)


def trajectory_correlation(real: np.ndarray, sim: np.ndarray) -> float:
    """Pearson correlation of two ``(T, G)`` share trajectories' *changes*: each category's mean
    over windows is removed first, so the static shares (scored by :func:`total_variation`) do not
    inflate it and only the drift is compared. Windows that are NaN in either are dropped; NaN when
    fewer than two windows remain or either trajectory is constant."""
    a = np.asarray(real, dtype=np.float64)
    b = np.asarray(sim, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f"trajectory_correlation: shapes {a.shape} and {b.shape}")
    ok = np.isfinite(a).all(axis=1) & np.isfinite(b).all(axis=1)
    if ok.sum() < 2:
        return float("nan")
    a, b = a[ok] - a[ok].mean(axis=0), b[ok] - b[ok].mean(axis=0)
    a, b = a.reshape(-1), b.reshape(-1)
    na, nb = np.sqrt((a * a).sum()), np.sqrt((b * b).sum())
    if na == 0 or nb == 0:
        return float("nan")
    return float((a * b).sum() / (na * nb))
