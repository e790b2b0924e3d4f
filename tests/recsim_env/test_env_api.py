"""The Gymnasium / SB3 faces of the simulator: checkers, spaces, autoreset, info, rendering."""

import warnings

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env as gym_check_env
from stable_baselines3.common.env_checker import check_env as sb3_check_env

import recsim_env
from recsim_env import ENV_IDS, RecSimVectorEnv

IDS = sorted(ENV_IDS)


@pytest.mark.parametrize("env_id", IDS)
@pytest.mark.parametrize("observability", ["partial", "full"])
def test_checkers_pass_without_bound_warnings(env_id, observability):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        env = gym.make(env_id, observability=observability, num_items=200)
        gym_check_env(env.unwrapped, skip_render_check=True)
        sb3_check_env(gym.make(env_id, observability=observability, num_items=200), warn=True)
    messages = [str(w.message) for w in caught]
    assert not [m for m in messages if "bound" in m.lower() or "inf" in m.lower()], messages
    space = env.observation_space
    assert np.all(np.isfinite(space.low)) and np.all(np.isfinite(space.high))
    assert space.dtype == np.float32 and len(space.shape) == 1


def test_make_vec_returns_native_batched_env():
    envs = gym.make_vec("recsim_env/DriftingUsers-v0", num_envs=16, drift="abrupt")
    assert isinstance(envs, RecSimVectorEnv)
    assert envs.config.drift == "abrupt"
    assert envs.metadata["autoreset_mode"] == gym.vector.AutoresetMode.SAME_STEP
    obs, info = envs.reset(seed=3)
    assert obs.shape == (16, envs.obs_layout.size) and obs.dtype == np.float32
    assert info["click_prob"].shape == (16, 20) and info["oracle_action"].shape == (16,)


def test_info_keys_and_ground_truth_semantics():
    envs = RecSimVectorEnv(num_envs=64)
    obs, info = envs.reset(seed=0)
    expected = info["expected_reward"]
    np.testing.assert_array_equal(info["oracle_action"], expected.argmax(axis=1))
    actions = np.zeros(64, np.int64)
    best = expected.max(axis=1)
    obs, reward, term, trunc, info2 = envs.step(actions)
    for key in (
        "clicked",
        "clicked_position",
        "engagement",
        "regret",
        "drift_event",
        "drift_phase",
        "clock",
    ):
        assert info2[key].shape == (64,), key
    np.testing.assert_allclose(info2["regret"], best - expected[:, 0], rtol=1e-5, atol=1e-6)
    assert np.all(info2["regret"] >= 0)
    assert np.all(info2["clock"] == 1)
    # the oracle action has zero regret
    _, _, _, _, info3 = envs.step(info2["oracle_action"])
    np.testing.assert_allclose(info3["regret"], 0.0, atol=1e-6)


def test_click_prob_in_info_is_honest():
    """click_prob of step t is the probability that the chosen candidate is clicked at t + 1."""
    envs = RecSimVectorEnv(num_envs=20_000, drift="none")
    _, info = envs.reset(seed=5)
    p = info["click_prob"][:, 7]
    _, _, _, _, info2 = envs.step(np.full(20_000, 7))
    assert abs(info2["clicked"].mean() - p.mean()) < 4 * np.sqrt(p.mean() * (1 - p.mean()) / 20_000)


def test_layout_names_user_features():
    envs = RecSimVectorEnv(num_envs=3, observability="full", notify_drift=True)
    obs, _ = envs.reset(seed=0)
    layout = envs.obs_layout
    _, user = layout.split(obs)
    np.testing.assert_allclose(user[:, layout.user_slice("interest")], envs.core.users.interest)
    assert user.shape[1] == layout.user_slices()["budget"].stop
    with pytest.raises(KeyError, match="interest"):
        RecSimVectorEnv(num_envs=1).obs_layout.user_slice("interest")


def test_same_step_autoreset_final_obs():
    envs = RecSimVectorEnv(num_envs=256, max_session_steps=5)
    obs, _ = envs.reset(seed=1)
    for _ in range(5):
        obs, _, term, trunc, info = envs.step(np.zeros(256, np.int64))
    done = term | trunc
    assert done.all() and trunc.any()
    assert info["_final_obs"].all()
    layout = envs.obs_layout
    progress = layout.items_size + layout.num_topics + 1
    assert np.allclose(info["final_obs"][:, progress], 1.0)  # last step of a 5-step session
    assert np.allclose(obs[:, progress], 0.0)  # a new user's first observation
    assert np.all(info["final_info"]["episode_length"] == 5)


