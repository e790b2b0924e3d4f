"""Greedy evaluation of an agent on fresh users, and its ranking and click metrics.

The evaluation env *follows* the training env's world (same catalogue, same drift, same clock; it
never advances them): ``num_envs`` fresh users, one session each, run in parallel. Because the
world keeps drifting, an evaluation measures the agent against today's users. ``eval/return``,
``eval/ctr``, ``eval/regret`` and ``eval/ndcg@k`` come from these sessions.

``eval/ndcg@k`` compares the agent's ranking of the candidates it faced with their true expected
reward. Agents that can rank expose ``scores(obs) -> (B, C)`` (higher = better) or
``q_values(obs)``; in slate mode the slate's order is the ranking. Agents without either have no
ranking to compare, and ``eval/ndcg@k`` is left out rather than faked from one chosen item.

Click and ranking metrics that compare across agents (``eval/recall@k``, ``eval/auc``,
``eval/logloss``, ``eval/accuracy``, ``eval/precision``, ``eval/recall``, ``eval/f1``, each with its
``..._ceiling``; definitions in :mod:`experiments.analysis.click_metrics`) are scored on a **fixed
batch** drawn once per evaluation, before the sessions and independently of the agent: the
evaluation env from ``reset(seed=fixed_batch_seed(seed))`` and :data:`FIXED_BATCH_STEPS` steps of
uniformly random actions, i.e. ``(1 + FIXED_BATCH_STEPS) · num_envs`` candidate sets with the true
click probability of every candidate and a click drawn from it. Every agent evaluated with the same
seed at the same moment of the same world sees exactly these sets, so ceilings are one number per
evaluation and the values rank agents. The sessions then start from ``reset(seed=seed)``, as
before the batch existed: ``eval/return`` and the training stream are unchanged. Scoring the batch
does not move the agent's own ``rng`` (a random agent ranks with it).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import gymnasium
import numpy as np

from agents.base import Agent, Info, agent_traits
from agents.baselines.scoring import slate_size_of, top_candidates

Ranking = Callable[[np.ndarray, Info], np.ndarray]


def ndcg_at_k(scores: np.ndarray, relevance: np.ndarray, k: int) -> np.ndarray:
    """NDCG@k per row of the ranking induced by ``scores`` against graded ``relevance`` (linear gains).

    Negative relevance is clipped to 0. Rows whose ideal DCG is 0 (nothing relevant) give ``nan``.
    """
    scores = np.asarray(scores, dtype=np.float64)
    rel = np.maximum(np.asarray(relevance, dtype=np.float64), 0.0)
    k = min(int(k), rel.shape[1])
    discounts = 1.0 / np.log2(np.arange(2, k + 2))
    order = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    dcg = np.take_along_axis(rel, order, axis=1) @ discounts
    ideal = -np.sort(-rel, axis=1)[:, :k] @ discounts
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(ideal > 0, dcg / np.where(ideal > 0, ideal, 1.0), np.nan)


def slate_ndcg_at_k(slates: np.ndarray, relevance: np.ndarray, k: int) -> np.ndarray:
    """NDCG@k of slates (``(B, s)`` candidate indices, best first) against ``relevance``."""
    rel = np.maximum(np.asarray(relevance, dtype=np.float64), 0.0)
    slates = np.asarray(slates)[:, :k]
    k = slates.shape[1]
    discounts = 1.0 / np.log2(np.arange(2, k + 2))
    dcg = np.take_along_axis(rel, slates, axis=1) @ discounts
    ideal = -np.sort(-rel, axis=1)[:, :k] @ discounts
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(ideal > 0, dcg / np.where(ideal > 0, ideal, 1.0), np.nan)


def batched_info(info: Any) -> Mapping[str, Any]:
    """Accept both the batched info dict and SB3's list of per-env dicts."""
    if isinstance(info, Mapping):
        return info
    if isinstance(info, list | tuple) and info and isinstance(info[0], Mapping):
        keys = set(info[0]).intersection(*info[1:])
        return {k: np.asarray([d[k] for d in info]) for k in keys}
    return {}


def acting_function(agent: Agent) -> Callable[[np.ndarray, Info], np.ndarray]:
    """Greedy ``act``, passing ``info`` only to agents whose ``act`` takes it."""
    if agent_traits(agent).act_uses_info:
        return lambda obs, info: agent.act(obs, explore=False, info=info)
    return lambda obs, info: agent.act(obs, explore=False)


