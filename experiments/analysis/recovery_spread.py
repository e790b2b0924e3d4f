"""How much recovery times differ between worlds, and which agent differences the data separate.

Why (issue 23): a run's recovery time (the Kaplan–Meier mean over its drift events,
:mod:`experiments.analysis.recovery_records`) rests on a handful of events, most of which do not
hurt at all (time 0) while a few take 20k+ user-steps. With 10 events per world the per-world
value of one agent varied more between worlds than between agents, so an unpaired table of
means over 5 worlds can claim differences its data do not hold. This module answers, from a
table of events (one row per defined event: ``group``, ``world``, ``time``, ``recovered`` and,
optionally, ``event``: the event's step, which names the same drift event for every agent of a
world):

- :func:`world_spread`: per group, the per-world KM mean and median and the number of events, the
  between-world spread of the KM mean (median, IQR, range, max / min, SD), and a split of that
  spread into the part that more events per world would remove (``event_var``: the variance of
  one event's contribution, from a bootstrap over the events of each world) and the part they
  would not (``world_var``: what is left of the between-world variance, floored at 0);
- :func:`separation`: A vs B paired by world (a world seed is the same world, and the same
  sequence of jumps — the drift has its own RNG — for every agent): the mean over worlds of
  ``KM mean(A) − KM mean(B)`` with a **hierarchical bootstrap** CI (resample worlds, then the
  events within each drawn world — the same events for A and B when the rows name them, since a
  jump that hurts one agent tends to hurt the other). ``separable`` = that CI excludes 0. The
  two-stage bootstrap counts the event noise twice (it is already in the per-world values), so
  it is conservative; a bootstrap over 5 worlds alone is optimistic (its CI cannot reach past
  the extreme worlds). Also ``spread_below_diff``: the issue's criterion, both agents'
  between-world SD below ``|A − B|``;
- :func:`events_needed`: the events per world for a target SD of the per-world value, from
  ``var(per-world value) ≈ world_var + event_var / n`` (``inf`` when ``world_var`` alone exceeds
  it: then more events cannot help, only pairing or more worlds); :func:`separation` applies it
  to the paired difference at the CI's confidence (``events_to_separate``: for a test that counts
  the event noise once, as expected of the per-world values; the two-stage bootstrap, which
  counts it twice, may need up to twice as many) and to the spread criterion
  (``events_for_spread``).

Where the event records of one side are gone (run dirs do not survive; a committed report keeps
per-world KM means and their bootstrap SEs), :func:`separation_from_means` gives the same
two-stage CI from those numbers alone: worlds resampled, each drawn world's difference perturbed
by a normal with the two SEs combined as if independent (a jump that hurts one agent tends to hurt
the other, so the paired event bootstrap is usually narrower: this is the more conservative).

The KM mean is the restricted mean up to the largest time, as everywhere in the project; the
bootstrap evaluates it on resampled events exactly (:func:`km_means_weighted`, checked against
:func:`~experiments.analysis.recovery_records.km_restricted_mean`).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from itertools import combinations
from typing import Any

import numpy as np
from numpy.typing import ArrayLike
from scipy import stats as scipy_stats

from experiments.analysis.recovery_records import EventRecovery, km_median, km_restricted_mean

__all__ = [
    "event_rows",
    "events_needed",
    "km_means_weighted",
    "recovery_spread",
    "separation",
    "separation_from_means",
    "world_spread",
]

Row = Mapping[str, Any]


def event_rows(
    group: str, world: Any, records: Iterable[EventRecovery | Mapping[str, Any]]
) -> list[dict[str, Any]]:
    """Rows of the event table from one run's records (``recovery.npz`` ``records``, or
    :class:`EventRecovery`); undefined events are left out (they have no time)."""
    rows = []
    for r in records:
        rec = r if isinstance(r, EventRecovery) else EventRecovery(**dict(r))
        if rec.status == "undefined":
            continue
        rows.append(
            {
                "group": group,
                "world": world,
                "event": int(rec.event_step),
                "time": float(rec.time or 0),
                "recovered": rec.status == "recovered",
            }
        )
    return rows


def km_means_weighted(times: ArrayLike, recovered: ArrayLike, weights: ArrayLike) -> np.ndarray:
    """KM restricted means of ``m`` reweightings of one set of events at once.

    ``weights`` ``(m, n)``: how often each of the ``n`` events is drawn in each resample (a
    bootstrap's counts). Equal to :func:`km_restricted_mean` of the events repeated by their
    counts: a segment of the KM curve counts while some drawn event is at or beyond its end, so
    the mean stops at the largest *drawn* time. ``nan`` for an empty resample.
    """
    t = np.asarray(times, dtype=np.float64).reshape(-1)
    e = np.asarray(recovered, dtype=bool).reshape(-1)
    w = np.atleast_2d(np.asarray(weights, dtype=np.float64))
    if t.shape != e.shape or w.shape[1] != t.size:
        raise ValueError(f"times {t.shape}, recovered {e.shape} and weights {w.shape} disagree")
    grid, inverse = np.unique(t, return_inverse=True)
    onehot = np.zeros((t.size, grid.size))
    onehot[np.arange(t.size), inverse] = 1.0
    at_time = w @ onehot
    deaths = (w * e) @ onehot
    at_risk = w.sum(axis=1, keepdims=True) - np.cumsum(at_time, axis=1) + at_time
    hazard = np.divide(deaths, at_risk, out=np.zeros_like(deaths), where=at_risk > 0)
    survival = np.cumprod(1.0 - hazard, axis=1)
    before = np.concatenate([np.ones((w.shape[0], 1)), survival[:, :-1]], axis=1)
    widths = np.diff(np.concatenate(([0.0], grid)))
    out = np.sum(before * widths * (at_risk > 0), axis=1)
    return np.where(w.sum(axis=1) > 0, out, np.nan)


def events_needed(event_var: float, world_var: float, target_sd: float) -> float:
    """Smallest ``n`` with ``sqrt(world_var + event_var / n) <= target_sd``; ``inf`` if none
    (the world part alone is that large, or the target is 0), ``nan`` if unknown."""
    if not all(math.isfinite(x) for x in (event_var, world_var, target_sd)):
        return math.nan
    room = target_sd**2 - world_var
    if room <= 0:
        return math.inf
    return float(max(1, math.ceil(event_var / room)))


# --------------------------------------------------------------------------------------------------
# per group: the worlds
# --------------------------------------------------------------------------------------------------
def _by_group_world(rows: Iterable[Row]) -> dict[str, dict[Any, tuple[np.ndarray, np.ndarray]]]:
    table: dict[str, dict[Any, tuple[list[float], list[bool]]]] = {}
    for r in rows:
        time = float(r["time"])
        if not (math.isfinite(time) and time >= 0):
            raise ValueError(f"invalid time={r['time']!r} (allowed: a number >= 0, user-steps)")
        t, e = table.setdefault(str(r["group"]), {}).setdefault(r["world"], ([], []))
        t.append(time)
        e.append(bool(r["recovered"]))
    return {
        g: {w: (np.array(t), np.array(e, dtype=bool)) for w, (t, e) in worlds.items()}
        for g, worlds in table.items()
    }


def _resample_pool(
    times: np.ndarray, recovered: np.ndarray, size: int, rng: np.random.Generator
) -> np.ndarray:
    """``size`` bootstrap resamples of one world's events: their KM means."""
    n = times.size
    counts = rng.multinomial(n, np.full(n, 1.0 / n), size=size)
    return km_means_weighted(times, recovered, counts)


def world_spread(rows: Iterable[Row], *, reps: int = 1000, seed: int = 0) -> dict[str, Any]:
    """Per group (module doc): ``worlds`` (per world: ``events``, ``recovered``, ``km_mean``,
    ``km_median``, ``se``: bootstrap SE of its KM mean over its events) and the between-world
    ``n_worlds``, ``mean``, ``median``, ``q25``, ``q75``, ``iqr``, ``min``, ``max``, ``range``,
    ``ratio`` (max / min: ``inf`` when the fastest world reads 0), ``sd`` (ddof 1),
    ``event_var``, ``world_var``. Worlds sorted; ``nan`` where a statistic needs 2 worlds."""
    rng = np.random.default_rng(seed)
    out: dict[str, Any] = {}
    for group, worlds in sorted(_by_group_world(rows).items()):
        per_world, means, boot_var, event_var = [], [], [], []
        for world in sorted(worlds, key=lambda w: (str(type(w)), w)):
            t, e = worlds[world]
            mean = km_restricted_mean(t, e)
            var = float(np.nanvar(_resample_pool(t, e, reps, rng), ddof=1)) if t.size > 1 else 0.0
            per_world.append(
                {
                    "world": world,
                    "events": int(t.size),
                    "recovered": int(e.sum()),
                    "km_mean": mean,
                    "km_median": km_median(t, e),
                    "se": math.sqrt(var),
                }
            )
            means.append(mean)
            boot_var.append(var)
            event_var.append(var * t.size)
        m = np.array(means)
        two = m.size >= 2
        lo, hi = float(m.min()), float(m.max())
        sd = float(np.std(m, ddof=1)) if two else math.nan
        out[group] = {
            "worlds": per_world,
            "n_worlds": int(m.size),
            "events": [w["events"] for w in per_world],
            "mean": float(m.mean()),
            "median": float(np.median(m)),
            "q25": float(np.percentile(m, 25)),
            "q75": float(np.percentile(m, 75)),
            "iqr": float(np.subtract(*np.percentile(m, [75, 25]))),
            "min": lo,
            "max": hi,
            "range": hi - lo,
            "ratio": hi / lo if lo > 0 else (math.inf if hi > 0 else math.nan),
            "sd": sd,
            "event_var": float(np.mean(event_var)),
            "world_var": max(0.0, sd**2 - float(np.mean(boot_var))) if two else math.nan,
        }
    return out


# --------------------------------------------------------------------------------------------------
# pairs
# --------------------------------------------------------------------------------------------------
def _paired_events(
    rows_a: Sequence[Row], rows_b: Sequence[Row]
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray] | None:
    """One world's events of A and B aligned by ``event`` (the same drift event: on a seeded
    world the jumps come from the world's own RNG, the same for every agent), or ``None`` when
    they are not the same set of events."""
    ids_a = [r.get("event") for r in rows_a]
    ids_b = [r.get("event") for r in rows_b]
    if None in ids_a or len(set(ids_a)) != len(ids_a) or set(ids_a) != set(ids_b):
        return None
    order_b = {e: i for i, e in enumerate(ids_b)}
    idx = [order_b[e] for e in ids_a]
    ta = np.array([float(r["time"]) for r in rows_a])
    ea = np.array([bool(r["recovered"]) for r in rows_a])
    tb = np.array([float(rows_b[i]["time"]) for i in idx])
    eb = np.array([bool(rows_b[i]["recovered"]) for i in idx])
    return ta, ea, tb, eb


def _diff_pool(
    rows_a: Sequence[Row], rows_b: Sequence[Row], size: int, rng: np.random.Generator
) -> tuple[np.ndarray, bool]:
    """``size`` bootstrap resamples of one world's ``KM mean(A) − KM mean(B)``: the same events
    drawn for both when they share them (:func:`_paired_events`), else each its own."""
    paired = _paired_events(rows_a, rows_b)
    if paired is not None:
        ta, ea, tb, eb = paired
        counts = rng.multinomial(ta.size, np.full(ta.size, 1.0 / ta.size), size=size)
        return km_means_weighted(ta, ea, counts) - km_means_weighted(tb, eb, counts), True
    pools = []
    for part in (rows_a, rows_b):
        t = np.array([float(r["time"]) for r in part])
        e = np.array([bool(r["recovered"]) for r in part])
        pools.append(_resample_pool(t, e, size, rng))
    return pools[0] - pools[1], False


def separation(
    rows: Iterable[Row],
    a: str,
    b: str,
    *,
    reps: int = 2000,
    confidence: float = 0.95,
    seed: int = 0,
) -> dict[str, Any]:
    """A vs B paired by world, with the hierarchical bootstrap (module doc). Keys: ``worlds``
    (both have), ``diff`` (mean over them of A − B, user-steps; < 0: A recovers faster),
    ``ci_diff``, ``separable``, ``a_faster`` (worlds where A's KM mean is lower),
    ``paired_events`` (the events were resampled jointly in every world: rows carry ``event``,
    the same drift events for both), ``sd_a``, ``sd_b`` (between-world SDs on those worlds),
    ``spread_below_diff``, ``events`` (median events per world), ``events_to_separate`` and
    ``events_for_spread`` (events per world, module doc)."""
    table = list(rows)
    by = _by_group_world(table)
    for name in (a, b):
        if name not in by:
            raise ValueError(f"invalid group={name!r} (allowed: {sorted(by)})")
    worlds = sorted(set(by[a]) & set(by[b]), key=lambda w: (str(type(w)), w))
    nan2 = [math.nan, math.nan]
    if not worlds:
        return {"worlds": 0, "diff": math.nan, "ci_diff": nan2, "separable": False}
    spread = world_spread(
        [r for r in table if r["group"] in (a, b) and r["world"] in worlds], reps=reps, seed=seed
    )
    sa, sb = spread[a], spread[b]
    ma = np.array([w["km_mean"] for w in sa["worlds"]])
    mb = np.array([w["km_mean"] for w in sb["worlds"]])
    n_w = len(worlds)
    rng = np.random.default_rng(seed)
    pools, all_paired = [], True
    for w in worlds:
        rows_a = [r for r in table if r["group"] == a and r["world"] == w]
        rows_b = [r for r in table if r["group"] == b and r["world"] == w]
        pool, paired = _diff_pool(rows_a, rows_b, reps * n_w, rng)
        pools.append(pool)
        all_paired &= paired
    pool_arr = np.stack(pools)  # (worlds, reps * worlds)
    pick = rng.integers(0, n_w, size=(reps, n_w))
    boot = pool_arr[pick, np.arange(reps * n_w).reshape(reps, n_w)].mean(axis=1)
    alpha = 100 * (1 - confidence) / 2
    ci = [float(v) for v in np.nanpercentile(boot, [alpha, 100 - alpha])]
    diff = float(np.mean(ma - mb))
    # the paired difference's variance: an event part (more events shrink it) and a world part
    boot_var = np.nanvar(pool_arr, axis=1, ddof=1)
    n_events = np.array([w["events"] for w in sa["worlds"]], dtype=np.float64)
    event_var_diff = float(np.mean(boot_var * n_events))
    if n_w >= 2:
        world_var_diff = max(0.0, float(np.var(ma - mb, ddof=1)) - float(boot_var.mean()))
    else:
        world_var_diff = math.nan
    z = float(scipy_stats.norm.ppf(0.5 + confidence / 2))
    return {
        **_comparison(ma, mb, ci, sa["sd"], sb["sd"], all_paired),
        "events": float(np.median(sa["events"] + sb["events"])),
        # n with z * sqrt((world_var_diff + event_var_diff / n) / W) <= |diff|
        "events_to_separate": events_needed(
            event_var_diff, world_var_diff, abs(diff) * math.sqrt(n_w) / z
        ),
        "events_for_spread": max(
            events_needed(sa["event_var"], sa["world_var"], abs(diff)),
            events_needed(sb["event_var"], sb["world_var"], abs(diff)),
        ),
    }


def recovery_spread(
    rows: Iterable[Row],
    pairs: Sequence[tuple[str, str]] | None = None,
    *,
    reps: int = 2000,
    confidence: float = 0.95,
    seed: int = 0,
) -> dict[str, Any]:
    """Both views over one event table: ``{"groups": world_spread(...), "pairs": [...]}``, the
    pairs given (default: every pair of groups with at least 2 worlds each), each
    :func:`separation`'s dict with ``a`` and ``b``."""
    table = list(rows)
    groups = world_spread(table, reps=reps, seed=seed)
    if pairs is None:
        several = [g for g, s in groups.items() if s["n_worlds"] >= 2]
        pairs = list(combinations(several, 2))
    out = []
    for a, b in pairs:
        if a in groups and b in groups:
            res = separation(table, a, b, reps=reps, confidence=confidence, seed=seed)
            out.append({"a": a, "b": b, **res})
    return {"groups": groups, "pairs": out, "confidence": confidence, "reps": reps}


def separation_from_means(
    a: Mapping[Any, tuple[float, float]],
    b: Mapping[Any, tuple[float, float]],
    *,
    reps: int = 2000,
    confidence: float = 0.95,
    seed: int = 0,
) -> dict[str, Any]:
    """A vs B paired by world from per-world ``(KM mean, SE of it)`` only (module doc): keys as
    :func:`separation` (``paired_events`` False) without the events-needed estimates, which need
    the events. The CI: worlds resampled, then each drawn world's ``A − B`` drawn from
    ``N(mean_a − mean_b, se_a² + se_b²)``; with both SEs 0 it is the bootstrap over worlds alone."""
    worlds = sorted(set(a) & set(b), key=lambda w: (str(type(w)), w))
    nan2 = [math.nan, math.nan]
    if not worlds:
        return {"worlds": 0, "diff": math.nan, "ci_diff": nan2, "separable": False}
    for name, side in (("a", a), ("b", b)):
        for w in worlds:
            mean, se = side[w]
            if not (math.isfinite(mean) and math.isfinite(se) and se >= 0):
                raise ValueError(f"invalid {name}[{w!r}]={side[w]!r} (allowed: (mean, se >= 0))")
    ma = np.array([a[w][0] for w in worlds], dtype=np.float64)
    mb = np.array([b[w][0] for w in worlds], dtype=np.float64)
    se_d = np.sqrt(np.array([a[w][1] ** 2 + b[w][1] ** 2 for w in worlds], dtype=np.float64))
    d = ma - mb
    rng = np.random.default_rng(seed)
    pick = rng.integers(0, d.size, size=(reps, d.size))
    boot = (d[pick] + rng.standard_normal((reps, d.size)) * se_d[pick]).mean(axis=1)
    alpha = 100 * (1 - confidence) / 2
    ci = [float(v) for v in np.percentile(boot, [alpha, 100 - alpha])]
    two = d.size >= 2
    sd_a = float(np.std(ma, ddof=1)) if two else math.nan
    sd_b = float(np.std(mb, ddof=1)) if two else math.nan
    return _comparison(ma, mb, ci, sd_a, sd_b, paired_events=False)


def _comparison(
    ma: np.ndarray, mb: np.ndarray, ci: list[float], sd_a: float, sd_b: float, paired_events: bool
) -> dict[str, Any]:
    """The keys :func:`separation` and :func:`separation_from_means` share, from the per-world KM
    means of A and B (same worlds, same order) and the CI of their mean difference."""
    diff = float(np.mean(ma - mb))
    return {
        "worlds": int(ma.size),
        "diff": diff,
        "ci_diff": ci,
        "separable": bool(ci[0] > 0 or ci[1] < 0),
        "a_faster": int(np.sum(ma < mb)),
        "paired_events": paired_events,
        "sd_a": sd_a,
        "sd_b": sd_b,
        "spread_below_diff": bool(max(sd_a, sd_b) < abs(diff)) if ma.size >= 2 else False,
    }
