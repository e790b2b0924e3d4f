"""ADWIN2: adaptive windowing over an exponential histogram (see the package doc)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from agents.drift_detection.base import _DIRECTIONS, Direction, DriftDetector, _finite

# --------------------------------------------------------------------------------------------------
# ADWIN
# --------------------------------------------------------------------------------------------------


class ADWIN(DriftDetector):
    """ADWIN2: adaptive windowing over an exponential histogram (Bifet & Gavaldà, 2007).

    The window ``W`` is stored as buckets: row ``i`` holds up to ``max_buckets`` buckets of ``2^i``
    values each (their sum and the sum of squared deviations from their mean); a row that overflows
    merges its two oldest buckets into one of the next row. Memory is O(``max_buckets``·log W).

    Every ``clock`` updates (once the window has ``min_window_length`` values) every bucket boundary
    splits ``W`` into an older part ``W0`` (``n0`` values) and a newer part ``W1``; a split with
    both parts ≥ ``min_sub_window`` values cuts when

        |μ0 − μ1| > sqrt(2/m · σ²_W · ln(2/δ')) + 2/(3m) · ln(2/δ'),

    ``m = 1/(1/n0 + 1/n1)``, ``σ²_W`` the window's variance, ``δ' = delta / ln W`` (a union bound
    over the O(log W) boundaries tested). On a cut the oldest bucket is dropped and the test
    repeats; the update reports a change. A check costs O(log W) numpy work, so an update costs
    amortised O(1) plus O(log W)/``clock``. With ``direction`` other than ``"both"`` the window is
    still cut on any change (the old data no longer describe the stream), but only a change of the
    mean in the requested direction (newest part vs dropped part) is reported. One abrupt change may
    be reported at a few consecutive checks while the old data are dropped bucket by bucket; an
    agent that reacts to detections should debounce them.
    """

    def __init__(
        self,
        delta: float = 0.002,
        clock: int = 32,
        max_buckets: int = 5,
        min_window_length: int = 10,
        min_sub_window: int = 5,
        direction: Direction = "both",
    ) -> None:
        super().__init__()
        if not 0.0 < delta < 1.0:
            raise ValueError(f"delta must be in (0, 1), got {delta}")
        if clock < 1:
            raise ValueError(f"clock must be >= 1, got {clock}")
        if max_buckets < 2:
            raise ValueError(f"max_buckets must be >= 2, got {max_buckets}")
        if min_sub_window < 1:
            raise ValueError(f"min_sub_window must be >= 1, got {min_sub_window}")
        if min_window_length < 2 * min_sub_window:
            raise ValueError(
                f"min_window_length must be >= 2 * min_sub_window = {2 * min_sub_window}, "
                f"got {min_window_length}"
            )
        if direction not in _DIRECTIONS:
            raise ValueError(f"direction must be one of {_DIRECTIONS}, got {direction!r}")
        self.delta = float(delta)
        self.clock = int(clock)
        self.max_buckets = int(max_buckets)
        self.min_window_length = int(min_window_length)
        self.min_sub_window = int(min_sub_window)
        self.direction: Direction = direction
        self._clear()

    def _clear(self) -> None:
        # _rows[i]: list of [sum, m2] buckets of 2**i values each, oldest first.
        self._rows: list[list[list[float]]] = []
        self._width = 0
        self._total = 0.0
        self._m2 = 0.0  # sum of squared deviations from the window mean
        self._tick = 0

    def reset(self) -> None:
        self._clear()
        self.n_seen = 0
        self.num_detections = 0
        self.drift_detected = False

    @property
    def width(self) -> int:
        """Number of values in the current window."""
        return self._width

    @property
    def mean(self) -> float:
        """Mean of the current window (``nan`` when empty)."""
        return self._total / self._width if self._width else float("nan")

    @property
    def variance(self) -> float:
        """Variance of the current window (``nan`` when empty)."""
        return self._m2 / self._width if self._width else float("nan")

    def update(self, x: float) -> bool:
        x = _finite(x)
        self.n_seen += 1
        self._insert(x)
        self._tick += 1
        detected = False
        if self._tick % self.clock == 0 and self._width >= self.min_window_length:
            detected = self._check()
        self.drift_detected = detected
        if detected:
            self.num_detections += 1
        return detected

    def _insert(self, x: float) -> None:
        if self._width:
            mean_before = self._total / self._width
            self._m2 += self._width * (x - mean_before) ** 2 / (self._width + 1)
        self._width += 1
        self._total += x
        if not self._rows:
            self._rows.append([])
        self._rows[0].append([x, 0.0])
        row = 0
        while len(self._rows[row]) > self.max_buckets:
            (s1, v1), (s2, v2) = self._rows[row][0], self._rows[row][1]
            n = 2**row
            merged = [s1 + s2, v1 + v2 + n * n * (s1 / n - s2 / n) ** 2 / (2 * n)]
            del self._rows[row][:2]
            if row + 1 == len(self._rows):
                self._rows.append([])
            self._rows[row + 1].append(merged)
            row += 1

    def _drop_oldest(self) -> tuple[int, float]:
        """Remove the oldest bucket; return its size and sum."""
        row = len(self._rows) - 1
        s1, v1 = self._rows[row].pop(0)
        n1 = 2**row
        self._width -= n1
        self._total -= s1
        if self._width:
            rest_mean = self._total / self._width
            self._m2 -= v1 + n1 * self._width * (s1 / n1 - rest_mean) ** 2 / (n1 + self._width)
            self._m2 = max(self._m2, 0.0)
        else:
            self._m2 = 0.0
        while self._rows and not self._rows[-1]:
            self._rows.pop()
        return n1, s1

    def _buckets_oldest_first(self) -> tuple[np.ndarray, np.ndarray]:
        sizes, sums = [], []
        for row in range(len(self._rows) - 1, -1, -1):
            n = 2**row
            for s, _ in self._rows[row]:
                sizes.append(n)
                sums.append(s)
        return np.asarray(sizes, dtype=np.float64), np.asarray(sums, dtype=np.float64)

    def _check(self) -> bool:
        cut = False
        dropped_n, dropped_sum = 0, 0.0
        while self._width >= self.min_window_length:
            sizes, sums = self._buckets_oldest_first()
            n0 = np.cumsum(sizes)[:-1]  # older part: buckets up to and including this one
            s0 = np.cumsum(sums)[:-1]
            n1 = self._width - n0
            s1 = self._total - s0
            valid = (n0 >= self.min_sub_window) & (n1 >= self.min_sub_window)
            if not valid.any():
                break
            n0, s0, n1, s1 = n0[valid], s0[valid], n1[valid], s1[valid]
            var = self._m2 / self._width
            log_term = math.log(2.0 * math.log(self._width) / self.delta)
            m = 1.0 / (1.0 / n0 + 1.0 / n1)
            eps = np.sqrt(2.0 / m * var * log_term) + 2.0 / (3.0 * m) * log_term
            if not np.any(np.abs(s0 / n0 - s1 / n1) > eps):
                break
            n, s = self._drop_oldest()
            dropped_n += n
            dropped_sum += s
            cut = True
        if not cut or self.direction == "both":
            return cut
        dropped_mean = dropped_sum / dropped_n
        if self.direction == "down":
            return self.mean < dropped_mean
        return self.mean > dropped_mean

    def state_dict(self) -> dict[str, Any]:
        return {
            "config": {
                "delta": self.delta,
                "clock": self.clock,
                "max_buckets": self.max_buckets,
                "min_window_length": self.min_window_length,
                "min_sub_window": self.min_sub_window,
                "direction": self.direction,
            },
            "rows": [np.asarray(row, dtype=np.float64).reshape(-1, 2) for row in self._rows],
            "width": self._width,
            "total": self._total,
            "m2": self._m2,
            "tick": self._tick,
            "n_seen": self.n_seen,
            "num_detections": self.num_detections,
            "drift_detected": self.drift_detected,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.__init__(**state["config"])  # validates the configuration
        self._rows = [[[float(s), float(v)] for s, v in np.asarray(row)] for row in state["rows"]]
        self._width = int(state["width"])
        self._total = float(state["total"])
        self._m2 = float(state["m2"])
        self._tick = int(state["tick"])
        self.n_seen = int(state["n_seen"])
        self.num_detections = int(state["num_detections"])
        self.drift_detected = bool(state["drift_detected"])
