"""Recovery on ground truth, per vector step: :class:`RecoveryTracker` (definitions in
:mod:`experiments.analysis.recovery`'s module doc, part 2)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from experiments.analysis.recovery_records import (
    EventRecovery,
    check_positive_int,
    summarize_recovery,
)

__all__ = ["RecoveryTracker", "chosen_and_best", "rebin_curves"]

# --------------------------------------------------------------------------------------------------
# 2. recovery on ground truth, per vector step
# --------------------------------------------------------------------------------------------------


def chosen_and_best(
    candidate_info: Mapping[str, Any], actions: ArrayLike
) -> tuple[np.ndarray, np.ndarray]:
    """Expected reward of the recommended candidate and the best one, per user, exactly.

    ``candidate_info``: the info that came with the observation the agent acted on (the previous
    step's, or the reset's): its ``expected_reward`` ``(B, C)`` holds the candidates' true
    expected rewards; ``actions`` ``(B,)``: what the agent chose. (The step's own
    ``info["regret"]`` is ``best - chosen``, rounded to float32.) Single-item mode only.
    """
    expected = np.asarray(candidate_info["expected_reward"], dtype=np.float64)
    acts = np.asarray(actions, dtype=np.int64)
    if acts.ndim != 1:
        raise ValueError(
            "chosen_and_best needs single-item actions (B,): in slate mode the best slate's value "
            f"is not in info; got actions of shape {acts.shape}"
        )
    if expected.ndim != 2 or expected.shape[0] != acts.size:
        raise ValueError(
            f"expected_reward must be (B, C) with B = {acts.size}, got shape {expected.shape}"
        )
    chosen = expected[np.arange(acts.size), acts]
    return chosen, expected.max(axis=1)


class RecoveryTracker:
    """Share of the myopic oracle's expected reward around each drift event, per vector step.

    Feed :meth:`update` once per vector step, in order; read :meth:`records`, :meth:`summary` and
    :meth:`curves` at any time. Settings (user-steps): ``baseline`` (pre-event window),
    ``horizon`` (post-event window), ``sustain`` (how long the share must stay back),
    ``tolerance`` (relative), ``bin_size`` (curve resolution; default the batch size of the first
    update, i.e. one vector step). Per update: O(B) numpy plus O(1); at an event, O(baseline).
    Checkpoint with :meth:`state_dict` / :meth:`load_state_dict` (plain data only).
    """

    def __init__(
        self,
        baseline: int = 4096,
        horizon: int = 16384,
        sustain: int = 512,
        tolerance: float = 0.10,
        bin_size: int | None = None,
    ) -> None:
        self.baseline = check_positive_int("baseline", baseline)
        self.horizon = check_positive_int("horizon", horizon)
        self.sustain = check_positive_int("sustain", sustain)
        if not (isinstance(tolerance, int | float | np.floating) and 0.0 <= tolerance < 1.0):
            raise ValueError(f"invalid tolerance={tolerance!r} (allowed: a number in [0, 1))")
        self.tolerance = float(tolerance)
        self.bin_size = None if bin_size is None else check_positive_int("bin_size", bin_size)
        self.batch: int | None = None
        self.last_step: int | None = None
        self.prev_event_step: int | None = None
        # ring of the latest vector steps: (step count, Σ chosen, Σ best)
        self._ring_step = np.zeros(0, np.int64)
        self._ring_value = np.zeros(0)
        self._ring_best = np.zeros(0)
        self._ring_pos = 0
        self._ring_len = 0
        # per event (rows), grown at each event
        self._ev_step = np.zeros(0, np.int64)
        self._ev_pre_value = np.zeros((0, 0))
        self._ev_pre_best = np.zeros((0, 0))
        self._ev_post_value = np.zeros((0, 0))
        self._ev_post_best = np.zeros((0, 0))
        self._ev_bins = np.zeros(0, np.int64)  # post bins observed
        self._ev_open = np.zeros(0, bool)

    # ------------------------------------------------------------------ geometry
    @property
    def bin(self) -> int:
        """The bin size in user-steps (known once the first update set it)."""
        if self.bin_size is None:
            raise RuntimeError("the bin size is set by the first update() (or bin_size=...)")
        return self.bin_size

    @property
    def pre_bins(self) -> int:
        return -(-self.baseline // self.bin)

    @property
    def post_bins(self) -> int:
        return -(-self.horizon // self.bin)

    @property
    def sustain_bins(self) -> int:
        return -(-self.sustain // self.bin)

    def _start(self, batch: int) -> None:
        self.batch = batch
        if self.bin_size is None:
            self.bin_size = batch
        capacity = -(-self.baseline // batch)
        self._ring_step = np.zeros(capacity, np.int64)
        self._ring_value = np.zeros(capacity)
        self._ring_best = np.zeros(capacity)
        self._ev_pre_value = np.zeros((0, self.pre_bins))
        self._ev_pre_best = np.zeros((0, self.pre_bins))
        self._ev_post_value = np.zeros((0, self.post_bins))
        self._ev_post_best = np.zeros((0, self.post_bins))

    # ------------------------------------------------------------------ feeding
    def update(self, step: int, chosen: ArrayLike, best: ArrayLike, event: ArrayLike) -> None:
        """One vector step: ``step`` the step count after it (user-steps), ``chosen``/``best``
        ``(B,)`` expected rewards (:func:`chosen_and_best`), ``event`` its ``info["drift_event"]``
        (bool or ``(B,)``; any user)."""
        chosen = np.asarray(chosen, dtype=np.float64).reshape(-1)
        best = np.asarray(best, dtype=np.float64).reshape(-1)
        if chosen.shape != best.shape or chosen.size == 0:
            raise ValueError(
                f"chosen and best must be non-empty (B,) arrays of one shape, got {chosen.shape} "
                f"and {best.shape}"
            )
        step = int(step)
        if self.batch is None:
            self._start(chosen.size)
        elif chosen.size != self.batch:
            raise ValueError(
                f"batch of {chosen.size} users, but the tracker started with {self.batch}"
            )
        if self.last_step is not None and step <= self.last_step:
            raise ValueError(f"step={step} does not follow the previous step {self.last_step}")
        value_sum, best_sum = float(chosen.sum()), float(best.sum())
        if not (math.isfinite(value_sum) and math.isfinite(best_sum)):
            raise ValueError(f"chosen and best must be finite (step={step})")
        self.last_step = step

        # this step's rewards precede any drift it flags (the world ticks after the action)
        if self._ev_open.size and self._ev_open[-1]:
            d = step - int(self._ev_step[-1])
            j = (d - 1) // self.bin
            if j < self.post_bins:
                self._ev_post_value[-1, j] += value_sum
                self._ev_post_best[-1, j] += best_sum
                self._ev_bins[-1] = j + 1
            if d >= self.post_bins * self.bin:  # the horizon (whole bins) is complete
                self._ev_open[-1] = False
        cap = self._ring_step.size
        self._ring_step[self._ring_pos] = step
        self._ring_value[self._ring_pos] = value_sum
        self._ring_best[self._ring_pos] = best_sum
        self._ring_pos = (self._ring_pos + 1) % cap
        self._ring_len = min(self._ring_len + 1, cap)

        if np.any(np.asarray(event)):
            self._new_event(step)

    def _new_event(self, step: int) -> None:
        if self._ev_open.size:
            self._ev_open[-1] = False  # censored by this event
        n = self._ring_len
        ring_step, ring_value, ring_best = (
            self._ring_step[:n],
            self._ring_value[:n],
            self._ring_best[:n],
        )
        d = step - ring_step
        keep = d < self.baseline
        if self.prev_event_step is not None:
            keep &= ring_step > self.prev_event_step
        pre_value = np.zeros(self.pre_bins)
        pre_best = np.zeros(self.pre_bins)
        idx = d[keep] // self.bin
        np.add.at(pre_value, idx, ring_value[keep])
        np.add.at(pre_best, idx, ring_best[keep])
        self._ev_step = np.append(self._ev_step, step)
        self._ev_pre_value = np.vstack([self._ev_pre_value, pre_value])
        self._ev_pre_best = np.vstack([self._ev_pre_best, pre_best])
        self._ev_post_value = np.vstack([self._ev_post_value, np.zeros(self.post_bins)])
        self._ev_post_best = np.vstack([self._ev_post_best, np.zeros(self.post_bins)])
        self._ev_bins = np.append(self._ev_bins, 0)
        self._ev_open = np.append(self._ev_open, True)
        self.prev_event_step = step

    # ------------------------------------------------------------------ results
    @property
    def num_events(self) -> int:
        return int(self._ev_step.size)

    def _record(self, i: int) -> EventRecovery:
        b, m = self.bin, self.sustain_bins
        step = int(self._ev_step[i])
        observed = int(self._ev_bins[i])
        pre_best = float(self._ev_pre_best[i].sum())
        nan = float("nan")
        observed_steps = observed * b
        if pre_best <= 0.0 or observed < m:
            pre = float(self._ev_pre_value[i].sum()) / pre_best if pre_best > 0 else nan
            return EventRecovery(step, "undefined", pre, None, None, nan, nan, observed_steps)
        pre = float(self._ev_pre_value[i].sum()) / pre_best
        value = self._ev_post_value[i, :observed]
        best = self._ev_post_best[i, :observed]
        cv = np.concatenate(([0.0], np.cumsum(value)))
        cb = np.concatenate(([0.0], np.cumsum(best)))
        win_value = cv[m:] - cv[:-m]  # sustain windows starting at bins 0 .. observed - m
        win_best = cb[m:] - cb[:-m]
        with np.errstate(invalid="ignore", divide="ignore"):
            win_share = np.where(win_best > 0, win_value / win_best, np.nan)
        threshold = (1.0 - self.tolerance) * pre
        ok = win_share >= threshold
        drop = 1.0 - win_share[0] / pre if pre > 0 and np.isfinite(win_share[0]) else nan
        auc = cv[-1] / (pre * cb[-1]) if pre > 0 and cb[-1] > 0 else nan
        if ok[-1]:  # back at the end: recovered where the final run of good windows starts
            bad = np.flatnonzero(~ok)
            recovery = (int(bad[-1]) + 1 if bad.size else 0) * b
            return EventRecovery(step, "recovered", pre, recovery, None, drop, auc, observed_steps)
        censoring = (observed - m + 1) * b
        return EventRecovery(step, "censored", pre, None, censoring, drop, auc, observed_steps)

    def records(self) -> list[EventRecovery]:
        """One record per event so far (the open one with what has been observed of it)."""
        return [self._record(i) for i in range(self.num_events)]

    def summary(self, prefix: str = "lifelong/") -> dict[str, float]:
        """:data:`RECOVERY_KEYS` for this run (module doc)."""
        return summarize_recovery(self.records(), prefix=prefix)

    def curves(self) -> dict[str, np.ndarray]:
        """Event-aligned share-of-oracle curves, for plots and for pooling across runs.

        ``offsets`` ``(P + J,)``: user-steps since the event at the end of each bin (``<= 0``:
        the baseline, 0 = the bin that ends with the flagged step; ``> 0``: after the event);
        ``share`` ``(E, P + J)``: each event's share per bin (``nan`` where not observed: before
        the previous event, after the next one or the end of the run); ``relative``: ``share``
        divided by the event's ``pre_level``; ``mean_share``/``mean_relative`` ``(P + J,)``:
        means over the events observed in each bin (``nan`` where none); ``events`` ``(P + J,)``:
        how many; ``value``/``best`` ``(E, P + J)``: the sums behind ``share`` (``nan`` where not
        observed), so that curves can be re-binned exactly (:func:`rebin_curves`).
        """
        if self.bin_size is None:
            empty = np.zeros(0)
            return {
                "offsets": empty,
                "share": np.zeros((0, 0)),
                "relative": np.zeros((0, 0)),
                "mean_share": empty,
                "mean_relative": empty,
                "events": np.zeros(0, np.int64),
                "value": np.zeros((0, 0)),
                "best": np.zeros((0, 0)),
            }
        b, p, j = self.bin, self.pre_bins, self.post_bins
        offsets = np.concatenate((-np.arange(p - 1, -1, -1) * b, np.arange(1, j + 1) * b))
        value = np.concatenate((self._ev_pre_value[:, ::-1], self._ev_post_value), axis=1)
        best = np.concatenate((self._ev_pre_best[:, ::-1], self._ev_post_best), axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            share = np.where(best > 0, value / np.where(best > 0, best, 1.0), np.nan)
            pre = self._ev_pre_value.sum(axis=1) / self._ev_pre_best.sum(axis=1)
            relative = share / pre[:, None]
        observed = np.arange(j)[None, :] < self._ev_bins[:, None]
        share[:, p:][~observed] = np.nan
        relative[:, p:][~observed] = np.nan
        value = np.where(np.isfinite(share), value, np.nan)
        best = np.where(np.isfinite(share), best, np.nan)
        counts = np.sum(np.isfinite(share), axis=0)
        with np.errstate(invalid="ignore", divide="ignore"):
            mean_share = np.nansum(share, axis=0) / np.where(counts > 0, counts, np.nan)
            mean_rel_counts = np.sum(np.isfinite(relative), axis=0)
            mean_relative = np.nansum(relative, axis=0) / np.where(
                mean_rel_counts > 0, mean_rel_counts, np.nan
            )
        return {
            "offsets": offsets,
            "share": share,
            "relative": relative,
            "mean_share": mean_share,
            "mean_relative": mean_relative,
            "events": counts.astype(np.int64),
            "value": value,
            "best": best,
        }

    # ------------------------------------------------------------------ checkpoints
    def settings(self) -> dict[str, Any]:
        return {
            "baseline": self.baseline,
            "horizon": self.horizon,
            "sustain": self.sustain,
            "tolerance": self.tolerance,
            "bin_size": self.bin_size,
        }

    def state_dict(self) -> dict[str, Any]:
        """Everything to continue exactly: plain ints/floats/None, dicts and numpy arrays."""
        return {
            "settings": self.settings(),
            "batch": self.batch,
            "last_step": self.last_step,
            "prev_event_step": self.prev_event_step,
            "ring": {
                "step": self._ring_step.copy(),
                "value": self._ring_value.copy(),
                "best": self._ring_best.copy(),
                "pos": self._ring_pos,
                "len": self._ring_len,
            },
            "events": {
                "step": self._ev_step.copy(),
                "pre_value": self._ev_pre_value.copy(),
                "pre_best": self._ev_pre_best.copy(),
                "post_value": self._ev_post_value.copy(),
                "post_best": self._ev_post_best.copy(),
                "bins": self._ev_bins.copy(),
                "open": self._ev_open.copy(),
            },
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore :meth:`state_dict`. The settings must match this tracker's (a resumed run
        measuring differently would mix two definitions in one result)."""
        saved = dict(state["settings"])
        mine = self.settings()
        for key in ("baseline", "horizon", "sustain", "tolerance"):
            if saved[key] != mine[key]:
                raise ValueError(
                    f"RecoveryTracker state has {key}={saved[key]!r} but this tracker "
                    f"{key}={mine[key]!r}"
                )
        if mine["bin_size"] is not None and saved["bin_size"] not in (None, mine["bin_size"]):
            raise ValueError(
                f"RecoveryTracker state has bin_size={saved['bin_size']!r} but this tracker "
                f"bin_size={mine['bin_size']!r}"
            )
        self.bin_size = saved["bin_size"]
        self.batch = None if state["batch"] is None else int(state["batch"])
        self.last_step = None if state["last_step"] is None else int(state["last_step"])
        prev = state["prev_event_step"]
        self.prev_event_step = None if prev is None else int(prev)
        ring, ev = state["ring"], state["events"]
        self._ring_step = np.array(ring["step"], dtype=np.int64)
        self._ring_value = np.array(ring["value"], dtype=np.float64)
        self._ring_best = np.array(ring["best"], dtype=np.float64)
        self._ring_pos, self._ring_len = int(ring["pos"]), int(ring["len"])
        self._ev_step = np.array(ev["step"], dtype=np.int64)
        self._ev_pre_value = np.array(ev["pre_value"], dtype=np.float64)
        self._ev_pre_best = np.array(ev["pre_best"], dtype=np.float64)
        self._ev_post_value = np.array(ev["post_value"], dtype=np.float64)
        self._ev_post_best = np.array(ev["post_best"], dtype=np.float64)
        self._ev_bins = np.array(ev["bins"], dtype=np.int64)
        self._ev_open = np.array(ev["open"], dtype=bool)


