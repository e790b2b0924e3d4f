"""Returning users (``returning_users=True``): lifetimes of sessions, observable long-term signals.

Properties a toy would fail, on fixed seeds; each test runs in seconds.
"""

import copy
import warnings

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env as gym_check_env
from stable_baselines3.common.env_checker import check_env as sb3_check_env

import recsim_env  # noqa: F401
from recsim_env import RecSimEnv, RecSimVectorEnv
from recsim_env.choice import satisfaction_value
from recsim_env.returning import return_prob


def _rank(x):
    return np.argsort(np.argsort(x)).astype(np.float64)


def spearman(a, b) -> float:
    return float(np.corrcoef(_rank(a), _rank(b))[0, 1])


def quality_aware(envs, info):
    """Hidden-state policy that raises satisfaction: expected reward + the items' value."""
    core, cat = envs.core, envs.world.catalogue
    value = satisfaction_value(
        envs.config, cat.quality[core.candidates], cat.appeal[core.candidates]
    )
    return (info["expected_reward"] + 3.0 * info["click_prob"] * value).argmax(axis=1)


def click_maximiser(envs, info):
    return info["click_prob"].argmax(axis=1)


# ---------------------------------------------------------------------------------- the model
def test_a_satisfying_policy_gets_more_returns_than_the_click_maximiser():
    def run(policy):
        envs = RecSimVectorEnv(num_envs=256, returning_users=True, drift="none")
        _, info = envs.reset(seed=2)
        ends = returns = 0
        sigma_end = []
        for _ in range(150):
            _, _, _, _, info = envs.step(policy(envs, info))
            ends += int(info["session_end"].sum())
            returns += int(info["returned"].sum())
            # return_prob is the ground truth p_return(σ_end) of the sessions that just ended
            sigma_end.extend(info["return_prob"][info["session_end"]])
        return returns / ends, np.mean(sigma_end), ends

    rate_bait, p_bait, ends_bait = run(click_maximiser)
    rate_quality, p_quality, ends_quality = run(quality_aware)
    assert min(ends_bait, ends_quality) >= 200  # at least 200 users' sessions ended
    assert p_quality > p_bait + 0.05
    assert rate_quality > rate_bait + 0.05, (rate_quality, rate_bait)


@pytest.mark.parametrize("horizon", ["session", "lifetime"])
def test_a_user_never_returns_before_its_gap(horizon):
    cfg = dict(returning_users=True, horizon=horizon, lifetime_ticks=300, drift="gradual")
    envs = RecSimVectorEnv(num_envs=64, **cfg)
    obs, info = envs.reset(seed=5)
    layout, b = envs.obs_layout, 64
    recency = layout.user_slice("recency")
    prev_time = np.zeros(b, np.int64)
    pending_gap = np.zeros(b, np.int64)
    returns = 0
    rng = np.random.default_rng(0)
    for _ in range(600):
        obs, _, term, trunc, info = envs.step(rng.integers(0, 20, b))
        t = info["user_time"]
        new_user = (info["session_index"] == 1) & (t == 1)
        came_back = pending_gap > 0
        # a returning user's first step happens gap ticks of user time after the previous one
        np.testing.assert_array_equal(
            t[came_back], prev_time[came_back] + pending_gap[came_back] + 1
        )
        cont = ~came_back & ~new_user
        np.testing.assert_array_equal(t[cont], prev_time[cont] + 1)
        assert np.all(t <= envs.config.lifetime_ticks)
        gap = info["gap"]
        assert np.all(gap[info["returned"]] >= 1) and np.all(gap[~info["returned"]] == 0)
        assert np.all(info["returned"] <= info["session_end"])
        assert np.all(t[info["returned"]] + gap[info["returned"]] < envs.config.lifetime_ticks)
        # the returning user sees how long it was away, and it is the same user (sessions go on)
        back = info["returned"]
        expected = 1.0 - np.exp(-gap[back] / envs.config.gap_mean_max)
        np.testing.assert_allclose(
            obs[back, layout.items_size + recency.start], expected, rtol=1e-6
        )
        returns += int(back.sum())
        done = term | trunc
        ended_life = info["lifetime_end"]
        assert np.all(ended_life <= done)  # a lifetime ends only with an episode
        if horizon == "lifetime":
            np.testing.assert_array_equal(done, ended_life)
            np.testing.assert_array_equal(term, info["churned"])
        else:
            np.testing.assert_array_equal(done, info["session_end"] | ended_life)
        prev_time = np.where(ended_life, 0, t)
        pending_gap = np.where(back, gap, 0)
    assert returns > 200


