"""Sim-to-real: score an agent trained in the simulator on a held-out *real* interaction log.

An agent trained in a simulator is only useful if its choices are good for real users. This module
asks an agent to rank real candidates for real users, offline, with the observation the simulator
would have shown it, and scores that ranking against what the users really chose next.

**Rows.** For each held-out (test) interaction of a user whose item is in the calibrated catalogue,
one row: ``C`` candidates (``C`` = the env's ``num_candidates``, so the observation has the
simulator's own layout) = the held-out item + ``C − 1`` items the user never interacted with (train
or test), sampled uniformly from the catalogue with a fixed seed, in a random order (so that no
agent profits from a position). Several held-out items of a user give several rows.

**Observation** (:class:`recsim_env.observation.ObsLayout` of the calibrated env):

* candidate features: the rows of the calibrated env's catalogue table
  (``env.unwrapped.world.catalogue.features``, mapped from the log's item ids by
  ``catalogue.item_ids``), taken when the world's clock is at the end of the training period
  (``len(trajectory) · window_ticks`` ticks by default, every training item born, its popularity
  formed, the replayed population mean at its last window). One world seed for all agents, so every
  agent is scored on identical rows.
* user features, as the simulator keeps them for a user who has consumed the user's *training*
  items in time order: ``history`` = EMA of the consumed items' topic vectors with the env's
  ``history_decay`` (``h ← d·h + (1 − d)·x``, from 0), exactly the simulator's update for a click.
  ``ctr``: an EMA of clicks over impressions (rate 0.1, the simulator's) when the log has a
  ``click`` column; a consumption log (ML-100K) has no impressions, so its click rate is unknown and
  ``ctr`` takes the *neutral* value below. ``progress`` (session position) and the returning-user
  features (``recent_completion``, ``recency``, ``visits``, ``lifetime``) also take neutral values.
  **Neutral** = the mean of that feature over the calibrated env's own observations under a uniform
  random policy (:func:`neutral_user_features`, fixed seed): a value the simulator's users really
  have, neither 0 nor an extreme, and the same for every agent.

**Scores.** The agent's greedy ranking (:func:`experiments.run.evaluation.ranking_function`:
``scores`` or ``q_values``); an agent that cannot rank gets its chosen item (``act``, greedy) at
rank 1 and the others tied. **Ties** count as their expectation under a uniformly random order of
the tied candidates: with ``g`` candidates scored above the held-out item and ``t`` others tied with
it, its rank is uniform on ``g+1 … g+t+1``; recall@k = P(rank ≤ k), NDCG@k = E[1{rank ≤ k} /
log2(rank + 1)] (one relevant item, ideal DCG 1), AUC = (#below + ½·t) / (C − 1) (as
``sklearn.metrics.roc_auc_score`` counts ties). Each metric is averaged over a user's rows, then over
users (every user weighs the same, however many items they held out).

Command line (scores the runs of a study; see ``docs/studies/sim2real``)::

    python -m experiments.sim2real RUN_DIR_OR_SWEEP_DIR ... --out scores.json
"""

from __future__ import annotations

import argparse
import importlib
import json
import math
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from experiments.run.evaluation import ranking_function
from recsim_env.core import layout_for
from recsim_env.observation import ObsLayout
from recsim_env.validation import ConfigError, check_int

DEFAULT_KS = (1, 5, 10)
CTR_RATE = 0.1  # the simulator's click-rate EMA (recsim_env/users.py: ctr += 0.1·(c − ctr))
NEUTRAL_KEYS = ("ctr", "progress", "recent_completion", "recency", "visits", "lifetime")


