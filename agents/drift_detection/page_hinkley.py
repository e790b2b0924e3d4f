"""Page-Hinkley: a CUSUM-style sequential test for a mean shift (see the package doc)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from agents.drift_detection.base import _DIRECTIONS, Direction, DriftDetector, _finite

# --------------------------------------------------------------------------------------------------
# Page-Hinkley
# --------------------------------------------------------------------------------------------------


class PageHinkley(DriftDetector):
    """Page-Hinkley test for a shift of the mean.

    With ``x̄_t`` the running mean of the values since the last reset, two cumulative sums are kept,
    each an exponentially faded (factor ``alpha``) sum of deviations:

    - ``up``: ``m_t = alpha·m_{t-1} + (x_t − x̄_t − delta)``; an increase is detected when
      ``m_t − min_{s≤t} m_s > threshold``;
    - ``down``: ``m'_t = alpha·m'_{t-1} + (x_t − x̄_t + delta)``; a decrease is detected when
      ``max_{s≤t} m'_s − m'_t > threshold``.

    ``direction`` selects which is tested (``"down"`` suits a reward stream: a drop is what hurts;
    ``"both"`` by default). No detection before ``min_samples`` values. After a detection the test
    restarts from scratch (so it learns the new level and can fire again). ``alpha = 1`` is the
    classic, non-forgetting test. ``delta`` and ``threshold`` are in the signal's units: a shift of
    size ``d`` is detected after roughly ``threshold / (d − delta)`` steps.
    """

    def __init__(
        self,
        delta: float = 0.005,
        threshold: float = 50.0,
        alpha: float = 1.0 - 1e-4,
        min_samples: int = 30,
        direction: Direction = "both",
    ) -> None:
        super().__init__()
        if not (delta >= 0 and math.isfinite(delta)):
            raise ValueError(f"delta must be >= 0, got {delta}")
        if not (threshold > 0 and math.isfinite(threshold)):
            raise ValueError(f"threshold must be > 0, got {threshold}")
        if not 0.0 < alpha <= 1.0:
            raise ValueError(f"alpha must be in (0, 1], got {alpha}")
        if min_samples < 1:
            raise ValueError(f"min_samples must be >= 1, got {min_samples}")
        if direction not in _DIRECTIONS:
            raise ValueError(f"direction must be one of {_DIRECTIONS}, got {direction!r}")
        self.delta = float(delta)
        self.threshold = float(threshold)
        self.alpha = float(alpha)
        self.min_samples = int(min_samples)
        self.direction: Direction = direction
        self._clear()

    def _clear(self) -> None:
        self._n = 0  # values since the last restart
        self._mean = 0.0
        self._sum_up = 0.0
        self._min_up = math.inf
        self._sum_down = 0.0
        self._max_down = -math.inf

    def reset(self) -> None:
        self._clear()
        self.n_seen = 0
        self.num_detections = 0
        self.drift_detected = False

    @property
    def statistic(self) -> float:
        """The current test statistic (largest tested direction); compare it to ``threshold``."""
        up = self._sum_up - self._min_up if self._n else 0.0
        down = self._max_down - self._sum_down if self._n else 0.0
        if self.direction == "up":
            return up
        if self.direction == "down":
            return down
        return max(up, down)

    def update(self, x: float) -> bool:
        x = _finite(x)
        self.n_seen += 1
        self._n += 1
        self._mean += (x - self._mean) / self._n
        dev = x - self._mean
        self._sum_up = self.alpha * self._sum_up + dev - self.delta
        self._min_up = min(self._min_up, self._sum_up)
        self._sum_down = self.alpha * self._sum_down + dev + self.delta
        self._max_down = max(self._max_down, self._sum_down)
        detected = False
        if self._n >= self.min_samples:
            if self.direction in ("up", "both"):
                detected = self._sum_up - self._min_up > self.threshold
            if self.direction in ("down", "both"):
                detected = detected or self._max_down - self._sum_down > self.threshold
        self.drift_detected = detected
        if detected:
            self.num_detections += 1
            self._clear()
        return detected

    def update_sequence(self, values: ArrayLike) -> np.ndarray:
        """Vectorised replay: numpy over each stretch between detections, same result as a loop.

        The faded sums are a linear recurrence, computed as ``alpha^t · cumsum(dev_j · alpha^-j)``
        in chunks short enough that ``alpha^-j`` stays far from overflow; running minima/maxima are
        ``np.minimum.accumulate``. Blocks double while nothing is detected, so the cost is O(T)
        numpy work plus O(log T) Python calls per stretch between detections.
        """
        arr = self._as_sequence(values)
        # Blocks grow geometrically while nothing is detected and shrink back after a detection,
        # so frequent detections do not cost a full block each. The cap keeps alpha^-j < e^200.
        cap = 65536
        if self.alpha < 1.0:
            cap = max(1, min(cap, int(200.0 / -math.log(self.alpha))))
        smallest = min(cap, max(64, self.min_samples))
        found: list[int] = []
        pos, chunk = 0, smallest
        while pos < arr.size:
            block = arr[pos : pos + chunk]
            hit = self._scan_block(block)
            if hit is None:
                pos += block.size
                chunk = min(cap, 2 * chunk)
            else:
                found.append(pos + hit)
                pos += hit + 1
                chunk = smallest
        return np.asarray(found, dtype=np.int64)

    def _scan_block(self, block: np.ndarray) -> int | None:
        """Process ``block``; stop after the first detection and return its index (or ``None``)."""
        size = block.size
        counts = self._n + np.arange(1, size + 1, dtype=np.float64)
        means = (self._n * self._mean + np.cumsum(block)) / counts
        dev = block - means
        if self.alpha < 1.0:
            powers = self.alpha ** np.arange(1, size + 1, dtype=np.float64)
            sum_up = powers * (self._sum_up + np.cumsum((dev - self.delta) / powers))
            sum_down = powers * (self._sum_down + np.cumsum((dev + self.delta) / powers))
        else:
            sum_up = self._sum_up + np.cumsum(dev - self.delta)
            sum_down = self._sum_down + np.cumsum(dev + self.delta)
        min_up = np.minimum(self._min_up, np.minimum.accumulate(sum_up))
        max_down = np.maximum(self._max_down, np.maximum.accumulate(sum_down))
        hits = np.zeros(size, dtype=bool)
        if self.direction in ("up", "both"):
            hits |= sum_up - min_up > self.threshold
        if self.direction in ("down", "both"):
            hits |= max_down - sum_down > self.threshold
        hits &= counts >= self.min_samples
        if hits.any():
            k = int(np.argmax(hits))
            self.n_seen += k + 1
            self.num_detections += 1
            self.drift_detected = True
            self._clear()
            return k
        self.n_seen += size
        self._n += size
        self._mean = float(means[-1])
        self._sum_up, self._min_up = float(sum_up[-1]), float(min_up[-1])
        self._sum_down, self._max_down = float(sum_down[-1]), float(max_down[-1])
        self.drift_detected = False
        return None

    def state_dict(self) -> dict[str, Any]:
        return {
            "config": {
                "delta": self.delta,
                "threshold": self.threshold,
                "alpha": self.alpha,
                "min_samples": self.min_samples,
                "direction": self.direction,
            },
            "n": self._n,
            "mean": self._mean,
            "sum_up": self._sum_up,
            "min_up": self._min_up,
            "sum_down": self._sum_down,
            "max_down": self._max_down,
            "n_seen": self.n_seen,
            "num_detections": self.num_detections,
            "drift_detected": self.drift_detected,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.__init__(**state["config"])  # validates the configuration
        self._n = int(state["n"])
        self._mean = float(state["mean"])
        self._sum_up = float(state["sum_up"])
        self._min_up = float(state["min_up"])
        self._sum_down = float(state["sum_down"])
        self._max_down = float(state["max_down"])
        self.n_seen = int(state["n_seen"])
        self.num_detections = int(state["num_detections"])
        self.drift_detected = bool(state["drift_detected"])
