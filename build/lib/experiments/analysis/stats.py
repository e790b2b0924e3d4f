"""Statistics for comparing agents over a few seeds (Agarwal et al., 2021, "Deep RL at the edge of
the statistical precipice"; the ``rliable`` library).

Why not call rliable directly: its bootstrap draws from numpy's *global* RNG (``np.random.choice``
inside ``StratifiedBootstrap``), which this project never relies on, and it needs equally many runs
per task. The functions here compute the same quantities with an explicit ``np.random.Generator``,
vectorised over bootstrap replications; ``tests/experiments/test_compare.py`` checks them against
rliable.

Scores are given per *task* (stratum): a sequence of 1-D arrays, one per task, each holding one
score per run (seed). With a single task, the stratified bootstrap is the ordinary bootstrap over
seeds. Aggregates follow rliable: ``mean`` is the mean over tasks of the per-task mean over runs;
``iqm`` is the 25 % trimmed mean over all runs of all tasks pooled; ``median`` is the median over
tasks of the per-task means (so with one task it equals the mean, as in rliable).
Confidence intervals are percentile intervals (rliable's default method).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
from scipy import stats as scipy_stats

Scores = Sequence[np.ndarray]  # one 1-D array of run scores per task
Aggregate = Callable[[list[np.ndarray]], np.ndarray]  # per-task (reps, n_m) arrays -> (reps,)


def as_tasks(scores: np.ndarray | Sequence[float] | Scores) -> list[np.ndarray]:
    """Normalise input: a flat array = one task; a 2-D array ``(runs, tasks)`` = rliable's layout."""
    if isinstance(scores, np.ndarray) and scores.ndim == 2:
        return [np.asarray(scores[:, m], dtype=np.float64) for m in range(scores.shape[1])]
    if len(scores) and all(np.ndim(s) == 1 for s in scores):
        return [np.asarray(s, dtype=np.float64) for s in scores]
    return [np.asarray(scores, dtype=np.float64).reshape(-1)]


def iqm(values: np.ndarray, axis: int | None = None) -> np.ndarray:
    """Interquartile mean: the mean of the middle 50 % (``scipy.stats.trim_mean(x, 0.25)``)."""
    return scipy_stats.trim_mean(values, proportiontocut=0.25, axis=axis)


def _agg_mean(tasks: list[np.ndarray]) -> np.ndarray:
    return np.mean([t.mean(axis=1) for t in tasks], axis=0)


def _agg_iqm(tasks: list[np.ndarray]) -> np.ndarray:
    return iqm(np.concatenate(tasks, axis=1), axis=1)


def _agg_median(tasks: list[np.ndarray]) -> np.ndarray:
    return np.median([t.mean(axis=1) for t in tasks], axis=0)


AGGREGATES: dict[str, Aggregate] = {"mean": _agg_mean, "iqm": _agg_iqm, "median": _agg_median}


def aggregate(scores: np.ndarray | Scores, statistic: str = "mean") -> float:
    """The point estimate of ``statistic`` (``mean`` | ``iqm`` | ``median``) over all runs."""
    tasks = as_tasks(scores)
    return float(AGGREGATES[statistic]([t.reshape(1, -1) for t in tasks])[0])


def stratified_bootstrap_ci(
    scores: np.ndarray | Scores,
    statistic: str = "mean",
    *,
    reps: int = 10_000,
    confidence: float = 0.95,
    rng: np.random.Generator | int | None = 0,
) -> tuple[float, float]:
    """Percentile CI of ``statistic``: runs are resampled with replacement within each task.

    Returns ``(nan, nan)`` when a task has fewer than 2 runs: a CI from one seed would be a lie.
    """
    tasks = as_tasks(scores)
    if any(len(t) < 2 for t in tasks):
        return (float("nan"), float("nan"))
    rng = np.random.default_rng(rng)
    resampled = [t[rng.integers(0, len(t), size=(reps, len(t)))] for t in tasks]
    boot = AGGREGATES[statistic](resampled)
    alpha = 100 * (1 - confidence) / 2
    lo, hi = np.percentile(boot, [alpha, 100 - alpha])
    return float(lo), float(hi)