def rebin_curves(
    offsets: ArrayLike, value: ArrayLike, best: ArrayLike, width: int
) -> tuple[np.ndarray, np.ndarray]:
    """Event-aligned curves (:meth:`RecoveryTracker.curves`) on coarser bins of ``width``
    user-steps: ``(offsets (K,), share (E, K))``, each coarse bin's share the ratio of its sums
    over the observed fine bins (``nan`` where none was observed). Coarse bins end at multiples of
    ``width`` since the event (the one ending at 0 is the last pre-event bin)."""
    off = np.asarray(offsets, dtype=np.int64).reshape(-1)
    val = np.atleast_2d(np.asarray(value, dtype=np.float64))
    bst = np.atleast_2d(np.asarray(best, dtype=np.float64))
    width = check_positive_int("width", width)
    if val.shape != bst.shape or (off.size and val.shape[1] != off.size):
        raise ValueError(
            f"value {val.shape} and best {bst.shape} must be (E, {off.size}) like offsets"
        )
    if off.size == 0:
        return np.zeros(0, np.int64), np.zeros((val.shape[0], 0))
    coarse = -(-off // width) * width  # the coarse bin a fine bin falls in, by its end
    grid, idx = np.unique(coarse, return_inverse=True)
    seen = np.isfinite(val) & np.isfinite(bst)
    sums_v = np.zeros((val.shape[0], grid.size))
    sums_b = np.zeros((val.shape[0], grid.size))
    count = np.zeros((val.shape[0], grid.size))
    for sums, data in ((sums_v, np.where(seen, val, 0.0)), (sums_b, np.where(seen, bst, 0.0))):
        np.add.at(sums.T, idx, data.T)  # views: the sums are filled in place
    np.add.at(count.T, idx, seen.astype(np.float64).T)
    with np.errstate(invalid="ignore", divide="ignore"):
        share = np.where((count > 0) & (sums_b > 0), sums_v / sums_b, np.nan)
    return grid, share
