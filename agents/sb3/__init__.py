"""Stable-Baselines3 agents behind our contract: ``agents.sb3.SB3DQN``, ``SB3PPO``, ``SB3A2C``,
``SB3QRDQN`` (sb3-contrib), and the bridge that brings SB3's metrics to a ``StepCallback``.

Names are imported on first access: ``agents.sb3.hparams`` (the adapters' defaults) can be read
without importing SB3 and torch; the simulator and ``agents`` itself never import them.
"""

from typing import TYPE_CHECKING

from agents.lazy import lazy_attributes

if TYPE_CHECKING:  # the real names for type checkers
    from agents.sb3.adapters import SB3A2C, SB3DQN, SB3PPO, SB3QRDQN, SB3Agent, as_sb3_env
    from agents.sb3.bridge import (
        SB3_KEY_ALIASES,
        StepCallbackBridge,
        StepCallbackOutputFormat,
        batch_infos,
        transition_from_sb3,
    )

_LAZY = {
    **dict.fromkeys(
        ("SB3A2C", "SB3DQN", "SB3PPO", "SB3QRDQN", "SB3Agent", "as_sb3_env"), "agents.sb3.adapters"
    ),
    **dict.fromkeys(
        (
            "SB3_KEY_ALIASES",
            "StepCallbackBridge",
            "StepCallbackOutputFormat",
            "batch_infos",
            "transition_from_sb3",
        ),
        "agents.sb3.bridge",
    ),
}

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


__getattr__ = lazy_attributes(__name__, _LAZY)
