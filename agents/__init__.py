"""Agents for recsim-env: the contract, our DQN and PQN, SB3 adapters and baselines.

``from agents import Agent, OnlineAgent`` stays light; the torch learners (``DQNAgent``,
``PQNAgent``) are imported on first access, so that code which only needs the contract or the
baselines does not pay for importing torch.
"""

from agents.base import Agent, OnlineAgent, StepCallback, Transition
from agents.lazy import lazy_attributes

_LAZY = {"DQNAgent": "agents.dqn", "PQNAgent": "agents.pqn"}

__all__ = ["Agent", "DQNAgent", "OnlineAgent", "PQNAgent", "StepCallback", "Transition"]


__getattr__ = lazy_attributes(__name__, _LAZY)