def test_drift_and_rest_continue_while_the_user_is_away():
    env = RecSimEnv(returning_users=True, drift="gradual", budget_min=3.0, budget_max=4.0)
    env.reset(seed=1)
    users, cfg = env.core.users, env.config
    seen = 0
    for _ in range(400):
        _, _, term, trunc, info = env.step(0)
        if not (term or trunc):
            continue
        if info["returned"]:
            before = (users.interest[0].copy(), users.fatigue[0].copy(), users.history[0].copy())
            mu, g = env.world.drift.mean.copy(), info["gap"]
            env.reset()
            interest = np.clip(mu + (1 - cfg.drift_pull) ** g * (before[0] - mu), -1, 1)
            np.testing.assert_allclose(users.interest[0], interest, rtol=1e-5, atol=1e-6)
            np.testing.assert_allclose(
                users.fatigue[0], cfg.fatigue_decay**g * before[1], atol=1e-6
            )
            np.testing.assert_array_equal(users.history[0], before[2])  # the platform's log stays
            assert users.session_step[0] == 0 and users.budget[0] >= cfg.budget_min
            seen += 1
        else:
            env.reset()
    assert seen >= 10


def test_churn_ends_the_lifetime_and_a_new_user_arrives():
    envs = RecSimVectorEnv(
        num_envs=128,
        returning_users=True,
        horizon="lifetime",
        return_prob_min=0.3,
        return_prob_max=0.6,
    )
    _, info = envs.reset(seed=0)
    churned = 0
    for _ in range(200):
        before = envs.core.users.interest.copy()
        _, _, term, _, info = envs.step(info["oracle_action"])
        fi = info.get("final_info")
        if term.any():
            churned += int(term.sum())
            assert np.all(fi["lifetime_end"][term])
            assert np.all(fi["lifetime_return"][term] == info["lifetime_return"][term])
            np.testing.assert_array_equal(fi["episode_return"][term], fi["lifetime_return"][term])
            assert np.all(fi["lifetime_sessions"][term] >= 1)
            # the next user in the slot is new: first session, fresh interest
            assert not np.allclose(envs.core.users.interest[term], before[term])
            assert np.all(envs.core.lifetimes.visits[term] == 1)
    assert churned > 50


# ---------------------------------------------------------------------------------- observations
def test_observed_quality_signals_correlate_with_hidden_quality_and_are_never_exact():
    envs = RecSimVectorEnv(num_envs=1, returning_users=True)
    envs.reset(seed=3)
    for _ in range(700):
        envs.step(np.zeros(1, np.int64))
    cat, cfg = envs.world.catalogue, envs.config
    layout = envs.obs_layout
    item = layout.item_slices()
    completion = cat.features[:, item["completion"].start]
    return_rate = cat.features[:, item["return_rate"].start]
    age = envs.world.clock - cat.birth
    mature = age >= 3 * cfg.signal_maturity
    young = age < 0.3 * cfg.signal_maturity
    assert mature.sum() > 300
    value = satisfaction_value(cfg, cat.quality, cat.appeal)
    assert spearman(completion[mature], cat.quality[mature]) >= 0.5
    assert spearman(return_rate[mature], cat.quality[mature]) >= 0.5
    assert spearman(return_rate[mature], value[mature]) >= 0.5
    # never the hidden values themselves
    assert np.all(completion != cat.true_completion)
    assert np.all(return_rate != cat.true_return_rate)
    assert not np.allclose(return_rate[mature], return_prob(cfg, value[mature]), atol=1e-3)
    # young items (here: none, all were born before the clock started) vs a churning catalogue
    assert young.sum() == 0
    churn = RecSimVectorEnv(num_envs=1, returning_users=True, item_churn=0.002)
    churn.reset(seed=3)
    for _ in range(200):
        churn.step(np.zeros(1, np.int64))
    c = churn.world.catalogue
    age = churn.world.clock - c.birth
    newborn, old = age < 20, age > 2 * cfg.signal_maturity
    col = item["return_rate"].start
    spread_new = np.abs(c.features[newborn, col] - c.true_return_rate.mean()).mean()
    spread_old = np.abs(c.features[old, col] - c.true_return_rate.mean()).mean()
    assert newborn.sum() > 20 and spread_new < 0.25 * spread_old  # shrunk towards the prior


