"""Baseline agents: random, popularity, myopic (ε-)greedy, linear bandits (LinUCB, Thompson,
sliding-window and discounted LinUCB), the ground-truth oracle and, for returning users, the
long-term reference ``OracleLongTermAgent`` and its observation-only twin ``LongTermRuleAgent``;
``FrozenAgent`` wraps any learner and stops its learning after a given number of steps.

All but ``FrozenAgent`` (a wrapper around an agent of any kind) are :class:`agents.base.OnlineAgent`
subclasses built as ``Cls(env, **hyperparameters)`` and act on a whole batch of users at once.
"""

from agents.baselines.features import LinearFeatures
from agents.baselines.frozen import FrozenAgent
from agents.baselines.greedy import EpsilonGreedyAgent, GreedyAgent
from agents.baselines.heuristics import PopularityAgent, RandomAgent
from agents.baselines.linear import DiscountedUCB, LinearThompson, LinUCB, SlidingWindowUCB
from agents.baselines.longterm import LongTermRuleAgent, OracleLongTermAgent
from agents.baselines.oracle import OracleAgent
from agents.baselines.scoring import ScoringAgent

__all__ = [
    "DiscountedUCB",
    "EpsilonGreedyAgent",
    "FrozenAgent",
    "GreedyAgent",
    "LinUCB",
    "LinearFeatures",
    "LinearThompson",
    "LongTermRuleAgent",
    "OracleAgent",
    "OracleLongTermAgent",
    "PopularityAgent",
    "RandomAgent",
    "ScoringAgent",
    "SlidingWindowUCB",
]
