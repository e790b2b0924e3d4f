"""The long-term references on returning users: oracle_longterm and the observation-only rule."""

import importlib.util
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest

import recsim_env  # noqa: F401
from agents.baselines import LongTermRuleAgent, OracleAgent, OracleLongTermAgent

# the study script (docs/studies/longterm/scripts/, not part of the library), loaded from its file
_SCRIPT = Path(__file__).resolve().parents[2] / "docs/studies/longterm/scripts/measure_longterm.py"
_spec = importlib.util.spec_from_file_location("measure_longterm", _SCRIPT)
assert _spec is not None and _spec.loader is not None
_study = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_study)
first_lifetimes, mean_ci, measure = _study.first_lifetimes, _study.mean_ci, _study.measure


@pytest.fixture(scope="module")
def lifetime_returns():
    """Each policy on the same 256 users' first lifetimes (one world seed; paired comparison)."""
    policies = {
        "myopic_oracle": OracleAgent,
        "oracle_longterm": OracleLongTermAgent,
        "longterm_rule": LongTermRuleAgent,
        "myopic_rule": lambda env: LongTermRuleAgent(env, return_weight=0.0),
    }
    return {name: first_lifetimes(p, seed=11, users=256) for name, p in policies.items()}


def test_longterm_reference_beats_the_myopic_oracle_on_longterm_v0(lifetime_returns):
    myopic = lifetime_returns["myopic_oracle"]
    ref = lifetime_returns["oracle_longterm"]
    assert ref["return"] > 1.3 * myopic["return"], (ref, myopic)
    # by keeping users: more sessions per lifetime
    assert ref["sessions"] > myopic["sessions"]


def test_observation_only_rule_finds_long_term_value(lifetime_returns):
    r = {name: v["return"] for name, v in lifetime_returns.items()}
    # the observed quality signals carry the long-term value: with them the rule beats the
    # hidden-state myopic oracle, without the return signal it does not
    assert r["longterm_rule"] > r["myopic_oracle"] > r["myopic_rule"], r
    assert r["longterm_rule"] > 1.5 * r["myopic_rule"], r


def test_measure_reports_gain_and_capture_with_intervals():
    result = measure([0, 1], users=32)
    assert len(result["per_seed"]) == 2
    for key in ("gain", "capture", "myopic_oracle", "oracle_longterm"):
        mean, half = result["summary"][key]
        assert np.isfinite(mean) and half >= 0
    row = result["per_seed"][0]
    assert row["gain"] == pytest.approx(
        row["oracle_longterm"]["return"] / row["myopic_oracle"]["return"] - 1
    )
    assert mean_ci([1.0, 3.0]) == pytest.approx((2.0, 12.706 * np.sqrt(2) / np.sqrt(2)))


def test_oracle_longterm_acts_on_the_reference_action_single_and_batched():
    envs = gym.make_vec("recsim_env/LongTerm-v0", num_envs=6)
    obs, info = envs.reset(seed=0)
    agent = OracleLongTermAgent(envs)
    np.testing.assert_array_equal(agent.act(obs, info=info), info["longterm_action"])
    np.testing.assert_array_equal(
        agent.scores(obs, explore=False, info=info), info["longterm_value"]
    )
    env = gym.make("recsim_env/LongTerm-v0")
    obs1, info1 = env.reset(seed=0)
    assert agent.act(obs1, info=info1) == info1["longterm_action"]
    slate = gym.make_vec("recsim_env/LongTerm-v0", num_envs=3, slate_size=3)
    obs3, info3 = slate.reset(seed=0)
    actions = OracleLongTermAgent(slate).act(obs3, info=info3)
    assert actions.shape == (3, 3)
    _, _, _, _, info4 = slate.step(actions)
    np.testing.assert_allclose(info4["longterm_regret"], 0.0, atol=1e-6)


def test_rule_is_observation_only_and_deterministic(tmp_path):
    envs = gym.make_vec("recsim_env/LongTerm-v0", num_envs=4)
    obs, info = envs.reset(seed=0)
    agent = LongTermRuleAgent(envs, return_weight=1.5)
    a = agent.act(obs)  # no info needed
    np.testing.assert_array_equal(a, agent.act(obs, info=info))
    path = tmp_path / "rule.pkl"
    agent.save(path)
    loaded = LongTermRuleAgent.load(path, env=envs)
    assert loaded.hyperparameters()["return_weight"] == 1.5
    np.testing.assert_array_equal(loaded.act(obs), a)


def test_clear_errors_outside_returning_users_and_for_bad_hyperparameters():
    plain = gym.make_vec("recsim_env/DriftingUsers-v0", num_envs=2)
    obs, info = plain.reset(seed=0)
    with pytest.raises(ValueError, match="returning_users=True"):
        LongTermRuleAgent(plain)
    with pytest.raises(KeyError, match="longterm_action"):
        OracleLongTermAgent(plain).act(obs, info=info)
    with pytest.raises(ValueError, match="needs the ground-truth `info`"):
        OracleLongTermAgent(plain).act(obs)
    envs = gym.make_vec("recsim_env/LongTerm-v0", num_envs=2)
    with pytest.raises(ValueError, match="return_weight=-1"):
        LongTermRuleAgent(envs, return_weight=-1)
    with pytest.raises(ValueError, match="return_scale=0"):
        LongTermRuleAgent(envs, return_scale=0)
    with pytest.raises(ValueError, match="return_center=2"):
        LongTermRuleAgent(envs, return_center=2)
