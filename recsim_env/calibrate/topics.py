"""The catalogue's topics for a fit: factorised from the log (NMF, with the number of topics chosen
by parallel analysis) or read from the log's item categories.

Used by :func:`recsim_env.calibrate.fit.fit`, which re-exports these names.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from recsim_env.validation import check_int, fail

__all__ = ["category_topics", "interaction_matrix", "nmf_topics", "topic_count"]


def interaction_matrix(users: np.ndarray, items: np.ndarray, shape: tuple[int, int]) -> Any:
    """Binary user × item CSR matrix of the positives (a repeated pair counts once)."""
    from scipy import sparse

    mat = sparse.csr_matrix((np.ones(len(users)), (users, items)), shape=shape)
    mat.data[:] = 1.0
    return mat


def nmf_topics(
    matrix: Any, num_topics: int, seed: int = 0
) -> tuple[np.ndarray, np.ndarray, float, int]:
    """Item topic vectors (rows sum to 1) from scikit-learn's NMF of the user × item matrix, the user
    factors, the relative reconstruction error ‖A − WH‖ / ‖A‖ and the iterations used (of 400)."""
    import warnings

    from sklearn.decomposition import NMF
    from sklearn.exceptions import ConvergenceWarning

    model = NMF(n_components=num_topics, init="nndsvda", random_state=seed, max_iter=400, tol=1e-4)
    with warnings.catch_warnings():  # 400 iterations: the topics no longer move (ML-100K); said in
        warnings.simplefilter("ignore", ConvergenceWarning)  # the report through n_iter_
        w = model.fit_transform(matrix)
    h = model.components_.T  # (M, K)
    total = h.sum(axis=1, keepdims=True)
    topics = np.where(total > 0, h / np.where(total > 0, total, 1.0), 1.0 / num_topics)
    norm = float(np.sqrt(matrix.multiply(matrix).sum()))
    return topics, w, float(model.reconstruction_err_ / max(norm, 1e-12)), int(model.n_iter_)


def _binary(users: np.ndarray, items: np.ndarray, shape: tuple[int, int]) -> Any:
    return interaction_matrix(users, items, shape)


def topic_count(log: Any, *, max_topics: int = 20, draws: int = 3, seed: int = 0) -> dict[str, Any]:
    """How many topics the log's choices support: Horn's parallel analysis of the binary user × item
    matrix of positives.

    The singular values of the real matrix are compared with those of null matrices that keep every
    user's number of choices and draw the items by their popularity (no taste structure left). The
    first singular value is the shared popularity direction in both; every later real one above the
    null's largest (over ``draws``) is a taste dimension. Because topic vectors sum to 1, ``K`` topics
    give the mean direction + ``K − 1`` contrasts, so ``K`` = 1 + the number of leading singular
    values (after the first) above the null. Why not an NMF error elbow: with short histories the
    error curve of a sparse 0/1 matrix falls almost linearly in ``k`` (noise fitting), with no elbow."""
    from scipy.sparse.linalg import svds

    max_topics = check_int("max_topics", max_topics, 2)
    draws = check_int("draws", draws, 1)
    df = _positives(log.interactions)
    u, _ = pd.factorize(df["user"], sort=True)
    i, _ = pd.factorize(df["item"], sort=True)
    shape = (int(u.max()) + 1, int(i.max()) + 1)
    kmax = min(max_topics, min(shape) - 1)
    if kmax < 2:
        return {"num_topics": 1, "singular_values": [], "null_singular_values": []}

    def top(mat: Any) -> np.ndarray:
        v0 = np.ones(min(mat.shape))  # deterministic start vector (ARPACK's default is random)
        return np.sort(svds(mat.astype(np.float64), k=kmax, v0=v0)[1])[::-1]

    real = top(_binary(u, i, shape))
    rng = np.random.default_rng(seed)
    pop = np.bincount(i, minlength=shape[1]) / len(i)
    null = np.max(
        [top(_binary(u, rng.choice(shape[1], size=len(i), p=pop), shape)) for _ in range(draws)],
        axis=0,
    )
    above = real[1:] > null[1:]
    extra = int(np.argmin(above)) if not above.all() else len(above)
    return {
        "num_topics": 1 + extra,
        "singular_values": real.tolist(),
        "null_singular_values": null.tolist(),
    }


def category_topics(log: Any, item_ids: np.ndarray) -> np.ndarray:
    """Item topic vectors from the log's category columns (multi-hot or weights), rows summing to 1;
    an item without any category gets the uniform vector."""
    cols = list(log.category_columns)
    if log.items is None or not cols:
        fail("topics", "categories", "'factorised' for a log without items/category_columns")
    table = log.items.reindex(item_ids)[cols].fillna(0.0).to_numpy(np.float64)
    table = np.maximum(table, 0.0)
    total = table.sum(axis=1, keepdims=True)
    return np.where(total > 0, table / np.where(total > 0, total, 1.0), 1.0 / len(cols))


def _positives(df: pd.DataFrame) -> pd.DataFrame:
    return df.loc[df["click"] == 1] if "click" in df.columns else df
