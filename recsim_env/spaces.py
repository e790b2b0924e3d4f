"""Gymnasium spaces of the simulator (finite bounds everywhere) and action validation."""

from __future__ import annotations

import numpy as np
from gymnasium import spaces

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


def action_space(cfg: SimConfig) -> spaces.Space:
    if cfg.slate_mode:
        return spaces.MultiDiscrete(np.full(cfg.slate_size, cfg.num_candidates, np.int64))
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
