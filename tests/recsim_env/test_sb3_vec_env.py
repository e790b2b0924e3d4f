"""The SB3 face of the batched simulator: RecSimVecEnv meets SB3's VecEnv contract."""

from __future__ import annotations

import copy
import pickle

import gymnasium as gym
import numpy as np
import pytest
from stable_baselines3.common.env_checker import check_env
from stable_baselines3.common.monitor import Monitor
from stable_baselines3.common.vec_env import VecEnv, VecMonitor, VecNormalize

import recsim_env
from recsim_env.sb3_vec_env import RecSimVecEnv

ENV_ID = "recsim_env/DriftingUsers-v0"
B = 6


def make(**kwargs) -> RecSimVecEnv:
    kwargs.setdefault("max_session_steps", 12)
    return RecSimVecEnv.make(ENV_ID, num_envs=B, **kwargs)


def random_actions(env: VecEnv, rng: np.random.Generator) -> np.ndarray:
    return rng.integers(0, env.action_space.n, size=env.num_envs)


def test_single_env_passes_sb3_check_env():
    check_env(gym.make(ENV_ID), warn=True, skip_render_check=True)


def test_reset_and_step_shapes_and_spaces():
    env = make()
    assert isinstance(env, VecEnv)
    assert env.num_envs == B
    assert env.observation_space == env.vector_env.single_observation_space
    assert env.action_space == env.vector_env.single_action_space
    env.seed(0)
    obs = env.reset()
    assert obs.shape == (B, *env.observation_space.shape) and obs.dtype == np.float32
    assert env.last_info["click_prob"].shape == (B, env.obs_layout.num_candidates)
    rng = np.random.default_rng(0)
    obs, rewards, dones, infos = env.step(random_actions(env, rng))
    assert obs.shape == (B, *env.observation_space.shape)
    assert rewards.shape == (B,) and rewards.dtype == np.float32
    assert dones.shape == (B,) and dones.dtype == bool
    assert isinstance(infos, list) and len(infos) == B
    assert all(env.observation_space.contains(row) for row in obs)
    assert env.last_info["regret"].shape == (B,)


def test_done_users_get_terminal_observation_truncation_flag_and_episode_stats():
    env = make()
    env.seed(1)
    obs = env.reset()
    rng = np.random.default_rng(1)
    returns, lengths = np.zeros(B), np.zeros(B, dtype=int)
    seen_done = seen_truncated = 0
    for _ in range(60):
        obs, rewards, dones, infos = env.step(random_actions(env, rng))
        returns += rewards
        lengths += 1
        info = env.last_info
        for i in range(B):
            if not dones[i]:
                assert infos[i] == {}
                continue
            seen_done += 1
            # the true last observation, not the next user's first one (obs[i])
            np.testing.assert_array_equal(infos[i]["terminal_observation"], info["final_obs"][i])
            assert not np.array_equal(infos[i]["terminal_observation"], obs[i])
            truncated = bool(env.last_truncated[i] and not env.last_terminated[i])
            assert infos[i]["TimeLimit.truncated"] == truncated
            seen_truncated += truncated
            episode = infos[i]["episode"]
            assert episode["l"] == lengths[i]
            assert episode["r"] == pytest.approx(returns[i], abs=1e-4)
            returns[i], lengths[i] = 0.0, 0
        np.testing.assert_array_equal(dones, env.last_terminated | env.last_truncated)
    assert seen_done > 0 and seen_truncated > 0  # max_session_steps=12 forces truncations


def test_infos_of_users_in_session_are_one_shared_read_only_empty_dict():
    env = make(max_session_steps=200)
    env.reset()
    _, _, dones, infos = env.step(np.zeros(B, dtype=np.int64))
    assert not dones.any()
    assert all(info is infos[0] for info in infos)
    with pytest.raises(TypeError, match="read-only"):
        infos[0]["x"] = 1
    with pytest.raises(TypeError):
        infos[0].update(x=1)
    for duplicate in (infos[0].copy(), copy.copy(infos[0]), copy.deepcopy(infos[0])):
        duplicate["x"] = 1  # copies are ordinary dicts
        assert type(duplicate) is dict
    assert pickle.loads(pickle.dumps(infos)) == [{}] * B
    assert infos[0] == {}


def test_rewards_are_a_copy_sb3_may_modify():
    env = make(reward="engagement")
    env.reset()
    _, rewards, _, _ = env.step(np.zeros(B, dtype=np.int64))
    engagement = env.last_info["engagement"].copy()
    rewards += 100.0  # what SB3's on-policy loop does when bootstrapping truncated sessions
    np.testing.assert_array_equal(env.last_info["engagement"], engagement)


