"""Scorers of held-out real choices, one interface: ``fit(train_log) → scores(users, items)``.

The choice-fidelity question is "does the simulator's user model rank what real users chose next
as well as a recommender fitted on the same data would?". Four scorers answer it side by side:

- :class:`PopularityScorer` — training interaction counts (the same for every user): the floor any
  personalised model must beat;
- :class:`SVDScorer` — ``sklearn.decomposition.TruncatedSVD`` (k = 16, fixed seed) of the binary
  user × item training matrix, scores = the rank-k reconstruction: the matrix-factorisation model;
- :class:`CalibratedScorer` — the fitted simulator's own choice utility
  ``interest_weight·(u·x) + appeal_weight·a`` from a :class:`~recsim_env.grounding.Calibration`
  (the fatigue term is session state, zero for a fresh user; the click threshold is a constant
  shift and does not change a ranking). Users it does not know get the activity-weighted mean
  interest; items it does not know (first seen after the training period) rank last;
- :class:`DefaultSimScorer` — the *uncalibrated* default simulator mapped onto the same items,
  knowing nothing it would not know: the default ``SimConfig`` weights (β = 4, α = 1); item topic
  vectors = the log's categories (each item's multi-hot genres normalised to sum 1, so topic k is
  category k; without categories, Dirichlet(topic_concentration) draws as the default catalogue
  makes); item appeal drawn as the default catalogue draws it (correlated normal, clipped), since
  a log carries no appeal; each user's interest drawn as the default env draws a new user —
  population mean (``drift.random_profile``, the default start) + ``user_noise``·N(0, 1), clipped
  to [-1, 1] — independent of that user's history. It is the floor of an honest comparison: the
  simulator as shipped, told only the catalogue's genres.

Scores are dense ``(len(users), len(items))`` float64 arrays, ids as in the log. Training
positives are all rows of a log without a ``click`` column, else the rows with ``click == 1``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

if TYPE_CHECKING:
    import pandas as pd

    from recsim_env.data import InteractionLog
    from recsim_env.grounding import Calibration

UNKNOWN_ITEM_SCORE = -1e9  # items a model has never seen: below every real score, tied among them


class Scorer(Protocol):
    name: str

    def fit(self, train: InteractionLog) -> Scorer: ...

    def scores(self, users: np.ndarray, items: np.ndarray) -> np.ndarray: ...


def positives(log: InteractionLog) -> pd.DataFrame:
    """The rows of ``log`` that are choices (every row, or ``click == 1`` for impression logs)."""
    df = log.interactions
    if "click" in df.columns:
        df = df[df["click"].to_numpy() == 1]
    return df


def _lookup(known: np.ndarray, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Positions of ``ids`` in the sorted unique array ``known`` and a mask of those present."""
    ids = np.asarray(ids)
    if known.size == 0:
        return np.zeros(ids.shape, np.int64), np.zeros(ids.shape, bool)
    pos = np.clip(np.searchsorted(known, ids), 0, known.size - 1)
    return pos, known[pos] == ids


