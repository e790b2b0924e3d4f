"""Agents under NEXT_STEP autoreset (recsim_env/core_autoreset.py): a reset step (the step after an
episode end: action ignored, reward 0) is no user-step and no transition. The shared loop
(``OnlineAgent.learn``) counts only user-steps; DQN's replay never samples reset steps; PQN leaves
them out of its loss; the feedback baselines never fit on them."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
from recording import Recorder

import recsim_env  # noqa: F401  (registers the ids)
from agents.base import RESET_STEP_KEY, mark_reset_steps, reset_rows
from agents.baselines import LinUCB
from agents.dqn import DQNAgent, ReplayBuffer
from agents.pqn import PQNAgent

FAST = dict(hidden_sizes=(16, 16), batch_size=16, learning_starts=32)


def next_step_env(num_envs: int = 4, **kwargs):
    """Sessions of 1 to 6 steps that end at different times (partial reset steps)."""
    return gym.make_vec(
        "recsim_env/Stationary-v0",
        num_envs=num_envs,
        max_session_steps=6,
        budget_min=1.0,
        budget_max=8.0,
        **kwargs,
    )


@pytest.mark.parametrize(
    "make_agent",
    [
        lambda env: DQNAgent(env, seed=0, total_steps=400, **FAST),
        lambda env: PQNAgent(env, seed=0, total_steps=400, rollout_steps=8, hidden_sizes=(16,)),
        lambda env: LinUCB(env, seed=0),
    ],
    ids=["dqn", "pqn", "linucb"],
)
def test_reset_steps_are_no_user_steps(make_agent):
    env = next_step_env()
    agent = make_agent(env)
    rec = Recorder()
    agent.learn(400, rec)
    resets = [reset_rows(t.info) for t in rec.transitions]
    assert sum(r is not None and not r.all() for r in resets) >= 10  # partial reset steps
    live = sum(4 - (0 if r is None else int(r.sum())) for r in resets)
    assert agent.num_timesteps == rec.transitions[-1].num_timesteps == live >= 400
    for t, r in zip(rec.transitions, resets, strict=True):
        if r is not None:
            assert not t.rewards[r].any() and not (t.terminated | t.truncated)[r].any()


def test_dqn_replay_stores_reset_steps_in_place_and_never_samples_them():
    env = next_step_env()
    agent = DQNAgent(env, seed=0, total_steps=400, **FAST)
    rec = Recorder()
    agent.learn(400, rec)
    replay = agent.replay
    skip = replay.skip[: replay.rows]
    marked = np.stack([np.asarray(t.info[RESET_STEP_KEY]) for t in rec.transitions])
    np.testing.assert_array_equal(skip, marked[: replay.rows])
    # a buffer whose observations name their (row, stream): sampled ones are never reset steps
    buf = ReplayBuffer(1_000, 4, obs_dim=1, n_step=3, gamma=0.9)
    rng = np.random.default_rng(0)
    for row in range(60):
        obs = (row * 10 + np.arange(4, dtype=np.float32))[:, None]
        done = rng.random(4) < 0.2
        buf.add(obs, np.zeros(4, np.int64), np.ones(4), obs, done, np.zeros(4, bool),
                skip=rng.random(4) < 0.3)  # fmt: skip
    batch = buf.sample(5_000, rng)
    rows, streams = (batch.obs[:, 0] // 10).astype(int), (batch.obs[:, 0] % 10).astype(int)
    assert not buf.skip[rows, streams].any()
    assert len(set(zip(rows.tolist(), streams.tolist(), strict=True))) > 100  # still spread out


def test_linucb_fits_only_the_user_steps():
    """LinUCB's statistics after a NEXT_STEP stream equal a fit on its user-steps alone."""
    env = next_step_env(num_envs=3)
    agent = LinUCB(env, seed=0)
    rec = Recorder()
    agent.learn(150, rec)
    ref = LinUCB(next_step_env(num_envs=3), seed=0)
    for t in rec.transitions:
        mask = reset_rows(t.info)
        keep = np.ones(3, bool) if mask is None else ~mask
        if keep.any():
            ref.fit(*ref.features.feedback(t.obs[keep], t.actions[keep], t.rewards[keep]))
    np.testing.assert_allclose(agent._gram, ref._gram)
    np.testing.assert_allclose(agent._xy, ref._xy)


def test_gymnasiums_own_next_step_vector_envs_get_their_reset_steps_marked():
    """A SyncVectorEnv of single envs does not mark its reset steps: the loop derives them from
    the previous step's ends (``mark_reset_steps``)."""
    env = gym.make_vec("recsim_env/Stationary-v0", num_envs=3, vectorization_mode="sync",
                       max_session_steps=6, budget_min=1.0, budget_max=8.0)  # fmt: skip
    done = np.array([True, False, True])
    info = mark_reset_steps(env, {}, done)
    np.testing.assert_array_equal(info[RESET_STEP_KEY], done)
    assert RESET_STEP_KEY not in mark_reset_steps(env, {}, np.zeros(3, bool))
    agent = LinUCB(env, seed=0)
    rec = Recorder()
    agent.learn(120, rec)
    marked = [t for t in rec.transitions if reset_rows(t.info) is not None]
    assert marked and all(not t.rewards[reset_rows(t.info)].any() for t in marked)
