"""NaN and inf never reach a reward, an observation or the ground truth (issue 14, item 4).

Two layers: the config bounds (``recsim_env.config``: ``WEIGHT_MAX``, ``TICKS_MIN/MAX``, ...)
reject values whose derived quantities would overflow float32, and the core's finite guard
(on under these tests: ``conftest.py`` sets ``RECSIM_CHECK_FINITE=1``) asserts it on every step.
The property test drives the simulator with extreme values that the bounds still accept.
"""

from __future__ import annotations

import os
import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from recsim_env import RecSimVectorEnv
from recsim_env.config import (
    BUDGET_MAX,
    COUNT_MAX,
    POSITION_BIAS_MAX,
    TICKS_MAX,
    TICKS_MIN,
    WEIGHT_MAX,
)
from recsim_env.core import BatchedCore

WEIGHTS = (
    "interest_weight",
    "appeal_weight",
    "fatigue_weight",
    "quality_engagement",
    "satisfaction_engagement",
    "clickbait_penalty",
    "budget_refund",
    "user_noise",
    "longterm_weight",
    "return_sensitivity",
    "popularity_noise",
    "signal_noise",
)
SIGNED = ("click_threshold", "disappointment_quality")
TIME_CONSTANTS = ("popularity_maturity", "freshness_scale", "signal_maturity")


def extreme(lo: float, hi: float, typical: float) -> st.SearchStrategy[float]:
    """Mostly the bounds themselves (where overflow would happen), sometimes a typical value."""
    return st.sampled_from([lo, hi, typical])


configs = st.fixed_dictionaries(
    {
        **{name: extreme(0.0, WEIGHT_MAX, 1.0) for name in WEIGHTS},
        **{name: extreme(-WEIGHT_MAX, WEIGHT_MAX, 0.5) for name in SIGNED},
        **{name: extreme(TICKS_MIN, TICKS_MAX, 100.0) for name in TIME_CONSTANTS},
        "budget_min": st.sampled_from([1e-9, 15.0]),
        "budget_max": st.sampled_from([BUDGET_MAX, 25.0]),
        "position_bias": extreme(0.0, POSITION_BIAS_MAX, 0.5),
        "topic_concentration": st.sampled_from([1e-300, 1e300, 0.3]),
        "quality_appeal_corr": st.sampled_from([-1.0, 1.0]),
        "fatigue_decay": st.sampled_from([0.0, 0.999999]),
        "history_decay": st.sampled_from([0.0, 0.9999999]),
        "exposure_fatigue": st.sampled_from([0.0, 1.0]),
        "interest_lr": st.sampled_from([0.0, 0.5]),
        "drift_pull": st.sampled_from([0.0, 1.0]),
        "gap_mean_max": st.sampled_from([60.0, 1e300]),
        "max_session_steps": st.sampled_from([1, COUNT_MAX]),
        "lifetime_ticks": st.sampled_from([1, COUNT_MAX]),
        "item_churn": st.sampled_from([0.0, 0.05, 1.0]),
        "slate_size": st.sampled_from([0, 1, 3]),
        "returning_users": st.booleans(),
        "lifetime": st.booleans(),
        "observability": st.sampled_from(["partial", "full"]),
        "reward": st.sampled_from(["engagement", "click"]),
        "drift": st.sampled_from(["mixed", "seasonal", "trending", "cohort", "burst"]),
        "item_embedding_dim": st.sampled_from([0, 2]),
        "seed": st.integers(0, 2**16),
    }
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(kwargs=configs)
def test_extreme_but_accepted_values_never_produce_nan_or_leave_the_spaces(kwargs):
    kwargs = dict(kwargs)
    seed = kwargs.pop("seed")
    if kwargs.pop("lifetime") and kwargs["returning_users"]:
        kwargs["horizon"] = "lifetime"
    env = RecSimVectorEnv(num_envs=4, num_items=40, num_candidates=5, **kwargs)
    space = env.single_observation_space
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no overflow / invalid-value warning on the way either
        obs, info = env.reset(seed=seed)
        env.action_space.seed(seed)
        for _ in range(25):
            obs, reward, _, _, info = env.step(env.action_space.sample())
            assert np.isfinite(reward).all()
            assert all(space.contains(row) for row in obs), obs
            for key in ("regret", "click_prob", "expected_reward", "engagement"):
                assert np.isfinite(info[key]).all(), key
            assert ((info["click_prob"] >= 0) & (info["click_prob"] <= 1)).all()


def test_the_finite_guard_is_on_under_tests_and_names_what_is_not_finite():
    assert os.environ.get("RECSIM_CHECK_FINITE") == "1"  # tests/recsim_env/conftest.py
    env = RecSimVectorEnv(num_envs=2)
    assert env.core.check_finite
    env.reset(seed=0)
    env.world.catalogue.features[:] = np.nan  # what an overflow upstream would leave behind
    with pytest.raises(AssertionError, match=r"non-finite observation in step\(\) at clock 1"):
        env.step(np.zeros(2, np.int64))


def test_the_finite_guard_is_off_by_default(monkeypatch):
    monkeypatch.delenv("RECSIM_CHECK_FINITE")
    from recsim_env.config import SimConfig

    assert not BatchedCore(SimConfig(), 2).check_finite
    monkeypatch.setenv("RECSIM_CHECK_FINITE", "0")
    assert not BatchedCore(SimConfig(), 2).check_finite
