"""The evaluation's fixed batch: every agent scored on the same candidate sets, independent of its
actions; the sessions (eval/return) and the agent's own stream are what they were without it."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

import recsim_env
from agents.baselines import GreedyAgent, OracleAgent, PopularityAgent, RandomAgent
from experiments.run.evaluation import (
    FIXED_BATCH_STEPS,
    draw_fixed_batch,
    evaluate,
    evaluate_return,
    fixed_batch_seed,
    score_fixed_batch,
)

ENV = "recsim_env/Stationary-v0"


def follower(train_env, num_envs: int = 32) -> recsim_env.RecSimVectorEnv:
    """An evaluation env of the training world, as the runner builds it (job.make_eval_env)."""
    core = train_env.unwrapped
    return recsim_env.RecSimVectorEnv(num_envs=num_envs, world=core.world, **core.config.to_dict())


@pytest.fixture
def trained():
    env = gym.make_vec(ENV, num_envs=16, reward="click")
    env.reset(seed=3)
    greedy = GreedyAgent(env, seed=0)
    greedy.learn(1_600)
    yield env, greedy
    env.close()


def test_two_agents_are_scored_on_identical_candidate_sets(trained):
    env, greedy = trained
    a = draw_fixed_batch(follower(env), seed=fixed_batch_seed(7))
    b = draw_fixed_batch(follower(env), seed=fixed_batch_seed(7))
    assert a is not None and b is not None
    assert a.click_prob.shape == ((1 + FIXED_BATCH_STEPS) * 32, 20)
    for x, y in zip(a.observations, b.observations, strict=True):
        np.testing.assert_array_equal(x, y)
    np.testing.assert_array_equal(a.click_prob, b.click_prob)
    np.testing.assert_array_equal(a.clicks, b.clicks)
    # so two different agents evaluated with one seed get the same ceilings, whatever they show
    oracle, popular = OracleAgent(env), PopularityAgent(env)
    out = {
        n: evaluate(ag, follower(env), seed=7) for n, ag in [("greedy", greedy), ("pop", popular)]
    }
    assert out["greedy"]["eval/recall@k_ceiling"] == out["pop"]["eval/recall@k_ceiling"]
    assert out["greedy"]["eval/recall@k"] != out["pop"]["eval/recall@k"]  # and rank them
    ceiling = evaluate(oracle, follower(env), seed=7)
    assert ceiling["eval/auc"] == ceiling["eval/auc_ceiling"] == out["greedy"]["eval/auc_ceiling"]
    assert ceiling["eval/auc"] > out["greedy"]["eval/auc"]


def test_the_batch_changes_neither_the_sessions_nor_the_agents_stream(trained):
    env, greedy = trained
    with_batch = evaluate(greedy, follower(env), seed=5)
    assert with_batch["eval/return"] == evaluate_return(greedy, follower(env), seed=5)
    # a random agent ranks with its own rng, which also picks its training actions
    rand = RandomAgent(env, seed=1)
    before = rand.rng.bit_generator.state
    batch = draw_fixed_batch(follower(env), seed=11)
    assert batch is not None
    out = score_fixed_batch(rand, batch, k=5)
    assert rand.rng.bit_generator.state == before
    assert abs(out["eval/recall@k"] - 5 / 20) < 0.1  # random ranking: about k / C


class ActsOnly:
    """An agent that shows one item and exposes no ranking (no scores, q_values, click model)."""

    def __init__(self, env):
        self.env = env

    def act(self, obs, *, explore=False):
        return np.zeros(obs.shape[0], dtype=np.int64)


def test_an_agent_that_cannot_rank_gets_no_ranking_key_not_one(trained):
    env, _ = trained
    out = evaluate(ActsOnly(env), follower(env), seed=2)
    assert "eval/recall@k" not in out and "eval/recall@k_ceiling" not in out
    assert "eval/ndcg@k" not in out and np.isfinite(out["eval/return"])


def test_a_slate_ranks_up_to_its_size():
    env = gym.make_vec(ENV, num_envs=8, slate_size=3)
    env.reset(seed=0)
    pop = PopularityAgent(env)
    ev = follower(env, 16)

    class SlateOnly(ActsOnly):
        def act(self, obs, *, explore=False):
            return pop.act(obs)

    batch = draw_fixed_batch(ev, seed=4)
    assert batch is not None
    within, beyond = (score_fixed_batch(SlateOnly(env), batch, k=k) for k in (3, 4))
    assert within["eval/recall@k"] == score_fixed_batch(pop, batch, k=3)["eval/recall@k"]
    assert beyond == {}  # the slate says nothing about a 4th place
    env.close()
