"""The warm-start agent: built by Hydra like any agent, pre-trained on logged data of its own world."""

import gymnasium as gym
import numpy as np
import pytest
from hydra.utils import instantiate
from omegaconf import OmegaConf

import recsim_env  # noqa: F401
from agents.base import StepCallback
from agents.dqn import DQNAgent
from agents.offline import PretrainedDQN

DQN = dict(
    hidden_sizes=[64, 64],
    epsilon_start=0.05,
    epsilon_end=0.05,
    learning_starts=0,
    seed=0,
    torch_threads=1,
)


class RewardRecorder(StepCallback):
    def __init__(self) -> None:
        self.rewards: list[float] = []

    def on_step(self, transition) -> bool:
        self.rewards.append(float(np.mean(transition.rewards)))
        return True


def first_window_reward(agent, steps: int) -> float:
    recorder = RewardRecorder()
    agent.learn(steps, recorder)
    return float(np.mean(recorder.rewards))


def test_warm_start_beats_cold_start_on_the_first_window():
    def make_env():
        return gym.make_vec("recsim_env/Stationary-v0", num_envs=16)

    cfg = OmegaConf.create(
        {
            "_target_": "agents.offline.pretrained_agent.PretrainedDQN",
            "behaviour_steps": 8000,
            "pretrain_steps": 1000,
            **DQN,
        }
    )
    warm = instantiate(cfg, env=make_env())
    assert isinstance(warm, PretrainedDQN)
    assert np.isfinite(warm.pretrain_metrics["pretrain/loss"])
    assert len(warm.replay) > 0  # the logged transitions seed the replay
    cold = DQNAgent(make_env(), **DQN)
    window = 16 * 40  # the first 40 vector steps online
    warm_reward, cold_reward = first_window_reward(warm, window), first_window_reward(cold, window)
    assert warm_reward > cold_reward + 0.1, (warm_reward, cold_reward)


def test_invalid_pretraining_settings_fail_clearly():
    env = gym.make_vec("recsim_env/Stationary-v0", num_envs=4)
    with pytest.raises(ValueError, match="behaviour='oracle'"):
        PretrainedDQN(env, behaviour="oracle", **DQN)
    with pytest.raises(ValueError, match="pretrain_steps=0"):
        PretrainedDQN(env, pretrain_steps=0, **DQN)


def test_saved_agent_loads_as_a_dqn_without_pretraining_again(tmp_path):
    env = gym.make_vec("recsim_env/Stationary-v0", num_envs=4)
    agent = PretrainedDQN(env, behaviour_steps=400, pretrain_steps=20, **DQN)
    obs, _ = env.reset(seed=1)
    agent.save(tmp_path / "agent.pt")
    loaded = PretrainedDQN.load(tmp_path / "agent.pt", env)
    assert type(loaded) is DQNAgent
    np.testing.assert_array_equal(loaded.act(obs), agent.act(obs))
