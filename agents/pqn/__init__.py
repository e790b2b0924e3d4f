"""Parallelised Q-learning (PQN): ``PQNAgent`` (pqn.py), its config and the Q(λ) targets.

Names are imported on first access, so that ``agents.pqn.config`` can be read without torch.
"""

from typing import TYPE_CHECKING

from agents.lazy import lazy_attributes

if TYPE_CHECKING:  # the real names for type checkers
    from agents.pqn.config import PQNConfig
    from agents.pqn.pqn import PQNAgent
    from agents.pqn.qlambda import q_lambda_targets

_LAZY = {
    "PQNAgent": "agents.pqn.pqn",
    "PQNConfig": "agents.pqn.config",
    "q_lambda_targets": "agents.pqn.qlambda",
}

__all__ = [
    "PQNAgent",
    "PQNConfig",
    "q_lambda_targets",
]


__getattr__ = lazy_attributes(__name__, _LAZY)
