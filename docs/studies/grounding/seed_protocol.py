"""Reproduce the issue-18 seed numbers on ML-100K and show what the tie order of same-second ratings
does to them.

    RECSIM_DATA_DIR=... python docs/studies/grounding/seed_protocol.py

Protocol (recsim_env.calibrate.fidelity): each user's last floor(20 %) of ratings by time held out,
every item ranked (training items excluded), recall@10 = hits / min(10, |test|), NDCG@10 binary,
AUC per user. ML-100K has many ratings with the same timestamp within a user; which of them fall
into the last 20 % depends on how ties are broken. The issue's seed (popularity 0.119, SVD 0.194)
broke them in the file's row order; the project's InteractionLog is sorted by
(timestamp, user, item), so its split breaks them by item id. Both are printed.
Reads the data from data_home() (never from the repo: GroupLens' terms forbid committing it).
"""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
from scipy.sparse import csr_matrix
from sklearn.decomposition import TruncatedSVD

from recsim_env.calibrate.fidelity import ranking_metrics
from recsim_env.data.fetch import data_home


def split(df: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Per user, the last floor(0.2 n) rows in the frame's order are the test set (n >= 5)."""
    df = df.reset_index(drop=True)
    rank = df.groupby("user").cumcount().to_numpy()
    n = df.groupby("user")["item"].transform("size").to_numpy()
    n_test = np.where(n >= 5, np.floor(0.2 * n).astype(int), 0)
    test = rank >= n - n_test
    return df[~test], df[test]


def main() -> None:
    raw = pd.read_csv(data_home() / "movielens-100k" / "ml-100k.inter", sep="\t")
    raw.columns = ["user", "item", "rating", "timestamp"]
    orders = {
        "file order (seed)": raw.sort_values("timestamp", kind="stable"),
        "(timestamp, user, item) (InteractionLog)": raw.sort_values(
            ["timestamp", "user", "item"], kind="stable"
        ),
    }
    users, items = np.unique(raw["user"]), np.unique(raw["item"])
    for label, df in orders.items():
        t0 = time.perf_counter()
        train, test = split(df)
        tr = (np.searchsorted(users, train["user"]), np.searchsorted(items, train["item"]))
        te = (np.searchsorted(users, test["user"]), np.searchsorted(items, test["item"]))
        pop = np.bincount(tr[1], minlength=items.size).astype(float)
        x = csr_matrix((np.ones(len(tr[0])), tr), shape=(users.size, items.size))
        svd = TruncatedSVD(16, random_state=0).fit(x)
        scores = {
            "popularity": np.broadcast_to(pop, (users.size, items.size)),
            "TruncatedSVD(16)": svd.transform(x) @ svd.components_,
        }
        print(f"ties in {label}: {len(train)} train / {len(test)} test rows")
        for name, s in scores.items():
            m = ranking_metrics(s, tr, te, k=10)
            print(
                f"  {name:18s} recall@10 {m['recall']:.4f}  NDCG@10 {m['ndcg']:.4f}  "
                f"AUC {m['auc']:.4f}  ({m['num_users']} users)"
            )
        print(f"  {time.perf_counter() - t0:.2f} s")


if __name__ == "__main__":
    main()
