"""Our PyTorch DQN: ``DQNAgent`` (dqn.py) with its config and replay, and the drift-adaptive
``AdaptiveDQNAgent`` (adaptive.py). The networks, schedules, losses and acting it shares with PQN
and offline pre-training live in :mod:`agents.qlearning`.

Names are imported on first access, so that ``agents.dqn.config`` can be read without torch.
"""

from typing import Any

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

__all__ = sorted(_LAZY)


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'agents.dqn' has no attribute {name!r}")
