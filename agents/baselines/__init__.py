"""Baseline agents: random, popularity, myopic (ε-)greedy, linear bandits (LinUCB, Thompson,
sliding-window and discounted LinUCB) and the ground-truth oracle.

All are :class:`agents.base.OnlineAgent` subclasses built as ``Cls(env, **hyperparameters)`` and act
on a whole batch of users at once.
"""

from agents.baselines.features import LinearFeatures
from agents.baselines.greedy import EpsilonGreedyAgent, GreedyAgent
from agents.baselines.heuristics import PopularityAgent, RandomAgent
from agents.baselines.linear import DiscountedUCB, LinearThompson, LinUCB, SlidingWindowUCB
from agents.baselines.oracle import OracleAgent
from agents.baselines.scoring import ScoringAgent

__all__ = [
    "DiscountedUCB",
    "EpsilonGreedyAgent",
    "GreedyAgent",
    "LinUCB",
    "LinearFeatures",
    "LinearThompson",
    "OracleAgent",
    "PopularityAgent",
    "RandomAgent",
    "ScoringAgent",
    "SlidingWindowUCB",
]
