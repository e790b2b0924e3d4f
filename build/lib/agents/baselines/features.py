"""The context vector φ(candidate, user) that the linear baselines learn on.

Candidates are fresh catalogue items at every step, so the bandits cannot keep one estimate per arm:
the arms are contexts and one shared linear model scores them all (LinUCB in its "shared" form).
φ is built from what the agent observes only (never ``info``):

    [ item features (K + 3) | item topics ⊙ user click-history summary (K) | user features | 1 ]

The item block learns what the population likes (topics, popularity, freshness, length) — this is
what exogenous drift moves; the interaction block lets the score depend on the user's own recent
tastes; the user block (optional) absorbs per-user offsets (session progress, click rate) so that
they do not bias the item weights.
"""

from __future__ import annotations

import numpy as np

from recsim_env.observation import ObsLayout

# Slate mode: the (observable) slot the user clicked, -1 for none, if the simulator reports it.
CLICK_POSITION_KEY = "clicked_position"


class LinearFeatures:
    """φ for a given observation layout. ``dim`` is the context dimension."""

    def __init__(self, layout: ObsLayout, user_features: bool = True) -> None:
        self.layout = layout
        self.user_features = bool(user_features)
        k = layout.num_topics
        self.dim = layout.item_dim + k + (layout.user_dim if self.user_features else 0) + 1

    def __call__(self, items: np.ndarray, user: np.ndarray) -> np.ndarray:
        """``items (..., item_dim)`` and ``user (..., user_dim)`` (broadcastable leading axes)
        → φ ``(..., dim)`` as float64."""
        k = self.layout.num_topics
        items = np.asarray(items, dtype=np.float64)
        user = np.asarray(user, dtype=np.float64)
        lead = np.broadcast_shapes(items.shape[:-1], user.shape[:-1])
        parts = [
            np.broadcast_to(items, (*lead, items.shape[-1])),
            items[..., :k] * user[..., :k],
        ]
        if self.user_features:
            parts.append(np.broadcast_to(user, (*lead, user.shape[-1])))
        parts.append(np.ones((*lead, 1)))
        return np.concatenate(parts, axis=-1)

    def all_candidates(self, obs: np.ndarray) -> np.ndarray:
        """φ of every candidate: ``obs (B, obs_dim)`` → ``(B, C, dim)``."""
        items, user = self.layout.split(obs)
        return self(items, user[:, None, :])

    def chosen(self, obs: np.ndarray, actions: np.ndarray) -> np.ndarray:
        """φ of the recommended candidates: ``actions (B,)`` → ``(B, dim)``;
        slate ``actions (B, k)`` → ``(B, k, dim)``."""
        items, user = self.layout.split(obs)
        actions = np.asarray(actions, dtype=np.int64)
        rows = np.arange(items.shape[0]).reshape((-1,) + (1,) * (actions.ndim - 1))
        picked = items[rows, actions]
        return self(
            picked, user.reshape(user.shape[:1] + (1,) * (actions.ndim - 1) + user.shape[1:])
        )

    def feedback(
        self,
        obs: np.ndarray,
        actions: np.ndarray,
        rewards: np.ndarray,
        info: dict | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Training pairs ``(φ (N, dim), reward (N,))`` of one vector step.

        Single item: one pair per user, the recommended candidate and its reward.
        Slate, when ``info[CLICK_POSITION_KEY]`` says which slot was clicked (-1: none): one pair
        per slot, the clicked slot labelled with the reward and the others with 0. Slate without
        it: one pair per user, the sum of the slate's contexts and the slate's reward — the
        linearisation ``E[reward | slate] ≈ Σⱼ θ·φⱼ`` that holds when click probabilities are small.
        """
        actions = np.asarray(actions, dtype=np.int64)
        rewards = np.asarray(rewards, dtype=np.float64).reshape(-1)
        phi = self.chosen(obs, actions)
        if actions.ndim == 1:
            return phi, rewards
        position = None if info is None else info.get(CLICK_POSITION_KEY)
        if position is None:
            return phi.sum(axis=1), rewards
        position = np.asarray(position, dtype=np.int64).reshape(-1, 1)
        slots = np.arange(actions.shape[1])
        labels = np.where(slots == position, rewards[:, None], 0.0)
        return phi.reshape(-1, self.dim), labels.reshape(-1)