def ranking_function(agent: Agent) -> Ranking | None:
    """The agent's greedy score of every candidate, ``(B, C)``; ``None`` if it cannot rank."""
    scores = getattr(agent, "scores", None)
    if callable(scores):
        if agent_traits(agent).scores_uses_info:
            return lambda obs, info: scores(obs, explore=False, info=info)
        return lambda obs, info: scores(obs)
    q_values = getattr(agent, "q_values", None)
    if callable(q_values):
        return lambda obs, info: q_values(obs)
    return None


def evaluate(
    agent: Agent,
    env: gymnasium.vector.VectorEnv,
    *,
    seed: int,
    ndcg_k: int = 5,
    max_steps: int = 1_000_000,
) -> dict[str, float]:
    """Greedy evaluation: one session per user of ``env`` (all in parallel), from ``reset(seed)``.

    Returns ``eval/return`` (mean session return), ``eval/ctr`` and ``eval/regret`` (per step, over
    all steps of those sessions), ``eval/ndcg@k`` when the agent can rank, and the click and
    ranking keys scored on the evaluation's fixed batch (module doc) where they are defined.
    """
    batch = draw_fixed_batch(env, seed=fixed_batch_seed(seed))  # before the sessions: reset(seed)
    metrics = _sessions(agent, env, seed=seed, ndcg_k=ndcg_k, max_steps=max_steps)
    if batch is not None:
        metrics.update(score_fixed_batch(agent, batch, k=ndcg_k))
    return metrics


def evaluate_return(
    agent: Agent, env: gymnasium.vector.VectorEnv, *, seed: int, max_steps: int = 1_000_000
) -> float:
    """``eval/return`` alone (the references of :mod:`experiments.run.references`)."""
    metrics = _sessions(agent, env, seed=seed, ndcg_k=1, max_steps=max_steps, rank=False)
    return metrics["eval/return"]


def _sessions(
    agent: Agent,
    env: gymnasium.vector.VectorEnv,
    *,
    seed: int,
    ndcg_k: int,
    max_steps: int,
    rank: bool = True,
) -> dict[str, float]:
    """The evaluation users' sessions: ``eval/return``, ``eval/ctr``, ``eval/regret``, NDCG."""
    obs, info = env.reset(seed=seed)
    num = int(env.num_envs)
    active = np.ones(num, dtype=bool)
    returns = np.zeros(num)
    steps = clicks = regret = 0.0
    ndcg_sum, ndcg_n = 0.0, 0
    act = acting_function(agent)
    ranking = ranking_function(agent) if rank else None
    for _ in range(max_steps):
        actions = act(obs, info)
        relevance = info.get("expected_reward") if isinstance(info, Mapping) and rank else None
        if relevance is not None:
            rel = np.asarray(relevance)[active]
            if ranking is not None:
                values = ndcg_at_k(np.asarray(ranking(obs, info))[active], rel, ndcg_k)
            elif np.ndim(actions) == 2:  # slate mode: the slate is a ranking
                values = slate_ndcg_at_k(np.asarray(actions)[active], rel, ndcg_k)
            else:
                values = None
            if values is not None:
                ok = ~np.isnan(values)
                ndcg_sum += float(values[ok].sum())
                ndcg_n += int(ok.sum())
        obs, rewards, terminated, truncated, info = env.step(actions)
        returns[active] += np.asarray(rewards)[active]
        steps += float(active.sum())
        if "clicked" in info:
            clicks += float(np.sum(np.asarray(info["clicked"])[active]))
        if "regret" in info:
            regret += float(np.sum(np.asarray(info["regret"])[active]))
        active &= ~np.logical_or(terminated, truncated)
        if not active.any():
            break
    else:
        raise RuntimeError(f"evaluation sessions did not end within {max_steps} steps")
    metrics = {
        "eval/return": float(returns.mean()),
        "eval/ctr": clicks / steps,
        "eval/regret": regret / steps,
    }
    if ndcg_n:
        metrics["eval/ndcg@k"] = ndcg_sum / ndcg_n
    return metrics


# ------------------------------------------------------------------------------ the fixed batch
FIXED_BATCH_STEPS = 8  # vector steps after the reset: (1 + 8) x num_envs candidate sets


@dataclass(frozen=True)
class FixedBatch:
    """The candidate sets every agent is scored on at one evaluation (module doc).

    ``observations[t]`` / ``infos[t]``: what ``num_envs`` users were shown at step ``t`` (the info
    that came with the observation: ground truth of its candidates); ``click_prob`` ``(N, C)``:
    the true click probability of every candidate of the ``N`` sets; ``clicks`` ``(N, C)``: a
    click of every candidate drawn once from it (would the user click it if it were shown).
    """

    observations: list[np.ndarray]
    infos: list[Info]
    click_prob: np.ndarray
    clicks: np.ndarray


