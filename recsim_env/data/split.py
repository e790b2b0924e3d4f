"""Held-out time: each user's last interactions become the test set.

Fidelity is measured on the future of the same users (fit on each user's first 80 % by time, test on
the last 20 %), because a random split leaks the future into the fit and flatters every model that
memorises popularity trends. The split is a pure function of the log: no seed, no randomness.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from recsim_env.data.log import InteractionLog, LogError


def temporal_split(
    log: InteractionLog, test_frac: float = 0.2, min_interactions: int = 5
) -> tuple[InteractionLog, InteractionLog]:
    """Split ``log`` into (train, test) by time, per user.

    A user with ``n >= min_interactions`` interactions puts their last
    ``max(1, floor(n * test_frac))`` interactions (at most ``n - 1``) into test, in the log's
    canonical order: by timestamp, ties broken by row order, so the split is deterministic and every
    test event of a user is at or after each of that user's train events. Users with fewer
    interactions stay entirely in train (too little history to both fit and test). Both halves keep
    the log's ``items``/``users`` tables and category columns; their names get ``/train`` and
    ``/test``. Vectorised (no per-user Python loop).
    """
    if not isinstance(log, InteractionLog):
        raise LogError(f"invalid log={type(log).__name__} (allowed: an InteractionLog)")
    frac_ok = isinstance(test_frac, int | float) and not isinstance(test_frac, bool)
    if not (frac_ok and 0.0 < float(test_frac) < 1.0):
        raise LogError(f"invalid test_frac={test_frac!r} (allowed: a number in (0, 1))")
    if not (
        isinstance(min_interactions, int | np.integer)
        and not isinstance(min_interactions, bool)
        and min_interactions >= 2
    ):
        raise LogError(
            f"invalid min_interactions={min_interactions!r} (allowed: an integer >= 2; a user "
            "needs at least one train and one test interaction)"
        )
    df = log.interactions
    by_user = df.groupby("user", sort=False)["user"]
    n = by_user.transform("size").to_numpy()
    rank = by_user.cumcount().to_numpy()  # position within the user's rows, in canonical order
    # the epsilon keeps 0.2 * 10 == 2 even where the float product lands just below the integer
    n_test = np.maximum(1, np.floor(n * float(test_frac) + 1e-9).astype(np.int64))
    n_test = np.minimum(n_test, n - 1)
    is_test = (n >= min_interactions) & (rank >= n - n_test)
    train_df = df.loc[~is_test].reset_index(drop=True)
    test_df = df.loc[is_test].reset_index(drop=True)
    note = (
        f"temporal_split(test_frac={float(test_frac):g}, min_interactions={int(min_interactions)}) "
        f"of {log.name!r}"
    )
    train = dataclasses.replace(
        log, interactions=train_df, name=f"{log.name}/train", notes=(*log.notes, note)
    )
    test = dataclasses.replace(
        log, interactions=test_df, name=f"{log.name}/test", notes=(*log.notes, note)
    )
    return train, test
