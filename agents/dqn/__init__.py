"""Our PyTorch DQN: ``DQNAgent`` (dqn.py) with its config, networks, replay and schedules, and the
drift-adaptive ``AdaptiveDQNAgent`` (adaptive.py)."""

from agents.dqn.adaptive import AdaptiveConfig, AdaptiveDQNAgent
from agents.dqn.config import DQNConfig
from agents.dqn.dqn import DQNAgent
from agents.dqn.network import CandidateQNetwork, MlpQNetwork, build_q_network
from agents.dqn.replay import ReplayBatch, ReplayBuffer
from agents.dqn.schedules import LinearSchedule

__all__ = [
    "AdaptiveConfig",
    "AdaptiveDQNAgent",
    "CandidateQNetwork",
    "DQNAgent",
    "DQNConfig",
    "LinearSchedule",
    "MlpQNetwork",
    "ReplayBatch",
    "ReplayBuffer",
    "build_q_network",
]
