"""Recurring regimes (seasonal drift): regime visits, forgetting and plasticity.

Pure numpy over a logged reward stream and the regime id of each sample (``info["drift_phase"]``);
conventions as in :mod:`experiments.analysis.lifelong`.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

from experiments.analysis.series import _as_events, _as_steps, _as_values, _check_window, _nanmean

__all__ = [
    "ForgettingRecord",
    "ForgettingReport",
    "PlasticityRecord",
    "PlasticityReport",
    "RegimeVisit",
    "forgetting",
    "phase_change_steps",
    "plasticity",
    "regime_visits",
]


def _as_phases(phases: ArrayLike, n: int) -> np.ndarray:
    arr = np.asarray(phases)
    if arr.ndim != 1:
        raise ValueError(
            "phases must be 1-D (one regime id per step); reduce a vector env's (T, B) "
            f"info['drift_phase'] first, e.g. phases[:, 0] for population drift; "
            f"got shape {arr.shape}"
        )
    if arr.shape[0] != n:
        raise ValueError(f"phases has {arr.shape[0]} values but steps has {n}")
    return arr.astype(np.int64)


def phase_change_steps(steps: ArrayLike, phases: ArrayLike) -> np.ndarray:
    """Steps at which the regime id differs from the previous sample's (never the first sample)."""
    st = _as_steps(steps)
    ph = _as_phases(phases, st.size)
    return st[1:][ph[1:] != ph[:-1]]


@dataclass(frozen=True)
class RegimeVisit:
    """A maximal run of consecutive samples with the same regime id.

    ``visit_index`` counts this regime's visits (0 = first visit, k = its k-th return);
    ``start``/``stop`` slice the sample arrays; ``start_step``/``end_step`` are the first and last
    sample steps of the run.
    """

    regime: int
    visit_index: int
    start: int
    stop: int
    start_step: int
    end_step: int


def regime_visits(steps: ArrayLike, phases: ArrayLike) -> list[RegimeVisit]:
    """Split the stream into regime visits (runs of equal ``info["drift_phase"]``), in order."""
    st = _as_steps(steps)
    ph = _as_phases(phases, st.size)
    if st.size == 0:
        return []
    bounds = np.concatenate(([0], np.flatnonzero(ph[1:] != ph[:-1]) + 1, [st.size]))
    seen: dict[int, int] = {}
    visits = []
    for a, b in itertools.pairwise(bounds):
        regime = int(ph[a])
        k = seen.get(regime, 0)
        seen[regime] = k + 1
        visits.append(RegimeVisit(regime, k, int(a), int(b), int(st[a]), int(st[b - 1])))
    return visits


@dataclass(frozen=True)
class ForgettingRecord:
    """One return of a regime compared with its first visit.

    ``reference_level``: mean reward over the last ``window`` steps of the regime's first visit
    (what the agent had learned). ``return_level``: mean reward over the first ``window`` steps of
    its ``return_index``-th return (what it still knew). ``forgetting = reference - return``
    (divided by ``|reference|`` when relative): positive = forgot, ≤ 0 = retained (or transferred).
    """

    regime: int
    return_index: int
    start_step: int
    reference_level: float
    return_level: float
    forgetting: float


@dataclass(frozen=True)
class ForgettingReport:
    """Per-return records; ``mean`` over all returns and ``per_regime`` means (``nan`` if none)."""

    records: tuple[ForgettingRecord, ...]

    @property
    def mean(self) -> float:
        return _nanmean([r.forgetting for r in self.records])

    @property
    def per_regime(self) -> dict[int, float]:
        regimes = sorted({r.regime for r in self.records})
        return {g: _nanmean([r.forgetting for r in self.records if r.regime == g]) for g in regimes}

    @property
    def num_returns(self) -> int:
        return len(self.records)


