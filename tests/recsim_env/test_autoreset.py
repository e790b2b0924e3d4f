"""Autoreset modes of the native vector env (recsim_env/core_autoreset.py): NEXT_STEP (Gymnasium's,
``make_vec``'s default) and SAME_STEP (SB3's), each exact against the single env."""

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.vector import AutoresetMode

import recsim_env
from recsim_env import RecSimEnv, RecSimVectorEnv
from recsim_env.validation import ConfigError

NEXT, SAME = AutoresetMode.NEXT_STEP, AutoresetMode.SAME_STEP


def _check_rows_against_singles(vec, singles, seed, steps, policy_seed=0, skip_info=()):
    """Drive ``vec`` and the single envs ``singles`` (row i ↔ singles[i]) with the same actions,
    following the vector env's autoreset mode, and assert every row's obs / reward / terminated /
    truncated / info equals its single env's. Returns the number of episodes that ended."""
    next_step = vec.autoreset_mode == NEXT
    v_obs, v_info = vec.reset(seed=seed)
    for i, env in enumerate(singles):
        o, info = env.reset(seed=seed)
        np.testing.assert_array_equal(o, v_obs[i])
    policy = np.random.default_rng(policy_seed)
    pending = np.zeros(len(singles), bool)
    ended = 0
    for _ in range(steps):
        actions = policy.integers(0, 20, len(singles))
        v_obs, v_r, v_term, v_trunc, v_info = vec.step(actions)
        for i, env in enumerate(singles):
            if pending[i]:  # NEXT_STEP: this step was row i's reset step
                o, info = env.reset()
                assert v_info["reset_step"][i] and v_r[i] == 0
                assert not (v_term[i] or v_trunc[i])
                pending[i] = False
            else:
                o, r, term, trunc, info = env.step(int(actions[i]))
                assert (term, trunc, r) == (v_term[i], v_trunc[i], v_r[i])
                if next_step:
                    assert not v_info["reset_step"][i]
                for key in ("clicked", "regret", "engagement", "drift_event", "clock"):
                    assert info[key] == v_info[key][i], key
                if term or trunc:
                    ended += 1
                    final = v_info["final_info"]
                    assert v_info["_final_info"][i]
                    assert final["episode_length"][i] >= 1
                    if next_step:
                        pending[i] = True  # the final obs is the row itself (checked below)
                    else:
                        np.testing.assert_array_equal(o, v_info["final_obs"][i])
                        o, info = env.reset()
            np.testing.assert_array_equal(o, v_obs[i])
            for key in ("expected_reward", "click_prob", "oracle_action"):
                if key not in skip_info:
                    np.testing.assert_array_equal(info[key], v_info[key][i], err_msg=key)
    return ended


@pytest.mark.parametrize("env_id", sorted(recsim_env.ENV_IDS))
@pytest.mark.parametrize("mode", [NEXT, SAME])
def test_one_user_is_the_single_env_in_both_modes(env_id, mode):
    """num_envs=1: row 0 is RecSimEnv in both modes, for every registered id, over many episodes
    (a NEXT_STEP reset step of every row serves nobody: no world tick, = ``reset()``)."""
    kwargs = dict(max_session_steps=12, num_items=200, lifetime_ticks=40)
    vec = gym.make_vec(env_id, num_envs=1, autoreset_mode=mode, **kwargs)
    assert vec.autoreset_mode == mode and vec.metadata["autoreset_mode"] == mode
    singles = [gym.make(env_id, **kwargs)]
    assert _check_rows_against_singles(vec, singles, seed=5, steps=120) >= 3


@pytest.mark.parametrize("mode", [NEXT, SAME])
@pytest.mark.parametrize("returning", [False, True])
def test_rows_are_the_single_envs_when_sessions_end_together(mode, returning):
    """B users whose sessions all end at the same step (budget never runs out, fixed length):
    row i is RecSimEnv(user_index=i) step for step in both modes, with drift and churn."""
    kwargs = dict(
        drift="mixed",
        item_churn=0.01,
        max_session_steps=9,
        budget_min=500.0,
        budget_max=500.0,
        num_items=300,
    )
    if returning:  # lifetimes are capped by user time: every user's ends at the same tick too
        kwargs.update(returning_users=True, horizon="session", lifetime_ticks=10**6)
    vec = RecSimVectorEnv(num_envs=5, autoreset_mode=mode, **kwargs)
    singles = [RecSimEnv(user_index=i, **kwargs) for i in range(5)]
    assert _check_rows_against_singles(vec, singles, seed=11, steps=60) >= 5 * 5


