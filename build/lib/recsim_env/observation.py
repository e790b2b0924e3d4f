"""Layout of the flat observation vector.

The observation is one flat ``float32`` vector so that SB3's ``MlpPolicy`` works as is. Agents that
want structure (per-candidate scoring networks, bandits that treat candidates as arms) use
:class:`ObsLayout` to split it again, without knowing how the simulator builds it:

    [ candidate 0 features | candidate 1 features | ... | candidate C-1 features | user features ]

Per-candidate features (``item_dim`` = K + 3 [+ 2 with returning users] [+ E]), all in [0, 1]:
    topics (K, sums to 1), observed popularity, freshness (1 = just born), normalised length;
    with returning users: observed completion and observed return-after-consumption rate (noisy
    aggregates that mature with the item's age, shrunk towards the catalogue average when young);
    with ``item_embedding_dim = E > 0``: E fixed random features of the item id.
User features (``user_dim``), partial mode:
    click-history topic summary (K, in [0, 1]), recent click rate, session progress;
    + drift notification flag (if ``notify_drift``);
    full mode adds: true interest (K, in [-1, 1]), normalised fatigue (K), satisfaction ([-1, 1]),
    normalised remaining budget;
    returning users add (last): recent completion (EMA of the consumed items' completion, across
    sessions), recency (time away before this session), visits (sessions so far), lifetime
    progress (user time / lifetime cap).

Use the named slices (:meth:`ObsLayout.item_slices`, :meth:`ObsLayout.user_slices`) rather than
positions: the blocks present depend on the configuration.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

ITEM_EXTRA_FEATURES = ("popularity", "freshness", "length")
ITEM_SIGNAL_FEATURES = ("completion", "return_rate")  # with returning users
RETURNING_USER_FEATURES = ("recent_completion", "recency", "visits", "lifetime")


@dataclass(frozen=True)
class ObsLayout:
    """Where each part of the flat observation lives."""

    num_candidates: int
    num_topics: int
    user_dim: int
    notify_drift: bool = False
    full: bool = False
    item_signals: bool = False  # observed completion / return-rate per item (returning users)
    embedding_dim: int = 0  # fixed random item-id features
    returning: bool = False  # the returning-user block at the end of the user features

    @property
    def item_dim(self) -> int:
        return (
            self.num_topics
            + len(ITEM_EXTRA_FEATURES)
            + (len(ITEM_SIGNAL_FEATURES) if self.item_signals else 0)
            + self.embedding_dim
        )

    @property
    def items_size(self) -> int:
        return self.num_candidates * self.item_dim

    @property
    def size(self) -> int:
        return self.items_size + self.user_dim

    @property
    def popularity_index(self) -> int:
        """Index of the popularity signal inside one candidate's feature vector."""
        return self.num_topics

    def item_slices(self) -> dict[str, slice]:
        """Named parts of one candidate's features (indices into the last axis of ``items``)."""
        parts = [("topics", self.num_topics)] + [(name, 1) for name in ITEM_EXTRA_FEATURES]
        if self.item_signals:
            parts += [(name, 1) for name in ITEM_SIGNAL_FEATURES]
        if self.embedding_dim:
            parts.append(("embedding", self.embedding_dim))
        return _named(parts)

    def item_slice(self, name: str) -> slice:
        return _lookup(self.item_slices(), name, "candidate")

    def item_feature(self, obs: np.ndarray, name: str) -> np.ndarray:
        """One named candidate feature: ``(..., C)`` for a scalar one, ``(..., C, width)`` else."""
        sl = self.item_slice(name)
        items = self.split(obs)[0]
        return (
            items[..., sl.start] if sl.stop - sl.start == 1 and name != "topics" else items[..., sl]
        )

    def user_slices(self) -> dict[str, slice]:
        """Named parts of the user features (indices into the ``user`` half of :meth:`split`)."""
        k = self.num_topics
        parts = [("history", k), ("ctr", 1), ("progress", 1)]
        if self.notify_drift:
            parts.append(("drift_flag", 1))
        if self.full:
            parts += [("interest", k), ("fatigue", k), ("satisfaction", 1), ("budget", 1)]
        if self.returning:
            parts += [(name, 1) for name in RETURNING_USER_FEATURES]
        return _named(parts)

    def user_slice(self, name: str) -> slice:
        return _lookup(self.user_slices(), name, "user")

    def split(self, obs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``obs`` of shape ``(..., size)`` → items ``(..., C, item_dim)`` and user ``(..., user_dim)``.

        Both are views (no copy)."""
        obs = np.asarray(obs)
        lead = obs.shape[:-1]
        items = obs[..., : self.items_size].reshape(*lead, self.num_candidates, self.item_dim)
        return items, obs[..., self.items_size :]

    def candidate_topics(self, obs: np.ndarray) -> np.ndarray:
        return self.split(obs)[0][..., : self.num_topics]

    def popularity(self, obs: np.ndarray) -> np.ndarray:
        """Observed popularity of each candidate, shape ``(..., C)``."""
        return self.split(obs)[0][..., self.popularity_index]


def _named(parts: list[tuple[str, int]]) -> dict[str, slice]:
    out, start = {}, 0
    for name, width in parts:
        out[name] = slice(start, start + width)
        start += width
    return out


def _lookup(slices: dict[str, slice], name: str, kind: str) -> slice:
    if name not in slices:
        raise KeyError(f"no {kind} feature {name!r} in this observation; available: {list(slices)}")
    return slices[name]


def get_obs_layout(env: Any) -> ObsLayout:
    """Find the :class:`ObsLayout` of a recsim env, vector env, SB3 VecEnv or wrapper around one."""
    seen = set()
    current = env
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        layout = getattr(current, "__dict__", {}).get("obs_layout")
        if isinstance(layout, ObsLayout):
            return layout
        # gymnasium wrappers expose .env / .unwrapped; SB3 VecEnvWrappers expose .venv
        current = getattr(current, "venv", None) or getattr(current, "env", None)
    if hasattr(env, "get_attr"):  # SB3 VecEnv over separate (e.g. subprocess) envs
        layouts = env.get_attr("obs_layout")
        if layouts and isinstance(layouts[0], ObsLayout):
            return layouts[0]
    raise TypeError(f"{env!r} is not a recsim_env environment: it has no `obs_layout`")