def test_autoreset_when_only_some_sessions_end():
    envs = RecSimVectorEnv(num_envs=512, budget_min=2.0, budget_max=6.0)
    obs, _ = envs.reset(seed=2)
    layout = envs.obs_layout
    progress = layout.items_size + layout.num_topics + 1
    for _ in range(20):
        obs, _, term, trunc, info = envs.step(np.zeros(512, np.int64))
        done = term | trunc
        if done.any() and not done.all():
            break
    assert done.any() and not done.all()
    assert np.array_equal(info["_final_obs"], done)
    assert np.all(info["final_obs"][~done] == 0.0)  # rows still going carry no final observation
    assert np.all(info["final_obs"][done][:, progress] > 0.0)  # the ended sessions' last step
    assert np.all(obs[done][:, progress] == 0.0)  # replaced by new users' first observations
    assert np.all(obs[~done][:, progress] > 0.0)
    assert np.all(info["final_info"]["episode_length"][done] > 0)
    assert np.all(info["final_info"]["episode_length"][~done] == 0)


def test_slate_mode_spaces_and_step():
    envs = RecSimVectorEnv(num_envs=32, slate_size=3)
    assert envs.single_action_space == gym.spaces.MultiDiscrete([20, 20, 20])
    _, info = envs.reset(seed=0)
    assert info["oracle_action"].shape == (32, 3)
    slate = info["oracle_action"]
    _, reward, _, _, info = envs.step(slate)
    assert reward.shape == (32,) and np.all(info["regret"] >= 0)
    clicked_at = info["clicked_position"]
    assert np.array_equal(clicked_at >= 0, info["clicked"]) and clicked_at.max() < 3
    assert np.all((reward > 0) == info["clicked"])
    np.testing.assert_allclose(info["regret"], 0.0, atol=1e-6)
    # (SB3's check_env samples MultiDiscrete actions with repeated items, which a slate rejects.)


def test_follower_world_shares_clock_and_does_not_advance_it():
    train = RecSimVectorEnv(num_envs=8, drift="abrupt")
    train.reset(seed=0)
    for _ in range(3):
        train.step(np.zeros(8, np.int64))
    follower = RecSimVectorEnv(num_envs=4, world=train.world, drift="abrupt")
    obs, _ = follower.reset(seed=123)
    for _ in range(10):
        _, _, _, _, info = follower.step(np.zeros(4, np.int64))
    assert train.world.clock == 3 and np.all(info["clock"] == 3)
    train.step(np.zeros(8, np.int64))
    _, _, _, _, info = follower.step(np.zeros(4, np.int64))
    assert np.all(info["clock"] == 4)
    # evaluation users are not the training users
    assert not np.allclose(follower.core.users.interest[:4], train.core.users.interest[:4])


def test_state_dict_round_trip_continues_exactly():
    a = RecSimVectorEnv(num_envs=16, drift="mixed", item_churn=0.01)
    a.reset(seed=9)
    rng = np.random.default_rng(0)
    for _ in range(50):
        a.step(rng.integers(0, 20, 16))
    state = a.state_dict()
    b = RecSimVectorEnv(num_envs=16, drift="mixed", item_churn=0.01)
    b.load_state_dict(state)
    for _ in range(50):
        act = rng.integers(0, 20, 16)
        oa, ra, ta, _, ia = a.step(act)
        ob, rb, tb, _, ib = b.step(act)
        np.testing.assert_array_equal(oa, ob)
        np.testing.assert_array_equal(ra, rb)
        np.testing.assert_array_equal(ia["clock"], ib["clock"])


def test_render_ansi():
    env = gym.make("recsim_env/Stationary-v0", render_mode="ansi")
    env.reset(seed=0)
    text = env.render()
    assert "interest" in text and "candidates" in text
    envs = gym.make_vec("recsim_env/Stationary-v0", num_envs=2, render_mode="ansi")
    envs.reset(seed=0)
    assert "budget" in envs.render()
    image = gym.make("recsim_env/Stationary-v0", render_mode="rgb_array")
    image.reset(seed=0)
    frame = image.render()
    assert frame.dtype == np.uint8 and frame.ndim == 3 and frame.shape[2] == 3
    assert (frame != 255).any()
    with pytest.raises(ValueError, match="render_mode='human'"):
        recsim_env.RecSimEnv(render_mode="human")


def test_package_does_not_import_agents_or_experiments():
    import subprocess
    import sys

    code = "import sys, recsim_env; bad=[m for m in sys.modules if m.split('.')[0] in ('agents','experiments','torch','stable_baselines3')]; print(bad); sys.exit(bool(bad))"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True).returncode == 0
