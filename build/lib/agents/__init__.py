"""Agents for recsim-env: the contract, our DQN and PQN, SB3 adapters and baselines.

``from agents import Agent, OnlineAgent`` stays light; the torch learners (``DQNAgent``,
``PQNAgent``) are imported on first access, so that code which only needs the contract or the
baselines does not pay for importing torch.
"""

from typing import Any

from agents.base import Agent, OnlineAgent, StepCallback, Transition

_LAZY = {"DQNAgent": "agents.dqn", "PQNAgent": "agents.pqn"}

__all__ = ["Agent", "DQNAgent", "OnlineAgent", "PQNAgent", "StepCallback", "Transition"]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'agents' has no attribute {name!r}")