def test_seed_reaches_the_batched_core_at_next_reset():
    env = make()
    assert env.seed(7) == list(range(7, 7 + B))
    obs = env.reset()
    reference, _ = gym.make_vec(ENV_ID, num_envs=B, max_session_steps=12).reset(seed=7)
    np.testing.assert_array_equal(obs, reference)
    # seeds are used once: a later reset() keeps the world going instead of re-creating it
    for _ in range(3):
        env.step(np.zeros(B, dtype=np.int64))
    assert not np.array_equal(env.reset(), obs)
    env.seed(7)
    np.testing.assert_array_equal(env.reset(), obs)


def test_attributes_methods_and_wrapping():
    env = make()
    layout = recsim_env.get_obs_layout(env)
    assert layout == env.obs_layout == env.vector_env.obs_layout
    assert env.get_attr("obs_layout") == [layout] * B
    assert env.get_attr("obs_layout", indices=[0, 2]) == [layout] * 2
    with pytest.raises(AttributeError):
        env.get_attr("no_such_attribute")
    env.set_attr("custom_flag", 3)
    assert env.get_attr("custom_flag", indices=1) == [3]
    with pytest.raises(ValueError, match="all of them"):
        env.set_attr("custom_flag", 4, indices=[0])
    env.reset()
    states = env.env_method("state_dict", indices=[0, 1])
    assert len(states) == 2 and isinstance(states[0], dict)
    assert env.env_is_wrapped(Monitor) == [True] * B
    assert env.env_is_wrapped(gym.Wrapper) == [False] * B
    assert make(episode_stats=False).env_is_wrapped(Monitor) == [False] * B


def test_rejects_next_step_autoreset_vector_envs():
    sync = gym.make_vec(ENV_ID, num_envs=2, vectorization_mode="sync")
    with pytest.raises(ValueError, match="SAME_STEP"):
        RecSimVecEnv(sync)
    with pytest.raises(TypeError):
        RecSimVecEnv(gym.make(ENV_ID))


def test_sb3_vec_env_wrappers_work_on_top():
    rng = np.random.default_rng(2)
    normalized = VecNormalize(
        make(), norm_reward=False
    )  # rewrites terminal_observation of done users
    normalized.reset()
    for _ in range(30):
        obs, _, dones, infos = normalized.step(random_actions(normalized, rng))
        for i in np.flatnonzero(dones):
            assert np.all(np.isfinite(infos[i]["terminal_observation"]))
    assert recsim_env.get_obs_layout(normalized) == normalized.venv.obs_layout
    with pytest.warns(UserWarning, match="Monitor"):  # our episode stats would be overwritten
        VecMonitor(make())


def test_ansi_render_returns_the_batch_table():
    env = make(render_mode="ansi")
    env.reset()
    text = env.render()
    assert isinstance(text, str) and text
    env.close()


def test_a_next_step_native_env_gives_exactly_the_same_step_stream():
    """``RecSimVecEnv(gymnasium.make_vec(...))`` (NEXT_STEP, make_vec's default) resets ended users
    at once: the SB3 stream (obs, rewards, dones, terminal observations, ground truth) equals the
    SAME_STEP env's."""
    nxt = RecSimVecEnv(gym.make_vec(ENV_ID, num_envs=B, max_session_steps=9))
    same = RecSimVecEnv.make(ENV_ID, B, max_session_steps=9)
    assert nxt.vector_env.autoreset_mode == gym.vector.AutoresetMode.NEXT_STEP
    assert same.vector_env.autoreset_mode == gym.vector.AutoresetMode.SAME_STEP
    for env in (nxt, same):
        env.seed(4)
    np.testing.assert_array_equal(nxt.reset(), same.reset())
    rng = np.random.default_rng(0)
    ended = 0
    for _ in range(40):
        act = rng.integers(0, 20, B)
        a, b = nxt.step(act), same.step(act)
        for x, y in zip(a[:3], b[:3], strict=True):
            np.testing.assert_array_equal(x, y)
        for i in np.flatnonzero(b[2]):
            ended += 1
            np.testing.assert_array_equal(
                a[3][i]["terminal_observation"], b[3][i]["terminal_observation"]
            )
            assert a[3][i]["episode"]["r"] == b[3][i]["episode"]["r"]
        np.testing.assert_array_equal(nxt.last_info["click_prob"], same.last_info["click_prob"])
    assert ended >= B
    with pytest.raises(ValueError, match="SAME_STEP"):
        RecSimVecEnv(gym.wrappers.vector.RecordEpisodeStatistics(gym.make_vec(ENV_ID, num_envs=2)))