def test_item_embedding_is_a_stable_id_feature():
    envs = RecSimVectorEnv(num_envs=4, returning_users=True, item_embedding_dim=4, item_churn=0.01)
    obs, _ = envs.reset(seed=0)
    layout, cat = envs.obs_layout, envs.world.catalogue
    emb = layout.item_feature(obs, "embedding")
    assert emb.shape == (4, 20, 4) and np.all((emb > 0) & (emb < 1))
    np.testing.assert_array_equal(emb, cat.features[envs.core.candidates][..., -4:])
    table = cat.features[:, -4:].copy()
    for _ in range(30):
        envs.step(np.zeros(4, np.int64))
    kept = cat.birth <= 0
    np.testing.assert_array_equal(cat.features[kept, -4:], table[kept])  # stable per item
    assert not np.allclose(cat.features[~kept, -4:], table[~kept])  # a new item, a new id
    # same seed, same features; another seed, others
    again = RecSimVectorEnv(num_envs=4, returning_users=True, item_embedding_dim=4)
    again.reset(seed=0)
    np.testing.assert_array_equal(again.world.catalogue.features[:, -4:], table)
    again.reset(seed=1)
    assert not np.allclose(again.world.catalogue.features[:, -4:], table)


def test_layout_names_the_new_slices_and_hidden_state_stays_out_of_partial_obs():
    envs = gym.make_vec("recsim_env/LongTerm-v0", num_envs=8)
    obs, info = envs.reset(seed=0)
    layout = envs.obs_layout
    assert list(layout.item_slices())[-3:] == ["completion", "return_rate", "embedding"]
    assert list(layout.user_slices())[-4:] == ["recent_completion", "recency", "visits", "lifetime"]
    items, user = layout.split(obs)
    assert items.shape == (8, 20, layout.item_dim) and user.shape == (8, layout.user_dim)
    assert layout.item_dim == 10 + 3 + 2 + 4
    assert layout.item_feature(obs, "completion").shape == (8, 20)
    assert "satisfaction" not in layout.user_slices() and "interest" not in layout.user_slices()
    assert {"longterm_value", "longterm_action"} <= set(info)
    full = RecSimVectorEnv(num_envs=2, returning_users=True, observability="full")
    obs_full, _ = full.reset(seed=0)
    user_full = full.obs_layout.split(obs_full)[1]
    sl = full.obs_layout.user_slice("satisfaction")
    np.testing.assert_array_equal(user_full[:, sl.start], full.core.users.satisfaction)
    with pytest.raises(KeyError, match="no candidate feature 'quality'"):
        layout.item_slice("quality")


def test_longterm_info_is_the_reference_score_and_its_regret():
    envs = gym.make_vec("recsim_env/LongTerm-v0", num_envs=32)
    _, info = envs.reset(seed=1)
    core, cat, cfg = envs.core, envs.world.catalogue, envs.config
    value = satisfaction_value(cfg, cat.quality[core.candidates], cat.appeal[core.candidates])
    gain = info["expected_reward"] / info["click_prob"] + cfg.longterm_weight * value
    np.testing.assert_allclose(info["longterm_value"], info["click_prob"] * gain, rtol=1e-5)
    np.testing.assert_array_equal(info["longterm_action"], info["longterm_value"].argmax(axis=1))
    best = info["longterm_value"].max(axis=1)
    chosen = info["longterm_value"][:, 0]
    _, _, _, _, info2 = envs.step(np.zeros(32, np.int64))
    np.testing.assert_allclose(info2["longterm_regret"], best - chosen, rtol=1e-5, atol=1e-6)
    _, _, _, _, info3 = envs.step(info2["longterm_action"])
    np.testing.assert_allclose(info3["longterm_regret"], 0.0, atol=1e-6)


# ---------------------------------------------------------------------------------- API contracts
@pytest.mark.parametrize("horizon", ["session", "lifetime"])
def test_vector_env_matches_single_envs_with_returning_users(horizon):
    b, steps = 5, 400
    kwargs = dict(
        returning_users=True,
        horizon=horizon,
        lifetime_ticks=150,
        drift="mixed",
        item_churn=0.01,
        item_embedding_dim=2,
    )
    vec = RecSimVectorEnv(num_envs=b, **kwargs)
    singles = [RecSimEnv(user_index=i, **kwargs) for i in range(b)]
    v_obs, v_info = vec.reset(seed=4)
    for i, env in enumerate(singles):
        o, info = env.reset(seed=4)
        np.testing.assert_array_equal(o, v_obs[i])
    policy = np.random.default_rng(1)
    returned = ended = 0
    for _ in range(steps):
        actions = policy.integers(0, 20, b)
        v_obs, v_r, v_term, v_trunc, v_info = vec.step(actions)
        for i, env in enumerate(singles):
            o, r, term, trunc, info = env.step(int(actions[i]))
            assert (term, trunc, r) == (v_term[i], v_trunc[i], v_r[i])
            for key in ("returned", "gap", "user_time", "session_index", "lifetime_end"):
                assert info[key] == v_info[key][i], key
            if term or trunc:
                np.testing.assert_array_equal(o, v_info["final_obs"][i])
                o, info = env.reset()
                ended += 1
            returned += int(v_info["returned"][i])
            np.testing.assert_array_equal(o, v_obs[i])
            np.testing.assert_array_equal(info["longterm_value"], v_info["longterm_value"][i])
    assert ended > 10 and returned > 10


