"""The interface every drift detector meets (see the package doc)."""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from typing import Any, Literal

import numpy as np
from numpy.typing import ArrayLike

Direction = Literal["down", "up", "both"]
_DIRECTIONS = ("down", "up", "both")


def _finite(x: float) -> float:
    value = float(x)
    if not math.isfinite(value):
        raise ValueError(f"drift detector input must be finite, got {x!r}")
    return value


class DriftDetector(ABC):
    """A change detector over a stream of scalars.

    ``n_seen`` counts updates since construction or ``reset()``; ``num_detections`` counts
    detections in that time; ``drift_detected`` is the result of the latest update.
    """

    def __init__(self) -> None:
        self.n_seen = 0
        self.num_detections = 0
        self.drift_detected = False

    @abstractmethod
    def update(self, x: float) -> bool:
        """Feed one value; return ``True`` if a change is detected at this value."""

    def update_batch(self, xs: ArrayLike) -> bool:
        """Feed one step of ``B`` users' values: one update with their mean."""
        arr = np.asarray(xs, dtype=np.float64)
        if arr.size == 0:
            raise ValueError("update_batch needs at least one value")
        return self.update(float(arr.mean()))

    def update_sequence(self, values: ArrayLike) -> np.ndarray:
        """Feed a recorded stream in order; return the indices at which a change was detected.

        ``values`` is ``(T,)``, or ``(T, B)`` (each row one step of ``B`` users, reduced to its mean
        as in :meth:`update_batch`). The state afterwards is as if ``update`` had been called on
        each value.
        """
        arr = self._as_sequence(values)
        return np.asarray([i for i, x in enumerate(arr) if self.update(float(x))], dtype=np.int64)

    @staticmethod
    def _as_sequence(values: ArrayLike) -> np.ndarray:
        arr = np.asarray(values, dtype=np.float64)
        if arr.ndim == 0:
            raise ValueError("update_sequence needs a 1-D or 2-D array")
        if arr.ndim > 1:
            arr = arr.reshape(arr.shape[0], -1).mean(axis=1)
        if not np.all(np.isfinite(arr)):
            raise ValueError("drift detector input must be finite")
        return arr

    @abstractmethod
    def reset(self) -> None:
        """Forget everything seen (the configuration is kept)."""

    @abstractmethod
    def state_dict(self) -> dict[str, Any]:
        """Configuration and state as a plain data tree (:mod:`recsim_env.state_io`)."""

    @abstractmethod
    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore configuration and state saved by :meth:`state_dict`."""