def test_next_step_rows_match_same_step_until_their_first_episode_ends():
    """With sessions of different lengths, each row of a NEXT_STEP env equals the SAME_STEP env's
    (and so the single env's) up to and including its first episode's last step."""
    kwargs = dict(drift="mixed", item_churn=0.01, max_session_steps=30)
    nxt = gym.make_vec(
        "recsim_env/DriftingUsers-v0", num_envs=8, autoreset_mode="next_step", **kwargs
    )
    same = gym.make_vec(
        "recsim_env/DriftingUsers-v0", num_envs=8, autoreset_mode="same_step", **kwargs
    )
    a_obs, _ = nxt.reset(seed=2)
    b_obs, _ = same.reset(seed=2)
    np.testing.assert_array_equal(a_obs, b_obs)
    live = np.ones(8, bool)
    rng = np.random.default_rng(0)
    while live.any():
        act = rng.integers(0, 20, 8)
        a_obs, a_r, a_t, a_u, a_i = nxt.step(act)
        b_obs, b_r, b_t, b_u, b_i = same.step(act)
        np.testing.assert_array_equal(a_r[live], b_r[live])
        np.testing.assert_array_equal((a_t | a_u)[live], (b_t | b_u)[live])
        done = (b_t | b_u) & live
        np.testing.assert_array_equal(a_obs[live & ~done], b_obs[live & ~done])
        if done.any():
            np.testing.assert_array_equal(a_obs[done], b_i["final_obs"][done])  # the true last
            for key in ("episode_return", "episode_length"):
                np.testing.assert_array_equal(
                    a_i["final_info"][key][done], b_i["final_info"][key][done]
                )
        live &= ~done


@pytest.mark.parametrize(
    "kwargs",
    [{}, {"returning_users": True, "horizon": "lifetime", "lifetime_ticks": 80}, {"slate_size": 3}],
)
def test_a_reset_step_ignores_its_action_and_episode_stats_add_up(kwargs):
    """Under NEXT_STEP a reset step's action changes nothing (two envs given different actions on
    reset rows stay identical), its reward is 0, and final_info's episode_return / length are the
    sums of the row's rewards / its steps that were not reset steps."""
    kwargs = dict(max_session_steps=15, **kwargs)
    a = gym.make_vec("recsim_env/DriftingUsers-v0", num_envs=16, **kwargs)
    b = gym.make_vec("recsim_env/DriftingUsers-v0", num_envs=16, **kwargs)
    assert a.autoreset_mode == NEXT  # make_vec's default
    a.reset(seed=1)
    b.reset(seed=1)
    rng = np.random.default_rng(4)
    ret, length = np.zeros(16), np.zeros(16, int)
    reset_rows = np.zeros(16, bool)
    episodes = resets = 0
    for _ in range(200):
        act = a.action_space.sample() if kwargs.get("slate_size") else rng.integers(0, 20, 16)
        other = np.array(act, copy=True)
        other[reset_rows] = (other[reset_rows] + 1) % 20  # a different (ignored) action
        if kwargs.get("slate_size"):
            other[reset_rows] = act[reset_rows][:, ::-1]
        oa, ra, ta, ua, ia = a.step(act)
        ob, rb, tb, ub, ib = b.step(other)
        np.testing.assert_array_equal(oa, ob)
        np.testing.assert_array_equal(ra, rb)
        np.testing.assert_array_equal(ia["reset_step"], reset_rows)
        assert not ra[reset_rows].any() and not (ta | ua)[reset_rows].any()
        assert not ia["clicked"][reset_rows].any() and not ia["regret"][reset_rows].any()
        resets += int(reset_rows.sum())
        ret += np.where(reset_rows, 0.0, ra)
        length += ~reset_rows
        done = ta | ua
        if done.any():
            fi = ia["final_info"]
            np.testing.assert_allclose(fi["episode_return"][done], ret[done], rtol=1e-5)
            np.testing.assert_array_equal(fi["episode_length"][done], length[done])
            ret[done], length[done] = 0.0, 0
            episodes += int(done.sum())
        reset_rows = done
    assert episodes >= 20 and resets >= 20


