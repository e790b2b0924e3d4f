"""simulate_log: the simulator's own interaction logs, in the InteractionLog shape."""

import gymnasium as gym
import numpy as np
import pandas as pd
import pytest
from scipy.stats import spearmanr

import recsim_env  # noqa: F401
from recsim_env.calibrate import clicks_only, simulate_log
from recsim_env.choice import sigmoid
from recsim_env.validation import ConfigError

STATIC = dict(  # users that keep their interest through the log: the truth is one vector per user
    num_items=60,
    num_topics=3,
    drift="none",
    fatigue_weight=0.0,
    interest_lr=0.0,
    drift_pull=0.0,
)


def test_log_shape_and_ids():
    log = simulate_log(STATIC, num_users=8, steps=80, seed=3)
    df = log.interactions
    assert list(df.columns) == ["user", "item", "timestamp", "click"]
    assert len(df) == 8 * 80 and isinstance(df.index, pd.RangeIndex)
    assert df["user"].dtype == np.int64 and df["item"].dtype == np.int64
    assert df["timestamp"].dtype == np.int64 and df["click"].dtype == np.int8
    assert set(df["click"].unique()) <= {0, 1}
    key = df[["timestamp", "user", "item"]].to_records(index=False)
    assert (np.sort(key, order=["timestamp", "user", "item"]) == key).all()
    assert df["item"].between(0, 59).all()
    # without returning users a session is a user: its steps are one tick apart, a new id after it
    steps = df.sort_values(["user", "timestamp"]).groupby("user")["timestamp"].diff().dropna()
    assert (steps == 1).all()
    assert df["user"].nunique() > 8  # sessions ended (budget 15-25 < 80 steps) and new users came
    assert log.users.index.nunique() == df["user"].nunique()
    topics = log.items[list(log.category_columns)].to_numpy()
    np.testing.assert_allclose(topics.sum(axis=1), 1.0, rtol=1e-5)
    assert set(df["item"]) == set(log.items.index)
    positives = clicks_only(log)
    assert "click" not in positives.interactions.columns
    assert len(positives.interactions) == int(df["click"].sum())


def test_logged_clicks_follow_the_exported_truth():
    """The truth exported in items/users reproduces the logged click rate: rows, ids and the hidden
    features are aligned (binomial tolerance: 4 standard errors)."""
    cfg = dict(STATIC, budget_min=40.0, budget_max=60.0)
    log = simulate_log(cfg, num_users=32, steps=150, seed=1)
    df = log.interactions
    x = log.items.loc[df["item"], list(log.category_columns)].to_numpy()
    u = log.users.loc[df["user"], [f"true_interest_{k}" for k in range(3)]].to_numpy()
    a = log.items.loc[df["item"], "true_appeal"].to_numpy()
    p = sigmoid(4.0 * (u * x).sum(axis=1) + 1.0 * a - 1.5)  # SimConfig defaults β, α, s0
    se = np.sqrt(np.sum(p * (1 - p))) / len(p)
    assert abs(df["click"].mean() - p.mean()) < 4 * se


def test_popularity_policy_shows_popular_items_more():
    def exposure_rank(policy):
        log = simulate_log(STATIC, num_users=32, steps=100, seed=0, policy=policy)
        shown = log.interactions["item"].value_counts()
        return spearmanr(shown.to_numpy(), log.items.loc[shown.index, "true_appeal"])[0]

    assert exposure_rank("popularity") > exposure_rank("uniform") + 0.2


def test_returning_users_keep_their_id_and_come_back_after_a_gap():
    cfg = dict(STATIC, returning_users=True, gap_mean_min=5.0, gap_mean_max=5.0)
    log = simulate_log(cfg, num_users=8, steps=150, seed=2, tick_seconds=60.0)
    df = log.interactions.sort_values(["user", "timestamp"])
    dt = df.groupby("user")["timestamp"].diff().dropna()
    assert (dt >= 60.0).all() and (dt % 60.0 == 0).all()
    assert (dt > 60.0).any()  # returns: a gap of at least one tick between sessions
    assert df.groupby("user").size().max() > 40  # a user's sessions share one id


def test_churn_gives_new_items_new_ids():
    log = simulate_log(dict(STATIC, item_churn=0.01), num_users=16, steps=100, seed=0)
    ids = log.interactions["item"]
    assert (ids >= 60).any()
    later = log.items.loc[log.items.index >= 60]
    assert (later["true_birth"] > 0).all()


def test_accepts_a_vector_env_and_rejects_others():
    envs = gym.make_vec("recsim_env/Stationary-v0", num_envs=4, num_items=50, num_topics=3)
    log = simulate_log(envs, steps=10, seed=0, policy="uniform")
    assert len(log.interactions) == 40
    with pytest.raises(TypeError, match="make_vec"):
        simulate_log(gym.make("recsim_env/Stationary-v0"), steps=2)
    with pytest.raises(ConfigError, match="policy"):
        simulate_log(STATIC, policy="greedy")