def forgetting(
    steps: ArrayLike,
    rewards: ArrayLike,
    phases: ArrayLike,
    *,
    window: int,
    relative: bool = False,
) -> ForgettingReport:
    """Forgetting on recurring regimes: end of first visit vs start of each later return.

    ``phases`` is the regime id per sample (``info["drift_phase"]``). For every regime visited more
    than once and every return ``k >= 1``, see :class:`ForgettingRecord`. Comparing the *start* of a
    return with the *end* of the first visit isolates what was kept: an agent that retains its
    knowledge earns its old level at once; one that overwrote it must relearn.
    """
    st = _as_steps(steps)
    rw = _as_values(rewards, st.size, "rewards")
    window = _check_window(window)
    visits = regime_visits(st, phases)
    first: dict[int, float] = {}
    records = []
    for v in visits:
        vs, vr = st[v.start : v.stop], rw[v.start : v.stop]
        if v.visit_index == 0:
            first[v.regime] = float(vr[vs > v.end_step - window].mean())
            continue
        ref = first[v.regime]
        ret = float(vr[vs < v.start_step + window].mean())
        value = ref - ret
        if relative:
            value = value / abs(ref) if ref != 0 else float("nan")
        records.append(ForgettingRecord(v.regime, v.visit_index, v.start_step, ref, ret, value))
    return ForgettingReport(tuple(records))


@dataclass(frozen=True)
class PlasticityRecord:
    """Reward slope over the first ``horizon`` steps of one segment (a regime visit).

    ``regime`` is ``None`` when segments come from event steps rather than regime ids. ``initial``:
    the segment that opens the stream (learning from scratch, not adaptation after a change).
    ``first_visit``: the regime had not been seen before (always true for event segments).
    ``slope_per_1k``: OLS slope of reward against step × ``per`` (``nan`` with < 2 samples).
    """

    regime: int | None
    start_step: int
    initial: bool
    first_visit: bool
    num_samples: int
    slope_per_1k: float


@dataclass(frozen=True)
class PlasticityReport:
    """``mean_per_1k``: mean slope over the segments that start at a change (``initial`` excluded);
    ``fresh_mean_per_1k``: the same over first visits only (regimes never seen before)."""

    records: tuple[PlasticityRecord, ...]

    @property
    def mean_per_1k(self) -> float:
        return _nanmean([r.slope_per_1k for r in self.records if not r.initial])

    @property
    def fresh_mean_per_1k(self) -> float:
        return _nanmean([r.slope_per_1k for r in self.records if not r.initial and r.first_visit])


def _ols_slope(x: np.ndarray, y: np.ndarray) -> float:
    if x.size < 2:
        return float("nan")
    xc = x - x.mean()
    den = float(np.dot(xc, xc))
    return float(np.dot(xc, y - y.mean()) / den) if den > 0 else float("nan")


def plasticity(
    steps: ArrayLike,
    rewards: ArrayLike,
    *,
    horizon: int,
    phases: ArrayLike | None = None,
    event_steps: ArrayLike | None = None,
    per: int = 1000,
) -> PlasticityReport:
    """Reward gained per ``per`` (1k) steps early in each regime: how fast the agent still learns.

    Segments are the regime visits of ``phases`` if given, else the stretches between
    ``event_steps`` (else the whole stream). In each, the OLS slope of reward against step is fitted
    over the samples with step in ``[start, start + horizon)``. A plastic agent climbs fast after a
    change; one that has lost plasticity (saturated units, an exploration rate decayed to zero)
    stays flat.
    """
    st = _as_steps(steps)
    rw = _as_values(rewards, st.size, "rewards")
    horizon = _check_window(horizon, "horizon")
    if st.size == 0:
        return PlasticityReport(())
    segments: list[tuple[int | None, int, int, bool]] = []  # (regime, start, stop, first_visit)
    if phases is not None:
        for v in regime_visits(st, phases):
            segments.append((v.regime, v.start, v.stop, v.visit_index == 0))
    else:
        events = _as_events(event_steps)
        cuts = np.searchsorted(st, events, side="left")
        cuts = np.unique(np.concatenate(([0], cuts[(cuts > 0) & (cuts < st.size)], [st.size])))
        for a, b in itertools.pairwise(cuts):
            segments.append((None, int(a), int(b), True))
    records = []
    for regime, a, b, first in segments:
        seg_s, seg_r = st[a:b], rw[a:b]
        keep = seg_s < seg_s[0] + horizon
        x = (seg_s[keep] - seg_s[0]).astype(np.float64)
        slope = _ols_slope(x, seg_r[keep]) * per
        records.append(PlasticityRecord(regime, int(seg_s[0]), a == 0, first, int(x.size), slope))
    return PlasticityReport(tuple(records))