def fixed_batch_seed(seed: int) -> int:
    """The fixed batch's seed, derived from the evaluation's (its own stream, not the users')."""
    return int(np.random.SeedSequence([int(seed), 1]).generate_state(1)[0])


def draw_fixed_batch(
    env: gymnasium.vector.VectorEnv, *, seed: int, steps: int = FIXED_BATCH_STEPS
) -> FixedBatch | None:
    """Candidate sets of ``env``'s users from ``reset(seed)`` and ``steps`` steps of uniformly
    random actions (from ``seed``: independent of every agent), with their true click
    probabilities and a click drawn for each candidate. ``None`` when the env's info has no
    ``click_prob`` (no ground truth to score against).

    ``env`` is an evaluation follower: stepping it never advances the training world, and the
    evaluation's sessions start with ``reset(seed=...)`` afterwards, so they are those of an
    evaluation without the batch (checked by tests/analysis/test_fixed_batch.py).
    """
    obs, raw = env.reset(seed=seed)
    info: Info = dict(batched_info(raw))
    if "click_prob" not in info:
        return None
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), 2]))
    slate = slate_size_of(env.single_action_space)
    observations, infos = [np.asarray(obs)], [info]
    for _ in range(steps):
        keys = rng.random(np.shape(info["click_prob"]))
        obs, _, _, _, raw = env.step(top_candidates(keys, slate))
        info = dict(batched_info(raw))
        observations.append(np.asarray(obs))
        infos.append(info)
    click_prob = np.concatenate([np.asarray(i["click_prob"], dtype=np.float64) for i in infos])
    clicks = rng.random(click_prob.shape) < click_prob
    return FixedBatch(observations, infos, click_prob, clicks)


@contextlib.contextmanager
def _agent_rng_kept(agent: Agent) -> Iterator[None]:
    """Scoring the batch must not shift the agent's own stream: a ``random`` agent ranks with its
    ``rng``, which also picks its training actions. Its state is put back afterwards."""
    rng = getattr(agent, "rng", None)
    if not isinstance(rng, np.random.Generator):
        yield
        return
    state = rng.bit_generator.state
    try:
        yield
    finally:
        rng.bit_generator.state = state


def score_fixed_batch(agent: Agent, batch: FixedBatch, *, k: int) -> dict[str, float]:
    """The click and ranking keys of ``agent`` on ``batch`` (module doc): its ranking of every
    candidate (click probabilities where it has a click model, else ``scores``/``q_values``,
    else the slate it would show) and its click probabilities, against the batch's clicks."""
    from experiments.analysis.click_metrics import click_probability_function, fixed_batch_metrics

    predict = click_probability_function(agent)
    ranking = ranking_function(agent)
    act = acting_function(agent)
    probs: list[np.ndarray] | None = [] if predict is not None else None
    scores: list[np.ndarray] = []
    slate_ranks: list[np.ndarray | None] = []
    with _agent_rng_kept(agent):
        for obs, info in zip(batch.observations, batch.infos, strict=True):
            p = predict(obs, info) if predict is not None else None
            if probs is not None:
                if p is None:  # no click model in this configuration: no click keys
                    probs = None
                else:
                    probs.append(np.asarray(p, dtype=np.float64))
            if ranking is not None:
                scores.append(np.asarray(ranking(obs, info), dtype=np.float64))
            elif probs is None:
                slate_ranks.append(_slate_scores(act(obs, info), batch.click_prob.shape[1]))
    click_probs = np.concatenate(probs) if probs else None
    if click_probs is not None:
        rank_scores: np.ndarray | None = click_probs
    elif scores:
        rank_scores = np.concatenate(scores)
    else:
        slates = [r for r in slate_ranks if r is not None]
        rank_scores = None
        if slates and len(slates) == len(slate_ranks):
            rank_scores = np.concatenate(slates)
            if k > int(np.max(rank_scores)):  # beyond the slate there is no ranking
                rank_scores = None
    return fixed_batch_metrics(batch.click_prob, batch.clicks, rank_scores, click_probs, k=k)


def _slate_scores(actions: Any, num_candidates: int) -> np.ndarray | None:
    """A slate ``(B, s)`` as scores: ``s`` for its first item ... 1 for its last, 0 elsewhere;
    ``None`` for single items (one shown item is no ranking)."""
    acts = np.asarray(actions, dtype=np.int64)
    if acts.ndim != 2:
        return None
    out = np.zeros((acts.shape[0], num_candidates))
    np.put_along_axis(out, acts, np.arange(acts.shape[1], 0, -1, dtype=np.float64)[None, :], 1)
    return out