def item_topics_from_categories(
    log: InteractionLog, items: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """``(len(items), G)`` topic vectors from the log's multi-hot category columns (rows summing
    to 1; an item without a category, or unknown to ``log.items``, gets the uniform row) and the
    mask of items that had a category."""
    cols = list(log.category_columns)
    if log.items is None or not cols:
        raise ValueError("the log has no item categories (items table / category_columns)")
    table = log.items[cols].astype(np.float64)
    known = np.asarray(table.index)
    order = np.argsort(known, kind="stable")
    pos, ok = _lookup(known[order], items)
    w = np.where(ok[:, None], table.to_numpy()[order][pos], 0.0)
    tot = w.sum(axis=1, keepdims=True)
    has = tot[:, 0] > 0
    x = np.where(has[:, None], w / np.where(tot > 0, tot, 1.0), 1.0 / len(cols))
    return x, has


class PopularityScorer:
    """Training counts per item: every user gets the same ranking."""

    name = "popularity"

    def fit(self, train: InteractionLog) -> PopularityScorer:
        items, counts = np.unique(positives(train)["item"].to_numpy(), return_counts=True)
        self.items_, self.counts_ = items, counts.astype(np.float64)
        return self

    def scores(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        pos, ok = _lookup(self.items_, items)
        row = np.where(ok, self.counts_[pos], 0.0)
        return np.broadcast_to(row, (len(users), len(row))).copy()


class SVDScorer:
    """Rank-k reconstruction of the binary user × item training matrix (TruncatedSVD)."""

    name = "svd"

    def __init__(self, k: int = 16, seed: int = 0) -> None:
        self.k, self.seed = int(k), int(seed)

    def fit(self, train: InteractionLog) -> SVDScorer:
        from scipy.sparse import csr_matrix
        from sklearn.decomposition import TruncatedSVD

        df = positives(train)
        self.users_, u = np.unique(df["user"].to_numpy(), return_inverse=True)
        self.items_, i = np.unique(df["item"].to_numpy(), return_inverse=True)
        x = csr_matrix(
            (np.ones(len(u)), (u, i)), shape=(len(self.users_), len(self.items_))
        ).astype(np.float64)
        x.data[:] = 1.0  # repeated (user, item) pairs: binary
        k = max(1, min(self.k, min(x.shape) - 1))
        svd = TruncatedSVD(n_components=k, random_state=self.seed).fit(x)
        self.user_factors_ = svd.transform(x)  # U Σ
        self.item_factors_ = svd.components_.T  # V
        return self

    def scores(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        up, uok = _lookup(self.users_, users)
        ip, iok = _lookup(self.items_, items)
        uf = np.where(uok[:, None], self.user_factors_[up], 0.0)
        vf = np.where(iok[:, None], self.item_factors_[ip], 0.0)
        return uf @ vf.T


class CalibratedScorer:
    """The fitted simulator's choice utility ``β·(u·x) + α·a`` for the users and items it knows."""

    name = "calibrated"

    def __init__(self, calibration: Calibration) -> None:
        self.cal = calibration

    def fit(self, train: InteractionLog) -> CalibratedScorer:
        """Nothing to fit: the calibration was fitted on the training log (see ``report.validate``)."""
        from recsim_env.config import SimConfig

        cal, defaults = self.cal, SimConfig()
        self.beta = float(cal.params.get("interest_weight", defaults.interest_weight))
        self.alpha = float(cal.params.get("appeal_weight", defaults.appeal_weight))
        self._uorder = np.argsort(cal.user_ids, kind="stable")
        self._iorder = np.argsort(cal.item_ids, kind="stable")
        act = np.asarray(cal.user_activity, np.float64)
        w = act / act.sum() if act.sum() > 0 else np.full(act.size, 1.0 / max(act.size, 1))
        self._mean_interest = w @ np.asarray(cal.user_interest, np.float64)
        return self

    def scores(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        cal = self.cal
        up, uok = _lookup(np.asarray(cal.user_ids)[self._uorder], users)
        ip, iok = _lookup(np.asarray(cal.item_ids)[self._iorder], items)
        u = np.asarray(cal.user_interest, np.float64)[self._uorder][up]
        u = np.where(uok[:, None], u, self._mean_interest)
        x = np.asarray(cal.item_topics, np.float64)[self._iorder][ip]
        a = np.asarray(cal.item_appeal, np.float64)[self._iorder][ip]
        s = self.beta * (u @ x.T) + self.alpha * a[None, :]
        return np.where(iok[None, :], s, UNKNOWN_ITEM_SCORE)


class DefaultSimScorer:
    """The uncalibrated default simulator's user model on the log's items (see the module doc)."""

    name = "default_sim"

    def __init__(self, seed: int = 0, **config: Any) -> None:
        from recsim_env.config import SimConfig

        self.seed = int(seed)
        self.cfg = SimConfig(**config)

    def fit(self, train: InteractionLog) -> DefaultSimScorer:
        from recsim_env.catalogue import QA_CLIP
        from recsim_env.drift import random_profile

        rng = np.random.default_rng(self.seed)
        cfg = self.cfg
        self.items_ = np.unique(
            np.concatenate(
                [train.interactions["item"].to_numpy()]
                + ([np.asarray(train.items.index)] if train.items is not None else [])
            )
        )
        if train.items is not None and train.category_columns:
            self.topics_, _ = item_topics_from_categories(train, self.items_)
            self.topic_source = "categories"
        else:
            self.topics_ = rng.dirichlet(
                np.full(cfg.num_topics, cfg.topic_concentration), len(self.items_)
            )
            self.topic_source = "dirichlet"
        rho = cfg.quality_appeal_corr
        z = rng.standard_normal((len(self.items_), 2))
        self.appeal_ = np.clip(rho * z[:, 0] + np.sqrt(1 - rho * rho) * z[:, 1], -QA_CLIP, QA_CLIP)
        self.mean_ = random_profile(rng, self.topics_.shape[1], 0.8).astype(np.float64)
        from recsim_env import rng as crng

        self._user_key = crng.derive_key(self.seed, 0x5EED)
        return self

    def _interest(self, users: np.ndarray) -> np.ndarray:
        """One default new user per real user id: a pure function of (seed, id), so a user's draw
        never depends on which other users are scored; the history is not used."""
        from recsim_env import rng as crng

        noise = crng.normals(self._user_key, _id_keys(users), 0, self.topics_.shape[1])
        return np.clip(self.mean_ + self.cfg.user_noise * noise, -1.0, 1.0)

    def scores(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        ip, iok = _lookup(self.items_, items)
        s = (
            self.cfg.interest_weight * (self._interest(users) @ self.topics_[ip].T)
            + self.cfg.appeal_weight * self.appeal_[ip][None, :]
        )
        return np.where(iok[None, :], s, UNKNOWN_ITEM_SCORE)


def _id_keys(ids: np.ndarray) -> np.ndarray:
    """Stable uint64 keys of ids: integers as they are, other ids (strings) hashed by pandas."""
    ids = np.asarray(ids)
    if ids.dtype.kind in "iu":
        return ids.astype(np.uint64)
    import pandas as pd

    return pd.util.hash_array(ids.astype(object))


SCORERS = ("popularity", "svd", "calibrated", "default_sim")


def make_scorers(calibration: Calibration, *, seed: int = 0, svd_k: int = 16) -> list[Scorer]:
    """The four scorers of the choice-fidelity table, in the report's order."""
    return [
        PopularityScorer(),
        SVDScorer(k=svd_k, seed=seed),
        CalibratedScorer(calibration),
        DefaultSimScorer(seed=seed),
    ]
