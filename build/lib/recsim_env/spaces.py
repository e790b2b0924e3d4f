"""Gymnasium spaces of the simulator (finite bounds everywhere) and action validation."""

from __future__ import annotations

from collections.abc import Sequence
from copy import deepcopy
from typing import Any

import numpy as np
from gymnasium import spaces
from gymnasium.vector.utils import batch_space

from recsim_env.config import SimConfig
from recsim_env.observation import ObsLayout


class InvalidActionError(ValueError):
    """An action outside the action space; the env state is left unchanged."""


class InvalidRenderModeError(ValueError, TypeError):
    """An unsupported ``render_mode``. Also a ``TypeError`` because SB3's ``make_vec_env`` retries
    without a render mode exactly on ``TypeError``."""


def observation_space(cfg: SimConfig, layout: ObsLayout) -> spaces.Box:
    low = np.zeros(layout.size, np.float32)
    high = np.ones(layout.size, np.float32)
    if cfg.observability == "full":
        k = cfg.num_topics
        start = layout.items_size + k + 2 + int(cfg.notify_drift)
        low[start : start + k] = -1.0  # interest
        low[start + 2 * k] = -1.0  # satisfaction
    return spaces.Box(low, high, dtype=np.float32)


class SlateSpace(spaces.MultiDiscrete):
    """Slates of ``k`` *distinct* candidate indices out of ``C`` (shape ``(..., k)``).

    Why a subclass: a plain ``MultiDiscrete([C] * k)`` samples slates with repeated items, which
    ``contains`` accepts but the simulator rejects (a slate shows k different items), so
    Gymnasium's and SB3's env checkers fail and random exploration crashes. Here ``sample()`` draws
    a uniformly random ordered slate without repetition from the space's own seeded generator
    (``space.seed(s)`` makes it deterministic), ``contains`` rejects repeats, and everything else
    (``nvec``, dtype, flattening, equality with ``MultiDiscrete``) is ``MultiDiscrete``'s, so code
    that handles ``MultiDiscrete`` keeps working. ``batch_shape`` gives one slate per user (the
    vector env's batched space; ``gymnasium.vector.utils.batch_space`` builds it too).
    """

    def __init__(
        self,
        num_candidates: int,
        slate_size: int,
        *,
        batch_shape: tuple[int, ...] = (),
        seed: int | np.random.Generator | None = None,
    ) -> None:
        if not 1 <= slate_size <= num_candidates:
            raise ValueError(
                f"invalid slate_size={slate_size} (allowed: 1..num_candidates={num_candidates})"
            )
        self.num_candidates, self.slate_size = int(num_candidates), int(slate_size)
        super().__init__(
            np.full((*batch_shape, slate_size), num_candidates, np.int64), np.int64, seed=seed
        )

    def sample(self, mask: Any = None, probability: Any = None) -> np.ndarray:
        """A random slate (or one per row) of distinct candidates. ``mask``/``probability`` (as
        for ``MultiDiscrete``, per position) restrict each position; positions are then filled in
        order, each among the allowed candidates not already in the slate."""
        if mask is not None or probability is not None:
            if mask is not None and probability is not None:
                raise ValueError("only one of `mask` or `probability` can be given")
            return self._sample_constrained(mask if mask is not None else probability, mask is None)
        lead = self.shape[:-1]
        keys = self.np_random.random((*lead, self.num_candidates))
        return np.argsort(keys, axis=-1)[..., : self.slate_size].astype(np.int64)

    def _sample_constrained(self, weights: Any, is_probability: bool) -> np.ndarray:
        out = np.empty(self.shape, np.int64)
        for row in np.ndindex(*self.shape[:-1]):
            per_position = weights
            for i in row:
                per_position = per_position[i]
            taken = np.zeros(self.num_candidates, bool)
            for j in range(self.slate_size):
                w = np.asarray(per_position[j], np.float64).copy()
                if w.shape != (self.num_candidates,):
                    raise ValueError(
                        f"mask of position {j} has shape {w.shape}, expected ({self.num_candidates},)"
                    )
                w[taken] = 0.0
                if not w.any():
                    raise ValueError(f"no candidate left for slate position {j} under this mask")
                if is_probability:
                    choice = self.np_random.choice(self.num_candidates, p=w / w.sum())
                else:
                    choice = self.np_random.choice(np.flatnonzero(w))
                index = (*row, j)  # (a subscript with * needs Python 3.11)
                out[index] = choice
                taken[choice] = True
        return out

    def contains(self, x: Any) -> bool:
        if isinstance(x, Sequence):
            x = np.array(x)
        if not super().contains(x):
            return False
        ordered = np.sort(x, axis=-1)
        return not bool((ordered[..., 1:] == ordered[..., :-1]).any())

    def __repr__(self) -> str:
        lead = f", batch_shape={self.shape[:-1]}" if len(self.shape) > 1 else ""
        return (
            f"SlateSpace(num_candidates={self.num_candidates}, slate_size={self.slate_size}{lead})"
        )


@batch_space.register(SlateSpace)
def _batch_slate_space(space: SlateSpace, n: int = 1) -> SlateSpace:
    """``batch_space`` of a slate space: one distinct slate per row (Gymnasium's generic
    ``MultiDiscrete`` version would sample repeated items again)."""
    return SlateSpace(
        space.num_candidates,
        space.slate_size,
        batch_shape=(n, *space.shape[:-1]),
        seed=deepcopy(space.np_random),
    )


def action_space(cfg: SimConfig) -> spaces.Space:
    if cfg.slate_mode:
        return SlateSpace(cfg.num_candidates, cfg.slate_size)
    return spaces.Discrete(cfg.num_candidates)


def validate_actions(cfg: SimConfig, actions, batch: int) -> np.ndarray:
    """Return the actions as an int64 array of shape ``(B,)`` or ``(B, k)``, or raise."""
    arr = np.asarray(actions)
    if arr.dtype == np.bool_ or not (np.issubdtype(arr.dtype, np.integer) or _integral_float(arr)):
        raise InvalidActionError(
            f"invalid action dtype {arr.dtype}: expected integers (candidate indices)"
        )
    expected = (batch, cfg.slate_size) if cfg.slate_mode else (batch,)
    if arr.shape != expected:
        raise InvalidActionError(f"invalid action shape {arr.shape}: expected {expected}")
    arr = arr.astype(np.int64, copy=False)
    if arr.size and (arr.min() < 0 or arr.max() >= cfg.num_candidates):
        bad = arr[(arr < 0) | (arr >= cfg.num_candidates)].ravel()[0]
        raise InvalidActionError(
            f"invalid action {bad}: candidate indices must be in [0, {cfg.num_candidates - 1}]"
        )
    if cfg.slate_mode and cfg.slate_size > 1:
        ordered = np.sort(arr, axis=1)
        dup = (ordered[:, 1:] == ordered[:, :-1]).any(axis=1)
        if dup.any():
            row = int(np.flatnonzero(dup)[0])
            raise InvalidActionError(
                f"invalid slate {arr[row].tolist()} for user {row}: items must be distinct"
            )
    return arr


def _integral_float(arr: np.ndarray) -> bool:
    """SB3 and some wrappers hand over float arrays holding whole numbers; accept exactly those."""
    return np.issubdtype(arr.dtype, np.floating) and bool(
        np.all(np.isfinite(arr)) and np.all(arr == np.round(arr))
    )
