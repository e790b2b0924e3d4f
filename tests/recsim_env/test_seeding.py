"""Determinism: same seed → same stream; vector env ≡ B single envs (counter-based per-user RNG)."""

import gymnasium as gym
import numpy as np
import pytest

import recsim_env
from recsim_env import RecSimEnv, RecSimVectorEnv


def _rollout(seed: int, steps: int = 1000, env_id: str = "recsim_env/DriftingUsers-v0"):
    env = gym.make(env_id, item_churn=0.01, max_session_steps=30)
    obs, info = env.reset(seed=seed)
    policy = np.random.default_rng(0)  # the same action sequence for every rollout
    trace = [obs.copy()]
    rewards, infos, resets = [], [], 0
    for _ in range(steps):
        obs, r, term, trunc, info = env.step(int(policy.integers(20)))
        trace.append(obs.copy())
        rewards.append(r)
        infos.append(
            (
                info["clicked"],
                info["regret"],
                info["clock"],
                info["drift_phase"],
                info["click_prob"].copy(),
            )
        )
        if term or trunc:
            obs, info = env.reset()
            resets += 1
            trace.append(obs.copy())
    return np.array(trace), np.array(rewards), infos, resets


def test_same_seed_same_stream_across_resets():
    a_obs, a_r, a_info, resets = _rollout(7)
    b_obs, b_r, b_info, _ = _rollout(7)
    assert resets >= 20  # the comparison really spans many episodes
    np.testing.assert_array_equal(a_obs, b_obs)
    np.testing.assert_array_equal(a_r, b_r)
    for x, y in zip(a_info, b_info, strict=True):
        for u, v in zip(x, y, strict=True):
            np.testing.assert_array_equal(u, v)


def test_different_seeds_differ():
    a_obs, a_r, *_ = _rollout(1, steps=200)
    b_obs, b_r, *_ = _rollout(2, steps=200)
    assert not np.array_equal(a_obs[:50], b_obs[:50])
    assert not np.array_equal(a_r, b_r)


@pytest.mark.parametrize("drift", ["mixed", "seasonal", "trending"])
def test_vector_env_matches_single_envs_step_for_step(drift):
    """Row i of a vector env seeded s is the single env with user_index=i seeded s.

    Holds because per-user randomness is a pure function of (seed, user slot, step counter) and
    the world (catalogue, drift) is a function of (seed, clock) only; autoreset of the vector env
    is same-step, which equals calling ``reset()`` on the single env right after its episode ends.
    """
    b, steps = 6, 300
    kwargs = dict(drift=drift, item_churn=0.01, max_session_steps=25)
    vec = RecSimVectorEnv(num_envs=b, **kwargs)
    singles = [RecSimEnv(user_index=i, **kwargs) for i in range(b)]
    v_obs, v_info = vec.reset(seed=11)
    s_obs = []
    for i, env in enumerate(singles):
        o, info = env.reset(seed=11)
        s_obs.append(o)
        np.testing.assert_array_equal(info["expected_reward"], v_info["expected_reward"][i])
    np.testing.assert_array_equal(np.stack(s_obs), v_obs)
    policy = np.random.default_rng(3)
    ended = 0
    for _ in range(steps):
        actions = policy.integers(0, 20, b)
        v_obs, v_r, v_term, v_trunc, v_info = vec.step(actions)
        for i, env in enumerate(singles):
            o, r, term, trunc, info = env.step(int(actions[i]))
            assert (term, trunc) == (v_term[i], v_trunc[i])
            assert r == pytest.approx(float(v_r[i]), abs=0)
            assert info["clicked"] == v_info["clicked"][i]
            assert info["drift_event"] == v_info["drift_event"][i]
            if term or trunc:
                np.testing.assert_array_equal(o, v_info["final_obs"][i])
                o, info = env.reset()
                ended += 1
            np.testing.assert_array_equal(o, v_obs[i])
            np.testing.assert_array_equal(info["expected_reward"], v_info["expected_reward"][i])
    assert ended > 20


def _same_info_row(single: dict, vector: dict, i: int) -> None:
    for key, value in single.items():
        if key.startswith(("final_", "_final")):
            continue
        np.testing.assert_array_equal(value, vector[key][i], err_msg=key)


@pytest.mark.parametrize("env_id", sorted(recsim_env.ENV_IDS))
def test_vector_env_matches_single_envs_for_every_registered_id(env_id):
    """Every registered id (``MovieLens-v0`` on the synthetic calibration of conftest.py): row i
    of the vector env is the single env with ``user_index=i``, every info key included."""
    b, steps = 3, 150
    kwargs = dict(max_session_steps=15, num_items=200)
    vec = gym.make_vec(env_id, num_envs=b, autoreset_mode="same_step", **kwargs)
    singles = [gym.make(env_id, user_index=i, **kwargs) for i in range(b)]
    v_obs, v_info = vec.reset(seed=21)
    for i, env in enumerate(singles):
        o, info = env.reset(seed=21)
        np.testing.assert_array_equal(o, v_obs[i])
        _same_info_row(info, v_info, i)
    policy = np.random.default_rng(5)
    ended = 0
    for _ in range(steps):
        actions = policy.integers(0, 20, b)
        v_obs, v_r, v_term, v_trunc, v_info = vec.step(actions)
        for i, env in enumerate(singles):
            o, r, term, trunc, info = env.step(int(actions[i]))
            assert (term, trunc, r) == (v_term[i], v_trunc[i], v_r[i])
            if term or trunc:
                np.testing.assert_array_equal(o, v_info["final_obs"][i])
                for key, value in info.items():  # the ended step's candidates: in final_info
                    if key in v_info["final_info"]:
                        np.testing.assert_array_equal(value, v_info["final_info"][key][i])
                o, info = env.reset()
                ended += 1
            else:
                _same_info_row(info, v_info, i)
            np.testing.assert_array_equal(o, v_obs[i])
    assert ended >= b