def _poi_batch(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """P(X > Y) + ½ P(X = Y) for batches ``x (reps, n)``, ``y (reps, m)`` → ``(reps,)``.

    The Mann–Whitney U statistic divided by n·m, as in ``rliable.metrics.probability_of_improvement``.
    """
    gt = (x[:, :, None] > y[:, None, :]).mean(axis=(1, 2))
    eq = (x[:, :, None] == y[:, None, :]).mean(axis=(1, 2))
    return gt + 0.5 * eq


def probability_of_improvement(x: np.ndarray | Scores, y: np.ndarray | Scores) -> float:
    """P(X > Y) averaged over tasks: the chance that a run of X beats a run of Y on the same task."""
    tx, ty = as_tasks(x), as_tasks(y)
    if len(tx) != len(ty):
        raise ValueError(f"x has {len(tx)} tasks and y {len(ty)}: they must match")
    return float(
        np.mean(
            [_poi_batch(a.reshape(1, -1), b.reshape(1, -1))[0] for a, b in zip(tx, ty, strict=True)]
        )
    )


def probability_of_improvement_ci(
    x: np.ndarray | Scores,
    y: np.ndarray | Scores,
    *,
    reps: int = 2_000,
    confidence: float = 0.95,
    rng: np.random.Generator | int | None = 0,
) -> tuple[float, float]:
    """Percentile CI of :func:`probability_of_improvement`; X's and Y's runs resampled independently
    within each task (rliable's ``StratifiedIndependentBootstrap``). ``(nan, nan)`` below 2 runs."""
    tx, ty = as_tasks(x), as_tasks(y)
    if any(len(t) < 2 for t in (*tx, *ty)):
        return (float("nan"), float("nan"))
    rng = np.random.default_rng(rng)
    per_task = []
    for a, b in zip(tx, ty, strict=True):
        xa = a[rng.integers(0, len(a), size=(reps, len(a)))]
        yb = b[rng.integers(0, len(b), size=(reps, len(b)))]
        per_task.append(_poi_batch(xa, yb))
    boot = np.mean(per_task, axis=0)
    alpha = 100 * (1 - confidence) / 2
    lo, hi = np.percentile(boot, [alpha, 100 - alpha])
    return float(lo), float(hi)


def paired_comparison(
    a: np.ndarray,
    b: np.ndarray,
    *,
    reps: int = 10_000,
    confidence: float = 0.95,
    rng: np.random.Generator | int | None = 0,
    lower_is_better: bool = False,
) -> dict[str, float | int | list[float]]:
    """Runs of A and B paired by seed (the same world): the mean difference ``A − B`` and the mean
    ratio ``A / B`` over pairs, each with a percentile bootstrap CI over pairs, and on how many
    pairs A is better (higher, or lower with ``lower_is_better``).

    Why: when seeds are worlds whose scores differ a lot, the unpaired CIs keep that spread and the
    paired ones remove it. The ratio is left out (NaN) unless every B is positive.
    """
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    n = len(a)
    nan2 = [float("nan"), float("nan")]
    out: dict[str, float | int | list[float]] = {
        "n": n,
        "a_better": int(np.sum(b > a) if lower_is_better else np.sum(a > b)),
        "diff": float(np.mean(a - b)) if n else float("nan"),
        "ci_diff": nan2,
        "ratio": float("nan"),
        "ci_ratio": nan2,
    }
    positive = n > 0 and bool(np.all(b > 0))
    if positive:
        out["ratio"] = float(np.mean(a / b))
    if n < 2:
        return out
    rng = np.random.default_rng(rng)
    idx = rng.integers(0, n, size=(reps, n))
    alpha = 100 * (1 - confidence) / 2
    out["ci_diff"] = [
        float(v) for v in np.percentile((a - b)[idx].mean(axis=1), [alpha, 100 - alpha])
    ]
    if positive:
        out["ci_ratio"] = [
            float(v) for v in np.percentile((a / b)[idx].mean(axis=1), [alpha, 100 - alpha])
        ]
    return out


def mean_band(
    values: np.ndarray,
    *,
    reps: int = 2_000,
    confidence: float = 0.95,
    rng: np.random.Generator | int | None = 0,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean curve and pointwise bootstrap CI band over runs: ``values (runs, T)`` → 3 × ``(T,)``.

    Resampling weights are multinomial counts, so the bootstrap costs ``reps × T`` memory, not
    ``reps × runs × T``. With fewer than 2 runs the band is NaN.
    """
    values = np.asarray(values, dtype=np.float64)
    n, t = values.shape
    mean = values.mean(axis=0)
    if n < 2:
        nan = np.full(t, np.nan)
        return mean, nan, nan.copy()
    rng = np.random.default_rng(rng)
    counts = rng.multinomial(n, np.full(n, 1.0 / n), size=reps)  # (reps, n)
    boot = counts @ values / n  # (reps, T)
    alpha = 100 * (1 - confidence) / 2
    lo, hi = np.percentile(boot, [alpha, 100 - alpha], axis=0)
    return mean, lo, hi