@pytest.mark.parametrize("horizon", ["session", "lifetime"])
def test_state_dict_resume_is_exact_with_returning_users(horizon):
    kwargs = dict(returning_users=True, horizon=horizon, lifetime_ticks=120, item_churn=0.01)
    a = RecSimVectorEnv(num_envs=16, **kwargs)
    a.reset(seed=9)
    rng = np.random.default_rng(0)
    for _ in range(80):
        a.step(rng.integers(0, 20, 16))
    b = RecSimVectorEnv(num_envs=16, **kwargs)
    b.load_state_dict(copy.deepcopy(a.state_dict()))
    for _ in range(120):
        act = rng.integers(0, 20, 16)
        oa, ra, ta, ua, ia = a.step(act)
        ob, rb, tb, ub, ib = b.step(act)
        np.testing.assert_array_equal(oa, ob)
        np.testing.assert_array_equal(ra, rb)
        np.testing.assert_array_equal(ta | ua, tb | ub)
        np.testing.assert_array_equal(ia["user_time"], ib["user_time"])
    # a single env saved between a session's end and the reset that brings the user back
    s = RecSimEnv(returning_users=True, horizon="session")
    s.reset(seed=2)
    while True:
        *_, term, trunc, info = s.step(0)
        if (term or trunc) and info["returned"]:
            break
    t = RecSimEnv(returning_users=True, horizon="session")
    t.load_state_dict(copy.deepcopy(s.state_dict()))
    np.testing.assert_array_equal(s.reset()[0], t.reset()[0])
    assert s.core.lifetimes.visits[0] == t.core.lifetimes.visits[0] >= 2


def test_checkers_pass_in_session_horizon():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        env = gym.make("recsim_env/LongTerm-v0", horizon="session", num_items=200)
        gym_check_env(env.unwrapped, skip_render_check=True)
        sb3_check_env(gym.make("recsim_env/LongTerm-v0", horizon="session"), warn=True)
    messages = [str(w.message) for w in caught]
    assert not [m for m in messages if "bound" in m.lower() or "inf" in m.lower()], messages


def test_default_ids_are_unchanged_by_the_returning_user_mode():
    envs = gym.make_vec("recsim_env/DriftingUsers-v0", num_envs=4)
    obs, info = envs.reset(seed=0)
    layout = envs.obs_layout
    assert layout.item_dim == 13 and layout.user_dim == 12 and envs.core.lifetimes is None
    assert "longterm_value" not in info
    _, _, _, _, info = envs.step(np.zeros(4, np.int64))
    assert not {"session_end", "returned", "gap", "user_time"} & set(info)
    assert "lifetimes" not in envs.state_dict()


@pytest.mark.parametrize(
    ("horizon", "observability", "slate", "reward"),
    [
        ("session", "full", 0, "engagement"),
        ("lifetime", "partial", 3, "click"),
        ("lifetime", "full", 1, "engagement"),
    ],
)
def test_observations_stay_inside_the_declared_bounds(horizon, observability, slate, reward):
    envs = RecSimVectorEnv(
        num_envs=16,
        num_items=100,
        returning_users=True,
        horizon=horizon,
        observability=observability,
        slate_size=slate,
        reward=reward,
        item_churn=0.02,
        item_embedding_dim=3,
        lifetime_ticks=80,
        drift="mixed",
    )
    obs, info = envs.reset(seed=7)
    space = envs.single_observation_space
    rng = np.random.default_rng(0)
    ends = 0
    for _ in range(200):
        assert np.all(obs >= space.low) and np.all(obs <= space.high)
        if slate:
            actions = np.argsort(rng.random((16, 20)), axis=1)[:, :slate]
        else:
            actions = rng.integers(0, 20, 16)
        obs, reward_, term, trunc, info = envs.step(actions)
        assert np.all(np.isfinite(reward_)) and np.all(reward_ >= 0)
        assert np.all(info["longterm_regret"] >= 0)
        ends += int(info["lifetime_end"].sum())
    assert ends > 20
