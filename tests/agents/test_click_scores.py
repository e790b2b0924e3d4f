"""The optional click-model contract (agents.click_model): which agents predict click
probabilities, in which configuration, and that those without a click model say so (None)."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

import recsim_env  # noqa: F401  (registers the env ids)
from agents.base import StepCallback
from agents.baselines import (
    DiscountedUCB,
    EpsilonGreedyAgent,
    FrozenAgent,
    GreedyAgent,
    LinearThompson,
    LinUCB,
    OracleAgent,
    PopularityAgent,
    RandomAgent,
    SlidingWindowUCB,
)
from agents.click_model import env_reward_kind
from agents.dqn import DQNAgent
from recsim_env.sb3_vec_env import RecSimVecEnv

ENV = "recsim_env/Stationary-v0"
LINEAR = [LinUCB, LinearThompson, SlidingWindowUCB, DiscountedUCB]


def make_env(reward: str = "engagement", num_envs: int = 8):
    return gym.make_vec(ENV, num_envs=num_envs, reward=reward)


class _Last(StepCallback):
    """Where the stream stands after ``learn``: the observation (and info) to act on next."""

    def on_step(self, transition):
        self.obs, self.info = transition.next_obs, transition.info
        return True


def trained(agent, steps: int = 160):
    last = _Last()
    agent.learn(steps, callback=last)
    return agent, last.obs, last.info


def assert_probabilities(p, shape):
    assert p is not None and p.shape == shape and p.dtype == np.float64
    assert np.all((p >= 0.0) & (p <= 1.0))


def test_env_reward_kind_through_wrappers():
    assert env_reward_kind(make_env("click")) == "click"
    assert env_reward_kind(make_env("engagement")) == "engagement"
    assert env_reward_kind(gym.make(ENV, reward="click")) == "click"  # gymnasium wrappers
    assert env_reward_kind(RecSimVecEnv(make_env("click"))) == "click"  # SB3 VecEnv
    assert env_reward_kind(object()) is None


@pytest.mark.parametrize("reward", ["click", "engagement"])
def test_greedy_logistic_model_is_a_click_probability_whatever_the_reward(reward):
    for cls in (GreedyAgent, EpsilonGreedyAgent):
        agent, obs, info = trained(cls(make_env(reward), seed=0))
        p = agent.click_probability(obs, info=info)
        assert_probabilities(p, (8, 20))
        np.testing.assert_allclose(p, agent.scores(obs, explore=False, info=info))
        assert np.ptp(p) > 0  # it learned something


def test_greedy_reward_regression_only_when_the_reward_is_the_click():
    agent, obs, info = trained(GreedyAgent(make_env("click"), target="reward", seed=0))
    p = agent.click_probability(obs, info=info)
    assert_probabilities(p, (8, 20))
    np.testing.assert_allclose(p, np.clip(agent.scores(obs, explore=False, info=info), 0, 1))
    agent, obs, info = trained(GreedyAgent(make_env("engagement"), target="reward", seed=0))
    assert agent.click_probability(obs, info=info) is None


@pytest.mark.parametrize("cls", LINEAR, ids=lambda c: c.__name__)
def test_linear_bandits_on_click_reward_clip_their_estimate(cls):
    agent, obs, info = trained(cls(make_env("click"), seed=0))
    p = agent.click_probability(obs, info=info)
    assert_probabilities(p, (8, 20))
    mean = agent.features.all_candidates(obs) @ agent.theta
    np.testing.assert_allclose(p, np.clip(mean, 0.0, 1.0))
    # on engagement reward, θ̂·φ estimates watch time: no click model
    agent, obs, info = trained(cls(make_env("engagement"), seed=0))
    assert agent.click_probability(obs, info=info) is None


@pytest.mark.parametrize("cls", [RandomAgent, PopularityAgent])
def test_agents_without_a_click_model_return_none(cls):
    agent, obs, info = trained(cls(make_env("click"), seed=0), steps=16)
    assert agent.click_probability(obs, info=info) is None


def test_oracle_returns_the_ground_truth():
    env = make_env("click")
    obs, info = env.reset(seed=0)
    agent = OracleAgent(env, seed=0)
    np.testing.assert_array_equal(agent.click_probability(obs, info=info), info["click_prob"])
    with pytest.raises(ValueError, match="click_prob"):
        agent.click_probability(obs)


def test_dqn_only_when_q_estimates_the_immediate_click():
    small = {"hidden_sizes": [8], "learning_starts": 16, "batch_size": 8, "seed": 0}
    env = make_env("click")
    agent, obs, info = trained(DQNAgent(env, gamma=0.0, **small))
    p = agent.click_probability(obs, info=info)
    assert_probabilities(p, (8, 20))
    np.testing.assert_allclose(p, np.clip(agent.q_values(obs), 0.0, 1.0), rtol=1e-6)
    assert DQNAgent(env, gamma=0.99, **small).click_probability(obs) is None  # Q is a return
    assert DQNAgent(make_env("engagement"), gamma=0.0, **small).click_probability(obs) is None


def test_frozen_agent_passes_its_inner_model_through():
    env = make_env("click")
    agent, obs, info = trained(FrozenAgent(env, inner=GreedyAgent(env, seed=0), learn_steps=80))
    np.testing.assert_array_equal(
        agent.click_probability(obs, info=info), agent.inner.click_probability(obs, info=info)
    )
    frozen_random = FrozenAgent(env, inner=RandomAgent(env, seed=0), learn_steps=0, seed=0)
    assert frozen_random.click_probability(obs, info=info) is None
