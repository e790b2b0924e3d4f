"""Stable-Baselines3 agents behind our contract: ``agents.sb3.SB3DQN``, ``SB3PPO``, ``SB3A2C``,
``SB3QRDQN`` (sb3-contrib), and the bridge that brings SB3's metrics to a ``StepCallback``.

Names are imported on first access: ``agents.sb3.hparams`` (the adapters' defaults) can be read
without importing SB3 and torch; the simulator and ``agents`` itself never import them.
"""

from typing import Any

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

__all__ = sorted(_LAZY)


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'agents.sb3' has no attribute {name!r}")
