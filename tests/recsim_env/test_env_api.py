"""The Gymnasium / SB3 faces of the simulator: checkers, spaces, autoreset, info, rendering."""

import pickle
import warnings

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env as gym_check_env
from gymnasium.vector import AutoresetMode
from stable_baselines3.common.env_checker import check_env as sb3_check_env

import recsim_env
from recsim_env import ENV_IDS, RecSimEnv, RecSimVectorEnv, SlateSpace

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
    assert (
        envs.metadata["autoreset_mode"] == gym.vector.AutoresetMode.NEXT_STEP
    )  # Gymnasium's convention (issue 20)
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


@pytest.mark.parametrize("slate_size", [1, 3, 20])
def test_checkers_pass_in_slate_mode(slate_size):
    """Gymnasium's and SB3's checkers sample actions from the action space and step them: with a
    plain MultiDiscrete a slate could repeat an item, which the env rejects (issue 14, item 8)."""
    env = gym.make("recsim_env/DriftingUsers-v0", slate_size=slate_size, num_items=200)
    gym_check_env(env.unwrapped, skip_render_check=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # SB3 may warn about MultiDiscrete; that is fine
        sb3_check_env(
            gym.make("recsim_env/DriftingUsers-v0", slate_size=slate_size, num_items=200),
            warn=True,
        )
    env.reset(seed=0)
    env.action_space.seed(0)
    for _ in range(200):  # every sample is a slate the env accepts
        env.step(env.action_space.sample())


def test_slate_space_samples_distinct_seeded_slates_and_rejects_repeats():
    space = SlateSpace(5, 3, seed=7)
    samples = np.array([space.sample() for _ in range(2000)])
    assert samples.dtype == np.int64 and samples.shape == (2000, 3)
    assert all(len(set(row)) == 3 for row in samples.tolist())
    assert all(space.contains(row) for row in samples)
    # uniform over positions: every candidate appears in every position
    for j in range(3):
        counts = np.bincount(samples[:, j], minlength=5)
        assert counts.min() > 0.15 * 2000, counts
    space.seed(7)
    again = np.array([space.sample() for _ in range(2000)])
    np.testing.assert_array_equal(samples, again)  # seeded: deterministic
    assert not space.contains(np.array([1, 1, 2]))
    assert not space.contains([4, 0, 4])
    assert space.contains([4, 0, 3]) and not space.contains([5, 0, 3])
    # still a MultiDiscrete for code that handles those (SB3, flattening, equality)
    assert isinstance(space, gym.spaces.MultiDiscrete)
    assert space == gym.spaces.MultiDiscrete([5, 5, 5])
    assert gym.spaces.flatdim(space) == 15
    full = SlateSpace(4, 4, seed=0)  # k = C: permutations
    assert all(sorted(full.sample().tolist()) == [0, 1, 2, 3] for _ in range(50))
    # masks restrict positions and the slate stays distinct
    mask = tuple(np.array([1, 1, 0, 0, 0], np.int8) for _ in range(2))
    masked = SlateSpace(5, 2, seed=1)
    for _ in range(50):
        a = masked.sample(mask=mask)
        assert sorted(a.tolist()) == [0, 1]
    with pytest.raises(ValueError, match="no candidate left"):
        SlateSpace(5, 3, seed=1).sample(mask=tuple(mask[0] for _ in range(3)))
    # picklable and copyable (SB3 saves the action space in its zip)
    copy = pickle.loads(pickle.dumps(space))
    assert copy == space and isinstance(copy, SlateSpace)


def test_vector_slate_space_samples_one_distinct_slate_per_user():
    envs = gym.make_vec("recsim_env/DriftingUsers-v0", num_envs=64, slate_size=4)
    assert isinstance(envs.single_action_space, SlateSpace)
    assert isinstance(envs.action_space, SlateSpace) and envs.action_space.shape == (64, 4)
    envs.reset(seed=0)
    envs.action_space.seed(3)
    for _ in range(20):
        actions = envs.action_space.sample()
        assert envs.action_space.contains(actions)
        assert (np.diff(np.sort(actions, axis=1), axis=1) > 0).all()
        envs.step(actions)
    bad = envs.action_space.sample()
    bad[5, 1] = bad[5, 0]
    assert not envs.action_space.contains(bad)


def test_vector_env_exposes_autoreset_mode_like_gymnasium():
    envs = gym.make_vec("recsim_env/DriftingUsers-v0", num_envs=2)
    sync = gym.vector.SyncVectorEnv([lambda: gym.make("CartPole-v1")])
    assert hasattr(sync, "autoreset_mode")  # what Gymnasium's own vector envs expose
    assert envs.autoreset_mode is AutoresetMode.NEXT_STEP  # make_vec: Gymnasium's convention
    assert envs.metadata["autoreset_mode"] is envs.autoreset_mode


def test_unknown_make_kwargs_raise_type_error_naming_known_parameters():
    for make in (gym.make, lambda *a, **k: gym.make_vec(*a, num_envs=2, **k)):
        with pytest.raises(TypeError) as err:
            make("recsim_env/DriftingUsers-v0", intrest_weight=3.0)
        message = str(err.value)
        assert "intrest_weight" in message and "did you mean 'interest_weight'" in message
        assert "known parameters" in message and "num_items" in message
        assert isinstance(err.value, ValueError)  # and still a ValueError for older callers
    with pytest.raises(TypeError, match="frobnicate"):
        RecSimEnv(frobnicate=1)


@pytest.mark.parametrize("face", ["single", "vector"])
def test_step_before_reset_and_after_close_are_clear_errors(face):
    def make():
        return RecSimEnv() if face == "single" else RecSimVectorEnv(num_envs=3)

    action = 0 if face == "single" else np.zeros(3, np.int64)
    with pytest.raises(gym.error.ResetNeeded, match=r"call reset\(\) before step\(\)"):
        make().step(action)
    with pytest.raises(RuntimeError, match="reset"):  # a RuntimeError too
        make().step(action)
    env = make()
    env.reset(seed=0)
    env.step(action)
    env.close()
    with pytest.raises(gym.error.ClosedEnvironmentError, match="closed environment"):
        env.step(action)
    with pytest.raises(RuntimeError, match="closed environment"):
        env.reset(seed=1)
    env.close()  # closing twice is harmless


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
