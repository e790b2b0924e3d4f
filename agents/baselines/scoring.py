"""What every baseline shares: score the candidates of each user, recommend the best ones.

A baseline sees a batch of observations ``(B, obs_dim)``, turns it into one score per candidate
``(B, C)`` and recommends the top candidate (``Discrete(C)`` action space, actions ``(B,)``) or the
top-``k`` distinct candidates (slate mode, ``MultiDiscrete([C] * k)``, actions ``(B, k)`` in
descending score order). Everything is vectorised over the batch: no per-user Python loop.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
from gymnasium import spaces

from agents.base import Info, OnlineAgent, live_rows, take_rows

if TYPE_CHECKING:
    from agents.baselines.features import LinearFeatures


def slate_size_of(action_space: Any) -> int:
    """0 for a single-item ``Discrete(C)`` action space, ``k`` for a ``MultiDiscrete([C] * k)`` slate."""
    if isinstance(action_space, spaces.Discrete):
        return 0
    if isinstance(action_space, spaces.MultiDiscrete):
        if action_space.nvec.ndim != 1:
            raise TypeError(f"slate action space must be 1-D MultiDiscrete, got {action_space}")
        return int(action_space.nvec.shape[0])
    raise TypeError(f"baselines need a Discrete or MultiDiscrete action space, got {action_space}")


def top_candidates(scores: np.ndarray, slate_size: int) -> np.ndarray:
    """Best candidate per row (``slate_size == 0``, shape ``(B,)``) or the best ``k`` distinct ones
    in descending score order (shape ``(B, k)``). Ties go to the lower index (deterministic)."""
    if slate_size == 0:
        return np.argmax(scores, axis=-1).astype(np.int64)
    order = np.argsort(-scores, axis=-1, kind="stable")
    return np.ascontiguousarray(order[..., :slate_size]).astype(np.int64)


class ScoringAgent(OnlineAgent):
    """Base of the baselines: batching, slate handling and the action format.

    Subclasses implement :meth:`scores` ``(B, C)``. ``act`` accepts a batch ``(B, obs_dim)`` or a
    single observation ``(obs_dim,)`` (a non-vector ``RecSimEnv``), and returns actions of matching
    batch shape.
    """

    def __init__(self, env: Any, seed: int | None = None) -> None:
        super().__init__(env, seed=seed)
        self.slate_size = slate_size_of(self.action_space)
        self.num_candidates = self.layout.num_candidates
        if self.slate_size > self.num_candidates:
            raise ValueError(
                f"slate_size={self.slate_size} exceeds the number of candidates {self.num_candidates}"
            )

    # ------------------------------------------------------------------ subclass hooks
    def scores(self, obs: np.ndarray, *, explore: bool, info: Info | None) -> np.ndarray:
        """Score of every candidate, ``(B, C)``; higher is recommended first."""
        raise NotImplementedError

    def click_probability(self, obs: np.ndarray, *, info: Info | None = None) -> np.ndarray | None:
        """Predicted click probability of every candidate, ``(B, C)`` in ``[0, 1]``, or ``None``
        when the agent has no click model (the default; see :mod:`agents.click_model`)."""
        return None

    # ------------------------------------------------------------------ acting
    def act(
        self, obs: np.ndarray, *, explore: bool = False, info: Info | None = None
    ) -> np.ndarray:
        obs = np.asarray(obs, dtype=np.float32)
        if obs.ndim == 1:  # a single env: act on a batch of one, return its unbatched action
            info1 = None if info is None else _batch_info(info)
            return self.act_batch(obs[None], explore=explore, info=info1)[0]
        if obs.ndim != 2 or obs.shape[1] != self.layout.size:
            raise ValueError(
                f"expected observations of shape (B, {self.layout.size}), got {obs.shape}"
            )
        return self.act_batch(obs, explore=explore, info=info)

    def act_batch(self, obs: np.ndarray, *, explore: bool, info: Info | None) -> np.ndarray:
        """``act`` on a validated batch ``(B, obs_dim)``; override for more than top-k scoring."""
        return top_candidates(self.scores(obs, explore=explore, info=info), self.slate_size)

    def random_actions(self, batch_size: int) -> np.ndarray:
        """Uniformly random valid actions (distinct candidates in slate mode) from ``self.rng``."""
        if self.slate_size == 0:
            return self.rng.integers(self.num_candidates, size=batch_size, dtype=np.int64)
        keys = self.rng.random((batch_size, self.num_candidates))
        return top_candidates(keys, self.slate_size)


class FeedbackAgent(ScoringAgent):
    """A scorer that learns online from the (context, label) pairs of each vector step: the
    greedy click model and the linear bandits.

    ``observe`` turns the step into pairs with ``self.features`` (see
    :meth:`~agents.baselines.features.LinearFeatures.feedback`); subclasses say what the label is
    (:meth:`label`, the reward by default) and how they learn from the pairs (:meth:`fit`).
    """

    features: LinearFeatures

    def label(self, rewards: np.ndarray, info: Info) -> np.ndarray:
        """The value each pair is labelled with (the step's rewards by default)."""
        return rewards

    def fit(self, phi: np.ndarray, y: np.ndarray) -> None:
        """Learn from one step's pairs ``phi (N, dim)``, ``y (N,)``."""
        raise NotImplementedError

    def observe(
        self,
        obs: np.ndarray,
        actions: np.ndarray,
        rewards: np.ndarray,
        next_obs: np.ndarray,
        terminated: np.ndarray,
        truncated: np.ndarray,
        info: Info,
    ) -> None:
        live = live_rows(info)  # NEXT_STEP reset steps are no feedback
        if live is not None:
            n = len(rewards)
            obs, actions, rewards = obs[live], np.asarray(actions)[live], np.asarray(rewards)[live]
            info = take_rows(info, live, n)
            if not len(live):
                return
        self.fit(*self.features.feedback(obs, actions, self.label(rewards, info), info))


def _batch_info(info: Info) -> Info:
    """Add a leading batch axis to a single env's info arrays (only the keys agents read)."""
    out: Info = {}
    for key, value in info.items():
        if isinstance(value, np.ndarray | np.generic | bool | int | float):
            out[key] = np.asarray(value)[None]
    return out
