"""Streaming drift detectors on an agent's own signals.

A drift-aware agent cannot read ``info["drift_event"]`` (that is ground truth, for metrics only); it
must notice the change in what it observes itself: its reward, its TD error, its click rate. These
detectors watch one scalar stream and say when its mean has changed:

- :class:`PageHinkley`: a CUSUM-style sequential test for a mean shift in one direction (or both).
  O(1) time and memory per update; tuned by ``delta`` (shift magnitude to ignore) and ``threshold``
  (evidence needed), both in the units of the signal.
- :class:`ADWIN`: ADaptive WINdowing (Bifet & Gavaldà, 2007, the ADWIN2 variant with an exponential
  histogram). It keeps a window whose mean is consistent with the recent data and drops its oldest
  part whenever two sub-windows have significantly different means (a Hoeffding/Bernstein-style
  bound with confidence ``delta``). Scale-free: the bound uses the window's own variance.

Both share the interface of :class:`DriftDetector`: ``update(x) -> bool`` for one value per step,
``update_batch(xs) -> bool`` for one step of ``B`` users (the detector sees their mean: one update
per step, so ``threshold`` and ``delta`` refer to the per-step mean, whose noise shrinks like 1/√B),
``update_sequence(values) -> indices`` to replay a recorded stream, ``reset()``, and
``state_dict()``/``load_state_dict()`` for checkpoints: plain data (Python numbers, lists, numpy
arrays), so that :func:`recsim_env.state_io.save_tree` writes it and no pickle is ever needed.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from typing import Any, Literal

import numpy as np
from numpy.typing import ArrayLike

__all__ = ["ADWIN", "DriftDetector", "PageHinkley"]

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
