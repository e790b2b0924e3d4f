"""Bad input fails fast with a message naming the parameter, the value and what is allowed."""

import gymnasium as gym
import numpy as np
import pytest

import recsim_env  # noqa: F401
from recsim_env import InvalidActionError, RecSimEnv, RecSimVectorEnv, SimConfig


@pytest.mark.parametrize(
    ("kwargs", "fragments"),
    [
        ({"num_items": -5}, ["num_items", "-5", "an integer >= 1"]),
        ({"num_items": 2.5}, ["num_items", "integer"]),
        ({"num_candidates": 0}, ["num_candidates", "0"]),
        ({"num_items": 10, "num_candidates": 20}, ["num_candidates", "20", "num_items=10"]),
        ({"slate_size": 21}, ["slate_size", "21", "num_candidates=20"]),
        ({"slate_size": -1}, ["slate_size", "-1"]),
        ({"item_churn": 1.5}, ["item_churn", "1.5", "[0, 1]"]),
        ({"quality_appeal_corr": -2}, ["quality_appeal_corr", "-2"]),
        ({"fatigue_decay": 1.0}, ["fatigue_decay", "1.0", "[0, 1)"]),
        ({"interest_lr": 0.9}, ["interest_lr", "0.9", "0.5"]),
        ({"reward": "money"}, ["reward", "money", "engagement", "click"]),
        ({"observability": "omniscient"}, ["observability", "omniscient", "partial", "full"]),
        ({"drift": "earthquake"}, ["drift", "earthquake", "mixed", "seasonal"]),
        (
            {"drift": [{"schedule": "sometimes", "process": "jump"}]},
            ["drift[0].schedule", "sometimes", "poisson"],
        ),
        (
            {"drift": [{"schedule": "poisson", "process": "melt"}]},
            ["drift[0].process", "melt", "trending"],
        ),
        (
            {"drift": [{"schedule": "poisson", "rate": 2.0, "process": "jump"}]},
            ["drift[0].rate", "2.0"],
        ),
        (
            {"drift": [{"schedule": "periodic", "period": 0, "process": "jump"}]},
            ["drift[0].period", "0"],
        ),
        (
            {"drift": [{"schedule": "poisson", "process": "jump", "speed": 3}]},
            ["drift[0].speed", "ramp"],
        ),
        ({"budget_min": 10.0, "budget_max": 5.0}, ["budget_max", "5.0"]),
        ({"notify_drift": "yes"}, ["notify_drift", "yes"]),
        ({"max_session_steps": 0}, ["max_session_steps", "0"]),
        ({"typo_parameter": 1}, ["unknown simulator parameter", "typo_parameter", "num_items"]),
        # returning users
        ({"returning_users": True, "gap_mean_min": -3}, ["gap_mean_min", "-3", ">= 1"]),
        (
            {"returning_users": True, "gap_mean_min": 20.0, "gap_mean_max": 5.0},
            ["gap_mean_max", "5.0", ">= 20"],
        ),
        ({"return_prob_min": 1.5}, ["return_prob_min", "1.5", "[0, 1]"]),
        ({"return_prob_min": -0.1}, ["return_prob_min", "-0.1", "[0, 1]"]),
        ({"return_prob_max": 1.2}, ["return_prob_max", "1.2", "1]"]),
        (
            {"return_prob_min": 0.9, "return_prob_max": 0.5},
            ["return_prob_max", "0.5", "[0.9, 1]"],
        ),
        (
            {"returning_users": True, "horizon": "forever"},
            ["horizon", "forever", "session", "lifetime"],
        ),
        ({"horizon": "lifetime"}, ["horizon", "lifetime", "returning_users=True"]),
        ({"returning_users": "yes"}, ["returning_users", "yes", "true or false"]),
        ({"lifetime_ticks": 0}, ["lifetime_ticks", "0", "an integer >= 1"]),
        ({"return_sensitivity": -1.0}, ["return_sensitivity", "-1.0"]),
        ({"item_embedding_dim": -2}, ["item_embedding_dim", "-2", "[0, 64]"]),
        ({"signal_noise": -0.1}, ["signal_noise", "-0.1"]),
        ({"signal_maturity": 0}, ["signal_maturity", "0", "> 0"]),
        ({"longterm_weight": float("nan")}, ["longterm_weight", "nan", "finite"]),
    ],
)
def test_invalid_parameters_raise_clear_errors(kwargs, fragments):
    with pytest.raises(ValueError) as err:
        gym.make("recsim_env/DriftingUsers-v0", **kwargs)
    for fragment in fragments:
        assert fragment in str(err.value), (fragment, str(err.value))


def test_invalid_batch_size():
    with pytest.raises(ValueError, match="num_envs"):
        RecSimVectorEnv(num_envs=0)


def test_defaults_are_valid():
    cfg = SimConfig()  # the defaults pass their own validation, and survive a round trip
    assert SimConfig(**cfg.to_dict()) == cfg


@pytest.mark.parametrize(
    ("action", "message"),
    [
        (20, "must be in [0, 19]"),
        (-1, "must be in [0, 19]"),
        (2.5, "dtype"),
        (True, "dtype"),
        ("3", "dtype"),
        ([1, 2], "shape"),
    ],
)
def test_invalid_single_actions_raise_and_leave_state_unchanged(action, message):
    env = RecSimEnv()
    env.reset(seed=0)
    before = env.state_dict()
    with pytest.raises(InvalidActionError, match=message.replace("[", r"\[").replace("]", r"\]")):
        env.step(action)
    after = env.state_dict()
    assert after["counter"] == before["counter"]
    np.testing.assert_array_equal(after["obs"], before["obs"])
    np.testing.assert_array_equal(after["users"]["budget"], before["users"]["budget"])
    assert after["world"]["clock"] == before["world"]["clock"]


def test_invalid_vector_and_slate_actions():
    envs = RecSimVectorEnv(num_envs=4, slate_size=3)
    envs.reset(seed=0)
    with pytest.raises(InvalidActionError, match="distinct"):
        envs.step(np.array([[0, 1, 2], [0, 1, 2], [4, 4, 5], [0, 1, 2]]))
    with pytest.raises(InvalidActionError, match="shape"):
        envs.step(np.zeros((4, 2), np.int64))
    with pytest.raises(InvalidActionError, match="shape"):
        envs.step(np.zeros(3, np.int64))
    state = envs.state_dict()
    assert state["counter"] == 0
    envs.step(np.tile(np.arange(3), (4, 1)))  # a valid one still works afterwards
    # whole-number floats (as some wrappers send) are accepted
    single = RecSimVectorEnv(num_envs=2)
    single.reset(seed=0)
    single.step(np.array([1.0, 2.0]))


def test_step_before_reset_is_an_error():
    with pytest.raises(RuntimeError, match="reset"):
        RecSimVectorEnv(num_envs=2).step(np.zeros(2, np.int64))
