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
        ({"lifetime_ticks": 0}, ["lifetime_ticks", "0", "an integer in [1, 1e+12]"]),
        ({"return_sensitivity": -1.0}, ["return_sensitivity", "-1.0"]),
        ({"item_embedding_dim": -2}, ["item_embedding_dim", "-2", "[0, 64]"]),
        ({"signal_noise": -0.1}, ["signal_noise", "-0.1"]),
        ({"signal_maturity": 0}, ["signal_maturity", "0", "[1e-06, 1e+09]", "ticks"]),
        ({"longterm_weight": float("nan")}, ["longterm_weight", "nan", "finite"]),
        # values whose derived quantities would overflow float32 (NaN rewards, observations)
        (
            {"interest_weight": 1e300},
            ["interest_weight", "1e+300", "[0, 1e+06]", "|u·x| <= 1", "float32"],
        ),
        ({"interest_weight": 1e39}, ["interest_weight", "1e+39", "[0, 1e+06]"]),
        ({"satisfaction_engagement": 1e300}, ["satisfaction_engagement", "[0, 1e+06]"]),
        ({"fatigue_weight": 1e40}, ["fatigue_weight", "1e+40", "[0, 1e+06]"]),
        ({"appeal_weight": 1e7}, ["appeal_weight", "10000000.0", "float32"]),
        ({"quality_engagement": 1e39}, ["quality_engagement"]),
        ({"clickbait_penalty": 1e39}, ["clickbait_penalty"]),
        ({"longterm_weight": 1e39}, ["longterm_weight", "[0, 1e+06]"]),
        ({"click_threshold": -1e300}, ["click_threshold", "[-1e+06, 1e+06]"]),
        ({"popularity_noise": 1e300}, ["popularity_noise", "1e+300"]),
        ({"budget_max": 1e300}, ["budget_max", "1e+300", "1e+06", "per step"]),
        ({"popularity_maturity": 1e-300}, ["popularity_maturity", "1e-300", "[1e-06, 1e+09]"]),
        ({"popularity_maturity": 1e300}, ["popularity_maturity", "1e+300", "[1e-06, 1e+09]"]),
        ({"freshness_scale": 1e-300}, ["freshness_scale", "1e-300", "ticks"]),
        ({"position_bias": 1e300}, ["position_bias", "[0, 100]"]),
        ({"max_session_steps": 10**30}, ["max_session_steps", "[1, 1e+12]"]),
        # sizes that would end in a MemoryError or a hang
        ({"num_items": 10**12}, ["num_items", "1000000000000", "GiB", "num_items <="]),
        ({"num_topics": 10**9, "num_items": 1000}, ["num_items", "num_topics=1000000000"]),
        (
            {"drift": [{"schedule": "periodic", "process": "seasonal", "num_profiles": 10**12}]},
            ["drift[0].num_profiles", "1000000000000", "[2, 10000]"],
        ),
        # malformed drift specs name the entry
        ({"drift": ["abrupt"]}, ["drift[0]", "'abrupt'", "a dict with a 'schedule'", "alone"]),
        ({"drift": [None]}, ["drift[0]", "None"]),
        ({"drift": None}, ["drift", "None", "a preset"]),
        ({"drift": 5}, ["drift", "5", "a preset"]),
        (
            {"drift": [{"schedule": "changepoints", "times": None, "process": "jump"}]},
            ["drift[0].times", "None", "list of"],
        ),
        (
            {"drift": [{"schedule": "changepoints", "times": [], "process": "jump"}]},
            ["drift[0].times", "[]", "non-empty"],
        ),
        (
            {"drift": [{"schedule": "changepoints", "times": [5, 0], "process": "jump"}]},
            ["drift[0].times[1]", "0", ">= 1"],
        ),
        (
            {"drift": [{"schedule": "changepoints", "times": "100", "process": "jump"}]},
            ["drift[0].times", "'100'"],
        ),
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
    # far beyond memory: a clear error up front, not a MemoryError
    with pytest.raises(ValueError, match=r"invalid num_envs=1000000000000 .*at most \d+ users"):
        gym.make_vec("recsim_env/DriftingUsers-v0", num_envs=10**12)


def test_numpy_scalars_are_accepted_everywhere_and_normalised():
    """Sweeps and Optuna hand over numpy scalars; they behave exactly like Python numbers."""
    plain = dict(
        num_items=500,
        num_candidates=10,
        slate_size=2,
        interest_weight=3.0,
        notify_drift=True,
        drift=[{"schedule": "changepoints", "times": [3, 7], "process": "jump", "ramp": 2}],
    )
    numpy = dict(
        num_items=np.int64(500),
        num_candidates=np.int32(10),
        slate_size=np.uint8(2),
        interest_weight=np.float32(3.0),
        notify_drift=np.bool_(True),
        drift=[
            {
                "schedule": "changepoints",
                "times": np.array([3, 7]),
                "process": "jump",
                "ramp": np.int64(2),
            }
        ],
    )
    a = gym.make_vec("recsim_env/DriftingUsers-v0", num_envs=np.int64(3), **numpy)
    b = gym.make_vec("recsim_env/DriftingUsers-v0", num_envs=3, **plain)
    cfg = a.unwrapped.config
    assert type(cfg.num_items) is int and type(cfg.interest_weight) is float
    assert type(cfg.notify_drift) is bool and type(cfg.drift[0]["ramp"]) is int
    assert cfg == b.unwrapped.config
    single = gym.make("recsim_env/DriftingUsers-v0", user_index=np.int64(1), **numpy)
    single.reset(seed=0)
    for _ in range(10):
        single.step(np.array([0, 1]))
    a.reset(seed=np.int64(0))
    b.reset(seed=0)
    for _ in range(10):
        actions = np.tile([0, 1], (3, 1))
        np.testing.assert_array_equal(a.step(actions)[0], b.step(actions)[0])


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
