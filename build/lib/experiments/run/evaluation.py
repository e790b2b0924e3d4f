"""Greedy evaluation of an agent on fresh users, and the ranking quality ``eval/ndcg@k``.

The evaluation env *follows* the training env's world (same catalogue, same drift, same clock; it
never advances them): ``num_envs`` fresh users, one session each, run in parallel. Because the
world keeps drifting, an evaluation measures the agent against today's users.

``eval/ndcg@k`` compares the agent's ranking of the candidates with their true expected reward.
Agents that can rank expose ``scores(obs) -> (B, C)`` (higher = better) or ``q_values(obs)``; in
slate mode the slate's order is the ranking. Every built-in agent can rank (random ranks at random,
popularity by the popularity signal); agents without either have no ranking to compare, and
``eval/ndcg@k`` is left out rather than faked from one chosen item.

Click prediction (``eval/auc``, ``eval/logloss``, ``eval/accuracy``, ``eval/precision``,
``eval/recall``, ``eval/f1`` at threshold 0.5, ``eval/recall@k`` with ``k = ndcg_k``, and the same
keys ``..._ceiling`` for the ground truth ``info["click_prob"]`` on the same shown items): only for
agents whose ``click_probability`` returns probabilities (:mod:`agents.click_model`, computed by
:mod:`experiments.analysis.click_metrics` with scikit-learn); absent for every other agent, never
a made-up value. The agent's prediction for each step is made on the observation it acted on,
before it sees the outcome.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import gymnasium
import numpy as np

from agents.base import Agent, Info, agent_traits

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
    all steps of those sessions), ``eval/ndcg@k`` when the agent can rank and the click-prediction
    keys when it has a click model (see module doc).
    """
    obs, info = env.reset(seed=seed)
    num = int(env.num_envs)
    active = np.ones(num, dtype=bool)
    returns = np.zeros(num)
    steps = clicks = regret = 0.0
    ndcg_sum, ndcg_n = 0.0, 0
    act = acting_function(agent)
    rank = ranking_function(agent)
    clicks_log, predict = _click_log(agent, ndcg_k)
    for _ in range(max_steps):
        actions = act(obs, info)
        if clicks_log is not None:
            probs = predict(obs, info)
            if probs is None and clicks_log.has_model is None:  # no click model here: no keys
                clicks_log = None
            candidates = info
        relevance = info.get("expected_reward") if isinstance(info, Mapping) else None
        if relevance is not None:
            rel = np.asarray(relevance)[active]
            if rank is not None:
                values = ndcg_at_k(np.asarray(rank(obs, info))[active], rel, ndcg_k)
            elif np.ndim(actions) == 2:  # slate mode: the slate is a ranking
                values = slate_ndcg_at_k(np.asarray(actions)[active], rel, ndcg_k)
            else:
                values = None
            if values is not None:
                ok = ~np.isnan(values)
                ndcg_sum += float(values[ok].sum())
                ndcg_n += int(ok.sum())
        obs, rewards, terminated, truncated, info = env.step(actions)
        if clicks_log is not None:
            clicks_log.record(probs, actions, info, candidate_info=candidates, active=active)
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
    if clicks_log is not None and clicks_log.has_model:
        metrics.update(clicks_log.metrics())
        metrics.update(clicks_log.ceiling_metrics())
    return metrics


def _click_log(agent: Agent, k: int) -> tuple[Any, Any]:
    """``(ClickPredictionLog, predict)`` for an agent with ``click_probability``, else
    ``(None, None)`` (scikit-learn is imported only then)."""
    if not callable(getattr(agent, "click_probability", None)):
        return None, None
    from experiments.analysis.click_metrics import ClickPredictionLog, click_probability_function

    return ClickPredictionLog(k=k), click_probability_function(agent)
