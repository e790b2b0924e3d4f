"""Parallelised Q-learning (PQN): ``PQNAgent`` (pqn.py), its config and the Q(λ) targets."""

from agents.pqn.config import PQNConfig
from agents.pqn.pqn import PQNAgent
from agents.pqn.qlambda import q_lambda_targets

__all__ = ["PQNAgent", "PQNConfig", "q_lambda_targets"]