# ---------------------------------------------------------------------------------------- metrics
def rank_metrics(
    scores: np.ndarray, positive: np.ndarray, ks: Sequence[int] = DEFAULT_KS
) -> dict[str, np.ndarray]:
    """Per-row metrics of the held-out candidate ``positive`` (index per row) under ``scores``
    ``(R, C)`` (higher = better), ties counted in expectation (see the module docstring).

    Returns ``recall@k`` and ``ndcg@k`` for each ``k`` and ``auc``, each of shape ``(R,)``."""
    scores = np.asarray(scores, dtype=np.float64)
    if scores.ndim != 2 or scores.shape[1] < 2:
        raise ValueError(f"scores of shape {scores.shape}: want (rows, candidates >= 2)")
    rows, c = scores.shape
    positive = np.asarray(positive, dtype=np.int64)
    if positive.shape != (rows,) or (rows and not 0 <= positive.min() <= positive.max() < c):
        raise ValueError(f"positive of shape {positive.shape}: want ({rows},) indices in [0, {c})")
    if not np.isfinite(scores).all():
        raise ValueError("scores contain NaN or infinity: cannot rank")
    s_pos = scores[np.arange(rows), positive][:, None]
    above = (scores > s_pos).sum(axis=1)
    tied = (scores == s_pos).sum(axis=1) - 1  # other candidates tied with the held-out one
    out: dict[str, np.ndarray] = {"auc": (c - 1 - above - tied + 0.5 * tied) / (c - 1)}
    ranks = np.arange(1, c + 1)
    for k in ks:
        k = check_int("k", k, 1)
        out[f"recall@{k}"] = np.clip((k - above) / (tied + 1.0), 0.0, 1.0)
        gain = np.where(ranks <= k, 1.0 / np.log2(ranks + 1.0), 0.0)
        cum = np.concatenate([[0.0], np.cumsum(gain)])  # cum[r] = Σ_{j ≤ r} gain_j
        out[f"ndcg@{k}"] = (cum[above + tied + 1] - cum[above]) / (tied + 1.0)
    return out


