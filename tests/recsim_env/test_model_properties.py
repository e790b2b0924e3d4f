"""Properties of the user model that a toy simulator would fail (fixed seeds)."""

import gymnasium as gym
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import recsim_env  # noqa: F401
from recsim_env import DRIFT_PRESETS, RecSimVectorEnv


def _windows(x, n):
    x = np.asarray(x)
    return x[: len(x) // n * n].reshape(n, -1).mean(axis=1)


def test_stationary_oracle_reward_has_no_trend():
    envs = RecSimVectorEnv(num_envs=16, drift="none")
    _, info = envs.reset(seed=0)
    rewards = []
    for _ in range(1350):  # 21.6k user-steps; the first 100 ticks are the synchronised start
        _, r, _, _, info = envs.step(info["oracle_action"])
        rewards.append(r.mean())
    w = _windows(rewards[100:], 10)
    slope = np.polyfit(np.arange(len(w)), w, 1)[0]
    assert abs(slope * len(w)) < 0.05 * w.mean(), w


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_abrupt_change_hurts_a_frozen_policy_not_the_oracle(seed):
    change = 300
    envs = RecSimVectorEnv(
        num_envs=64, drift=[{"schedule": "changepoints", "times": [change], "process": "jump"}]
    )
    _, info = envs.reset(seed=seed)
    core = envs.core
    mu_before = core.world.drift.mean.copy()
    share, oracle_value, events = [], [], []
    for _ in range(600):
        # oracle-greedy under the pre-change interests: best topic match with the old population
        action = (core.world.catalogue.topics[core.candidates] @ mu_before).argmax(axis=1)
        expected = info["expected_reward"]
        share.append(expected[np.arange(64), action].mean() / expected.max(axis=1).mean())
        oracle_value.append(expected.max(axis=1).mean())
        _, _, _, _, info = envs.step(action)
        events.append(info["drift_event"][0])
    assert np.flatnonzero(events).tolist() == [change - 1]  # the tick that reached clock 300
    before, after = np.mean(share[change - 100 : change]), np.mean(share[change + 150 :])
    assert after < before - 0.1, (before, after)
    oracle_before, oracle_after = (
        np.mean(oracle_value[change - 100 : change]),
        np.mean(oracle_value[change + 150 :]),
    )
    assert oracle_after > 0.85 * oracle_before, (oracle_before, oracle_after)


def test_clickbait_wins_clicks_now_and_loses_the_session():
    def run(policy):
        envs = RecSimVectorEnv(num_envs=256, drift="none")
        _, info = envs.reset(seed=4)
        cat, core = envs.world.catalogue, envs.core
        clicks, returns = [], []
        for _ in range(250):
            _, _, _, _, info = envs.step(policy(cat, core, info))
            clicks.append(info["clicked"].mean())
            if "_final_info" in info:
                returns.extend(info["final_info"]["episode_return"][info["_final_info"]])
        return np.mean(clicks), np.mean(returns), len(returns)

    def click_maximiser(cat, core, info):
        return info["click_prob"].argmax(axis=1)

    def quality_aware(cat, core, info):
        q, a = cat.quality[core.candidates], cat.appeal[core.candidates]
        return (info["click_prob"] * (1.0 + np.tanh(q - 0.5 * a))).argmax(axis=1)

    ctr_bait, ret_bait, n_bait = run(click_maximiser)
    ctr_quality, ret_quality, n_quality = run(quality_aware)
    assert min(n_bait, n_quality) >= 200
    assert ctr_bait > ctr_quality + 0.05
    assert ret_quality > 1.5 * ret_bait
    # and the myopic expected-reward oracle is not the best long-term policy: gamma matters
    _, ret_myopic, _ = run(lambda cat, core, info: info["oracle_action"])
    assert ret_quality > ret_myopic


def test_fatigue_lowers_click_probability_and_recovers():
    envs = RecSimVectorEnv(
        num_envs=512, drift="none", budget_min=1e4, budget_max=1e4, max_session_steps=10_000
    )
    _, info = envs.reset(seed=0)
    core, topic = envs.core, 3
    treated = np.arange(512) < 256  # half the users see topic 3 again and again; the rest avoid it

    def topic_click_prob(info, rows):
        is_topic = core.world.catalogue.topics[core.candidates].argmax(axis=2) == topic
        return info["click_prob"][rows][is_topic[rows]].mean()

    gaps = []
    for t in range(60):
        topics = core.world.catalogue.topics[core.candidates][:, :, topic]
        repeat = treated & (t < 30)
        action = np.where(repeat, topics.argmax(axis=1), topics.argmin(axis=1))
        _, _, _, _, info = envs.step(action)
        gaps.append(topic_click_prob(info, ~treated) - topic_click_prob(info, treated))
    fatigued_gap = np.mean(gaps[20:30])  # control minus treated, while repeating
    recovered_gap = np.mean(gaps[50:60])  # after 20 steps away from the topic
    assert fatigued_gap > 0.03, gaps
    assert recovered_gap < fatigued_gap / 2, gaps


def test_drift_continues_across_reset_and_reseeding_restarts_it():
    env = gym.make(
        "recsim_env/AbruptShift-v0",
        drift=[{"schedule": "periodic", "period": 50, "process": "jump"}],
    )
    env.reset(seed=0)
    phases = []
    for _ in range(120):
        _, _, term, trunc, info = env.step(0)
        phases.append(info["drift_phase"])
        if term or trunc or len(phases) % 17 == 0:
            env.reset()  # no seed: a new session, the world goes on
    assert info["clock"] == 120 and phases[-1] == 2
    env.reset(seed=0)
    _, _, _, _, info = env.step(0)
    assert info["clock"] == 1 and info["drift_phase"] == 0


def test_item_churn_brings_cold_start_items():
    envs = gym.make_vec("recsim_env/ColdStart-v0", num_envs=32)
    _, info = envs.reset(seed=0)
    cat = envs.world.catalogue
    assert (cat.birth > 0).sum() == 0
    for _ in range(100):
        envs.step(np.zeros(32, np.int64))
    newborn = cat.birth > 0
    assert newborn.sum() > 50
    layout = envs.obs_layout
    pop, fresh = cat.features[:, layout.num_topics], cat.features[:, layout.num_topics + 1]
    assert pop[newborn].mean() < 0.5 * pop[~newborn].mean()  # no history yet: weak signal
    assert fresh[newborn].min() > fresh[~newborn].max()
    # no churn → the catalogue is never renewed
    still = gym.make_vec("recsim_env/Stationary-v0", num_envs=4)
    still.reset(seed=0)
    for _ in range(100):
        still.step(np.zeros(4, np.int64))
    assert (still.world.catalogue.birth > 0).sum() == 0


@settings(max_examples=25, deadline=None)
@given(
    seed=st.integers(0, 2**31 - 1),
    drift=st.sampled_from(sorted(DRIFT_PRESETS)),
    observability=st.sampled_from(["partial", "full"]),
    notify=st.booleans(),
    slate=st.sampled_from([0, 1, 3]),
    churn=st.sampled_from([0.0, 0.05]),
    policy_seed=st.integers(0, 1000),
)
def test_observations_and_interests_stay_inside_declared_bounds(
    seed, drift, observability, notify, slate, churn, policy_seed
):
    envs = RecSimVectorEnv(
        num_envs=8,
        num_items=100,
        drift=drift,
        observability=observability,
        notify_drift=notify,
        slate_size=slate,
        item_churn=churn,
        max_session_steps=40,
    )
    obs, _ = envs.reset(seed=seed)
    space = envs.single_observation_space
    rng = np.random.default_rng(policy_seed)
    for _ in range(60):
        assert np.all(obs >= space.low) and np.all(obs <= space.high)
        assert np.all(np.abs(envs.core.users.interest) <= 1.0)
        assert np.all(envs.core.users.fatigue >= 0) and np.all(
            envs.core.users.fatigue <= envs.config.fatigue_max + 1e-6
        )
        if slate:
            actions = np.argsort(rng.random((8, 20)), axis=1)[:, :slate]
        else:
            actions = rng.integers(0, 20, 8)
        obs, reward, *_ = envs.step(actions)
        assert np.all(np.isfinite(reward)) and np.all(reward >= 0)