def test_state_dict_resumes_a_pending_reset_exactly():
    a = gym.make_vec("recsim_env/DriftingUsers-v0", num_envs=8, max_session_steps=6)
    a.reset(seed=3)
    rng = np.random.default_rng(0)
    while True:
        *_, term, trunc, _ = a.step(rng.integers(0, 20, 8))
        if (term | trunc).any():
            break
    b = gym.make_vec("recsim_env/DriftingUsers-v0", num_envs=8, max_session_steps=6)
    b.unwrapped.load_state_dict(a.unwrapped.state_dict())
    for _ in range(30):
        act = rng.integers(0, 20, 8)
        oa, ra, *_, ia = a.step(act)
        ob, rb, *_, ib = b.step(act)
        np.testing.assert_array_equal(oa, ob)
        np.testing.assert_array_equal(ra, rb)
        np.testing.assert_array_equal(ia["reset_step"], ib["reset_step"])


def test_reset_mask_starts_the_marked_rows_now_like_same_step():
    """``reset(options={"reset_mask": done})`` right after a NEXT_STEP step gives exactly the
    SAME_STEP env's stream (what RecSimVecEnv does to offer SB3's convention)."""
    kwargs = dict(max_session_steps=7, drift="mixed")
    nxt = RecSimVectorEnv(num_envs=6, autoreset_mode="next_step", **kwargs)
    same = RecSimVectorEnv(num_envs=6, autoreset_mode="same_step", **kwargs)
    nxt.reset(seed=8)
    same.reset(seed=8)
    rng = np.random.default_rng(1)
    for _ in range(60):
        act = rng.integers(0, 20, 6)
        oa, ra, ta, ua, ia = nxt.step(act)
        ob, rb, tb, ub, ib = same.step(act)
        np.testing.assert_array_equal(ra, rb)
        if (ta | ua).any():
            oa, ra_info = nxt.reset(options={"reset_mask": ta | ua})
            np.testing.assert_array_equal(ra_info["expected_reward"], ib["expected_reward"])
        np.testing.assert_array_equal(oa, ob)


@pytest.mark.parametrize("value", ["next_step", "NEXT_STEP", "NextStep", NEXT])
def test_autoreset_mode_spellings(value):
    env = gym.make_vec("recsim_env/Stationary-v0", num_envs=2, autoreset_mode=value)
    assert env.autoreset_mode == NEXT == env.metadata["autoreset_mode"]
    assert type(env).metadata["autoreset_mode"] == SAME  # per instance, not on the class


@pytest.mark.parametrize("value", ["disabled", AutoresetMode.DISABLED, 1, "same"])
def test_bad_autoreset_mode_names_the_key_and_the_allowed_values(value):
    with pytest.raises(
        ConfigError, match=r"invalid autoreset_mode=.*allowed: .*NEXT_STEP.*same_step"
    ):
        gym.make_vec("recsim_env/Stationary-v0", num_envs=2, autoreset_mode=value)


def test_gymnasium_vector_wrappers_accept_the_env_and_agree_with_final_info():
    """NormalizeObservation and FlattenObservation need NEXT_STEP (they refuse SAME_STEP);
    RecordEpisodeStatistics' episode returns / lengths equal the env's own final_info."""
    env = gym.make_vec("recsim_env/DriftingUsers-v0", num_envs=8, max_session_steps=20)
    env = gym.wrappers.vector.FlattenObservation(env)
    env = gym.wrappers.vector.NormalizeObservation(env)
    env = gym.wrappers.vector.RecordEpisodeStatistics(env)
    env.reset(seed=0)
    rng = np.random.default_rng(0)
    ours, theirs = [], []
    for _ in range(300):
        _, _, term, trunc, info = env.step(rng.integers(0, 20, 8))
        done = term | trunc
        if done.any():
            fi = info["final_info"]
            ours += list(zip(fi["episode_return"][done], fi["episode_length"][done], strict=True))
            ep = info["episode"]
            theirs += list(zip(ep["r"][info["_episode"]], ep["l"][info["_episode"]], strict=True))
    assert len(ours) >= 50
    np.testing.assert_allclose(np.array(theirs), np.array(ours), rtol=1e-5)
    with pytest.raises((ValueError, AssertionError)):  # gymnasium 1.2: an assert
        gym.wrappers.vector.NormalizeObservation(
            gym.make_vec("recsim_env/DriftingUsers-v0", num_envs=2, autoreset_mode=SAME)
        )
