"""Our PyTorch DQN: ``DQNAgent`` (dqn.py) with its config and replay, and the drift-adaptive
``AdaptiveDQNAgent`` (adaptive.py). The networks, schedules, losses and acting it shares with PQN
and offline pre-training live in :mod:`agents.qlearning`.

Names are imported on first access, so that ``agents.dqn.config`` can be read without torch.
"""

from typing import TYPE_CHECKING

from agents.lazy import lazy_attributes

if TYPE_CHECKING:  # the real names for type checkers
    from agents.dqn.adaptive import AdaptiveConfig, AdaptiveDQNAgent
    from agents.dqn.config import DQNConfig
    from agents.dqn.dqn import DQNAgent
    from agents.dqn.replay import ReplayBatch, ReplayBuffer
    from agents.qlearning.network import CandidateQNetwork, MlpQNetwork, build_q_network
    from agents.qlearning.schedules import LinearSchedule

_LAZY = {
    "AdaptiveConfig": "agents.dqn.adaptive",
    "AdaptiveDQNAgent": "agents.dqn.adaptive",
    "CandidateQNetwork": "agents.qlearning.network",
    "DQNAgent": "agents.dqn.dqn",
    "DQNConfig": "agents.dqn.config",
    "LinearSchedule": "agents.qlearning.schedules",
    "MlpQNetwork": "agents.qlearning.network",
    "ReplayBatch": "agents.dqn.replay",
    "ReplayBuffer": "agents.dqn.replay",
    "build_q_network": "agents.qlearning.network",
}

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


__getattr__ = lazy_attributes(__name__, _LAZY)
