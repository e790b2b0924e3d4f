"""FrozenAgent: learns for N user-steps, then acts greedily with its frozen policy and never updates,
while the stream goes on; composes from Hydra; save/load/resume continue exactly."""

from __future__ import annotations

import copy
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate

import recsim_env  # noqa: F401  (registers the env ids)
from agents import Agent, StepCallback
from agents.baselines import FrozenAgent, LinUCB, SlidingWindowUCB
from agents.dqn import DQNAgent
from recsim_env.validation import ConfigError

CONF = Path(__file__).resolve().parents[2] / "conf"
ENV = "recsim_env/AbruptShift-v0"


def make_env(num_envs: int = 8, autoreset_mode: str = "same_step"):
    return gym.make_vec(ENV, num_envs=num_envs, autoreset_mode=autoreset_mode)


def compose_agent(*overrides: str):
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        return compose("config", overrides=["agent=frozen", *overrides]).agent


class Recorder(StepCallback):
    def __init__(self) -> None:
        self.steps: list[int] = []
        self.rewards: list[np.ndarray] = []
        self.clocks: list[int] = []
        self.started_with: list = []
        self.ended = 0

    def on_training_start(self, agent) -> None:
        self.started_with.append(agent)

    def on_training_end(self) -> None:
        self.ended += 1

    def on_step(self, t) -> bool:
        self.steps.append(t.num_timesteps)
        self.rewards.append(np.asarray(t.rewards).copy())
        self.clocks.append(int(np.asarray(t.info["clock"])[0]))
        return True


# ---------------------------------------------------------------------------------------- Hydra
def test_composes_with_any_inner_agent_from_the_command_line():
    cfg = compose_agent("seed=3")
    assert cfg._target_ == "agents.baselines.FrozenAgent"
    assert cfg.inner._target_ == "agents.baselines.LinUCB" and cfg.inner.seed == 3
    env = make_env()
    agent = instantiate(cfg, env=env)  # what the runner does; the wrapper builds the inner
    assert isinstance(agent, Agent) and isinstance(agent.inner, LinUCB)
    assert agent.learn_steps == 30000 and agent.inner_spec["seed"] == 3

    cfg = compose_agent("agent@agent.inner=swucb", "agent.inner.window=64", "agent.learn_steps=16")
    agent = instantiate(cfg, env=env)
    assert isinstance(agent.inner, SlidingWindowUCB) and agent.inner.window == 64
    assert agent.learn_steps == 16
    obs, info = env.reset(seed=0)
    assert agent.act(obs, info=info).shape == (8,)

    cfg = compose_agent("agent@agent.inner=dqn", "agent.inner.gamma=0.5")
    agent = instantiate(cfg, env=env)
    assert isinstance(agent.inner, DQNAgent) and agent.inner.config.gamma == 0.5


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"learn_steps": -1}, "learn_steps=-1"),
        ({"learn_steps": 1.5}, "learn_steps=1.5"),
        ({"inner": {"alpha": 1.0}}, "inner="),
        ({"inner": 3}, "inner=3"),
        ({"inner": {"_target_": "agents.baselines.LinUCB", "alpa": 1.0}}, "inner.*alpa"),
    ],
)
def test_invalid_config_names_the_key(kwargs, match):
    env = make_env()
    params = {"inner": {"_target_": "agents.baselines.LinUCB"}, "learn_steps": 10, **kwargs}
    with pytest.raises(ConfigError, match=match):
        FrozenAgent(env, **params)


# ---------------------------------------------------------------------------------------- behaviour
def test_learns_then_freezes_while_the_stream_goes_on():
    env = make_env()
    agent = FrozenAgent(env, inner=LinUCB(env, seed=0), learn_steps=100, seed=0)
    rec = Recorder()
    agent.learn(240, rec)
    # one callback, announced once with the wrapper (the runner checkpoints what it is given)
    assert rec.started_with == [agent] and rec.ended == 1
    assert rec.steps == list(range(8, 241, 8))  # learning and frozen steps, one stream
    assert rec.clocks == list(range(1, 31))  # the world clock never restarted
    assert agent.learned_steps == 104 and agent.frozen_steps == 136 and agent.frozen
    assert agent.inner.num_timesteps == 104  # the inner agent saw only the learning phase

    gram, xy = agent.inner._gram.copy(), agent.inner._xy.copy()
    agent.learn(80)
    np.testing.assert_array_equal(agent.inner._gram, gram)  # no update once frozen
    np.testing.assert_array_equal(agent.inner._xy, xy)
    assert agent.num_timesteps == 320

    # frozen = greedy with the learned policy, whatever `explore` says
    obs, info = agent._obs, agent._info  # where the stream stands
    greedy = agent.inner.act(obs, explore=False, info=info)
    np.testing.assert_array_equal(agent.act(obs, explore=True, info=info), greedy)
    np.testing.assert_array_equal(agent.scores(obs, explore=True, info=info).argmax(axis=1), greedy)


