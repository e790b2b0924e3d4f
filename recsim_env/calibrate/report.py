"""The fidelity report of a calibration, measured on held-out time (issue 18, item 4).

:func:`validate` splits a log by time (each user's first 80 % of interactions train, the last 20 %
test: :func:`recsim_env.data.temporal_split`), fits the simulator on the training part (or takes a
calibration that was), and measures how far the simulator is from the held-out real users:

**Choice fidelity** — the four scorers of :mod:`recsim_env.calibrate.baselines` rank the whole
catalogue for each test user (training items excluded): recall@k, NDCG@k, AUC (see
:mod:`recsim_env.calibrate.fidelity`), means with 95 % bootstrap CIs over users, and the paired
differences behind the targets.

**Distributional fidelity** — logs simulated by the calibrated env and by the uncalibrated default
env (:func:`recsim_env.calibrate.simulate.simulate_log`), and the training split itself (the ceiling: real data of the same users and period), each against the
held-out real log. What is compared, and why so:

- item popularity: KS distance of the rank-frequency curves on normalised rank (the catalogue's
  never-consumed items count as zeros) and the Gini of item counts (|ΔGini| as the distance);
- category shares of consumed items: total variation (categories of the real log; the default env
  has no genres, so its topic k stands for category k: it is run with as many topics as the log has
  categories and as many items as the catalogue);
- user activity: KS of per-user counts *divided by their mean* — the length of the simulated period
  is a choice of this validation, not a property of the simulator, so only the shape (the spread of
  activity across users) is compared;
- session length (interactions per session; in a simulated log, steps per session: one logged
  interaction is one simulator step, as the fit assumes) and return gap (in ticks: seconds /
  ``tick_seconds`` − 1 for the real log, ticks − 1 for a simulated one), KS;
- the logging policy that serves both simulated envs "matches the log": for a log of consumptions
  only (no impressions, as ML-100K) the fit scores each choice against *uniformly* sampled items, so
  the fitted appeal already carries everything that made an item consumed more often, exposure
  included; serving it with a popularity-proportional policy counts popularity twice (measured on
  ML-100K: popularity KS 0.315 against 0.108 with the uniform policy). Logs with impressions are
  served popularity-proportionally (the fit separated exposure from appeal there). ``policy=``
  overrides it, for both envs alike;
- drift: Pearson correlation of the per-window category-share changes (each log's own time span
  cut into the calibration's trajectory windows), distance ``1 − r``.

Consumptions are the rows of a positives-only log (ML-100K) and the clicks of a simulated one.
**Targets**: calibrated recall@k ≥ popularity's and ≥ 0.9 × SVD's; every distributional distance of
the calibrated env ≤ ½ × the default env's. Each is written met / not met with the measured gap.
Writes ``fidelity.json``, ``report.md`` and PNG plots into ``out_dir``.

Where the parts live: this module measures (choice fidelity, :func:`validate` and its targets);
:mod:`recsim_env.calibrate.log_profiles` holds the log profiles and distances (re-exported here:
:func:`log_profile`, :func:`distances`), :mod:`recsim_env.calibrate.report_render` the plots and
markdown.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from recsim_env.calibrate import fidelity as F
from recsim_env.calibrate import report_render
from recsim_env.calibrate.baselines import Scorer, make_scorers, positives
from recsim_env.calibrate.log_profiles import DISTANCES, DRIFT, distances, log_profile
from recsim_env.calibrate.sessions import DEFAULT_GAP_SECONDS  # the fit's session gap
from recsim_env.calibrate.simulate import POLICIES
from recsim_env.validation import check_choice

if TYPE_CHECKING:
    from recsim_env.data import InteractionLog
    from recsim_env.grounding import Calibration

__all__ = ["DISTANCES", "DRIFT", "choice_fidelity", "distances", "log_profile", "validate"]

DEFAULT_TICK_SECONDS = 60.0  # used only when the calibration does not say
MAX_SIM_USERS = 128  # concurrent simulated users (default: as many as test users, at most this)
# default steps: the whole fitted trajectory (ML-100K: 31 weeks x 1,000 ticks, ~70 s in all)
MIN_SIM_STEPS, MAX_SIM_STEPS = 200, 40_000
MAX_SCORE_CELLS = 20_000_000  # users are scored in chunks of at most this many (user, item) cells
BOOTSTRAP_REPS = 1000
LOGS = ("calibrated", "default", "train_split")


# ------------------------------------------------------------------------------ choice fidelity
def _bootstrap_ci(values: np.ndarray, rng: np.random.Generator) -> list[float]:
    v = values[np.isfinite(values)]
    if v.size < 2:
        return [float("nan"), float("nan")]
    means = v[rng.integers(0, v.size, (BOOTSTRAP_REPS, v.size))].mean(axis=1)
    return [float(x) for x in np.percentile(means, [2.5, 97.5])]


def choice_fidelity(
    train: InteractionLog,
    test: InteractionLog,
    scorers: list[Scorer],
    *,
    items: np.ndarray | None = None,
    k: int = 10,
    seed: int = 0,
) -> dict[str, Any]:
    """Each scorer, fitted on ``train``, ranks the whole catalogue ``items`` (default: every item of
    either log) for each test user: metrics, bootstrap CIs over users, per-user arrays (``_per_user``)
    and the fit + scoring time."""
    tr, te = positives(train), positives(test)
    if items is None:
        parts = [tr["item"].to_numpy(), te["item"].to_numpy()]
        if train.items is not None:
            parts.append(np.asarray(train.items.index))
        items = np.unique(np.concatenate(parts))
    else:
        items = np.unique(np.asarray(items))
        missing = ~np.isin(np.concatenate([tr["item"].to_numpy(), te["item"].to_numpy()]), items)
        if missing.any():
            raise ValueError(f"items: {int(missing.sum())} logged interactions are on other items")
    users = np.unique(te["user"].to_numpy())
    tr_users = tr["user"].to_numpy()
    tr_rows = np.minimum(np.searchsorted(users, tr_users), max(users.size - 1, 0))
    keep = users[tr_rows] == tr_users if users.size else np.zeros(len(tr_users), bool)
    tr_rows, tr_cols = tr_rows[keep], np.searchsorted(items, tr["item"].to_numpy()[keep])
    te_rows = np.searchsorted(users, te["user"].to_numpy())
    te_cols = np.searchsorted(items, te["item"].to_numpy())
    chunk = max(1, MAX_SCORE_CELLS // max(items.size, 1))
    out: dict[str, Any] = {}
    for scorer in scorers:
        t0 = time.perf_counter()
        scorer.fit(train)
        per: dict[str, list[np.ndarray]] = {"recall": [], "ndcg": [], "auc": [], "rows": []}
        for lo in range(0, users.size, chunk):
            hi = min(lo + chunk, users.size)
            s = scorer.scores(users[lo:hi], items)
            sel_tr = (tr_rows >= lo) & (tr_rows < hi)
            sel_te = (te_rows >= lo) & (te_rows < hi)
            m = F.ranking_metrics(
                s,
                (tr_rows[sel_tr] - lo, tr_cols[sel_tr]),
                (te_rows[sel_te] - lo, te_cols[sel_te]),
                k=k,
            )
            for key in ("recall", "ndcg", "auc"):
                per[key].append(m["per_user"][key])
            per["rows"].append(m["per_user"]["rows"] + lo)
        arrays = {key: np.concatenate(v) for key, v in per.items()}
        rng = np.random.default_rng(seed)
        entry: dict[str, Any] = {"seconds": round(time.perf_counter() - t0, 3)}
        for key in ("recall", "ndcg", "auc"):
            entry[key] = float(np.nanmean(arrays[key]))
            entry[f"{key}_ci95"] = _bootstrap_ci(arrays[key], rng)
        entry["num_users"] = int(arrays["rows"].size)
        entry["_per_user"] = arrays
        out[scorer.name] = entry
    out["_protocol"] = {
        "k": k,
        "recall": "hits@k / min(k, |test items|), averaged over test users",
        "ndcg": "binary relevance, ideal DCG over min(k, |test items|) positions",
        "auc": "P(held-out item scored above a non-consumed item), ties 1/2, per user, averaged",
        "candidates": "the whole catalogue minus the user's training items",
        "num_items": int(items.size),
        "num_test_users": int(users.size),
    }
    return out


def _paired(a: np.ndarray, b: np.ndarray, rng: np.random.Generator) -> dict[str, Any]:
    d = a - b
    return {"mean": float(np.nanmean(d)), "ci95": _bootstrap_ci(d, rng)}


# ----------------------------------------------------------------------------------- validate
def _find(tree: Any, key: str) -> Any:
    if isinstance(tree, Mapping):
        if key in tree:
            return tree[key]
        for v in tree.values():
            found = _find(v, key)
            if found is not None:
                return found
    return None


def _calibration(
    train: InteractionLog, spec: Any, out_dir: Path, seed: int
) -> tuple[Calibration, Path]:
    """The calibration and a directory holding it (the calibrated env is made from a directory):
    a saved one is used where it is, a fitted or given one is saved under ``out_dir``."""
    from recsim_env.grounding import Calibration

    if isinstance(spec, str | Path):
        return Calibration.load(spec), Path(spec)
    if isinstance(spec, Calibration):
        cal = spec
    else:
        from recsim_env.calibrate.fit import fit

        kwargs = dict(spec or {})
        kwargs.setdefault("seed", seed)
        cal = fit(train, **kwargs)
    return cal, Path(cal.save(out_dir / "calibration_train"))


def validate(
    log: InteractionLog,
    calibration_or_fit_kwargs: Calibration | Mapping[str, Any] | str | Path | None,
    out_dir: str | Path,
    *,
    seed: int = 0,
    test_frac: float = 0.2,
    k: int = 10,
    gap_seconds: float = DEFAULT_GAP_SECONDS,
    tick_seconds: float | None = None,
    num_sim_users: int | None = None,
    sim_steps: int | None = None,
    num_windows: int | None = None,
    plots: bool = True,
    simulate: Callable[..., InteractionLog] | None = None,
    policy: str | None = None,
) -> dict[str, Any]:
    """Fit on each user's first ``1 − test_frac`` of interactions, measure on the rest; write
    ``fidelity.json``, ``report.md`` and plots into ``out_dir`` and return the JSON's content.

    ``calibration_or_fit_kwargs``: a :class:`Calibration` fitted on the *training split* of this
    log (or its saved directory), or the kwargs of :func:`recsim_env.calibrate.fit.fit` (``None``:
    its defaults) to fit one here. Simulated logs: ``num_sim_users`` concurrent users (default:
    the number of test users, at most ``MAX_SIM_USERS``) for ``sim_steps`` steps (default: the
    calibration's whole drift trajectory, within [``MIN_SIM_STEPS``, ``MAX_SIM_STEPS``]). The drift
    is compared over the trajectory windows the simulation covers (``num_windows``, at most
    ``sim_steps // window_ticks``; fewer than 2: not measured), aligned in time: window w is
    ticks [w, w + 1)·window_ticks of the simulator and the same span of log time from the training
    log's first timestamp (the fit's clock 0)."""
    from recsim_env.data import temporal_split

    t_start = time.perf_counter()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    train, test = temporal_split(log, test_frac=test_frac)
    if len(positives(test)) == 0:
        from recsim_env.validation import fail

        fail(
            "log",
            log.name,
            "a log with held-out interactions: users with at least 5 interactions "
            "(each user's last 20 % by time is the test set)",
        )
    t0 = time.perf_counter()
    cal, cal_dir = _calibration(train, calibration_or_fit_kwargs, out, seed)
    fit_seconds = time.perf_counter() - t0

    # choice fidelity
    choice = choice_fidelity(train, test, make_scorers(cal, seed=seed), k=k, seed=seed)
    rng = np.random.default_rng(seed + 1)
    per = {n: v["_per_user"] for n, v in choice.items() if not n.startswith("_")}
    cal_r, pop_r, svd_r = (
        per["calibrated"]["recall"],
        per["popularity"]["recall"],
        per["svd"]["recall"],
    )
    paired = {
        "calibrated_minus_popularity": _paired(cal_r, pop_r, rng),
        "calibrated_minus_0.9_svd": _paired(cal_r, 0.9 * svd_r, rng),
    }

    # distributional fidelity
    t0 = time.perf_counter()
    if simulate is None:
        from recsim_env.calibrate.simulate import simulate_log

        simulate = simulate_log
    tick = float(tick_seconds or _find(cal.report, "tick_seconds") or DEFAULT_TICK_SECONDS)
    window_ticks = int(cal.window_ticks)
    window_seconds = float(_find(cal.report, "window_seconds") or tick * window_ticks)
    traj_t = int(np.asarray(cal.trajectory).shape[0])
    n_test_users = int(positives(test)["user"].nunique())
    n_users = int(num_sim_users or min(max(n_test_users, 1), MAX_SIM_USERS))
    steps = int(sim_steps or min(max(MIN_SIM_STEPS, traj_t * window_ticks), MAX_SIM_STEPS))
    # drift windows: the calibration's, aligned in time (clock 0 = the training log's start)
    windows = int(num_windows or min(traj_t, steps // window_ticks))
    t_start_real = float(positives(train)["timestamp"].min())
    cats = tuple(log.category_columns)
    catalogue = np.unique(
        np.concatenate(
            [log.interactions["item"].to_numpy()]
            + ([np.asarray(log.items.index)] if log.items is not None else [])
        )
    )
    sim_kwargs: dict[str, dict[str, Any]] = {
        "calibrated": {"calibration": str(cal_dir), "returning_users": True, "horizon": "lifetime"},
        "default": {
            "num_items": int(catalogue.size),
            "num_topics": len(cats) if cats else 10,
            "returning_users": True,
            "horizon": "lifetime",
        },
    }
    if policy is None:  # the policy that matches how the fit saw the log (module docstring)
        policy = "popularity" if "click" in log.interactions.columns else "uniform"
    check_choice("policy", policy, POLICIES)
    sims = {
        name: simulate(kw, policy=policy, num_users=n_users, steps=steps, seed=seed)
        for name, kw in sim_kwargs.items()
    }
    sim_seconds = time.perf_counter() - t0

    n_real = len(positives(test))

    def profile(lg: InteractionLog, num_items: int, simulated: bool) -> dict[str, Any]:
        # a simulated log's clock is in ticks (one step = one tick), a real one's in seconds
        win = (
            None
            if windows < 2
            else (0.0, float(window_ticks), windows)
            if simulated
            else (t_start_real, window_seconds, windows)
        )
        return log_profile(
            lg,
            log,
            num_items=num_items,
            gap=max(gap_seconds / tick, 1.0) if simulated else gap_seconds,
            tick_seconds=1.0 if simulated else tick,
            windows=win,
            real_items=lg is not sims["default"],
            sample=n_real,
            rng=np.random.default_rng(seed),
        )

    m_real, m_default = int(catalogue.size), int(sim_kwargs["default"]["num_items"])
    profiles = {
        "real_test": profile(test, m_real, False),
        "train_split": profile(train, m_real, False),
        "calibrated": profile(sims["calibrated"], m_real, True),
        "default": profile(sims["default"], m_default, True),
    }
    dist = {name: distances(profiles["real_test"], profiles[name]) for name in LOGS}
    # in-sample: the period the calibration was fitted on (what a fit can reproduce at all)
    in_sample = {
        name: distances(profiles["train_split"], profiles[name])
        for name in ("calibrated", "default")
    }

    # targets
    targets = []
    c, p, s = (choice[n]["recall"] for n in ("calibrated", "popularity", "svd"))
    for label, threshold, key in (
        (f"calibrated recall@{k} >= popularity's", p, "calibrated_minus_popularity"),
        (f"calibrated recall@{k} >= 0.9 x SVD's", 0.9 * s, "calibrated_minus_0.9_svd"),
    ):
        t = _target(label, c, threshold, ">=")
        lo, hi = paired[key]["ci95"]
        t["note"] = (
            f"paired difference over users {paired[key]['mean']:+.4f}, 95 % CI [{lo:+.4f}, "
            f"{hi:+.4f}]" + (": not distinguishable from the threshold" if lo <= 0 <= hi else "")
        )
        targets.append(t)
    for name in (*DISTANCES, DRIFT):
        cd, dd, ceil = (dist[n][name] for n in ("calibrated", "default", "train_split"))
        t = _target(f"{name}: calibrated <= 0.5 x default", cd, 0.5 * dd, "<=")
        t["note"] = _distance_note(cd, dd, ceil)
        targets.append(t)

    result: dict[str, Any] = {
        "log": log.name,
        "calibration": {
            "name": cal.name,
            "dir": str(cal_dir),
            "fit_seconds": round(fit_seconds, 2),
        },
        "split": {
            "test_frac": test_frac,
            "train_interactions": len(train.interactions),
            "test_interactions": len(test.interactions),
            "test_users": n_test_users,
        },
        "choice": {
            n: {key: v for key, v in e.items() if key != "_per_user"} for n, e in choice.items()
        },
        "paired_recall": paired,
        "simulation": {
            "policy": policy,
            "num_users": n_users,
            "steps": steps,
            "seed": seed,
            "kwargs": sim_kwargs,
            "tick_seconds": tick,
            "gap_seconds": gap_seconds,
            "num_windows": windows,
            "window_ticks": window_ticks,
            "window_seconds": window_seconds,
            "popularity_sample": n_real,
            "consumed": {n: profiles[n]["num_consumed"] for n in profiles},
            "seconds": round(sim_seconds, 2),
        },
        "distributions": dist,
        "distributions_in_sample": in_sample,
        "targets": targets,
        "targets_met": int(sum(t["met"] is True for t in targets)),
        "targets_total": len(targets),
    }
    result["choice"]["_protocol"] = choice["_protocol"]
    if plots:
        result["plots"] = report_render.plots(profiles, log, out)
    result["seconds"] = round(time.perf_counter() - t_start, 2)
    (out / "fidelity.json").write_text(json.dumps(_jsonable(result), indent=1) + "\n")
    (out / "report.md").write_text(report_render.markdown(result))
    return result


def _distance_note(calibrated: float, default: float, ceiling: float) -> str:
    """Why a distance target is (not) met, as far as the numbers say."""
    if not (np.isfinite(calibrated) and np.isfinite(default)):
        return "not measured (see the simulation section)"
    parts = []
    if default > 0:
        rel = calibrated / default - 1.0
        parts.append(
            f"calibrated distance {abs(rel):.0%} {'smaller' if rel < 0 else 'larger'} than the "
            "default env's"
        )
    met = calibrated <= 0.5 * default
    if np.isfinite(ceiling) and ceiling > 0.5 * default:
        parts.append(
            f"the real training split itself is at {ceiling:.3f} > half the default's distance "
            + (
                "(met all the same: closer to the held-out period than the training data is)"
                if met
                else "(the held-out period differs from the training period by that much, so a "
                "simulator that reproduces the training data cannot be expected to meet it)"
            )
        )
    elif calibrated >= default:
        parts.append("no better than the uncalibrated env")
    return "; ".join(parts)


def _target(name: str, value: float, threshold: float, op: str) -> dict[str, Any]:
    if not (np.isfinite(value) and np.isfinite(threshold)):
        return {"target": name, "value": value, "threshold": threshold, "met": None, "gap": None}
    met = value >= threshold if op == ">=" else value <= threshold
    return {
        "target": name,
        "value": float(value),
        "threshold": float(threshold),
        "met": bool(met),
        "gap": float(value - threshold),  # > 0 = above the threshold
    }


def _jsonable(x: Any) -> Any:
    if isinstance(x, Mapping):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [_jsonable(v) for v in x]
    if isinstance(x, np.ndarray):
        return _jsonable(x.tolist())
    if isinstance(x, np.generic):
        x = x.item()
    if isinstance(x, float) and not np.isfinite(x):
        return None
    return x
