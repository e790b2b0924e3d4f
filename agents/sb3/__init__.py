"""Stable-Baselines3 agents behind our contract: ``agents.sb3.SB3DQN``, ``SB3PPO``, ``SB3A2C``,
``SB3QRDQN`` (sb3-contrib), and the bridge that brings SB3's metrics to a ``StepCallback``.

Importing this package imports SB3 (and torch); the simulator and ``agents`` itself do not.
"""

from agents.sb3.adapters import SB3A2C, SB3DQN, SB3PPO, SB3QRDQN, SB3Agent, as_sb3_env
from agents.sb3.bridge import (
    SB3_KEY_ALIASES,
    StepCallbackBridge,
    StepCallbackOutputFormat,
    batch_infos,
    transition_from_sb3,
)

__all__ = [
    "SB3A2C",
    "SB3DQN",
    "SB3PPO",
    "SB3QRDQN",
    "SB3_KEY_ALIASES",
    "SB3Agent",
    "StepCallbackBridge",
    "StepCallbackOutputFormat",
    "as_sb3_env",
    "batch_infos",
    "transition_from_sb3",
]