def test_frozen_policy_is_the_one_learned_before_the_freeze():
    """Frozen after N steps = an unfrozen copy's greedy policy at step N, for the rest of the run."""
    env_a, env_b = make_env(), make_env()
    frozen = FrozenAgent(env_a, inner=LinUCB(env_a, seed=1), learn_steps=160, seed=1)
    learner = LinUCB(env_b, seed=1)
    frozen.learn(160)
    learner.learn(160)
    snapshot = copy.deepcopy(learner)
    frozen.learn(400)
    learner.learn(400)
    obs, info = frozen._obs, frozen._info
    np.testing.assert_array_equal(frozen.act(obs, info=info), snapshot.act(obs, info=info))
    assert not np.array_equal(learner.theta, snapshot.theta)  # the learner kept learning


def test_learn_steps_zero_never_learns():
    env = make_env()
    agent = FrozenAgent(env, inner={"_target_": "agents.baselines.LinUCB"}, learn_steps=0, seed=0)
    agent.learn(64)
    assert agent.learned_steps == 0 and agent.frozen_steps == 64
    assert not agent.inner._gram.any()


def test_a_callback_stop_during_learning_is_honoured():
    class StopAt(Recorder):
        def on_step(self, t) -> bool:
            super().on_step(t)
            return t.num_timesteps < 40

    env = make_env()
    agent = FrozenAgent(env, inner=LinUCB(env, seed=0), learn_steps=100, seed=0)
    rec = StopAt()
    agent.learn(200, rec)
    assert rec.steps[-1] == 40 and agent.num_timesteps == 40 and not agent.frozen


# ---------------------------------------------------------------------------------------- persistence
def _resume(agent, env, path, cls=FrozenAgent):
    """Checkpoint as the runner does (agent + env state + the observation it was about to act on)."""
    agent.save(path)
    env_state = copy.deepcopy(env.state_dict())
    obs, info = agent._obs, agent._info  # where the stream stands
    new_env = make_env()
    new_env.load_state_dict(env_state)
    loaded = cls.load(path, env=new_env)
    loaded.continue_stream(obs, info)  # the runner's resume hook
    return loaded


@pytest.mark.parametrize("split", [48, 160], ids=["while_learning", "while_frozen"])
def test_save_load_resume_continues_exactly(split, tmp_path):
    def build(env):
        return FrozenAgent(env, inner=LinUCB(env, seed=2), learn_steps=96, seed=2)

    env = make_env()
    whole = build(env)
    ref = Recorder()
    whole.learn(320, ref)

    env = make_env()
    first = build(env)
    part = Recorder()
    first.learn(split, part)
    resumed = _resume(first, env, tmp_path / "agent")
    assert resumed.num_timesteps == split and resumed.frozen == (split >= 96)
    assert isinstance(resumed.inner, LinUCB)
    resumed.learn(320 - split, part)
    assert part.steps == ref.steps
    np.testing.assert_array_equal(np.stack(part.rewards), np.stack(ref.rewards))
    np.testing.assert_array_equal(resumed.inner.theta, whole.inner.theta)


def test_save_load_with_a_torch_inner_agent(tmp_path):
    env = make_env(4)
    inner = {
        "_target_": "agents.dqn.DQNAgent",
        "hidden_sizes": [8],
        "learning_starts": 16,
        "batch_size": 8,
        "buffer_size": 256,
        "seed": 0,
    }
    agent = FrozenAgent(env, inner=inner, learn_steps=48, seed=0)
    agent.learn(80)
    agent.save(tmp_path / "agent", include_replay=True)  # passed on to the DQN
    assert (tmp_path / "agent" / "frozen.json").is_file()
    loaded = FrozenAgent.load(tmp_path / "agent", env=env)
    assert isinstance(loaded.inner, DQNAgent) and loaded.frozen
    assert loaded.inner_spec == inner
    obs, info = env.reset(seed=5)
    np.testing.assert_array_equal(loaded.act(obs, info=info), agent.act(obs, info=info))
    np.testing.assert_allclose(loaded.scores(obs), agent.inner.q_values(obs))
    with pytest.raises(ValueError, match="not a FrozenAgent checkpoint"):
        FrozenAgent.load(tmp_path, env=env)


def test_freezes_an_sb3_agent_and_takes_over_its_stream():
    env = make_env(4)
    inner = {"_target_": "agents.sb3.SB3DQN", "learning_starts": 16, "seed": 0}
    agent = FrozenAgent(env, inner=inner, learn_steps=32, seed=0)
    rec = Recorder()
    agent.learn(64, rec)
    assert rec.steps == list(range(4, 65, 4))
    assert rec.clocks == list(range(1, 17))  # SB3's stream continued, not reset
    assert agent.inner.num_timesteps == 32 and agent.frozen_steps == 32
