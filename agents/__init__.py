"""Agents for recsim-env: the contract, our DQN, SB3 adapters and baselines."""

from agents.base import Agent, OnlineAgent, StepCallback, Transition

__all__ = ["Agent", "OnlineAgent", "StepCallback", "Transition"]
