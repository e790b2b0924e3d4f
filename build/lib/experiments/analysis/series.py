"""Logged series of a run: input checks, trailing windowed means, cumulative and windowed regret.

The building blocks of :mod:`experiments.analysis.lifelong` and :mod:`experiments.analysis.regimes`
(see there for the shared conventions: strictly increasing integer steps, windows ``(s - window, s]``
in user-steps, ``nan`` for what is undefined).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import ArrayLike

__all__ = ["cumulative_regret", "event_steps_from_flags", "windowed_mean", "windowed_regret"]


def _as_steps(steps: ArrayLike, name: str = "steps") -> np.ndarray:
    """Integer step indices, strictly increasing (a logged stream never repeats a step)."""
    arr = np.asarray(steps)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be 1-D, got shape {arr.shape}")
    if arr.size and not np.issubdtype(arr.dtype, np.integer):
        as_float = arr.astype(np.float64)
        if not np.all(np.isfinite(as_float)) or np.any(as_float != np.round(as_float)):
            raise ValueError(f"{name} must hold integer step indices")
    arr = arr.astype(np.int64)
    if arr.size > 1 and np.any(np.diff(arr) <= 0):
        raise ValueError(f"{name} must be strictly increasing")
    return arr


def _as_values(values: ArrayLike, n: int, name: str) -> np.ndarray:
    arr = np.asarray(values, dtype=np.float64)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be 1-D (one value per step), got shape {arr.shape}")
    if arr.shape[0] != n:
        raise ValueError(f"{name} has {arr.shape[0]} values but steps has {n}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} must be finite")
    return arr


def _as_events(event_steps: ArrayLike | None) -> np.ndarray:
    """Sorted, de-duplicated event steps (B users flag the same population event at once)."""
    if event_steps is None:
        return np.zeros(0, dtype=np.int64)
    arr = np.asarray(event_steps)
    if arr.ndim != 1:
        raise ValueError(f"event_steps must be 1-D, got shape {arr.shape}")
    return np.unique(arr.astype(np.int64))


def _check_window(window: int, name: str = "window") -> int:
    if not np.isfinite(window) or window <= 0:
        raise ValueError(f"{name} must be > 0, got {window}")
    return int(window)


def _nanmean(values: Sequence[float] | np.ndarray) -> float:
    arr = np.asarray(values, dtype=np.float64)
    arr = arr[np.isfinite(arr)]
    return float(arr.mean()) if arr.size else float("nan")


def _reduce_users(values: ArrayLike, counts: ArrayLike | None) -> tuple[np.ndarray, np.ndarray]:
    """``(T,)`` or ``(T, B, ...)`` values → per-step means and the user-steps each stands for."""
    arr = np.asarray(values, dtype=np.float64)
    if arr.ndim == 0:
        raise ValueError("values must have a time axis")
    per_row = 1
    if arr.ndim > 1:
        per_row = int(np.prod(arr.shape[1:]))
        arr = arr.reshape(arr.shape[0], -1).mean(axis=1)
    if counts is None:
        weights = np.full(arr.shape[0], float(per_row))
    else:
        weights = np.asarray(counts, dtype=np.float64)
        if weights.shape != arr.shape:
            raise ValueError(f"counts must have shape {arr.shape}, got {weights.shape}")
        if np.any(weights < 0):
            raise ValueError("counts must be >= 0")
        weights = weights * per_row
    if not np.all(np.isfinite(arr)):
        raise ValueError("values must be finite")
    return arr, weights


def cumulative_regret(regrets: ArrayLike, *, counts: ArrayLike | None = None) -> np.ndarray:
    """Running total of regret over the stream, in regret × user-steps.

    ``regrets`` is ``(T,)`` (one value per step) or ``(T, B)`` (the ``info["regret"]`` of each
    vector step: summed over users). When each entry is a logging window's *mean* regret, pass
    ``counts`` (user-steps per entry) so that the total weighs windows by their length. Returns
    ``(T,)``; its last entry is the cumulative (dynamic) regret of the stream.
    """
    means, weights = _reduce_users(regrets, counts)
    return np.cumsum(means * weights)


def windowed_mean(
    steps: ArrayLike, values: ArrayLike, *, window: int, weights: ArrayLike | None = None
) -> np.ndarray:
    """Trailing windowed mean: at each sample, the (weighted) mean over steps ``(s - window, s]``.

    O(T) with cumulative sums. Samples are never padded, so the first window holds fewer samples.
    """
    st = _as_steps(steps)
    val = _as_values(values, st.size, "values")
    window = _check_window(window)
    w = np.ones(st.size) if weights is None else _as_values(weights, st.size, "weights")
    if np.any(w < 0):
        raise ValueError("weights must be >= 0")
    csum = np.concatenate(([0.0], np.cumsum(w * val)))
    wsum = np.concatenate(([0.0], np.cumsum(w)))
    lo = np.searchsorted(st, st - window, side="right")
    hi = np.arange(1, st.size + 1)
    den = wsum[hi] - wsum[lo]
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, (csum[hi] - csum[lo]) / den, np.nan)


def windowed_regret(
    steps: ArrayLike, regrets: ArrayLike, *, window: int, counts: ArrayLike | None = None
) -> np.ndarray:
    """Mean regret per user-step over the trailing ``window`` steps, at every sample.

    ``regrets`` is ``(T,)`` or ``(T, B)``; ``counts`` as in :func:`cumulative_regret`. The dynamic
    regret *rate* a drifting world imposes: it spikes at a drift event, decays as the agent adapts.
    """
    means, weights = _reduce_users(regrets, counts)
    return windowed_mean(steps, means, window=window, weights=weights)


def event_steps_from_flags(steps: ArrayLike, flags: ArrayLike) -> np.ndarray:
    """Steps at which any user's ``info["drift_event"]`` is set (``flags``: ``(T,)``/``(T, B)``)."""
    st = _as_steps(steps)
    fl = np.asarray(flags, dtype=bool)
    if fl.shape[0] != st.size:
        raise ValueError(f"flags has {fl.shape[0]} rows but steps has {st.size}")
    if fl.ndim > 1:
        fl = np.asarray(fl.reshape(fl.shape[0], -1).any(axis=1))
    return st[fl]