def per_user_mean(values: np.ndarray, users: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean of ``values`` over each user's rows: ``(user ids, means)`` in sorted id order."""
    ids, inverse = np.unique(users, return_inverse=True)
    sums = np.bincount(inverse, weights=np.asarray(values, np.float64), minlength=len(ids))
    counts = np.bincount(inverse, minlength=len(ids))
    return ids, sums / counts


# ---------------------------------------------------------------------------------------- rows
@dataclass(frozen=True)
class HeldOutRows:
    """The real-data observations an agent is scored on (see the module docstring)."""

    obs: np.ndarray  # (R, layout.size) float32, the simulator's layout
    positive: np.ndarray  # (R,) index of the held-out item among the C candidates
    users: np.ndarray  # (R,) the log's user id of each row
    item_ids: np.ndarray  # (R, C) the log's ids of the candidates
    layout: ObsLayout
    info: dict[str, Any] = field(default_factory=dict)  # how the rows were built (for reports)

    def __len__(self) -> int:
        return len(self.positive)


def catalogue_at(env: Any, clock: int | None = None, *, seed: int = 0) -> tuple[Any, int]:
    """The calibrated env's catalogue with its clock at ``clock`` (default: the end of the
    calibration's trajectory, ``len(trajectory) · window_ticks`` ticks = the training period).

    The env's world is reset with ``seed`` and ticked forward (the same code the simulator runs, so
    popularity, freshness and quality signals are what a simulated user would see then)."""
    core = env.unwrapped
    cal = core.config.resolved_calibration if hasattr(core, "config") else None
    if cal is None:
        raise ConfigError(
            "sim-to-real rows need a calibrated env (calibration=<dir> or recsim_env/MovieLens-v0): "
            "its catalogue maps the log's item ids to the simulator's features"
        )
    core.reset(seed=seed)
    world = core.world if hasattr(core, "world") else core.core.world
    target = len(cal.trajectory) * cal.window_ticks if clock is None else int(clock)
    if target < world.clock:
        raise ValueError(f"clock={target}: the world is already at {world.clock}")
    while world.clock < target:
        world.tick()
    return world.catalogue, target


def neutral_user_features(env: Any, *, steps: int = 200, seed: int = 0) -> dict[str, float]:
    """Mean of the user features that a real log cannot give (``ctr`` of a consumption log,
    ``progress``, the returning-user block) over ``steps`` steps of ``env`` under a uniform random
    policy (its own action space, seeded): the simulator's typical values."""
    layout = layout_for(env.unwrapped.config)
    rng = np.random.default_rng(seed)
    obs, _ = env.reset(seed=seed)
    user_rows = []
    for _ in range(steps):
        user_rows.append(layout.split(np.asarray(obs, np.float32))[1].reshape(-1, layout.user_dim))
        action = rng.integers(0, layout.num_candidates, size=np.shape(obs)[:-1])
        obs = env.step(action if np.ndim(action) else int(action))[0]
    users = np.concatenate(user_rows)
    slices = layout.user_slices()
    return {k: float(users[:, slices[k]].mean()) for k in NEUTRAL_KEYS if k in slices}


def _ema_weights(user_codes: np.ndarray, decay: float) -> np.ndarray:
    """Weight of each row in its user's EMA after all their rows (rows in time order):
    ``(1 − d)·d^(number of the user's rows after it)``, vectorised over users."""
    user_codes = np.asarray(user_codes, np.int64)
    if not len(user_codes):
        return np.zeros(0)
    counts = np.bincount(user_codes)
    order = np.argsort(user_codes, kind="stable")  # rows grouped by user, time order kept
    pos = np.empty(len(user_codes), np.int64)
    pos[order] = np.arange(len(user_codes)) - np.repeat(np.cumsum(counts) - counts, counts)
    after = counts[user_codes] - 1 - pos
    return (1.0 - decay) * decay ** after.astype(np.float64)


def build_rows(
    train: Any,
    test: Any,
    env: Any,
    *,
    seed: int = 0,
    clock: int | None = None,
    world_seed: int = 0,
    neutral: Mapping[str, float] | None = None,
    neutral_steps: int = 200,
    max_rows_per_user: int | None = None,
) -> HeldOutRows:
    """The held-out rows of ``test`` (an :class:`~recsim_env.data.InteractionLog`) with user
    features from ``train``, in the observation layout of the calibrated ``env`` (single or
    vector; see the module docstring). ``neutral`` overrides :func:`neutral_user_features`."""
    seed = check_int("seed", seed, 0)
    core = env.unwrapped
    cfg = core.config
    layout = layout_for(cfg)
    if layout.full:
        raise ConfigError(
            "invalid observability='full' for sim-to-real rows (allowed: partial): a real user's "
            "true interest is unknown"
        )
    if neutral is None:  # (before the world is moved to `clock`: this resets it)
        neutral = neutral_user_features(env, steps=neutral_steps, seed=world_seed)
    cat, at_clock = catalogue_at(env, clock, seed=world_seed)
    features = np.array(cat.features, np.float32)  # a copy: the env may move on
    topics = np.array(cat.topics, np.float64)
    ids = np.asarray(cat.item_ids)
    slot_of = {v: i for i, v in enumerate(ids.tolist())}
    k, c = cfg.num_topics, cfg.num_candidates
    m = len(ids)

    tr, te = train.interactions, test.interactions
    clicks_tr = tr["click"].to_numpy() == 1 if "click" in tr.columns else np.ones(len(tr), bool)
    pos_te = te["click"].to_numpy() == 1 if "click" in te.columns else np.ones(len(te), bool)
    tr_slots = np.array([slot_of.get(v, -1) for v in tr["item"].tolist()], np.int64)
    te_slots = np.array([slot_of.get(v, -1) for v in te["item"].tolist()], np.int64)

    # user features from the training rows (time order = the log's canonical order)
    user_ids, tr_codes = np.unique(tr["user"].to_numpy(), return_inverse=True)
    n_users = len(user_ids)
    hist = np.zeros((n_users, k), np.float64)
    use = clicks_tr & (tr_slots >= 0)  # the simulator's history only moves on clicks
    w = _ema_weights(tr_codes[use], cfg.history_decay)
    np.add.at(hist, tr_codes[use], w[:, None] * topics[tr_slots[use]])
    has_click_col = "click" in tr.columns
    if has_click_col:
        wc = _ema_weights(tr_codes, 1.0 - CTR_RATE)
        ctr = np.bincount(tr_codes, weights=wc * clicks_tr, minlength=n_users)
    else:
        ctr = np.full(n_users, float(neutral.get("ctr", 0.0)))

    # interactions per user (train ∪ test): never a negative
    all_users = np.concatenate([tr["user"].to_numpy(), te["user"].to_numpy()])
    all_slots = np.concatenate([tr_slots, te_slots])
    keep = np.isin(te["user"].to_numpy(), user_ids) & (te_slots >= 0) & pos_te
    dropped_items = int((pos_te & (te_slots < 0)).sum())
    dropped_users = int(
        (pos_te & (te_slots >= 0) & ~np.isin(te["user"].to_numpy(), user_ids)).sum()
    )
    te_users = te["user"].to_numpy()[keep]
    te_pos_slots = te_slots[keep]
    rng = np.random.default_rng(seed)
    if max_rows_per_user is not None:
        max_rows_per_user = check_int("max_rows_per_user", max_rows_per_user, 1)
        _, inv = np.unique(te_users, return_inverse=True)
        order = np.argsort(inv, kind="stable")
        counts = np.bincount(inv)
        rank = np.empty(len(inv), np.int64)
        rank[order] = np.arange(len(inv)) - np.repeat(np.cumsum(counts) - counts, counts)
        first = rank < max_rows_per_user
        te_users, te_pos_slots = te_users[first], te_pos_slots[first]
    rows = len(te_users)
    if m < c:
        raise ValueError(f"catalogue of {m} items: cannot sample {c - 1} negatives")
    # negatives: per row C − 1 distinct items drawn uniformly from the catalogue minus the user's
    # own items (train ∪ test); one loop over users (~1k), not over rows
    seen = np.zeros(m, bool)
    order = np.argsort(all_users, kind="stable")
    sorted_users, sorted_slots = all_users[order], all_slots[order]
    row_users, row_index = np.unique(te_users, return_inverse=True)
    negatives = np.empty((rows, c - 1), np.int64)
    for j, u in enumerate(row_users.tolist()):
        lo = np.searchsorted(sorted_users, u, side="left")
        hi = np.searchsorted(sorted_users, u, side="right")
        mine = sorted_slots[lo:hi]
        seen[mine[mine >= 0]] = True
        allowed = np.flatnonzero(~seen)
        seen[:] = False
        idx = np.flatnonzero(row_index == j)
        if len(allowed) < c - 1:
            raise ValueError(f"user {u!r} has interacted with all but {len(allowed)} items")
        pick = np.argsort(rng.random((len(idx), len(allowed))), axis=1)[:, : c - 1]
        negatives[idx] = allowed[pick]
    # the held-out item at a uniformly random position of the C candidates
    base = np.concatenate([te_pos_slots[:, None], negatives], axis=1)
    perm = np.argsort(rng.random((rows, c)), axis=1)
    cand = np.take_along_axis(base, perm, axis=1)
    positive = np.argmax(perm == 0, axis=1)

    obs = np.zeros((rows, layout.size), np.float32)
    obs[:, : layout.items_size] = features[cand].reshape(rows, layout.items_size)
    user = obs[:, layout.items_size :]
    sl = layout.user_slices()
    code = np.searchsorted(user_ids, te_users)
    user[:, sl["history"]] = hist[code]
    user[:, sl["ctr"]] = ctr[code][:, None]
    for name in NEUTRAL_KEYS[1:]:
        if name in sl:
            user[:, sl[name]] = float(neutral.get(name, 0.0))
    if "drift_flag" in sl:
        user[:, sl["drift_flag"]] = 0.0
    info = {
        "rows": rows,
        "users": len(row_users),
        "candidates": c,
        "clock": at_clock,
        "world_seed": world_seed,
        "seed": seed,
        "neutral": dict(neutral),
        "ctr_from": "log clicks" if has_click_col else "neutral",
        "dropped_test_rows_item_not_in_catalogue": dropped_items,
        "dropped_test_rows_user_without_train": dropped_users,
    }
    return HeldOutRows(
        obs=obs, positive=positive, users=te_users, item_ids=ids[cand], layout=layout, info=info
    )


# ---------------------------------------------------------------------------------------- scoring
def agent_scorer(agent: Any) -> Callable[[np.ndarray], np.ndarray]:
    """``obs (R, size) → scores (R, C)``: the agent's greedy ranking, or, for an agent that cannot
    rank, its chosen item at 1 and the rest tied at 0 (a slate: its order)."""
    rank = ranking_function(agent)
    if rank is not None:
        return lambda obs: np.asarray(rank(obs, {}), np.float64)

    def chosen(obs: np.ndarray) -> np.ndarray:
        c = _num_candidates(agent)
        action = np.asarray(agent.act(obs, explore=False))
        out = np.zeros((len(obs), c))
        if action.ndim == 2:  # a slate: its order is a ranking
            np.put_along_axis(out, action, np.arange(action.shape[1], 0, -1, dtype=float), axis=1)
        else:
            out[np.arange(len(obs)), action.astype(np.int64)] = 1.0
        return out

    return chosen


def _num_candidates(agent: Any) -> int:
    layout = getattr(agent, "layout", None) or getattr(agent, "obs_layout", None)
    if isinstance(layout, ObsLayout):
        return layout.num_candidates
    space = getattr(agent, "action_space", None)
    n = getattr(space, "n", None)
    if n is None:
        raise TypeError(f"cannot tell the number of candidates of {type(agent).__name__}")
    return int(n)


def score(
    scores_fn: Callable[[np.ndarray], np.ndarray],
    rows: HeldOutRows,
    *,
    ks: Sequence[int] = DEFAULT_KS,
    batch: int = 4096,
) -> dict[str, Any]:
    """Score a ranker on ``rows``: per-user-averaged metrics (``real/recall@k``, ``real/ndcg@k``,
    ``real/auc``) and, under ``per_user``, each metric's per-user means (for bootstraps)."""
    parts = [
        np.asarray(scores_fn(rows.obs[i : i + batch]), np.float64)
        for i in range(0, len(rows), batch)
    ]
    scores = np.concatenate(parts) if parts else np.zeros((0, rows.layout.num_candidates))
    per_row = rank_metrics(scores, rows.positive, ks)
    out: dict[str, Any] = {"rows": len(rows), "per_user": {}}
    for name, values in per_row.items():
        user_ids, means = per_user_mean(values, rows.users)
        out[f"real/{name}"] = float(means.mean()) if len(means) else math.nan
        out["per_user"][name] = means
    out["users"] = len(np.unique(rows.users))
    return out


def score_agent(agent: Any, rows: HeldOutRows, **kwargs: Any) -> dict[str, Any]:
    """:func:`score` with the agent's ranking (:func:`agent_scorer`)."""
    return score(agent_scorer(agent), rows, **kwargs)


def log_popularity_scorer(train: Any, rows: HeldOutRows) -> Callable[[np.ndarray], np.ndarray]:
    """The real log's popularity (training-split interaction counts) of each row's candidates: the
    reference that needs no simulator. Works on ``rows.obs`` row blocks in order."""
    counts = train.interactions["item"].value_counts()
    table = (
        counts.reindex(rows.item_ids.ravel()).fillna(0.0).to_numpy().reshape(rows.item_ids.shape)
    )
    state = {"at": 0}

    def scores(obs: np.ndarray) -> np.ndarray:
        start = state["at"]
        state["at"] = (start + len(obs)) % max(len(rows), 1)
        return table[start : start + len(obs)]

    return scores


# ---------------------------------------------------------------------------------------- run dirs
def load_run_agent(run_dir: str | Path) -> tuple[Any, Any, dict[str, Any]]:
    """(agent, its training env, the run's summary) of a finished run dir: the env rebuilt from the
    run's saved config, the agent loaded from its newest checkpoint by the class of the run's
    ``agent._target_`` (only classes of the project's ``agents`` package: a run dir is data)."""
    from experiments.run.config import validate
    from experiments.run.job import make_env
    from experiments.run.rundir import RunDir

    rd = RunDir(run_dir)
    cfg = rd.load_config()
    target = str(cfg.agent._target_)
    if not target.startswith("agents."):
        raise ConfigError(
            f"invalid agent._target_={target} (allowed: a class of the agents package)"
        )
    module, _, name = target.rpartition(".")
    cls = getattr(importlib.import_module(module), name)
    ckpt = rd.latest_checkpoint()
    if ckpt is None:
        raise ConfigError(f"{rd}: no checkpoint to load the agent from")
    env = make_env(validate(cfg).env)
    env.reset(seed=int(cfg.seed))
    agent = cls.load(ckpt.agent, env=env)
    summary = json.loads(rd.summary_path.read_text()) if rd.summary_path.exists() else {}
    return agent, env, summary


def run_meta(run_dir: str | Path) -> dict[str, Any]:
    """Which agent / env option / seed / env id a run dir holds (from its saved config and job)."""
    from experiments.run.rundir import RunDir

    rd = RunDir(run_dir)
    cfg = rd.load_config()
    choices = dict(rd.job().choices)
    return {
        "agent": choices.get("agent", str(cfg.agent._target_).rpartition(".")[2]),
        "env": choices.get("env", ""),
        "env_id": str(cfg.env.id),
        "seed": int(cfg.seed),
    }


def _run_dirs(paths: Sequence[str]) -> list[Path]:
    from experiments.run.rundir import RunDir

    found: list[Path] = []
    for p in paths:
        if RunDir.is_run_dir(p):
            found.append(Path(p))
        else:
            found.extend(rd.path for rd in RunDir.find(p))
    return sorted(set(found))


def _plain(x: Any) -> Any:
    if isinstance(x, dict):
        return {k: _plain(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [_plain(v) for v in x]
    if isinstance(x, np.ndarray):
        return x.tolist()
    if isinstance(x, np.generic):
        return x.item()
    return x


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m experiments.sim2real",
        description="Score trained agents (run dirs) on MovieLens-100K's held-out real log.",
    )
    parser.add_argument("runs", nargs="+", help="run dirs or sweep dirs holding them")
    parser.add_argument("--out", required=True, help="JSON file to write")
    parser.add_argument("--calibration", default="movielens-100k")
    parser.add_argument("--seed", type=int, default=0, help="negative sampling seed")
    parser.add_argument("--per-user", action="store_true", help="keep per-user metrics")
    args = parser.parse_args(argv)

    import gymnasium

    import recsim_env  # noqa: F401
    from recsim_env.data import load_movielens_100k, temporal_split

    log = load_movielens_100k(fetch_if_missing=False)
    train, test = temporal_split(log)
    ref_env = gymnasium.make("recsim_env/MovieLens-v0", calibration=args.calibration)
    rows = build_rows(train, test, ref_env, seed=args.seed)
    results: dict[str, Any] = {"rows": rows.info, "runs": [], "references": {}}
    pop = score(log_popularity_scorer(train, rows), rows)
    results["references"]["log_popularity"] = pop
    results["references"]["random"] = {"real/auc": 0.5, "note": "expected value, C candidates"}
    for rd in _run_dirs(args.runs):
        agent, env, summary = load_run_agent(rd)
        if env.unwrapped.single_observation_space.shape != (rows.layout.size,):
            print(f"skip {rd}: observation layout differs", file=sys.stderr)
            continue
        res = score_agent(agent, rows)
        res["run_dir"] = str(rd)
        res.update(run_meta(rd))
        res["summary"] = {k: v for k, v in summary.items() if isinstance(v, int | float | str)}
        results["runs"].append(res)
        env.close()
        print(f"{rd}: recall@10={res['real/recall@10']:.4f} auc={res['real/auc']:.4f}")
    if not args.per_user:
        for r in [*results["runs"], pop]:
            r.pop("per_user", None)
    Path(args.out).write_text(json.dumps(_plain(results), indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
